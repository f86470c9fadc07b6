"""Constant folding: the value of an expression made only of literals, as PostgreSQL would compute it.

Lint 0024 asks whether a policy clause is always true, in any spelling: `true`, `1 = 1`, `true is true`,
`(select true)`, `coalesce(null, true)`, `greatest(false, true)`, `'yes'::boolean`. NULL is a value here
(None), three-valued logic included, so `coalesce(null, true)` folds and `null = null` is NULL, never true.
Anything the folding does not know for certain (a column, a function call, a comparison of values whose
ordering depends on a collation or a type's input rules) makes the whole expression unknown: a real
condition is never taken for a constant.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from .tree import Node, const, dotted, strings

_UNKNOWN: Any = object()  # not a constant the folding knows

_INTEGER = re.compile(r"\s*[+-]?\d+\s*")
_TEXT_TYPES = ("text", "varchar", "name")  # not bpchar: its trailing blanks do not count in a comparison
_INT_TYPES = ("int2", "int4", "int8", "smallint", "integer", "bigint", "int")
_COMPARE = {"=": lambda a, b: a == b, "<>": lambda a, b: a != b, "!=": lambda a, b: a != b}
# Ordering only of numbers (`count(*) >= 0`): text orders by a collation, other types by their input rules.
_ORDER = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
_TESTS = {"IS_TRUE": lambda v: v is True, "IS_NOT_TRUE": lambda v: v is not True,
          "IS_FALSE": lambda v: v is False, "IS_NOT_FALSE": lambda v: v is not False,
          "IS_UNKNOWN": lambda v: v is None, "IS_NOT_UNKNOWN": lambda v: v is not None}
# A scalar sub-select of a constant is that constant only without anything that could drop its one row.
_BARE_SELECT = {"targetList", "limitOption", "op"}


def fold(tree: Any) -> Any:
    """The constant value of `tree`; None for NULL or when any part is not a constant the folding knows."""
    value = _fold(tree)
    return None if value is _UNKNOWN else value


def fold_condition(tree: Any) -> Any:
    """`fold` of a clause PostgreSQL reads as a boolean: there a bare string is one (`using ('t')`)."""
    value = _condition(tree)
    return None if value is _UNKNOWN else value


def _condition(tree: Any) -> Any:
    value = _fold(tree)
    if isinstance(tree, dict) and "A_Const" in tree and isinstance(value, str):
        return _parse_bool(value)  # an untyped literal takes the type its place wants
    return value


def _parse_bool(text: str) -> Any:
    """PostgreSQL's boolean input: any case, blanks trimmed, a word or its unambiguous prefix."""
    word = text.strip().lower()
    if word in ("1", "0"):
        return word == "1"
    if len(word) >= 2 and "on".startswith(word) or len(word) >= 2 and "off".startswith(word):
        return word == "on"
    for spelling, value in (("true", True), ("false", False), ("yes", True), ("no", False)):
        if word and spelling.startswith(word):
            return value
    return _UNKNOWN


def _fold(tree: Any) -> Any:
    if not isinstance(tree, dict) or len(tree) != 1:
        return _UNKNOWN
    kind, body = next(iter(tree.items()))
    folder = _FOLDERS.get(kind)
    return folder(body) if folder is not None and isinstance(body, dict) else _UNKNOWN


def _literal(body: Node) -> Any:
    if body.get("isnull"):
        return None
    if "fval" in body:  # `1.0 = 1.00` is true: compare numbers, not their spellings
        try:
            return Decimal(const({"A_Const": body}))
        except (InvalidOperation, TypeError):
            return _UNKNOWN
    value = const({"A_Const": body})
    return _UNKNOWN if value is None else value


def _cast(body: Node) -> Any:
    value = _fold(body.get("arg"))
    if value is _UNKNOWN or value is None:
        return value  # a NULL of any type is NULL
    type_name = body.get("typeName") or {}
    if type_name.get("arrayBounds") or type_name.get("typmods"):
        return _UNKNOWN  # an array, or varchar(2) cutting 'abc' to 'ab'
    target = dotted(type_name.get("names"))
    if target in ("bool", "boolean"):
        if isinstance(value, bool):
            return value
        return _parse_bool(str(value)) if isinstance(value, str | int) else _UNKNOWN
    if target in _TEXT_TYPES:
        return str(value).lower() if isinstance(value, bool) else str(value)
    if target in _INT_TYPES and type(value) is int:
        return value
    if target in _INT_TYPES and isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)  # '1'::int, which PostgreSQL folds while parsing
    return _UNKNOWN  # a date, a uuid, a numeric...: equal values may be spelt differently


def _compare(body: Node) -> Any:
    op = strings(body.get("name"))
    plain = body.get("kind", "AEXPR_OP") == "AEXPR_OP" and op[:-1] in ([], ["pg_catalog"])
    compare = (_COMPARE.get(op[-1]) or _ORDER.get(op[-1])) if plain and op else None
    if compare is None:
        return _UNKNOWN
    rows = [(body.get(side) or {}).get("RowExpr", {}).get("args") for side in ("lexpr", "rexpr")]
    if rows[0] is not None and rows[1] is not None and len(rows[0]) == len(rows[1]):
        # `(a, b) = (c, d)` is `a = c and b = d` (`<>`: or), as PostgreSQL expands it while parsing.
        pairs = [{"A_Expr": {**body, "lexpr": a, "rexpr": b}} for a, b in zip(rows[0], rows[1], strict=True)]
        return _boolean({"boolop": "AND_EXPR" if op[-1] == "=" else "OR_EXPR", "args": pairs})
    left, right = _fold(body.get("lexpr")), _fold(body.get("rexpr"))
    if left is _UNKNOWN or right is _UNKNOWN:
        return _UNKNOWN
    if left is None or right is None:
        return None  # a strict operator on NULL
    if op[-1] in _ORDER and type(left) not in (int, Decimal):
        return _UNKNOWN
    return compare(left, right) if type(left) is type(right) else _UNKNOWN


def _boolean(body: Node) -> Any:
    """AND / OR / NOT in three-valued logic: one false decides an AND, one true an OR, whatever the rest."""
    values = [_condition(a) for a in body.get("args") or []]
    if not values or any(v is not _UNKNOWN and v is not None and not isinstance(v, bool) for v in values):
        return _UNKNOWN
    op = body.get("boolop")
    if op == "NOT_EXPR":
        return values[0] if values[0] is _UNKNOWN or values[0] is None else not values[0]
    decisive = op == "OR_EXPR"  # the value that decides: true for OR, false for AND
    if decisive in values:
        return decisive
    if _UNKNOWN in values:
        return _UNKNOWN
    return None if None in values else not decisive


def _boolean_test(body: Node) -> Any:
    value, test = _condition(body.get("arg")), _TESTS.get(body.get("booltesttype", ""))
    if test is None or value is _UNKNOWN or (value is not None and not isinstance(value, bool)):
        return _UNKNOWN  # `1 is true` is a type error, not a test
    return test(value)


def _null_test(body: Node) -> Any:
    value = _fold(body.get("arg"))
    if value is _UNKNOWN:
        return _UNKNOWN
    return (value is None) == (body.get("nulltesttype", "IS_NULL") == "IS_NULL")


def _coalesce(body: Node) -> Any:
    """The first argument that is not NULL; an unknown one before it makes the result unknown."""
    for arg in body.get("args") or []:
        value = _fold(arg)
        if value is not None:
            return value
    return None


def _min_max(body: Node) -> Any:
    """GREATEST / LEAST skip NULLs; only booleans and integers, whose order no collation changes."""
    values = [_fold(a) for a in body.get("args") or []]
    if not values or _UNKNOWN in values:
        return _UNKNOWN
    known = [v for v in values if v is not None]
    if not known:
        return None
    if len({type(v) for v in known}) != 1 or type(known[0]) not in (bool, int):
        return _UNKNOWN
    return max(known) if body.get("op") == "IS_GREATEST" else min(known) if body.get("op") == "IS_LEAST" else _UNKNOWN


def _sub_select(body: Node) -> Any:
    """`(select true)`: a scalar sub-select with no FROM, WHERE, LIMIT... returns its one value."""
    select = (body.get("subselect") or {}).get("SelectStmt")
    if body.get("subLinkType") != "EXPR_SUBLINK" or not isinstance(select, dict) or set(select) - _BARE_SELECT \
            or select.get("op", "SETOP_NONE") != "SETOP_NONE" \
            or select.get("limitOption", "LIMIT_OPTION_DEFAULT") != "LIMIT_OPTION_DEFAULT":
        return _UNKNOWN
    targets = select.get("targetList") or []
    return _fold((targets[0].get("ResTarget") or {}).get("val")) if len(targets) == 1 else _UNKNOWN


def _case(body: Node) -> Any:
    """CASE: the first branch whose test is true; with a test unknown, the result only when every branch that
    could still be taken gives the same value (`case when <anything> then true else true end`)."""
    if body.get("arg") is not None:
        return _UNKNOWN  # `case x when ...` compares values: not read here
    possible: list[Any] = []
    for when in body.get("args") or []:
        branch = when.get("CaseWhen") if isinstance(when, dict) else None
        if not isinstance(branch, dict):
            return _UNKNOWN
        test = _condition(branch.get("expr"))
        if test is _UNKNOWN:
            possible.append(_fold(branch.get("result")))
        elif test is True:
            possible.append(_fold(branch.get("result")))
            break
        elif test is not False and test is not None:
            return _UNKNOWN
    else:
        possible.append(_fold(body.get("defresult")) if body.get("defresult") is not None else None)
    first = possible[0]
    if first is _UNKNOWN or any(v is _UNKNOWN or type(v) is not type(first) or v != first for v in possible):
        return _UNKNOWN
    return first


_FOLDERS: dict[str, Callable[[Node], Any]] = {
    "A_Const": _literal, "TypeCast": _cast, "A_Expr": _compare, "BoolExpr": _boolean,
    "BooleanTest": _boolean_test, "NullTest": _null_test, "CoalesceExpr": _coalesce, "MinMaxExpr": _min_max,
    "SubLink": _sub_select, "CaseExpr": _case,
}
