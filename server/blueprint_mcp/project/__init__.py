"""The rest of a Supabase project from one blueprint: TypeScript database types, config.toml, edge functions."""

from .types import database_types
from .config import config_toml
from .functions import function_files

__all__ = ["config_toml", "database_types", "function_files"]
