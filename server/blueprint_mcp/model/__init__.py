"""The pydantic domain model: imports nothing else of this package."""

from .analytics import Analytics, Event, EventCategory, EventDef, EventSource, canonical_taxonomy
from .blueprint import (
    ANALYTICS_NAMES,
    ANALYTICS_TABLES,
    AUDITABLE_CORE,
    CORE_TABLES,
    App,
    Blueprint,
    generated_columns,
    is_analytics_name,
    parse_blueprint,
)
from .edge import EDGE_FUNCTIONS, EdgeFunction, edge_functions
from .entities import AUTH_USERS, Access, Check, DefaultExpression, Entity, Field, FieldType, Scope
from .errors import BlueprintError, InvalidBlueprint, OutputExists, TemplateNotFound
from .privacy import Privacy
from .tenancy import Capability, Role, Tenancy, default_roles

__all__ = [
    "ANALYTICS_NAMES", "ANALYTICS_TABLES", "AUDITABLE_CORE", "AUTH_USERS", "CORE_TABLES", "EDGE_FUNCTIONS", "Access",
    "Analytics", "App", "Blueprint", "BlueprintError", "Capability", "Check", "DefaultExpression", "EdgeFunction",
    "Entity", "Event",
    "EventCategory", "EventDef", "EventSource", "Field", "FieldType", "InvalidBlueprint",
    "OutputExists", "Privacy", "Role", "Scope", "Tenancy", "TemplateNotFound", "canonical_taxonomy",
    "default_roles", "edge_functions", "generated_columns", "is_analytics_name", "parse_blueprint",
]
