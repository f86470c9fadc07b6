"""The columns a query makes (CREATE TABLE AS, SELECT INTO), named as PostgreSQL names them.

PostgreSQL names an unaliased output after what it reads: a column its column's name, a call its
function's, a cast what it casts (or else the type), CASE `case`; anything else `?column?`. `*` and `t.*`
expand to the columns of the relations read, when the audited SQL created them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..model.schema import Column
from .tree import strings

_UNNAMED = "?column?"
_BY_KIND = {"CaseExpr": "case", "A_ArrayExpr": "array", "RowExpr": "row", "CoalesceExpr": "coalesce",
            "GroupingFunc": "grouping"}
_SUBLINKS = {"EXISTS_SUBLINK": "exists", "ARRAY_SUBLINK": "array"}
_MINMAX = {"IS_GREATEST": "greatest", "IS_LEAST": "least"}

Lookup = Callable[[dict], list[Column] | None]  # a RangeVar -> its table's columns, None when unknown


def _name(node: Any) -> str:
    """PostgreSQL's FigureColname, `?column?` when it has none (a cast of one then takes the type's name).
    A loop, not recursion: casts and sub-selects may nest deeper than Python's stack."""
    casts: list[str] = []  # the type names of the casts around the node, outermost first
    name, weak = _UNNAMED, True  # a CASE's name is weak too: a cast around it names the column
    while isinstance(node, dict) and len(node) == 1:
        kind, body = next(iter(node.items()))
        if not isinstance(body, dict):
            break
        if kind == "TypeCast":
            casts.append((strings((body.get("typeName") or {}).get("names")) or [_UNNAMED])[-1])
            node = body.get("arg")
            continue
        if kind in ("CollateClause", "A_Indirection"):
            names = [x["String"]["sval"] for x in body.get("indirection") or [] if "String" in x]
            if names:
                name, weak = names[-1], False
                break
            node = body.get("arg")
            continue
        if kind == "SubLink" and body.get("subLinkType") == "EXPR_SUBLINK":
            targets = (body.get("subselect") or {}).get("SelectStmt", {}).get("targetList") or [{}]
            target = targets[0].get("ResTarget", {})
            if target.get("name"):
                name, weak = target["name"], False
                break
            # A sub-select names the column as its own target does, outer casts aside (PostgreSQL ranks that
            # name strong): (select 1)::text is ?column?, (select 1::int)::text int4.
            casts = []
            node = target.get("val")
            continue
        name, weak = _leaf_name(kind, body), kind == "CaseExpr"
        break
    return casts[0] if casts and (weak or name == _UNNAMED) else name


def _leaf_name(kind: str, body: dict) -> str:
    if kind == "ColumnRef":
        parts = strings(body.get("fields"))
        return parts[-1] if parts else _UNNAMED
    if kind == "FuncCall":
        return (strings(body.get("funcname")) or [_UNNAMED])[-1]
    if kind == "SubLink":
        return _SUBLINKS.get(body.get("subLinkType", ""), _UNNAMED)
    if kind == "MinMaxExpr":
        return _MINMAX.get(body.get("op", ""), _UNNAMED)
    if kind == "A_Expr" and body.get("kind") == "AEXPR_NULLIF":
        return "nullif"
    return _BY_KIND.get(kind, _UNNAMED)


def _sources(select: dict, lookup: Lookup) -> list[tuple[str, list[Column] | None]]:
    """(alias or name, columns) of each relation in FROM, joins flattened in order."""
    out: list[tuple[str, list[Column] | None]] = []
    stack = list(reversed(select.get("fromClause") or []))
    while stack:
        item = stack.pop()
        if "JoinExpr" in item:
            stack += [item["JoinExpr"].get("rarg") or {}, item["JoinExpr"].get("larg") or {}]
        elif "RangeVar" in item:
            rv = item["RangeVar"]
            out.append(((rv.get("alias") or {}).get("aliasname") or rv.get("relname", ""), lookup(rv)))
        else:
            out.append(("", None))  # a sub-query or function in FROM: its columns are not known here
    return out


def query_columns(select: dict, lookup: Lookup, names: list[str] | None = None) -> list[Column] | None:
    """The columns a SelectStmt makes (`names`: CREATE TABLE t (a, b) AS renames the first ones); None when
    a `*` reads a relation the audited SQL did not create."""
    while select.get("op", "SETOP_NONE") != "SETOP_NONE":  # a UNION takes its leftmost SELECT's names
        select = select.get("larg") or {}
    out: list[Column] = []
    for target in select.get("targetList") or []:
        body = target.get("ResTarget", {})
        fields = (body.get("val") or {}).get("ColumnRef", {}).get("fields") or []
        if fields and "A_Star" in fields[-1]:
            qualifier = strings(fields[:-1])[-1:]
            matched = [cols for alias, cols in _sources(select, lookup) if not qualifier or [alias] == qualifier]
            if not matched or any(cols is None for cols in matched):
                return None
            out += [c.model_copy() for cols in matched for c in cols or []]
        else:
            out.append(Column(name=body.get("name") or _name(body.get("val")), type=""))
    for column, name in zip(out, names or [], strict=False):
        column.name = name
    return out
