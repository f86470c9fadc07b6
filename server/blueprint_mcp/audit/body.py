"""What a function body touches: the tables it reads and writes, the NEW columns a trigger sets.

SQL bodies go through the PostgreSQL grammar, PL/pgSQL bodies through libpg_query's PL/pgSQL
parser and then each embedded query through the grammar again. Dynamic SQL (EXECUTE) is read where the body
spells its text out (a constant, or format() of a constant template over names the body tests: `_add_dynamic`)
and stays unknown otherwise; a DO block's EXECUTE strings of literals are statements it runs (`do_loops`).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import pgparse

from .pins import unwrap
from .platform import mentions_user_metadata
from .plpgsql_answer import plpgsql_answer
from ..sql.ident import ident
from .tree import (Node, boolean_args, called_functions, const, dotted, nodes, procedure_calls_typed, qualified,
                   replaced, strings)

WRITES = ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt")  # statements that write a relation
_ASSIGN = re.compile(r":=|=")
# PL/pgSQL expression parse modes (libpg_query RawParseMode): 0 = a statement, 2 = an expression,
# 3-5 = an assignment "target := expression".
_STATEMENT, _EXPRESSION = 0, 2
_ERROR_LEVEL = 21  # PostgreSQL's elog ERROR: RAISE EXCEPTION (the default level), as libpg_query reports it


@dataclass
class BodyFacts:
    reads: set[str] = field(default_factory=set)
    writes: set[str] = field(default_factory=set)
    assigns: list[str] = field(default_factory=list)
    # (NEW field, position in `trees` of the value) of each assignment to a field of NEW (new.created_by :=
    # auth.uid()) and SELECT ... INTO new.<field>: what a trigger writes into the row.
    stamps: list[tuple[str, int]] = field(default_factory=list)
    # Tables a statement writes with a value read from the user's own metadata (raw_user_meta_data, or
    # user_metadata of the JWT): whatever the user put there at signup or since.
    metadata_writes: set[str] = field(default_factory=set)
    # Text parameters the body pastes into dynamic SQL as they are (EXECUTE 'select ' || p, format('%s', p)),
    # directly or through a variable made from them, with the line of the EXECUTE.
    dynamic_inputs: list[str] = field(default_factory=list)
    # A statement reads the user's own metadata (as lint 0015 reads a policy): whatever the user chose.
    reads_user_metadata: bool = False
    # The parsed statements (a PL/pgSQL body's embedded queries and expressions) and the names of its
    # variables, for the reading of whom the body answers for (`callers`).
    trees: list[Any] = field(default_factory=list)
    variables: set[str] = field(default_factory=set)
    calls: set[str] = field(default_factory=set)  # every function a statement calls, as written
    # Columns a trigger compares between NEW and OLD in the condition of an IF or CASE whose branch raises or skips
    # the row (if new.organization_id <> old.organization_id then raise ...): a guard. A test that only records
    # is none.
    compares: set[str] = field(default_factory=set)
    # The body runs SQL made at run time (EXECUTE, RETURN QUERY EXECUTE, OPEN ... FOR EXECUTE): unread.
    dynamic: bool = False
    # (position in `trees`, the variables it sets) of each SELECT ... INTO, `x := <expression>` and DECLARE
    # x := <expression>: where a variable's value comes from (a row picked by new.project_id, a parameter).
    into: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)
    # A RAISE at level EXCEPTION (or ASSERT): the body may refuse its caller (a NOTICE or WARNING goes on).
    raises: bool = False
    # Positions in `trees` of the conditions of IF statements (and CASE WHENs) with a RAISE in a branch, and of
    # ASSERTs: tests that
    # refuse the caller (`if not exists (select ... ) then raise`), not any test of a body that raises somewhere.
    guards: list[int] = field(default_factory=list)
    # Columns compared between NEW and OLD in a test whose branch calls functions (perform private.refuse(...)):
    # column -> those functions' names, a guard where one of them raises.
    compares_via: dict[str, set[str]] = field(default_factory=dict)
    # Of `compares`, columns compared only with <> (or =), never IS DISTINCT FROM: NULL on either side passes.
    compares_loosely: set[str] = field(default_factory=set)
    # Positions in `trees` of every test the body makes: IF and ELSIF conditions (raising or not), ASSERT, EXIT or
    # CONTINUE WHEN, WHILE, and a CASE statement's WHEN.
    conditions: list[int] = field(default_factory=list)
    # Positions in `trees` of the conditions whose own branch refuses (raises, or skips the row with return null or
    # old): a NULL condition takes the other way, past the refusal.
    refuses_when: list[int] = field(default_factory=list)
    # Positions in `trees` of the conditions of a function that is no trigger whose own branch only leaves it (RETURN,
    # after logging or assignments at most: `if p_role >= 'admin' and not <owner> then return; end if;`): nothing
    # after the IF runs where the condition holds, as after a refusal; unlike a RAISE it undoes nothing before it, and
    # a callee's RETURN leaves only the callee (evasion round 21 fp02).
    leaves_when: list[int] = field(default_factory=list)
    # Positions in `trees` of the conditions of an IF without ELSIF (in a function that is no trigger) whose ELSE
    # only leaves it (RETURN) or raises where no handler catches: nothing after the IF runs where the condition
    # fails (`if p_role < 'admin' or <owner> then null; else return; end if;`: evasion round 23 fp03).
    leaves_unless: list[int] = field(default_factory=list)
    # Position in `trees` of a condition (a refusing one among them) -> (position, holds) of each IF condition
    # enclosing it: its branch runs only where each enclosing one holds (True) or fails (False: an ELSE, an ELSIF).
    within: dict[int, list[tuple[int, bool]]] = field(default_factory=dict)
    # Position in `trees` of a statement in an IF's (or a CASE's) branch -> the same of the IF conditions around it:
    # it runs only where each holds (or fails): `if <admin> then update ... set role = 'owner' ...; end if;` (evasion
    # round 22 e04).
    enclosed: dict[int, list[tuple[int, bool]]] = field(default_factory=dict)
    # Position in `trees` of a refusing condition whose every RAISE a BEGIN ... EXCEPTION block's handler catches
    # without raising or returning (when others then raise warning ...) -> the position where that block ends: the
    # refusal refuses nothing the statements after the block do (evasion round 15 e03).
    caught: dict[int, int] = field(default_factory=dict)
    # Positions in `trees` of the queries of SELECT ... INTO without STRICT: no row leaves their targets NULL.
    lookups: list[int] = field(default_factory=list)
    # Positions in `trees` of the SQL statements no refusal comes before on their path and no branch asking who
    # calls encloses (the write in a dispatcher's other branch), and whether the body asks who calls anywhere
    # (a test calling a schema's function, auth.uid() among them): BP089.
    unguarded: list[int] = field(default_factory=list)
    asks_caller: bool = False
    # Positions in `trees` of expressions whose value decides nothing: PERFORM's of no FROM (the answer is thrown
    # away; one reading rows sets FOUND), a
    # RAISE's parameters, and the tests of an IF whose every branch only logs (raise notice/warning goes on). Only
    # a call in them that may raise can refuse the caller.
    discarded: list[int] = field(default_factory=list)
    # The statements of EXECUTE texts whose names are made at run time (format('create table public.%I ...',
    # 'log_' || v_month)), parsed with each such name as DYNAMIC_NAME: what kind of object they make, and where.
    shapes: list[Any] = field(default_factory=list)
    # Positions in `trees` of DECLARE x := <expression> defaults: they run on entering their block, before its
    # statements, so no such assignment comes between a test and a write (evasion round 17 e03b).
    declared: list[int] = field(default_factory=list)
    # Positions in `trees` of PERFORMs every run reaches: outside any IF, CASE and loop, and no handler around them,
    # so a RAISE in the function they call refuses the caller there (evasion round 17 fp04: perform
    # private.assert_can_grant(p_org, p_role)).
    performs: list[int] = field(default_factory=list)
    # The expression a PL/pgSQL function returns, when its body is only IFs, assignments and RETURNs (as a CASE:
    # `plpgsql_answer`), for the readings an SQL helper's `select <expression>` gets (evasion round 21 e05).
    answer: Any = None
    # Positions in `trees` of the SQL statements (INSERT, UPDATE, ...) every run reaches, as `performs` (a signup
    # trigger's `insert into public.profiles (id) values (new.id)`: evasion round 21 e06).
    always: list[int] = field(default_factory=list)

    def copy(self) -> BodyFacts:
        """Its own sets and lists, every field; the parse trees are shared (nothing changes a body's trees
        once read)."""
        return BodyFacts(**{f.name: _own(getattr(self, f.name)) for f in fields(self)})


def _own(value: Any) -> Any:
    return set(value) if isinstance(value, set) else list(value) if isinstance(value, list) else \
        dict(value) if isinstance(value, dict) else value


USER_METADATA = ("raw_user_meta_data", "user_metadata")
_MISSING = object()


def _compared(facts: BodyFacts, expr: dict, calls: list[str] | None = None) -> None:
    """new.<column> compared with old.<column>, either way round; with `calls`, in a test whose branch calls those
    functions (a guard if one of them raises: the schema tells, BodyFacts.compares_via)."""
    for column, safe in new_old_compared(expr):
        if calls:
            facts.compares_via.setdefault(column, set()).update(calls)
            continue
        if not safe and column not in facts.compares:
            facts.compares_loosely.add(column)
        elif safe:
            facts.compares_loosely.discard(column)
        facts.compares.add(column)


def new_old_compared(expr: dict) -> list[tuple[str, bool]]:
    """(column, NULL-safe) for each column an A_Expr compares between NEW and OLD, either way round: `new.x <>
    old.x` (not NULL-safe), `new.x is distinct from old.x` or `coalesce(new.x, <sentinel>) <> coalesce(old.x,
    <sentinel>)` (NULL-safe), and each pair of two rows of one length, `(new.organization_id, new.id) is distinct
    from (old.organization_id, old.id)` or `row(new.x) <> row(old.x)` (evasion round 24 fp02)."""
    left, right = unwrap(expr.get("lexpr")), unwrap(expr.get("rexpr"))
    op_safe = expr.get("kind", "AEXPR_OP") != "AEXPR_OP"
    rows = [(side or {}).get("RowExpr") if isinstance(side, dict) else None for side in (left, right)]
    if rows[0] is not None and rows[1] is not None:
        items = [row.get("args") or [] for row in rows]
        pairs = list(zip(*items)) if len(items[0]) == len(items[1]) else []
    else:
        pairs = [(left, right)]
    out = []
    for a, b in pairs:
        coalesced = _is_coalesce(a) and _is_coalesce(b)
        a, b = _coalesced_column(a), _coalesced_column(b)
        if not (isinstance(a, dict) and "ColumnRef" in a and isinstance(b, dict) and "ColumnRef" in b):
            continue
        sides = [strings(side["ColumnRef"].get("fields")) for side in (a, b)]
        if len(sides[0]) == len(sides[1]) == 2 and sides[0][1] == sides[1][1] and \
                {sides[0][0].lower(), sides[1][0].lower()} == {"new", "old"}:
            out.append((sides[0][1], op_safe or coalesced))
    return out


def _is_coalesce(x: Any) -> bool:
    x = unwrap(x)
    return isinstance(x, dict) and "CoalesceExpr" in x


def _coalesced_column(x: Any) -> Any:
    """The column a side compares: itself, or the first argument of a coalesce around it, casts aside."""
    x = unwrap(x)
    if isinstance(x, dict) and "CoalesceExpr" in x:
        args = x["CoalesceExpr"].get("args") or []
        return unwrap(args[0]) if args else None
    return x


def add_statements(facts: BodyFacts, tree: Any, default_schema: str) -> None:
    """Record the relations `tree` (parsed statements) reads and writes. The tree is walked once: its typed
    nodes serve the writes, the reads (its RangeVars, as `relations` finds them) and the metadata check; a
    write's own nodes are walked again for metadata only when the tree holds a metadata name at all. A CALL's
    procedure is kept as a function call is (`procedure_calls_typed`), for every walk that follows calls."""
    typed = list(nodes(tree))
    writes: list[tuple[str, Node]] = []
    procedures = False
    for kind, body in typed:
        if kind == "RangeVar":
            facts.reads.add(qualified(body, default_schema))
        elif kind == "FuncCall":
            facts.calls.add(dotted(body.get("funcname")))
        elif kind == "CallStmt" and isinstance(body.get("funccall"), dict):
            facts.calls.add(dotted(body["funccall"].get("funcname")))
            procedures = True
        # A write's target is a bare RangeVar field, so `relations` (typed nodes only) never counts it as read.
        elif kind in WRITES and isinstance(body.get("relation"), dict):
            target = qualified(body["relation"], default_schema)
            facts.writes.add(target)
            writes.append((target, body))
    facts.trees.append(procedure_calls_typed(tree) if procedures else tree)
    if writes and any(_names_metadata(kind, body) for kind, body in typed):
        for target, body in writes:
            if any(_names_metadata(kind, inner) for kind, inner in nodes(body)):
                facts.metadata_writes.add(target)
    facts.reads_user_metadata = facts.reads_user_metadata or mentions_user_metadata(typed)


def _names_metadata(kind: str, body: Node) -> bool:
    """A name (String) or a constant (A_Const) that is one of USER_METADATA."""
    return (kind == "String" and body.get("sval") in USER_METADATA) or \
        (kind == "A_Const" and const({"A_Const": body}) in USER_METADATA)


# --- bodies read before -------------------------------------------------------------------------------

# (kind, text, default schema, parameters) -> what reading that body found (None: it does not parse). A body's
# facts depend on nothing else, and the same bodies come back: an agent audits a folder again after changing
# one migration, and every blueprint renders the same core functions (20 of habit-tracker's 26 PL/pgSQL bodies
# are b2b-saas's too), which is a third of auditing a rendered blueprint. Bounded by entries, by body size and by
# the text of all the bodies kept (their parse trees are kept with them; the oldest go first).
_READ: OrderedDict[tuple, BodyFacts | None] = OrderedDict()
_READ_ENTRIES, _READ_MAX_CHARS, _READ_MAX_TOTAL = 512, 64 * 1024, 1024 * 1024
_READ_LOCK = threading.Lock()
_read_chars = 0  # the text length of every body kept


def _remembered(key: tuple, read: Callable[[], BodyFacts | None]) -> BodyFacts | None:
    """`read()`, or what it returned for the same key before; always a copy the caller may change."""
    if len(key[1]) > _READ_MAX_CHARS:
        return read()
    with _READ_LOCK:
        hit = _READ.get(key, _MISSING)
        if hit is not _MISSING:
            _READ.move_to_end(key)
    if hit is _MISSING:
        hit = read()
        _keep(key, hit)
    return None if hit is None else hit.copy()


def _keep(key: tuple, facts: BodyFacts | None) -> None:
    global _read_chars
    with _READ_LOCK:
        if key not in _READ:
            _read_chars += len(key[1])
        _READ[key] = facts
        while _READ and (len(_READ) > _READ_ENTRIES or _read_chars > _READ_MAX_TOTAL):
            _read_chars -= len(_READ.popitem(last=False)[0][1])


def forget_bodies() -> None:
    """Read every body anew from now on (what a first audit in a fresh process does)."""
    global _read_chars
    with _READ_LOCK:
        _READ.clear()
        _read_chars = 0


def sql_body(text: str, default_schema: str) -> BodyFacts | None:
    """Facts of a LANGUAGE sql body (its text, between the quotes)."""
    return _remembered(("sql", text, default_schema), lambda: _read_sql_body(text, default_schema))


def plpgsql_body(create_statement: str, default_schema: str,
                 parameters: list[tuple[str, str]] | None = None) -> BodyFacts | None:
    """Facts of a CREATE FUNCTION ... LANGUAGE plpgsql statement (the whole statement text); `parameters`:
    (name, type) of its input parameters, in order."""
    key = ("plpgsql", create_statement, default_schema, tuple(parameters or ()))
    return _remembered(key, lambda: _read_plpgsql_body(create_statement, default_schema, parameters))


def _read_sql_body(text: str, default_schema: str) -> BodyFacts | None:
    try:
        parsed = pgparse.parse(text)
    except (pgparse.PGQueryError, RecursionError, ValueError):
        return None
    facts = BodyFacts()
    add_statements(facts, parsed, default_schema)
    return facts


def _read_plpgsql_body(create_statement: str, default_schema: str,
                       parameters: list[tuple[str, str]] | None) -> BodyFacts | None:
    try:
        tree = pgparse.parse_pgsql(create_statement)
    except (pgparse.PGQueryError, RecursionError, ValueError):
        return None
    facts = BodyFacts()
    # libpg_query returns one {"PLpgSQL_function": ...} per function, at the top: walking the whole tree to find
    # them would walk every body twice (the statements are walked below).
    for fn in (item.get("PLpgSQL_function") for item in tree if isinstance(item, dict)):
        if not isinstance(fn, dict):
            continue
        datums = fn.get("datums") or []
        new_varno = fn.get("new_varno")
        facts.variables |= {(d.get("PLpgSQL_var") or {}).get("refname", "") for d in datums
                            if isinstance(d, dict) and "PLpgSQL_var" in d} - {"", "found"}
        setting: tuple[str, ...] = ()  # the variables the statement just walked sets (its expression follows)
        stamping: tuple[str, ...] = ()  # ... or the field of NEW it sets
        lookup = False  # ... by a SELECT ... INTO without STRICT (BodyFacts.lookups)
        dynamic: list[tuple[str, dict]] = []  # EXECUTE statements, read once the static ones are
        loops: dict[int, tuple[str, ...]] = {}  # id of a FOR loop's query -> the loop's variables
        guards: set[int] = set()  # ids of IF conditions whose branches raise
        conditions: set[int] = set()  # ids of every test (BodyFacts.conditions)
        compare_tests: list[tuple[int, list[str]]] = []  # (position in trees, the functions its branch calls)
        branch_of: dict[int, list] = {}  # id of an EXECUTE statement -> the conditions of the IF branches it is in
        refusing: set[int] = set()  # ids of conditions whose branch raises or skips the row (return null/old)
        # ids of conditions whose branch only leaves the function (BodyFacts.leaves_when); None in a trigger, where
        # RETURN NEW goes on with the row
        leaving: set[int] | None = set() if fn.get("new_varno") is None and fn.get("old_varno") is None else None
        leaving_else: set[int] = set()  # ids of IF conditions whose ELSE only leaves or raises (leaves_unless)
        calling: dict[int, list[str]] = {}  # ids of conditions whose branch calls functions (perform f(...))
        discarded: set[int] = set()  # ids of expressions whose value decides nothing (BodyFacts.discarded)
        performed: set[int] = set()  # ids of PERFORM queries: discarded unless they read rows (FOUND tells)
        enclosing: dict[int, list[tuple[int, bool]]] = {}  # id of a condition -> (id, holds) of the IFs around it
        position_of: dict[int, int] = {}  # id of a condition -> its position in trees
        swallowed, block_last = _swallowed(fn.get("action"))  # id of a RAISE -> ids of the blocks catching it
        caught: dict[int, set[int]] = {}  # id of a refusing condition -> ids of the blocks catching its RAISEs
        ends: dict[int, int] = {}  # id of a catching block -> the position in trees where its body ends
        caught_at: list[tuple[int, set[int]]] = []  # (position of a refusing condition, the blocks catching it)
        case_of: dict[int, tuple[str, str]] = {}  # id of a CASE's WHEN test -> (case variable, the CASE's expression)
        unguarded, asks = _paths(fn.get("action"), leaving is not None)
        always = _performed_always(fn.get("action"))
        statements_always = _performed_always(fn.get("action"), "PLpgSQL_stmt_execsql", "sqlstmt")
        expression_at: dict[int, Any] = {}  # id of a PLpgSQL_expr -> its parse, for `plpgsql_answer`
        facts.asks_caller = facts.asks_caller or asks
        for inner_kind, body in nodes(fn.get("action")):
            if inner_kind == "PLpgSQL_stmt_assign":
                datum = datums[body["varno"]] if 0 <= body.get("varno", -1) < len(datums) else {}
                rec = datum.get("PLpgSQL_recfield") if isinstance(datum, dict) else None
                if rec and rec.get("recparentno") == new_varno and rec.get("fieldname"):
                    facts.assigns.append(rec["fieldname"])
                    stamping = (rec["fieldname"],)
                setting = _target_names(datum)
            elif inner_kind == "PLpgSQL_stmt_execsql" and body.get("into"):
                setting = _target_names(body.get("target"))
                stamping = tuple(n[4:] for n in setting if n.lower().startswith("new.") and len(setting) == 1)
                lookup = not body.get("strict")
            elif inner_kind == "PLpgSQL_stmt_foreach_a":  # foreach v_id in array p_ids: v_id is one of p_ids
                setting = _target_names(datums[body["varno"]] if 0 <= body.get("varno", -1) < len(datums) else {})
            elif inner_kind in ("PLpgSQL_stmt_perform", "PLpgSQL_stmt_raise"):
                (performed if inner_kind == "PLpgSQL_stmt_perform" else discarded).update(
                    id(e) for e in _expressions(body))
                if _is_raise(inner_kind, body):
                    facts.raises = True
            elif _is_raise(inner_kind, body):
                facts.raises = True
                if inner_kind == "PLpgSQL_stmt_assert":  # assert <cond>: a test that refuses
                    cond = (body.get("cond") or {}).get("PLpgSQL_expr")
                    guards.add(id(cond))
                    conditions.add(id(cond))
            elif inner_kind in ("PLpgSQL_stmt_exit", "PLpgSQL_stmt_while", "PLpgSQL_case_when"):
                # exit/continue when, while, a CASE statement's when: tests that decide what the body does
                cond = (body.get("cond") or body.get("expr") or {}).get("PLpgSQL_expr")
                if isinstance(cond, dict):
                    conditions.add(id(cond))
                    if inner_kind == "PLpgSQL_case_when":  # case when <cond> then raise ...: a guard like IF's
                        _branch_tests(cond, body.get("stmts"), guards, refusing, calling, leaving)
                        _note_caught(cond, body.get("stmts"), swallowed, caught)
            elif inner_kind == "PLpgSQL_stmt_case":
                # a WHEN's body runs where its test holds and the earlier ones fail, the ELSE where every one fails
                # (evasion round 15 e01); `case p_role when 'admin'` tests "__Case__Variable_N__" in ('admin')
                whens = [x.get("PLpgSQL_case_when") or {} for x in body.get("case_when_list") or []]
                conds = [(w.get("expr") or {}).get("PLpgSQL_expr") for w in whens]
                _enclose(conds, [w.get("stmts") for w in whens], body.get("else_stmts"), enclosing)
                t_expr = ((body.get("t_expr") or {}).get("PLpgSQL_expr") or {}).get("query")
                if t_expr and isinstance(body.get("t_varno"), int):
                    for cond in conds:
                        if isinstance(cond, dict):
                            case_of[id(cond)] = (f'"__Case__Variable_{body["t_varno"]}__"', t_expr)
            elif inner_kind == "PLpgSQL_stmt_if":
                branches = [((body.get("cond") or {}).get("PLpgSQL_expr"),
                             [body.get("then_body"), body.get("else_body")])]
                branches += [((e.get("cond") or {}).get("PLpgSQL_expr"), [e.get("stmts"), body.get("else_body")])
                             for e in (x.get("PLpgSQL_if_elsif") or {} for x in body.get("elsif_list") or [])]
                guards.update(id(cond) for cond, stmts in branches if isinstance(cond, dict) and _raises(stmts))
                _enclose([c for c, _ in branches], [body.get("then_body")] + [
                    (x.get("PLpgSQL_if_elsif") or {}).get("stmts") for x in body.get("elsif_list") or []],
                    body.get("else_body"), enclosing)
                if all(_only_logs(stmts) for stmts in [body.get("then_body"), body.get("else_body")] +
                       [(x.get("PLpgSQL_if_elsif") or {}).get("stmts") for x in body.get("elsif_list") or []]):
                    discarded.update(id(cond) for cond, _ in branches)  # `if not <check> then raise warning`
                conditions.update(id(cond) for cond, _ in branches if isinstance(cond, dict))
                otherwise = body.get("else_body")
                if leaving is not None and not body.get("elsif_list") and isinstance(branches[0][0], dict) and (
                        _only_leaves(otherwise) or _raises(otherwise) and not swallowed):
                    leaving_else.add(id(branches[0][0]))
                for cond, stmts in [(branches[0][0], body.get("then_body"))] + \
                        [(c, st[0]) for c, st in branches[1:]]:
                    if isinstance(cond, dict):
                        _branch_tests(cond, stmts, set(), refusing, calling, leaving)
                        _note_caught(cond, stmts, swallowed, caught)
                        # an EXECUTE runs only where every enclosing branch's condition holds (outer ones first)
                        for k, b in nodes(stmts):
                            if k in _DYNAMIC:
                                branch_of.setdefault(id(b), []).append(cond)
            elif inner_kind == "PLpgSQL_stmt_fors":  # for job in select ...: job is each row (its query follows
                query = (body.get("query") or {}).get("PLpgSQL_expr")  # the loop's body in the tree)
                if isinstance(query, dict):
                    loops[id(query)] = _target_names(body.get("var"))
            elif inner_kind == "PLpgSQL_expr":
                setting = loops.pop(id(body), setting)
                before = len(facts.trees)
                query = body.get("query", "")
                if id(body) in case_of:  # the case variable is the CASE's expression: test that (p_role in (...))
                    query = query.replace(case_of[id(body)][0], f"({case_of[id(body)][1]})")
                _embedded(facts, query, body.get("parseMode", _STATEMENT), default_schema)
                for block in block_last.get(id(body), ()):
                    ends[block] = len(facts.trees)
                if id(body) in caught and id(body) in refusing and len(facts.trees) > before:
                    caught_at.append((before, caught[id(body)]))
                if setting and len(facts.trees) > before:
                    facts.into.append((before, setting))
                    if lookup:
                        facts.lookups.append(before)
                if stamping and len(facts.trees) > before:
                    facts.stamps.append((stamping[0], before))
                if id(body) in guards and len(facts.trees) > before:
                    facts.guards.append(before)
                if id(body) in refusing and len(facts.trees) > before:
                    facts.refuses_when.append(before)
                elif leaving and id(body) in leaving and len(facts.trees) > before:
                    facts.leaves_when.append(before)
                if id(body) in leaving_else and len(facts.trees) > before:
                    facts.leaves_unless.append(before)
                if id(body) in unguarded and len(facts.trees) > before:
                    facts.unguarded.append(before)
                if id(body) in always and len(facts.trees) > before:
                    facts.performs.append(before)
                if id(body) in statements_always and len(facts.trees) > before:
                    facts.always.append(before)
                if len(facts.trees) == before + 1:
                    expression_at[id(body)] = facts.trees[before]
                if (id(body) in refusing or id(body) in calling) and len(facts.trees) > before:
                    compare_tests.append((before, calling.get(id(body), []) if id(body) not in refusing else []))
                if id(body) in conditions and len(facts.trees) > before:
                    facts.conditions.append(before)
                    position_of[id(body)] = before
                    around = [(position_of[c], holds) for c, holds in enclosing.get(id(body), []) if c in position_of]
                    if around:
                        facts.within[before] = around
                elif id(body) in enclosing and len(facts.trees) > before:
                    around = [(position_of[c], holds) for c, holds in enclosing[id(body)] if c in position_of]
                    if around:
                        facts.enclosed[before] = around
                if len(facts.trees) > before and (id(body) in discarded or id(body) in performed and
                                                  not _reads_rows(facts.trees[before])):
                    facts.discarded.append(before)
                setting, stamping, lookup = (), (), False
            elif inner_kind in _DYNAMIC and body.get(_DYNAMIC[inner_kind]):
                facts.dynamic = True
                dynamic.append((inner_kind, body))
        for at, blocks in caught_at:
            if all(b in ends for b in blocks):
                facts.caught[at] = min(ends[b] for b in blocks)
        # DECLARE x := <expression>: the defaults run at every call, before the first statement
        for datum in datums:
            var = datum.get("PLpgSQL_var") if isinstance(datum, dict) else None
            for inner_kind, body in nodes(datum):
                if inner_kind == "PLpgSQL_expr":
                    before = len(facts.trees)
                    _embedded(facts, body.get("query", ""), body.get("parseMode", _EXPRESSION), default_schema)
                    if var and var.get("refname") and len(facts.trees) > before:
                        facts.into.append((before, (var["refname"],)))
                        facts.declared.append(before)
                    if len(facts.trees) == before + 1:
                        expression_at[id(body)] = facts.trees[before]
        facts.answer = plpgsql_answer(fn, expression_at) if expression_at else None
        # NEW against OLD in a test that refuses (raises, skips the row, or calls a function the audit reads for a
        # RAISE): a guard. A test that only records (new.previous_owner := old.owner_id) is none.
        for at, calls in compare_tests:
            for kind, body in nodes(facts.trees[at]):
                if kind == "A_Expr":
                    _compared(facts, body, calls)
        tested = _names_tested(facts.trees) if dynamic else {}  # from the static statements, once
        held = _held_texts(fn, facts) if dynamic else {}
        for inner_kind, body in dynamic:
            # names its branches' conditions admit (`elsif p_table in ('countries', 'currencies') then execute ...`
            # never runs for 'projects', which another branch tests: evasion round 6, fp02); nested branches narrow
            here = dict(tested)
            narrowed: set[str] = set()
            for cond in branch_of.get(id(body), []):
                for var, names in _names_admitted(_expression_tree(cond)).items():
                    here[var] = [n for n in here[var] if n in names] if var in narrowed else names
                    narrowed.add(var)
            _add_dynamic(facts, inner_kind, body, default_schema, here, held)
        if parameters:
            facts.dynamic_inputs += dynamic_inputs(fn, parameters)
    _metadata_through_variables(facts, default_schema)
    _metadata_through_claims(facts)
    return facts


_ASKS = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\s*\.\s*[A-Za-z_][A-Za-z0-9_]*\s*\(")


def _asks_who(cond: Any) -> bool:
    """A test calling a function of a schema (auth.uid(), private.organization_ids_with_role(...)): it may ask
    who calls. Read from the text, before the statements are parsed."""
    expr = (cond or {}).get("PLpgSQL_expr") if isinstance(cond, dict) else None
    return bool(expr) and bool(_ASKS.search(expr.get("query", "")))


def _paths(action: Any, returns: bool = False) -> tuple[set[int], bool]:
    """(ids of the SQL statements' expressions that no refusal on their path guards, whether any test asks who
    calls). A refusal (an IF with a RAISE at the top of a branch, a bare RAISE, PERFORM of a schema's function)
    guards what follows it on its path, and what came before it too (the RAISE rolls it back); a branch whose
    test asks who calls guards what it holds. A refusal in another branch guards nothing of this one (a
    dispatcher checking its 'delete' branch only), nor does one inside a loop after the loop. With `returns` (a
    function that is no trigger), an IF whose test asks who calls and whose branch only leaves (`if not <admin>
    then return; end if;`) guards what follows it, not what came before (evasion round 21 fp02)."""
    asks = False

    def ends_raising(statements: Any) -> bool:
        return any(isinstance(w, dict) and len(w) == 1 and _is_raise(*next(iter(w.items())))
                   for w in statements or [])

    def walk(statements: Any, guarded: bool) -> tuple[bool, list[int]]:
        nonlocal asks
        pending: list[int] = []
        for wrapped in statements or []:
            if not isinstance(wrapped, dict) or len(wrapped) != 1:
                continue
            kind, body = next(iter(wrapped.items()))
            if not isinstance(body, dict):
                continue
            if kind in ("PLpgSQL_stmt_if", "PLpgSQL_stmt_case"):
                if kind == "PLpgSQL_stmt_if":
                    branches = [(body.get("cond"), body.get("then_body"))] + [
                        ((e.get("PLpgSQL_if_elsif") or {}).get("cond"), (e.get("PLpgSQL_if_elsif") or {}).get("stmts"))
                        for e in body.get("elsif_list") or []]
                    otherwise = body.get("else_body")
                else:
                    branches = [((w.get("PLpgSQL_case_when") or {}).get("expr"), (w.get("PLpgSQL_case_when") or {})
                                 .get("stmts")) for w in body.get("case_when_list") or []]
                    otherwise = body.get("else_stmts")
                check = any(ends_raising(stmts) for _, stmts in branches)
                leaves = returns and not check and any(_asks_who(cond) and _only_leaves(stmts)
                                                       for cond, stmts in branches)
                inner: list[int] = []
                results = []
                for cond, stmts in branches:
                    # the body asks who calls where a test calling a schema's function refuses (a check); one that
                    # only chooses what to do (if public.is_rate_limited(...)) asks nothing of the caller
                    asks = asks or (_asks_who(cond) and (ends_raising(stmts) or returns and _only_leaves(stmts)))
                    g, p = walk(stmts, guarded or _asks_who(cond))
                    inner += p
                    results.append(g or ends_raising(stmts))
                # (the ELSE of a branch that refuses or only leaves runs where its test failed: `if not <admin>
                # then return; else <write> end if;`, evasion round 22 e05)
                g, p = walk(otherwise, guarded or check or leaves)
                inner += p
                results.append((g or ends_raising(otherwise)) if otherwise else guarded or check)
                if check:
                    pending = []  # the refusal is on the path of every statement before it
                pending += inner
                guarded = check or leaves or all(results)
            elif _is_raise(kind, body):
                pending, guarded = [], True
            elif kind == "PLpgSQL_stmt_execsql":
                expr = (body.get("sqlstmt") or {}).get("PLpgSQL_expr")
                if isinstance(expr, dict) and not guarded:
                    pending.append(id(expr))
            elif kind == "PLpgSQL_stmt_perform":
                # perform private.require_admin(p_org) may refuse: it guards, but it says no more that the body
                # asks who calls (perform public.touch_instance(v_domain) is an action)
                if _asks_who(body.get("expr")):
                    pending, guarded = [], True
            elif kind == "PLpgSQL_stmt_block":
                g, p = walk(body.get("body"), guarded)
                if g and not guarded:
                    pending = []
                pending += p
                guarded = g
            elif kind in ("PLpgSQL_stmt_loop", "PLpgSQL_stmt_while", "PLpgSQL_stmt_fori", "PLpgSQL_stmt_fors",
                          "PLpgSQL_stmt_foreach_a", "PLpgSQL_stmt_forc", "PLpgSQL_stmt_dynfors"):
                pending += walk(body.get("body"), guarded)[1]
        return guarded, pending

    unguarded: list[int] = []
    if isinstance(action, dict):
        block = action.get("PLpgSQL_stmt_block")
        unguarded = walk((block or {}).get("body") if isinstance(block, dict) else [action], False)[1]
    return set(unguarded), asks


def _performed_always(action: Any, statement: str = "PLpgSQL_stmt_perform", part: str = "expr") -> set[int]:
    """Ids of the expressions of the PERFORMs (or other `statement`s, their `part`) every run reaches: in the
    function's block and the plain blocks inside it, never in an IF, CASE or loop, nor in a block with an exception
    handler (which may swallow what they raise)."""
    out: set[int] = set()

    def walk(block: Any) -> bool:
        """Whether the block ends the run (a RETURN: nothing after it runs)."""
        if not isinstance(block, dict) or block.get("exceptions"):
            return False
        for wrapped in block.get("body") or []:
            if not isinstance(wrapped, dict) or len(wrapped) != 1:
                continue
            kind, body = next(iter(wrapped.items()))
            if kind == statement and isinstance(body, dict):
                expr = (body.get(part) or {}).get("PLpgSQL_expr")
                if isinstance(expr, dict):
                    out.add(id(expr))
            elif kind == "PLpgSQL_stmt_block" and walk(body) or kind == "PLpgSQL_stmt_return":
                return True
        return False

    walk((action or {}).get("PLpgSQL_stmt_block") if isinstance(action, dict) else None)
    return out


def _branch_tests(cond: dict, stmts: Any, guards: set[int], refusing: set[int], calling: dict[int, list[str]],
                  leaving: set[int] | None = None) -> None:
    """Record what a branch does when its condition holds: raises (a guard, and refusing), skips the row (`return
    null` or `return old`: refusing), only leaves a function that is no trigger (`leaving`, given for those:
    BodyFacts.leaves_when), or calls functions (perform f(...), call p(...): calling, a guard if one raises)."""
    if _raises(stmts):
        guards.add(id(cond))
        refusing.add(id(cond))
        return
    if leaving is not None and _only_leaves(stmts):
        leaving.add(id(cond))
    for kind, body in nodes(stmts):
        query = ((body.get("expr") or {}).get("PLpgSQL_expr") or {}).get("query", "") if isinstance(body, dict) else ""
        if kind == "PLpgSQL_stmt_return" and query.strip().lower() in ("null", "old"):
            refusing.add(id(cond))
            return
    calls = [name for kind, body in nodes(stmts) if kind in ("PLpgSQL_stmt_perform", "PLpgSQL_stmt_call")
             for name in called_functions(
                 _parsed_or_empty(((body.get("expr") or {}).get("PLpgSQL_expr") or {}).get("query", "")))]
    if calls:
        calling[id(cond)] = calls


def _only_leaves(statements: Any) -> bool:
    """Branch statements that end in a RETURN and before it only log (RAISE below EXCEPTION) or assign: no statement
    runs there that the RETURN would leave behind done."""
    kinds = [next(iter(w)) for w in statements or [] if isinstance(w, dict) and len(w) == 1]
    return bool(kinds) and kinds[-1] == "PLpgSQL_stmt_return" and all(
        k in ("PLpgSQL_stmt_raise", "PLpgSQL_stmt_assign") for k in kinds[:-1]) and not _raises(statements)


def _enclose(conds: list, bodies: list, otherwise: Any, enclosing: dict[int, list[tuple[int, bool]]]) -> None:
    """Record, for each condition in an IF's (or a CASE's) branches, the tests around it: a branch's own holds, the
    earlier ones fail (an ELSIF, a later WHEN), and in the ELSE every one fails."""
    for i, stmts in enumerate(list(bodies) + [otherwise]):
        around = [(id(c), False) for c in conds[:i] if isinstance(c, dict)] + \
            ([(id(conds[i]), True)] if i < len(conds) and isinstance(conds[i], dict) else [])
        for kind, inner in nodes(stmts):
            if kind == "PLpgSQL_expr":
                enclosing.setdefault(id(inner), []).extend(around)


# SQLSTATEs of the condition names a RAISE or an exception handler names most (the rest match only by name)
_STATES = {"raise_exception": "P0001", "no_data_found": "P0002", "too_many_rows": "P0003", "assert_failure": "P0004",
           "plpgsql_error": "P0000", "insufficient_privilege": "42501",
           "syntax_error_or_access_rule_violation": "42000",
           "invalid_authorization_specification": "28000", "integrity_constraint_violation": "23000",
           "check_violation": "23514", "unique_violation": "23505", "foreign_key_violation": "23503",
           "not_null_violation": "23502", "restrict_violation": "23001", "data_exception": "22000",
           "invalid_parameter_value": "22023", "query_canceled": "57014"}


def _raised_state(kind: str, body: dict) -> str:
    """The SQLSTATE (or, unknown, the condition name) a RAISE or ASSERT raises; "" where it is made at run time."""
    if kind == "PLpgSQL_stmt_assert":
        return "P0004"
    state = body.get("condname") or "P0001"
    for option in body.get("options") or []:
        opt = option.get("PLpgSQL_raise_option") or {} if isinstance(option, dict) else {}
        if opt.get("opt_type") == 0:  # USING ERRCODE = '42501'
            text = ((opt.get("expr") or {}).get("PLpgSQL_expr") or {}).get("query", "").strip()
            state = text[1:-1] if len(text) > 1 and text[0] == text[-1] == "'" else ""
    return _STATES.get(state.lower(), state.upper() if len(state) == 5 else state.lower())


def _catches(condition: str, state: str) -> bool:
    """An exception handler's condition catches the state (OTHERS all but assert_failure and query_canceled; a
    class's 'xx000' every state of the class)."""
    condition = condition.lower()
    if condition == "others":
        return state not in ("P0004", "57014")
    code = _STATES.get(condition, condition.upper() if len(condition) == 5 else condition)
    return bool(state) and (code == state or len(code) == 5 and code.endswith("000") and code[:2] == state[:2]
                            and len(state) == 5)


def _swallowed(action: Any) -> tuple[dict[int, set[int]], dict[int, list[int]]]:
    """(id of each RAISE or ASSERT a BEGIN ... EXCEPTION block catches with a handler that neither raises nor
    returns -> ids of those blocks, id of the last expression in such a block's body -> ids of the blocks). A
    handler that raises passes the error on (to an outer block that may catch it); one that returns ends the
    call, so the refusal stands. """
    swallowed: dict[int, set[int]] = {}
    last: dict[int, list[int]] = {}
    for kind, block in nodes(action):
        if kind != "PLpgSQL_stmt_block" or not isinstance(block.get("exceptions"), dict):
            continue
        handlers = [h.get("PLpgSQL_exception") or {} for h in
                    (block["exceptions"].get("PLpgSQL_exception_block") or {}).get("exc_list") or []]
        for k, stmt in nodes(block.get("body")):
            if not _is_raise(k, stmt):
                continue
            state = _raised_state(k, stmt)
            for handler in handlers:
                names = [(c.get("PLpgSQL_condition") or {}).get("condname", "") for c in handler.get("conditions")
                         or [] if isinstance(c, dict)]
                if any(_catches(n, state) for n in names):
                    if not any(_is_raise(a, b) or a == "PLpgSQL_stmt_return" for a, b in nodes(handler.get("action"))):
                        swallowed.setdefault(id(stmt), set()).add(id(block))
                    break  # the first handler that catches it handles it
        exprs = [id(e) for k, e in nodes(block.get("body")) if k == "PLpgSQL_expr"]
        if exprs and any(id(block) in b for b in swallowed.values()):
            last.setdefault(exprs[-1], []).append(id(block))
    return swallowed, last


def _note_caught(cond: Any, stmts: Any, swallowed: dict[int, set[int]], caught: dict[int, set[int]]) -> None:
    """A condition whose branch's every RAISE a block catches (BodyFacts.caught): the blocks (the innermost
    ending first counts)."""
    raised = [id(b) for k, b in nodes(stmts) if _is_raise(k, b)]
    if isinstance(cond, dict) and raised and all(r in swallowed for r in raised):
        caught[id(cond)] = {b for r in raised for b in swallowed[r]}


def _is_raise(kind: str, body: Node) -> bool:
    """A RAISE at level EXCEPTION (the default) or an ASSERT: the body may refuse its caller there."""
    return kind == "PLpgSQL_stmt_assert" or (kind == "PLpgSQL_stmt_raise" and
                                             body.get("elog_level", _ERROR_LEVEL) >= _ERROR_LEVEL)


def _expressions(stmt: dict) -> list[dict]:
    """The PL/pgSQL expressions of a PERFORM (its query) or a RAISE (its parameters and USING options)."""
    return [e for k, e in nodes([stmt.get("expr"), stmt.get("params"), stmt.get("options")]) if k == "PLpgSQL_expr"]


def _reads_rows(tree: Any) -> bool:
    """A statement with a FROM: `perform 1 from ... where m.user_id = auth.uid()` sets FOUND by the rows it finds,
    which a later `if not found then raise` tests; `perform f(...)` always finds its one row."""
    return any(kind == "SelectStmt" and body.get("fromClause") for kind, body in nodes(tree))


def _only_logs(statements: Any) -> bool:
    """Branch statements that do nothing but log (RAISE below EXCEPTION, NULL); none at all too."""
    return all(isinstance(w, dict) and len(w) == 1 and next(iter(w)) == "PLpgSQL_stmt_raise" and
               not _is_raise(*next(iter(w.items()))) for w in statements or [])


def _raises(statements: Any) -> bool:
    """A RAISE at level EXCEPTION (or an ASSERT) among PL/pgSQL statements, however nested."""
    return any(_is_raise(kind, body) for kind, body in nodes(statements))


def _metadata_through_variables(facts: BodyFacts, default_schema: str) -> None:
    """A write of a variable set from the user's own metadata (v_role := new.raw_user_meta_data ->> 'role', or
    select ... into from it) writes that metadata too."""
    tainted = variables_from(facts.trees, facts.into, names_metadata)
    if not tainted:
        return
    for tree in facts.trees:
        for kind, body in nodes(tree):
            if kind in WRITES and isinstance(body.get("relation"), dict) and mentions_variables(body, tainted):
                facts.metadata_writes.add(qualified(body["relation"], default_schema))


def _metadata_through_claims(facts: BodyFacts) -> None:
    """`claims jsonb := auth.jwt(); ... claims -> 'user_metadata'` reads user_metadata as the call would: a variable
    set from the claims (auth.jwt(), the request.jwt.claims setting), directly or through another, stands for them
    in every later statement (evasion round 16 e06b)."""
    if facts.reads_user_metadata or not facts.into:
        return
    held = frozenset(variables_from(facts.trees, facts.into, _reads_claims))
    if held:
        facts.reads_user_metadata = any(mentions_user_metadata(nodes(tree), held) for tree in facts.trees)


def _reads_claims(tree: Any) -> bool:
    """The tree calls auth.jwt() or reads a request.jwt.claim... setting."""
    typed = list(nodes(tree))
    return any(kind == "FuncCall" and dotted(body.get("funcname")) == "auth.jwt" for kind, body in typed) or \
        (any(kind == "FuncCall" and dotted(body.get("funcname")) == "current_setting" for kind, body in typed) and
         any(kind == "A_Const" and "request.jwt.claim" in str(const({"A_Const": body}) or "") for kind, body in typed))


def names_metadata(tree: Any) -> bool:
    """The tree names the user's own metadata (USER_METADATA, as a name or a string)."""
    return any(_names_metadata(kind, body) for kind, body in nodes(tree))


def mentions_variables(tree: Any, names: set[str]) -> bool:
    """A column reference in the tree whose first part is one of `names` (v, v.field)."""
    return any(kind == "ColumnRef" and strings(body.get("fields"))[:1] and strings(body.get("fields"))[0] in names
               for kind, body in nodes(tree))


def variables_from(trees, into, source: Callable[[Any], bool]) -> set[str]:
    """The variables a body sets (`into`: BodyFacts.into) from a statement `source` holds for, directly or through
    other such variables (v2 := v1 || 'x'). A write's RETURNING ... INTO hands on what it returns, not what it
    wrote."""
    tainted: set[str] = set()
    grew = True
    while grew:
        grew = False
        for index, names in into:
            if set(names) <= tainted:
                continue
            given = next(([b.get("returningList")] for k, b in nodes(trees[index]) if k in WRITES), trees[index])
            if source(given) or mentions_variables(given, tainted):
                tainted |= set(names)
                grew = True
    return tainted


def _target_names(target: Any) -> tuple[str, ...]:
    """The variables an INTO target or an assignment's datum names: a row's fields, a record, a variable."""
    if not isinstance(target, dict) or len(target) != 1:
        return ()
    kind, body = next(iter(target.items()))
    if kind == "PLpgSQL_row":
        return tuple(f["name"] for f in body.get("fields") or [] if f.get("name"))
    return (body["refname"],) if kind in ("PLpgSQL_var", "PLpgSQL_rec") and body.get("refname") else ()


# --- dynamic SQL made of input ------------------------------------------------------------------------

# Types whose text cannot close a quote or start a clause: a value of them pasted into SQL stays a value.
_INERT_TYPES = re.compile(r"^(pg_catalog\.)?\"?(u?int[248]?|integer|smallint|bigint|numeric|decimal|real|"
                          r"double precision|float[48]?|bool(ean)?|uuid|date|time(stamp)?(tz)?|"
                          r"timestamp with(out)? time zone|interval|oid|regclass|regproc|regtype|money)\"?(\[\])?$")
_QUOTING = ("quote_ident", "quote_literal", "quote_nullable")
# Functions whose result carries their arguments' text through.
_PASSING = ("concat", "concat_ws", "lower", "upper", "btrim", "ltrim", "rtrim", "trim", "replace", "substr",
            "substring", "left", "right", "nullif", "array_to_string", "string_agg", "translate", "repeat",
            "lpad", "rpad", "regexp_replace", "overlay", "textcat", "coalesce")
# Functions returning text taken out of their first (json) argument.
_JSON_TEXT = ("jsonb_extract_path_text", "json_extract_path_text", "jsonb_extract_path", "json_extract_path",
              "jsonb_array_elements_text", "json_array_elements_text")
_PLACEHOLDER = re.compile(r"%(?:(\d+)\$)?-?\d*([sIL%])")
_DYNAMIC = {"PLpgSQL_stmt_dynexecute": "query", "PLpgSQL_stmt_dynfors": "query",
            "PLpgSQL_stmt_return_query": "dynquery", "PLpgSQL_stmt_open": "dynquery"}


def _raw(node: Any) -> set[str]:
    """Names of the variables an expression's text contains as they are (not quoted, not typed)."""
    if not isinstance(node, dict) or len(node) != 1:
        return set()
    kind, body = next(iter(node.items()))
    if not isinstance(body, dict):
        return set()
    if kind == "ColumnRef":
        names = strings(body.get("fields"))
        return {names[-1]} if len(names) == 1 else set()
    if kind == "ParamRef":
        return {f"${body.get('number', 0)}"}
    if kind == "A_Expr":
        if strings(body.get("name")) == ["||"]:
            return _raw(body.get("lexpr")) | _raw(body.get("rexpr"))
        if strings(body.get("name")) in (["->>"], ["#>>"], ["->"], ["#>"]):
            return _raw(body.get("lexpr"))  # text the caller put in a json parameter: p_filter ->> 'q'
        return set()
    if kind == "A_Indirection":  # an element or field of a parameter: p_terms[1], (p_filter).q
        return _raw(body.get("arg"))
    if kind == "TypeCast":
        target = ".".join(strings((body.get("typeName") or {}).get("names")))
        return set() if _INERT_TYPES.match(target) else _raw(body.get("arg"))
    if kind == "CoalesceExpr":
        return set().union(*(_raw(a) for a in body.get("args") or []))
    if kind == "CaseExpr":
        results = [(w.get("CaseWhen") or {}).get("result") for w in body.get("args") or []]
        return set().union(*(_raw(r) for r in [*results, body.get("defresult")]))
    if kind == "FuncCall":
        name = strings(body.get("funcname"))[-1:] or [""]
        args = body.get("args") or []
        if name[0] in _QUOTING:
            return set()
        if name[0] == "format":
            return _format_raw(args)
        if name[0] in _JSON_TEXT:
            return _raw(args[0]) if args else set()
        if name[0] in _PASSING:
            return set().union(*(_raw(a) for a in args))
    return set()


def format_placeholders(template: str) -> Iterator[tuple[re.Match, str, int]]:
    """Each placeholder of a format() template with its kind (s, I, L or %) and the position (from 1) of the
    argument it takes, as format() counts them: `%2$s` names its own, the next one follows it (0 for %%)."""
    position = 0
    for m in _PLACEHOLDER.finditer(template):
        if m.group(2) == "%":
            yield m, "%", 0
            continue
        position = int(m.group(1)) if m.group(1) else position + 1
        yield m, m.group(2), position


def _format_raw(args: list) -> set[str]:
    """format(): the arguments %s pastes as they are (%I and %L quote theirs)."""
    if not args:
        return set()
    fmt = const(args[0])
    if not isinstance(fmt, str):
        return set().union(*(_raw(a) for a in args))
    return set().union(*(_raw(args[index]) for _, kind, index in format_placeholders(fmt)
                         if kind == "s" and index < len(args)))


# --- dynamic SQL whose text the body spells out -------------------------------------------------------

_MAX_DYNAMIC_TEXTS = 8  # statements one EXECUTE may stand for (a table name among a list the body tests)


def values_set_once(reading: Any) -> dict[str, Any]:
    """Variable -> the expression it holds, for each variable set once only (a DECLARE default, `c_sql constant
    text := '...'`, or one assignment) from an expression that reads no table (a body's facts or reading: its
    `trees` and `into`). `execute c_sql using p_id` runs that text (evasion round 6, e01); `v := new.id` picks by
    new.id (e11)."""
    counts: dict[str, int] = {}
    for _, names in reading.into:
        for name in names:
            counts[name] = counts.get(name, 0) + 1
    out = {}
    for at, names in reading.into:
        tree = reading.trees[at] if at < len(reading.trees) else None
        select = ((tree[0] if isinstance(tree, list) and len(tree) == 1 else {}).get("stmt") or {}).get("SelectStmt")
        targets = (select or {}).get("targetList") or []
        if len(names) == 1 and counts[names[0]] == 1 and len(targets) == 1 and not (select or {}).get("fromClause"):
            out[names[0]] = (targets[0].get("ResTarget") or {}).get("val")
    return out


def _held_texts(fn: dict, facts: BodyFacts) -> dict[str, Any]:
    """The values a body's variables hold for its EXECUTEs (values_set_once), but of variables an EXECUTE ... INTO
    or FETCH ... INTO sets too: their text may change (review)."""
    overwritten = {n for k, b in nodes(fn.get("action")) if k in ("PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_fetch")
                   and (b.get("into") or k == "PLpgSQL_stmt_fetch") for n in _target_names(b.get("target"))}
    return {k: v for k, v in values_set_once(facts).items() if k not in overwritten}


def _add_dynamic(facts: BodyFacts, kind: str, body: dict, default_schema: str, tested: dict[str, list[str]],
                 held: dict[str, Any] | None = None) -> None:
    """Read an EXECUTE whose text is spelled out: a constant, or format() of a constant template whose %I and %s
    take constants or a variable the body tests against a list of names (`if p_table not in ('projects',
    'tasks') then raise`: one statement per name). Its $n are the USING values and format's %L arguments, so
    `execute format('select ... from public.%I t where t.id = $1', p_table) using p_id` reads as `select ... from
    public.projects t where t.id = p_id` (and as the same for tasks). A text made of anything else stays unread."""
    expr = (body.get(_DYNAMIC[kind]) or {}).get("PLpgSQL_expr") or {}
    node = _expression_tree(expr)
    name = strings((node.get("ColumnRef") or {}).get("fields")) if isinstance(node, dict) and \
        isinstance(node.get("ColumnRef"), dict) else []
    if len(name) == 1 and (held or {}).get(name[0]) is not None:  # a variable holding its text
        node = held[name[0]]
    using = [_expression_tree((p or {}).get("PLpgSQL_expr") or {}) for p in body.get("params") or []]
    texts = _dynamic_texts(node, len(using), tested)
    if texts is None:
        facts.shapes += _shapes(node)
        return
    for text, literals in texts:
        values = {i: v for i, v in enumerate([*using, *literals], start=1) if v is not None}
        parsed = _parsed_or_empty(text)
        if not parsed:
            # SET takes no $n: `format('set local request.jwt.claims = %L', v)` runs with v's text as the value,
            # which a shape shows as a name made at run time (the statement runs; a rule reads what it sets)
            facts.shapes += [raw.get("stmt") for raw in _parsed_or_empty(_PARAM.sub(f"'{DYNAMIC_NAME}'", text))
                             if "VariableSetStmt" in (raw.get("stmt") or {})]
            continue
        before = len(facts.trees)
        add_statements(facts, _substituted(parsed, values), default_schema)
        # EXECUTE ... INTO sets its target; FOR r IN EXECUTE ... LOOP sets r to each row
        targets = _target_names(body.get("target")) if body.get("into") else \
            _target_names(body.get("var")) if kind == "PLpgSQL_stmt_dynfors" else ()
        if targets:
            facts.into.append((before, targets))


def _dynamic_texts(node: Any, given: int, tested: dict[str, list[str]]) -> list[tuple[str, list]] | None:
    """(text, the format arguments its added $n stand for) of each statement an EXECUTE argument may be; None
    when its text is not spelled out. `given`: how many USING values the $n before those stand for."""
    text = _concatenated(node)
    if text is not None:
        return [(text, [])]
    call = (node or {}).get("FuncCall") if isinstance(node, dict) else None
    if not call or strings(call.get("funcname"))[-1:] != ["format"] or not call.get("args"):
        return None
    template, args = const(call["args"][0]), call["args"][1:]
    if not isinstance(template, str):
        return None
    out: list[tuple[str, list]] = [("", [])]
    cut = 0
    for m, kind, index in format_placeholders(template):
        pieces: list[str] = [template[cut:m.start()]]
        cut = m.end()
        if kind == "%":
            out = [(t + pieces[0] + "%", lit) for t, lit in out]
            continue
        arg = args[index - 1] if 0 < index <= len(args) else None
        value = const(arg)
        if kind == "L":
            out = [(t + pieces[0] + f"${given + len(lit) + 1}", [*lit, arg]) for t, lit in out]
            continue
        ref = strings(((arg or {}).get("ColumnRef") or {}).get("fields")) if isinstance(arg, dict) else []
        names = [str(value)] if value is not None else tested.get(ref[0], []) if len(ref) == 1 else []
        if not names:
            return None
        spell = ident if kind == "I" else str  # %I quotes as quote_ident does
        out = [(t + pieces[0] + spell(n), lit) for t, lit in out for n in names]
        if len(out) > _MAX_DYNAMIC_TEXTS:
            return None
    return [(t + template[cut:], lit) for t, lit in out]


DYNAMIC_NAME = "blueprint_dynamic_name"  # a name an EXECUTE text makes at run time
_PARAM = re.compile(r"\$\d+")  # a USING value or format()'s %L in an EXECUTE text


def _shapes(node: Any) -> list[Any]:
    """The statements an EXECUTE text runs whatever the names it makes: format()'s constant template with every %I
    and %s made DYNAMIC_NAME and every %L a string (create table public.%I partition of public.log ...), or a
    concatenation of constants and values with each value made DYNAMIC_NAME ('alter table public.' ||
    quote_ident(v) || ' enable row level security')."""
    call = (node or {}).get("FuncCall") if isinstance(node, dict) else None
    if call and strings(call.get("funcname"))[-1:] == ["format"] and call.get("args"):
        template = const(call["args"][0])
        if not isinstance(template, str):
            return []
        pieces, cut = [], 0
        for m, kind, _ in format_placeholders(template):
            pieces += [template[cut:m.start()], "%" if kind == "%" else "''" if kind == "L" else DYNAMIC_NAME]
            cut = m.end()
        text = "".join(pieces) + template[cut:]
    else:
        parts = _concatenation(node)
        if not parts or all(p is None for p in parts):
            return []
        text = "".join(DYNAMIC_NAME if p is None else p for p in parts)
    return [raw.get("stmt") for raw in _parsed_or_empty(text)]


def _concatenation(node: Any) -> list[str | None]:
    """The parts of `a || b || ...`: a constant's text, None for anything else."""
    expr = (node or {}).get("A_Expr") if isinstance(node, dict) else None
    if expr is not None and strings(expr.get("name")) == ["||"]:
        return _concatenation(expr.get("lexpr")) + _concatenation(expr.get("rexpr"))
    value = const(node)
    return [value if isinstance(value, str) else None]


def _names_admitted(cond: Any) -> dict[str, list[str]]:
    """variable -> the strings a condition holds it to (`v = 'a'`, `v in ('a', 'b')`, AND-ed with anything): where
    the condition holds, v is one of them. An OR, `<>` or NOT IN says nothing of the kind."""
    atoms = [a for a in boolean_args(cond, "AND_EXPR") if isinstance(a, dict) and "A_Expr" in a
             and strings(a["A_Expr"].get("name")) == ["="]]
    return _names_tested(atoms)


def _names_tested(trees: list[Any]) -> dict[str, list[str]]:
    """variable -> the strings the body compares it with (v = 'a', v in ('a', 'b'), v not in (...), v = any
    (array['a', 'b'])): the names a text built from it may hold, when the body refuses the others."""
    out: dict[str, list[str]] = {}
    for tree in trees:
        for kind, body in nodes(tree):
            if kind != "A_Expr" or strings(body.get("name")) not in (["="], ["<>"]):
                continue
            ref = strings(((body.get("lexpr") or {}).get("ColumnRef") or {}).get("fields"))
            right = body.get("rexpr")
            items = (right.get("List") or {}).get("items") if isinstance(right, dict) and "List" in right else \
                (right.get("A_ArrayExpr") or {}).get("elements") if isinstance(right, dict) and "A_ArrayExpr" in right \
                else [right]
            found = [const(i) for i in items or []]
            if len(ref) == 1 and found and all(isinstance(v, str) for v in found):
                known = out.setdefault(ref[0], [])
                known += [v for v in found if v not in known]
    return out


def _substituted(tree: Any, values: dict[int, Any]) -> Any:
    """The tree with each $n that `values` holds replaced by that value's tree."""
    return replaced(tree, lambda node: values.get((node.get("ParamRef") or {}).get("number"))
                    if isinstance(node.get("ParamRef"), dict) else None)


def _expression_tree(expr: dict) -> Any:
    parsed = _parsed_or_empty(embedded_sql(expr.get("query", ""), expr.get("parseMode", _EXPRESSION)))
    if len(parsed) != 1:
        return None
    targets = (parsed[0]["stmt"].get("SelectStmt") or {}).get("targetList") or []
    return (targets[-1].get("ResTarget") or {}).get("val") if targets else None


def dynamic_inputs(fn: dict, parameters: list[tuple[str, str]]) -> list[str]:
    """`name (body line N)` for each text parameter an EXECUTE pastes in as it is, directly or through variables
    assigned from it (in the order written; branches are not told apart)."""
    datums = fn.get("datums") or []
    tainted = {name for name, typ in parameters if name and not _INERT_TYPES.match(typ)}
    tainted |= {f"${i}" for i, (_, typ) in enumerate(parameters, start=1) if not _INERT_TYPES.match(typ)}
    origin = {name: name for name in tainted}
    for datum in datums:  # DECLARE q text := 'select ' || p;
        var = datum.get("PLpgSQL_var") if isinstance(datum, dict) else None
        default = ((var or {}).get("default_val") or {}).get("PLpgSQL_expr")
        found = _raw(_expression_tree(default)) & tainted if default else set()
        if found:
            tainted.add(var["refname"])
            origin[var["refname"]] = origin[sorted(found)[0]]
    out: list[str] = []
    for kind, body in nodes(fn.get("action")):
        if kind == "PLpgSQL_stmt_assign":
            datum = datums[body["varno"]] if 0 <= body.get("varno", -1) < len(datums) else {}
            var = (datum.get("PLpgSQL_var") or {}).get("refname") if isinstance(datum, dict) else None
            expr = (body.get("expr") or {}).get("PLpgSQL_expr") or {}
            found = _raw(_expression_tree(expr)) & tainted
            if var and found:
                tainted.add(var)
                origin[var] = origin[sorted(found)[0]]
        elif kind == "PLpgSQL_stmt_execsql" and body.get("into"):
            # select f.q into v_q from jsonb_to_record(p_filter) as f(q text): the text comes out of the argument
            found = _selected_raw((body.get("sqlstmt") or {}).get("PLpgSQL_expr") or {}) & tainted
            for var in _text_targets(body.get("target"), datums) if found else ():
                tainted.add(var)
                origin[var] = origin[sorted(found)[0]]
        elif kind in _DYNAMIC:
            expr = (body.get(_DYNAMIC[kind]) or {}).get("PLpgSQL_expr")
            if expr:
                for name in sorted(_raw(_expression_tree(expr)) & tainted):
                    out.append(f"{origin[name]} (body line {body.get('lineno', 0)})")
    return list(dict.fromkeys(out))


def _selected_raw(expr: dict) -> set[str]:
    """Variables a SELECT ... INTO hands on as they are: in its target list, or as the argument of a function it
    reads rows from (jsonb_to_record(p_filter), unnest(p_terms), jsonb_each_text(p))."""
    parsed = _parsed_or_empty(embedded_sql(expr.get("query", ""), expr.get("parseMode", _STATEMENT)))
    select = (parsed[0]["stmt"].get("SelectStmt") or {}) if len(parsed) == 1 else {}
    out: set[str] = set()
    for target in select.get("targetList") or []:
        out |= _raw((target.get("ResTarget") or {}).get("val"))
    for item in select.get("fromClause") or []:
        for kind, body in nodes((item or {}).get("RangeFunction")):
            if kind == "FuncCall":
                out |= set().union(*(_raw(a) for a in body.get("args") or []))
    return out


def _text_targets(target: Any, datums: list) -> list[str]:
    """The variables of an INTO target whose type can carry text into SQL (not a number, a uuid, a date...)."""
    names = []
    for varno in [f.get("varno", -1) for f in ((target or {}).get("PLpgSQL_row") or {}).get("fields") or []] or \
            [((target or {}).get(k) or {}).get("dno", -1) for k in ("PLpgSQL_rec", "PLpgSQL_var")]:
        datum = datums[varno] if isinstance(varno, int) and 0 <= varno < len(datums) else {}
        var = (datum.get("PLpgSQL_var") or datum.get("PLpgSQL_rec") or {}) if isinstance(datum, dict) else {}
        typ = ((var.get("datatype") or {}).get("PLpgSQL_type") or {}).get("typname", "")
        if var.get("refname") and not _INERT_TYPES.match(typ):
            names.append(var["refname"])
    return names


def embedded_sql(query: str, mode: int) -> str:
    """A PL/pgSQL expression (libpg_query's query text and parse mode) as plain SQL; "" for none."""
    if mode == _STATEMENT:
        return query
    if mode == _EXPRESSION:
        return f"select {query}"
    parts = _ASSIGN.split(query, maxsplit=1)
    return f"select {parts[1]}" if len(parts) == 2 else ""


def _embedded(facts: BodyFacts, query: str, mode: int, default_schema: str) -> None:
    text = embedded_sql(query, mode)
    if not text:
        return
    try:
        add_statements(facts, pgparse.parse(text), default_schema)
    except (pgparse.PGQueryError, RecursionError, ValueError):
        pass  # an expression PL/pgSQL accepts but plain SQL does not (e.g. a bare variable list)


def _concatenated(node: dict | None) -> str | None:
    """The text of a concatenation made only of string constants ('a' || 'b'); None for anything else."""
    parts = _concatenation(node)
    return None if None in parts else "".join(parts)


def _parsed_or_empty(text: str) -> list[dict]:
    """A dynamic statement the grammar rejects fails when the block runs; it changes nothing."""
    try:
        return pgparse.parse(text) if text else []
    except (pgparse.PGQueryError, RecursionError, ValueError):
        return []
