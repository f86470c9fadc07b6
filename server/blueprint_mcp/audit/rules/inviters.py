"""Whether whoever writes a row's role outranks every role the row may hold (BP087, evasion round 12 e09).

`check (role in ('viewer', 'member'))` on invitations keeps out admin and owner, but when any member, viewers too,
may insert invitations, a viewer invites her other address as member and accepts: the bound must be at or below
the least role the insert (or update) policy lets write. A policy is read only without OR: a role helper with a
literal role (`organization_ids_with_role('admin')`), a caller's membership sub-query holding `m.role` to literals,
or a comparison of the caller's role with the row's own (`m.role >= invitations.role`, by the enum's order) tells
the writer's least role; anything else lets the least role of all write.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from ...model.schema import Function, Schema, Table
from ...model.tenant_keys import ROLE_RANKS, ranks_reversed, role_column
from ..pins import unwrap
from ..tree import boolean_args, const, function_name, nodes, qualified, strings
from .written import Written, enum_ordered, mentions, same, same_rows

_LEAST = max(ROLE_RANKS.values())
_RELATIVE = -1  # the writer's role is compared with the row's: never below it
_FLIPPED = {">=": "<=", ">": "<", "<=": ">=", "<": ">"}


def writers_outrank(s: Schema, t: Table, column: str, values: list[str], labels: list[str] | None) -> bool:
    """Every client way to write `t.column` (insert, update) needs a role at or above each of `values`; `labels`:
    the membership role enum's labels in order (None: not an enum). A SECURITY DEFINER function clients reach
    that inserts the row (or sets the column) is such a way too (evasion round 13 e06: `invite_member` let any
    member, viewers too, invite as member), read by the refusals before its write."""
    from .common import client_policies, clients_granted
    needed = min((ROLE_RANKS.get(v, 0) for v in values), default=0)  # the most trusted value's rank
    for command in ("insert", "update"):
        if not clients_granted(s, t, command, column):
            continue
        if not t.rls_enabled:
            return False
        for p in client_policies(t, command):
            tree = p.check_tree if p.check is not None else p.using_tree
            if not p.permissive:
                continue
            floor = _writer_rank(tree, t, column, labels)
            if floor != _RELATIVE and floor > needed:  # (rank 0 is the owner: a larger rank is less trusted)
                return False
    for w in definer_writes(s, t, column):
        floor = _definer_rank(w, t, labels)
        if w.source is not None:  # a trigger's writer passed the source table's policies too
            floor = min(floor, _source_rank(s, w.source, w.kind, labels))
        written = _written_role(w, t, column)
        bound = ROLE_RANKS[written] if written is not None else needed  # (evasion round 14 fp01: 'viewer')
        if floor != _RELATIVE and floor > bound:
            return False
    return True


def _source_rank(s: Schema, source: Table, kind: str, labels: list[str] | None) -> int:
    """The least trusted role the client policies of `source` let insert (or update) a row: the largest rank."""
    from .common import client_policies
    if not source.rls_enabled:
        return _LEAST
    ranks = [_writer_rank(p.check_tree if p.check is not None else p.using_tree, source, "", labels)
             for p in client_policies(source, kind) if p.permissive]
    return max(ranks, default=_LEAST) if _RELATIVE not in ranks else _LEAST


def _written_role(w: DefinerWrite, t: Table, column: str) -> str | None:
    """The role a write puts in the column where it is one constant a rank is known for: the literal (`'viewer'`)
    or, for an INSERT leaving it out, the column's default; None for anything else."""
    if w.value is None and w.kind == "insert":
        c = t.column(column)
        text = (c.default or "").split("::")[0].strip() if c is not None else ""
        value = text[1:-1] if len(text) >= 2 and text[0] == text[-1] == "'" else None
    else:
        value = const(unwrap(w.value))
    return value if isinstance(value, str) and value in ROLE_RANKS else None


class DefinerWrite(NamedTuple):
    function: Function
    through: str
    kind: str  # "insert" or "update"
    at: int  # the statement's position in the body's trees
    value: Any  # the expression written to the column (None: its default)
    statement: dict
    source: Table | None = None  # a trigger's table, whose NEW row (the client's values) the function reads
    row: int = 0  # which row of an INSERT ... VALUES list (evasion round 16 e09b: each row is a write)


def definer_writes(s: Schema, t: Table, column: str) -> list[DefinerWrite]:
    """Each INSERT into `t` and each UPDATE of `t` setting `column` by a SECURITY DEFINER function clients reach,
    or by a SECURITY DEFINER trigger function on a table clients insert into or update (evasion round 14 e05: a
    seat request's trigger copies `new.role` into invitations)."""
    from .reach_rules import client_definers
    out: list[DefinerWrite] = []
    for f, through, source in [(f, through, None) for f, through in client_definers(s)] + _client_triggers(s):
        reading = f._body
        if reading is None or t.qualified not in (f.writes or ()):
            continue
        for at, tree in enumerate(reading.trees):
            for kind, body in nodes(tree):
                if kind not in ("InsertStmt", "UpdateStmt") or not isinstance(body.get("relation"), dict) or \
                        qualified(body["relation"], reading.default_schema) != t.qualified:
                    continue
                if kind == "InsertStmt":
                    rows = len(((body.get("selectStmt") or {}).get("SelectStmt") or {}).get("valuesLists") or [0])
                    out += [DefinerWrite(f, through, "insert", at, _inserted(t, body, column, row), body, source, row)
                            for row in range(rows)]
                    continue
                for target in body.get("targetList") or []:
                    res = target.get("ResTarget") or {}
                    if res.get("name") == column:
                        out.append(DefinerWrite(f, through, "update", at, res.get("val"), body, source))
    return out


def _client_triggers(s: Schema) -> list[tuple[Function, str, Table]]:
    """(function, how, table) of each SECURITY DEFINER row trigger that fires on an insert or update clients may
    make (granted, and a client policy for it where RLS is on)."""
    from .common import client_policies, clients_granted, find_function
    out = []
    for table in s.tables:
        for trg in table.triggers:
            events = [e for e in trg.events if e in ("insert", "update") and clients_granted(s, table, e) and
                      (not table.rls_enabled or client_policies(table, e))]
            f = find_function(s, trg.function) if trg.fires and trg.level == "row" and events else None
            if f is not None and f.security_definer and f._body is not None:
                out.append((f, f"trigger {trg.name} on {table.qualified}", table))
    return out


def _inserted(t: Table, insert: dict, column: str | None, row: int = 0) -> Any:
    """The expression an INSERT ... VALUES (its `row`th row) or INSERT ... SELECT writes to `column`; None for its
    default (or what is not read)."""
    cols = [(c.get("ResTarget") or {}).get("name") for c in insert.get("cols") or []] or \
        [c.name for c in t.columns]
    if column not in cols:
        return None
    select = (insert.get("selectStmt") or {}).get("SelectStmt") or {}
    rows = select.get("valuesLists") or []
    items = ((rows[row].get("List") or {}).get("items") or []) if row < len(rows) else \
        [(x.get("ResTarget") or {}).get("val") for x in select.get("targetList") or []]
    return items[cols.index(column)] if len(items) > cols.index(column) else None


def _definer_rank(w: DefinerWrite, t: Table, labels: list[str] | None) -> int:
    """The rank of the least trusted caller the refusals before the write let through: each refusal's OR-ed
    `not <test>` is a test the caller passed (`if not p_org = any (array(select private.organization_ids_with_role(
    'admin'))) then raise`), with the organisation the row gets (`p_org`) and the role it gets (`p_role`: `m.role
    >= p_role` is relative). An UPDATE's own WHERE counts too."""
    from .reach_rules import _test_at
    reading = w.function._body
    if w.at in reading.unguarded:
        return _LEAST
    row_role = _fields(w.value)
    orgs, extra = _row_orgs(w, t)
    passed: list[Any] = []
    nested, caught = dict(reading.within), dict(reading.caught)
    for at in reading.refuses_when:
        if at >= w.at or at in nested or any(at == p for around in nested.values() for p, _ in around):
            continue  # (a refusal inside an IF refuses only where the IF's test holds: evasion round 14 e04)
        if at in caught and w.at >= caught[at]:
            continue  # (one a handler swallows refuses nothing after its block: evasion round 15 e03)
        for atom in boolean_args(_test_at(reading, at), "OR_EXPR"):
            negated = (unwrap(atom) or {}).get("BoolExpr") if isinstance(unwrap(atom), dict) else None
            if isinstance(negated, dict) and negated.get("boolop") == "NOT_EXPR" and len(negated.get("args")) == 1:
                passed += boolean_args(negated["args"][0], "AND_EXPR")
    for at, holds in dict(reading.enclosed).get(w.at, ()):  # (the IFs around the write: their tests passed)
        test = _test_at(reading, at)
        inner = (unwrap(test) or {}).get("BoolExpr") if isinstance(unwrap(test), dict) else None
        if holds:
            passed += boolean_args(test, "AND_EXPR")
        elif isinstance(inner, dict) and inner.get("boolop") == "NOT_EXPR" and len(inner.get("args") or []) == 1:
            passed += boolean_args(inner["args"][0], "AND_EXPR")
    return _rank(passed + extra, labels, lambda f: bool(row_role) and f == row_role,
                 lambda f: not t.tenant_key or f in orgs, lambda f: not t.tenant_key or f in orgs)


def _row_orgs(w: DefinerWrite, t: Table) -> tuple[list[list[str]], list[Any]]:
    """(the names the written row's organisation goes by, an UPDATE's WHERE conjuncts)."""
    if w.kind == "insert":
        org = _fields(_inserted(t, w.statement, t.tenant_key, w.row)) if t.tenant_key else None
        return ([org] if org else []), []
    extra = list(boolean_args(w.statement.get("whereClause"), "AND_EXPR"))
    return ([[t.tenant_key], [t.name, t.tenant_key]] + [
        f for e in extra for a, b in [_equated(e)] if a and b for f, g in ((a, b), (b, a))
        if g[-1:] == [t.tenant_key]] if t.tenant_key else []), extra


def role_bounded(s: Schema, w: DefinerWrite, t: Table, src: Written, labels: list[str] | None,
                 enum: str | None) -> bool:
    """The refusals before a definer's write bound the client's value `src` (an argument, `new.role`, an expression
    of them) it writes (evasion round 14 e04: `if p_role = 'admin' then <owners only>` let 'owner' through): each
    value at or above admin is refused to every caller below it. A refusal (with the IFs around it) covers the values
    its tests of `src` admit (`p_role >= 'admin'`, `p_role not in ('viewer', 'member')`; every value where it tests
    none), where each of its other tests is a `not <role test>` that only callers ranked at or above such a value
    pass, or compares the caller's role with `src` (`not p_org = any (array(select ...with_role(p_role)))`, `p_role >
    v_my_role`). `enum`: the written column's type, whose order `>`/`<` follow only on a value of that type."""
    universe = list(labels) if labels else list(ROLE_RANKS) + [""]  # ("": a text the ranks do not know)
    orgs, _ = _row_orgs(w, t)
    covered: set[str] = set()
    ref = src.fields
    mine = callers_role_variables(s, w, orgs)
    for tests in _refusals_before(s, w, src):
        values, floor = set(universe), _RELATIVE
        for test, holds in tests:
            atoms = boolean_args(test, "AND_EXPR") if holds else [_negated(test)]
            for atom in [a for atom in atoms for a in same_rows(atom, src)]:
                if not mentions(atom, src):
                    inner = (unwrap(atom) or {}).get("BoolExpr") if isinstance(unwrap(atom), dict) else None
                    if not (isinstance(inner, dict) and inner.get("boolop") == "NOT_EXPR"):
                        values = set()  # a test the caller may fail freely
                        continue
                    rank = _rank(boolean_args(inner["args"][0], "AND_EXPR"), labels, lambda f: False,
                                 lambda f: not t.tenant_key or f in orgs, lambda f: not t.tenant_key or f in orgs)
                    floor = rank if floor == _RELATIVE else max(floor, rank)
                    continue
                admitted = _admitting(atom, src, universe, labels, enum)
                if admitted is not None:
                    values &= admitted
                    continue
                inner = (unwrap(atom) or {}).get("BoolExpr") if isinstance(unwrap(atom), dict) else None
                relative = isinstance(inner, dict) and inner.get("boolop") == "NOT_EXPR" and _rank(
                    boolean_args(inner["args"][0], "AND_EXPR"), labels, lambda f: bool(ref) and f == ref,
                    lambda f: not t.tenant_key or f in orgs, lambda f: not t.tenant_key or f in orgs) == _RELATIVE
                if not relative and not _above_own(atom, src, mine, labels, enum):
                    values = set()
        covered |= {v for v in values if floor == _RELATIVE or floor <= ROLE_RANKS.get(v, 0)}
    return all(ROLE_RANKS.get(v, 0) >= 2 for v in universe if v not in covered)


def _refusals_before(s: Schema, w: DefinerWrite, src: Written) -> Iterator[list[tuple[Any, bool]]]:
    """The tests, (test, whether it holds), of each refusal on the write's path that tests the value `src` holds at
    the write: the body's own (with the IFs around each), and those of a function a PERFORM every run reaches calls,
    its parameters read as the arguments passed (evasion round 17 fp04: `perform private.assert_can_grant(p_org,
    p_role)`). A test made before an assignment to what `src` is made of tests another value (round 17 e03: `p_role
    := lower(trim(p_role))` after `if p_role in ('admin', 'owner')`: 'OWNER' passes the test and is written as
    owner)."""
    from .reach_rules import _test_at
    reading = w.function._body
    nested, caught = dict(reading.within), dict(reading.caught)
    outer = {p for around in nested.values() for p, holds in around if holds}
    changed = _assigned(reading, src)
    # (an IF around both a refusal and the write holds wherever the write runs: not a test of the refusal's there)
    shared = set(dict(reading.enclosed).get(w.at, ()))
    for at in sorted(reading.refuses_when + reading.leaves_when):  # (an early RETURN refuses what follows it)
        if at >= w.at or at in outer or at in caught and w.at >= caught[at]:
            continue  # (a refusal a handler swallows refuses nothing after its block: evasion round 15 e03)
        first = min([at] + [p for p, _ in nested.get(at, ())])
        if any(first < q < w.at for q in changed):
            continue
        yield [(_test_at(reading, p), holds) for p, holds in nested.get(at, ()) if (p, holds) not in shared] + \
            _where(_test_at(reading, at), True)
    for at in reading.leaves_unless:  # (an ELSE that leaves refuses where each OR-ed test fails: round 23 fp03)
        if at < w.at and not any(min([at] + [p for p, _ in nested.get(at, ())]) < q < w.at for q in changed):
            yield [(_test_at(reading, p), holds) for p, holds in nested.get(at, ()) if (p, holds) not in shared] + \
                _where(_test_at(reading, at), False)
    for at in reading.performs:
        if at < w.at and not any(at < q < w.at for q in changed):
            yield from _callee_refusals(s, reading, at)
    for at, holds in dict(reading.enclosed).get(w.at, ()):  # (an IF around the write refuses where it fails:
        if not any(at < q < w.at for q in changed):  # where each of its OR-ed tests fails; evasion round 22 fp01)
            yield _where(_test_at(reading, at), not holds)


def _where(test: Any, holds: bool) -> list[tuple[Any, bool]]:
    """(test, holds) pairs all true exactly where `test` holds (or fails, `holds` False): a NOT turned over, an OR
    failing as each of its tests failing, an AND holding as each holding (`if not (p_role < 'admin' or <owner>)
    then raise`: the refusal where the role is at least admin and the caller no owner; evasion round 23 fp05)."""
    inner = (unwrap(test) or {}).get("BoolExpr") if isinstance(unwrap(test), dict) else None
    op, args = (inner.get("boolop"), inner.get("args") or []) if isinstance(inner, dict) else (None, [])
    if op == "NOT_EXPR" and len(args) == 1:
        return _where(args[0], not holds)
    if op == ("AND_EXPR" if holds else "OR_EXPR"):
        return [pair for arg in args for pair in _where(arg, holds)]
    return [(test, holds)]


def _assigned(reading: Any, src: Written) -> list[int]:
    """Positions of the assignments (`:=`, SELECT ... INTO, a loop's variable) to a variable or parameter `src`
    reads, DECLARE defaults left out (they run before the block's statements)."""
    names = {".".join(strings(b.get("fields"))).lower() for k, b in nodes(src.node) if k == "ColumnRef"}
    names |= {reading.params[b.get("number", 0) - 1][0].lower() for k, b in nodes(src.node)
              if k == "ParamRef" and 0 < b.get("number", 0) <= len(reading.params)}
    declared = set(reading.declared)
    return [at for at, targets in reading.into if at not in declared and {n.lower() for n in targets} & names]


_RETURNS = re.compile(r"\breturn\b", re.IGNORECASE)
_LAST_RETURN = re.compile(r"\breturn\b[^;]*;\s*end\s*;?\s*$", re.IGNORECASE)


def _callee_refusals(s: Schema, reading: Any, at: int) -> Iterator[list[tuple[Any, bool]]]:
    """The refusals of the PL/pgSQL function `perform f(<arguments>)` at `at` calls, each test with f's parameters
    replaced by the arguments passed (cast to the parameter's type, whose order `>`/`<` follow). Read only where
    f's refusals run whenever it is called (no RETURN before its end, no handler swallowing them) and f never
    assigns a parameter (its tests would be of another value)."""
    from .common import find_function, lone_value, only_statement
    from .reach_rules import _test_at
    kind, select = only_statement(reading.trees[at]) if at < len(reading.trees) else ("", {})
    call = (lone_value(select) or {}).get("FuncCall") if kind == "SelectStmt" and \
        not select.get("fromClause") and isinstance(lone_value(select), dict) else None
    f = find_function(s, function_name(call)) if isinstance(call, dict) else None
    callee = f._body if f is not None and f.language == "plpgsql" else None
    if callee is None or not callee.refuses_when or callee.caught or \
            _RETURNS.search(_LAST_RETURN.sub("", f.body.strip())):
        return
    params = [(name.lower(), typ) for name, typ in callee.params]
    declared = set(callee.declared)
    if any(n.lower() in {p for p, _ in params} for at2, names in callee.into if at2 not in declared for n in names):
        return
    given: dict[str, Any] = {}
    for i, arg in enumerate(call.get("args") or []):
        named = arg.get("NamedArgExpr") if isinstance(arg, dict) else None
        name = (named.get("name") or "").lower() if isinstance(named, dict) else params[i][0] if i < len(params) \
            else None
        value = named.get("arg") if isinstance(named, dict) else arg
        typ = dict(params).get(name) if name else None
        if name and typ:
            given[name] = {"TypeCast": {"arg": value, "typeName": {"names": [
                {"String": {"sval": part}} for part in typ.split(".")], "typemod": -1}}}
    numbered = {i + 1: given.get(name) for i, (name, _) in enumerate(params)}
    # f's variables, and parameters left to their defaults, hold none of the caller's values of the same name
    own = ({v.lower() for v in callee.variables} | {p for p, _ in params}) - set(given)
    nested = dict(callee.within)
    outer = {p for around in nested.values() for p, holds in around if holds}

    def passed(node: Any) -> Any:
        if isinstance(node, list):
            return [passed(v) for v in node]
        if not isinstance(node, dict):
            return node
        ref = [x.lower() for x in strings((node.get("ColumnRef") or {}).get("fields"))] if "ColumnRef" in node else []
        if len(ref) == 1 and ref[0] in given or len(ref) == 2 and ref[0] == f.name.lower() and ref[1] in given:
            return given[ref[-1]]
        if "ParamRef" in node and numbered.get((node["ParamRef"] or {}).get("number")) is not None:
            return numbered[node["ParamRef"]["number"]]
        if len(ref) == 1 and ref[0] in own:
            return {"ColumnRef": {"fields": [{"String": {"sval": f"{f.qualified}()"}}, {"String": {"sval": ref[0]}}]}}
        return {k: passed(v) for k, v in node.items()}

    for r in callee.refuses_when:
        if r not in outer:
            yield [(passed(_test_at(callee, p)), holds) for p, holds in nested.get(r, ())] + \
                [(passed(_test_at(callee, r)), True)]


def _negated(test: Any) -> Any:
    return {"BoolExpr": {"boolop": "NOT_EXPR", "args": [test]}}


def _admitting(atom: Any, src: Written, universe: list[str], labels: list[str] | None,
               enum: str | None) -> set[str] | None:
    """The values of `src` a test of it against constants holds for (`= 'admin'`, `<> 'viewer'`, `>= 'admin'` by
    the enum's order, `in (...)`, `not in (...)`, `= any (array[...])`, `not (...)`); None for any other test, and
    for an order test of a value not of the enum's type (`p_role::text > 'member'`: evasion round 16 e01)."""
    atom = unwrap(atom)
    inner = atom.get("BoolExpr") if isinstance(atom, dict) else None
    if isinstance(inner, dict) and inner.get("boolop") == "NOT_EXPR" and len(inner.get("args") or []) == 1:
        held = _admitting(inner["args"][0], src, universe, labels, enum)
        return None if held is None else set(universe) - held
    body = atom.get("A_Expr") if isinstance(atom, dict) else None
    if not isinstance(body, dict):
        return None
    op, kind = "".join(strings(body.get("name"))), body.get("kind", "AEXPR_OP")
    left, right = body.get("lexpr"), body.get("rexpr")
    if same(right, src) and kind == "AEXPR_OP":
        left, right, op = right, left, {"=": "=", "<>": "<>", "!=": "<>", **_FLIPPED}.get(op, "")
    if not same(left, src):
        return None
    if kind == "AEXPR_IN":
        items = ((right or {}).get("List") or {}).get("items") or []
    elif kind == "AEXPR_OP_ANY" and op == "=":
        items = ((unwrap(right) or {}).get("A_ArrayExpr") or {}).get("elements") or []
    elif kind == "AEXPR_OP":
        items = [right]
    else:
        return None
    values = [const(unwrap(i)) for i in items]
    if not values or not all(isinstance(v, str) for v in values):
        return None
    if op in ("=", "<>", "!=") and kind != "AEXPR_OP_ANY" or op == "=":
        held = {v for v in universe if v in values}
        return held if op == "=" else set(universe) - held
    if not labels or values[0] not in labels or op not in _FLIPPED or not enum_ordered(left, src, enum):
        return None
    i = labels.index(values[0])
    return {v for j, v in enumerate(labels) if {">=": j >= i, ">": j > i, "<=": j <= i, "<": j < i}[op]}


def callers_role_variables(s: Schema, w: DefinerWrite, orgs: list[list[str]]) -> set[str]:
    """Variables holding the caller's role in the written row's organisation, never NULL past the refusals: set
    once, before the write, by `select m.role into v from <membership table> m where m.organization_id = p_org and
    m.user_id = auth.uid()`, and refused when NULL (`if v is null or ...`, `if not found`) by a refusal no IF or
    handler holds back (evasion round 16 fp04: `if p_role > v_my_role then raise` bounds p_role by the caller's own
    role, as `m.role >= p_role` in a membership sub-query does)."""
    from .common import into_select, membership_tables
    reading = w.function._body
    members = membership_tables(s)
    counted: dict[str, int] = {}
    for _, names in reading.into:
        for name in names:
            counted[name] = counted.get(name, 0) + 1
    nested, caught = dict(reading.within), dict(reading.caught)
    out: set[str] = set()
    for at, names in reading.into:
        select = into_select(reading, at) if at < w.at and len(names) == 1 and counted[names[0]] == 1 else None
        items = (select or {}).get("fromClause") or []
        targets = [(x.get("ResTarget") or {}).get("val") for x in (select or {}).get("targetList") or []]
        relation = items[0].get("RangeVar") if len(items) == 1 and isinstance(items[0], dict) else None
        if not isinstance(relation, dict) or len(targets) != 1 or qualified(
                relation, reading.default_schema) not in members or not _pins_caller(select) or not orgs or \
                not _tied(select, lambda f: f in orgs):
            continue
        table = s.table(relation.get("relname", ""), relation.get("schemaname") or reading.default_schema)
        role = role_column(table) if table is not None else None
        if role is None or _fields(targets[0]) is None or _fields(targets[0])[-1] != role:
            continue
        from .reach_rules import _test_at
        if any(at < r < w.at and r not in nested and not (r in caught and w.at >= caught[r]) and any(
                _is_null(a, names[0]) or r == at + 1 and _not_found(a)
                for a in boolean_args(_test_at(reading, r), "OR_EXPR")) for r in reading.refuses_when):
            out.add(names[0])
    return out


def _is_null(atom: Any, name: str) -> bool:
    test = (unwrap(atom) or {}).get("NullTest") if isinstance(unwrap(atom), dict) else None
    return isinstance(test, dict) and test.get("nulltesttype") == "IS_NULL" and _fields(test.get("arg")) == [name]


def _not_found(atom: Any) -> bool:
    inner = (unwrap(atom) or {}).get("BoolExpr") if isinstance(unwrap(atom), dict) else None
    return isinstance(inner, dict) and inner.get("boolop") == "NOT_EXPR" and len(inner.get("args") or []) == 1 and \
        _fields(inner["args"][0]) == ["found"]


def _above_own(atom: Any, src: Written, mine: set[str], labels: list[str] | None, enum: str | None) -> bool:
    """`src > v` (`>=` too; `<` where the enum lists the most trusted role first) for a variable `v` holding the
    caller's own role: refusing it lets through only roles at or below the caller's."""
    body = (unwrap(atom) or {}).get("A_Expr") if isinstance(unwrap(atom), dict) else None
    if not isinstance(body, dict) or body.get("kind", "AEXPR_OP") != "AEXPR_OP" or not labels or not mine:
        return False
    op, left, right = "".join(strings(body.get("name"))), body.get("lexpr"), body.get("rexpr")
    if same(right, src):
        left, right, op = right, left, _FLIPPED.get(op, "")
    if not same(left, src) or not enum_ordered(left, src, enum) or (_fields(right) or [""])[0] not in mine or \
            len(_fields(right) or []) != 1:
        return False
    return op in (("<", "<=") if ranks_reversed(labels) else (">", ">="))


def _fields(node: Any) -> list[str] | None:
    return strings(((unwrap(node) or {}).get("ColumnRef") or {}).get("fields")) or None \
        if isinstance(unwrap(node), dict) else None


def _equated(atom: Any) -> tuple[list[str] | None, list[str] | None]:
    body = (unwrap(atom) or {}).get("A_Expr") if isinstance(unwrap(atom), dict) else None
    if not isinstance(body, dict) or body.get("kind", "AEXPR_OP") != "AEXPR_OP" or strings(body.get("name")) != ["="]:
        return None, None
    return _fields(body.get("lexpr")), _fields(body.get("rexpr"))


def _writer_rank(tree: Any, t: Table, column: str, labels: list[str] | None) -> int:
    """The rank of the least trusted role a policy lets write (_RELATIVE: no role below the row's own)."""
    if tree is None or any(k == "BoolExpr" and b.get("boolop") != "AND_EXPR" for k, b in nodes(tree)):
        return _LEAST
    key = t.tenant_key
    return _rank(boolean_args(tree, "AND_EXPR"), labels, lambda f: f == [t.name, column],
                 lambda f: not key or f in ([key], [t.name, key]), lambda f: not key or f == [t.name, key])


def _rank(atoms: list[Any], labels: list[str] | None, row_role: Callable[[list[str]], bool],
          row_org: Callable[[list[str]], bool], outer_org: Callable[[list[str]], bool]) -> int:
    """The least trusted role (its rank) the tests `atoms`, all true, leave: a role helper with a literal role
    in a test naming the row's organisation (`row_org`: `organization_id = any (array(select
    private.organization_ids_with_role('admin')))`), or a sub-query of the caller's membership tied to the row's
    organisation (`outer_org`: `m.organization_id = invitations.organization_id`; evasion round 13 e05 dropped it,
    and bob's role in B let him invite to A) holding `m.role` to literals or at least the row's role."""
    from .common import outside_subqueries
    ranks: list[int] = []
    for atom in atoms:
        tied = any(k == "ColumnRef" and row_org(strings(b.get("fields"))) for k, b in outside_subqueries(atom))
        for kind, body in nodes(atom):
            if kind == "FuncCall" and function_name(body).split(".")[-1].endswith(("with_role", "has_role")):
                named = [ROLE_RANKS[v] for a in body.get("args") or [] for v in [const(unwrap(a))]
                         if isinstance(v, str) and v in ROLE_RANKS]
                tied = tied or any(k == "ColumnRef" and row_org(strings(b.get("fields")))
                                   for a in body.get("args") or [] for k, b in nodes(a))
                ranks += named[:1] if tied else []
                if tied and any(k == "ColumnRef" and row_role(strings(b.get("fields")))
                                for a in body.get("args") or [] for k, b in nodes(a)):
                    return _RELATIVE  # `with_role(p_role)`: the caller holds the row's role or above
            elif kind == "SelectStmt" and _pins_caller(body) and _tied(body, outer_org):
                for inner in boolean_args(body.get("whereClause"), "AND_EXPR"):
                    if _relative(inner, labels, row_role):
                        return _RELATIVE
                    held = _held(inner) or _at_least(inner, labels)
                    if held:
                        ranks.append(max(ROLE_RANKS.get(v, _LEAST) for v in held))
    return min(ranks) if ranks else _LEAST


def _pins_caller(select: dict) -> bool:
    """A conjunct of the sub-query's filter compares a column with the caller (`m.user_id = (select auth.uid())`)."""
    for atom in boolean_args(select.get("whereClause"), "AND_EXPR"):
        body = (unwrap(atom) or {}).get("A_Expr") if isinstance(unwrap(atom), dict) else None
        if isinstance(body, dict) and strings(body.get("name")) == ["="] and any(
                k == "FuncCall" and function_name(b) == "auth.uid" for k, b in nodes(body)):
            return True
    return False


def _tied(select: dict, outer_org: Callable[[list[str]], bool]) -> bool:
    """A conjunct of the sub-query's filter equates a column with the row's organisation."""
    return any(a and b and (outer_org(a) or outer_org(b)) and not (outer_org(a) and outer_org(b))
               for atom in boolean_args(select.get("whereClause"), "AND_EXPR") for a, b in [_equated(atom)])


def _role_ref(node: Any) -> list[str]:
    return strings(((unwrap(node) or {}).get("ColumnRef") or {}).get("fields"))


def _held(atom: Any) -> list[str] | None:
    """The literal roles `m.role in (...)`, `= '...'` or `= any (array[...])` holds a `role` column to."""
    body = atom.get("A_Expr") if isinstance(atom, dict) else None
    if not isinstance(body, dict) or strings(body.get("name")) != ["="] or _role_ref(body.get("lexpr"))[-1:] != [
            "role"]:
        return None
    right, kind = unwrap(body.get("rexpr")), body.get("kind", "AEXPR_OP")
    items = ((body.get("rexpr") or {}).get("List") or {}).get("items") if kind == "AEXPR_IN" else \
        ((right or {}).get("A_ArrayExpr") or {}).get("elements") if kind == "AEXPR_OP_ANY" else \
        [right] if kind == "AEXPR_OP" else None
    values = [const(unwrap(i)) for i in items or []]
    return values if values and all(isinstance(v, str) for v in values) else None


def _relative(atom: Any, labels: list[str] | None, row_role: Callable[[list[str]], bool]) -> bool:
    """`m.role >= <the row's role>` (or `<=` where the enum lists the most trusted role first): the caller's role
    is at or above the row's."""
    body = atom.get("A_Expr") if isinstance(atom, dict) else None
    if not isinstance(body, dict) or body.get("kind", "AEXPR_OP") != "AEXPR_OP" or not labels:
        return False
    op = "".join(strings(body.get("name")))
    left, right = _role_ref(body.get("lexpr")), _role_ref(body.get("rexpr"))
    if right and row_role(right) and left[-1:] == ["role"] and len(left) == 2:
        mine = op
    elif left and row_role(left) and right[-1:] == ["role"] and len(right) == 2:
        mine = _FLIPPED.get(op, "")
    else:
        return False
    return mine in (("<=", "<") if ranks_reversed(labels) else (">=", ">"))


def _at_least(atom: Any, labels: list[str] | None) -> list[str] | None:
    """[the role] of `m.role >= 'member'` (`<=` where the enum lists the most trusted role first), by the enum's
    order: the caller holds it or a role above it."""
    body = atom.get("A_Expr") if isinstance(atom, dict) else None
    if not isinstance(body, dict) or body.get("kind", "AEXPR_OP") != "AEXPR_OP" or not labels:
        return None
    op = "".join(strings(body.get("name")))
    left, right = body.get("lexpr"), body.get("rexpr")
    if _role_ref(right)[-1:] == ["role"]:
        left, right, op = right, left, _FLIPPED.get(op, "")
    value = const(unwrap(right))
    if _role_ref(left)[-1:] != ["role"] or not isinstance(value, str) or value not in labels:
        return None
    return [value] if op in (("<=", "<") if ranks_reversed(labels) else (">=", ">")) else None
