"""Which LIKE wildcards (`%`, `_`) a text expression may hold, for BP083's patterns made from columns.

`replace(o.slug, '%', '\\%')` escapes `%` but leaves `_` a wildcard (evasion round 12 e08); `lower(o.slug)` is still
whatever the slug holds. A pattern piece is safe when it is escaped whole (the escape character first, then both
wildcards: `replace(replace(replace(x, '\\', '\\\\'), '%', '\\%'), '_', '\\_')`), or when its text cannot hold
either wildcard: constants without them, columns that cannot hold them, and what keeps only given characters
(`regexp_replace(x, '[^a-z0-9]+', '-', 'g')`) or removes the wildcards (`replace(x, '%', '')`, `translate`).
A column a BEFORE INSERT OR UPDATE trigger always overwrites with such an expression holds none either (fp02:
a slug made from the organisation's name), and so does one a BEFORE INSERT trigger sets that nothing updates
(evasion round 16 fp06). The same reading answers for a regular expression's metacharacters (`chars`: evasion round
16 e10, `objects.name ~ ('^' || o.slug || '/')` with a slug that keeps '.').
"""

from __future__ import annotations

import re
from itertools import permutations
from collections.abc import Callable
from typing import Any

import pgparse

from ...model.schema import Schema, Table
from ...sql.ident import dollar_quoted
from ..body import embedded_sql
from ..pins import unwrap
from ..tree import const, function_name, nodes, strings

WILD = frozenset("%_")
_NONE: frozenset[str] = frozenset()
# Functions whose text is made of their first argument's characters (or fewer): case, trimming, cutting.
# (Not normalize or unaccent: NFKC makes '%' of a full-width '％'.)
_SUBSET = ("lower", "upper", "btrim", "ltrim", "rtrim", "substr", "substring", "left", "right", "initcap")
_HEX = ("md5", "sha256", "gen_random_uuid", "uuid_generate_v4")  # ... made of hex digits (and '-')
# Negated class [^...] of plain characters and ranges, once or repeated, the whole pattern.
_KEEP_ONLY = re.compile(r"^\[\^([^\]\\\[]+)\][+*]?$")
_ESCAPE_ALL = {f"([{''.join(order)}])" for order in permutations(("\\\\", "%", "_"))}  # ([\\%_]) ...

Column = Callable[[list[str]], frozenset[str]]  # a ColumnRef's fields -> the wildcards its value may hold
# A FuncCall's body -> the expression it returns for these arguments and the Inline to read that with; None: unread.
Inline = Callable[[dict], "tuple[Any, Inline] | None"]


def wildcards(node: Any, column: Column, chars: frozenset[str] = WILD, inline: Inline | None = None) -> frozenset[str]:
    """The characters of `chars` (LIKE's wildcards unless told: a regular expression's metacharacters for `~`,
    evasion round 16 e10) the expression's text may hold; all of them for what cannot be read. `inline` gives a
    call of the migration's own function as the expression it returns (`inliner`)."""
    node = unwrap(node)
    if not isinstance(node, dict) or len(node) != 1:
        return chars
    (kind, body), = node.items()
    if kind == "A_Const":
        value = const(node)
        return frozenset(c for c in value if c in chars) if isinstance(value, str) else _NONE
    if kind == "ColumnRef":
        return column(strings(body.get("fields"))) & chars
    if kind == "A_Expr" and strings(body.get("name")) == ["||"]:
        return wildcards(body.get("lexpr"), column, chars, inline) | wildcards(body.get("rexpr"), column, chars, inline)
    if kind == "CoalesceExpr":
        return frozenset().union(*(wildcards(a, column, chars, inline) for a in body.get("args") or []))
    if kind != "FuncCall" or body.get("over") or body.get("agg_star"):
        return chars
    name = function_name(body).split(".")[-1]
    args = body.get("args") or []
    if name in _HEX:
        return _NONE
    if name in _SUBSET and args:
        return wildcards(args[0], column, chars, inline)
    if name == "concat":
        return frozenset().union(*(wildcards(a, column, chars, inline) for a in args))
    texts = [const(unwrap(a)) for a in args]
    if name == "replace" and len(args) == 3 and isinstance(texts[1], str):
        # Removing or replacing a text creates no character beyond the replacement's.
        kept = wildcards(args[0], column, chars, inline) - (frozenset(texts[1]) if len(texts[1]) == 1 else _NONE)
        return kept | wildcards(args[2], column, chars, inline)
    if name == "translate" and len(args) == 3 and isinstance(texts[1], str) and isinstance(texts[2], str):
        source, target = texts[1], texts[2]
        if chars & set(target):
            return chars
        return frozenset(c for c in wildcards(args[0], column, chars, inline) if c not in source)
    if name == "regexp_replace" and len(args) == 4 and all(isinstance(t, str) for t in texts[1:]) and \
            "g" in texts[3] and "\\" not in texts[2]:
        keep = _KEEP_ONLY.match(texts[1])
        if keep:  # what is left is the class's characters and the replacement's
            return _class(keep.group(1), chars) | frozenset(c for c in texts[2] if c in chars)
    expanded = inline(body) if inline is not None else None
    return chars if expanded is None else wildcards(expanded[0], column, chars, expanded[1])


def inliner(s: Schema, depth: int = 8) -> Inline:
    """Calls of the migration's own functions read as their bodies (evasion round 18 fp04's review: a slugify
    helper, `private.slugify(coalesce(new.slug, new.name))`, or a generated column of it): a function the name
    names alone (no overload, no default used, no named argument), SQL `select <expression>` without FROM or a
    PL/pgSQL body that is one RETURN, its parameters (by name or `$n`) replaced by the call's arguments. `depth`
    bounds helpers calling helpers (and a function calling itself)."""
    def inline(call: dict) -> tuple[Any, Inline] | None:
        name = function_name(call)
        found = [f for f in s.functions if (f.qualified if "." in name else f.name) == name and not f.procedure]
        args = call.get("args") or []
        if depth <= 0 or len(found) != 1 or call.get("agg_star") or call.get("agg_distinct") or call.get("over") \
                or call.get("func_variadic") or any("NamedArgExpr" in (a or {}) for a in args):
            return None
        f = found[0]
        try:
            parameters = pgparse.parse(f"create function f({f.args}) returns int language sql as 'select 1'")[0][
                "stmt"]["CreateFunctionStmt"].get("parameters") or []
        except (pgparse.PGQueryError, RecursionError, ValueError, KeyError, IndexError):
            return None
        names = [(p.get("FunctionParameter") or {}).get("name", "").lower() for p in parameters]
        modes = {(p.get("FunctionParameter") or {}).get("mode") for p in parameters}
        if len(names) != len(args) or not modes <= {"FUNC_PARAM_IN", "FUNC_PARAM_DEFAULT"}:
            return None
        expr = _returned(f.language.lower(), f.body)
        bound = {**{n: a for n, a in zip(names, args) if n}, **{i + 1: a for i, a in enumerate(args)}}
        refs = [([x.lower() for x in strings(b.get("fields"))] if k == "ColumnRef" else [b.get("number")], b)
                for k, b in nodes(expr) if k in ("ColumnRef", "ParamRef")]
        if expr is None or any(len(r) != 1 or r[0] not in bound or len(b.get("fields") or [1]) != 1 for r, b in refs):
            return None  # (a name the body declares, or none it knows, is no argument's text)
        return _bind(expr, bound), inliner(s, depth - 1)
    return inline


def _returned(language: str, body: str) -> Any:
    """The one expression a function body returns: `select <expr>` (SQL) or `return <expr>;` (PL/pgSQL)."""
    try:
        if language == "sql":
            parsed = pgparse.parse(body)
            select = parsed[0]["stmt"].get("SelectStmt") if len(parsed) == 1 else None
        elif language == "plpgsql":
            tree = pgparse.parse_pgsql(f"create function f() returns text language plpgsql as {dollar_quoted(body)}")
            function = (tree[0] if isinstance(tree, list) and tree else {}).get("PLpgSQL_function") or {}
            block = (function.get("action") or {}).get("PLpgSQL_stmt_block") or {}
            declared = [d for d in function.get("datums") or []
                        if (d.get("PLpgSQL_var") or {}).get("refname") != "found"]
            statements = block.get("body") or [] if not declared else []  # (a DECLARE may shadow a parameter)
            ret = statements[0].get("PLpgSQL_stmt_return") if len(statements) == 1 and not block.get(
                "exceptions") and isinstance(statements[0], dict) else None
            expr = ((ret or {}).get("expr") or {}).get("PLpgSQL_expr") or {}
            parsed = pgparse.parse(embedded_sql(expr.get("query", ""), expr.get("parseMode", 0))) if expr else []
            select = parsed[0]["stmt"].get("SelectStmt") if len(parsed) == 1 else None
        else:
            return None
    except (pgparse.PGQueryError, RecursionError, ValueError, KeyError, IndexError, AttributeError):
        return None
    if not isinstance(select, dict) or set(select) - {"targetList", "limitOption", "op"} or \
            len(select.get("targetList") or []) != 1:
        return None
    return (select["targetList"][0].get("ResTarget") or {}).get("val")


def _bind(node: Any, bound: dict) -> Any:
    """The expression with each parameter reference (a bare name, `$n`) replaced by its argument."""
    if isinstance(node, list):
        return [_bind(x, bound) for x in node]
    if not isinstance(node, dict):
        return node
    if "ParamRef" in node and len(node) == 1:
        return bound.get(node["ParamRef"].get("number"), node)
    fields = strings((node.get("ColumnRef") or {}).get("fields")) if len(node) == 1 else []
    if len(fields) == 1 and fields[0].lower() in bound:
        return bound[fields[0].lower()]
    return {k: _bind(v, bound) for k, v in node.items()}


def _class(members: str, chars: frozenset[str]) -> frozenset[str]:
    """The characters of `chars` a bracket expression's members (`a-z0-9-`, `a-z0-9.`) name."""
    out: set[str] = set()
    i = 0
    while i < len(members):
        if i + 2 < len(members) and members[i + 1] == "-":
            low, high = members[i], members[i + 2]
            out.update(c for c in chars if low <= c <= high)
            i += 3
        else:
            out.update(c for c in members[i] if c in chars)
            i += 1
    return frozenset(out)


# The characters watched in a regular expression's matches: ASCII punctuation and spaces (letters and digits of
# any script are never a LIKE wildcard, a regular-expression metacharacter nor an escape).
_WATCHED = frozenset(chr(c) for c in range(0x20, 0x7f) if not chr(c).isalnum())
_POSIX = ("alnum", "alpha", "digit", "upper", "lower", "xdigit")  # classes of letters and digits only
_SHORTHAND = {"d": _NONE}  # \d: digits (\w holds '_'; \s, \S, \W and the rest are read as unreadable)


def regex_admits(pattern: str) -> frozenset[str] | None:
    """The punctuation (of _WATCHED) a whole match of an anchored regular expression (`^...$`, no `|`) may hold,
    bracket ranges expanded by code point (`[A-z]` holds `[ \\ ] ^ _` and the backtick: evasion round 13 e03) and
    POSIX classes of letters or digits read (`[[:alnum:]]`, fp02); None for what is not read: no anchors, `|`, `.`,
    a negated class, `(?`, an escape other than of punctuation or `\\d`."""
    if len(pattern) < 2 or pattern[0] != "^" or pattern[-1] != "$" or "|" in pattern or "(?" in pattern:
        return None
    out: set[str] = set()
    i, end = 1, len(pattern) - 1
    while i < end:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= end:
                return None
            held = _escaped(pattern[i + 1])
            if held is None:
                return None
            out |= held
            i += 2
        elif c == "[":
            close = _bracket(pattern, i, out)
            if close is None:
                return None
            i = close + 1
        elif c == "{":
            close = pattern.find("}", i)
            if close < 0 or close >= end or not all(x.isdigit() or x == "," for x in pattern[i + 1:close]):
                return None
            i = close + 1
        elif c in "()*+?^$":
            i += 1
        elif c == ".":
            return None
        else:
            out.update({c} & _WATCHED)
            i += 1
    return frozenset(out)


def _escaped(c: str) -> frozenset[str] | None:
    if c.isalnum():
        return _SHORTHAND.get(c)
    return frozenset(c) & _WATCHED


def _bracket(pattern: str, start: int, out: set[str]) -> int | None:
    """Reads the bracket expression at `start` into `out`; the position of its `]`, None when unread."""
    i = start + 1
    if pattern[i:i + 1] == "^":
        return None
    members: list[str] = []  # characters in order ("\\c" escaped, "" a class); a range's ends around "-"
    first = True
    while i < len(pattern):
        c = pattern[i]
        if c == "]" and not first:
            break
        first = False
        if pattern.startswith("[:", i):
            close = pattern.find(":]", i + 2)
            if close < 0 or pattern[i + 2:close] not in _POSIX:
                return None
            members.append("")  # (no range may end at a class)
            i = close + 2
            continue
        if pattern.startswith(("[.", "[="), i):
            return None
        if c == "\\":
            if i + 1 >= len(pattern) or pattern[i + 1].isalnum():
                held = _SHORTHAND.get(pattern[i + 1:i + 2])
                if held is None:
                    return None
                members.append("")
                i += 2
                continue
            members.append("\\" + pattern[i + 1])  # (an escaped "-" is no range)
            i += 2
            continue
        members.append(c)
        i += 1
    else:
        return None
    j = 0
    while j < len(members):
        if j + 2 < len(members) and members[j + 1] == "-" and members[j] and members[j + 2]:
            low, high = members[j][-1], members[j + 2][-1]
            if low > high:
                return None
            out.update(x for x in _WATCHED if low <= x <= high)
            j += 3
        else:
            out.update(set(members[j][-1:]) & _WATCHED)
            j += 1
    return i


def escaped(node: Any) -> bool:
    """The expression escapes every LIKE wildcard and the escape character of its text (LIKE's default `\\`):
    replace() of `\\` by `\\\\` innermost, then of `%` and `_` by `\\%` and `\\_`, or one regexp_replace of the
    three (`regexp_replace(x, '([\\\\%_])', '\\\\\\1', 'g')`)."""
    done: set[str] = set()
    node = unwrap(node)
    while isinstance(node, dict) and "FuncCall" in node:
        call = node["FuncCall"]
        name = function_name(call).split(".")[-1]
        args = call.get("args") or []
        texts = [const(unwrap(a)) for a in args]
        if name == "regexp_replace" and len(args) == 4 and not done:
            return texts[1] in _ESCAPE_ALL and texts[2] == "\\\\\\1" and isinstance(texts[3], str) and \
                "g" in texts[3]
        if name != "replace" or len(args) != 3:
            return False
        if texts[1] in ("%", "_") and texts[2] == "\\" + texts[1] and texts[1] not in done:
            done.add(texts[1])
        elif texts[1] == "\\" and texts[2] == "\\\\":
            return done == set(WILD)
        else:
            return False
        node = unwrap(args[0])
    return False


def regex_escaped(node: Any, chars: frozenset[str]) -> bool:
    """The expression puts a backslash before each of `chars` (a regular expression's metacharacters, escape
    included) in its text: `regexp_replace(x, '([.*+?^${}()|\\[\\]\\\\])', '\\\\\\1', 'g')` (or `'\\\\&'`)."""
    node = unwrap(node)
    call = node.get("FuncCall") if isinstance(node, dict) else None
    if not isinstance(call, dict) or function_name(call).split(".")[-1] != "regexp_replace":
        return False
    texts = [const(unwrap(a)) for a in call.get("args") or []]
    if len(texts) != 4 or not all(isinstance(t, str) for t in texts[1:]) or "g" not in texts[3] or \
            texts[2] not in ("\\\\\\1", "\\\\&") or texts[1][:2] != "([" or texts[1][-2:] != "])":
        return False
    held: set[str] = set()
    close = _bracket(texts[1][1:-1], 0, held)
    return close == len(texts[1]) - 3 and chars <= held


def trigger_sanitised(s: Schema, t: Table, column: str, plain: Column, chars: frozenset[str] = WILD) -> bool:
    """The BEFORE row triggers of `t` together keep `chars` out of the column: every INSERT passes one whose
    PL/pgSQL function sets `new.<column>` first thing, once, to an expression holding none of `chars` (`plain`
    reads the row's other columns), with no WHEN that could skip a row holding such a character (`_fires_when_set`:
    evasion round 17 e05), and so does every UPDATE that changes the column (an UPDATE OF list naming it; a WHEN
    may skip a row whose column equals `old.<column>`, already sanitised), unless no update of the column can
    happen (`_never_updated`: evasion round 16 fp06); no other BEFORE row trigger sets the column. A slugify trigger
    split into `before insert` and `before update of slug ... when (new.slug is distinct from old.slug)` is read
    as one (evasion round 18 fp04). Rows a migration wrote before the triggers existed are not seen. A trigger
    left disabled (`alter table ... disable trigger user` in a backfill: evasion round 13 e04) sanitises
    nothing."""
    from .common import find_function

    before = [g for g in t.triggers if g.timing == "before" and g.level == "row" and g.fires]  # (round 13 e04)
    sanitising = []
    for trigger in before:
        fn = find_function(s, trigger.function)
        if fn is not None and fn.assigns is not None and column not in fn.assigns:
            continue  # (never sets the column)
        if fn is None or fn.language.lower() != "plpgsql" or \
                not _sets_first(fn.body, column, plain, chars, inliner(s)):
            return False  # (it may set the column to anything, after the sanitising trigger)
        sanitising.append(trigger)

    def covered(event: str) -> bool:
        return any(event in {e.lower() for e in g.events} and _fires_when_set(g, column, chars, event == "update")
                   and (event == "insert" or not g.columns or column in g.columns) for g in sanitising)
    return covered("insert") and (covered("update") or _never_updated(s, t, column))


def _fires_when_set(trigger, column: str, chars: frozenset[str], update: bool) -> bool:
    """The trigger's WHEN (if any) holds on every row whose `new.<column>` holds one of `chars` (and, on an UPDATE,
    differs from `old.<column>`): `new.<column> is not null`, `true`, `new.<column> is distinct from
    old.<column>` (an UPDATE's), a test that fails on every value holding none of `chars` (`new.slug !~
    '^[a-z0-9-]+$'`, `new.slug ~ '[^a-z0-9-]'`: evasion round 18 fp04), an OR with such a branch, an AND of such
    terms. A null left alone makes no pattern (`null || '/%'` matches nothing), an unchanged value is one the
    triggers sanitised when it was written, and a value holding none of `chars` needs nothing; any other condition
    may let a value the client wrote through untouched (evasion round 17 e05: `when (new.slug is null)` slugifies
    only the names of organisations created without a slug, and `%%` typed as the slug reads every organisation's
    files; `new.name is distinct from old.name` skips an update of the slug alone). A WHEN not read (no tree)
    skips."""
    if trigger.when is None:
        return True
    return _holds_when_set(trigger.when_tree, column, chars | {"\\"}, update)


def _holds_when_set(node: Any, column: str, chars: frozenset[str], update: bool) -> bool:
    node = unwrap(node)
    if not isinstance(node, dict) or len(node) != 1:
        return False
    (kind, body), = node.items()
    if kind == "A_Const":
        return const(node) is True
    if kind == "BoolExpr" and body.get("boolop") in ("OR_EXPR", "AND_EXPR"):
        held = [_holds_when_set(a, column, chars, update) for a in body.get("args") or []]
        return any(held) if body["boolop"] == "OR_EXPR" else bool(held) and all(held)
    if kind == "BoolExpr" and body.get("boolop") == "NOT_EXPR" and len(body.get("args") or []) == 1:
        test = (unwrap(body["args"][0]) or {}).get("A_Expr")  # not (old.x is not distinct from new.x), not (x ~ p)
        if not isinstance(test, dict):
            return False
        operator = _NEGATED.get(tuple(strings(test.get("name")))) if test.get("kind") == "AEXPR_OP" else None
        kind = _NEGATED.get(test.get("kind")) if test.get("kind") != "AEXPR_OP" else test["kind"]
        if kind is None or kind == "AEXPR_OP" and operator is None:
            return False
        negated = {**test, "kind": kind, "name": [{"String": {"sval": operator}}] if operator else test.get("name")}
        return _holds_when_set({"A_Expr": negated}, column, chars, update)
    if kind == "NullTest" and body.get("nulltesttype") == "IS_NOT_NULL":
        return _field(body.get("arg")) == ("new", column)
    if kind != "A_Expr":
        return False
    sides = {_field(body.get("lexpr")), _field(body.get("rexpr"))}
    if body.get("kind") == "AEXPR_DISTINCT":
        return update and sides == {("new", column), ("old", column)}
    operator = strings(body.get("name"))
    pattern = const(unwrap(body.get("rexpr")))
    if body.get("kind") != "AEXPR_OP" or _field(body.get("lexpr")) != ("new", column) or \
            not isinstance(pattern, str):
        return False
    if operator == ["!~"]:  # fails only on a whole match, of nothing in `chars`
        admits = regex_admits(pattern)
        return admits is not None and not admits & chars
    keep = _KEEP_ONLY.match(pattern) if operator == ["~"] else None  # holds on any character outside the class
    return keep is not None and not _class(keep.group(1), chars)


_NEGATED: dict[Any, Any] = {"AEXPR_NOT_DISTINCT": "AEXPR_DISTINCT", ("~",): "!~", ("!~",): "~"}


def _field(node: Any) -> tuple[str, str] | None:
    """(`new` or `old`, column) of a ColumnRef `new.<column>`; None for anything else."""
    fields = strings(((unwrap(node) or {}).get("ColumnRef") or {}).get("fields"))
    return (fields[0].lower(), fields[1]) if len(fields) == 2 and fields[0].lower() in ("new", "old") else None


def _never_updated(s: Schema, t: Table, column: str) -> bool:
    """No client may UPDATE the column (no grant of UPDATE on the table or on the column to anon, authenticated or
    PUBLIC, or row level security with no client update policy), and no SECURITY DEFINER function or trigger clients
    reach updates it, nor upserts into the table (`on conflict do update` fires the UPDATE triggers)."""
    from .common import client_policies, clients_granted
    from .inviters import definer_writes

    if clients_granted(s, t, "update", column) and not (t.rls_enabled and not client_policies(t, "update")):
        return False
    return not any(w.kind == "update" or column in _upserted(w.statement) for w in definer_writes(s, t, column))


def _upserted(insert: dict) -> list[str]:
    """The columns an INSERT's `on conflict do update set` writes."""
    conflict = insert.get("onConflictClause") or {}
    return [(x.get("ResTarget") or {}).get("name") for x in conflict.get("targetList") or []] \
        if conflict.get("action") == "ONCONFLICT_UPDATE" else []


def _sets_first(body: str, column: str, plain: Column, chars: frozenset[str] = WILD,
                inline: Inline | None = None) -> bool:
    try:
        tree = pgparse.parse_pgsql(f"create function f() returns trigger language plpgsql as {dollar_quoted(body)}")
    except (pgparse.PGQueryError, RecursionError, ValueError):
        return False
    function = (tree[0] if isinstance(tree, list) and tree else {}).get("PLpgSQL_function") or {}
    datums, new = function.get("datums") or [], function.get("new_varno")
    block = (function.get("action") or {}).get("PLpgSQL_stmt_block") or {}
    if block.get("exceptions") or new is None:
        return False  # (a handler could return the row as the client wrote it)

    def sets(fields: dict) -> bool:  # new.<column> := ..., or new := ...
        varno = fields.get("varno", -1)
        datum = datums[varno] if isinstance(varno, int) and 0 <= varno < len(datums) else {}
        rec = (datum or {}).get("PLpgSQL_recfield") or {}
        return varno == new or (rec.get("recparentno") == new and rec.get("fieldname") == column)

    writes = [f for k, f in nodes(function.get("action")) if k == "PLpgSQL_stmt_assign" and sets(f)]
    into = [f for k, f in nodes(function.get("action")) if k in ("PLpgSQL_stmt_execsql", "PLpgSQL_stmt_dynexecute",
                                                                  "PLpgSQL_stmt_fetch") and f.get("into")]
    if len(writes) != 1 or into or datums[new].get("PLpgSQL_rec", {}).get("refname") != "new":
        return False
    for statement in block.get("body") or []:
        fields = statement.get("PLpgSQL_stmt_assign") if isinstance(statement, dict) else None
        if fields is None:
            return False  # (an IF or RETURN before it may skip it)
        if fields is writes[0]:
            expr = (fields.get("expr") or {}).get("PLpgSQL_expr") or {}
            try:
                parsed = pgparse.parse(embedded_sql(expr.get("query", ""), expr.get("parseMode", 0)))
            except (pgparse.PGQueryError, RecursionError, ValueError):
                return False
            select = parsed[0]["stmt"].get("SelectStmt") or {} if len(parsed) == 1 else {}
            targets = select.get("targetList") or []
            if len(targets) != 1 or select.get("fromClause"):
                return False
            return not wildcards((targets[0].get("ResTarget") or {}).get("val"), plain, chars, inline)
    return False
