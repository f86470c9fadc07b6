"""`supabase/seed.sql`: sample users, organisations and rows for every table, generated from the model."""

from .build import seed_sql

__all__ = ["seed_sql"]
