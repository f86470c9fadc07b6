"""Importing this package registers every rule."""

from . import schema_rules  # noqa: F401
