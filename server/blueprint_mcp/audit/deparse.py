"""Short display text for the small expressions the model keeps as strings (types, defaults, index keys).

Policy and check expressions keep their exact source text instead; this covers the rest.
"""

from __future__ import annotations

from typing import Any

from .tree import const, dotted, strings

# libpg_query spells built-in types by their internal names.
_TYPES = {"int2": "smallint", "int4": "integer", "int8": "bigint", "float4": "real", "float8": "double precision",
          "bool": "boolean", "bpchar": "char", "timestamptz": "timestamptz", "timetz": "timetz"}
_SQL_VALUES = {"SVFOP_CURRENT_DATE": "current_date", "SVFOP_CURRENT_TIMESTAMP": "current_timestamp",
               "SVFOP_CURRENT_TIME": "current_time", "SVFOP_LOCALTIMESTAMP": "localtimestamp",
               "SVFOP_CURRENT_USER": "current_user", "SVFOP_CURRENT_ROLE": "current_role",
               "SVFOP_SESSION_USER": "session_user", "SVFOP_USER": "user"}
_MAX_DEPTH = 12


def type_name(node: dict | None) -> str:
    """`varchar(20)[]`, `public.member_role`, `setof uuid` from a TypeName's fields."""
    if not isinstance(node, dict):
        return ""
    name = dotted(node.get("names"))
    name = _TYPES.get(name, name)
    mods = [str(const(m)) for m in node.get("typmods") or []]
    text = name + (f"({', '.join(mods)})" if mods else "") + "[]" * len(node.get("arrayBounds") or [])
    return f"setof {text}" if node.get("setof") else text


def expr_text(tree: Any, depth: int = 0) -> str:
    """A readable rendering of common expression nodes; anything else shows as `...`."""
    if depth > _MAX_DEPTH or not isinstance(tree, dict) or len(tree) != 1:
        return "..."
    kind, body = next(iter(tree.items()))
    if not isinstance(body, dict):
        return "..."
    sub = lambda node: expr_text(node, depth + 1)  # noqa: E731
    if kind == "A_Const":
        value = const(tree)
        if body.get("isnull"):
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and "sval" in body:
            return "'" + value.replace("'", "''") + "'"
        return str(value)
    if kind == "FuncCall":
        args = ", ".join(sub(a) for a in body.get("args") or [])
        return f"{dotted(body.get('funcname'))}({'*' if body.get('agg_star') else args})"
    if kind == "TypeCast":
        return f"{sub(body.get('arg'))}::{type_name(body.get('typeName'))}"
    if kind == "ColumnRef":
        return ".".join(strings(body.get("fields")))
    if kind == "SQLValueFunction":
        return _SQL_VALUES.get(body.get("op", ""), "...")
    if kind == "A_Expr" and body.get("kind") == "AEXPR_OP":
        op = dotted(body.get("name"))
        left = sub(body["lexpr"]) + " " if "lexpr" in body else ""
        return f"{left}{op} {sub(body.get('rexpr'))}"
    if kind == "A_ArrayExpr":
        return f"array[{', '.join(sub(e) for e in body.get('elements') or [])}]"
    return "..."
