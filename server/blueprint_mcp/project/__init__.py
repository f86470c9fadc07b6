"""The rest of a Supabase project from one blueprint: TypeScript database types and config.toml."""

from .types import database_types
from .config import config_toml

__all__ = ["config_toml", "database_types"]
