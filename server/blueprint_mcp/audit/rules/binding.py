"""Does a policy's membership read decide anything about the row? A reading of policy trees for BP050.

A membership check protects a tenant table only when it is tied to two things: the row (its tenant key, or
something of the row a correlated sub-query compares) and the caller (`user_id = auth.uid()`, or the
membership table's own RLS). Reads that miss either pass for every row of every organisation:

    exists (select 1 from organization_members m where m.user_id = auth.uid())      -- any member, any row
    exists (select 1 from organization_members m
             where m.organization_id = organization_id and m.user_id = auth.uid())   -- the bare name is m's own
    organization_id in (select organization_id from organization_members)           -- everyone's, without RLS

The first two compare nothing of the row; the third reads the memberships of everyone when the membership
table has no RLS (with RLS, its own policies show the caller theirs).

Tied to the row: the read is an operand of a comparison whose other side reads a column (`organization_id =
any (array(select private.organization_ids_with_role('viewer')))`, `organization_id in (select ...)`), a
helper is called with a column (`basejump.has_role_on_account(account_id)`), or the sub-query refers to a
column outside itself. A bare name inside a sub-query is the sub-query's own when a relation it reads has
that column, as PostgreSQL resolves it. Tied to the caller: the sub-query that reads the membership table
calls auth.uid() or another function (a helper decides for itself). Where the reading cannot tell (a relation
it does not know the columns of), it gives the benefit of the doubt.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ...model.schema import Schema
from ...model.tenant_keys import role_column
from ..pins import CALLER, CALLERS_SET, NULLABLE_SIDES, filters_of, outer_aliases, pinned, unwrap
from ..tree import Node, function_name, qualified, strings
from .common import _index, names_the_caller, outside_subqueries, per_tree

_SCOPE_NODES = ("RangeSubselect", "RangeFunction", "RangeTableSample")


def _typed(value: Any) -> tuple[str, Node] | None:
    if isinstance(value, dict) and len(value) == 1:
        kind, body = next(iter(value.items()))
        if kind[:1].isupper() and isinstance(body, dict):
            return kind, body
    return None


def _children(value: Any) -> list[Any]:
    typed = _typed(value)
    body = typed[1] if typed else value
    if isinstance(body, dict):
        return [v for v in body.values() if isinstance(v, dict | list)]
    if isinstance(body, list):
        return list(body)
    return []


def _has_column(value: Any) -> bool:
    """A ColumnRef in `value`, outside nested sub-queries."""
    stack = [value]
    while stack:
        v = stack.pop()
        typed = _typed(v)
        if typed:
            if typed[0] == "ColumnRef":
                return True
            if typed[0] == "SubLink":
                continue
        stack.extend(_children(v))
    return False


class _Scope:
    """The names a SELECT's FROM defines: aliases and relation names, and the columns known for each."""

    def __init__(self, s: Schema, select: Node, default_schema: str) -> None:
        self.names: set[str] = set()
        self.columns: set[str] = set()
        self.unknown = False  # a relation whose columns the reading does not know
        self.by_alias: dict[str, set[str]] = {}
        self.never_null: dict[str, set[str]] = {}  # alias -> its NOT NULL columns, outside an outer join's null side
        outer = outer_aliases(select)
        for kind, body in _from_items(select):
            if kind == "RangeVar":
                alias = (body.get("alias") or {}).get("aliasname")
                self.names.add(alias or body.get("relname", ""))
                table = s.table(body.get("relname", ""), body.get("schemaname") or default_schema)
                if table is None:
                    self.unknown = True
                else:
                    self.columns |= {c.name for c in table.columns}
                    name = alias or body.get("relname", "")
                    self.by_alias[name] = {c.name for c in table.columns}
                    if name not in outer:
                        self.never_null[name] = {c.name for c in table.columns if not c.nullable}
            elif kind in _SCOPE_NODES:
                alias = (body.get("alias") or {}).get("aliasname")
                if alias:
                    self.names.add(alias)
                self.unknown = True

    def alias_of(self, ref: Node) -> str | None:
        """The alias a column reference names in this FROM (a bare name: the relation that has the column)."""
        names = strings(ref.get("fields"))
        if len(names) >= 2:
            return names[-2] if names[-2] in self.names else None
        found = next((alias for alias, columns in self.by_alias.items() if names and names[-1] in columns), None)
        return found or (next(iter(self.names)) if len(self.names) == 1 and self.unknown else None)

    def resolves(self, ref: Node) -> bool:
        names = strings(ref.get("fields"))
        if len(names) >= 2:
            return names[-2] in self.names
        return self.unknown or (bool(names) and names[-1] in self.columns)


def _correlated(s: Schema, select: Node, default_schema: str, part: Any = None) -> bool:
    """The sub-query (or `part` of it) refers to a column the sub-query does not define itself (at any depth)."""
    stack: list[tuple[Any, tuple[_Scope, ...]]] = [(select if part is None else part,
                                                   (_Scope(s, select, default_schema),))]
    while stack:
        value, scopes = stack.pop()
        typed = _typed(value)
        if typed:
            kind, body = typed
            if kind == "ColumnRef" and not any(scope.resolves(body) for scope in scopes):
                return True
            if kind == "SelectStmt" and body is not select:
                scopes = scopes + (_Scope(s, body, default_schema),)
        stack.extend((child, scopes) for child in _children(value))
    return False


def calls_out(value: Any) -> bool:
    """A call of a function outside pg_catalog (auth.uid(), current_setting(), a helper) in `value`."""
    stack: list[Any] = [value]
    while stack:
        v = stack.pop()
        typed = _typed(v)
        if typed and typed[0] == "FuncCall" and names_the_caller(function_name(typed[1])):
            return True
        stack.extend(_children(v))
    return False


def tied_to_row(s: Schema, select: Node, default_schema: str, roles: frozenset[str] = frozenset()) -> bool:
    """The sub-query compares something of the outer row in every branch of its filter (`a and b`: either; `a or
    b`: both), or refers to the outer row outside its filter (its output, its FROM), where this reading cannot
    judge: `m.organization_id = tasks.organization_id and m.user_id = auth.uid() or m.role = 'owner'` lets every
    owner's membership through, whatever the row. A comparison of two columns one of which is named in `roles`
    (`m.role >= invitations.role`) ties no organisation (evasion round 13 e05)."""
    def leaf(value: Any) -> bool:
        typed = _typed(value)
        op = typed[1].get("boolop") if typed and typed[0] == "BoolExpr" else None
        if typed and typed[0] == "A_Expr" and roles:
            sides = [_typed(unwrap(typed[1].get(k))) for k in ("lexpr", "rexpr")]
            if all(x and x[0] == "ColumnRef" for x in sides) and \
                    any(strings(x[1].get("fields"))[-1:] and strings(x[1].get("fields"))[-1] in roles for x in sides):
                return False
        return op is None and _correlated(s, select, default_schema, value)

    return any(_per_branch(f, leaf) for f in filters_of(select)) or \
        _correlated(s, select, default_schema, _outside_filter(select))


def _per_branch(value: Any, leaf) -> bool:
    """`leaf` holds in a boolean filter read branch by branch: in some conjunct of an AND, in every arm of an OR."""
    typed = _typed(value)
    op = typed[1].get("boolop") if typed and typed[0] == "BoolExpr" else None
    if op == "AND_EXPR":
        return any(_per_branch(arg, leaf) for arg in typed[1].get("args") or [])
    if op == "OR_EXPR":
        return all(_per_branch(arg, leaf) for arg in typed[1].get("args") or [])
    return leaf(value)


def _outside_filter(select: Node) -> list[Any]:
    """What a sub-query holds besides its filter: its output, its grouping, the non-relation items of its FROM."""
    return [v for k, v in select.items() if k not in ("whereClause", "fromClause")] + \
        [body for kind, body in _from_items(select) if kind != "RangeVar"]


def pins_caller(s: Schema, select: Node, default_schema: str, members: set[str]) -> bool:
    """The sub-query keeps a membership relation it reads to the caller's rows: its filter pins one of that
    relation's columns to a value naming the caller (`m.user_id = (select auth.uid())`) in every branch, or it
    names the caller outside its filter (its output, a function in its FROM), where this reading cannot judge."""
    return bool(_caller_pins(s, select, default_schema, members)) or calls_out(_outside_filter(select))


def _caller_pins(s: Schema, select: Node, default_schema: str, members: set[str]) -> set[tuple[str, str]]:
    """(alias, column) of each column of a membership relation in the SELECT's own FROM that its filter pins to the
    caller (or to the caller's set) in every branch."""
    scope = _Scope(s, select, default_schema)
    aliases = {(body.get("alias") or {}).get("aliasname") or body.get("relname", "")
               for kind, body in _from_items(select) if kind == "RangeVar"
               and qualified(body, default_schema) in members}
    if not aliases:
        return set()

    def classify(operand: Any) -> Any:
        operand = unwrap(operand)
        typed = _typed(operand)
        if typed and typed[0] == "ColumnRef":
            alias = scope.alias_of(typed[1])
            return (alias, strings(typed[1].get("fields"))[-1]) if alias else ("outer", id(typed[1]))
        if typed and typed[0] == "SubLink":
            return CALLERS_SET if calls_out(operand) else None
        return CALLER if calls_out(operand) and not _has_column(operand) else None

    def never_null(key: Any) -> bool:
        return isinstance(key, tuple) and len(key) == 2 and key[1] in scope.never_null.get(key[0], ())

    # The caller's own membership, or one in an organisation of the caller's (a co-member's).
    return {(alias, column) for anchor in (CALLER, CALLERS_SET)
            for alias, column in pinned(filters_of(select), classify, anchor=anchor, never_null=never_null)
            if alias in aliases}


def unbound_memberships(s: Schema, select: Node, default_schema: str, members: set[str]) -> list[str]:
    """schema.table of each membership relation in the SELECT's own FROM whose rows its filter keeps to the caller
    and to nothing else: no other column of it compared with a column, an argument or a sub-query in every branch
    (WHERE and ON alike), and none of its columns in the output. Such a read holds for the caller's membership of
    any organisation: `from projects p join organization_members m on m.user_id = auth.uid() where
    p.organization_id = p_org` returns p_org's rows to a member of any organisation (evasion round 10 e05)."""
    scope = _Scope(s, select, default_schema)
    pins = _caller_pins(s, select, default_schema, members)
    out: list[str] = []
    for kind, body in _from_items(select):
        name = qualified(body, default_schema) if kind == "RangeVar" else ""
        alias = (body.get("alias") or {}).get("aliasname") or body.get("relname", "")
        if name not in members or not any(a == alias for a, _ in pins) or name in out:
            continue
        mine = {c for a, c in pins if a == alias}

        def of_alias(ref: Node, alias: str = alias) -> bool:
            return scope.alias_of(ref) == alias

        def binds(value: Any, alias: str = alias, mine: set[str] = mine) -> bool:
            own = other = False
            for k, b in _walk(value):
                if k == "ColumnRef" and of_alias(b):
                    own = own or strings(b.get("fields"))[-1:] not in ([c] for c in mine)
                elif k in ("ColumnRef", "ParamRef", "SubLink"):
                    other = True
            return own and other

        output = [v for k, v in select.items() if k in ("targetList", "groupClause", "distinctClause")]
        if any(_per_branch(f, binds) for f in filters_of(select)) or \
                any(k == "ColumnRef" and of_alias(b) for k, b in _walk(output)):
            continue
        out.append(name)
    return out


def _walk(value: Any) -> Iterator[tuple[str, Node]]:
    """(kind, body) of the nodes in `value`, a sub-query counted as one node (what it reads is its own)."""
    stack = [value]
    while stack:
        v = stack.pop()
        typed = _typed(v)
        if typed:
            yield typed
            if typed[0] == "SubLink":
                continue
        stack.extend(_children(v))


def _from_items(select: Node) -> Iterator[tuple[str, Node]]:
    """The items a SELECT's own FROM lists (a join's two sides in its place), not the queries nested in them."""
    stack = list(select.get("fromClause") or [])
    while stack:
        typed = _typed(stack.pop())
        if typed is None:
            continue
        if typed[0] == "JoinExpr":
            stack += [typed[1].get("larg"), typed[1].get("rarg")]
        else:
            yield typed


def filtering(tree: Any) -> Any:
    """The tree without the nullable side of each outer join its SELECT's WHERE requires nothing of (red team 19:
    `exists (select 1 from organizations o left join organization_members m on m.organization_id = o.id and
    m.user_id = auth.uid() where o.id = docs.organization_id)` holds for members and strangers alike: an ON clause
    filters no row of the side it keeps). Required: a test in the WHERE that is false or NULL without a row there
    (`m.user_id is not null`, `m.role = 'admin'`, in any branch); an unqualified column in one keeps every side.
    What reads memberships is judged on this tree; the one given is returned when it has no outer join."""
    return per_tree("filtering", tree, lambda: _without_idle_sides(tree) if any(
        kind == "JoinExpr" and body.get("jointype") in NULLABLE_SIDES for kind, body, _ in _index(tree)) else tree)


def _without_idle_sides(value: Any) -> Any:
    if isinstance(value, list):
        return [_without_idle_sides(v) for v in value]
    if not isinstance(value, dict):
        return value
    select = value.get("SelectStmt")
    if isinstance(select, dict) and len(value) == 1:
        required = _required_aliases(select.get("whereClause"))
        return {"SelectStmt": {k: [_join_kept(item, required) for item in v] if k == "fromClause" and
                               isinstance(v, list) else _without_idle_sides(v) for k, v in select.items()}}
    return {k: _without_idle_sides(v) for k, v in value.items()}


def _join_kept(item: Any, required: set[str] | None) -> Any:
    """A FROM item without the outer joins' nullable sides `required` names none of (None: every side kept)."""
    typed = _typed(item)
    if typed is None or typed[0] != "JoinExpr":
        return _without_idle_sides(item)
    join = dict(typed[1])
    join["larg"], join["rarg"] = _join_kept(join.get("larg"), required), _join_kept(join.get("rarg"), required)
    idle = [side for side in NULLABLE_SIDES.get(join.get("jointype"), ())
            if required is not None and not (_aliases(join.get(side)) & required)]
    if len(idle) == 1:
        return join["larg" if idle == ["rarg"] else "rarg"]  # the kept side alone; the ON clause went with the other
    if idle:
        join["quals"] = None  # a full join neither side of which is required: both stay, unfiltered
    return {"JoinExpr": join}


def _aliases(item: Any) -> set[str]:
    """The names a FROM item's relations and sub-queries are known by (a join's, both sides')."""
    typed = _typed(item)
    if typed is None:
        return set()
    kind, body = typed
    if kind == "JoinExpr":
        return _aliases(body.get("larg")) | _aliases(body.get("rarg")) | \
            ({body["alias"].get("aliasname")} if body.get("alias") else set())
    alias = (body.get("alias") or {}).get("aliasname")
    return {alias or body.get("relname") or ""}


def _required_aliases(where: Any) -> set[str] | None:
    """The aliases a WHERE tests a column of in a way a missing row fails (`m.user_id is not null`, `m.role =
    'admin'`), anywhere in it: read generously, so a side is dropped only when nothing in the WHERE could need it
    (none of its columns, or only `m.user_id is null`: rows without one). None when such a test names a column
    without its alias outside a sub-query (it may be any side's)."""
    out: set[str] = set()
    stack: list[tuple[Any, bool, bool]] = [(where, False, False)]  # (value, under NOT, inside a sub-query)
    while stack:
        value, negated, nested = stack.pop()
        typed = _typed(value)
        if typed is None:
            stack.extend((child, negated, nested) for child in _children(value))
            continue
        kind, body = typed
        tested: list[Any] = []
        if kind == "BoolExpr":
            negated = negated != (body.get("boolop") == "NOT_EXPR")
            tested = [a for a in body.get("args") or [] if (_typed(a) or ("",))[0] == "ColumnRef"]
        elif kind == "NullTest":
            tested = [body.get("arg")] if (body.get("nulltesttype") == "IS_NOT_NULL") != negated else []
        elif kind == "A_Expr" and body.get("kind") not in ("AEXPR_DISTINCT", "AEXPR_NOT_DISTINCT"):
            tested = [body.get("lexpr"), body.get("rexpr")]
        elif kind == "SubLink":
            tested = [body.get("testexpr")]
        elif kind == "ColumnRef" and value is where:
            tested = [value]
        for operand in tested:
            column = _typed(unwrap(operand))
            if column is None or column[0] != "ColumnRef":
                continue
            fields = strings(column[1].get("fields"))
            if len(fields) >= 2:
                out.add(fields[-2])
            elif not nested:
                return None
        if kind != "NullTest":  # (its argument is read above)
            stack.extend((child, negated, nested or kind == "SubLink") for child in _children(value))
    return out


def from_relations(select: Node, default_schema: str) -> list[str]:
    """schema.table of each relation the sub-query's own FROM names (joins included, nested queries not)."""
    return [qualified(body, default_schema)
            for kind, body in _from_items(select) if kind == "RangeVar"]


def loose_membership_reads(s: Schema, tree: Any, members: set[str], helpers: set[str],
                           default_schema: str, views: dict[str, bool] | None = None,
                           open_tables: frozenset[str] = frozenset()) -> list[str]:
    """What is wrong with each membership read of a policy expression: 'row' (tied to nothing of the row)
    or 'caller' (reads every user's memberships), in document order; [] when every read is tied.

    A policy reads other tables as the caller, through their own RLS: a membership table with RLS enabled
    shows the caller only what its policies allow (their own memberships, as a rule, audited on that table),
    so a read of it without `user_id = auth.uid()` is still the caller's; one without RLS shows everyone's.
    Likewise a sub-query over an RLS-protected table (the row's parent) decides by that table's policies:
    reads nested in its WHERE are not judged here. `views`: views over a membership table, read as it is, and
    whether each shows only the caller's own memberships (`membership_views`). `open_tables`: membership tables
    whose RLS shows every signed-in caller every membership (`using (true)`, a people directory): a read of one
    that names no caller is 'open' (evasion round 11, e04)."""
    views = views or {}
    roles = frozenset(c for name in members for t in [s.table(*name.split(".", 1)[::-1])] if t is not None
                      for c in [role_column(t)] if c)  # (the membership's role ties no organisation)
    tree = filtering(tree)  # (an outer join's side the WHERE needs nothing of filters nothing)
    out: list[str] = []
    protected = {t.qualified for t in s.tables if t.rls_enabled}
    # (value, tied to the row, tied to the caller): by an enclosing comparison, argument list or sub-query
    stack: list[tuple[Any, bool, bool]] = [(tree, False, False)]
    while stack:
        value, row, caller = stack.pop()
        typed = _typed(value)
        if typed is None:
            stack.extend((child, row, caller) for child in reversed(_children(value)))
            continue
        kind, body = typed
        if kind == "A_Expr":
            left, right = body.get("lexpr"), body.get("rexpr")
            stack += [(right, row or _has_column(left), caller or calls_out(left)),
                      (left, row or _has_column(right), caller or calls_out(right))]
            continue
        if kind == "FuncCall" and function_name(body) in helpers:
            if not (row or any(_has_column(a) for a in body.get("args") or [])):
                out.append("row")
            continue
        if kind == "SubLink":
            select = (body.get("subselect") or {}).get("SelectStmt") or {}
            test = body.get("testexpr")
            read = from_relations(select, default_schema)
            membership = any(name in members or name in views for name in read)
            # A membership read must be tied in every branch of its filter; other sub-queries pass their tie on.
            row = row or _has_column(test) or (tied_to_row(s, select, default_schema, roles) if membership
                                               else _correlated(s, select, default_schema))
            caller = caller or calls_out(test)
            if membership:
                # tied to the row through another relation of a join, while the membership row is kept to the
                # caller alone: the caller's membership of any organisation passes (evasion round 10 e05)
                if not row or unbound_memberships(s, select, default_schema, members):
                    out.append("row")
                elif not (caller or pins_caller(s, select, default_schema, members | set(views))
                          or any(n in protected and n not in open_tables for n in read if n in members)
                          or any(views.get(n) for n in read)):
                    out.append("open" if any(n in open_tables for n in read) else "caller")
                continue
            guarded = row and any(name in protected for name in read)
            # What the sub-query returns is what the comparison around it ties; a sub-query nested in its
            # WHERE must tie itself (to the sub-query's rows, by its own comparison or correlation), unless
            # the sub-query reads a table whose own policies decide.
            for key, child in reversed(select.items()):
                if isinstance(child, dict | list) and not (guarded and key not in ("targetList", "fromClause")):
                    kept = key in ("targetList", "fromClause")
                    stack.append((child, row and kept, caller and kept))
            continue
        stack.extend((child, row, caller) for child in reversed(_children(value)))
    return out


def row_independent_reads(s: Schema, tree: Any, default_schema: str) -> list[str] | None:
    """The relations a policy expression reads when nothing in it depends on the row (no column of the row outside
    its sub-queries, no sub-query that refers to one): every row then passes alike; None when it depends."""
    if any(kind == "ColumnRef" for kind, _ in outside_subqueries(tree)):
        return None  # the usual policy: it compares a column of the row
    read: list[str] = []
    stack: list[Any] = [tree]
    while stack:
        value = stack.pop()
        typed = _typed(value)
        if typed is None:
            stack.extend(_children(value))
            continue
        kind, body = typed
        if kind == "ColumnRef":
            return None
        if kind == "SubLink":
            select = (body.get("subselect") or {}).get("SelectStmt") or {}
            if _correlated(s, select, default_schema):
                return None
            read += [name for name in from_relations(select, default_schema) if name not in read]
            stack.append(body.get("testexpr"))
            continue
        stack.extend(_children(value))
    return read
