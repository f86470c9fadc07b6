"""The statements a DO block runs, loops over a list of names written in the block unrolled (evasion round 11, fp01).

`foreach t in array array['documents', 'comments'] loop execute format('alter table public.%I enable row level
security', t); end loop;` turns RLS on for both tables, as the two statements written out would. A loop over a
list of string literals (`array[...]` or `'{...}'`, `select unnest(...)`, `select ... from unnest(...)` or
`values (...), (...)`) runs its body once per name: an EXECUTE whose text is made only of literals and the loop
variables (`||`, `concat`, `format`'s %I, %L, %s and %%, `quote_ident`, `quote_literal`) is read as the statement it
runs for each. Any other loop (over a catalog query, say), a loop variable the body assigns, or any other part of
the text leaves the EXECUTE unknown: what it does to which table cannot be known from the file. The text is then
given with WILD for the values it cannot spell, for the caller to apply what it opens to every table it may name
(evasion round 16 e11). A variable the block assigns a text (`:=`, a DECLARE default, `select string_agg(...) into
v from pg_tables`) and a CASE read as each text they may give, none of them for certain (round 17 e04, e04b). So
is a text computed where the rows are read: a loop's query (`for r in select format(...) as cmd from pg_tables`,
then `execute r.cmd`) or a scalar sub-select (`execute (select string_agg(format(...), '; ') from pg_tables)`),
the query's columns standing for the tables it may name (round 18 e04, e04b). A loop over written names read
through a record (`for r in select unnest(array['a', 'b']) as t`, then `r.t`) is unrolled too (round 18 fp05).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pgparse

from ..sql.ident import ident, literal
from .do_conditions import Facts, LoopRows, condition, constant_truth, loop_names, select_rows
from .tree import const, dotted, function_name, nodes, strings

_STATEMENT, _EXPRESSION = 0, 2
_MAX_NAMES = 200  # a longer literal list is not one a migration writes by hand
_TEXT_TYPES = ("text", "varchar", "name", "pg_catalog.text", "pg_catalog.varchar")
WILD = "blueprint_unknown_name"  # stands for a name an EXECUTE takes from a value the block cannot spell


class Frame:
    """A loop being walked: an EXIT or CONTINUE whose condition is unknown makes what follows it uncertain."""

    __slots__ = ("label", "unrolled", "uncertain", "round_uncertain")

    def __init__(self, label: str | None, unrolled: bool) -> None:
        self.label, self.unrolled, self.uncertain, self.round_uncertain = label, unrolled, False, False


def statements(do_statement: str, embedded_sql: Any, facts: Facts = Facts()) \
        -> Iterator[tuple[str, bool | str, dict[str, LoopRows] | None, dict[str, str] | None]]:
    """The SQL statements a DO block's PL/pgSQL body runs, in the order they are written, each with whether it
    may not have run: every static statement once, whichever branch, loop or exception handler holds it, and every
    EXECUTE whose text is known (once per name of a loop over written names). A statement may not have run when a
    sub-block's exception handler can roll it back (the sub-block holds another statement that may raise: evasion
    round 12 e04), when it follows an EXIT or CONTINUE of its loop (or a RETURN) whose condition is unknown (e05),
    or when a condition guards it: an IF or CASE branch not known to be the one taken, the body of a loop that may
    run no round (WHILE, FOR over a query or a range), an exception handler (round 16 e04). `facts` decide the
    conditions the model can (`do_conditions`), asked when the statement is reached: a generator, so the caller
    applies each statement before the next. The third value, when the text holds a name the block cannot spell
    (WILD, or WILD_<n> for a field of a loop's row over a catalog query): which tables each WILD_<n> may name.
    The fourth, for a statement that reads the variable of a loop over written names (`perform
    private.secure_table(t)`: evasion round 21 fp06), given once per round: that variable's name (or `r.column`)
    -> the text it holds in this round, for the caller to read the statement with. Raises pgparse.PGQueryError
    when the body is not valid PL/pgSQL."""
    tree = pgparse.parse_pgsql(do_statement)
    function = (tree[0] if isinstance(tree, list) and tree else {}).get("PLpgSQL_function") or {}
    names = [_datum_name(d) for d in function.get("datums") or []]
    done: set[int] = set()  # static statements (and EXECUTEs of a constant text) already given: once each
    wilds: dict[str, LoopRows] = {}  # WILD_<n> of each loop over a query -> the tables it may name
    assigned: dict[str, list[str]] = {}  # variable -> the texts assigned to it so far (any may be the one it holds)
    for datum in function.get("datums") or []:
        var = datum.get("PLpgSQL_var") if isinstance(datum, dict) else None
        default = ((var or {}).get("default_val") or {}).get("PLpgSQL_expr") or {}
        if "(" in default.get("query", ""):  # (a call in it runs, if its block does: evasion round 18 e01)
            yield embedded_sql(default["query"], _EXPRESSION), True, None, None
        if default:
            _assign(assigned, var.get("refname"), _sublinks(
                _expression(embedded_sql(default.get("query", ""), _EXPRESSION)), {}, wilds), {}, wilds, None)
    frames: list[Frame] = []
    returned = False
    # (node, loop variables, rolled back by a handler, the loop whose body it is directly, a condition guards it)
    # or a frame's marker
    stack: list[Any] = [(tree, {_VALUES: assigned}, 0, None, False)]
    while stack:
        item = stack.pop()
        if isinstance(item[0], str):  # ("round", frame) or ("end", frame)
            mark, frame = item
            frame.round_uncertain = False
            if mark == "end":
                frames.remove(frame)
            continue
        value, env, undone, direct, guarded = item
        if isinstance(value, list):
            stack.extend((v, env, undone, direct, guarded) for v in reversed(value))
            continue
        if not isinstance(value, dict):
            continue
        if len(value) == 1:
            (kind, body), = value.items()
            if isinstance(body, dict) and kind[:1].isupper():
                # (a loop over a query's own guard, its WILD_<n>, stays apart: what the loop runs on each row it
                # gives runs for certain on that row; round 17 fp03)
                uncertain = True if undone == _UNDONE or returned or any(f.uncertain or f.round_uncertain
                                                                         for f in frames) else guarded
                if isinstance(uncertain, str) and undone:
                    uncertain = True  # (a handler may swallow its error on some row: it covers none for certain)
                for text, later, bound in _evaluated(kind, body, done, embedded_sql, env):
                    yield text, True if later else uncertain, None, bound
                if kind in ("PLpgSQL_stmt_execsql", "PLpgSQL_stmt_perform", "PLpgSQL_stmt_call"):
                    # PL/pgSQL has already cut the INTO <variables> out of the text (and put SELECT before
                    # PERFORM's); a nested DO is one of its CALL statements. Written once however often it runs,
                    # but once per round where it reads the variable of a loop over written names.
                    expr = (body.get("sqlstmt") or body.get("expr") or {}).get("PLpgSQL_expr") or {}
                    text = expr.get("query", "")
                    bound = _bound_in(text, env)
                    if id(body) not in done or bound:
                        if not bound:
                            done.add(id(body))
                        if body.get("into"):
                            _select_into(assigned, body, text, env, wilds)
                        if text.strip():
                            yield text, uncertain, None, bound
                    continue
                if kind == "PLpgSQL_stmt_assign":
                    expr = (body.get("expr") or {}).get("PLpgSQL_expr") or {}
                    varno = body.get("varno")
                    name = names[varno] if isinstance(varno, int) and 0 <= varno < len(names) else None
                    tree = _sublinks(_expression(embedded_sql(expr.get("query", ""), expr.get("parseMode", 3))),
                                     env, wilds)
                    _assign(assigned, name, tree, env, wilds, WILD)
                    continue
                if kind == "PLpgSQL_stmt_dynexecute":
                    texts = _executed(body, env, done, embedded_sql, wilds)
                    for text, wild, varied in texts:  # (several statements of one text: a later one's error
                        undoes = varied or (undone == _HANDLED and len(texts) > 1)  # undoes the first)
                        yield text, True if undoes else uncertain, wilds if wild else None, None
                    continue
                if kind == "PLpgSQL_stmt_return":
                    returned = True  # (a RETURN in a branch: what follows may not run)
                    continue
                if kind == "PLpgSQL_stmt_exit":
                    returned = _exit(body, env, direct, frames, stack, embedded_sql, facts) or returned
                    continue
                if kind == "PLpgSQL_stmt_if":
                    stack.extend(reversed(_branches(body, env, undone, guarded, embedded_sql, facts)))
                    continue
                if kind == "PLpgSQL_stmt_case":  # (which branch runs is not decided)
                    bodies = [(w.get("PLpgSQL_case_when") or {}).get("stmts") for w in body.get("case_when_list") or []]
                    stack.extend((b, env, undone, None, True) for b in reversed([*bodies, body.get("else_stmts")]))
                    continue
                if kind == "PLpgSQL_stmt_block" and body.get("exceptions"):
                    # The handler rolls back every statement of the block before the one that raised.
                    stack.append((body.get("exceptions"), env, undone, None, True))  # (runs only on an error)
                    inner = _UNDONE if undone == _UNDONE or _may_undo(body.get("body")) else _HANDLED
                    stack.append((body.get("body"), env, inner, None, guarded))
                    continue
                loop = _loop(kind, body, names, assigned)
                if loop is not None:
                    variable, values = loop
                    frame = Frame(body.get("label"), True)
                    frames.append(frame)
                    stack.append(("end", frame))
                    for v in reversed(values):
                        stack.append(("round", frame))
                        stack.extend((s, {**env, variable: v}, undone, frame, guarded)
                                     for s in reversed(body.get("body") or []))
                    continue
                if kind in _LOOPS:
                    frame = Frame(body.get("label"), False)
                    frames.append(frame)
                    stack.append(("end", frame))
                    if kind == "PLpgSQL_stmt_fors":  # its row's fields name what its query gives
                        placeholder = f"{WILD}_{len(wilds)}"
                        query = ((body.get("query") or {}).get("PLpgSQL_expr") or {}).get("query", "")
                        rows = loop_names(query)
                        wilds[placeholder] = rows
                        env = {**env, **_row_env(body.get("var"), placeholder, rows)}
                        _row_texts(assigned, body.get("var"), query, env, wilds, placeholder)
                        # (an EXIT or RETURN anywhere in its body may end it before some row: it guards them)
                        ends = any(k in ("PLpgSQL_stmt_exit", "PLpgSQL_stmt_return")
                                   for k, _ in nodes(body.get("body")))
                        guarded = guarded or (True if ends else placeholder)
                    else:
                        guarded = guarded or not _runs_once(kind, body)
                value = body
        stack.extend((v, env, undone, None, guarded) for v in reversed(value.values()) if isinstance(v, dict | list))


# The expressions a PL/pgSQL statement evaluates itself (its nested statements aside), by field, and whether each
# is reached only after another of them (an ELSIF's test, a later WHEN's): a call in any of them runs (evasion round
# 18 e01: `n := private.set_public_rls(false)`). EXECUTE's text and PERFORM/SQL statements are read elsewhere.
_EVALUATED = {"PLpgSQL_stmt_assign": ("expr",), "PLpgSQL_stmt_if": ("cond", "elsif_list"),
              "PLpgSQL_stmt_return": ("expr",), "PLpgSQL_stmt_return_next": ("expr",),
              "PLpgSQL_stmt_return_query": ("query", "dynquery", "params"), "PLpgSQL_stmt_raise": ("params", "options"),
              "PLpgSQL_stmt_assert": ("cond", "message"), "PLpgSQL_stmt_while": ("cond",),
              "PLpgSQL_stmt_exit": ("cond",), "PLpgSQL_stmt_fori": ("lower", "upper", "step"),
              "PLpgSQL_stmt_fors": ("query",), "PLpgSQL_stmt_foreach_a": ("expr",),
              "PLpgSQL_stmt_dynfors": ("query", "params"), "PLpgSQL_stmt_dynexecute": ("params",),
              "PLpgSQL_stmt_case": ("t_expr", "case_when_list"), "PLpgSQL_stmt_open": ("query", "dynquery", "params")}


def _evaluated(kind: str, body: dict, done: set[int], embedded_sql: Any,
               env: dict[str, Any]) -> Iterator[tuple[str, bool, dict[str, str] | None]]:
    """Each expression of `_EVALUATED` that may call a function, as a statement (`select <expression>`), once (once
    per round where it reads the variable of a loop over written names: `_bound_in`)."""
    later = False
    for field in _EVALUATED.get(kind, ()):
        values = body.get(field)
        for value in values if isinstance(values, list) else [values]:
            if not isinstance(value, dict):
                continue
            inner = next(iter(value.values()), None) if len(value) == 1 else None
            if isinstance(inner, dict) and "PLpgSQL_expr" not in value:  # (an ELSIF, a WHEN, a RAISE option)
                value = inner.get("cond") or inner.get("expr") or {}
            expr = value.get("PLpgSQL_expr") or {}
            query = expr.get("query", "")
            bound = _bound_in(query, env) if "(" in query else None
            if "(" in query and (id(expr) not in done or bound):
                if not bound:
                    done.add(id(expr))
                text = embedded_sql(query, expr.get("parseMode", _EXPRESSION))
                if text.strip():
                    yield text, later, bound
            later = later or field in ("elsif_list", "case_when_list")
        later = later or kind in ("PLpgSQL_stmt_if", "PLpgSQL_stmt_case")


_FIELD = "\0"  # env[_FIELD + name]: the WILD_<n> a loop's row (or its field variables) stands for


def _bound_in(text: str, env: dict[str, Any]) -> dict[str, str] | None:
    """The variables of the loops over written names around a statement (`t`, or `r.t` of a record) that its text
    reads (a name outside quotes), each with the text it holds in this round; None when it reads none."""
    out = {}
    for name, value in env.items():
        if not isinstance(value, str) or name[:1] in (_FIELD, _VALUES) or value.startswith((WILD, _ARRAY)):
            continue
        pattern = r"\s*\.\s*".join(re.escape(part) for part in name.split("."))
        if re.search(rf"(?<![\w$.\"']){pattern}(?![\w$\"'])", _QUOTED.sub("''", text), re.I):
            out[name] = value
    return out or None


def _row_env(var: Any, placeholder: str, rows: LoopRows) -> dict[str, str]:
    """What a FOR over a query's variables stand for: its record, WILD_<n> (`r.tablename` reads as
    WILD_<n>__tablename); each variable of its row, WILD_<n>__<the query's column at that place>."""
    names = _row_names(var)
    if "PLpgSQL_rec" in (var or {}):
        return {_FIELD + n: placeholder for n in names}
    columns = [c for c, _ in rows.columns]
    return {_FIELD + n: f"{placeholder}{FIELD_MARK}{columns[i]}" if len(columns) == len(names) and columns[i]
            else placeholder for i, n in enumerate(names)}


FIELD_MARK = "__"  # WILD_<n>__<column>: the value of that column of the loop's row


def _row_names(var: Any) -> list[str]:
    """The variables a FOR over a query sets: its record, or the fields of its row."""
    var = var if isinstance(var, dict) else {}
    if "PLpgSQL_rec" in var:
        return [var["PLpgSQL_rec"].get("refname") or ""]
    return [f.get("name") or "" for f in (var.get("PLpgSQL_row") or {}).get("fields") or [] if isinstance(f, dict)]


_LOOPS = ("PLpgSQL_stmt_loop", "PLpgSQL_stmt_while", "PLpgSQL_stmt_fori", "PLpgSQL_stmt_fors", "PLpgSQL_stmt_forc",
          "PLpgSQL_stmt_foreach_a", "PLpgSQL_stmt_dynfors")
_HANDLED, _UNDONE = 1, 2  # in a sub-block with a handler: alone there, or beside another that may raise


def _may_undo(body: Any) -> bool:
    """Whether a sub-block's statements may be rolled back by its handler after they ran: it holds more than one
    statement that may raise, or one that runs more than once (a loop) or several statements (an EXECUTE of
    a text with several)."""
    fallible = 0
    for kind, fields in nodes(body):
        if kind in _LOOPS:
            return True
        if kind == "PLpgSQL_stmt_raise" and fields.get("elog_level", 0) < 21 and all(
                ((p.get("PLpgSQL_expr") or {}).get("query") or "").isidentifier() for p in fields.get("params") or []):
            continue  # RAISE NOTICE / LOG / WARNING of variables (ERROR is 21) does not raise
        if kind.startswith("PLpgSQL_stmt_") and kind != "PLpgSQL_stmt_block":
            fallible += 1
            if fallible > 1:
                return True
    return False


def _runs_once(kind: str, body: dict) -> bool:
    """Whether a loop runs its first round: a bare LOOP, or a FOR over a range of integer constants not empty."""
    if kind == "PLpgSQL_stmt_loop":
        return True
    if kind != "PLpgSQL_stmt_fori":
        return False
    lower, upper = (((body.get(k) or {}).get("PLpgSQL_expr") or {}).get("query", "").strip()
                    for k in ("lower", "upper"))
    if not all(re.fullmatch(r"-?[0-9]{1,18}", x) for x in (lower, upper)):
        return False
    return int(lower) >= int(upper) if body.get("reverse") else int(lower) <= int(upper)


def _branches(body: dict, env: dict[str, str], undone: int, guarded: bool, embedded_sql: Any,
              facts: Facts) -> list[Any]:
    """The branches of an IF as stack items: one runs for certain only when the conditions before it are known
    false and its own known true (ELSE: all known false); any other may not run, or never does."""
    arms = [(body.get("cond"), body.get("then_body"))] + [
        ((e.get("PLpgSQL_if_elsif") or {}).get("cond"), (e.get("PLpgSQL_if_elsif") or {}).get("stmts"))
        for e in body.get("elsif_list") or []]
    out, before, taken = [], True, False  # before: every condition so far known false; taken: one constant true
    for cond, stmts in arms:
        value = _known(cond, env, embedded_sql, facts) if before else None
        # (a branch whose condition is a constant false, or after one a constant true, never runs: it holds no
        # statement, and no RETURN that would make the rest uncertain; evasion round 19 e03b, `if p_table is not
        # null then ... return; end if;` replayed with p_table null. The model's facts are not that sure.)
        fixed = _constant(cond, embedded_sql)
        if fixed is not False and not taken:
            out.append((stmts, env, undone, None, guarded or not (before and value is True)))
        taken = taken or fixed is True
        before = before and value is False
    if not taken:
        out.append((body.get("else_body"), env, undone, None, guarded or not before))
    return out


def _constant(cond: Any, embedded_sql: Any) -> bool | None:
    expr = (cond or {}).get("PLpgSQL_expr") or {}
    return constant_truth(_expression(embedded_sql(expr.get("query", ""), expr.get("parseMode", _EXPRESSION))))


def _known(cond: Any, env: dict[str, str], embedded_sql: Any, facts: Facts) -> bool | None:
    expr = (cond or {}).get("PLpgSQL_expr") or {}
    return condition(_expression(embedded_sql(expr.get("query", ""), expr.get("parseMode", _EXPRESSION))),
                     env, facts, _text)


def _exit(body: dict, env: dict[str, str], direct: Frame | None, frames: list[Frame], stack: list[Any],
          embedded_sql: Any, facts: Facts) -> bool:
    """An EXIT or CONTINUE: a condition known in this round skips the rest of the round (CONTINUE) or of the
    loop (EXIT) or nothing; an unknown one makes the rest uncertain. True when all the rest of the block is."""
    label = body.get("label")
    target = next((f for f in reversed(frames) if label is None or f.label == label), None)
    if target is None:
        return True  # a labelled EXIT of a block: the rest of the DO block may not run
    cond = body.get("cond")
    known: bool | None = True if cond is None else _known(cond, env, embedded_sql, facts)
    if direct is not target or not target.unrolled:
        known = None if known is not False else False  # inside an IF, or a loop not unrolled
    if known is False:
        return False
    is_exit = bool(body.get("is_exit"))
    if known is None:
        # (an EXIT of an outer loop also ends the loops inside it)
        for f in frames[frames.index(target):]:
            if is_exit or f is not target:
                f.uncertain = True
            else:
                f.round_uncertain = True
        return False
    marker = "end" if is_exit else "round"
    while stack:  # skip the rest of the round or loop (and of loops inside it)
        item = stack[-1]
        if isinstance(item[0], str) and item[1] is target and item[0] in (marker, "end"):
            return False
        stack.pop()
        if isinstance(item[0], str) and item[0] == "end":
            frames.remove(item[1])
    return False


def _datum_name(datum: Any) -> str | None:
    body = next(iter(datum.values()), None) if isinstance(datum, dict) and len(datum) == 1 else None
    return body.get("refname") if isinstance(body, dict) else None


def _executed(body: dict, env: dict[str, Any], done: set[int], embedded_sql: Any,
              wilds: dict[str, LoopRows]) -> list[tuple[str, bool, bool]]:
    """The statements an EXECUTE runs when its text is known, each with whether it names a value the block cannot
    spell (WILD: it stands for the statement run on any name) and whether it is one of several texts the
    expression may compute (a CASE, a variable assigned more than one text: any may run, none certainly); in a
    loop's later rounds only one whose text changes with the loop's variable (a constant text is given once)."""
    expr = (body.get("query") or {}).get("PLpgSQL_expr") or {}
    if id(body) in done:
        return []
    tree = _sublinks(_expression(embedded_sql(expr.get("query", ""), expr.get("parseMode", _EXPRESSION))), env, wilds)
    tree = _fold_cases(tree)  # (a CASE decided to one result computes that text for certain: round 18 fp01)
    tree, counted = _counted(tree, env)
    variants = _variants(tree, env)
    varied = len(variants) > 1 or variants[0] is not tree
    out: list[tuple[str, bool, bool]] = []
    constant = not counted  # (`tables[i]` changes with the round)
    unread = []
    for variant in variants:
        text = _text(variant, env)
        if text is not None and _text(variant, {_VALUES: env.get(_VALUES)}) is None:
            constant = False
        if text is None:
            text = _text(variant, env, WILD)
            if text is None or WILD not in text:
                unread.append(variant)
                continue
        out += [(t, WILD in t, varied) for t in _statement_texts(text) if t]
    out += [(t, True, True) for t in _opening_guess(unread, env)]
    if constant or any(wild for _, wild, _ in out):
        done.add(id(body))  # (the same in every round: given once)
    return out


# What a text the block cannot read may still be seen to hold (evasion round 19 e08, e09): a string constant of
# the EXECUTE's expression that spells a command opening a table, or a word of one (`disable`) beside a constant
# that holds the rest (`... %s row level security`).
_OPENERS = ((re.compile(r"\bno\s+force\s+row\s+level\s+security\b", re.I), "no force row level security"),
            (re.compile(r"\bdisable\s+row\s+level\s+security\b", re.I), "disable row level security"),
            (re.compile(r"\bdisable\s+trigger\b", re.I), "disable trigger all"))
_RLS_TAIL = re.compile(r"\brow\s+level\s+security\b", re.I)
_RLS_WORD = re.compile(r"\s*(no\s+force|disable)\s*", re.I)
_TRIGGER_TAIL = re.compile(r"\btrigger\b", re.I)


def _opening_guess(variants: list[Any], env: dict[str, Any] | None = None) -> list[str]:
    """An EXECUTE whose text cannot be read is not harmless when the constants it is built from hold a command that
    opens a table (evasion round 19: "an EXECUTE it cannot read is taken as harmless" was the hole): it is read as
    that command on a table the block cannot name (WILD: every candidate table, as "may", round 16's rule). One
    whose constants hold no such command stays unknown and opens nothing.

    Each statement of the text is read as far as it can be (`_skeleton`): a constant that reaches it only as quoted
    data (format's %L, quote_literal, a literal between quotes in the command text) is no command word, and a
    statement whose readable opening is not ALTER (COMMENT, GRANT) opens nothing (evasion round 20 fp01: `comment on
    table %I is %L` of a text saying "never disable row level security"). A word of the command computed by a call
    the model cannot evaluate counts when one of its constants holds `disable` or `no force` at all, not only as the
    whole constant (round 20 e01: `substr('xdisable', 2)` was silent): a possible disable, conservatively."""
    out = []
    for variant in variants:
        text, holes = _skeleton(variant, env or {})
        text = _QUOTED.sub("''", text)
        for statement in text.split(";"):
            head = statement.lstrip()[:1]
            if head and ord(head) < _HOLE and not re.match(r"\s*alter\b", statement, re.I):
                # (an opening the file spells that is not ALTER runs no ALTER, but a part it cannot read may end
                # that statement with `;` and start another: what follows its first such part is one)
                hole = next((i for i, c in enumerate(statement) if ord(c) >= _HOLE), None)
                statement = statement[hole:] if hole is not None else ""
            if not statement.strip():
                continue
            live = [c for i, constants in enumerate(holes) if chr(_HOLE + i) in statement for c in constants]
            readable = re.sub(f"[{chr(_HOLE)}-{chr(_HOLE + max(len(holes), 1))}]", " ", statement)
            constants = [readable, *live]
            for pattern, command in _OPENERS:
                if any(pattern.search(c) for c in constants):
                    out.append(f"alter table {WILD} {command}")
            words = {" ".join(c.lower().split()) for c in constants if _RLS_WORD.fullmatch(c)}
            words |= {" ".join(m.lower().split()) for c in live for m in _RLS_INNER.findall(c)}
            if any(_RLS_TAIL.search(c) for c in constants):
                out += [f"alter table {WILD} {w} row level security" for w in sorted(words)]
            if "disable" in words and any(_TRIGGER_TAIL.search(c) for c in constants):
                out.append(f"alter table {WILD} disable trigger all")
    return list(dict.fromkeys(out))


_RLS_INNER = re.compile(r"no\s+force|disable", re.I)
_QUOTED = re.compile(r"'(?:[^']|'')*'")  # (a literal in the command text: data, whatever it says)
_HOLE = 0xE000  # chr(_HOLE + i) in a skeleton: the i-th part it cannot read
_DATA = "'?'"  # a literal the text holds whose value is not read: quoted data


def _skeleton(node: Any, env: dict[str, Any]) -> tuple[str, list[list[str]]]:
    """The text an EXECUTE's expression computes as far as it can be read: readable parts as text (WILD for a name
    the block cannot spell), an argument that reaches it only as a quoted literal (%L, quote_literal,
    quote_nullable) as `'?'` (its constants dropped: data), an identifier (%I, quote_ident) as WILD, and each other
    part as chr(_HOLE + i), holes[i] being the string constants it is computed from."""
    holes: list[list[str]] = []

    def walk(tree: Any) -> str:
        text = _text(tree, env, WILD)
        if text is not None and not text.startswith(_ARRAY):
            return text
        body = next(iter(tree.values()), None) if isinstance(tree, dict) and len(tree) == 1 else None
        kind = next(iter(tree)) if isinstance(body, dict) else ""
        if kind == "A_Expr" and body.get("kind", "AEXPR_OP") == "AEXPR_OP" and strings(body.get("name")) == ["||"]:
            return walk(body.get("lexpr")) + walk(body.get("rexpr"))
        if kind == "TypeCast" and dotted((body.get("typeName") or {}).get("names")) in _TEXT_TYPES \
                and not (body.get("typeName") or {}).get("arrayBounds"):
            return walk(body.get("arg"))
        if kind == "FuncCall":
            name = function_name(body).removeprefix("pg_catalog.")
            args = body.get("args") or []
            if name in ("quote_literal", "quote_nullable") and len(args) == 1:
                return _DATA
            if name == "quote_ident" and len(args) == 1:
                return WILD
            if name == "concat":
                return "".join(walk(a) for a in args)
            pattern = _text(args[0], env) if name == "format" and args else None
            if pattern is not None and not pattern.startswith(_ARRAY):
                formatted = _format_skeleton(pattern, args[1:], walk)
                if formatted is not None:
                    return formatted
        holes.append(list(_constants(tree)))
        return chr(_HOLE + len(holes) - 1)

    return walk(node), holes


def _format_skeleton(pattern: str, args: list[Any], walk: Any) -> str | None:
    """`format(pattern, ...)` read as `_skeleton` reads: %I as WILD, %L as quoted data, %s as its argument."""
    pieces = _format_pieces(pattern, len(args))
    if pieces is None:
        return None
    return "".join(p if isinstance(p, str) else WILD if p[0] == "I" else _DATA if p[0] == "L" else walk(args[p[1]])
                   for p in pieces)


def _constants(tree: Any) -> Iterator[str]:
    """The string constants of an expression (an array variable's elements among them)."""
    if isinstance(tree, list):
        for v in tree:
            yield from _constants(v)
    elif isinstance(tree, dict):
        if "A_Const" in tree:
            value = const(tree)
            if isinstance(value, str):
                yield from _elements(value) if value.startswith(_ARRAY) else [value]
            return
        for v in tree.values():
            yield from _constants(v)


_VALUES = "\1"  # env[_VALUES]: the texts each variable of the block has been assigned so far
_MAX_VARIANTS = 16


def _assign(values: dict[str, list[str]], name: str | None, tree: Any, env: dict[str, Any],
            wilds: dict[str, LoopRows], wild: str | None) -> None:
    """Record a text assigned to a variable (`v := ...`, a DECLARE default, SELECT ... INTO): every text it may
    hold, with WILD (or a query's WILD_<n>) for what the block cannot spell; a value not text is forgotten. A
    variable is NULL until assigned: its own name in its new value reads as empty (`v := v || format(...)`)."""
    if not name:
        return
    texts = _texts(tree, {**env, _VALUES: {**values, name: values.get(name) or [""]}}, wild)
    held = values.get(name, [])
    values[name] = (held + [t for t in texts if t not in held])[-_MAX_VARIANTS:] if texts else []


def _select_into(values: dict[str, list[str]], body: dict, query: str, env: dict[str, Any],
                 wilds: dict[str, LoopRows]) -> None:
    """`select <text> into v [from <catalog query>]`, the text also aggregated (`string_agg(format('alter table
    %I ...', tablename), ' ')`): v holds that text, the query's columns standing for the tables its rows may name
    (evasion round 17 e04b); a single value read by any other SELECT is unknown (WILD)."""
    fields = ((body.get("target") or {}).get("PLpgSQL_row") or {}).get("fields") or []
    parsed = _parsed_or_empty(query)
    select = parsed[0]["stmt"].get("SelectStmt") if len(parsed) == 1 else None
    targets = (select or {}).get("targetList") or []
    if not isinstance(select, dict) or len(targets) != len(fields):
        for f in fields:
            values.pop(f.get("name") if isinstance(f, dict) else None, None)
        return
    wild = WILD
    if select.get("fromClause"):
        wild = f"{WILD}_{len(wilds)}"
        wilds[wild] = loop_names(query)
    for field, target in zip(fields, targets):
        values[field.get("name")] = []
        _assign(values, field.get("name") if isinstance(field, dict) else None,
                _aggregated((target.get("ResTarget") or {}).get("val")), env, wilds, wild)


def _texts(tree: Any, env: dict[str, Any], wild: str | None) -> list[str]:
    """Each text an expression may compute; with `wild`, what the block cannot spell reads as that name."""
    texts = []
    for variant in _variants(tree, env):
        text = _text(variant, env)
        text = text if text is not None or wild is None else _text(variant, env, wild)
        if text is not None and text not in texts:
            texts.append(text)
    return texts


def _aggregated(value: Any) -> Any:
    """What each row of an aggregated text gives: `string_agg(x, sep)` and `array_to_string(array_agg(x), sep)`
    run x's statements one row after another (evasion round 17 e04b, round 18 e04b); any other value itself."""
    call = value.get("FuncCall") if isinstance(value, dict) else None
    name = function_name(call).removeprefix("pg_catalog.") if isinstance(call, dict) else ""
    args = (call or {}).get("args") or []
    if name == "array_to_string" and len(args) in (2, 3):
        inner = args[0].get("FuncCall") if isinstance(args[0], dict) else None
        if isinstance(inner, dict) and function_name(inner).removeprefix("pg_catalog.") == "array_agg" \
                and len(inner.get("args") or []) == 1 and not inner.get("agg_distinct"):
            return inner["args"][0]
    if name == "string_agg" and len(args) == 2:
        return args[0]
    return value


def _sublinks(tree: Any, env: dict[str, Any], wilds: dict[str, LoopRows]) -> Any:
    """The expression with each scalar sub-select (`execute (select string_agg(format('alter table %I ...',
    tablename), '; ') from pg_tables where ...)`, `v := (select ...)`) replaced by the text its rows give, the
    query's columns standing for the tables it may name (WILD_<n>), as `select ... into v` reads it (evasion round
    18 e04b); several texts as a CASE of them (any may be the one), a sub-select of no known text kept as it is."""
    if isinstance(tree, list):
        return [_sublinks(v, env, wilds) for v in tree]
    if not isinstance(tree, dict):
        return tree
    link = tree.get("SubLink")
    if isinstance(link, dict) and link.get("subLinkType") == "EXPR_SUBLINK":
        select = (link.get("subselect") or {}).get("SelectStmt")
        targets = (select or {}).get("targetList") or [] if isinstance(select, dict) else []
        if len(targets) != 1 or select.get("op", "SETOP_NONE") != "SETOP_NONE":
            return tree
        wild = WILD
        if select.get("fromClause"):
            wild = f"{WILD}_{len(wilds)}"
            wilds[wild] = select_rows(select)
        texts = _texts(_aggregated((targets[0].get("ResTarget") or {}).get("val")), env, wild)
        constants = [{"A_Const": {"sval": {"sval": t}}} for t in texts]
        if len(constants) == 1:
            return constants[0]
        return {"CaseExpr": {"args": [{"CaseWhen": {"result": c}} for c in constants]}} if constants else tree
    return {k: _sublinks(v, env, wilds) for k, v in tree.items()}


def _row_texts(values: dict[str, list[str]], var: Any, query: str, env: dict[str, Any],
               wilds: dict[str, LoopRows], placeholder: str) -> None:
    """The texts a FOR over a query's row holds in the columns its query computes (`for r in select format('alter
    table %I.%I disable row level security', schemaname, tablename) as cmd from pg_tables ... loop execute r.cmd`):
    each as its query computes it, the query's columns read as WILD_<n> (the tables the loop may name), as the
    `execute format(..., r.tablename)` form reads (evasion round 18 e04). A plain column keeps its WILD_<n>__<column>
    reading."""
    names = _row_names(var)
    record = "PLpgSQL_rec" in (var or {})
    for key in [k for k in values if record and k.startswith(names[0] + ".") or not record and k in names]:
        del values[key]  # (what the row held before the loop is not what it holds in it)
    parsed = _parsed_or_empty(query)
    select = parsed[0]["stmt"].get("SelectStmt") if len(parsed) == 1 else None
    if not isinstance(select, dict) or select.get("op", "SETOP_NONE") != "SETOP_NONE":
        return
    for i, target in enumerate(select.get("targetList") or []):
        res = target.get("ResTarget") or {}
        value = res.get("val")
        if not isinstance(value, dict) or "ColumnRef" in value or "TypeCast" in value:
            continue
        name = f"{names[0]}.{res.get('name') or _column_name(value)}" if record else \
            names[i] if len(names) == len(select["targetList"]) else None
        if name and not name.endswith("."):
            values[name] = []
            _assign(values, name, _aggregated(value), env, wilds, placeholder)


def _column_name(value: Any) -> str:
    """The name PostgreSQL gives an unnamed output column: a column's own, a function's; '' for another."""
    if isinstance(value, dict) and "ColumnRef" in value:
        fields = strings(value["ColumnRef"].get("fields"))
        return fields[-1] if fields and len(fields) == len(value["ColumnRef"].get("fields") or []) else ""
    call = value.get("FuncCall") if isinstance(value, dict) else None
    return function_name(call).split(".")[-1] if isinstance(call, dict) else ""


def _variants(tree: Any, env: dict[str, Any]) -> list[Any]:
    """The expression once per text it may compute: each CASE by each of its results, each variable of the block
    by each text it has been assigned (as a literal); the tree itself when it holds neither."""
    values = env.get(_VALUES) or {}
    if isinstance(tree, list):
        out: list[Any] = [[]]
        for item in tree:
            alternatives = _variants(item, env)
            out = [o + [a] for o in out for a in alternatives][:_MAX_VARIANTS]
        return out if any(a is not b for a, b in zip(out[0], tree)) or len(out) > 1 else [tree]
    if not isinstance(tree, dict):
        return [tree]
    case = tree.get("CaseExpr")
    if isinstance(case, dict):
        return [v for r in _case_results(case) if r is not None for v in _variants(r, env)][:_MAX_VARIANTS] or [tree]
    indirection = tree.get("A_Indirection")
    if isinstance(indirection, dict):
        elements = _subscripted(indirection, env)
        if elements is not None:
            return [{"A_Const": {"sval": {"sval": v}}} for v in elements][:_MAX_VARIANTS]
    ref = tree.get("ColumnRef")
    if isinstance(ref, dict):
        name = strings(ref.get("fields"))
        key = ".".join(name)  # (`r.cmd`: a record's field its loop's query computes)
        if (len(name) == 1 and name[0] not in env or len(name) == 2 and key not in env) and values.get(key):
            return [{"A_Const": {"sval": {"sval": v}}} for v in values[key]]
        return [tree]
    out = [{}]
    changed = False
    for key, value in tree.items():
        alternatives = _variants(value, env)
        changed = changed or len(alternatives) > 1 or alternatives[0] is not value
        out = [{**o, key: a} for o in out for a in alternatives][:_MAX_VARIANTS]
    return out if changed else [tree]


def _counted(tree: Any, env: dict[str, Any]) -> tuple[Any, bool]:
    """`tree` with each element of a list of names picked by the counter of an integer loop (`tables[i]` in the
    round where i is 2, of `tables` holding only `array['notes', 'documents']`) replaced by that name, for certain;
    and whether it had any (evasion round 22 fp02)."""
    if isinstance(tree, list):
        pairs = [_counted(x, env) for x in tree]
        return [x for x, _ in pairs], any(c for _, c in pairs)
    if not isinstance(tree, dict):
        return tree, False
    cut = tree.get("A_Indirection")
    subscripts = (cut.get("indirection") or []) if isinstance(cut, dict) else []
    index = (subscripts[0].get("A_Indices") or {}) if len(subscripts) == 1 and isinstance(subscripts[0], dict) \
        else {}
    ref = strings(((index.get("uidx") or {}).get("ColumnRef") or {}).get("fields")) if index else []
    counter = env.get(ref[0]) if len(ref) == 1 and not index.get("is_slice") else None
    if isinstance(counter, str) and re.fullmatch(r"\d{1,9}", counter):
        names = _string_list(cut.get("arg"), env.get(_VALUES))
        if names and 1 <= int(counter) <= len(names):
            return {"A_Const": {"sval": {"sval": names[int(counter) - 1]}}}, True
    pairs = {k: _counted(v, env) for k, v in tree.items()}
    return {k: v for k, (v, _) in pairs.items()}, any(c for _, c in pairs.values())


def _subscripted(indirection: dict, env: dict[str, Any]) -> list[str] | None:
    """The elements `cmds[1]` or `cmds[i]` may give, of an array variable whose elements are known (evasion round
    19 e08c): the one a constant subscript names, any of them for another; None when the array is not known."""
    subscripts = indirection.get("indirection") or []
    index = (subscripts[0].get("A_Indices") or {}) if len(subscripts) == 1 and isinstance(subscripts[0], dict) \
        else None
    if not index or index.get("is_slice"):
        return None
    arrays = []
    for variant in _variants(indirection.get("arg"), env):
        text = _text(variant, env)
        if text is None or not text.startswith(_ARRAY):
            return None
        arrays.append(_elements(text))
    at = const(index.get("uidx")) if isinstance(index.get("uidx"), dict) and "A_Const" in index["uidx"] else None
    out: list[str] = []
    for elements in arrays:
        picked = ([elements[at - 1]] if 1 <= at <= len(elements) else []) if isinstance(at, int) else elements
        out += [e for e in picked if e not in out]
    return out


def _case_results(case: dict) -> list[Any]:
    """The results a CASE may give: a WHEN decided false (its test of constants alone, as a replayed function's
    test of a parameter bound to the call's argument is: `case when p_on then 'enable' else 'disable' end` called
    with true; evasion round 18 fp01) gives nothing, and one decided true is the last that may."""
    out = []
    for w in case.get("args") or []:
        when = w.get("CaseWhen") or {}
        test = when.get("expr")
        if case.get("arg") is not None:
            test = {"A_Expr": {"kind": "AEXPR_OP", "name": [{"String": {"sval": "="}}], "lexpr": case["arg"],
                               "rexpr": test}}
        truth = constant_truth(test)
        if truth is False:
            continue
        out.append(when.get("result"))
        if truth is True:
            return out
    return [*out, case.get("defresult")]


def _fold_cases(tree: Any) -> Any:
    """The expression with each CASE whose tests of constants decide its one result replaced by that result."""
    if isinstance(tree, list):
        return [_fold_cases(t) for t in tree]
    if not isinstance(tree, dict):
        return tree
    case = tree.get("CaseExpr")
    if isinstance(case, dict):
        results = _case_results(case)
        if len(results) == 1 and results[0] is not None:
            return _fold_cases(results[0])
    return {k: _fold_cases(v) for k, v in tree.items()}


def _expression(sql: str) -> Any:
    """The one value of `select <expression>`; None when the text is not that."""
    parsed = _parsed_or_empty(sql)
    targets = (parsed[0]["stmt"].get("SelectStmt") or {}).get("targetList") if len(parsed) == 1 else None
    return (targets[0].get("ResTarget") or {}).get("val") if targets and len(targets) == 1 else None


def _statement_texts(text: str) -> list[str]:
    """Each statement of an EXECUTE string, which may hold several (libpg_query reports byte offsets)."""
    data = text.encode("utf-8", "surrogatepass")
    return [data[raw.get("stmt_location", 0):][:raw.get("stmt_len") or None].decode("utf-8", "surrogatepass")
            .strip() for raw in _parsed_or_empty(text)]


def _parsed_or_empty(text: str) -> list[dict]:
    """A dynamic statement the grammar rejects fails when the block runs; it changes nothing."""
    try:
        return pgparse.parse(text) if text else []
    except (pgparse.PGQueryError, RecursionError, ValueError):
        return []


def _text(node: Any, env: dict[str, Any], wild: str | None = None) -> str | None:
    """The text an expression of literals and loop variables computes; None for anything else (NULL included).
    With `wild`, a variable the block cannot spell (a record's field of a loop over a query, say) reads as that
    name, cast or not: the text then stands for the statement run for any value."""
    if not isinstance(node, dict) or len(node) != 1:
        return None
    (kind, body), = node.items()
    if not isinstance(body, dict):
        return None
    if kind == "A_Const":
        value = const(node)
        return value if isinstance(value, str) else None
    if kind == "ColumnRef":
        name = strings(body.get("fields"))
        if len(name) in (1, 2) and ".".join(name) in env:  # (a loop variable, or `r.name` of a loop's record)
            return env[".".join(name)]
        base = env.get(_FIELD + name[0]) if wild is not None and 0 < len(name) <= 2 else None
        if base is None:
            return wild
        return f"{base}{FIELD_MARK}{name[1]}" if len(name) == 2 and FIELD_MARK not in base else base
    if kind == "A_ArrayExpr":  # (an array variable's elements: `cmds text[] := array['disable']`; round 19 e08c)
        elements = [_text(e, env, wild) for e in body.get("elements") or []]
        return None if not elements or None in elements or any(_ARRAY in e or _ARRAY_SEP in e for e in elements) \
            else _ARRAY + _ARRAY_SEP.join(elements)
    if kind == "TypeCast":
        type_name = body.get("typeName") or {}
        if type_name.get("arrayBounds") and dotted(type_name.get("names")) in _TEXT_TYPES:
            inner = _text(body.get("arg"), env, wild)
            values = array_literal(inner) if inner is not None and not inner.startswith(_ARRAY) else None
            return _ARRAY + _ARRAY_SEP.join(values) if values else inner if inner and inner.startswith(_ARRAY) \
                else None
        text = dotted(type_name.get("names")) in _TEXT_TYPES and not type_name.get("arrayBounds")
        inner = _text(body.get("arg"), env, wild)
        if wild is not None and inner is not None and inner.startswith(WILD) and inner.isidentifier():
            return wild  # (`r.oid::regclass`: a relation's name, qualified or not)
        return inner if text and not type_name.get("typmods") else None
    if kind == "A_Expr":
        if body.get("kind", "AEXPR_OP") == "AEXPR_OP" and strings(body.get("name")) == ["->>"]:
            return _json_text(_json(body.get("lexpr"), env), body.get("rexpr"))  # (round 20 e01b)
        if body.get("kind", "AEXPR_OP") != "AEXPR_OP" or strings(body.get("name")) != ["||"]:
            return None
        left, right = _text(body.get("lexpr"), env, wild), _text(body.get("rexpr"), env, wild)
        if left is None or right is None:
            return None
        if left.startswith(_ARRAY) or right.startswith(_ARRAY):  # (an array's || appends, prepends or concatenates)
            return _ARRAY + _ARRAY_SEP.join([*(_elements(left) if left.startswith(_ARRAY) else [left]),
                                             *(_elements(right) if right.startswith(_ARRAY) else [right])])
        return left + right
    if kind != "FuncCall" or body.get("agg_star") or body.get("over") or body.get("agg_distinct"):
        return None
    name = function_name(body).removeprefix("pg_catalog.")
    if name in _CUTS:
        return _cut(name, body.get("args") or [], env)
    args = [_text(a, env, wild) for a in body.get("args") or []]
    if None in args:
        return None  # (concat skips a NULL, but an unknown argument is not one)
    if name == "quote_ident" and len(args) == 1:
        return ident(args[0])
    if name == "quote_literal" and len(args) == 1 and "\\" not in args[0]:
        return literal(args[0])
    if name == "concat":
        return "".join(args)
    if name == "format" and args:
        return _format(args[0], args[1:])
    # (evasion round 19 e08, e08b: a template's word replaced, words joined, a name folded to one case)
    if name == "concat_ws" and args:
        return args[0].join(args[1:])
    if name == "replace" and len(args) == 3:
        return args[0].replace(args[1], args[2]) if args[1] else args[0]
    if name in ("lower", "upper") and len(args) == 1:
        return _outside_wild(args[0], str.lower if name == "lower" else str.upper)
    if name in ("btrim", "ltrim", "rtrim") and len(args) in (1, 2):
        chars = args[1] if len(args) == 2 else " "
        if wild is not None and set(chars) & set(WILD + "0123456789"):
            return None  # (it may eat into the name the text stands for)
        return args[0].strip(chars) if name == "btrim" else args[0].lstrip(chars) if name == "ltrim" \
            else args[0].rstrip(chars)
    if name == "string_to_array" and len(args) == 2 and args[1] and _ARRAY not in args[0]:
        return _ARRAY + _ARRAY_SEP.join(args[0].split(args[1]))
    return None


# Text functions of constants a command word may be cut from (evasion round 20 e01: `substr('xdisable', 2)`):
# evaluated as PostgreSQL does, only on texts the block spells (a name it cannot spell is not cut).
_CUTS = ("substr", "substring", "left", "right", "split_part", "reverse", "translate", "repeat")
_MAX_REPEAT = 10_000


def _int(node: Any) -> int | None:
    """An integer constant (`2`, `-2`, `'2'::int`); None for anything else."""
    if isinstance(node, dict) and "A_Expr" in node:
        body = node["A_Expr"]
        if body.get("lexpr") is None and strings(body.get("name")) == ["-"]:
            value = _int(body.get("rexpr"))
            return None if value is None else -value
        return None
    if isinstance(node, dict) and "TypeCast" in node:
        names = dotted((node["TypeCast"].get("typeName") or {}).get("names"))
        if names.removeprefix("pg_catalog.") not in ("int", "int2", "int4", "int8", "integer", "smallint", "bigint"):
            return None
        value = const(node["TypeCast"].get("arg"))
        return int(value) if isinstance(value, int) or isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,9}\s*",
                                                                                               value) else None
    value = const(node)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _cut(name: str, nodes_: list[Any], env: dict[str, Any]) -> str | None:
    """substr/substring, left, right, split_part, reverse, translate, repeat of texts the block spells (no WILD)."""
    text = _text(nodes_[0], env) if nodes_ else None
    if text is None or text.startswith(_ARRAY):
        return None
    rest = nodes_[1:]
    if name == "reverse" and not rest:
        return text[::-1]
    if name == "translate" and len(rest) == 2:
        source, target = _text(rest[0], env), _text(rest[1], env)
        if source is None or target is None:
            return None
        table: dict[str, str] = {}
        for i, c in enumerate(source):
            table.setdefault(c, target[i] if i < len(target) else "")
        return "".join(table.get(c, c) for c in text)
    if name == "split_part" and len(rest) == 2:
        delimiter, n = _text(rest[0], env), _int(rest[1])
        if delimiter is None or not n:
            return None  # (n = 0 raises)
        parts = text.split(delimiter) if delimiter else [text]
        at = n - 1 if n > 0 else len(parts) + n
        return parts[at] if 0 <= at < len(parts) else ""
    numbers = [_int(r) for r in rest]
    if None in numbers:
        return None  # (substring(t from 'pattern'): a regular expression, not read)
    if name in ("substr", "substring") and len(numbers) in (1, 2):
        start = numbers[0]
        if len(numbers) == 2 and numbers[1] < 0:
            return None  # (a negative length raises)
        end = start + numbers[1] if len(numbers) == 2 else len(text) + 1
        return text[max(start, 1) - 1:max(end - 1, 0)] if end > 1 else ""
    if name in ("left", "right") and len(numbers) == 1:
        n = numbers[0]
        if name == "left":
            return text[:n] if n >= 0 else text[:max(len(text) + n, 0)]
        return (text[-n:] if n else "") if n >= 0 else text[min(-n, len(text)):]
    if name == "repeat" and len(numbers) == 1:
        return text * numbers[0] if len(text) * max(numbers[0], 0) <= _MAX_REPEAT else None
    return None


_JSON_TYPES = ("json", "jsonb", "pg_catalog.json", "pg_catalog.jsonb")


def _json(node: Any, env: dict[str, Any]) -> Any:
    """The value of a json/jsonb the block spells (`'{"off": "disable"}'::jsonb`, `... -> 'modes'`), wrapped in a
    one-item list (None: unknown)."""
    if not isinstance(node, dict):
        return None
    if "TypeCast" in node:
        cast = node["TypeCast"]
        if dotted((cast.get("typeName") or {}).get("names")) not in _JSON_TYPES or \
                (cast.get("typeName") or {}).get("arrayBounds"):
            return None
        text = _text(cast.get("arg"), env)
        if text is None or text.startswith(_ARRAY):
            return None
        try:
            return [json.loads(text)]
        except ValueError:
            return None
    body = node.get("A_Expr")
    if isinstance(body, dict) and body.get("kind", "AEXPR_OP") == "AEXPR_OP" and strings(body.get("name")) == ["->"]:
        inner = _json(body.get("lexpr"), env)
        return None if inner is None else _json_field(inner[0], body.get("rexpr"), env)
    return None


def _json_field(value: Any, key: Any, env: dict[str, Any]) -> Any:
    index = _int(key)
    if index is not None:
        if not isinstance(value, list):
            return [None]
        at = index if index >= 0 else len(value) + index
        return [value[at]] if 0 <= at < len(value) else [None]
    name = _text(key, env)
    if name is None or name.startswith(_ARRAY):
        return None
    return [value.get(name)] if isinstance(value, dict) else [None]


def _json_text(value: Any, key: Any) -> str | None:
    """`<json> ->> key`: a string as itself, another value as its json text; None for NULL or unknown."""
    if value is None:
        return None
    field = _json_field(value[0], key, {})
    if field is None or field[0] is None:
        return None
    item = field[0]
    return item if isinstance(item, str) else json.dumps(item, separators=(", ", ": ")) if not isinstance(
        item, bool) else ("true" if item else "false")


_ARRAY, _ARRAY_SEP = "\2", "\3"  # an array of known texts held by a variable: _ARRAY, its elements joined
_WILD_NAME = re.compile(re.escape(WILD) + r"\w*")


def _elements(value: str) -> list[str]:
    return value[len(_ARRAY):].split(_ARRAY_SEP)


def _outside_wild(text: str, change: Any) -> str:
    """`change` applied to a text but the names it stands for (WILD...), which stay as they are."""
    out, at = [], 0
    for match in _WILD_NAME.finditer(text):
        out += [change(text[at:match.start()]), match.group(0)]
        at = match.end()
    return "".join(out + [change(text[at:])])


_SPEC = re.compile(r"%(?:(?P<pos>[1-9][0-9]*)\$)?(?P<flag>-?)(?:(?P<width>[0-9]+)|\*(?:(?P<wpos>[1-9][0-9]*)\$)?)?"
                   r"(?P<type>[sIL%])")


def _format_pieces(pattern: str, count: int, width_of: Any = None) -> list | None:
    """format()'s pattern as PostgreSQL reads it (evasion round 19 e09): its text, and (type, argument index, left,
    width) for each `%[n$][-][width|*|*n$](s|I|L)`, a position setting where the next argument is taken from; `%%`
    is a '%'. None where PostgreSQL raises (a missing argument, an unknown specifier), or for a width taken from an
    argument that `width_of(index)` cannot read as an integer."""
    out: list = []
    i, following = 0, 0
    while i < len(pattern):
        if pattern[i] != "%":
            out.append(pattern[i])
            i += 1
            continue
        match = _SPEC.match(pattern, i)
        if match is None:
            return None
        i = match.end()
        kind = match["type"]
        if kind == "%":
            if match.group(0) != "%%":
                return None
            out.append("%")
            continue
        left = bool(match["flag"])
        width = int(match["width"]) if match["width"] else 0
        if match.group(0)[1:].lstrip("0123456789$-").startswith("*"):  # (a width taken from an argument)
            at = int(match["wpos"]) - 1 if match["wpos"] else following
            given = width_of(at) if width_of is not None and at < count else None
            if given is None:
                return None
            left, width = left or given < 0, abs(given)
            following = at + 1
        at = int(match["pos"]) - 1 if match["pos"] else following
        if at >= count:
            return None
        following = at + 1
        out.append((kind, at, left, width))
    return out


def _format(pattern: str, args: list[str]) -> str | None:
    """`format(pattern, args...)` as PostgreSQL's format() computes it (_format_pieces); None where it raises, or
    for a %L of a text holding a backslash (quote_literal writes E'...' then)."""
    pieces = _format_pieces(pattern, len(args), lambda at: int(args[at]) if re.fullmatch(
        r"\s*-?[0-9]{1,6}\s*", args[at]) else None)
    if pieces is None:
        return None
    out = []
    for piece in pieces:
        if isinstance(piece, str):
            out.append(piece)
            continue
        kind, at, left, width = piece
        value = args[at]
        if kind == "L" and "\\" in value:
            return None
        value = ident(value) if kind == "I" else literal(value) if kind == "L" else value
        out.append(value.ljust(width) if left else value.rjust(width))
    return "".join(out)


def _loop(kind: str, body: dict, names: list[str | None],
          held: dict[str, list[str]] | None = None) -> tuple[str, list[str]] | None:
    """(variable, names) of a loop over a list of string literals the body does not assign to, written in the
    loop or held by an array variable the block has assigned only that list (`held`: evasion round 21 v1,
    `declare tables text[] := array['notes', 'documents']; ... foreach t in array tables loop`)."""
    if kind == "PLpgSQL_stmt_foreach_a" and not body.get("slice"):
        varno = body.get("varno", 0)
        variable = names[varno] if isinstance(varno, int) and 0 <= varno < len(names) else None
        expr = (body.get("expr") or {}).get("PLpgSQL_expr") or {}
        values = _string_list(_expression(f"select {expr.get('query', '')}"), held)
    elif kind == "PLpgSQL_stmt_fori":  # (`for i in 1 .. array_length(tables, 1)`, read as `tables[i]`)
        variable = ((body.get("var") or {}).get("PLpgSQL_var") or {}).get("refname")
        values = _index_range(body, held)
    elif kind == "PLpgSQL_stmt_fors":
        fields = ((body.get("var") or {}).get("PLpgSQL_row") or {}).get("fields") or []
        variable = fields[0].get("name") if len(fields) == 1 and isinstance(fields[0], dict) else None
        query = ((body.get("query") or {}).get("PLpgSQL_expr") or {}).get("query", "")
        parsed = _parsed_or_empty(query)
        select = parsed[0]["stmt"].get("SelectStmt") if len(parsed) == 1 else None
        values = _select_values(select, held)
        record = ((body.get("var") or {}).get("PLpgSQL_rec") or {}).get("refname")
        column = _values_column(select) if record and values else None
        if column:  # (`for r in select unnest(array[...]) as table_name`: r.table_name; evasion round 18 fp05)
            if record in _written(body.get("body"), names):
                return None
            variable = f"{record}.{column}"
    else:
        return None
    if variable is None or values is None or not values or len(values) > _MAX_NAMES:
        return None
    if variable in _written(body.get("body"), names):
        return None  # `t := ...`, `... into t`: the name changes inside the loop
    return variable, values


def _index_range(body: dict, held: dict[str, list[str]] | None) -> list[str] | None:
    """The values, as texts, of an integer FOR loop counting up by one from a constant to a constant or to the
    length of a list of names (`for i in 1 .. array_length(tables, 1)`, `cardinality(tables)`: evasion round 22
    fp02; `array_lower(tables, 1) .. array_upper(tables, 1)`, a list's literal counting from 1: round 23 fp02); None
    for another range (REVERSE, a step, a bound the block computes)."""
    def bound(field: str) -> int | None:
        tree = _expression(f"select {((body.get(field) or {}).get('PLpgSQL_expr') or {}).get('query', '')}")
        value = _int(tree)
        call = tree.get("FuncCall") if isinstance(tree, dict) and value is None else None
        args = (call.get("args") or []) if isinstance(call, dict) else []
        name = function_name(call).removeprefix("pg_catalog.") if isinstance(call, dict) else ""
        if name == "cardinality" and len(args) == 1 or name in ("array_length", "array_upper", "array_lower") and \
                len(args) == 2 and _int(args[1]) == 1:
            names = _string_list(args[0], held)
            value = (1 if name == "array_lower" else len(names)) if names else None
        return value
    if body.get("reverse") or body.get("step") and _int(_expression(
            f"select {(body['step'].get('PLpgSQL_expr') or {}).get('query', '')}")) != 1:
        return None
    low, high = bound("lower"), bound("upper")
    if low is None or high is None or high - low >= _MAX_NAMES:
        return None
    return [str(i) for i in range(low, high + 1)]


def _values_column(select: dict) -> str | None:
    """The name of the one column `_select_values` reads: `column1` of VALUES, a target's alias, its column's
    name or its function's (`unnest`), the column `*` gives; None when PostgreSQL would name it otherwise."""
    if select.get("valuesLists"):
        return "column1"
    res = ((select.get("targetList") or [{}])[0].get("ResTarget") or {})
    fields = ((res.get("val") or {}).get("ColumnRef") or {}).get("fields") or []
    source = select.get("fromClause") or []
    if len(fields) == 1 and isinstance(fields[0], dict) and "A_Star" in fields[0] and len(source) == 1:
        # `select * from unnest(<list>) as t(name)`, `... from (values ...) v(t)`: the alias's column, else the
        # alias of a function's one column, or VALUES' column1 (evasion round 23 fp04)
        kind, body = next(iter(source[0].items()))
        alias = body.get("alias") or {}
        named = strings(alias.get("colnames"))
        return named[0] if named else alias.get("aliasname") or "unnest" if kind == "RangeFunction" else \
            "column1" if kind == "RangeSubselect" else None
    return res.get("name") or _column_name(res.get("val")) or None


def _written(tree: Any, names: list[str | None]) -> set[str | None]:
    """The variables statements in `tree` set: assigned, read INTO, a loop's own, GET DIAGNOSTICS'."""
    def name(varno: Any) -> str | None:
        return names[varno] if isinstance(varno, int) and 0 <= varno < len(names) else None
    out: set[str | None] = set()
    for kind, fields in nodes(tree):
        if kind in ("PLpgSQL_stmt_assign", "PLpgSQL_stmt_foreach_a", "PLpgSQL_stmt_fori"):
            out.add(name(fields.get("varno")) if "varno" in fields else (fields.get("var") or {}).get(
                "PLpgSQL_var", {}).get("refname"))
        elif kind == "PLpgSQL_diag_item":
            out.add(name(fields.get("target")))
        elif kind == "PLpgSQL_row":
            out.update(f.get("name") for f in fields.get("fields") or [] if isinstance(f, dict))
        elif kind in ("PLpgSQL_var", "PLpgSQL_rec"):
            out.add(fields.get("refname"))
    return out


def _string_list(node: Any, held: dict[str, list[str]] | None = None) -> list[str] | None:
    """The strings of `array['a', 'b']`, `'{a,b}'::text[]` or `array['a', 'b']::text[]`, or of a variable `held`
    gives one such list (its only value so far); None for anything else."""
    if not isinstance(node, dict):
        return None
    if "TypeCast" in node:
        cast = node["TypeCast"]
        inner = cast.get("arg")
        if isinstance(inner, dict) and "A_Const" in inner and (cast.get("typeName") or {}).get("arrayBounds"):
            text = const(inner)
            return array_literal(text) if isinstance(text, str) else None
        return _string_list(inner, held)
    ref = strings((node.get("ColumnRef") or {}).get("fields")) if "ColumnRef" in node else []
    if len(ref) == 1 and len((held or {}).get(ref[0]) or []) == 1:
        value = held[ref[0]][0]  # type: ignore[index]
        values = _elements(value) if value.startswith(_ARRAY) else array_literal(value)
        return None if not values or any(_ARRAY in v or WILD in v for v in values) else values
    elements = (node.get("A_ArrayExpr") or {}).get("elements") if "A_ArrayExpr" in node else None
    values = [_text(e, {}) for e in elements or []]
    return None if not values or None in values else values


def array_literal(text: str) -> list[str] | None:
    """`{a,b}`: plain names only (no quotes, escapes, nesting or NULL)."""
    text = text.strip()
    if not (text.startswith("{") and text.endswith("}")) or any(c in text[1:-1] for c in '{}"\\'):
        return None
    values = [v.strip() for v in text[1:-1].split(",")]
    return None if any(not v or v.lower() == "null" for v in values) else values


def _select_values(select: Any, held: dict[str, list[str]] | None = None) -> list[str] | None:
    """The one column of names a SELECT returns: `select unnest(<list>)`, `select x from unnest(<list>) x` or
    `values ('a'), ('b')` (also as `select x from (values ...) v(x)`), nothing filtering them."""
    if not isinstance(select, dict) or select.get("op", "SETOP_NONE") != "SETOP_NONE" or select.get("whereClause") \
            or select.get("limitCount") or select.get("distinctClause") is not None:
        return None
    if select.get("valuesLists"):
        rows = [(row.get("List") or {}).get("items") or [] for row in select["valuesLists"]]
        values = [_text(row[0], {}) if len(row) == 1 else None for row in rows]
        return None if None in values else values
    targets = select.get("targetList") or []
    value = (targets[0].get("ResTarget") or {}).get("val") if len(targets) == 1 else None
    source = select.get("fromClause") or []
    if not source:
        return _unnest(value, held)
    if len(source) != 1 or not isinstance(value, dict) or "ColumnRef" not in value:
        return None  # (`select x || 's' from ...`: a computed name)
    item = source[0]
    if "RangeFunction" in item:
        functions = item["RangeFunction"].get("functions") or []
        call = (functions[0].get("List") or {}).get("items", [None])[0] if len(functions) == 1 else None
        return _unnest(call, held)
    inner = (item.get("RangeSubselect") or {}).get("subquery") or {}
    return _select_values(inner.get("SelectStmt")) if inner.get("SelectStmt", {}).get("valuesLists") else None


def unnested(node: Any) -> list[str] | None:
    """The names `unnest(<a list of string literals>)` gives; None for anything else."""
    return _unnest(node)


def _unnest(node: Any, held: dict[str, list[str]] | None = None) -> list[str] | None:
    call = node.get("FuncCall") if isinstance(node, dict) else None
    if not isinstance(call, dict) or function_name(call).removeprefix("pg_catalog.") != "unnest":
        return None
    args = call.get("args") or []
    return _string_list(args[0], held) if len(args) == 1 else None
