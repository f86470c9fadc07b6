"""Whether a helper over a membership helper ties the memberships to the argument it is given (BP027).

`can_read(p_org)` = `select p_org = any (array(select private.organization_ids_with_role('viewer')))` checks the
row's organisation (evasion round 16 fp05); `exists (select 1 from organization_ids_with_role('owner'))` (any owner
of any organisation) and `where mine.org_id = org_id` over `organization_ids_with_role(...) as mine (org_id)` (in an
SQL function the bare name is the column, so the test compares it with itself) check nothing of it (evasion round 17
e07, e07b). Names resolve as PostgreSQL resolves them: in an SQL function a column of a FROM item wins over a
parameter of the same name unless the name is qualified with the function's name or written $n; in PL/pgSQL the
clash is an error (a test that errors admits no one, but checks no organisation either), unless
`#variable_conflict use_variable`. A count of the rows a query finds compared so that it holds only where one is
found (`select count(*) > 0 from ... where o.id = p_org`, `(select count(*) from ...) >= 1`), and `bool_or(<test>)`
over them, ask what `exists (select 1 from ... where ...)` asks (evasion round 21 fp05).
"""

from __future__ import annotations

import re
from typing import Any

from ...model.schema import Function, Schema, Table
from ..pins import unwrap
from ..platform import managed
from ..token_claims import every_caller
from ..tree import const, function_name, nodes, strings
from .common import find_function, sql_answer

_ARRAY_TESTS = ("<@", "@>", "&&")


def ties_membership(s: Schema, call: dict, table: Table | None, helpers: set[str],
                    callers: frozenset[str] = frozenset()) -> bool:
    """A call of an app function (`private.can_read(organization_id)`) that passes the row's tenant key (any column
    when the table is not known) to a parameter its body compares with a membership helper's answer, in every
    branch; or passes the row's own key (`can_view_ticket(id)`) to a body that finds the row by it and asks the
    memberships about that row's tenant key. A branch every caller of `callers` passes (`or auth.role() =
    'authenticated'`) is BP079's to report, as it is in the policy."""
    key = table.tenant_key if table is not None else None
    unique = {c.columns[0] for c in (table.constraints if table is not None else []) if
              c.kind in ("primary key", "unique") and len(c.columns) == 1}
    args = list(enumerate(call.get("args") or [], start=1))
    positions = {i for i, a in args if (name := _row_column(a)) and (key is None or name == key)}
    rows = {i: name for i, a in args if (name := _row_column(a)) in unique and key is not None and name != key}
    f = find_function(s, function_name(call))
    row = (table.qualified, key, rows) if rows and table is not None else None
    return bool(positions or row) and f is not None and _ties(s, f, positions, helpers, frozenset(), callers, row)


def _row_column(arg: Any) -> str | None:
    ref = (unwrap(arg) or {}).get("ColumnRef") if isinstance(unwrap(arg), dict) else None
    names = strings((ref or {}).get("fields"))
    return names[-1] if names and names[-1] != "*" else None


def _ties(s: Schema, f: Function, positions: set[int], helpers: set[str], seen: frozenset[str],
          callers: frozenset[str], row: tuple | None = None) -> bool:
    reading = f._body
    if reading is None or f.qualified in seen or managed(f.schema_name):
        return False
    reader = _Reader(s, f, reading, positions, helpers, seen | {f.qualified}, callers, row)
    answer = sql_answer(f)
    if answer is None and f.language == "sql" and len(reading.trees) == 1:
        answer = _found_any(_lone_select(reading.trees[0]))  # select count(*) > 0 from ... where ...
    if answer is not None:
        return reader.tied(answer, ())
    if f.language == "sql":
        return False  # a lookup rather than one answer: not read
    # PL/pgSQL: each expression that asks the memberships must ask them about the argument (`return <test>` is kept
    # as `select <test>`, like every other expression of the body); a variable holding the helper's answers as they
    # are (`v_orgs := array(select private.organization_ids_with_role('viewer'))`) asks them where it is read
    # (`return p_org = any (v_orgs)`: evasion round 21 fp05).
    reader.sets, kept = _answer_sets(reader, reading)
    asked = [t for at, t in enumerate(reading.trees) if at not in kept and reader.asks(t)]
    return bool(asked) and all(reader.tied(_lone(t), ()) for t in asked)


def _answer_sets(reader: _Reader, reading: Any) -> tuple[set[str], set[int]]:
    """(variables only ever set to the array of a membership helper's answers, the positions of those
    assignments): `array(select <helper>(...))`, `select array_agg(x) into v from <helper>(...) x`."""
    sets: dict[str, list[int]] = {}
    for at, names in reading.into:
        for name in names:
            sets.setdefault(name, []).append(at if len(names) == 1 else -1)
    out: set[str] = set()
    for name, positions in sets.items():
        if all(at >= 0 and _answers_array(reader, _lone_select(reading.trees[at])) for at in positions):
            out.add(name)
    return out, {at for name in out for at in sets[name]}


def _answers_array(reader: _Reader, select: dict | None) -> bool:
    targets = (select or {}).get("targetList") or []
    value = unwrap((targets[0].get("ResTarget") or {}).get("val")) if len(targets) == 1 else None
    if not isinstance(value, dict) or select.get("whereClause") or select.get("groupClause"):
        return False
    link = value.get("SubLink")
    if isinstance(link, dict) and not select.get("fromClause"):
        inner = (link.get("subselect") or {}).get("SelectStmt") or {}
        return link.get("subLinkType") == "ARRAY_SUBLINK" and not inner.get("whereClause") and \
            reader.asks(inner.get("fromClause") or inner.get("targetList"))
    call = value.get("FuncCall")
    return isinstance(call, dict) and _aggregate(call, "array_agg") and reader.asks(select.get("fromClause"))


def _lone_select(tree: Any) -> dict | None:
    stmts = tree if isinstance(tree, list) else [tree]
    stmt = (stmts[0] or {}).get("stmt") if len(stmts) == 1 and isinstance(stmts[0], dict) else None
    select = (stmt or {}).get("SelectStmt")
    return select if isinstance(select, dict) else None


def _found_any(select: dict | None) -> dict | None:
    """`exists (select 1 from <its FROM> where <its WHERE>)` for a SELECT whose one value holds only where its FROM
    and WHERE find a row: `count(*) > 0` (`>= 1`, `<> 0`, `0 < count(x)`: a count of x finds the rows where x is
    not null, fewer), `bool_or(<test>)` (the test joins the WHERE); None for any other SELECT, or one that groups
    (a count per group)."""
    if not isinstance(select, dict) or not select.get("fromClause") or select.get("groupClause") or \
            select.get("havingClause") or select.get("op", "SETOP_NONE") != "SETOP_NONE" or \
            len(select.get("targetList") or []) != 1:
        return None
    value = unwrap((select["targetList"][0].get("ResTarget") or {}).get("val"))
    if isinstance(value, dict) and isinstance(value.get("CoalesceExpr"), dict):  # coalesce(bool_or(...), false)
        value = unwrap((value["CoalesceExpr"].get("args") or [None])[0])
    call = value.get("FuncCall") if isinstance(value, dict) else None
    if isinstance(call, dict) and _aggregate(call, "bool_or") and len(call.get("args") or []) == 1:
        return _exists(select, call["args"][0])
    return _exists(select) if isinstance(value, dict) and _counts_some(value.get("A_Expr")) is not None else None


def _exists(select: dict, test: Any = None) -> dict:
    """`exists (select 1 from <select's FROM> where <its WHERE> [and <test>])`."""
    where = select.get("whereClause")
    if test is not None:
        where = {"BoolExpr": {"boolop": "AND_EXPR", "args": [where, test]}} if where is not None else test
    inner = {**select, "targetList": [{"ResTarget": {"val": {"A_Const": {"ival": {"ival": 1}}}}}],
             "whereClause": where}
    return {"SubLink": {"subLinkType": "EXISTS_SUBLINK", "subselect": {"SelectStmt": inner}}}


def _aggregate(call: dict, name: str) -> bool:
    return function_name(call) in (name, f"pg_catalog.{name}") and not call.get("agg_filter") and \
        not call.get("over")


def _counts_some(e: Any) -> Any:
    """The count compared in `count(...) > 0` and the like: a comparison of a plain count (or of a scalar sub-query
    answering one: `(select count(*) from ...) > 0`) with a constant that holds only for a count of 1 or more (`> 0`,
    `>= 1`, `<> 0`, `= 1`, read either way round); None for anything else."""
    if not isinstance(e, dict) or e.get("kind", "AEXPR_OP") != "AEXPR_OP":
        return None
    op = (strings(e.get("name")) or [""])[-1]
    flipped = {">": "<", "<": ">", ">=": "<=", "<=": ">="}
    for count, other, how in ((e.get("lexpr"), e.get("rexpr"), op), (e.get("rexpr"), e.get("lexpr"),
                                                                       flipped.get(op, op))):
        count = unwrap(count)
        link = count.get("SubLink") if isinstance(count, dict) else None
        if isinstance(link, dict) and link.get("subLinkType") == "EXPR_SUBLINK":
            select = (link.get("subselect") or {}).get("SelectStmt") or {}
            targets = select.get("targetList") or []
            inner = unwrap((targets[0].get("ResTarget") or {}).get("val")) if len(targets) == 1 else None
            call = inner.get("FuncCall") if isinstance(inner, dict) and select.get("fromClause") and not \
                select.get("groupClause") and not select.get("havingClause") else None
        else:
            call = count.get("FuncCall") if isinstance(count, dict) else None
        n = const(unwrap(other))
        if not isinstance(call, dict) or not _aggregate(call, "count") or not isinstance(n, int) or \
                isinstance(n, bool):
            continue
        if how == ">" and n >= 0 or how in (">=", "=") and n >= 1 or how in ("<>", "!=") and n == 0:
            return count
    return None


def _lone(tree: Any) -> Any:
    stmts = tree if isinstance(tree, list) else [tree]
    stmt = (stmts[0] or {}).get("stmt") if len(stmts) == 1 and isinstance(stmts[0], dict) else None
    select = (stmt or {}).get("SelectStmt") or {}
    targets = select.get("targetList") or []
    if len(targets) == 1 and not select.get("fromClause"):
        return (targets[0].get("ResTarget") or {}).get("val")
    return {"SubLink": {"subLinkType": "EXISTS_SUBLINK", "subselect": {"SelectStmt": select}}} if select else None


class _Reader:
    def __init__(self, s: Schema, f: Function, reading, positions: set[int], helpers: set[str], seen: frozenset[str],
                 callers: frozenset[str], row: tuple | None = None):
        self.s, self.f, self.helpers, self.seen, self.positions = s, f, helpers, seen, positions
        self.callers = callers
        # (the policy's table, its tenant key, position -> the row's unique column passed there)
        self.table, self.key, self.rows = row if row is not None else ("", None, {})
        self.row_params = {name: i for i, (name, _) in enumerate(reading.params, start=1) if i in self.rows}
        self.bound: set[tuple[int, str]] = set()  # (scope, alias) of a FROM item found by the row's own key
        self.params = {name: i for i, (name, _) in enumerate(reading.params, start=1) if name and i in positions}
        self.column_first = reading.column_first
        self.sets: set[str] = set()  # PL/pgSQL variables holding a membership helper's answers (_answer_sets)

    # --- what asks the memberships ------------------------------------------------------------------------------

    def membership_call(self, name: str) -> bool:
        """A membership helper, or an app function that calls one however deep (its own answer is BP054's)."""
        return name in self.helpers or _over_helpers(self.s, name, self.helpers, self.seen)

    def asks(self, value: Any) -> bool:
        stack = [value]
        while stack:
            v = stack.pop()
            if isinstance(v, list):
                stack += v
            elif isinstance(v, dict):
                call = v.get("FuncCall") if len(v) == 1 else None
                if isinstance(call, dict) and self.membership_call(function_name(call)):
                    return True
                if self.sets and strings((v.get("ColumnRef") or {}).get("fields")) in ([n] for n in self.sets):
                    return True
                stack += [x for x in v.values() if isinstance(x, dict | list)]
        return False

    # --- the argument ---------------------------------------------------------------------------------------------

    def is_param(self, value: Any, scopes: tuple) -> bool:
        """`$n`, `fn.name`, or a bare name no column of an enclosing FROM item takes (PostgreSQL's reading)."""
        value = unwrap(value)
        if not isinstance(value, dict):
            return False
        if "ParamRef" in value:
            return value["ParamRef"].get("number") in self.positions
        names = strings((value.get("ColumnRef") or {}).get("fields"))
        if self.bound and len(names) == 2 and names[1] == self.key and \
                any((id(scope), names[0]) in self.bound for scope in scopes):
            return True  # the tenant key of the policy's own row, found by its key (`st.gym_id`)
        if len(names) == 2:
            return names[0] == self.f.name and names[1] in self.params and \
                not any(names[0] == alias for scope in scopes for alias, _ in scope)
        if len(names) != 1 or names[0] not in self.params:
            return False
        for scope in scopes:
            for _, columns in scope:
                if columns is None or names[0] in columns:
                    # a column of that name wins (SQL), or makes the name ambiguous (PL/pgSQL: an error); a FROM
                    # item of unknown columns may hold one
                    if not (not self.column_first and columns is not None and self.use_variable()):
                        return False
        return True

    def use_variable(self) -> bool:
        return bool(re.search(r"#variable_conflict\s+use_variable", self.f.body or "", re.I))

    # --- ties -------------------------------------------------------------------------------------------------------

    def tied(self, value: Any, scopes: tuple) -> bool:
        value = unwrap(value)
        if not isinstance(value, dict) or len(value) != 1:
            return False
        kind, body = next(iter(value.items()))
        if not isinstance(body, dict):
            return False
        if kind == "BoolExpr":
            args = body.get("args") or []
            if body.get("boolop") == "OR_EXPR":
                tied = [a for a in args if self.tied(a, scopes)]
                return bool(tied) and all(a in tied or self._aside(a) for a in args)
            return body.get("boolop") == "AND_EXPR" and any(self.tied(a, scopes) for a in args)
        if kind == "CoalesceExpr":
            args = body.get("args") or []
            return bool(args) and self.tied(args[0], scopes)
        if kind == "A_Expr":
            counted = (_counts_some(body) or {}).get("SubLink")
            if isinstance(counted, dict):  # (select count(*) from ... where o.id = p_org) > 0: an EXISTS
                return self.tied(_exists((counted.get("subselect") or {}).get("SelectStmt") or {}), scopes)
            return self._compared(body, scopes)
        if kind == "SubLink":
            return self._sub_link(body, scopes)
        if kind == "FuncCall":
            return self._passed(body, scopes)
        return False

    def _aside(self, branch: Any) -> bool:
        """An OR branch beside the tied one that is no membership test gone wrong: one that decides by something
        other than the organisation (`_visibility = 'public'`, `_viewer = _owner`: a policy's own OR branches may
        too), or one every caller passes (BP079's to report, as in the policy). Not one that asks the memberships
        about nothing (`exists (select 1 from organization_ids_with_role('owner'))`, evasion round 17 e07b) or reads
        the organisation without them (`or p_org is not null`)."""
        if every_caller(branch, self.callers, self.f.security_definer) is not None:
            return True
        return not self.asks(branch) and not any(
            kind in ("ColumnRef", "ParamRef") and self.is_param({kind: body}, ()) for kind, body in nodes(branch))

    def _compared(self, e: dict, scopes: tuple) -> bool:
        """`p = any (array(select helper(...)))`, `p in (...)`, `array[p] <@ array(select helper(...))`."""
        op = strings(e.get("name"))[-1:]
        left, right = e.get("lexpr"), e.get("rexpr")
        if op == ["="] and e.get("kind") in ("AEXPR_OP", "AEXPR_OP_ANY", "AEXPR_IN"):
            return any(self.is_param(a, scopes) and self.asks(b) for a, b in ((left, right), (right, left)))
        if op and op[0] in _ARRAY_TESTS and e.get("kind") == "AEXPR_OP":
            inner = left if op[0] == "<@" else right if op[0] == "@>" else None
            sides = [(inner, right if inner is left else left)] if inner is not None else [(left, right),
                                                                                          (right, left)]
            return any(self._array_of_param(a, scopes) and self.asks(b) for a, b in sides)
        return False

    def _array_of_param(self, value: Any, scopes: tuple) -> bool:
        elements = ((unwrap(value) or {}).get("A_ArrayExpr") or {}).get("elements") if isinstance(
            unwrap(value), dict) else None
        return bool(elements) and all(self.is_param(x, scopes) for x in elements)

    def _sub_link(self, link: dict, scopes: tuple) -> bool:
        select = (link.get("subselect") or {}).get("SelectStmt") or {}
        kind = link.get("subLinkType")
        if kind == "ANY_SUBLINK":  # p in (select ... from helper(...)), p = any (select ...)
            return self.is_param(link.get("testexpr"), scopes) and \
                self.asks([select.get("fromClause"), select.get("targetList")])
        if kind == "EXPR_SUBLINK" and not select.get("fromClause"):
            targets = select.get("targetList") or []
            return len(targets) == 1 and self.tied((targets[0].get("ResTarget") or {}).get("val"), scopes)
        if kind == "EXPR_SUBLINK" and _found_any(select) is not None:  # (select count(*) > 0 from ... where ...)
            return self.tied(_found_any(select), scopes)
        if kind != "EXISTS_SUBLINK" or select.get("op", "SETOP_NONE") != "SETOP_NONE":
            return False
        scope = self._from_items(select.get("fromClause") or [])
        inner = scopes + (scope,)
        asked = self.asks(select.get("fromClause"))
        self._bind_row(select, scope, inner)
        for test in _conjuncts(select.get("whereClause")):
            if self.tied(test, inner):
                return True
            e = (unwrap(test) or {}).get("A_Expr") if isinstance(unwrap(test), dict) else None
            if asked and isinstance(e, dict) and strings(e.get("name")) == ["="] and \
                    e.get("kind", "AEXPR_OP") == "AEXPR_OP" and \
                    any(self.is_param(a, inner) and self._column_of(b, scope) for a, b in
                        ((e.get("lexpr"), e.get("rexpr")), (e.get("rexpr"), e.get("lexpr")))):
                return True
        return False

    def _bind_row(self, select: dict, scope: list, inner: tuple) -> None:
        """`from support_tickets st where st.id = _ticket_id`: st is the policy's row when the parameter holds its
        unique column (evasion round 17 e07: a helper given the row's id, not its organisation)."""
        if not self.rows:
            return
        tables = {alias: rel for alias, rel in self._relations(select.get("fromClause") or [])}
        for test in _conjuncts(select.get("whereClause")):
            e = (unwrap(test) or {}).get("A_Expr") if isinstance(unwrap(test), dict) else None
            if not isinstance(e, dict) or strings(e.get("name")) != ["="] or \
                    e.get("kind", "AEXPR_OP") != "AEXPR_OP":
                continue
            for a, b in ((e.get("lexpr"), e.get("rexpr")), (e.get("rexpr"), e.get("lexpr"))):
                names = strings(((unwrap(a) or {}).get("ColumnRef") or {}).get("fields")) if isinstance(
                    unwrap(a), dict) else []
                at = self._row_param(b, inner)
                if len(names) == 2 and at is not None and tables.get(names[0]) == self.table and \
                        names[1] == self.rows[at]:
                    self.bound.add((id(scope), names[0]))

    def _row_param(self, value: Any, scopes: tuple) -> int | None:
        value = unwrap(value)
        if not isinstance(value, dict):
            return None
        if "ParamRef" in value:
            n = value["ParamRef"].get("number")
            return n if n in self.rows else None
        names = strings((value.get("ColumnRef") or {}).get("fields"))
        if len(names) == 2 and names[0] == self.f.name:
            return self.row_params.get(names[1])
        if len(names) == 1 and names[0] in self.row_params and \
                not any(columns is None or names[0] in columns for scope in scopes for _, columns in scope):
            return self.row_params[names[0]]
        return None

    def _relations(self, items: list) -> list[tuple[str, str]]:
        out, stack = [], list(items)
        while stack:
            item = stack.pop()
            kind, body = next(iter(item.items())) if isinstance(item, dict) and len(item) == 1 else ("", {})
            if kind == "JoinExpr":
                stack += [body.get("larg"), body.get("rarg")]
            elif kind == "RangeVar":
                rel = f"{body.get('schemaname') or 'public'}.{body.get('relname', '')}"
                out.append(((body.get("alias") or {}).get("aliasname") or body.get("relname", ""), rel))
        return out

    def _column_of(self, value: Any, scope: list) -> bool:
        names = strings(((unwrap(value) or {}).get("ColumnRef") or {}).get("fields")) if isinstance(
            unwrap(value), dict) else []
        if len(names) == 2:
            return any(alias == names[0] for alias, _ in scope)
        return len(names) == 1 and any(columns is None or names[0] in columns for _, columns in scope)

    def _passed(self, call: dict, scopes: tuple) -> bool:
        """A membership helper given the argument (`private.is_member(p_org)`), or an app function that ties it."""
        name = function_name(call)
        at = {i for i, a in enumerate(call.get("args") or [], start=1) if self.is_param(a, scopes)}
        if not at:
            return False
        if name in self.helpers:
            return True
        g = find_function(self.s, name)
        return g is not None and _ties(self.s, g, at, self.helpers, self.seen, self.callers)

    def _from_items(self, items: list) -> list[tuple[str, set[str] | None]]:
        """(alias, its columns or None) of each FROM item."""
        out: list[tuple[str, set[str] | None]] = []
        stack = list(items)
        while stack:
            item = stack.pop()
            kind, body = next(iter(item.items())) if isinstance(item, dict) and len(item) == 1 else ("", {})
            alias = body.get("alias") or {} if isinstance(body, dict) else {}
            named = strings(alias.get("colnames"))
            if kind == "JoinExpr":
                stack += [body.get("larg"), body.get("rarg")]
            elif kind == "RangeVar":
                t = self.s.table(body.get("relname", ""), body.get("schemaname") or "public")
                out.append((alias.get("aliasname") or body.get("relname", ""),
                            {c.name for c in t.columns} | set(named) if t is not None else None))
            elif kind == "RangeFunction":
                out.append(self._function_item(body, alias, named))
            else:
                out.append((alias.get("aliasname") or "", set(named) or None))
        return out

    def _function_item(self, body: dict, alias: dict, named: list[str]) -> tuple[str, set[str] | None]:
        """A function in FROM: its columns are the alias's column names, else its OUT columns, else (a function of
        one value) one column named after the alias or the function."""
        lists = body.get("functions") or []
        items = ((lists[0] or {}).get("List") or {}).get("items") or [] if len(lists) == 1 else []
        call = (items[0] or {}).get("FuncCall") if items else None
        name = function_name(call) if isinstance(call, dict) else ""
        label = alias.get("aliasname") or name.split(".")[-1]
        g = find_function(self.s, name) if name else None
        if g is None:
            return label, set(named) or None
        columns = _out_columns(g)
        if columns is None:
            t = _returned_table(self.s, g)
            columns = [c.name for c in t.columns] if t is not None else [label] if _scalar(g) else None
        if columns is None:
            return label, set(named) or None
        return label, set(named) | set(columns[len(named):])


def _conjuncts(where: Any) -> list:
    body = where.get("BoolExpr") if isinstance(where, dict) else None
    if isinstance(body, dict) and body.get("boolop") == "AND_EXPR":
        return [x for a in body.get("args") or [] for x in _conjuncts(a)]
    return [where] if where is not None else []


def _out_columns(f: Function) -> list[str] | None:
    """The columns of `returns table (a uuid, b text)` or of OUT parameters; None for neither."""
    returns = (f.returns or "").strip()
    m = re.match(r"(?is)table\s*\((.*)\)\s*$", returns)
    parts = _split(m.group(1)) if m else [p for p in _split(f.args or "")
                                          if re.match(r"(?i)\s*(out|inout)\s", p)]
    if not parts:
        return None
    names = []
    for p in parts:
        words = p.split()
        if words and words[0].lower() in ("out", "inout"):
            words = words[1:]
        if len(words) < 2:
            return None
        names.append(words[0].strip('"'))
    return names


def _split(text: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "(" or -(ch in ")")
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return [p.strip() for p in out + [cur] if p.strip()]


def _returned_table(s: Schema, f: Function):
    name = re.sub(r"(?i)^setof\s+", "", (f.returns or "").strip()).strip('"')
    schema, _, table = name.rpartition(".")
    return s.table(table, schema or "public") if table else None


def _scalar(f: Function) -> bool:
    returns = re.sub(r"(?i)^setof\s+", "", (f.returns or "").strip()).lower()
    return bool(returns) and returns not in ("record", "trigger", "void") and "(" not in returns.split(" ")[0]


def _over_helpers(s: Schema, name: str, helpers: set[str], seen: frozenset[str]) -> bool:
    f = find_function(s, name)
    if f is None or f.qualified in seen or managed(f.schema_name):
        return False
    seen = seen | {f.qualified}
    return any(inner in helpers or _over_helpers(s, inner, helpers, seen) for inner in f.calls or ())
