"""Which columns a query's filter pins to the caller: the reading behind the caller ties of BP050 and BP054.

A filter keeps a relation to the caller's rows when its conjuncts equate a column of it with the caller, directly
or through other columns (`m.user_id = u.id and u.id = auth.uid()`). A disjunction pins a column only when every
branch does: `m.user_id = auth.uid() or m.role = 'owner'` lets every owner's membership through. A row comparison
`(m.organization_id, m.user_id) = (org, auth.uid())` is the equalities of its members. `a is not distinct from b`
equates where one side is never NULL (a NOT NULL column outside an outer join's nullable side): elsewhere NULL
meets NULL, and a caller without auth.uid() matches every row without a user. What counts as the caller is the
classifier's to say (auth.uid(), a helper's parameter or variable).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any

from .tree import strings

CALLER = ("<caller>",)
# What a sub-query naming the caller returns (`in (select organization_id ... where user_id = auth.uid())`): a set of
# values the caller decides, as opposed to the caller themself.
CALLERS_SET = ("<the caller's set>",)
# An operand of an equality as the classifier reads it: a column's key, CALLER, or None (a constant, an
# expression of several columns: neither pins anything).
Classify = Callable[[Any], Hashable | None]
# Whether a key (as the classifier names columns) never holds NULL.
NeverNull = Callable[[Hashable], bool]


def names_the_caller(function: str) -> bool:
    """A function outside pg_catalog (auth.uid(), a helper) or one reading the session: a filter calling it may
    pick the caller's rows; a query calling none cannot know who asks."""
    return "." in function or function in ("current_setting", "current_user", "session_user")


def pinned(filters: Iterable[Any], classify: Classify, given: Iterable[Hashable] = (),
           anchor: Hashable = CALLER, never_null: NeverNull | None = None) -> set[Hashable]:
    """Keys (as `classify` names columns) that the conjunction of `filters` equates with `anchor` (the caller, or
    CALLERS_SET); `given`: keys an enclosing query pins to it already; `never_null`: the keys that hold no NULL
    (IS NOT DISTINCT FROM equates only where one side is such a key; without it, nowhere)."""
    parent: dict[Hashable, Hashable] = {}

    def find(k: Hashable) -> Hashable:
        parent.setdefault(k, k)
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    def union(a: Hashable, b: Hashable) -> None:
        parent[find(a)] = find(b)

    for k in given:
        union(k, anchor)
    for conjunct in _conjuncts(filters):
        pair = _equality(conjunct)
        if pair is not None:
            left, right = classify(pair[0]), classify(pair[1])
            if left is not None and right is not None and \
                    (not pair[2] or (never_null is not None and (never_null(left) or never_null(right)))):
                union(left, right)
        elif _bool(conjunct) == "OR_EXPR":
            branches = [pinned([arg], classify, given, anchor, never_null)
                        for arg in _typed(conjunct)[1].get("args") or []]
            for k in set.intersection(*branches) if branches else ():
                union(k, anchor)
    root = find(anchor)
    return {k for k in list(parent) if k not in (CALLER, CALLERS_SET) and find(k) == root}


# The sides of an outer join whose rows may be missing: there every column reads NULL, whatever the table declares,
# and the relations filter nothing unless the WHERE requires them.
NULLABLE_SIDES = {"JOIN_LEFT": ("rarg",), "JOIN_RIGHT": ("larg",), "JOIN_FULL": ("larg", "rarg")}


def outer_aliases(select: dict) -> set[str]:
    """The names of the relations (and sub-queries) on the nullable side of an outer join in a SELECT's own FROM."""
    out: set[str] = set()
    stack = [(item, False) for item in select.get("fromClause") or []]
    while stack:
        item, nullable = stack.pop()
        kind, body = _typed(item)
        if kind == "JoinExpr":
            sides = NULLABLE_SIDES.get(body.get("jointype"), ())
            stack += [(body.get(side), nullable or side in sides) for side in ("larg", "rarg")]
        elif nullable and kind:
            out.add((body.get("alias") or {}).get("aliasname") or body.get("relname") or "")
    return out


def _typed(value: Any) -> tuple[str, dict]:
    if isinstance(value, dict) and len(value) == 1:
        kind, body = next(iter(value.items()))
        if isinstance(body, dict):
            return kind, body
    return "", {}


def _bool(value: Any) -> str | None:
    kind, body = _typed(value)
    return body.get("boolop") if kind == "BoolExpr" else None


def _conjuncts(filters: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    stack = [f for f in filters if f is not None][::-1]
    while stack:
        value = stack.pop()
        if _bool(value) == "AND_EXPR":
            stack += list(reversed(_typed(value)[1].get("args") or []))
        elif (pairs := _row_equalities(value)) is not None:
            stack += pairs[::-1]
        else:
            out.append(value)
    return out


def _row_equalities(value: Any) -> list[dict] | None:
    """`(a, b) = (x, y)` as its conjuncts `a = x`, `b = y`, and IS NOT DISTINCT FROM alike (PostgreSQL compares
    rows member by member: evasion round 9's fp02, a tie written as one row comparison, read as no tie); None for
    anything else."""
    kind, body = _typed(value)
    if kind != "A_Expr" or body.get("kind", "AEXPR_OP") not in ("AEXPR_OP", "AEXPR_NOT_DISTINCT") or \
            strings(body.get("name")) != ["="]:
        return None
    left, right = (_typed(body.get(side)) for side in ("lexpr", "rexpr"))
    if left[0] != "RowExpr" or right[0] != "RowExpr":
        return None
    lefts, rights = left[1].get("args") or [], right[1].get("args") or []
    if len(lefts) != len(rights):
        return None  # (PostgreSQL refuses rows of different lengths)
    return [{"A_Expr": {**body, "lexpr": a, "rexpr": b}} for a, b in zip(lefts, rights, strict=True)]


def _equality(value: Any) -> tuple[Any, Any, bool] | None:
    """The two sides of `a = b`, and of `a = any (array(select ...))` and `a in (select ...)` (the column's value is
    one the sub-query returns: whom the sub-query answers for, the classifier says), and of `a is not distinct from
    b`, with whether NULL meets NULL (that last one)."""
    kind, body = _typed(value)
    if kind == "A_Expr" and body.get("kind", "AEXPR_OP") in ("AEXPR_OP", "AEXPR_OP_ANY", "AEXPR_NOT_DISTINCT") and \
            strings(body.get("name")) == ["="]:
        return body.get("lexpr"), body.get("rexpr"), body.get("kind") == "AEXPR_NOT_DISTINCT"
    if kind == "SubLink" and body.get("subLinkType") == "ANY_SUBLINK" and strings(body.get("operName")) in (["="], []):
        return body.get("testexpr"), {"SubLink": {**body, "testexpr": None}}, False
    return None


def filters_of(select: dict) -> list[Any]:
    """A SELECT's WHERE and the ON conditions of the joins in its FROM (a USING list read as the equalities it
    stands for, where both sides are tables): what decides which rows it reads."""
    out = [select.get("whereClause")]
    stack = list(select.get("fromClause") or [])
    while stack:
        kind, body = _typed(stack.pop())
        if kind == "JoinExpr":
            out.append(body.get("quals"))
            out += _using_equalities(body)
            stack += [body.get("larg"), body.get("rarg")]
    return [f for f in out if f is not None]


def _using_equalities(join: dict) -> list[dict]:
    """`a join b using (organization_id)` as `a.organization_id = b.organization_id` (review of the fphunt: the
    co-members self-join written with USING read as everyone's memberships)."""
    sides = []
    for side in (join.get("larg"), join.get("rarg")):
        kind, rv = _typed(side)
        if kind != "RangeVar":
            return []
        sides.append((rv.get("alias") or {}).get("aliasname") or rv.get("relname", ""))
    return [{"A_Expr": {"kind": "AEXPR_OP", "name": [{"String": {"sval": "="}}],
                        "lexpr": {"ColumnRef": {"fields": [{"String": {"sval": sides[0]}}, {"String": {"sval": c}}]}},
                        "rexpr": {"ColumnRef": {"fields": [{"String": {"sval": sides[1]}}, {"String": {"sval": c}}]}}}}
            for c in strings(join.get("usingClause"))]


def unwrap(value: Any) -> Any:
    """An operand without the casts around it (`m.user_id::text`, `(auth.jwt() ->> 'sub')::uuid`)."""
    kind, body = _typed(value)
    while kind == "TypeCast":
        value = body.get("arg")
        kind, body = _typed(value)
    return value
