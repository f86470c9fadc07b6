"""Blueprint MCP: design production-grade Supabase backends and prove the SQL on PostgreSQL."""

__version__ = "0.1.0"
