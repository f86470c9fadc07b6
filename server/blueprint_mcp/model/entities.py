"""Domain entities: typed fields, a tenancy scope, access overrides and query patterns."""

from __future__ import annotations

import math
from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field as PField, model_validator

from .base import Ident, Model, Text, text_problem

AUTH_USERS = "auth.users"


class FieldType(StrEnum):
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
    """The only SQL expressions a default may be: free SQL in a design file is an injection path."""

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

    min: float | None = PField(None, allow_inf_nan=False)
    max: float | None = PField(None, allow_inf_nan=False)
    min_length: int | None = PField(None, ge=0)
    max_length: int | None = PField(None, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> "Check":
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"check: min ({self.min}) is greater than max ({self.max})")
        if self.min_length is not None and self.max_length is not None and self.min_length > self.max_length:
            raise ValueError("check: min_length is greater than max_length")
        if all(v is None for v in (self.min, self.max, self.min_length, self.max_length)):
            raise ValueError("check: give at least one of min, max, min_length, max_length")
        return self


OnDelete = Literal["cascade", "restrict", "set null"]


class Field(Model):
    """One column of an entity."""

    name: Ident
    type: FieldType
    description: Text = ""
    values: list[Ident] | None = PField(None, description="Allowed values, for type enum.")
    references: str | None = PField(None, description="Entity name or 'auth.users', for type reference.")
    on_delete: OnDelete | None = PField(None, description="Default: cascade when NOT NULL, set null otherwise.")
    nullable: bool = True
    default: str | int | float | bool | None = PField(None, description="A literal default value.")
    default_expression: DefaultExpression | None = None
    unique: bool = PField(False, description="Unique inside the organisation for tenant entities; NULLs are distinct "
                                             "(any number of rows may leave a nullable field empty).")
    check: Check | None = None
    pii: bool = PField(False, description="Personal data: kept out of analytics and audit payloads.")

    @model_validator(mode="after")
    def _type_rules(self) -> "Field":
        if self.type is FieldType.enum:
            if not self.values:
                raise ValueError(f"field '{self.name}': type enum needs a non-empty 'values' list")
            if len(set(self.values)) != len(self.values):
                raise ValueError(f"field '{self.name}': enum values repeat; list each once")
        elif self.values is not None:
            raise ValueError(f"field '{self.name}': 'values' only applies to type enum; remove it")
        if self.type is FieldType.reference:
            if not self.references:
                raise ValueError(
                    f"field '{self.name}': type reference needs 'references' (an entity name or 'auth.users')"
                )
        elif self.references is not None or self.on_delete is not None:
            raise ValueError(f"field '{self.name}': 'references'/'on_delete' only apply to type reference")
        if self.default is not None and self.default_expression is not None:
            raise ValueError(f"field '{self.name}': give either 'default' or 'default_expression', not both")
        if self.on_delete == "set null" and not self.nullable:
            raise ValueError(f"field '{self.name}': on_delete 'set null' needs nullable: true")
        if self.check is not None:
            numeric = self.type in (FieldType.integer, FieldType.bigint, FieldType.numeric)
            if (self.check.min is not None or self.check.max is not None) and not numeric:
                raise ValueError(f"field '{self.name}': check min/max needs a numeric type")
            if self.type in INTEGER_RANGES:
                lo, hi = INTEGER_RANGES[self.type]
                lo = max(lo, math.ceil(self.check.min)) if self.check.min is not None else lo
                hi = min(hi, math.floor(self.check.max)) if self.check.max is not None else hi
                if lo > hi:
                    raise ValueError(f"field '{self.name}': no {self.type.value} lies between check min "
                                     f"{self.check.min} and max {self.check.max}")
            if (self.check.min_length is not None or self.check.max_length is not None) and self.type is not FieldType.text:
                raise ValueError(f"field '{self.name}': check min_length/max_length needs type text")
        self._check_default()
        self._check_default_expression()
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
        ok = {
            FieldType.boolean: isinstance(d, bool),
            FieldType.integer: isinstance(d, int) and not isinstance(d, bool),
            FieldType.bigint: isinstance(d, int) and not isinstance(d, bool),
            FieldType.numeric: isinstance(d, (int, float)) and not isinstance(d, bool),
            FieldType.text: isinstance(d, str),
            FieldType.enum: isinstance(d, str) and d in (self.values or []),
            FieldType.date: isinstance(d, str),
            FieldType.timestamptz: isinstance(d, str),
        }.get(t, False)
        if not ok:
            raise ValueError(
                f"field '{self.name}': default {d!r} does not fit type {t.value}"
                + (f" (one of {self.values})" if t is FieldType.enum else "")
            )
        problem = self._default_problem(d)
        if problem:
            raise ValueError(f"field '{self.name}': default {d!r} {problem}")

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
    def effective_on_delete(self) -> str:
        return self.on_delete or ("set null" if self.nullable else "cascade")


class Scope(StrEnum):
    """Who sees a row: the heart of the RLS each entity gets."""

    organization = "organization"  # shared inside the organisation
    user = "user"  # private to its creator inside the organisation
    global_ = "global"  # reference data: signed-in users read, service role writes
    service = "service"  # members read, only the service role writes


class Access(Model):
    """Per-command minimum roles (docs/access.md); default: the least role with the capability (read
    for select, write for the others). The minimum role always applies, and UPDATE and DELETE also
    need the select role, because they only reach rows the caller can see."""

    select: Ident | None = None
    insert: Ident | None = None
    update: Ident | None = None
    delete: Ident | None = None
    own_rows_only: bool = PField(
        False, description="Update and delete only rows whose owner column is you, from the command's minimum role "
                           "up; anyone's rows only at or above both that role and the least role that manages "
                           "members (a manager below the command's role gets nothing). Needs an owner column; "
                           "scope user rows are always the creator's own.")


class Entity(Model):
    """A domain table."""

    name: Ident = PField(description="Table name in public, plural snake case (e.g. habits).")
    description: Text = ""
    scope: Scope = Scope.organization
    owner_column: Ident | None = PField(
        "created_by", description="Column holding the creating user (auth.uid()); null for none."
    )
    soft_delete: bool = PField(False, description="Adds archived_at for soft deletion.")
    fields: list[Field] = PField(default_factory=list)
    query_patterns: list[list[Ident]] = PField(
        default_factory=list, description="Column lists queried together; each becomes an index."
    )
    unique_together: list[list[Ident]] = PField(
        default_factory=list, description="Column sets unique together (inside the organisation for tenant entities). "
                                          "NULLs are distinct: a row with an empty optional column never conflicts; "
                                          "make the column non-null to forbid that.")
    access: Access = PField(default_factory=Access)
    events: bool = PField(True, description="Derive <entity>_created/_updated/_deleted analytics events.")

    @property
    def is_tenant(self) -> bool:
        return self.scope is not Scope.global_

    @property
    def client_writable(self) -> bool:
        return self.scope in (Scope.organization, Scope.user)

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def singular(self) -> str:
        n = self.name
        for plural, single in (("ies", "y"), ("sses", "ss"), ("ches", "ch"), ("shes", "sh"), ("xes", "x")):
            if n.endswith(plural):
                return n[: -len(plural)] + single
        return n[:-1] if n.endswith("s") and not n.endswith("ss") else n
