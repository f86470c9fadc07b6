"""Small builders for columns, keys and indexes shared by every table builder."""

from __future__ import annotations

from ..model import Blueprint, Check, DefaultExpression, Entity, Field, FieldType
from ..model.blueprint import GENERATED_TABLES, ROLE_TYPE
from ..model.schema import Column, Constraint, ForeignKey, Index, Table
from .ident import ident, literal, object_name

ORG = "organization_id"

_TYPES = {
    FieldType.uuid: "uuid", FieldType.text: "text", FieldType.integer: "integer", FieldType.bigint: "bigint",
    FieldType.numeric: "numeric", FieldType.boolean: "boolean", FieldType.date: "date",
    FieldType.timestamptz: "timestamptz", FieldType.jsonb: "jsonb", FieldType.reference: "uuid",
}
_EXPRESSIONS = {
    DefaultExpression.now: "now()", DefaultExpression.current_date: "current_date",
    DefaultExpression.gen_random_uuid: "gen_random_uuid()", DefaultExpression.auth_uid: "auth.uid()",
    DefaultExpression.empty_object: "'{}'::jsonb", DefaultExpression.empty_array: "'[]'::jsonb",
}


def id_column() -> Column:
    return Column(name="id", type="uuid", nullable=False, default="gen_random_uuid()")


def timestamps(updated: bool = True) -> list[Column]:
    cols = [Column(name="created_at", type="timestamptz", nullable=False, default="now()")]
    if updated:
        cols.append(Column(name="updated_at", type="timestamptz", nullable=False, default="now()"))
    return cols


def tenant_column() -> Column:
    return Column(name=ORG, type="uuid", nullable=False, comment="Tenant key: immutable, checked by every policy.")


def owner_column(name: str, private: bool = False, erased: bool = False) -> Column:
    """The author. A `user` scope row is private to them and goes with their account (NOT NULL, cascade);
    an organisation's row stays when its author's account is deleted (nullable, set null)."""
    if private:
        return Column(name=name, type="uuid", nullable=False, default="auth.uid()",
                      comment="The owning user; immutable; the row is deleted with their account.")
    if erased:  # personal data only its author reads (model/meaning.erased_with_author)
        return Column(name=name, type="uuid", default="auth.uid()",
                      comment="The creating user; immutable; the row, personal data only they read, is deleted "
                              "with their account.")
    return Column(name=name, type="uuid", default="auth.uid()",
                  comment="The creating user; immutable; null once their account is deleted.")


def enum_type_names(bp: Blueprint) -> dict[tuple[str, str], str]:
    """(entity, field) -> the enum type's name, unique among public types (tables' row types too)."""
    taken = {ROLE_TYPE, *GENERATED_TABLES, *(e.name for e in bp.entities)}
    names = {}
    for e, f in model_uses_enum(bp):
        names[(e.name, f.name)] = name = object_name(e.name, f.name, suffix="enum", taken=taken)
        taken.add(name)
    return names


def field_column(entity: Entity, field: Field, enum_type: str | None = None) -> Column:
    """The column for a declared field (`enum_type` names its type when it is an enum)."""
    sql_type = f"public.{ident(enum_type)}" if field.type is FieldType.enum else _TYPES[field.type]
    default = None
    if field.default_expression is not None:
        default = _EXPRESSIONS[field.default_expression]
    elif field.default is not None:
        default = literal(field.default)
        if field.type in (FieldType.date, FieldType.timestamptz, FieldType.numeric):
            default = f"{default}::{sql_type}"
    server = "Set by the server: clients neither give it on insert nor change it." if field.server_set else ""
    comment = " ".join(x for x in (field.description, _moves(entity, field.name), server) if x)
    return Column(name=field.name, type=sql_type, nullable=field.nullable, default=default,
                  comment=comment, pii=field.pii)


def _moves(entity: Entity, column: str) -> str:
    """A state column's rule in words (docs/access.md A28), for its comment."""
    t = next((t for t in entity.transitions if t.column == column), None)
    if t is None:
        return ""
    starts = f"insert as {' or '.join(t.initial)}; " if t.initial else ""
    return f"Clients {starts}moves: {t.listed} (other moves: the service role)."


def check_expression(column: str, check: Check) -> str:
    col = ident(column)
    parts = []
    if check.min is not None:
        parts.append(f"{col} >= {literal(check.min)}")
    if check.max is not None:
        parts.append(f"{col} <= {literal(check.max)}")
    if check.min_length is not None:
        parts.append(f"char_length({col}) >= {literal(check.min_length)}")
    if check.max_length is not None:
        parts.append(f"char_length({col}) <= {literal(check.max_length)}")
    return " and ".join(parts)


def primary_key(table: str) -> Constraint:
    return Constraint(name=object_name(table, suffix="pkey"), kind="primary key", columns=["id"])


def unique(table: str, columns: list[str], nulls_not_distinct: bool = False) -> Constraint:
    return Constraint(name=object_name(table, *columns, suffix="key"), kind="unique", columns=columns,
                      nulls_not_distinct=nulls_not_distinct)


def check(table: str, label: str, expression: str) -> Constraint:
    return Constraint(name=object_name(table, label, suffix="check"), kind="check", expression=expression)


def exclusion(table: str, keys: list[str], span: tuple[str, str], range_type: str,
              where: str | None = None) -> Constraint:
    """No two rows with equal keys and overlapping [start, end) ranges (gist; btree_gist for the keys); with
    `where`, among the rows it holds for only (live rows of a soft-deleted table)."""
    elements = ", ".join(f"{ident(k)} with =" for k in keys)
    body = f"using gist ({elements}, {range_type}({ident(span[0])}, {ident(span[1])}) with &&)" + \
        (f" where ({where})" if where else "")
    return Constraint(name=object_name(table, *keys[1:], span[0], span[1], suffix="excl"), kind="exclude",
                      columns=[*keys, *span], expression=body)


def foreign_key(table: str, columns: list[str], ref: str, ref_columns: list[str], on_delete: str,
                ref_schema: str = "public", set_null_columns: list[str] | None = None) -> ForeignKey:
    # restrict is written `no action`: still refused while referenced, but checked at the end of the
    # statement, so deleting an organisation can cascade through rows that restrict each other.
    on_delete = "no action" if on_delete == "restrict" else on_delete
    return ForeignKey(name=object_name(table, *columns, suffix="fkey"), columns=columns, ref_schema=ref_schema,
                      ref_table=ref, ref_columns=ref_columns, on_delete=on_delete,
                      set_null_columns=set_null_columns or [])


def organization_fk(table: str, column: str = ORG) -> ForeignKey:
    return foreign_key(table, [column], "organizations", ["id"], "cascade")


def auth_user_fk(table: str, column: str, on_delete: str = "cascade") -> ForeignKey:
    return foreign_key(table, [column], "users", ["id"], on_delete, ref_schema="auth")


def index(table: str, columns: list[str], unique_: bool = False, where: str | None = None) -> Index:
    return Index(name=object_name(table, *columns, suffix="idx"), columns=columns, unique=unique_, where=where)


def covered(table: Table, columns: list[str]) -> bool:
    """True when some key or index of `table` starts with exactly these leading columns."""
    lists = [c.columns for c in table.constraints if c.kind in ("primary key", "unique")]
    lists += [i.columns for i in table.indexes if i.where is None]
    return any(lst[: len(columns)] == columns for lst in lists)


def add_index(table: Table, columns: list[str]) -> None:
    """Index `columns` unless an existing key or index already leads with them."""
    if not covered(table, columns):
        table.indexes.append(index(table.name, columns))


def index_foreign_keys(table: Table) -> None:
    """Every FK gets an index leading with its columns (FK checks and cascades otherwise scan)."""
    for fk in table.foreign_keys:
        add_index(table, list(fk.columns))


def model_uses_enum(bp: Blueprint) -> list[tuple[Entity, Field]]:
    return [(e, f) for e in bp.entities for f in e.fields if f.type is FieldType.enum]
