"""How a policy matches a text by a prefix or a pattern made from a row's column: an object's path in storage.objects
(BP083) and a channel's topic in realtime.messages (BP072).

A prefix is a tenant's only while it ends with a separator after the part a client writes: `starts_with(name,
o.slug)` holds for `acme-corp/...` when the slug is 'acme' (evasion round 8), and `starts_with(realtime.topic(),
'org:' || o.slug)` for `org:acme:board` when it is 'a' (evasion round 16 e14). The same test is written many ways:
`name like x || '%'`, `name ^@ x`, `name ~ ('^' || x)`, `left(name, length(x)) = x`, `substr(name, 1, length(x)) =
x`, `position(x in name) = 1`, `strpos(name, x) = 1`, `name >= x and name < x || '~'` (evasion round 16 e15).
A pattern made from a column is whoever sets the column's pattern, separator or not: '%' in a LIKE (evasion round 11
e03), '.' or '|' in a regular expression (`name ~ ('^' || o.slug || '/')`, evasion round 16 e10).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pgparse

from ...model.schema import Schema, Table
from ..do_loops import _format_pieces
from ..pins import unwrap
from ..tree import const, function_name, nodes, strings
from .binding import _from_items
from .common import base_type, domain_checks, lone_value
from .wildcards import WILD, escaped, inliner, regex_admits, regex_escaped, trigger_sanitised, wildcards

Subject = Callable[[Any], bool]  # the node is the text matched (an object's name, the topic)

LIKE = WILD
SIMILAR = frozenset("%_|*+?{}()[]\\")  # SIMILAR TO's metacharacters and escape ('.' is a plain character there)
REGEX = frozenset(".*+?()[]{}|^$\\")  # a regular expression's metacharacters and escape
KINDS = {LIKE: "LIKE", SIMILAR: "SIMILAR TO", REGEX: "regular-expression"}

PATH_SEPARATORS = frozenset("/")
# A topic's separator: punctuation other than what slugs and names are commonly made of ('-', '_', '.').
TOPIC_SEPARATORS = frozenset(chr(c) for c in range(0x21, 0x7f) if not chr(c).isalnum()) - frozenset("-_.")

# Functions matching their first argument against the regular expression in their second.
_REGEX_CALLS = ("regexp_like", "regexp_match", "regexp_matches", "regexp_count", "regexp_instr", "regexp_substr")
# Types whose text holds none of these characters: a uuid, an integer, a boolean, a date, numbers and times.
_TYPE_CHARS = {**{t: "-" for t in ("uuid", "int2", "int4", "int8", "smallint", "integer", "bigint", "int", "serial",
                                   "bigserial")},
               "boolean": "", "bool": "", "date": "- ", "numeric": "-.", "timestamp": "-:. ", "timestamptz": "-:.+ "}


def pieces(node) -> list:
    """The parts of a text made by `||`, concat(...) or format(...), in order (one part for anything else), casts
    aside."""
    node = unwrap(node)
    if isinstance(node, dict):
        e = node.get("A_Expr")
        if isinstance(e, dict) and strings(e.get("name")) == ["||"]:
            return pieces(e.get("lexpr")) + pieces(e.get("rexpr"))
        call = node.get("FuncCall")
        if isinstance(call, dict) and function_name(call).split(".")[-1] == "concat":
            return [p for a in call.get("args") or [] for p in pieces(a)]
        if isinstance(call, dict) and function_name(call) in ("format", "pg_catalog.format") and \
                not call.get("func_variadic"):
            return _format_parts(node, call.get("args") or [])
    return [node]


def _format_parts(node, args: list) -> list:
    """format()'s parts (fp01 of evasion round 21: `format('%s/', o.slug)` is `o.slug || '/'`): its text between
    the specifiers as constants, a plain `%s` as its argument's parts, and any other specifier (%I and %L quote, a
    width pads) as the whole call, which nothing reads as a separator, an id or a text without wildcards."""
    pattern = const(unwrap(args[0])) if args and not any("NamedArgExpr" in (a or {}) for a in args) else None
    parsed = _format_pieces(pattern, len(args) - 1) if isinstance(pattern, str) else None
    if parsed is None:
        return [node]
    out: list = []
    text = ""
    for piece in parsed:
        if isinstance(piece, str):
            text += piece
            continue
        out += [{"A_Const": {"sval": {"sval": text}}}] if text else []
        text = ""
        kind, at, _, width = piece
        out += pieces(args[at + 1]) if kind == "s" and not width else [node]
    return out + ([{"A_Const": {"sval": {"sval": text}}}] if text else [])


def ends_with_separator(parts: list, separators: frozenset[str] = PATH_SEPARATORS) -> bool:
    """The prefix ends with a separator, is a constant (a folder of the bucket's own, not a tenant's), or is an id of
    fixed length (auth.uid()::text, o.id::text, p.organization_id::text: no other id starts with one; a flat
    `<uid>-<time>.png` avatar path is safe)."""
    last = const(parts[-1]) if parts else None
    return (isinstance(last, str) and last[-1:] in separators) or all(isinstance(const(x), str) or fixed_id(x)
                                                                       for x in parts)


def fixed_id(node) -> bool:
    """auth.uid() or (select auth.uid()), or a column named id or *_id (as text)."""
    inner = unwrap(node)
    sub = (inner or {}).get("SubLink") if isinstance(inner, dict) else None
    if isinstance(sub, dict):
        inner = unwrap(lone_value((sub.get("subselect") or {}).get("SelectStmt"), bare=False))
    call = (inner or {}).get("FuncCall") if isinstance(inner, dict) else None
    if isinstance(call, dict):
        return function_name(call) == "auth.uid"
    fields = strings(((inner or {}).get("ColumnRef") or {}).get("fields")) if isinstance(inner, dict) else []
    return bool(fields) and (fields[-1] == "id" or fields[-1].endswith("_id"))


def is_object_name(node) -> bool:
    node = unwrap(node)
    fields = strings((node or {}).get("ColumnRef", {}).get("fields")) if isinstance(node, dict) else []
    return fields[-1:] == ["name"]


def is_topic(node) -> bool:
    """realtime.topic(), or `(select realtime.topic())`."""
    node = unwrap(node)
    sub = (node or {}).get("SubLink") if isinstance(node, dict) else None
    if isinstance(sub, dict):
        node = unwrap(lone_value((sub.get("subselect") or {}).get("SelectStmt")))
    call = (node or {}).get("FuncCall") if isinstance(node, dict) else None
    return isinstance(call, dict) and function_name(call) in ("realtime.topic", "topic")


def _call(node) -> tuple[str, list]:
    node = unwrap(node)
    call = (node or {}).get("FuncCall") if isinstance(node, dict) else None
    return (function_name(call).split(".")[-1], call.get("args") or []) if isinstance(call, dict) else ("", [])


def _cut(node, subject: Subject) -> bool:
    """left(<subject>, n), or substr/substring(<subject>, 1, n): the subject's first characters."""
    name, args = _call(node)
    return bool(args) and subject(args[0]) and (
        name == "left" and len(args) == 2 or
        name in ("substr", "substring") and len(args) == 3 and const(unwrap(args[1])) == 1)


def _found(node, subject: Subject) -> Any:
    """x of position(x in <subject>) or strpos(<subject>, x); None otherwise."""
    name, args = _call(node)
    return args[1] if name in ("position", "strpos") and len(args) == 2 and subject(args[0]) else None


def _regex_tail_separated(parts: list, separators: frozenset[str]) -> bool:
    """A regular expression made of constants and columns starts with '^' and has a separator right after its last
    column (`'^' || o.slug || '/'`, `'^(' || o.slug || ')/.*$'`), or its columns are ids of fixed length."""
    texts = [const(p) for p in parts]
    if all(isinstance(t, str) or fixed_id(p) for t, p in zip(texts, parts)) and (texts[0] or "").startswith("^"):
        return True
    last = max(i for i, t in enumerate(texts) if not isinstance(t, str))
    tail = "".join(texts[last + 1:]).lstrip(")")
    return (texts[0] or "").startswith("^") and tail[:1] in separators


def open_prefixes(tree, subject: Subject = is_object_name, separators: frozenset[str] = PATH_SEPARATORS) -> list[str]:
    """How a policy matches the subject by a prefix made from something other than constants and ids that does not
    end with a separator: starts_with(name, x), name like x || '%', name ^@ x, name ~ ('^' || x), left(name,
    length(x)) = x, substr(name, 1, length(x)) = x, position(x in name) = 1, strpos(name, x) = 1 (or > 0: anywhere),
    name >= x (the lower bound of a range); and a regular expression with a column not anchored by '^'."""
    out = []

    def open_(node) -> bool:
        return not ends_with_separator(pieces(node), separators)

    for kind, body in nodes(tree):
        if kind == "FuncCall" and function_name(body).split(".")[-1] == "starts_with":
            args = body.get("args") or []
            if len(args) == 2 and subject(args[0]) and open_(args[1]):
                out.append("starts_with")
        if kind != "A_Expr":
            continue
        name, lexpr, rexpr = strings(body.get("name")), body.get("lexpr"), body.get("rexpr")
        if subject(lexpr):
            parts = pieces(rexpr)
            if body.get("kind") in ("AEXPR_LIKE", "AEXPR_ILIKE") or name in (["~~"], ["~~*"]):
                last = const(parts[-1]) if parts else None
                if isinstance(last, str) and last.endswith("%") and len(parts) > 1 and \
                        last[:-1][-1:] not in separators and \
                        not (last == "%" and ends_with_separator(parts[:-1], separators)):
                    out.append("like")
            elif name == ["^@"] and open_(rexpr):
                out.append("^@")
            elif body.get("kind") == "AEXPR_OP" and name in (["~"], ["~*"]) and \
                    not all(isinstance(const(p), str) for p in parts) and not _regex_tail_separated(parts, separators):
                out.append(name[0])
            elif body.get("kind") == "AEXPR_OP" and name in ([">="], [">"]) and open_(rexpr):
                out.append("range")
            elif body.get("kind") == "AEXPR_BETWEEN" and isinstance(rexpr, dict) and \
                    ((rexpr.get("List") or {}).get("items") or [None])[0] is not None and \
                    open_(rexpr["List"]["items"][0]):
                out.append("between")
        elif subject(rexpr) and body.get("kind") == "AEXPR_OP" and name in (["<="], ["<"]) and open_(lexpr):
            out.append("range")
        if body.get("kind") != "AEXPR_OP" or len(name) != 1:
            continue
        for a, b in ((lexpr, rexpr), (rexpr, lexpr)):
            if name == ["="] and _cut(a, subject) and open_(b):
                out.append(_call(a)[0])
            x = _found(a, subject)
            bound = const(unwrap(b))
            if x is None or not isinstance(bound, int):
                continue
            if name == ["="] and bound == 1:
                if open_(x):
                    out.append(_call(a)[0])
            elif (name[0], bound) in ((">", 0), (">=", 1), ("<>", 0), ("!=", 0)) and \
                    not all(isinstance(const(p), str) or fixed_id(p) for p in pieces(x)):
                out.append(_call(a)[0])  # found anywhere: `strpos(name, o.slug || '/') > 0` holds for 'x/acme/...'
    return out


def _pattern(kind: str, body: dict, subject: Subject) -> tuple[Any, frozenset[str]] | None:
    """The pattern an expression matches the subject against, and the characters that are its operators there:
    LIKE/ILIKE (`~~`), SIMILAR TO, a regular expression (`~`, `~*` and their negations: a pattern the client
    writes may also be invalid and fail every query reaching it; regexp_like, regexp_match..., substring(x from
    pattern)); None for anything else. (A negated LIKE or SIMILAR TO, which narrows, is left alone.)"""
    if kind == "A_Expr" and subject(body.get("lexpr")):
        name = "".join(strings(body.get("name")))
        if body.get("kind") == "AEXPR_SIMILAR":
            fn, args = _call(body.get("rexpr"))
            return None if name.startswith("!") else (args[0] if fn == "similar_to_escape" and args else
                                                        body.get("rexpr"), SIMILAR)
        if body.get("kind") in ("AEXPR_LIKE", "AEXPR_ILIKE") or name in ("~~", "~~*"):
            return None if name.startswith("!") else (body.get("rexpr"), LIKE)
        if body.get("kind") == "AEXPR_OP" and name in ("~", "~*", "!~", "!~*"):
            return body.get("rexpr"), REGEX
    if kind == "FuncCall":
        name, args = function_name(body).split(".")[-1], body.get("args") or []
        if len(args) >= 2 and subject(args[0]) and (name in _REGEX_CALLS or name == "substring" and _texty(args[1])):
            return args[1], SIMILAR if name == "substring" and len(args) == 3 else REGEX
    return None


def _texty(node) -> bool:
    """A text operand (a constant string, a concatenation, a column) rather than a number (substring(x, 1, n))."""
    node = unwrap(node)
    return isinstance(const(node), str) or len(pieces(node)) > 1 or isinstance(node, dict) and "ColumnRef" in node


def pattern_columns(s: Schema, tree, subject: Subject = is_object_name) -> list[tuple[str, frozenset[str]]]:
    """(table.column, the operator characters it may bring) of each column a sub-query's pattern on the subject is
    built from (`objects.name like o.slug || '/%'`, evasion round 11 e03; `objects.name ~ ('^' || o.slug || '/')`,
    evasion round 16 e10): whoever sets it (an organisation's owner choosing its slug) matches other organisations'
    folders, or all of them with '%' ('.*'). A column of a type whose text holds none of the pattern's operators,
    one a CHECK holds to a regular expression naming none, one a trigger always sets from such an expression, or one
    escaped whole for LIKE (`wildcards`) is left alone."""
    out: list[tuple[str, frozenset[str]]] = []
    for kind, body in nodes(tree):
        select = (body.get("subselect") or {}).get("SelectStmt") if kind == "SubLink" else None
        if not isinstance(select, dict):
            continue
        tables: dict[str, Table] = {}
        for item_kind, rv in _from_items(select):
            t = s.table(rv.get("relname", ""), rv.get("schemaname") or "public") if item_kind == "RangeVar" else None
            if t is not None:
                tables[(rv.get("alias") or {}).get("aliasname") or rv.get("relname", "")] = t
        filters = [select.get("whereClause")] + [b.get("quals") for k, b in nodes(select.get("fromClause"))
                                                 if k == "JoinExpr"]
        for k, b in nodes(filters) if tables else ():
            found = _pattern(k, b, subject)
            if found is None:
                continue
            for piece in pieces(found[0]):
                column = _unsafe_column(s, tables, piece, found[1])
                if column is not None and column not in [c for c, _ in out]:
                    out.append((column, found[1]))
    return out


def _unsafe_column(s: Schema, tables: dict[str, Table], piece, chars: frozenset[str]) -> str | None:
    """The first column of the sub-query's tables whose operator characters reach the pattern through this piece:
    the piece is the column, or an expression of it that neither escapes them (LIKE's `%`, `_` and the escape
    character) nor keeps them out (`replace(o.slug, '%', '\\%')` leaves `_`, `lower(o.slug)` both: evasion round
    12 e08)."""
    unsafe = [f"{t.qualified}.{c.name}" for kind, col in nodes(piece) if kind == "ColumnRef"
              for t, c in [_owner(tables, strings(col.get("fields")))]
              if c is not None and not _holds_none(s, t, c, chars) and not trigger_sanitised(
                  s, t, c.name, lambda fields, t=t: _plain(s, t, fields, chars), chars)]
    if not unsafe or isinstance(const(unwrap(piece)), str):
        return None
    if "ColumnRef" in (unwrap(piece) or {}):
        return unsafe[0]

    def held(fields: list[str]) -> frozenset[str]:
        t, c = _owner(tables, fields)
        return chars if t is None or f"{t.qualified}.{c.name}" in unsafe else frozenset()
    if escaped(piece) if chars == LIKE else regex_escaped(piece, chars):
        return None
    return unsafe[0] if wildcards(piece, held, chars, inliner(s)) else None


def _owner(tables: dict[str, Table], fields: list[str]) -> tuple[Table | None, Any]:
    """The from-list table and column a ColumnRef names (None, None when not exactly one)."""
    owners = [tables[fields[0]]] if len(fields) == 2 and fields[0] in tables else \
        [t for t in tables.values() if t.column(fields[0])] if len(fields) == 1 else []
    c = owners[0].column(fields[-1]) if len(owners) == 1 else None
    return (owners[0], c) if c is not None else (None, None)


def _plain(s: Schema, t: Table, fields: list[str], chars: frozenset[str]) -> frozenset[str]:
    """The characters of `chars` `new.<column>` of a trigger on `t` may hold (any other name: all)."""
    c = t.column(fields[1]) if len(fields) == 2 and fields[0].lower() == "new" else None
    return frozenset() if c is not None and _holds_none(s, t, c, chars) else chars


def _holds_none(s: Schema, t: Table, c, chars: frozenset[str]) -> bool:
    """The column's text cannot hold any of `chars`: its type (a uuid, a number, a domain over one), or a CHECK of
    the table or of the column's domain (evasion round 17 fp05) matching it against a regular expression that
    allows none of them nor the escape `\\` (`slug ~ '^[a-z0-9-]+$'`)."""
    held = _TYPE_CHARS.get(base_type(s, c.type).split("(")[0].strip().lower().removeprefix("pg_catalog."))
    if held is not None and not set(held) & chars:
        return True
    if _generated_none(s, t, c, chars):
        return True
    return any(_confines(k.tree, c.name, chars) for k in t.constraints if k.kind == "check") or \
        any(_confines(tree, "value", chars) for tree in domain_checks(s, c.type))


def _generated_none(s: Schema, t: Table, c, chars: frozenset[str]) -> bool:
    """A generated column holds what its expression makes, and clients can write no other value: one from the
    row's other columns through a sanitising function (`generated always as (regexp_replace(lower(name),
    '[^a-z0-9]+', '-', 'g')) stored`) holds none of `chars` (evasion round 18 fp04's review). A generated column
    reads no other generated column."""
    text = c.default or ""
    if not text.startswith("generated always as ("):
        return False
    try:
        parsed = pgparse.parse(f"select {text[len('generated always as '):]}")
    except (pgparse.PGQueryError, RecursionError, ValueError):
        return False
    targets = (parsed[0]["stmt"].get("SelectStmt") or {}).get("targetList") or [] if len(parsed) == 1 else []
    if len(targets) != 1:
        return False

    def column(fields: list[str]) -> frozenset[str]:
        other = t.column(fields[-1]) if len(fields) == 1 else None
        plain = other is not None and not (other.default or "").startswith("generated always as (")
        return frozenset() if plain and _holds_none(s, t, other, chars) else chars
    return not wildcards((targets[0].get("ResTarget") or {}).get("val"), column, chars, inliner(s))


def _confines(node, name: str, chars: frozenset[str]) -> bool:
    """A CHECK holds the column `name` (VALUE in a domain's) to a regular expression admitting none of `chars` nor
    `\\`, or to null: `name ~ '<pattern>'` itself, in one of the AND's terms, or in every one of the OR's
    (`slug is null or slug ~ ...`); a null makes no pattern (`null || '/%'` matches nothing). A CHECK passes
    when it is null as well as true, and the regular expression's test is null only where the column is."""
    node = unwrap(node)
    if not isinstance(node, dict) or len(node) != 1:
        return False
    (kind, body), = node.items()
    if kind == "BoolExpr" and body.get("boolop") in ("AND_EXPR", "OR_EXPR"):
        found = [_confines(a, name, chars) for a in body.get("args") or []]
        return any(found) if body["boolop"] == "AND_EXPR" else bool(found) and all(found)
    if kind == "NullTest":
        return body.get("nulltesttype") == "IS_NULL" and _names(body.get("arg"), name)
    if kind != "A_Expr" or body.get("kind") != "AEXPR_OP" or strings(body.get("name")) not in (["~"], ["~*"]):
        return False
    pattern = const(unwrap(body.get("rexpr")))
    admits = regex_admits(pattern) if _names(body.get("lexpr"), name) and isinstance(pattern, str) else None
    return admits is not None and not admits & (chars | {"\\"})  # (`[A-z]` holds `_`: evasion round 13 e03)


def _names(node, name: str) -> bool:
    return strings(((unwrap(node) or {}).get("ColumnRef") or {}).get("fields"))[-1:] == [name]


def pattern_hole(column: str, chars: frozenset[str], what: str) -> str:
    """The end of a finding about a pattern made from a column (BP083, BP072)."""
    kind = KINDS.get(chars, "")
    if kind == "LIKE":
        return f"a LIKE pattern made from {column}: a value holding '%' or '_' matches other organisations' " \
            f"{what} ('%' every one)."
    every = "'.*'" if kind == "regular-expression" else "'%'"
    return f"a {kind} pattern made from {column}: a value holding one of {' '.join(sorted(chars))} matches " \
        f"other organisations' {what} ({every} every one), and one that is no valid pattern fails the query."
