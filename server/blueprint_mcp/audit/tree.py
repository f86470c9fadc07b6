"""Small pure helpers over pgparse's JSON parse trees, shared by the reader and the rules.

A tree node is `{"TypeName": {fields}}`; fields left at their default are omitted by libpg_query.
Walks are iterative: expression trees can nest deeper than Python's recursion limit.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any

import orjson

Node = dict[str, Any]
_DEFAULTS = {"sval": "", "ival": 0, "boolval": False}


def nodes(tree: Any) -> Iterator[tuple[str, Node]]:
    """Every typed node (type name, fields) in `tree`, parents before children: `nodes_in` without marks,
    walked without them (a third of its time: no contexts carried, no mark called per node). Exact type
    tests: a parse tree holds only JSON's dicts and lists, and `type() is` costs less than isinstance."""
    stack: list[Any] = [tree]
    pop, extend = stack.pop, stack.extend
    while stack:
        value = pop()
        kind_of = type(value)
        if kind_of is list:
            extend(reversed(value))
        elif kind_of is dict:
            if len(value) == 1:
                for kind, body in value.items():
                    if type(body) is dict and kind[:1].isupper():
                        yield kind, body
                        value = body
            extend([v for v in reversed(value.values()) if type(v) is dict or type(v) is list])


def nodes_in(tree: Any, mark: Callable[[str, Node], str | None]) -> Iterator[tuple[str, Node, tuple[str, ...]]]:
    """Every typed node with the marks its ancestors set: `mark(kind, fields)` labels a subtree."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(tree, ())]
    while stack:
        value, ctx = stack.pop()
        if isinstance(value, list):
            stack.extend((v, ctx) for v in reversed(value))
        elif isinstance(value, dict):
            if len(value) == 1:
                kind, body = next(iter(value.items()))
                if kind[:1].isupper() and isinstance(body, dict):
                    yield kind, body, ctx
                    label = mark(kind, body)
                    inner = ctx + (label,) if label else ctx
                    stack.extend((v, inner) for k, v in reversed(body.items()) if isinstance(v, dict | list))
                    continue
            stack.extend((v, ctx) for v in reversed(value.values()) if isinstance(v, dict | list))


# id(tree) -> (tree, its index): the reader indexes a policy's trees once and the rules reuse them.
# `forget_indexes` empties it when a new history is read and after an audit; holding the tree keeps
# its id from being reused meanwhile. Trees are not changed once indexed.
_INDEXES: dict[int, tuple[Any, list[tuple[str, Node, tuple[str, ...]]]]] = {}


# (fact, id(tree)) -> (tree, fact): what the reader derives from a tree once, however many policies share it.
_REMEMBERED: dict[tuple[str, int], tuple[Any, Any]] = {}


def forget_indexes() -> None:
    _INDEXES.clear()
    _REMEMBERED.clear()


def remembered(tree: Any, fact: str, compute: Callable[[Any], Any]) -> Any:
    """`compute(tree)`, computed once per tree (trees are not changed once read)."""
    key = (fact, id(tree))
    hit = _REMEMBERED.get(key)
    if hit is None or hit[0] is not tree:
        hit = _REMEMBERED[key] = (tree, compute(tree))
    return hit[1]


def indexed(tree: Any) -> list[tuple[str, Node, tuple[str, ...]]]:
    """Every typed node of `tree` in document order, with the sub-queries around it: a SubLink adds its
    type (EXPR_SUBLINK, ANY_SUBLINK...), a SelectStmt adds "select". One pass, for rules that ask the same
    tree many questions (`nodes_in(tree, mark)` is the general walk)."""
    hit = _INDEXES.get(id(tree))
    if hit is not None and hit[0] is tree:
        return hit[1]
    return index_located(tree)[0]


class _TooDeep(Exception):
    pass


_MAX_RECURSION = 300  # deeper trees take the iterative walk (Python's stack ends near 1,000 frames)


def index_located(tree: Any) -> tuple[list[tuple[str, Node, tuple[str, ...]]], list[Node]]:
    """`indexed(tree)`, computed afresh and kept, and every dict in it with a `location` >= 0 (for
    `shift`): the reader indexes and rebases a policy's trees in one walk. Recursive, a third faster than
    the explicit stack, which remains for trees nested too deeply."""
    out: list[tuple[str, Node, tuple[str, ...]]] = []
    located: list[Node] = []
    try:
        _walk(tree, (), out.append, located.append, 0)
    except _TooDeep:
        out, located = _index_iteratively(tree)
    if isinstance(tree, dict):
        _INDEXES[id(tree)] = (tree, out)
    return out, located


def _walk(value: Any, ctx: tuple[str, ...], keep: Callable, locate: Callable, depth: int) -> None:
    if depth > _MAX_RECURSION:
        raise _TooDeep
    if type(value) is list:
        for v in value:
            if type(v) is dict or type(v) is list:
                _walk(v, ctx, keep, locate, depth + 1)
        return
    if type(value) is not dict:
        return
    if len(value) == 1:
        for kind, body in value.items():
            pass
        if type(body) is dict and kind[:1].isupper():
            keep((kind, body, ctx))
            if kind == "SubLink":
                ctx = ctx + (body.get("subLinkType", "SUBLINK"),)
            elif kind == "SelectStmt":
                ctx = ctx + ("select",)
            value = body
    loc = value.get("location")
    if type(loc) is int and loc >= 0:
        locate(value)
    for v in value.values():
        if type(v) is dict or type(v) is list:
            _walk(v, ctx, keep, locate, depth + 1)


def _index_iteratively(tree: Any) -> tuple[list[tuple[str, Node, tuple[str, ...]]], list[Node]]:
    out: list[tuple[str, Node, tuple[str, ...]]] = []
    located: list[Node] = []
    stack: list[tuple[Any, tuple[str, ...]]] = [(tree, ())]
    pop, push, keep, locate = stack.pop, stack.append, out.append, located.append
    while stack:
        value, ctx = pop()
        if type(value) is list:
            for v in reversed(value):
                push((v, ctx))
            continue
        if type(value) is not dict:
            continue
        inner = ctx
        if len(value) == 1:
            for kind in value:
                body = value[kind]
            if type(body) is dict and kind[:1].isupper():
                keep((kind, body, ctx))
                if kind == "SubLink":
                    inner = ctx + (body.get("subLinkType", "SUBLINK"),)
                elif kind == "SelectStmt":
                    inner = ctx + ("select",)
                value = body
        loc = value.get("location")
        if type(loc) is int and loc >= 0:
            locate(value)
        for v in reversed(list(value.values())):
            if type(v) is dict or type(v) is list:
                push((v, inner))
    return out, located


def shift(located: list[Node], base: int) -> None:
    """`rebase` over the dicts `index_located` found: every `location` minus `base`."""
    for value in located:
        value["location"] -= base


def strings(items: list[Any] | None) -> list[str]:
    """The `sval` of every String node in a name list (other nodes, e.g. A_Star, become "*")."""
    out = []
    for item in items or []:
        s = item.get("String") if isinstance(item, dict) else None
        out.append(s.get("sval", "") if isinstance(s, dict) else "*")
    return out


def dotted(items: list[Any] | None) -> str:
    """A qualified name, with the implicit pg_catalog dropped: ["pg_catalog", "int4"] -> "int4"."""
    parts = strings(items)
    if len(parts) > 1 and parts[0] == "pg_catalog":
        parts = parts[1:]
    return ".".join(parts)


def qualified(rv: Node, default_schema: str) -> str:
    """schema.table of a RangeVar, in `default_schema` where the SQL names none."""
    return f"{rv.get('schemaname') or default_schema}.{rv.get('relname', '')}"


def function_name(call: Node) -> str:
    return dotted(call.get("funcname"))


def const(node: Any) -> Any:
    """The Python value of an A_Const node (None for NULL or anything else)."""
    body = node.get("A_Const") if isinstance(node, dict) else None
    if not isinstance(body, dict):
        return None
    for key in ("sval", "ival", "fval", "boolval", "bsval"):
        if key in body:
            inner = body[key]
            # A default value (0, false, '') is omitted from its wrapper: {"ival": {}}.
            return inner.get(key, _DEFAULTS.get(key)) if isinstance(inner, dict) else inner
    return None


def is_true(tree: Any) -> bool:
    """`true` (also `'true'::boolean`)."""
    if not isinstance(tree, dict):
        return False
    cast = tree.get("TypeCast")
    if isinstance(cast, dict):
        return dotted(cast.get("typeName", {}).get("names")) in ("bool", "boolean") and \
            str(const(cast.get("arg"))).lower() in ("true", "t", "on", "yes", "1")
    body = tree.get("A_Const")
    return isinstance(body, dict) and "boolval" in body and bool(const(tree))


# Where an expression's deparsed text starts (`(a = b)`, `(x)::text`, `(a AND b)`): the node it leads
# with, by the field that PostgreSQL prints first. Anything else starts with a keyword of its own.
_LEADS_WITH = {"TypeCast": "arg", "NullTest": "arg", "BooleanTest": "arg", "CollateClause": "arg",
               "A_Indirection": "arg", "SubLink": "testexpr"}


def leading(expr: Any) -> tuple[str, Node] | None:
    """The innermost node an expression's deparsed text starts with (`auth.jwt() ->> 'sub'` -> the call)."""
    while isinstance(expr, dict) and len(expr) == 1:
        kind, body = next(iter(expr.items()))
        if not isinstance(body, dict):
            return None
        if kind == "A_Expr" and body.get("kind") != "AEXPR_NULLIF":
            step = body.get("lexpr")
        elif kind == "BoolExpr" and body.get("boolop") != "NOT_EXPR":
            step = (body.get("args") or [None])[0]
        else:
            step = body.get(_LEADS_WITH.get(kind, ""))
        if step is None:
            return kind, body
        expr = step
    return None


_LOCATION = re.compile(r',?"location":-?\d+')


_UNIQUE = itertools.count()


def canonical(tree: Any) -> str | None:
    """A tree as text without its `location`s: two spellings of one expression compare equal."""
    if tree is None:
        return None
    try:
        return _LOCATION.sub("", orjson.dumps(tree).decode())
    except orjson.JSONEncodeError:  # nested too deeply to serialise: equal to nothing else (a counter, not
        return f"unique {next(_UNIQUE)}"  # id(): a temporary's id is handed to the next object made)


def column_name(ref: Node) -> str:
    """Last part of a ColumnRef: `h.organization_id` -> "organization_id"."""
    names = strings(ref.get("fields"))
    return names[-1] if names else ""


def row_columns(tree: Any) -> list[str]:
    """Columns of the expression's own row: the ColumnRefs outside any sub-query (a policy's table)."""
    return [name for kind, body, ctx in indexed(tree) if kind == "ColumnRef" and "select" not in ctx
            and (name := column_name(body)) and name != "*"]


def equated_columns(expr: Node) -> list[list[str]] | None:
    """The name parts of each side of an `=` (A_Expr), [] for a side that is no column reference; None for
    anything else: `p.organization_id = organization_id` -> [["p", "organization_id"], ["organization_id"]]."""
    if expr.get("kind") != "AEXPR_OP" or strings(expr.get("name")) != ["="]:
        return None
    return [strings(((side or {}).get("ColumnRef") or {}).get("fields")) for side in (expr.get("lexpr"),
                                                                                     expr.get("rexpr"))]


def statement_relations(kind: str, body: Node) -> list[Node] | None:
    """The RangeVars a statement reads or writes rows of: an UPDATE's or DELETE's relation, a SELECT's FROM items
    that are tables (joins and sub-queries aside); None for other nodes."""
    if kind in ("UpdateStmt", "DeleteStmt"):
        return [body.get("relation") or {}]
    if kind == "SelectStmt":
        return [(item or {}).get("RangeVar") or {} for item in body.get("fromClause") or []]
    return None


def procedure_calls_typed(tree: Any) -> Any:
    """The tree with each CALL's procedure call a typed FuncCall node: libpg_query leaves CallStmt's `funccall` bare,
    so a walk for FuncCall nodes would pass `call private.move_project(new.project_id)` by."""
    def typed(node: Node) -> Any:
        body = node.get("CallStmt")
        call = body.get("funccall") if type(body) is dict else None
        return {"CallStmt": {**body, "funccall": {"FuncCall": call}}} \
            if type(call) is dict and "FuncCall" not in call else None
    return replaced(tree, typed)


def called_functions(tree: Any) -> list[str]:
    """The name of every function and procedure a tree calls, as written (`f(x)`, `call p(x)`)."""
    return [function_name(body if kind == "FuncCall" else body["funccall"]) for kind, body in nodes(tree)
            if kind == "FuncCall" or (kind == "CallStmt" and type(body.get("funccall")) is dict)]


def relations(tree: Any) -> Iterator[Node]:
    """Every RangeVar (table reference) in `tree`."""
    for kind, body in nodes(tree):
        if kind == "RangeVar":
            yield body


def rebase(tree: Any, base: int) -> None:
    """Shift every `location` by -base, in place, so offsets index a slice of the statement."""
    stack = [tree]
    pop, push = stack.pop, stack.append
    while stack:
        value = pop()
        if type(value) is dict:
            for key, v in value.items():
                if type(v) is dict or type(v) is list:
                    push(v)
                elif key == "location" and type(v) is int and v >= 0:
                    value["location"] = v - base
        elif type(value) is list:
            stack.extend(value)


def min_location(tree: Any) -> int | None:
    """The smallest `location` in `tree` (where its text starts), if any node has one."""
    best = None
    stack = [tree]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            loc = value.get("location")
            if isinstance(loc, int) and loc >= 0 and (best is None or loc < best):
                best = loc
            stack.extend(v for v in value.values() if isinstance(v, dict | list))
        elif isinstance(value, list):
            stack.extend(value)
    return best


def replaced(tree: Any, replacement: Callable[[Node], Any]) -> Any:
    """A copy of the tree with each node (a one-key dict) `replacement` gives a value for replaced by that value
    (None: kept, and its children read)."""
    if isinstance(tree, dict):
        if len(tree) == 1:
            (kind, body), = tree.items()
            new = replacement({kind: body})
            if new is not None:
                return new
        return {k: replaced(v, replacement) for k, v in tree.items()}
    if isinstance(tree, list):
        return [replaced(v, replacement) for v in tree]
    return tree


def boolean_args(tree: Any, boolop: str) -> list:
    """The arguments of a top-level AND (AND_EXPR) or OR (OR_EXPR), or the tree alone."""
    body = tree.get("BoolExpr") if isinstance(tree, dict) else None
    return list(body.get("args", [])) if body and body.get("boolop") == boolop else [tree]


def disjuncts(tree: Any, limit: int = 64) -> list[list] | None:
    """The expression as OR-ed conjunctions (each a list of the AND-ed atoms): `a and (b or c)` is [[a, b], [a, c]].
    Anything but AND and OR is an atom (NOT included). None past `limit` conjunctions, which a policy built by hand
    or by a generator never needs (a caller then reads the top-level OR's branches)."""
    body = tree.get("BoolExpr") if isinstance(tree, dict) else None
    op = body.get("boolop") if body else None
    if op == "OR_EXPR":
        out: list[list] = []
        for arg in body.get("args", []):
            part = disjuncts(arg, limit)
            if part is None or len(out) + len(part) > limit:
                return None
            out += part
        return out
    if op == "AND_EXPR":
        out = [[]]
        for arg in body.get("args", []):
            part = disjuncts(arg, limit)
            if part is None or len(out) * len(part) > limit:
                return None
            out = [a + b for a in out for b in part]
        return out
    return [[tree]]
