"""A Mermaid ER diagram of the physical schema: every table with its columns, every foreign key as a relationship."""

from __future__ import annotations

import re

from ..model.schema import Schema, Table

ORG = "organization_id"


def _entity(schema_name: str, name: str) -> str:
    # Quoted names keep dots ("auth.users") and never meet a Mermaid keyword; public tables go unqualified.
    return '"' + (name if schema_name == "public" else f"{schema_name}.{name}") + '"'


def _type(sql_type: str) -> str:
    """A column type as a Mermaid attribute word (letters, digits, _ and [] only)."""
    return re.sub(r"[^A-Za-z0-9_\[\]]+", "_", sql_type.replace("public.", "")).strip("_") or "unknown"


def _keys(table: Table, column: str) -> str:
    marks = []
    if any(k.kind == "primary key" and column in k.columns for k in table.constraints):
        marks.append("PK")
    if any(column in fk.columns for fk in table.foreign_keys):
        marks.append("FK")
    if any(k.kind == "unique" and k.columns == [column] for k in table.constraints):
        marks.append("UK")
    return (" " + ", ".join(marks)) if marks else ""


def _one_to_one(table: Table, columns: list[str]) -> bool:
    """The referencing columns are unique on their own (a side table, a profile): at most one row each."""
    own = [c for c in columns if c != ORG] or columns
    return any(k.kind in ("unique", "primary key") and set(k.columns) <= set(columns) and set(own) <= set(k.columns)
               for k in table.constraints)


def er_diagram(schema: Schema) -> str:
    """Mermaid `erDiagram` text: tables in declaration order, then their foreign keys (plus the auth.users they name)."""
    lines = ["erDiagram"]
    referenced_auth = sorted({fk.ref_table for t in schema.tables for fk in t.foreign_keys if fk.ref_schema == "auth"})
    for name in referenced_auth:
        lines += [f"  {_entity('auth', name)} {{", "    uuid id PK", "  }"]
    for t in schema.tables:
        lines.append(f"  {_entity(t.schema_name, t.name)} {{")
        lines += [f"    {_type(c.type)} {c.name}{_keys(t, c.name)}" for c in t.columns]
        lines.append("  }")
    for t in schema.tables:
        for fk in t.foreign_keys:
            nullable = any((c := t.column(col)) is not None and c.nullable for col in fk.columns if col != ORG)
            many = "|o" if _one_to_one(t, fk.columns) else "}o"
            label = ", ".join(c for c in fk.columns if c != ORG) or ", ".join(fk.columns)
            lines.append(f"  {_entity(t.schema_name, t.name)} {many}--{'o|' if nullable else '||'} "
                         f"{_entity(fk.ref_schema, fk.ref_table)} : \"{label}\"")
    return "\n".join(lines) + "\n"
