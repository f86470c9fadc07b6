"""What a caller's token holds, and whether a test of it holds for every caller (BP079).

A test such as `auth.uid() is not null`, `(auth.jwt() ->> 'is_anonymous')::boolean is false` or `auth.jwt() ? 'sub'`
asks whether someone is signed in, not who: every ordinary signed-in user's token passes it, so OR-ed beside a
membership check it opens every organisation's rows (evasion round 16 e16, round 17 e02). Listing such forms misses
the next spelling; instead each test is evaluated over the tokens GoTrue issues (`_TOKENS`): a value is a finite set
of what it may be, or an open set described by what all its members share (never NULL, never empty, 36 characters,
a positive number). The test holds for every caller only when it is true for every token of every role the policy
applies to; anything not known for certain (a custom claim, a pattern on an open value, text ordering) is unknown,
so a narrow test (`is_anonymous is true`, `aal = 'aal2'`, `email like '%@staff.example'`) is never taken for one.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from .deparse import expr_text, type_name
from .fold import _parse_bool
from .tree import const, dotted, function_name, strings


@dataclass(frozen=True)
class Open:
    """An open set of values: `kind` is uuid, text, number, time (a timestamp), object or array; `nonempty` for
    text; `ident` names the one value it is within a request (`auth.uid() = auth.uid()`); `fields` are an object's
    known keys; `clock` places a number or time against the request's clock as a `_Span`: the value is c times the
    clock plus an offset between lo and hi seconds (`now()` is the clock itself, `exp` later than it, `iat` not
    later, `now() + interval '1 minute'` a minute later, `now() - iat` no clock at all, 0 or more)."""
    kind: str
    nonempty: bool = False
    ident: str | None = None
    fields: tuple = field(default=())  # ((key, value), ...) of an object
    clock: Any = None

    def field(self, key: str) -> Any:
        return dict(self.fields).get(key, _ANY)


@dataclass(frozen=True)
class Json:
    """A jsonb scalar (`auth.jwt() -> 'aud'`), apart from the text `->>` gives."""
    value: Any


_ANY: Any = object()  # nothing known: may be absent, NULL or any value


def _obj(**fields) -> Open:
    return Open("object", fields=tuple(fields.items()))


# The tokens of one API role, as GoTrue and the API gateway issue them; each tuple of values gives one token per
# value. `authenticated`: an ordinary (permanent) user who signs in with an e-mail, with or without MFA: anyone can
# become one by signing up, so a test every such token passes keeps no one out. Anonymous sign-ins (is_anonymous
# true) are not counted: a test they fail still admits every permanent user. `anon`: the anon key; of its claims only
# the role is certain (the key's shape changed over the years). PostgREST refuses a token whose `exp` has passed
# before any SQL runs, and GoTrue sets `iat` when it signs the token, so at request time `exp` is later than the clock
# and `iat` is not (evasion round 18 e02: `(auth.jwt() ->> 'exp')::bigint > extract(epoch from now())` is true for
# every accepted token).
@dataclass(frozen=True)
class _Span:
    """A value placed against the request's clock: c * clock + an offset between lo and hi seconds (each end open
    or closed, infinite for none); `whole` when the value is an integer (a claim, a number of seconds)."""
    c: int
    lo: float
    lo_open: bool
    hi: float
    hi_open: bool
    whole: bool = False


_INF = float("inf")
_NOW = _Span(1, 0.0, False, 0.0, False)  # the request's clock itself
_BEFORE = _Span(1, -_INF, True, 0.0, False, True)  # `iat`: not later than the clock
_AFTER = _Span(1, 0.0, True, _INF, True, True)  # `exp`: later than the clock

_TOKENS: dict[str, dict[str, Any]] = {
    "authenticated": {
        "iss": Open("text", True), "sub": Open("uuid", True, "sub"), "aud": "authenticated", "role": "authenticated",
        "exp": Open("number", clock=_AFTER), "iat": Open("number", clock=_BEFORE),
        "email": Open("text", True, "email"),
        "app_metadata": _obj(provider=Open("text", True), providers=Open("array")),
        "user_metadata": Open("object"), "aal": ("aal1", "aal2"),
        "session_id": Open("uuid", True, "session_id"), "is_anonymous": False,
    },
    "anon": {"role": "anon"},
}

_UNKNOWN: Any = object()  # a value of the expression the reading cannot tell

_TYPES_TEXT = ("text", "varchar", "name", "citext")
_TYPES_INT = ("int2", "int4", "int8", "smallint", "integer", "bigint", "int", "numeric", "float8", "float4")
_TYPES_JSON = ("json", "jsonb")
# a timestamp without time zone reads as the clock's wall time in the session's zone, UTC on Supabase (as
# localtimestamp does)
_TYPES_TIME = ("timestamptz", "timestamp")
# time zone names PostgreSQL reads as UTC (timezone(zone, now()) is then the clock's UTC wall time)
_UTC_ZONES = frozenset({"utc", "etc/utc", "uct", "etc/uct", "gmt", "etc/gmt", "gmt0", "etc/gmt0", "gmt+0", "gmt-0",
                        "etc/gmt+0", "etc/gmt-0", "utc0", "z", "zulu", "etc/zulu", "universal", "etc/universal",
                        "greenwich", "etc/greenwich", "+00", "-00", "+00:00", "-00:00", "00:00"})
_CLOCK = Open("time", clock=_NOW)  # the request's clock: now(), current_timestamp, clock_timestamp(), ...
_CLOCK_FUNCTIONS = ("now", "clock_timestamp", "statement_timestamp", "transaction_timestamp")


def every_caller(node: Any, callers: frozenset[str], definer: bool = False) -> list[str] | None:
    """The claims the test `node` reads when it is true for every token of every role in `callers`; else None."""
    if not callers or not all(role in _TOKENS for role in callers):
        return None
    read: set[str] = set()
    for role in sorted(callers):
        spec = _TOKENS[role]
        choices = [(k, v if isinstance(v, tuple) else (v,)) for k, v in spec.items()]
        for picked in product(*(values for _, values in choices)):
            token = _obj(**{k: v for (k, _), v in zip(choices, picked, strict=True)})
            reader = _Reader(token, role, definer)
            if reader.value(node) != frozenset({True}):
                return None
            read |= reader.read
    return sorted(read)


class _Reader:
    """The value of an expression for one token: a frozenset of the values it may take (None: NULL), an `Open`, or
    _UNKNOWN."""

    def __init__(self, token: Open, role: str, definer: bool):
        self.token, self.role, self.definer = token, role, definer
        self.read: set[str] = set()  # the token's claims the expression reads

    def value(self, node: Any, depth: int = 0) -> Any:
        if not isinstance(node, dict) or len(node) != 1 or depth > 24:
            return _UNKNOWN
        kind, body = next(iter(node.items()))
        read = getattr(self, "_" + kind, None)
        return read(body, depth + 1) if read is not None and isinstance(body, dict) else _UNKNOWN

    # --- leaves ------------------------------------------------------------------------------------------------

    def _A_Const(self, body, depth):
        if body.get("isnull"):
            return frozenset({None})
        value = const({"A_Const": body})
        if "fval" in body and isinstance(value, str):
            try:
                value = float(value)  # `60.0` (evasion round 20 e02)
            except ValueError:
                return _UNKNOWN
        return _UNKNOWN if value is None else frozenset({value})

    def _SQLValueFunction(self, body, depth):
        if body.get("op") in ("SVFOP_CURRENT_USER", "SVFOP_CURRENT_ROLE", "SVFOP_USER") and not self.definer:
            self.read.add("role")
            return frozenset({self.role})  # a definer's current_user is its owner
        if body.get("op") in ("SVFOP_CURRENT_TIMESTAMP", "SVFOP_LOCALTIMESTAMP"):
            # localtimestamp is the clock read in the session's time zone, UTC on Supabase (evasion round 20 e02);
            # (session_user is the API's login role, never the request's: left unknown)
            return _CLOCK
        if body.get("op") in ("SVFOP_CURRENT_TIMESTAMP_N", "SVFOP_LOCALTIMESTAMP_N"):
            return Open("time", clock=_Span(1, -0.5, False, 0.5, False))  # rounded to at most a second
        return _UNKNOWN

    def _FuncCall(self, body, depth):
        name, args = function_name(body), body.get("args") or []
        short = name.split(".")[-1]
        if name == "auth.jwt" and not args:
            return self.token
        if name in ("auth.uid", "auth.role", "auth.email") and not args:
            claim = {"auth.uid": "sub", "auth.role": "role", "auth.email": "email"}[name]
            self.read.add(claim)
            return _text(self.token.field(claim))
        if short == "current_setting" and args and name in ("current_setting", "pg_catalog.current_setting"):
            setting = const(args[0])
            if setting == "request.jwt.claims":
                return self.token
            if isinstance(setting, str) and setting.startswith("request.jwt.claim."):
                self.read.add(setting[len("request.jwt.claim."):])
                return _text(self.token.field(setting[len("request.jwt.claim."):]))
            if setting == "role":
                # PostgREST runs `set local role <the token's role>`; a definer does not change the setting, so it
                # is the request's role there too (evasion round 18 e02b: `current_setting('role') = 'authenticated'`)
                self.read.add("role")
                return _text(self.token.field("role"))
            return _UNKNOWN
        values = [self.value(a, depth) for a in args]
        if short in _CLOCK_FUNCTIONS and not values and name in (short, "pg_catalog." + short):
            return _CLOCK
        if short in ("extract", "date_part") and len(values) == 2 and values[0] == frozenset({"epoch"}) and \
                isinstance(values[1], Open) and values[1].kind == "time" and isinstance(values[1].clock, _Span):
            # `extract(epoch from now())`, and of a moved clock (`now() + interval '1 minute'`: evasion round 20 e02)
            return Open("number", clock=values[1].clock)
        if short == "timezone" and name in ("timezone", "pg_catalog.timezone") and len(values) == 2 and \
                isinstance(values[1], Open) and values[1].kind == "time" and isinstance(values[0], frozenset) and \
                len(values[0]) == 1 and str(next(iter(values[0]))).strip().lower() in _UTC_ZONES:
            # `timezone('utc'::text, now())`, `now() at time zone 'utc'`: the clock's UTC wall time, whose epoch is
            # the clock's in any session time zone (evasion round 21 e03)
            return values[1]
        if short in ("num_nonnulls", "num_nulls") and name in (short, "pg_catalog." + short) and values:
            nulls = [v if isinstance(v, frozenset) else frozenset({False}) if isinstance(v, Open) else _UNKNOWN
                     for v in values]
            if any(v is _UNKNOWN for v in nulls):
                return _UNKNOWN
            counts = frozenset(sum(x is None for x in pick) for pick in product(*nulls))
            return counts if short == "num_nulls" else frozenset(len(values) - c for c in counts)
        if short in ("floor", "ceil", "ceiling", "trunc", "round") and len(values) == 1 and \
                isinstance(values[0], Open) and values[0].kind == "number" and isinstance(values[0].clock, _Span):
            return Open("number", clock=_rounded(values[0].clock, short))
        if short == "to_timestamp" and len(values) == 1 and isinstance(values[0], Open) and \
                values[0].kind == "number" and values[0].clock:
            return Open("time", clock=values[0].clock)  # `to_timestamp((auth.jwt() ->> 'exp')::bigint)`
        if short in ("length", "char_length", "character_length") and len(values) == 1:
            return _length(values[0])
        if short in ("lower", "upper") and len(values) == 1 and isinstance(values[0], frozenset) and \
                all(isinstance(v, str) or v is None for v in values[0]):
            return frozenset(v if v is None else getattr(v, short)() for v in values[0])
        if short == "nullif" and len(values) == 2:
            return self._nullif(*values)
        return _UNKNOWN

    def _ColumnRef(self, body, depth):
        return _UNKNOWN

    def _CaseExpr(self, body, depth):
        """The values of the branches a CASE may take: each WHEN in turn, one that may hold adds its result, one
        that surely holds ends the reading, the ELSE (NULL without one) counts when every WHEN may fail
        (`case when auth.uid() is null then false else true end`: evasion round 21 e02)."""
        subject = self.value(body.get("arg"), depth) if body.get("arg") is not None else None
        results = []
        for wrapped in body.get("args") or []:
            when = (wrapped or {}).get("CaseWhen") if isinstance(wrapped, dict) else None
            if not isinstance(when, dict):
                return _UNKNOWN
            test = self.value(when.get("expr"), depth)
            holds = _booleans(test if subject is None else _compare(subject, test, "="))
            if holds is _UNKNOWN or True in holds:
                results.append(self.value(when.get("result"), depth))
            if holds is not _UNKNOWN and holds == frozenset({True}):
                break
        else:
            default = body.get("defresult")
            results.append(self.value(default, depth) if default is not None else frozenset({None}))
        if len(results) == 1:
            return results[0]
        if any(not isinstance(r, frozenset) for r in results):
            return _UNKNOWN
        return frozenset().union(*results)

    # --- structure ---------------------------------------------------------------------------------------------

    def _SubLink(self, body, depth):
        select = (body.get("subselect") or {}).get("SelectStmt") or {}
        targets = select.get("targetList") or []
        if body.get("subLinkType") != "EXPR_SUBLINK" or len(targets) != 1 or \
                set(select) - {"targetList", "limitOption", "op"}:
            return _UNKNOWN
        return self.value((targets[0].get("ResTarget") or {}).get("val"), depth)

    def _TypeCast(self, body, depth):
        value = self.value(body.get("arg"), depth)
        type_name = body.get("typeName") or {}
        if type_name.get("arrayBounds"):
            return _UNKNOWN
        cast = _cast(value, dotted(type_name.get("names")).split(".")[-1])
        if type_name.get("typmods") and isinstance(cast, Open) and cast.kind == "time" and cast.clock:
            c = cast.clock  # `now()::timestamp(0)`: rounded to at most a second
            return Open("time", clock=_Span(c.c, c.lo - 0.5, False, c.hi + 0.5, False))
        return cast

    def _CoalesceExpr(self, body, depth):
        result: set = set()
        for arg in body.get("args") or []:
            value = self.value(arg, depth)
            if isinstance(value, Open) and not result:
                return value  # an open value is never NULL: the rest never stands
            if not isinstance(value, frozenset):
                return _UNKNOWN
            result |= value - {None}
            if None not in value:
                return frozenset(result)
        return frozenset(result | {None})

    def _nullif(self, a, b):
        if isinstance(a, Open) and isinstance(b, frozenset) and all(not _may_equal(a, v) for v in b):
            return a
        if isinstance(a, frozenset) and isinstance(b, frozenset) and len(b) == 1:
            (other,) = b
            return frozenset(None if _equal(v, other) is True else v for v in a)
        return _UNKNOWN

    def _BoolExpr(self, body, depth):
        args = [_booleans(self.value(a, depth)) for a in body.get("args") or []]
        if not args or any(a is _UNKNOWN for a in args):
            if body.get("boolop") == "OR_EXPR" and any(a == frozenset({True}) for a in args):
                return frozenset({True})
            if body.get("boolop") == "AND_EXPR" and any(a == frozenset({False}) for a in args):
                return frozenset({False})
            return _UNKNOWN
        op = body.get("boolop")
        if op == "NOT_EXPR":
            return frozenset(None if v is None else not v for v in args[0])
        combine = _or if op == "OR_EXPR" else _and
        result = args[0]
        for a in args[1:]:
            result = frozenset(combine(x, y) for x in result for y in a)
        return result

    def _BooleanTest(self, body, depth):
        value = _booleans(self.value(body.get("arg"), depth))
        test = {"IS_TRUE": lambda v: v is True, "IS_NOT_TRUE": lambda v: v is not True,
                "IS_FALSE": lambda v: v is False, "IS_NOT_FALSE": lambda v: v is not False,
                "IS_UNKNOWN": lambda v: v is None, "IS_NOT_UNKNOWN": lambda v: v is not None
                }.get(body.get("booltesttype", ""))
        return _UNKNOWN if value is _UNKNOWN or test is None else frozenset(test(v) for v in value)

    def _NullTest(self, body, depth):
        value = self.value(body.get("arg"), depth)
        is_null = body.get("nulltesttype", "IS_NULL") == "IS_NULL"
        if isinstance(value, Open):
            return frozenset({not is_null})
        if isinstance(value, frozenset):
            return frozenset((v is None) == is_null for v in value)
        return _UNKNOWN

    def _A_Expr(self, body, depth):
        op, kind = strings(body.get("name")), body.get("kind", "AEXPR_OP")
        if len(op) != 1 and op[:-1] != ["pg_catalog"]:
            return _UNKNOWN
        op = op[-1]
        left = self.value(body.get("lexpr"), depth)
        if op in ("->", "->>", "#>", "#>>", "?", "?|", "?&"):
            right = self.value(body.get("rexpr"), depth) if op in ("->", "->>", "#>", "#>>", "?") else \
                self._array(body.get("rexpr"), depth)
            if left is self.token and right is not _UNKNOWN:
                self.read |= {str(k).strip("{}").split(",")[0] for k in right}
            return _claim(left, right, op) if op.startswith(("-", "#")) else _has_keys(left, right, op)
        if op in ("@>", "<@") and kind == "AEXPR_OP":
            holder, wanted = (body.get("lexpr"), body.get("rexpr")) if op == "@>" else \
                (body.get("rexpr"), body.get("lexpr"))
            claims = left if op == "@>" else self.value(holder, depth)
            pattern = _json_object(wanted)
            if isinstance(claims, Open) and claims.kind == "object" and pattern is not None:
                # `auth.jwt() @> '{"role": "authenticated"}'`: the claims' test as jsonb containment
                if claims is self.token:
                    self.read |= set(pattern)
                return _contains(claims, pattern)
        if op in ("@>", "<@", "&&") and kind == "AEXPR_OP":
            # `array[auth.role()] <@ '{authenticated,service_role}'`: the role test as array containment
            lefts, rights = self._members(body.get("lexpr"), depth), self._members(body.get("rexpr"), depth)
            if lefts is _UNKNOWN or rights is _UNKNOWN:
                return _UNKNOWN
            if op == "&&":
                return _any([_matched(x, y) for x in lefts for y in rights])
            inner, outer = (lefts, rights) if op == "<@" else (rights, lefts)
            return _all([_any([_matched(x, y) for y in outer]) for x in inner])
        if kind == "AEXPR_IN" or kind in ("AEXPR_OP_ANY", "AEXPR_OP_ALL"):
            items = self._list(body.get("rexpr"), depth)
            if items is _UNKNOWN:
                return _UNKNOWN
            any_of = kind == "AEXPR_OP_ANY" or (kind == "AEXPR_IN" and op == "=")
            tests = [_compare(left, v, op) for v in items]
            return _any(tests) if any_of else _all(tests)
        if kind in ("AEXPR_BETWEEN", "AEXPR_NOT_BETWEEN"):
            bounds = (body.get("rexpr") or {}).get("List", {}).get("items") if isinstance(body.get("rexpr"), dict) \
                else None
            if not bounds or len(bounds) != 2:
                return _UNKNOWN
            low, high = (self.value(b, depth) for b in bounds)
            inside = _both(_compare(left, low, ">="), _compare(left, high, "<="))
            return inside if inside is _UNKNOWN or kind == "AEXPR_BETWEEN" else \
                frozenset(None if v is None else not v for v in inside)
        right = self.value(body.get("rexpr"), depth)
        if kind == "AEXPR_OP" and op in ("+", "-") and body.get("lexpr") is not None:
            return _shifted(left, right, body.get("lexpr"), body.get("rexpr"), op)
        if kind in ("AEXPR_DISTINCT", "AEXPR_NOT_DISTINCT"):
            distinct = _distinct(left, right)
            return distinct if distinct is _UNKNOWN or kind == "AEXPR_DISTINCT" else frozenset(not v for v in distinct)
        if kind in ("AEXPR_OP", "AEXPR_LIKE", "AEXPR_ILIKE"):
            return _compare(left, right, op)
        return _UNKNOWN

    def _list(self, node, depth):
        """The values of an IN list or an `any (array[...])`, each a value of its own."""
        items = (node.get("List") or {}).get("items") if isinstance(node, dict) else None
        if items is None:
            items = self._array(node, depth)
            return _UNKNOWN if items is _UNKNOWN else [frozenset({v}) for v in items]
        return [self.value(i, depth) for i in items]

    def _members(self, node, depth):
        """The value of each element of `array[...]` (any expressions) or of an array constant."""
        inner = node["TypeCast"].get("arg") if isinstance(node, dict) and "TypeCast" in node and \
            (node["TypeCast"].get("typeName") or {}).get("arrayBounds") else node
        elements = (inner.get("A_ArrayExpr") or {}).get("elements") if isinstance(inner, dict) else None
        if elements is not None:
            return [self.value(e, depth) for e in elements]
        items = self._array(node, depth)
        return _UNKNOWN if items is _UNKNOWN else [frozenset({v}) for v in items]

    def _array(self, node, depth):
        """The constant elements of `array[...]` or `'{a,b}'` (cast to an array or not: an array operator's
        untyped operand is read as an array); _UNKNOWN for anything else."""
        element, array_cast = None, True
        if isinstance(node, dict) and "TypeCast" in node:
            type_name = node["TypeCast"].get("typeName") or {}
            element, array_cast = dotted(type_name.get("names")).split(".")[-1], bool(type_name.get("arrayBounds"))
            node = node["TypeCast"].get("arg")
        text = const(node) if isinstance(node, dict) and "A_Const" in node else None
        if isinstance(text, str) and array_cast:
            # `'{authenticated,service_role}'::text[]`, the constant spelling of array[...] (evasion round 21 e01)
            items = _array_literal(text)
            if items is None:
                return _UNKNOWN
            if element in _TYPES_INT:
                cast = [_cast(frozenset({v}), element) for v in items]
                return _UNKNOWN if any(c is _UNKNOWN for c in cast) else [next(iter(c)) for c in cast]
            return items
        elements = (node.get("A_ArrayExpr") or {}).get("elements") if isinstance(node, dict) else None
        if elements is None:
            return _UNKNOWN
        values = [self.value(e, depth) for e in elements]
        if any(not isinstance(v, frozenset) or len(v) != 1 for v in values):
            return _UNKNOWN
        return [next(iter(v)) for v in values]


# --- values ------------------------------------------------------------------------------------------------------

def _array_literal(text: str) -> list[str | None] | None:
    """The elements of a one-dimensional array constant as PostgreSQL reads it (`{a, "b c", NULL}`: blanks around
    an element dropped, double quotes and backslashes escape, an unquoted NULL is NULL); None for anything else
    (nested braces, a `[1:2]=` bound, a malformed text)."""
    text = text.strip()
    if len(text) < 2 or text[0] != "{" or text[-1] != "}":
        return None
    inner, out, i = text[1:-1], [], 0
    if not inner.strip():
        return []
    while True:
        while i < len(inner) and inner[i].isspace():
            i += 1
        chars, quoted, bare_end = [], False, 0  # quoted: a double-quoted or escaped word (never NULL)
        if i < len(inner) and inner[i] == '"':
            quoted, i = True, i + 1
            while i < len(inner) and inner[i] != '"':
                if inner[i] == "\\":
                    i += 1
                if i < len(inner):
                    chars.append(inner[i])
                    i += 1
            if i >= len(inner):
                return None
            i += 1
        else:
            while i < len(inner) and inner[i] != ",":
                if inner[i] in '{}"':
                    return None
                if inner[i] == "\\":
                    i += 1
                    if i >= len(inner):
                        return None
                    chars.append(inner[i])
                    bare_end, quoted = len(chars), True
                else:
                    chars.append(inner[i])
                    if not inner[i].isspace():
                        bare_end = len(chars)
                i += 1
            chars = chars[:bare_end]
        while i < len(inner) and inner[i].isspace():
            i += 1
        word = "".join(chars)
        if not quoted and not word:
            return None
        out.append(None if not quoted and word.lower() == "null" else word)
        if i >= len(inner):
            return out
        if inner[i] != ",":
            return None
        i += 1


def _booleans(value):
    """A boolean value's possibilities; an untyped literal reads as PostgreSQL reads it in a boolean's place."""
    if not isinstance(value, frozenset):
        return _UNKNOWN
    out = set()
    for v in value:
        if isinstance(v, str):
            v = _parse_bool(v)
        if not (v is None or isinstance(v, bool)):
            return _UNKNOWN
        out.add(v)
    return frozenset(out)


def _or(a, b):
    return True if a is True or b is True else None if a is None or b is None else False


def _and(a, b):
    return False if a is False or b is False else None if a is None or b is None else True


def _fold(tests, settles: bool, join):
    """The outcomes of tests joined by OR (`settles` True, `join` _or) or AND (False, _and): one test that settles
    the join settles it, an unknown one leaves it unknown, else every combination of outcomes is joined."""
    if any(t == frozenset({settles}) for t in tests):
        return frozenset({settles})
    if any(t is _UNKNOWN for t in tests):
        return _UNKNOWN
    result = frozenset({not settles})
    for t in tests:
        result = frozenset(join(x, y) for x in result for y in t)
    return result


def _json_object(node) -> dict | None:
    """The object of a json constant (`'{"role": "authenticated"}'`, cast to json or jsonb or not)."""
    if isinstance(node, dict) and "TypeCast" in node:
        target = dotted((node["TypeCast"].get("typeName") or {}).get("names")).split(".")[-1]
        if target not in _TYPES_JSON or (node["TypeCast"].get("typeName") or {}).get("arrayBounds"):
            return None
        node = node["TypeCast"].get("arg")
    text = const(node) if isinstance(node, dict) and "A_Const" in node else None
    try:
        parsed = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _contains(claims: Open, pattern: dict):
    """Whether an object of claims holds every key of `pattern` with its value (jsonb's @> of scalars and nested
    objects); an open claim is known only not to be a value it cannot be, an array is not read."""
    tests = []
    for key, wanted in pattern.items():
        spec = claims.field(key)
        if spec is _ANY:
            tests.append(_UNKNOWN)
        elif isinstance(wanted, dict):
            tests.append(_contains(spec, wanted) if isinstance(spec, Open) and spec.kind == "object" else
                         _UNKNOWN if isinstance(spec, Open) else frozenset({False}))
        elif isinstance(wanted, list):
            tests.append(_UNKNOWN)
        elif isinstance(spec, Open):
            tests.append(_UNKNOWN if spec.kind in ("object", "array") or _may_equal(spec, wanted) or
                         wanted is None else frozenset({False}))
        else:
            tests.append(frozenset({spec == wanted and type(spec) is type(wanted)}))
    return _all(tests)


def _matched(x, y):
    """Whether two array elements are equal as array operators compare them: a NULL element matches nothing."""
    same = _compare(x, y, "=")
    return same if same is _UNKNOWN else frozenset(v is True for v in same)


def _any(tests):
    return _fold(tests, True, _or)


def _all(tests):
    return _fold(tests, False, _and)


def _lift(spec):
    """A token's claim as a value: JSON null is NULL."""
    if spec is _ANY:
        return _UNKNOWN
    if spec is None:
        return frozenset({None})
    return spec if isinstance(spec, Open) else frozenset({Json(spec)})


def _text(spec):
    """A claim as `->>` gives it: the text of a scalar."""
    value = _lift(spec)
    if isinstance(value, Open):
        return value if value.kind in ("uuid", "text", "number") else _UNKNOWN  # an object's text: not read
    if not isinstance(value, frozenset):
        return _UNKNOWN
    return frozenset(_json_text(v) for v in value)


def _json_text(v):
    if not isinstance(v, Json):
        return v
    if isinstance(v.value, bool):
        return "true" if v.value else "false"
    return v.value if isinstance(v.value, str) or v.value is None else json.dumps(v.value)


def _claim(claims, key, op):
    """`claims -> key`, `->>`, and the `#>` / `#>>` path forms of a constant path."""
    if not isinstance(key, frozenset) or len(key) != 1:
        return _UNKNOWN
    (path,) = key
    if op in ("#>", "#>>"):
        if not isinstance(path, str) or not (path.startswith("{") and path.endswith("}")):
            return _UNKNOWN
        steps = [p.strip() for p in path[1:-1].split(",")]
    else:
        steps = [path]
    spec = claims
    for step in steps:
        if not isinstance(spec, Open) or spec.kind != "object" or not isinstance(step, str):
            return _UNKNOWN
        spec = spec.field(step)
    return _text(spec) if op in ("->>", "#>>") else _lift(spec)


def _has_keys(claims, keys, op):
    """`claims ? 'sub'` (a key is there), `?|` (any of them), `?&` (all of them)."""
    if not isinstance(claims, Open) or claims.kind != "object":
        return _UNKNOWN
    if op == "?":
        if not isinstance(keys, frozenset) or len(keys) != 1:
            return _UNKNOWN
        keys = list(keys)
    if keys is _UNKNOWN:
        return _UNKNOWN
    there = []
    for key in keys:
        spec = claims.field(key) if isinstance(key, str) else _ANY
        there.append(_UNKNOWN if spec is _ANY else frozenset({True}))  # (only claims a token carries are known)
    return _any(there) if op in ("?", "?|") else _all(there)


def _length(value):
    if isinstance(value, Open):
        if value.kind == "uuid":
            return frozenset({36})
        return Open("number") if value.kind == "text" and value.nonempty else _UNKNOWN
    if isinstance(value, frozenset) and all(isinstance(v, str) or v is None for v in value):
        return frozenset(v if v is None else len(v) for v in value)
    return _UNKNOWN


def _cast(value, target):
    if value is _UNKNOWN:
        return _UNKNOWN
    if isinstance(value, Open):
        if target in _TYPES_TEXT or target == "uuid" and value.kind == "uuid":
            return value  # the text of a uuid, a number or a text is as open as the value
        if target in _TYPES_INT and value.kind == "number":
            # (a cast of the clock to an integer rounds it by half a second at most; read as the clock, as rounds 18
            # and 19 did: `exp > extract(epoch from now())::bigint` fails a token only in its last half second)
            return value
        if target in _TYPES_JSON and value.kind in ("object", "array"):
            return value  # `current_setting('request.jwt.claims', true)::jsonb`
        if target in _TYPES_TIME and value.kind == "time":
            return value
        return _UNKNOWN
    out = set()
    for v in value:
        if v is None:
            out.add(None)
            continue
        if isinstance(v, Json):
            if target in _TYPES_JSON:
                out.add(v)
                continue
            v = v.value  # `(auth.jwt() -> 'is_anonymous')::boolean`
        if target in ("bool", "boolean"):
            v = v if isinstance(v, bool) else _parse_bool(v) if isinstance(v, str) else _UNKNOWN
        elif target in _TYPES_TEXT:
            v = ("true" if v else "false") if isinstance(v, bool) else v if isinstance(v, str) else \
                str(v) if isinstance(v, int) else _UNKNOWN
        elif target in _TYPES_INT:
            v = v if type(v) is int else int(v) if isinstance(v, str) and re.fullmatch(r"\s*[+-]?\d+\s*", v) \
                else _UNKNOWN
        elif target in _TYPES_JSON:
            v = _json_literal(v)
        else:
            v = _UNKNOWN
        if v is _UNKNOWN:
            return _UNKNOWN
        out.add(v)
    return frozenset(out)


def _json_literal(v):
    if isinstance(v, Json):
        return v
    if not isinstance(v, str):
        return _UNKNOWN
    try:
        parsed = json.loads(v)
    except ValueError:
        return _UNKNOWN
    return Json(parsed) if isinstance(parsed, str | int | bool) or parsed is None else _UNKNOWN


def _equal(a, b):
    """Whether two known values are equal; _UNKNOWN when their types make it a question of PostgreSQL's input."""
    if isinstance(a, Json) or isinstance(b, Json):
        a, b = _json_literal(a), _json_literal(b)
        return _UNKNOWN if a is _UNKNOWN or b is _UNKNOWN else a == b and type(a.value) is type(b.value)
    if isinstance(a, bool) or isinstance(b, bool):
        a, b = (_parse_bool(x) if isinstance(x, str) else x for x in (a, b))
        return a == b if isinstance(a, bool) and isinstance(b, bool) else _UNKNOWN
    if type(a) is type(b):
        return a == b
    if isinstance(a, int) and isinstance(b, str) or isinstance(a, str) and isinstance(b, int):
        number = b if isinstance(b, str) else a
        return (int(number) == (a if isinstance(a, int) else b)) if re.fullmatch(r"\s*[+-]?\d+\s*", number) \
            else _UNKNOWN
    return _UNKNOWN


def _may_equal(open_value: Open, v) -> bool:
    """Whether a member of an open set could be `v`: never NULL, never '' when not empty, 36 characters when a uuid,
    and of the open set's type."""
    if v is None:
        return False
    if isinstance(v, Json):
        return True
    if open_value.kind in ("uuid", "text"):
        if not isinstance(v, str):
            return True
        if v == "" and open_value.nonempty:
            return False
        return not (open_value.kind == "uuid" and not re.fullmatch(r"[0-9a-fA-F-]{32,36}|\{[0-9a-fA-F-]{32,36}\}", v))
    if open_value.kind == "number":
        return not (isinstance(v, int) and not isinstance(v, bool) and v <= 0)
    return True


def _distinct(a, b):
    """IS DISTINCT FROM: NULL is a value like any other."""
    if isinstance(a, frozenset) and isinstance(b, Open):
        a, b = b, a
    if isinstance(a, Open) and isinstance(b, Open):
        return frozenset({False}) if a.ident and a.ident == b.ident else _UNKNOWN
    if isinstance(a, Open) and isinstance(b, frozenset):
        return frozenset({True}) if not any(_may_equal(a, v) for v in b) else _UNKNOWN
    if isinstance(a, frozenset) and isinstance(b, frozenset):
        out = set()
        for x, y in product(a, b):
            same = (x is None and y is None) if x is None or y is None else _equal(x, y)
            if same is _UNKNOWN:
                return _UNKNOWN
            out.add(not same)
        return frozenset(out)
    return _UNKNOWN


_ORDER = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
_PATTERNS = {"~~": (False, False, "like"), "!~~": (True, False, "like"), "~~*": (False, True, "like"),
             "!~~*": (True, True, "like"), "~": (False, False, "re"), "!~": (True, False, "re"),
             "~*": (False, True, "re"), "!~*": (True, True, "re")}


_INTERVAL = re.compile(r"\s*\+?(\d+(?:\.\d*)?)\s*(microseconds?|milliseconds?|ms|seconds?|secs?|s|minutes?|mins?|"
                       r"m|hours?|hrs?|h|days?|d|weeks?|w)?\s*", re.IGNORECASE)
_UNIT_SECONDS = {"mi": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _unit(name: str) -> float:
    name = name.lower()
    return _UNIT_SECONDS["mi" if name.startswith("micro") else "ms" if name.startswith(("milli", "ms")) else
                         "m" if name.startswith("m") else name[0]]


def _interval_span(node) -> _Span | None:
    """The seconds of a plain interval literal (`interval '1 minute'`, `'60 seconds'::interval`); a day is 23 to
    25 hours across a daylight-saving change, so whole days are widened by an hour. None for anything else."""
    cast = node.get("TypeCast") if isinstance(node, dict) else None
    target = dotted(((cast or {}).get("typeName") or {}).get("names")).split(".")[-1] if cast else ""
    text = const(cast.get("arg")) if target == "interval" else None
    match = _INTERVAL.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        return None
    seconds = float(match.group(1)) * _unit(match.group(2) or "s")
    slack = 3600.0 * (1 + seconds // (180 * 86400)) if seconds >= 86400 else 0.0
    return _Span(0, seconds - slack, False, seconds + slack, False)


def _span(value) -> _Span | None:
    """A clocked number or time, or a numeric constant (a span without the clock)."""
    if isinstance(value, Open) and isinstance(value.clock, _Span):
        return value.clock
    if isinstance(value, frozenset) and len(value) == 1 and type(next(iter(value))) in (int, float):
        v = float(next(iter(value)))
        return _Span(0, v, False, v, False, type(next(iter(value))) is int)
    return None


def _sum(a: _Span, b: _Span, sign: int) -> _Span | None:
    """a + b or a - b; None when the clock would count other than once or not at all."""
    c = a.c + sign * b.c
    if c not in (0, 1):
        return None
    if sign == 1:
        return _Span(c, a.lo + b.lo, a.lo_open or b.lo_open, a.hi + b.hi, a.hi_open or b.hi_open, a.whole and b.whole)
    return _Span(c, a.lo - b.hi, a.lo_open or b.hi_open, a.hi - b.lo, a.hi_open or b.lo_open, a.whole and b.whole)


def _rounded(a: _Span, how: str) -> _Span:
    """floor/ceil/trunc/round (or a cast to an integer) of a value: within a second of it, whatever the clock
    reads (evasion round 20 e02: `floor(extract(epoch from now())) + 60`); an integer stays as it is."""
    if a.whole:
        return a
    below, above = {"floor": (1, 0), "ceil": (0, 1), "ceiling": (0, 1), "round": (0.5, 0.5)}.get(how, (1, 1))
    return _Span(a.c, a.lo - below, False, a.hi + above, False, True)


def _shifted(left, right, lnode, rnode, op):
    """`a + k`, `k + a`, `a - k` or `a - b` of clocked values and constant offsets (numbers for numbers, intervals
    for times), still placed against the request's clock (evasion round 19 e07, round 20 e02: `iat - 60`,
    `extract(epoch from now()) - iat`); anything else is unknown."""
    kinds = [v.kind if isinstance(v, Open) and isinstance(v.clock, _Span) else None for v in (left, right)]
    if kinds == [None, None]:
        return _UNKNOWN
    spans = []
    for value, node, kind in ((left, lnode, kinds[0]), (right, rnode, kinds[1])):
        interval = _interval_span(node)
        spans.append((value.clock, kind) if kind else (interval, "interval") if interval else
                     (_span(value), "number"))
    (a, ka), (b, kb) = spans
    if a is None or b is None:
        return _UNKNOWN
    if "time" in (ka, kb):
        if not (ka == "time" and kb == "interval" or ka == "interval" and kb == "time" and op == "+"):
            return _UNKNOWN
        kind = "time"
    elif "interval" in (ka, kb):
        return _UNKNOWN
    else:
        kind = "number"
    total = _sum(a, b, 1 if op == "+" else -1)
    return _UNKNOWN if total is None else Open(kind, clock=total)


def _ordered(a, b, op):
    """`a op b` of two values placed against the clock, decided when their difference holds no clock and keeps to
    one side of 0 (`iat <= now()`, `exp > now()`, `iat - 60 < extract(epoch from now())`); None when neither is
    clocked, _UNKNOWN when undecided."""
    if not (isinstance(a, Open) and isinstance(a.clock, _Span) or isinstance(b, Open) and isinstance(b.clock, _Span)):
        return None
    if isinstance(a, Open) and isinstance(b, Open) and a.kind != b.kind:
        return _UNKNOWN
    x, y = _span(a), _span(b)
    d = _sum(x, y, -1) if x is not None and y is not None else None
    if d is None or d.c != 0:
        return None
    if d.whole:  # a difference of integers (`exp - ceil(<clock>)` above -1 is 0 or more)
        lo, lo_open, hi, hi_open = d.lo, d.lo_open, d.hi, d.hi_open
        if math.isfinite(lo):
            lo, lo_open = (lo + 1 if lo_open and lo == math.floor(lo) else math.ceil(lo)), False
        if math.isfinite(hi):
            hi, hi_open = (hi - 1 if hi_open and hi == math.ceil(hi) else math.floor(hi)), False
        d = _Span(0, lo, lo_open, hi, hi_open, True)
    if op in (">", ">="):
        d, op = _Span(0, -d.hi, d.hi_open, -d.lo, d.lo_open), "<" if op == ">" else "<="
    if op == "<":
        return frozenset({True}) if d.hi < 0 or d.hi == 0 and d.hi_open else \
            frozenset({False}) if d.lo >= 0 else _UNKNOWN
    return frozenset({True}) if d.hi <= 0 else \
        frozenset({False}) if d.lo > 0 or d.lo == 0 and d.lo_open else _UNKNOWN


def _both(a, b):
    """a AND b of two tests."""
    if a is _UNKNOWN or b is _UNKNOWN:
        return frozenset({False}) if frozenset({False}) in (a, b) else _UNKNOWN
    return frozenset(_and(x, y) for x in a for y in b)


def _compare(a, b, op):
    """`a op b` for =, <>, the orderings of numbers, LIKE and regular expressions."""
    if a is _UNKNOWN or b is _UNKNOWN:
        return _UNKNOWN
    if op in ("=", "<>", "!="):
        distinct = _distinct(a, b)
        if distinct is _UNKNOWN:
            return _UNKNOWN
        nulls = isinstance(a, frozenset) and None in a or isinstance(b, frozenset) and None in b
        if nulls:
            if not (isinstance(a, frozenset) and isinstance(b, frozenset)):
                return _UNKNOWN
            return frozenset(None if x is None or y is None else (_equal(x, y) is (op == "="))
                             for x, y in product(a, b))
        return frozenset(v != (op == "=") for v in distinct)
    if op in _ORDER:
        ordered = _ordered(a, b, op)
        if ordered is not None:
            return ordered
        if isinstance(a, Open) and isinstance(a.clock, _Span) and not (a.clock == _BEFORE or a.clock.c == 1 and
                                                                       a.clock.lo > -1e9):
            return _UNKNOWN  # a difference of clocked values (`now() - iat`) may be negative, unlike a claim
        if isinstance(a, Open) and a.kind == "number" and isinstance(b, frozenset):
            # a positive number against a constant below 1 (`(auth.jwt() ->> 'exp')::bigint > 0`)
            low = [v for v in b if type(v) is int]
            if len(low) != len(b) or not all(v < 1 for v in low):
                return _UNKNOWN
            return frozenset({op in (">", ">=")})
        if isinstance(a, frozenset) and isinstance(b, Open) and b.kind == "number":
            return _compare(b, a, {"<": ">", "<=": ">=", ">": "<", ">=": "<="}[op])
        if isinstance(a, frozenset) and isinstance(b, frozenset) and \
                all(type(v) is int or v is None for v in a | b):
            return frozenset(None if x is None or y is None else _ORDER[op](x, y) for x, y in product(a, b))
        return _UNKNOWN
    if op in _PATTERNS:
        negated, folded, how = _PATTERNS[op]
        if not isinstance(b, frozenset) or len(b) != 1 or not isinstance(next(iter(b)), str):
            return _UNKNOWN
        pattern = next(iter(b))
        if isinstance(a, Open):
            # only `like '%'` is known to match every text
            return frozenset({not negated}) if how == "like" and set(pattern) == {"%"} and a.kind != "object" \
                else _UNKNOWN
        if not isinstance(a, frozenset) or not all(isinstance(v, str) or v is None for v in a):
            return _UNKNOWN
        regex = _like_regex(pattern) if how == "like" else pattern
        if regex is None or not re.fullmatch(r"[\w\s^$.*+?|()@-]*", regex if how == "re" else "x"):
            return _UNKNOWN  # a POSIX class or escape Python may read otherwise
        flags = re.IGNORECASE if folded else 0
        match = (lambda v: re.fullmatch(regex, v, flags | re.DOTALL) is not None) if how == "like" else \
            (lambda v: re.search(regex, v, flags) is not None)
        return frozenset(None if v is None else match(v) != negated for v in a)
    return _UNKNOWN


def _like_regex(pattern: str) -> str | None:
    """LIKE's pattern as a regular expression (`%` any run, `_` one character, `\\` escapes)."""
    out, escaped = [], False
    for ch in pattern:
        if escaped:
            out.append(re.escape(ch))
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return None if escaped else "".join(out)


# --- the test as the message shows it -----------------------------------------------------------------------------

_BOOL_TESTS = {"IS_TRUE": "is true", "IS_NOT_TRUE": "is not true", "IS_FALSE": "is false",
               "IS_NOT_FALSE": "is not false", "IS_UNKNOWN": "is unknown", "IS_NOT_UNKNOWN": "is not unknown"}


def test_text(node: Any, depth: int = 0) -> str | None:
    """The SQL of a token test, for a finding's message; None when a part is not one `_Reader` reads."""
    if not isinstance(node, dict) or len(node) != 1 or depth > 12:
        return None
    kind, body = next(iter(node.items()))
    sub = lambda n: test_text(n, depth + 1)  # noqa: E731
    parts: list[str | None]
    if kind in ("A_Const", "FuncCall", "ColumnRef", "SQLValueFunction"):
        args = [sub(a) for a in body.get("args") or []] if kind == "FuncCall" else []
        if None in args:
            return None
        if kind == "FuncCall" and function_name(body).split(".")[-1] == "extract" and len(args) == 2 and \
                body.get("funcformat") == "COERCE_SQL_SYNTAX":
            return f"extract({args[0].strip(chr(39))} from {args[1]})"
        if kind == "FuncCall" and function_name(body).split(".")[-1] == "timezone" and len(args) == 2 and \
                body.get("funcformat") == "COERCE_SQL_SYNTAX":
            return f"{args[1]} at time zone {args[0]}"
        return f"{dotted(body.get('funcname'))}({', '.join(args)})" if kind == "FuncCall" else expr_text(node)
    if kind == "TypeCast":
        inner = sub(body.get("arg"))
        return inner and f"({inner})::{type_name(body.get('typeName'))}"
    if kind == "SubLink" and body.get("subLinkType") == "EXPR_SUBLINK":
        targets = ((body.get("subselect") or {}).get("SelectStmt") or {}).get("targetList") or []
        inner = sub((targets[0].get("ResTarget") or {}).get("val")) if len(targets) == 1 else None
        return inner and f"(select {inner})"
    if kind == "NullTest":
        inner = sub(body.get("arg"))
        return inner and f"{inner} {'is null' if body.get('nulltesttype') == 'IS_NULL' else 'is not null'}"
    if kind == "BooleanTest":
        inner = sub(body.get("arg"))
        return inner and f"{inner} {_BOOL_TESTS.get(body.get('booltesttype', ''), '...')}"
    if kind == "BoolExpr":
        parts = [sub(a) for a in body.get("args") or []]
        if None in parts or not parts:
            return None
        if body.get("boolop") == "NOT_EXPR":
            return f"not {parts[0]}"
        return f" {'or' if body.get('boolop') == 'OR_EXPR' else 'and'} ".join(f"({p})" for p in parts)
    if kind == "CoalesceExpr":
        parts = [sub(a) for a in body.get("args") or []]
        return None if None in parts else f"coalesce({', '.join(parts)})"  # type: ignore[arg-type]
    if kind == "CaseExpr":
        whens = [(w or {}).get("CaseWhen") or {} for w in body.get("args") or []]
        parts = [sub(body["arg"]) if body.get("arg") is not None else ""] + \
            [sub(w.get(k)) for w in whens for k in ("expr", "result")] + \
            [sub(body["defresult"]) if body.get("defresult") is not None else ""]
        if None in parts or not whens:
            return None
        branches = " ".join(f"when {parts[i]} then {parts[i + 1]}" for i in range(1, len(parts) - 1, 2))
        return " ".join(x for x in ("case", parts[0], branches, parts[-1] and f"else {parts[-1]}", "end") if x)
    if kind == "A_ArrayExpr":
        parts = [sub(a) for a in body.get("elements") or []]
        return None if None in parts else f"array[{', '.join(parts)}]"  # type: ignore[arg-type]
    if kind == "A_Expr":
        op = strings(body.get("name"))[-1:] or ["?"]
        left, right = sub(body.get("lexpr")), body.get("rexpr")
        items = (right.get("List") or {}).get("items") if isinstance(right, dict) else None
        right_text = (f"({', '.join(p or '?' for p in map(sub, items))})" if items is not None else sub(right))
        if left is None or right_text is None or "?" in right_text and items is not None and \
                any(sub(i) is None for i in items):
            return None
        how = body.get("kind", "AEXPR_OP")
        word = {"AEXPR_IN": "in" if op == ["="] else "not in", "AEXPR_DISTINCT": "is distinct from",
                "AEXPR_NOT_DISTINCT": "is not distinct from", "AEXPR_LIKE": "like" if op == ["~~"] else "not like",
                "AEXPR_ILIKE": "ilike" if op == ["~~*"] else "not ilike"}.get(how)
        if how in ("AEXPR_OP_ANY", "AEXPR_OP_ALL"):
            return f"{left} {op[0]} {'any' if how == 'AEXPR_OP_ANY' else 'all'} ({right_text})"
        return f"{left} {word or op[0]} {right_text}"
    return None
