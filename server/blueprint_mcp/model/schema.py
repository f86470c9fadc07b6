"""The physical schema: what a database holds. Generators produce it; the auditor reads it.

A later SQL parser builds the same model from migrations, so lint rules are written once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator


class _Obj(BaseModel):
    model_config = ConfigDict(extra="forbid")


_new, _set = object.__new__, object.__setattr__


def trusted(cls: type[BaseModel], values: dict[str, Any]) -> Any:
    """An instance of `cls` from `values` that are already every field, each of its type, in field order:
    what validating them would make, without validating again. Only for objects made by the thousands
    from values the code itself computed (positions, findings); tests compare them with validated ones."""
    obj = _new(cls)
    _set(obj, "__dict__", values)
    _set(obj, "__pydantic_fields_set__", set(values))
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


class Location(_Obj):
    file: str | None = None
    line: int | None = None
    column: int | None = None

    @classmethod
    def at(cls, file: str, line: int, column: int) -> Location:
        """Where the SQL reader found something: it makes one per object it reads."""
        return trusted(cls, {"file": file, "line": line, "column": column})


def _tree(description: str) -> Any:
    """A PostgreSQL parse tree filled by the SQL parser (never by the generator), kept out of dumps."""
    return Field(None, exclude=True, repr=False, description=description)


class Command(StrEnum):
    select = "select"
    insert = "insert"
    update = "update"
    delete = "delete"


COMMANDS = (Command.select, Command.insert, Command.update, Command.delete)


class Column(_Obj):
    name: str
    type: str
    nullable: bool = True
    default: str | None = None
    comment: str = ""
    pii: bool = False
    location: Location | None = None


class ForeignKey(_Obj):
    name: str
    columns: list[str]
    ref_schema: str
    ref_table: str
    ref_columns: list[str]
    on_delete: str = "no action"
    set_null_columns: list[str] = Field(default_factory=list)
    location: Location | None = None


class Constraint(_Obj):
    """Primary key, unique, check or exclusion; `expression` holds a check's SQL (or an exclusion's
    `using gist (...)` clause)."""

    name: str
    kind: Literal["primary key", "unique", "check", "exclude"]
    columns: list[str] = Field(default_factory=list)
    expression: str | None = None
    nulls_not_distinct: bool = False
    tree: Any = _tree("Parse tree of a check's expression.")
    location: Location | None = None
    shape: str | None = Field(None, exclude=True, repr=False,
                              description="A key's index as the SQL parser read it: see Index.shape.")


class Index(_Obj):
    name: str
    columns: list[str]
    unique: bool = False
    where: str | None = None
    location: Location | None = None
    shape: str | None = Field(None, exclude=True, repr=False,
                              description="Everything but the name and uniqueness that decides which queries "
                                          "the index serves (method, keys, operator classes, collations, order, "
                                          "INCLUDE, NULLS NOT DISTINCT, predicate), as the SQL parser read it; "
                                          "`unique` is kept apart.")


class Policy(_Obj):
    name: str
    command: Command | Literal["all"]
    roles: list[str] = Field(default_factory=list)
    permissive: bool = True
    using: str | None = None
    check: str | None = None
    comment: str = ""
    columns: list[str] = Field(default_factory=list, description="Columns the policy filters on.")
    location: Location | None = None
    using_tree: Any = _tree("Parse tree of USING; node locations are offsets into `using`.")
    check_tree: Any = _tree("Parse tree of WITH CHECK; node locations are offsets into `check`.")


class Privilege(_Obj):
    """One granted table privilege: on the whole relation, or (select/insert/update/references) on columns."""

    privilege: str  # select, insert, update, delete, truncate, references, trigger
    columns: list[str] = Field(default_factory=list)

    @classmethod
    def parse(cls, value: Any) -> Any:
        """`"update (a, b)"` -> Privilege(privilege="update", columns=["a", "b"]); anything else unchanged."""
        if not isinstance(value, str):
            return value
        head, _, rest = value.partition("(")
        return cls(privilege=head.strip(), columns=[c.strip() for c in rest.rstrip(") ").split(",") if c.strip()])


Grants = dict[str, list[Privilege]]  # role -> privileges


def _privileges(value: Any) -> Any:
    if isinstance(value, dict):
        return {role: [Privilege.parse(p) for p in ps] for role, ps in value.items()}
    return value


class Trigger(_Obj):
    name: str
    timing: Literal["before", "after", "instead of"]
    events: list[str]
    columns: list[str] = Field(default_factory=list)  # "update of" columns
    function: str  # schema-qualified
    args: list[str] = Field(default_factory=list)
    level: Literal["row", "statement"] = "row"
    # Transition tables of a statement trigger, as SQL: "new table as added" (REFERENCING ...).
    referencing: list[str] = Field(default_factory=list)
    when: str | None = None  # a row trigger's WHEN condition, as SQL
    when_tree: Any = _tree("Parse tree of WHEN; node locations are offsets into `when`.")
    # ALTER TABLE ... DISABLE / ENABLE [REPLICA | ALWAYS] TRIGGER: a disabled or replica-only trigger does not fire
    # in a client's session (session_replication_role 'origin').
    enabled: Literal["origin", "always", "replica", "disabled"] = "origin"
    location: Location | None = None

    @property
    def fires(self) -> bool:
        """The trigger fires for clients' statements (not disabled, nor kept to replication)."""
        return self.enabled in ("origin", "always")


class RewriteRule(_Obj):
    """CREATE RULE on a table: its actions run with the table owner's rights."""
    name: str
    event: str  # select, insert, update, delete
    instead: bool = False
    writes: list[str] = Field(default_factory=list)  # schema.table of every table an action writes
    location: Location | None = None


class Table(_Obj):
    schema_name: str = "public"
    name: str
    section: Literal["core", "domain", "analytics", "privacy"] = "domain"
    comment: str = ""
    columns: list[Column] = Field(default_factory=list)
    constraints: list[Constraint] = Field(default_factory=list)
    foreign_keys: list[ForeignKey] = Field(default_factory=list)
    indexes: list[Index] = Field(default_factory=list)
    rls_enabled: bool = False
    policies: list[Policy] = Field(default_factory=list)
    triggers: list[Trigger] = Field(default_factory=list)
    rewrite_rules: list[RewriteRule] = Field(default_factory=list)
    grants: Grants = Field(default_factory=dict)
    tenant_key: str | None = None
    location: Location | None = None
    rls_forced: bool = False
    owner: str | None = Field(None, description="The role ALTER TABLE ... OWNER TO gave it; None: whoever created "
                                                "it (the migration's role).")
    external: bool = Field(False, description="Referenced but not created by the audited SQL (e.g. storage.objects): "
                                              "only what the SQL did to it is known.")
    kind: Literal["table", "foreign table"] = "table"
    partitioned: bool = Field(False, description="A partitioned table's root (PARTITION BY): it holds no rows itself.")
    partition_key: list[str] = Field(default_factory=list, description="A partitioned table's key columns "
                                                                       "(PARTITION BY), \"\" for an expression.")
    partition_of: str | None = Field(None, description="The partitioned table (schema.table) it is a partition of "
                                                       "(PARTITION OF, ATTACH PARTITION).")
    partition_bound: Any = _tree("A partition's FOR VALUES (PartitionBoundSpec).")
    inherits: list[str] = Field(default_factory=list, description="Its INHERITS parents (schema.table): a query on "
                                                                  "one returns this table's rows too.")
    column_revokes: list[tuple[str, str, list[str], Location | None]] = Field(
        default_factory=list, exclude=True,
        description="(role, privilege, columns, where) of each REVOKE of columns that changed nothing: the role held "
                    "the privilege on the whole table, which covers every column (read from SQL; BP082).")
    column_grants_moot: list[tuple[str, str, list[str], Location | None]] = Field(
        default_factory=list, exclude=True,
        description="(role, privilege, columns, where) of each column GRANT the role's privilege on the whole table "
                    "made moot: given while the role held it (Supabase's default grants), or before a GRANT on the "
                    "whole table (read from SQL; BP082 when the role still holds it).")

    _grants = field_validator("grants", mode="before")(lambda cls, v: _privileges(v))

    def column(self, name: str) -> Column | None:
        for c in self.columns:  # a loop: half the cost of next(genexpr) on the audit's hottest lookup
            if c.name == name:
                return c
        return None

    @property
    def qualified(self) -> str:
        return f"{self.schema_name}.{self.name}"

    @property
    def parents(self) -> list[str]:
        """The tables (schema.table) whose queries return this table's rows under their own policies."""
        return [self.partition_of] if self.partition_of else self.inherits


class Function(_Obj):
    schema_name: str
    name: str
    args: str = ""  # argument list as SQL, e.g. "min_role public.member_role"
    arg_types: str = ""  # types only, for grant/revoke
    returns: str
    language: str  # "sql" or "plpgsql" from the generator; any language from parsed SQL
    security_definer: bool = False
    volatility: Literal["immutable", "stable", "volatile"] = "volatile"
    # None = not fixed. pg_temp last: left out, PostgreSQL searches it first for types (and relations), so a session
    # holding TEMP could declare a pg_temp.uuid domain whose check ran as the definer (red team 26 T1).
    search_path: str | None = "pg_catalog, pg_temp"
    body: str
    comment: str = ""
    execute_roles: list[str] = Field(default_factory=list)  # public/anon revoked, these granted
    # Audit suppressions the generator writes before it ("BP059 <why>"): a deliberate choice of the blueprint.
    ignore: list[str] = Field(default_factory=list)
    migration: Literal["rls", "triggers"] | None = None  # where the generator renders it (None: by its kind)
    location: Location | None = None
    # What the body touches, as schema.table; None = not analysed (the generator leaves them unset).
    reads: list[str] | None = None
    writes: list[str] | None = None
    assigns: list[str] | None = Field(None, description="Columns of NEW a trigger function sets.")
    metadata_writes: list[str] | None = Field(None, description="Tables it writes with a value read from the "
                                                                "user's own metadata (raw_user_meta_data).")
    dynamic_inputs: list[str] | None = Field(None, description="Text parameters its body pastes into dynamic SQL "
                                                               "as they are (`name (body line N)`).")
    reads_user_metadata: bool | None = Field(None, description="Its body reads the user's own metadata "
                                                             "(auth.jwt() -> 'user_metadata', raw_user_meta_data).")
    calls: list[str] | None = Field(None, description="Every function its body calls, as written (auth.uid).")
    compares: list[str] | None = Field(None, description="Columns its body compares between NEW and OLD (a trigger's "
                                                        "guard: new.organization_id <> old.organization_id).")
    procedure: bool = Field(False, description="CREATE PROCEDURE: run with CALL, which the API (PostgREST) never "
                                                "does; a function that clients reach may CALL it.")
    compares_loosely: list[str] | None = Field(
        None, description="Of those, the columns it compares only with <> or = (not IS DISTINCT FROM): a change to or "
                          "from NULL makes the test NULL and passes.")
    compares_via: dict[str, list[str]] | None = Field(
        None, description="Columns its body compares between NEW and OLD in a test whose branch calls functions "
                          "(perform private.refuse(...)): column -> those functions, a guard where one raises.")
    # The parsed body, kept by the audit's parser for readings made only where a rule asks (`audit/callers.py`).
    _body: Any = PrivateAttr(default=None)
    # Its parameters as parsed (with their DEFAULTs), for a call the audit replays (evasion round 18 fp02b).
    _parameters: Any = PrivateAttr(default=None)

    @property
    def qualified(self) -> str:
        return f"{self.schema_name}.{self.name}"


class View(_Obj):
    schema_name: str
    name: str
    query: str
    materialized: bool = False
    security_invoker: bool = False
    # Quals of a query over the view run only after the view's own (a caller's function never sees its rows).
    security_barrier: bool = False
    comment: str = ""
    indexes: list[Index] = Field(default_factory=list)
    grants: Grants = Field(default_factory=dict)
    location: Location | None = None
    reads: list[str] | None = None  # schema.table of every relation the query reads; None = not analysed
    calls: list[str] | None = None  # every function the query calls (auth.uid); None = not analysed
    column_names: list[str] = Field(default_factory=list)  # `create view v (a, b) as ...`: its columns' names
    # INSTEAD OF triggers and rewrite rules (the audit reads them; the generator makes none)
    triggers: list[Trigger] = Field(default_factory=list)
    rewrite_rules: list[RewriteRule] = Field(default_factory=list)
    # The parsed query, kept by the audit's parser for the reading of whom it answers for (`audit/callers.py`).
    _body: Any = PrivateAttr(default=None)

    _grants = field_validator("grants", mode="before")(lambda cls, v: _privileges(v))


class EnumType(_Obj):
    schema_name: str
    name: str
    values: list[str]
    comment: str = ""
    location: Location | None = None


class Domain(_Obj):
    """`create domain name as base_type`: compares, orders and casts as its base type (an enum's order, text's
    collation), whatever its CHECK admits."""

    schema_name: str
    name: str
    base_type: str
    checks: list[Constraint] = Field(default_factory=list, description="Its CHECK constraints on VALUE (validated).")
    location: Location | None = None


class Extension(_Obj):
    name: str
    schema_name: str
    location: Location | None = None


class CronJob(_Obj):
    """A pg_cron schedule the migrations create where pg_cron is installed (a no-op elsewhere)."""

    name: str
    schedule: str  # cron expression
    command: str  # the SQL pg_cron runs


class StorageBucket(_Obj):
    """A row of storage.buckets the migrations upsert."""

    name: str
    public: bool = False
    file_size_limit: int | None = None
    allowed_mime_types: list[str] | None = None
    mime_types_read: bool = True  # False: the SQL sets allowed_mime_types to something the audit cannot read
    location: Location | None = None


class Problem(_Obj):
    """A statement the parser could not read: reported as a finding, the rest is still audited."""

    message: str
    location: Location


class Schema(_Obj):
    """Everything the generated migrations create, in creation order."""

    schemas: list[str] = Field(default_factory=list)
    enums: list[EnumType] = Field(default_factory=list)
    domains: list[Domain] = Field(default_factory=list,
                                  description="Domains the audit reads (the generator makes none).")
    tables: list[Table] = Field(default_factory=list)
    functions: list[Function] = Field(default_factory=list)
    views: list[View] = Field(default_factory=list)
    auth_triggers: list[Trigger] = Field(default_factory=list, description="Triggers on auth.users.")
    extensions: list[Extension] = Field(default_factory=list)
    buckets: list[StorageBucket] = Field(default_factory=list, description="Storage buckets the migrations create.")
    storage_policies: list[Policy] = Field(default_factory=list, description="Policies on storage.objects.")
    cron_jobs: list[CronJob] = Field(default_factory=list, description="Schedules created where pg_cron exists.")
    drop_graphql: bool = Field(False, description="The app does not use GraphQL: the migration drops pg_graphql.")
    realtime_tables: list[str] = Field(default_factory=list, description=(
        "Tables (schema.table) in the supabase_realtime publication: Realtime sends their changes to subscribers "
        "who may select the row; `<schema>.*` for TABLES IN SCHEMA, `*` for a publication FOR ALL TABLES."))
    schema_usage: dict[str, list[str]] = Field(default_factory=dict, description=(
        "Roles granted USAGE on each schema the SQL creates (public's is PUBLIC's by default)."))
    exposed_schemas: list[str] = Field(default_factory=lambda: ["public", "graphql_public"],
                                       description="Schemas PostgREST serves (pgrst.db_schemas).")
    problems: list[Problem] = Field(default_factory=list, description="Statements the parser could not read.")

    def table(self, name: str, schema: str = "public") -> Table | None:
        return next((t for t in self.tables if t.name == name and t.schema_name == schema), None)
