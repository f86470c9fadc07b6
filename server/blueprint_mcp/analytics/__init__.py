"""The analytics pack: queries generated from the event taxonomy, in PostgreSQL and transpiled."""

from .dialects import DIALECTS, UnknownDialect, analytics_files, queries_sql, transpile
from .queries import PARAMS, Query, UnknownEvent, analytics_queries, funnel

__all__ = ["DIALECTS", "analytics_files", "PARAMS", "Query", "UnknownDialect", "UnknownEvent", "analytics_queries", "funnel",
           "queries_sql", "transpile"]
