"""Which tables an "RLS on by default" event-trigger function turns row level security on for, read from its
PL/pgSQL tree (evasion round 16: e05, e17, fp02, fp08; events.py has the triggers).

The function loops over `pg_event_trigger_ddl_commands()` and runs `execute format('alter table %s enable row
level security', cmd.object_identity)`. The reading follows every path to that EXECUTE and keeps, for each, the
tests on the way as a conjunction: the loop query's WHERE, the IF (ELSIF, ELSE) conditions around it, and the
negation of every guard clause before it, whatever the guard logs before it jumps (`if ... then raise log '...';
continue; end if;` skips what its test admits: e17, fp08). The tests read are on the row's schema_name,
command_tag, object_type and object_identity, and on `tg_tag` (the whole command's tag, 'CREATE TABLE AS' for a
CTAS: e05) and `tg_event`, with =, <>, [NOT] IN, [NOT] [I]LIKE, IS [NOT] NULL, AND, OR and NOT (fp02), `= any
(array[...])` and `<> all (...)` (and their LIKEs), and on the row's boolean `in_extension` (`not cmd.in_extension`,
`= false`, `is not true`): a migration's own CREATE TABLE runs in no extension's script (round 21 fp04).

Every reading errs towards "not turned on": a test not read here (a variable, an array, the OID) counts as false
both ways, so a path through it, or past a guard on it, reaches nothing, and its tables stay reported. The same
goes for a CASE, or another loop, that jumps or enables, an EXECUTE whose text is not `alter table %s enable|force
row level security` of the loop row's object_identity, a row the body sets (`cmd.object_identity := ...`), and an
enable in an exception-handled block holding anything else that may raise (before it, the enable never runs; after
it, the handler rolls it back). A RETURN, an EXIT, or a CONTINUE of an outer label leaves the loop for the rows
after it too: unless the loop's query keeps table rows only (the command's one table), such a loop turns nothing
on, as an earlier row (a serial or identity column's sequence, listed first) may leave it before the table's row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from typing import Any

import pgparse

from .tree import const, dotted, function_name, nodes, strings

ROW_FIELDS = frozenset({"schema_name", "command_tag", "object_type", "object_identity", "in_extension"})
BOOLEAN_FIELDS = frozenset({"in_extension"})  # read as "true" or "false" (never null)
EVENT_FIELDS = frozenset({"tg_tag", "tg_event"})  # the command's, the same on every row
_MAX_PATHS = 256  # more conjunctions than a hand-written guard makes: read as none (nothing turned on)
_ERROR_LEVEL = 21  # elog_level of RAISE EXCEPTION (the default level); below it a RAISE only logs
_LIKE = {"~~": (False, False), "!~~": (True, False), "~~*": (False, True), "!~~*": (True, True)}
# The text an EXECUTE runs with the row's name in place of %s: `alter table [if exists] [only] %s enable row level
# security[, force row level security]`. %I, %L or quote_ident() of object_identity (quoted already) name no table.
_ALTER = re.compile(r"\s*alter\s+table\s+(?:if\s+exists\s+)?(?:only\s+)?\x00\s+(?P<actions>(?:enable|force)\s+row\s+"
                    r"level\s+security(?:\s*,\s*(?:enable|force)\s+row\s+level\s+security)*)\s*;?\s*", re.I)
_PLACEHOLDER = re.compile(r"%(?:1\$)?s")

Conjunction = tuple["Test", ...]
Paths = tuple[Conjunction, ...]  # a disjunction: any conjunction holding reaches the statement


@dataclass(frozen=True)
class Test:
    field: str
    negated: bool
    like: bool
    values: tuple[str, ...]  # none: IS NULL (no field read here is ever null for a table's row)
    fold: bool = False  # ILIKE

    def admits(self, value: str) -> bool:
        hit = any(_like(v, value, self.fold) if self.like else v == value for v in self.values)
        return hit != self.negated

    def flipped(self) -> Test:
        return Test(self.field, not self.negated, self.like, self.values, self.fold)


@dataclass(frozen=True)
class Reading:
    enables: Paths
    forces: Paths


def admitted(paths: Paths, facts: dict[str, str]) -> bool:
    return any(all(t.admits(facts[t.field]) for t in conj) for conj in paths)


def _like(pattern: str, value: str, fold: bool) -> bool:
    """LIKE with its default escape, the backslash (`'public.tmp\\_%'`)."""
    regex, chars = [], iter(pattern)
    for ch in chars:
        if ch == "\\":
            regex.append(re.escape(next(chars, "\\")))
        else:
            regex.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    flags = re.S | (re.I if fold else 0)
    return re.fullmatch("".join(regex), value, flags) is not None


def _and(a: list[Conjunction], b: list[Conjunction]) -> list[Conjunction]:
    out = [x + y for x, y in product(a, b)]
    return out if len(out) <= _MAX_PATHS else []


@dataclass
class _Loop:
    """The loop over pg_event_trigger_ddl_commands() being walked: its record variable, its label, whether its
    query keeps table rows only, and whether a statement in it leaves it for the rows after too."""
    var: str
    dno: int
    label: str | None
    alias: str | None = None
    single: bool = False
    leaves: bool = False
    writable: frozenset[int] = frozenset()  # the record's datum and its fields' (`cmd.schema_name := ...`)


@lru_cache(maxsize=256)
def reading(body: str) -> Reading | None:
    """The paths to the body's enables and forces of RLS on the created table, or None when it is no PL/pgSQL."""
    tag = "$bp_event$"
    while tag in body:
        tag = tag[:-1] + "_$"
    try:
        tree = pgparse.parse_pgsql(f"create function pg_temp.f() returns event_trigger language plpgsql as "
                                   f"{tag}{body}{tag}")
    except (pgparse.PGQueryError, RecursionError, ValueError):
        return None
    function = (tree[0] if isinstance(tree, list) and tree else {}).get("PLpgSQL_function") or {}
    declared = [b.get("refname") for d in function.get("datums") or [] for b in d.values() if isinstance(b, dict)]
    fields = {i: b["recparentno"] for i, d in enumerate(function.get("datums") or [])
              for b in [d.get("PLpgSQL_recfield")] if isinstance(b, dict) and "recparentno" in b}
    walk = _Walk(set(declared) & (ROW_FIELDS | EVENT_FIELDS), {n for n in declared if declared.count(n) > 1}, fields)
    walk.statements([function.get("action")], [()], None)
    return Reading(tuple(walk.enables), tuple(walk.forces))


class _Walk:
    def __init__(self, shadowed: set[str], twice: set[str], fields: dict[int, int]) -> None:
        self.shadowed = shadowed  # variables named like a field: `tg_tag` in a WHERE would mean them
        self.twice = twice  # names declared in two blocks: `cmd.object_identity` may name another record
        self.fields = fields  # a record field's datum -> its record's
        self.enables: list[Conjunction] = []
        self.forces: list[Conjunction] = []

    def statements(self, stmts: Any, state: list[Conjunction], loop: _Loop | None) -> list[Conjunction]:
        """Walk statements in order from `state` (the paths reaching the first): the paths falling out the end."""
        for stmt in stmts or []:
            if len(state) > _MAX_PATHS:
                state = []
            if not state:
                break
            if not isinstance(stmt, dict) or len(stmt) != 1:
                continue
            (kind, body), = stmt.items()
            state = self._statement(kind, body, state, loop)
        return state

    def _statement(self, kind: str, body: dict, state: list[Conjunction], loop: _Loop | None) -> list[Conjunction]:
        if kind == "PLpgSQL_stmt_block":
            return self._block(body, state, loop)
        if kind == "PLpgSQL_stmt_if":
            if not _acts(body, loop):
                return state  # only logs or sets its own variables: every path goes on
            rest, out = state, []
            branches = [(body.get("cond"), body.get("then_body"))] + [
                ((e.get("PLpgSQL_if_elsif") or {}).get("cond"), (e.get("PLpgSQL_if_elsif") or {}).get("stmts"))
                for e in body.get("elsif_list") or []]
            for cond, stmts in branches:
                out += self.statements(stmts, _and(rest, self._condition(cond, False, loop)), loop)
                rest = _and(rest, self._condition(cond, True, loop))
            return out + self.statements(body.get("else_body"), rest, loop)
        if kind == "PLpgSQL_stmt_exit":
            label = body.get("label")
            if loop is not None and (body.get("is_exit") or (label is not None and label != loop.label)):
                loop.leaves = True  # EXIT, or CONTINUE of an outer loop: the rows after are skipped too
            return _and(state, self._condition(body.get("cond"), True, loop)) if body.get("cond") else []
        if kind == "PLpgSQL_stmt_return":
            if loop is not None:
                loop.leaves = True
            return []
        if kind == "PLpgSQL_stmt_raise":
            return [] if body.get("elog_level", _ERROR_LEVEL) >= _ERROR_LEVEL else state
        if kind == "PLpgSQL_stmt_fors" and ((body.get("var") or {}).get("PLpgSQL_rec") or {}).get("refname"):
            return self._loop(body, state, loop)
        if kind in _LOOPS or kind == "PLpgSQL_stmt_case":
            # Not walked: what it turns on is not counted, and one that may leave it or rebind the row ends all paths.
            return [] if _acts(body, loop, inside_loop=kind in _LOOPS) else state
        if kind == "PLpgSQL_stmt_dynexecute" and loop is not None:
            enables, forces = _alters(body.get("query"), loop)
            if enables:
                self.enables += state
            if forces:
                self.forces += state
        return [] if loop is not None and _rebinds({kind: body}, loop) else state

    def _block(self, body: dict, state: list[Conjunction], loop: _Loop | None) -> list[Conjunction]:
        """A BEGIN ... END; with an EXCEPTION clause: an error in it skips its enables or rolls them back."""
        marks = len(self.enables), len(self.forces)
        out = self.statements(body.get("body"), state, loop)
        if body.get("exceptions") and not self._cannot_fail(body.get("body"), loop):
            del self.enables[marks[0]:], self.forces[marks[1]:]
        return out  # (paths through a handler are not followed: fewer paths, never more)

    def _loop(self, body: dict, state: list[Conjunction], loop: _Loop | None) -> list[Conjunction]:
        """A FOR over a query into a record: its body is walked with the query's WHERE when the query reads
        pg_event_trigger_ddl_commands(), and with no path at all otherwise."""
        var = body["var"]["PLpgSQL_rec"]
        dno = var.get("dno", 0)
        inner = _Loop(var["refname"], dno, body.get("label"),
                      writable=frozenset({dno} | {f for f, parent in self.fields.items() if parent == dno}))
        marks = len(self.enables), len(self.forces)
        # (a loop inside the loop over the commands: its row is another, and the outer tests are not on it)
        where = self._where(body.get("query"), inner) if inner.var not in self.twice and loop is None else []
        inner.single = bool(where) and all(any(t.field == "object_type" and not t.negated and not t.like and
                                                set(t.values) <= {"table", "partitioned table"} for t in conj)
                                            for conj in where)
        self.statements(body.get("body"), _and(state, where), inner)
        if inner.leaves and not inner.single:
            del self.enables[marks[0]:], self.forces[marks[1]:]
        return [] if _acts(body, loop, inside_loop=True) else state

    def _where(self, query: Any, loop: _Loop) -> list[Conjunction]:
        """The WHERE of `select * from pg_event_trigger_ddl_commands() [as d] where ...` as paths; [] (no row
        read) for any other query, or one renaming a column."""
        text = ((query or {}).get("PLpgSQL_expr") or {}).get("query", "")
        try:
            parsed = pgparse.parse(text)
        except (pgparse.PGQueryError, RecursionError, ValueError):
            return []
        select = (parsed[0].get("stmt") or {}).get("SelectStmt") if len(parsed) == 1 else None
        if not select or any(select.get(k) for k in ("withClause", "distinctClause", "groupClause", "havingClause",
                                                      "limitCount", "limitOffset", "windowClause", "intoClause")):
            return []
        if select.get("op", "SETOP_NONE") != "SETOP_NONE" or len(select.get("fromClause") or []) != 1:
            return []
        source = select["fromClause"][0].get("RangeFunction") or {}
        calls = [i for f in source.get("functions") or [] for i in (f.get("List") or {}).get("items") or [] if i]
        alias = source.get("alias") or {}
        if (len(calls) != 1 or function_name(calls[0].get("FuncCall") or {}) != "pg_event_trigger_ddl_commands"
                or (calls[0].get("FuncCall") or {}).get("args") or alias.get("colnames") or source.get("ordinality")):
            return []
        for target in select.get("targetList") or []:
            res = target.get("ResTarget") or {}
            ref = (res.get("val") or {}).get("ColumnRef")
            if ref is None or (res.get("name") and res["name"] != strings(ref.get("fields"))[-1]):
                return []
        loop.alias = alias.get("aliasname") or "pg_event_trigger_ddl_commands"
        where = select.get("whereClause")
        return self._dnf(where, False, loop, in_query=True) if where is not None else [()]

    def _cannot_fail(self, stmts: Any, loop: _Loop | None) -> bool:
        """Whether a block with an EXCEPTION clause holds nothing that may raise but its ALTER TABLE EXECUTEs: an
        error anywhere else in it skips them or rolls them back, and the handler goes on. Allowed besides: IFs on
        tests read here, jumps, and RAISEs below EXCEPTION of variables (`raise log '%', cmd.object_identity`)."""
        for kind, node in nodes(stmts):
            if not kind.startswith("PLpgSQL_stmt_"):
                continue
            if kind == "PLpgSQL_stmt_dynexecute" and loop is not None and any(_alters(node.get("query"), loop)):
                continue
            if kind == "PLpgSQL_stmt_raise":
                params = [_query(p) for p in node.get("params") or []]
                if node.get("elog_level", _ERROR_LEVEL) < _ERROR_LEVEL and not node.get("options") and \
                        all(_PLAIN.fullmatch(p) for p in params):
                    continue
                return False
            if kind == "PLpgSQL_stmt_if":
                conds = [node.get("cond")] + [(e.get("PLpgSQL_if_elsif") or {}).get("cond")
                                              for e in node.get("elsif_list") or []]
                if all(self._read_whole(self._expression(c), loop) for c in conds):
                    continue
                return False
            if kind == "PLpgSQL_stmt_exit" and node.get("cond") is not None and \
                    not self._read_whole(self._expression(node.get("cond")), loop):
                return False
            if kind not in _SAFE:
                return False
        return True

    def _read_whole(self, node: Any, loop: _Loop | None) -> bool:
        """Every test of a condition is one read here (none can raise)."""
        if not isinstance(node, dict) or len(node) != 1:
            return False
        (kind, body), = node.items()
        if kind == "BoolExpr":
            return all(self._read_whole(a, loop) for a in body.get("args") or [])
        if kind == "A_Const":
            return "boolval" in body
        if kind == "NullTest":
            return self._field(body.get("arg"), loop, False) is not None
        if self._boolean(node, loop, False) is not None:
            return True
        return kind == "A_Expr" and self._test(body, loop, False) is not None

    def _boolean(self, node: Any, loop: _Loop | None, in_query: bool) -> Test | None:
        """A boolean field as a test: `cmd.in_extension`, `cmd.in_extension is [not] true|false`."""
        (kind, body), = node.items()
        if kind == "ColumnRef":
            field = self._field(node, loop, in_query)
            return Test(field, False, False, ("true",)) if field in BOOLEAN_FIELDS else None
        if kind != "BooleanTest" or not isinstance(body, dict):
            return None
        field = self._field(body.get("arg"), loop, in_query)
        said = {"IS_TRUE": ("true", False), "IS_NOT_TRUE": ("true", True), "IS_FALSE": ("false", False),
                "IS_NOT_FALSE": ("false", True)}.get(body.get("booltesttype", ""))
        return Test(field, said[1], False, (said[0],)) if field in BOOLEAN_FIELDS and said else None

    def _expression(self, cond: Any) -> Any:
        """A PL/pgSQL condition's expression tree (None when it is not one expression)."""
        text = ((cond or {}).get("PLpgSQL_expr") or {}).get("query", "")
        try:
            parsed = pgparse.parse(f"select {text}")
        except (pgparse.PGQueryError, RecursionError, ValueError):
            return None
        select = (parsed[0].get("stmt") or {}).get("SelectStmt") or {} if len(parsed) == 1 else {}
        targets = select.get("targetList") or []
        if len(targets) != 1 or set(select) - {"targetList", "limitOption", "op"}:
            return None
        return (targets[0].get("ResTarget") or {}).get("val")

    def _condition(self, cond: Any, negate: bool, loop: _Loop | None) -> list[Conjunction]:
        return self._dnf(self._expression(cond), negate, loop)

    def _dnf(self, node: Any, negate: bool, loop: _Loop | None, in_query: bool = False) -> list[Conjunction]:
        """A condition (negated or not) as paths; whatever is not read counts as false either way."""
        if not isinstance(node, dict) or len(node) != 1:
            return []
        (kind, body), = node.items()
        if kind == "BoolExpr":
            args = body.get("args") or []
            if body.get("boolop") == "NOT_EXPR":
                return self._dnf(args[0], not negate, loop, in_query) if len(args) == 1 else []
            parts = [self._dnf(a, negate, loop, in_query) for a in args]
            if (body.get("boolop") == "AND_EXPR") != negate:
                out: list[Conjunction] = [()]
                for part in parts:
                    out = _and(out, part)
                return out
            out = [conj for part in parts for conj in part]
            return out if len(out) <= _MAX_PATHS else []
        if kind == "A_Const" and "boolval" in body:
            return [()] if bool(const(node)) != negate else []
        test = self._boolean(node, loop, in_query)
        if test is not None:
            return [((test.flipped() if negate else test),)]
        if kind == "NullTest" and self._field(body.get("arg"), loop, in_query):
            test = Test(self._field(body.get("arg"), loop, in_query), False, False, ())
            return [((test.flipped() if (body.get("nulltesttype") == "IS_NOT_NULL") != negate else test),)]
        if kind == "A_Expr":
            test = self._test(body, loop, in_query)
            return [((test.flipped() if negate else test),)] if test is not None else []
        return []

    def _test(self, body: dict, loop: _Loop | None, in_query: bool) -> Test | None:
        field = self._field(body.get("lexpr"), loop, in_query)
        op = strings(body.get("name"))
        if field is None or len(op) != 1:
            return None
        right = body.get("rexpr")
        read = _truth if field in BOOLEAN_FIELDS else _text
        if body.get("kind") == "AEXPR_IN":
            items = (right or {}).get("List", {}).get("items") or []
            values = [read(i) for i in items]
            if op[0] not in ("=", "<>") or not values or None in values:
                return None
            return Test(field, op[0] == "<>", False, tuple(values))
        if body.get("kind") in ("AEXPR_OP_ANY", "AEXPR_OP_ALL"):
            # `= any (array['public'])`: one of them; `<> all (...)`: none of them (and their LIKEs). `<> any`
            # and `= all` are not read.
            values = _array(right) if field not in BOOLEAN_FIELDS else None
            negated = op[0] in ("<>", "!~~", "!~~*")
            if not values or negated != (body["kind"] == "AEXPR_OP_ALL") or op[0] not in ("=", "<>", *_LIKE):
                return None
            return Test(field, negated, op[0] in _LIKE, tuple(values), _LIKE.get(op[0], (False, False))[1])
        value = read(right)
        if value is None or body.get("kind", "AEXPR_OP") not in ("AEXPR_OP", "AEXPR_LIKE", "AEXPR_ILIKE"):
            return None
        if field in BOOLEAN_FIELDS and op[0] not in ("=", "<>"):
            return None
        if op[0] in ("=", "<>"):  # compared as written: only WHEN TAG ignores case (round 12, e02)
            return Test(field, op[0] == "<>", False, (value,))
        if op[0] in _LIKE:
            negated, fold = _LIKE[op[0]]
            return Test(field, negated, True, (value,), fold)
        return None

    def _field(self, node: Any, loop: _Loop | None, in_query: bool) -> str | None:
        """The field a column reference reads: `cmd.schema_name` of the loop's row, `schema_name` (or
        `d.schema_name`) in its query, `tg_tag` anywhere; None for anything else."""
        ref = (node or {}).get("ColumnRef") if isinstance(node, dict) else None
        names = strings((ref or {}).get("fields"))
        if len(names) == 1 and names[0] in EVENT_FIELDS and names[0] not in self.shadowed:
            return names[0]
        if loop is None or not names or names[-1] not in ROW_FIELDS:
            return None
        if in_query:
            ok = names[:-1] in ([], [loop.alias]) and (len(names) == 2 or names[0] not in self.shadowed)
        else:
            ok = names[:-1] == [loop.var]
        return names[-1] if ok else None


_LOOPS = {"PLpgSQL_stmt_loop", "PLpgSQL_stmt_while", "PLpgSQL_stmt_fori", "PLpgSQL_stmt_fors", "PLpgSQL_stmt_forc",
          "PLpgSQL_stmt_foreach_a", "PLpgSQL_stmt_dynfors"}


def _acts(body: dict, loop: _Loop | None, inside_loop: bool = False) -> bool:
    """Whether statements under `body` may change which paths go on or what they turn on: a jump, an error, an
    EXECUTE of an ALTER TABLE, a statement setting the loop's row. In a loop not walked, its own unlabelled EXIT
    and CONTINUE stay inside it."""
    for kind, node in nodes(body):
        if kind == "PLpgSQL_stmt_exit" and not (inside_loop and node.get("label") is None):
            return True
        if kind == "PLpgSQL_stmt_return" or (kind == "PLpgSQL_stmt_raise" and
                                               node.get("elog_level", _ERROR_LEVEL) >= _ERROR_LEVEL):
            return True
        if kind == "PLpgSQL_stmt_dynexecute" and re.search(r"\balter\b", _query(node.get("query")), re.I):
            return True
        if loop is not None and _writes(kind, node, loop):
            return True
    return False


def _rebinds(body: dict, loop: _Loop) -> bool:
    """A statement setting the loop's row or a field of it (`cmd := ...`, `cmd.object_identity := ...`, `select
    ... into cmd`, GET DIAGNOSTICS into it, a loop over it)."""
    return any(_writes(kind, node, loop) for kind, node in nodes(body))


def _writes(kind: str, node: dict, loop: _Loop) -> bool:
    if node.get("varno") in loop.writable or (kind in ("PLpgSQL_rec", "PLpgSQL_row") and
                                               node.get("dno", 0) in loop.writable):
        return True
    if kind == "PLpgSQL_row" and any(isinstance(f, dict) and f.get("varno") in loop.writable
                                     for f in node.get("fields") or []):
        return True
    return kind == "PLpgSQL_diag_item" and node.get("target") in loop.writable


def _text(node: Any) -> str | None:
    """A string literal, also cast to text (`'public'::text`)."""
    cast = node.get("TypeCast") if isinstance(node, dict) else None
    if cast is not None:
        if dotted((cast.get("typeName") or {}).get("names")) not in ("text", "varchar", "name"):
            return None
        node = cast.get("arg")
    value = const(node) if isinstance(node, dict) and "A_Const" in node else None
    return value if isinstance(value, str) else None


def _truth(node: Any) -> str | None:
    """A boolean constant as "true" or "false" (`false`, `'f'`, `'false'::boolean`); None for anything else."""
    cast = node.get("TypeCast") if isinstance(node, dict) else None
    if cast is not None:
        if dotted((cast.get("typeName") or {}).get("names")) not in ("bool", "boolean", "pg_catalog.bool"):
            return None
        node = cast.get("arg")
    value = const(node) if isinstance(node, dict) and "A_Const" in node else None
    if isinstance(value, bool):
        return "true" if value else "false"
    word = value.strip().lower() if isinstance(value, str) else ""
    for said, spellings in (("true", ("true", "yes")), ("false", ("false", "no"))):
        if word and any(s.startswith(word) for s in spellings):
            return said
    return {"on": "true", "off": "false", "1": "true", "0": "false"}.get(word)


def _array(node: Any) -> list[str] | None:
    """The texts of `array['a', 'b']` or `'{a,b}'` (cast to text[] or not); None for anything else."""
    cast = node.get("TypeCast") if isinstance(node, dict) else None
    if cast is not None:
        names = dotted((cast.get("typeName") or {}).get("names"))
        if names not in ("text", "varchar", "name", "pg_catalog.text") or not (cast.get("typeName") or {}).get(
                "arrayBounds"):
            return None
        node = cast.get("arg")
    if isinstance(node, dict) and "A_ArrayExpr" in node:
        values = [_text(e) for e in node["A_ArrayExpr"].get("elements") or []]
        return None if not values or None in values else values  # type: ignore[return-value]
    text = const(node) if isinstance(node, dict) and "A_Const" in node else None
    if not isinstance(text, str) or not (text.strip().startswith("{") and text.strip().endswith("}")):
        return None
    inner = text.strip()[1:-1]
    if any(c in inner for c in '{}"\\'):
        return None
    values = [v.strip() for v in inner.split(",")]
    return None if any(not v or v.lower() == "null" for v in values) else values


def _query(expr: Any) -> str:
    return ((expr or {}).get("PLpgSQL_expr") or {}).get("query", "") if isinstance(expr, dict) else ""


def _alters(expr: Any, loop: _Loop) -> tuple[bool, bool]:
    """(enables, forces) of an EXECUTE of `format('alter table %s enable row level security', cmd.object_identity)`
    or its concatenation; (False, False) for any other text."""
    try:
        parsed = pgparse.parse(f"select {_query(expr)}")
    except (pgparse.PGQueryError, RecursionError, ValueError):
        return False, False
    targets = ((parsed[0].get("stmt") or {}).get("SelectStmt") or {}).get("targetList") or [] if parsed else []
    if len(parsed) != 1 or len(targets) != 1:
        return False, False
    text = _spelled((targets[0].get("ResTarget") or {}).get("val"), loop)
    match = _ALTER.fullmatch(text or "")
    if match is None:
        return False, False
    actions = match.group("actions").lower()
    return "enable" in actions, "force" in actions


def _spelled(node: Any, loop: _Loop) -> str | None:
    """The text an expression makes, with \\x00 where the row's name goes; None when it is not one name pasted
    once into literals."""
    if not isinstance(node, dict):
        return None
    call = node.get("FuncCall")
    if call is not None:
        args = call.get("args") or []
        template = const(args[0]) if args else None
        if (function_name(call) != "format" or len(args) != 2 or not isinstance(template, str)
                or len(_PLACEHOLDER.findall(template)) != 1 or "%" in _PLACEHOLDER.sub("", template)
                or not _names_row(args[1], loop)):
            return None
        return _PLACEHOLDER.sub("\x00", template)
    op = node.get("A_Expr")
    if op is not None and strings(op.get("name")) == ["||"] and op.get("kind", "AEXPR_OP") == "AEXPR_OP":
        parts = [_spelled(op.get("lexpr"), loop), _spelled(op.get("rexpr"), loop)]
        return None if None in parts or "".join(parts).count("\x00") > 1 else "".join(parts)  # type: ignore[arg-type]
    if _names_row(node, loop):
        return "\x00"
    value = const(node)
    return value if isinstance(value, str) and "\x00" not in value else None


def _names_row(node: Any, loop: _Loop) -> bool:
    """`cmd.object_identity` (quoted already) or `cmd.objid::regclass` of the loop's row."""
    cast = node.get("TypeCast") if isinstance(node, dict) else None
    if cast is not None:
        return dotted((cast.get("typeName") or {}).get("names")) == "regclass" and \
            strings(((cast.get("arg") or {}).get("ColumnRef") or {}).get("fields")) == [loop.var, "objid"]
    ref = node.get("ColumnRef") if isinstance(node, dict) else None
    return ref is not None and strings(ref.get("fields")) == [loop.var, "object_identity"]


_SAFE = {"PLpgSQL_stmt_exit", "PLpgSQL_stmt_return", "PLpgSQL_stmt_if", "PLpgSQL_stmt_block"}
_PLAIN = re.compile(r"\s*[a-z_][a-z0-9_$]*(\s*\.\s*[a-z_][a-z0-9_$]*)?\s*", re.I)  # a variable or a row's field
