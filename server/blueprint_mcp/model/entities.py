"""Domain entities: typed fields, a tenancy scope, access overrides and query patterns."""

from __future__ import annotations

import math
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field as PField, model_validator

from .access import GrantSpec, Match
from .base import EnumValue, Ident, Model, Text, text_problem
from .errors import ValueProblem as Invalid, one_of, preview
from .limits import (
    COLUMNS_PER_PATTERN,
    DEFAULT_CHARS,
    DESCRIPTION_CHARS,
    ENUM_VALUES,
    FIELDS_PER_ENTITY,
    IDENT_BYTES,
    PATTERNS_PER_ENTITY,
    ROLES,
)

AUTH_USERS = "auth.users"
MEMBERS = "organization_members"  # a user column that must name a member of the row's organisation


class FieldType(StrEnum):
    """A column's type.
    uuid: a UUID; text: a string; integer: a 32-bit whole number; bigint: a 64-bit whole number;
    numeric: an exact decimal (e.g. money); boolean: true or false; date: a calendar day (2024-01-31);
    timestamptz: a moment in time, with time zone; jsonb: a JSON value;
    enum: one of the field's `values` (a PostgreSQL enum type);
    reference: a foreign key (uuid) to the row named by `references`."""

    uuid = "uuid"
    text = "text"
    integer = "integer"
    bigint = "bigint"
    numeric = "numeric"
    boolean = "boolean"
    date = "date"
    timestamptz = "timestamptz"
    jsonb = "jsonb"
    enum = "enum"
    reference = "reference"


class DefaultExpression(StrEnum):
    """A computed default; only these, since free SQL in a design file is an injection path.
    now: now(), the current moment (timestamptz, date); current_date: today (date, timestamptz);
    gen_random_uuid: a random UUID (uuid); auth_uid: auth.uid(), the signed-in user (uuid, reference to auth.users;
    where clients write, only with server_set: else a client could name anyone);
    empty_object: '{}' (jsonb); empty_array: '[]' (jsonb)."""

    now = "now"
    current_date = "current_date"
    gen_random_uuid = "gen_random_uuid"
    auth_uid = "auth_uid"
    empty_object = "empty_object"
    empty_array = "empty_array"


INTEGER_RANGES = {FieldType.integer: (-2**31, 2**31 - 1), FieldType.bigint: (-2**63, 2**63 - 1)}

# The field types each expression yields a value of (auth_uid also fits a reference to auth.users).
EXPRESSION_TYPES = {
    DefaultExpression.now: (FieldType.timestamptz, FieldType.date),
    DefaultExpression.current_date: (FieldType.date, FieldType.timestamptz),
    DefaultExpression.gen_random_uuid: (FieldType.uuid,),
    DefaultExpression.auth_uid: (FieldType.uuid,),
    DefaultExpression.empty_object: (FieldType.jsonb,),
    DefaultExpression.empty_array: (FieldType.jsonb,),
}


class Check(Model):
    """A structured CHECK constraint (bounds and lengths), never free SQL."""

    min: float | None = PField(None, allow_inf_nan=False,
                               description="Least value allowed, inclusive (integer, bigint, numeric), e.g. 0.")
    max: float | None = PField(None, allow_inf_nan=False,
                               description="Greatest value allowed, inclusive (integer, bigint, numeric), e.g. 5.")
    min_length: int | None = PField(None, ge=0, description="Fewest characters, inclusive (text), e.g. 1: not empty.")
    max_length: int | None = PField(None, ge=1, description="Most characters, inclusive (text), e.g. 200.")

    @model_validator(mode="after")
    def _consistent(self) -> "Check":
        if self.min is not None and self.max is not None and self.min > self.max:
            raise Invalid(f"check: min ({self.min}) is greater than max ({self.max})", "swap them")
        if self.min_length is not None and self.max_length is not None and self.min_length > self.max_length:
            raise Invalid("check: min_length is greater than max_length", "swap them")
        if all(v is None for v in (self.min, self.max, self.min_length, self.max_length)):
            raise Invalid("check: an empty check", "give at least one of min, max, min_length, max_length, "
                          "or remove check")
        return self


OnDelete = Literal["cascade", "restrict", "set null"]


class Field(Model):
    """One column of an entity."""

    name: Ident = PField(description="Column name, snake case (e.g. due_on); not a generated column such as id.")
    type: FieldType = PField(description="The column's type (values in FieldType), e.g. text.")
    description: Text = PField("", max_length=DESCRIPTION_CHARS,
                               description="What the column holds; becomes its SQL comment.")
    values: list[EnumValue] | None = PField(None, max_length=ENUM_VALUES, description="Allowed values, for type enum.")
    references: str | None = PField(
        None, max_length=IDENT_BYTES,
        description="For type reference: an entity name; 'auth.users' (any user); or 'organization_members' "
                    "(a user who is a member of the row's organisation, e.g. an assignee).")
    member_roles: list[Ident] | None = PField(
        None, min_length=1, max_length=ROLES,
        description="With references 'organization_members': the member must hold one of these roles (checked on "
                    "insert and update).")
    on_delete: OnDelete | None = PField(
        None, description="What deleting the referenced row (a user: their account; a member: their membership) "
                          "does to this row. cascade: deletes it too (this row is part of that one: a comment of a "
                          "task); restrict: refuses the deletion while this row points at it; set null: clears "
                          "this column (nullable only). Default: set null when nullable, restrict when NOT NULL.")
    nullable: bool = PField(True, description="May be null (default true). false: NOT NULL, so an insert gives it "
                                              "unless it has a default; a reference then restricts deletes.")
    default: str | int | float | bool | None = PField(None, description="A literal default value.")
    default_expression: DefaultExpression | None = PField(None, description=(
        "A computed default instead of `default` (values in DefaultExpression), e.g. now for a timestamptz."))
    unique: bool = PField(False, description="Unique inside the organisation for tenant entities; NULLs are distinct "
                                             "(any number of rows may leave a nullable field empty).")
    check: Check | None = PField(None, description=(
        "A CHECK on the value (a null passes): min/max for integer, bigint, numeric; min_length/max_length for text."))
    server_set: bool = PField(False, description=(
        "Only the server writes it: clients may neither send it on insert nor change it (the default fills it; "
        "the service role may set it). For a time a client could backdate, e.g. checked_at with now. On an entity "
        "with a server_set field, clients set its references to other entities on insert only (they may clear "
        "one): moving the row to another parent would carry the server's values to a row they were not set for."))
    movable: bool = PField(False, description=(
        "For a reference to another entity on an entity with server_set fields: clients may point it at another "
        "row after insert (moving a ticket stamped opened_at to another project is part of the design)."))
    pii: bool = PField(False, description=(
        "Personal data: kept out of analytics and audit payloads, and (on organization and service entities) "
        "moved to the entity's private side table <entity>_private, readable only as the entity's pii_read says."))

    @model_validator(mode="after")
    def _type_rules(self) -> "Field":
        if self.type is FieldType.enum:
            if not self.values:
                raise Invalid(f"field '{self.name}': type enum needs values",
                              "add 'values', a non-empty list of identifiers (e.g. [draft, published])")
            if len(set(self.values)) != len(self.values):
                raise Invalid(f"field '{self.name}': enum values repeat", "list each value once")
        elif self.values is not None:
            raise Invalid(f"field '{self.name}': 'values' only applies to type enum",
                          "remove 'values' or use type enum")
        if self.type is FieldType.reference:
            if not self.references:
                raise Invalid(f"field '{self.name}': type reference needs 'references'",
                              "set references to an entity name or 'auth.users'")
        elif self.references is not None or self.on_delete is not None:
            raise Invalid(f"field '{self.name}': 'references'/'on_delete' only apply to type reference",
                          "remove them or use type reference")
        if self.member_roles is not None and self.references != MEMBERS:
            raise Invalid(f"field '{self.name}': member_roles only applies to a member reference",
                          f"set references: {MEMBERS} or remove member_roles")
        if self.default is not None and self.default_expression is not None:
            raise Invalid(f"field '{self.name}': both 'default' and 'default_expression' are given",
                          "keep only one of them")
        if self.on_delete == "set null" and not self.nullable:
            raise Invalid(f"field '{self.name}': on_delete 'set null' needs a nullable column",
                          "set nullable: true or use on_delete cascade/restrict")
        if self.check is not None:
            numeric = self.type in (FieldType.integer, FieldType.bigint, FieldType.numeric)
            if (self.check.min is not None or self.check.max is not None) and not numeric:
                raise Invalid(f"field '{self.name}': check min/max needs a numeric type",
                              "use type integer, bigint or numeric, or min_length/max_length for text")
            if self.type in INTEGER_RANGES:
                lo, hi = INTEGER_RANGES[self.type]
                lo = max(lo, math.ceil(self.check.min)) if self.check.min is not None else lo
                hi = min(hi, math.floor(self.check.max)) if self.check.max is not None else hi
                if lo > hi:
                    raise ValueError(f"field '{self.name}': no {self.type.value} lies between check min "
                                     f"{self.check.min} and max {self.check.max}")
            if (self.check.min_length is not None or self.check.max_length is not None) and self.type is not FieldType.text:
                raise Invalid(f"field '{self.name}': check min_length/max_length needs type text",
                              "use type text, or min/max for numbers")
        self._check_default()
        self._check_default_expression()
        if self.movable and (self.type is not FieldType.reference or self.references in (AUTH_USERS, MEMBERS)):
            raise Invalid(f"field '{self.name}': movable only applies to a reference to another entity",
                          "remove movable (a user or member reference is not a row the entity is filed under)")
        if self.movable and self.server_set:
            raise Invalid(f"field '{self.name}': movable and server_set: no client writes a server_set field, so "
                          "none moves the row through it", "remove movable, or server_set if clients choose it")
        if self.server_set and not self.nullable and self.default is None and self.default_expression is None:
            raise Invalid(f"field '{self.name}': server_set and nullable: false without a default: a client's "
                          "insert could never fill it", "give it a default or default_expression (e.g. now), or "
                          "make it nullable")
        return self

    def _check_default_expression(self) -> None:
        expr = self.default_expression
        if expr is None:
            return
        fits = self.type in EXPRESSION_TYPES[expr] or (
            expr is DefaultExpression.auth_uid and self.type is FieldType.reference and self.references == AUTH_USERS)
        if not fits:
            types = [t.value for t in EXPRESSION_TYPES[expr]]
            if expr is DefaultExpression.auth_uid:
                types.append("reference to auth.users")
            raise ValueError(f"field '{self.name}': default_expression {expr.value} does not fit type "
                             f"{self.type.value} (it fits {', '.join(types)})")

    def _check_default(self) -> None:
        d, t = self.default, self.type
        if d is None:
            return
        if isinstance(d, str) and len(d) > DEFAULT_CHARS:
            raise Invalid(f"field '{self.name}': default is too long: {len(d):,} characters "
                          f"(at most {DEFAULT_CHARS:,})", "shorten it")
        ok = {
            FieldType.boolean: isinstance(d, bool),
            FieldType.integer: _is_int(d) and -(2**31) <= d < 2**31,
            FieldType.bigint: _is_int(d) and -(2**63) <= d < 2**63,
            FieldType.numeric: (_is_int(d) or isinstance(d, float)) and math.isfinite(d),
            FieldType.text: isinstance(d, str),
            FieldType.enum: isinstance(d, str) and d in (self.values or []),
            FieldType.date: isinstance(d, str),
            FieldType.timestamptz: isinstance(d, str),
        }.get(t, False)
        if not ok:
            raise Invalid(f"field '{self.name}': default {preview(d)} does not fit type {t.value}",
                          f"use one of {one_of(self.values or [])}" if t is FieldType.enum
                          else f"give a {t.value} value in range, or remove the default")
        problem = self._default_problem(d)
        if problem:
            raise Invalid(f"field '{self.name}': default {preview(d)} {problem}", "give a default the field accepts, or remove it")

    def _default_problem(self, d: object) -> str | None:
        """Why a literal default of the right Python type would still be refused by PostgreSQL."""
        t, check = self.type, self.check
        if isinstance(d, str):
            if problem := text_problem(d):
                return problem
            parse = {FieldType.date: date.fromisoformat, FieldType.timestamptz: datetime.fromisoformat}.get(t)
            if parse is not None:
                try:
                    parse(d)
                except ValueError:
                    return f"is not an ISO 8601 {'date (2024-01-31)' if t is FieldType.date else 'timestamp'}"
            if check and not (check.min_length or 0) <= len(d) <= (check.max_length or len(d)):
                return "breaks the field's own length check"
        elif isinstance(d, (int, float)) and not isinstance(d, bool):
            if not math.isfinite(d):
                return "is not a finite number"
            lo, hi = INTEGER_RANGES.get(t, (None, None))
            if lo is not None and not lo <= d <= hi:
                return f"is outside the range of {t.value}"
            if check and not ((check.min is None or d >= check.min) and (check.max is None or d <= check.max)):
                return "breaks the field's own min/max check"
        return None

    @property
    def is_reference(self) -> bool:
        return self.type is FieldType.reference

    @property
    def references_auth_users(self) -> bool:
        return self.references == AUTH_USERS

    @property
    def references_member(self) -> bool:
        return self.references == MEMBERS

    @property
    def is_user_column(self) -> bool:
        """Holds a user id: a reference to auth.users or to a member."""
        return self.references in (AUTH_USERS, MEMBERS)

    @property
    def effective_on_delete(self) -> str:
        if self.on_delete:
            return self.on_delete
        return "set null" if self.nullable else "restrict"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


Columns = Annotated[list[Ident], PField(max_length=COLUMNS_PER_PATTERN)]


class Scope(StrEnum):
    """Who sees a row: the heart of the RLS each entity gets.
    organization: shared inside the organisation, access decides who does what;
    user: private to its author inside the organisation;
    global: reference data, no organisation: every signed-in user reads, only the service role writes;
    service: members read, only the service role writes (e.g. computed rows)."""

    organization = "organization"
    user = "user"
    global_ = "global"
    service = "service"


_GRANT_HELP = ("Who may {cmd}: omit for the default (the least role holding {cap}); a role name for that role "
               "and every more privileged one; or a list of grants, combined by OR (e.g. "
               "[{{roles: [dentist], assigned: dentist_id}}, {{capability: view_all_notes}}]); [] for nobody "
               "but the service role. See docs/access.md.")


class Access(Model):
    """Who may run each command. Default: the least role with the capability the command needs."""

    select: GrantSpec = PField(None, description=_GRANT_HELP.format(cmd="read rows", cap="read"))
    insert: GrantSpec = PField(None, description=_GRANT_HELP.format(cmd="insert rows", cap="write"))
    update: GrantSpec = PField(None, description=_GRANT_HELP.format(cmd="update rows", cap="write"))
    delete: GrantSpec = PField(None, description=_GRANT_HELP.format(cmd="delete rows", cap="write"))
    own_rows_only: bool = PField(
        False, description="Update and delete only rows whose owner column is you, from the command's minimum role "
                           "up; anyone's rows only at or above both that role and the least role that manages "
                           "members (a manager below the command's role gets nothing). Needs an owner column. "
                           "Applies to role-name shorthands only.")

    def spec(self, command: str) -> GrantSpec:
        return getattr(self, command)


class Comparison(Model):
    """A CHECK between two columns of the same entity, e.g. ends_at > starts_at (rows with a null pass)."""

    column: Ident = PField(description="The left column (e.g. ends_at).")
    op: Literal["lt", "le", "gt", "ge", "ne"] = PField(
        description="lt: <; le: <=; gt: >; ge: >=; ne: <> (ends_at gt starts_at: ends after it starts).")
    other: Ident = PField(description="The right column, of a comparable type (e.g. starts_at).")


class Requirement(Model):
    """Optional fields a row must fill, or leave empty, while one of its columns holds given values: a review
    carries a rating, a shop's reply none. A CHECK; a row whose column is empty is held to nothing."""

    when: Match = PField(description="The column and value(s) the rule holds for (e.g. {column: kind, equals: reply}).")
    filled: list[Ident] = PField(default_factory=list, max_length=20,
                                 description="Optional fields that must then hold a value (e.g. [rating]).")
    empty: list[Ident] = PField(default_factory=list, max_length=20,
                                description="Optional fields that must then be empty (e.g. [rating]).")


class Transition(Model):
    """The moves a client may make on a state column (an enum): from each value, the values it may become next.
    A value with no entry is final. Unchanged values always pass; the service role and the database's own
    functions are not bound (checkout, a webhook or a job moves rows as it must)."""

    column: Ident = PField(description="A non-null enum field of the entity (e.g. status).")
    initial: list[EnumValue] = PField(default_factory=list, max_length=ENUM_VALUES, description=(
        "Values a client may insert a row with (e.g. [preparing]); empty: any. Must include the field's default."))
    moves: dict[EnumValue, list[EnumValue]] = PField(max_length=ENUM_VALUES, description=(
        "From each value, the values a client may move it to, e.g. {preparing: [shipped], shipped: [delivered, "
        "returned]}; a value with no entry is final."))

    @property
    def listed(self) -> str:
        """The moves in words: `preparing -> shipped; shipped -> delivered, returned` (none: `none`)."""
        return "; ".join(f"{state} -> {', '.join(to)}" for state, to in self.moves.items() if to) or "none"


class Exclusion(Model):
    """No two rows with equal keys may have overlapping ranges (e.g. no double booking of a dentist)."""

    keys: list[Ident] = PField(default_factory=list, max_length=8,
                               description="Columns that must be equal for rows to clash (e.g. [dentist_id]); "
                                           "the organisation is always one of them.")
    range: tuple[Ident, Ident] = PField(description="Start and end columns of the same type (timestamptz, date, "
                                                    "integer or numeric); the range includes start, excludes end.")


class Entity(Model):
    """A domain table."""

    name: Ident = PField(description="Table name in public, plural snake case (e.g. habits).")
    description: Text = PField("", max_length=DESCRIPTION_CHARS, description=(
        "What a row is (e.g. A habit a user tracks.); becomes the table's SQL comment."))
    scope: Scope = PField(Scope.organization, description="Who sees the rows (values in Scope); default organization.")
    owner_column: Ident | None = PField(
        "created_by", description="Column holding the creating user (auth.uid()); null for none."
    )
    soft_delete: bool = PField(False, description=(
        "Deleting archives instead: a client's DELETE sets archived_at, archived rows are hidden from everyone "
        "but those who may restore them (restore), who bring them back with restore_<entity>(id). The service "
        "role still deletes for good."))
    restore: GrantSpec = PField(None, description=(
        "With soft_delete: who sees archived rows and restores them; a role name (that role and above) or member "
        "grants (min_role, roles, capability, optionally own). Default: whoever may delete the row."))
    fields: list[Field] = PField(default_factory=list, max_length=FIELDS_PER_ENTITY, description=(
        "The table's columns, without the generated ones: id, organization_id (all but global), the owner column, "
        "archived_at (soft_delete), created_at, updated_at."))
    query_patterns: list[Columns] = PField(
        default_factory=list, max_length=PATTERNS_PER_ENTITY,
        description="Column lists queried together; each becomes an index.",
    )
    unique_together: list[Columns] = PField(
        default_factory=list, max_length=PATTERNS_PER_ENTITY,
        description="Column sets unique together (inside the organisation for tenant entities). NULLs are "
                    "distinct: a row with an empty optional column never conflicts; make the column non-null "
                    "to forbid that.",
    )
    access: Access = PField(default_factory=Access)
    checks: list[Comparison] = PField(default_factory=list, max_length=20,
                                      description="Cross-column checks, e.g. {column: ends_at, op: gt, other: starts_at}.")
    requires: list[Requirement] = PField(
        default_factory=list, max_length=20,
        description="Fields filled or left empty by kind of row, e.g. {when: {column: kind, equals: reply}, "
                    "empty: [rating]}.")
    transitions: list[Transition] = PField(
        default_factory=list, max_length=5,
        description="Allowed moves of a state column for clients, e.g. {column: status, initial: [preparing], "
                    "moves: {preparing: [shipped], shipped: [delivered]}}; a shipped parcel cannot go back to "
                    "preparing to be deleted.")
    exclusions: list[Exclusion] = PField(
        default_factory=list, max_length=5,
        description="No overlapping ranges per key, e.g. {keys: [dentist_id], range: [starts_at, ends_at]} (btree_gist).")
    events: bool = PField(True, description="Derive <entity>_created/_updated/_deleted analytics events.")
    pii_read: GrantSpec = PField(None, description=(
        "Who reads this entity's pii fields (kept in <entity>_private, one row per row): a role name (that role "
        "and above) or grants as in access (own, linked, min_role, roles, capability; no where, public or "
        "signed_in). Default: the row's author and the users its select grants link to (a portal user's own "
        "data); members with another grant see the row without its personal data."))
    private_of: Ident | None = PField(None, description=(
        "Set by the blueprint, not by hand: this entity holds the pii fields of the named entity (its first field "
        "references it, one row each) and its access derives from that entity's pii_read and grants."))

    @property
    def is_tenant(self) -> bool:
        return self.scope is not Scope.global_

    @property
    def client_writable(self) -> bool:
        return self.scope in (Scope.organization, Scope.user)

    def clients_run(self, command: str) -> bool:
        """Whether the design lets some client run `command` on its rows, read as written (before roles
        resolve): select always; a write unless the scope or an empty grant list leaves it to the service role."""
        return command == "select" or (self.client_writable and self.access.spec(command) != [])

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def singular(self) -> str:
        n = self.name
        for plural, single in (("ies", "y"), ("sses", "ss"), ("ches", "ch"), ("shes", "sh"), ("xes", "x")):
            if n.endswith(plural):
                return n[: -len(plural)] + single
        return n[:-1] if n.endswith("s") and not n.endswith("ss") else n
