"""Size limits on every input, defined once: the model, the tool schemas, the CLI and the README use these.

A design tool has no use for a megabyte description or thousands of tables, and every unbounded
input is a way to make the server (or the editor reading its answer) spend without end.
"""

from __future__ import annotations

IDENT_BYTES = 63  # PostgreSQL truncates longer identifiers (NAMEDATALEN - 1)

# --- inside a blueprint ---------------------------------------------------------------------------
APP_NAME_CHARS = 120
APP_DESCRIPTION_CHARS = 2_000
DESCRIPTION_CHARS = 500  # entity, field, role and event descriptions
DEFAULT_CHARS = 500  # a field's literal text default
ENTITIES = 200
FIELDS_PER_ENTITY = 100
ROLES = 20
CAPABILITIES = 50  # app-defined capabilities (tenancy.capabilities)
GRANTS_PER_COMMAND = 20
ENUM_VALUES = 100
PATTERNS_PER_ENTITY = 20  # query_patterns and unique_together, each
COLUMNS_PER_PATTERN = 32  # PostgreSQL's limit on index columns
EVENTS = 200  # analytics.events
EVENT_PROPERTIES = 50
NAMES_PER_LIST = 100  # privacy.consent_flags, privacy.audit_tables, privacy.pii_keys

# --- tool arguments -------------------------------------------------------------------------------
TEMPLATE_CHARS = IDENT_BYTES
SQL_CHARS = 2_000_000  # audit_spec sql and spec, verify_rls sql
PATHS = 50
PATH_CHARS = 4_096
FILE_BYTES = 5_000_000  # each file audit_spec / the CLI reads
URL_CHARS = 2_048
TABLE_NAMES = ENTITIES + 10  # generate_rls tables: the entities plus the generated tables
PROMPT_ARGUMENT_CHARS = SQL_CHARS  # any prompt argument (review_rls takes SQL)

# --- answers --------------------------------------------------------------------------------------
ISSUES = 20  # problems listed in one error message, then "and N more"
MESSAGE_CHARS = 4_000  # an error message, whatever it holds
PREVIEW_CHARS = 40  # a rejected value is quoted at most this long, never whole

# What the README documents: (where, limit, unit), checked by a test.
DOCUMENTED = (
    ("app.name, design_tenancy app_name", APP_NAME_CHARS, "characters"),
    ("app.description, design_tenancy app_description", APP_DESCRIPTION_CHARS, "characters"),
    ("description of an entity, field, role or event", DESCRIPTION_CHARS, "characters"),
    ("a field's text default", DEFAULT_CHARS, "characters"),
    ("entities", ENTITIES, "items"),
    ("fields of one entity", FIELDS_PER_ENTITY, "items"),
    ("tenancy.roles, design_tenancy roles", ROLES, "items"),
    ("values of an enum field", ENUM_VALUES, "items"),
    ("query_patterns, unique_together of one entity", PATTERNS_PER_ENTITY, "items"),
    ("columns in one pattern", COLUMNS_PER_PATTERN, "items"),
    ("analytics.events", EVENTS, "items"),
    ("properties of one event", EVENT_PROPERTIES, "items"),
    ("privacy.consent_flags, audit_tables, pii_keys", NAMES_PER_LIST, "items"),
    ("identifiers (entity, field, role, event names)", IDENT_BYTES, "bytes"),
    ("template", TEMPLATE_CHARS, "characters"),
    ("audit_spec sql and spec, verify_rls sql", SQL_CHARS, "characters"),
    ("audit_spec paths", PATHS, "items"),
    ("one path", PATH_CHARS, "characters"),
    ("a blueprint file, a file audit_spec or `audit` reads", FILE_BYTES, "bytes"),
    ("verify_rls database_url", URL_CHARS, "characters"),
    ("generate_rls tables", TABLE_NAMES, "items"),
    ("a prompt argument", PROMPT_ARGUMENT_CHARS, "characters"),
    ("problems listed in one error message", ISSUES, "items"),
    ("an error message", MESSAGE_CHARS, "characters"),
)
