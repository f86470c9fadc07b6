"""Which roles a policy's membership test admits, where a helper says so plainly (BP065 asks it).

`organization_id = any (array(select private.organization_ids_with_role('admin')))` admits the caller's
organisations where they hold admin or a role declared after it; `..._with_any_role(array['member'])` those where
they hold exactly member. The reading takes the roles from the call's constant arguments and what the helper does
with them from its body: a single comparison of the membership's role column with the parameter (`m.role >=
min_role`, `m.role = any (roles)`, `m.role = p_role`), ranked as PostgreSQL ranks the enum (its declaration order).
Anything else (a helper with two role comparisons, an OR, text roles compared by order, arguments that are not
constants) is not read: None, which callers take as "any role".
"""

from __future__ import annotations

from typing import Any

from ..model.schema import EnumType, Function, Schema, Table
from ..model.tenant_keys import key_sets, member_column, role_column, user_tables
from .pins import unwrap
from .rules.common import _once, enum_of, find_function, lone_value, membership_tables
from .tree import Node, boolean_args, const, function_name, nodes, strings

_FLIPPED = {">=": "<=", "<=": ">=", ">": "<", "<": ">", "=": "="}


def admitted_roles(s: Schema, node: Any) -> tuple[str, frozenset[str]] | None:
    """(the row's column, the roles the caller must hold in the organisation it names) of a membership test by
    role: `col = any (array(select F(...)))`, `col = any (F(...))` or `col in (select F(...))`, F a helper read as
    the module says; None for anything else."""
    if not isinstance(node, dict) or len(node) != 1:
        return None
    column, call = None, None
    expr, link = node.get("A_Expr"), node.get("SubLink")
    if isinstance(expr, dict) and expr.get("kind") == "AEXPR_OP_ANY" and strings(expr.get("name")) == ["="]:
        column, right = expr.get("lexpr"), expr.get("rexpr") or {}
        inner = right.get("SubLink") if isinstance(right, dict) else None
        if isinstance(inner, dict) and inner.get("subLinkType") == "ARRAY_SUBLINK":
            call = _only_call(inner.get("subselect"))
        elif isinstance(right, dict):
            call = right.get("FuncCall")
    elif isinstance(link, dict) and link.get("subLinkType") == "ANY_SUBLINK" and not link.get("operName"):
        column, call = link.get("testexpr"), _only_call(link.get("subselect"))
    elif isinstance(link, dict) and link.get("subLinkType") == "EXISTS_SUBLINK":
        return _exists_membership(s, (link.get("subselect") or {}).get("SelectStmt"))
    if not isinstance(column, dict) or "ColumnRef" not in column or not isinstance(call, dict):
        return None
    f = find_function(s, function_name(call))
    roles = _roles_of_call(s, f, call.get("args") or []) if f is not None else None
    name = strings(column["ColumnRef"].get("fields"))[-1:]
    return (name[0], roles) if roles is not None and name else None


def _exists_membership(s: Schema, select: Any) -> tuple[str, frozenset[str]] | None:
    """`exists (select 1 from organization_members m where m.organization_id = p_org and m.user_id = (select
    auth.uid()) and m.role >= 'admin')`, the helper's test spelled out (evasion round 25 e04): (the name the tenant key
    is equated with, the roles its role test admits: `>=`, `>`, `<=`, `<`, `=` a label, IN or `= any (array[...])`
    labels). Only AND-ed conjuncts over the one membership table; other conjuncts only narrow who passes. None for
    anything else (an OR, a join, no caller, no role test)."""
    if not isinstance(select, dict) or select.get("op", "SETOP_NONE") != "SETOP_NONE":
        return None
    froms = select.get("fromClause") or []
    rv = froms[0].get("RangeVar") if len(froms) == 1 and isinstance(froms[0], dict) else None
    t = s.table(rv.get("relname", ""), rv.get("schemaname") or "public") if isinstance(rv, dict) else None
    if t is None or t.qualified not in membership_tables(s) or not t.tenant_key or not select.get("whereClause"):
        return None
    alias = (rv.get("alias") or {}).get("aliasname") or rv.get("relname", "")
    labels, role = role_labels(s, t), role_column(t)
    user = member_column(t, t.tenant_key, user_tables(s.tables))
    if not labels or not role or not user:
        return None

    def own(node: Any) -> str | None:  # the membership row's column a reference names
        fields = strings((unwrap(node) or {}).get("ColumnRef", {}).get("fields")) if isinstance(unwrap(node),
                                                                                                dict) else []
        return fields[-1] if len(fields) == 1 and t.column(fields[0]) is not None or \
            len(fields) == 2 and fields[0] == alias else None

    def caller(node: Any) -> bool:
        return any(k == "FuncCall" and function_name(b) == "auth.uid" for k, b in nodes(node)) and \
            not any(k == "ColumnRef" for k, _ in nodes(node))

    key, mine, roles = None, False, None
    for x in boolean_args(select["whereClause"], "AND_EXPR"):
        e = unwrap(x).get("A_Expr") if isinstance(unwrap(x), dict) else None
        if not isinstance(e, dict):
            if any(k == "BoolExpr" and b.get("boolop") == "OR_EXPR" for k, b in nodes(x)):
                return None
            continue
        sides = [e.get("lexpr"), e.get("rexpr")]
        names = [own(x) for x in sides]
        op, kind = strings(e.get("name")), e.get("kind")
        if names[0] != role and names[1] == role and kind == "AEXPR_OP" and len(op) == 1 and op[0] in _FLIPPED:
            sides, names, op = sides[::-1], names[::-1], [_FLIPPED[op[0]]]
        if kind == "AEXPR_OP" and op == ["="] and t.tenant_key in names:
            other = sides[1 - names.index(t.tenant_key)]
            ref = strings((unwrap(other) or {}).get("ColumnRef", {}).get("fields")) if isinstance(unwrap(other),
                                                                                                 dict) else []
            key = ref[-1] if ref and own(other) is None else key
        elif kind == "AEXPR_OP" and op == ["="] and user in names and caller(sides[1 - names.index(user)]):
            mine = True
        elif names[0] == role:
            given = [v for v in (sides[1] or {}).get("List", {}).get("items") or []] \
                if kind == "AEXPR_IN" else None
            values = [x for v in given for x in (_constants(v) or [None])] if given is not None else \
                _constants(sides[1])
            if values is None or None in values or not set(values) <= set(labels):
                return None
            if kind == "AEXPR_IN" and op == ["="] or kind == "AEXPR_OP_ANY" and op == ["="]:
                found = frozenset(values)
            elif kind == "AEXPR_OP" and len(op) == 1 and op[0] in _FLIPPED and len(values) == 1:
                at = labels.index(values[0])
                found = frozenset({">=": labels[at:], ">": labels[at + 1:], "<=": labels[:at + 1], "<": labels[:at],
                                   "=": [values[0]]}[op[0]])
            else:
                return None
            roles = found if roles is None else roles & found
    return (key, roles) if key and mine and roles is not None else None


def one_role_per_member(s: Schema) -> bool:
    """Every membership table holds at most one row per user and organisation (its tenant key and user column are
    a key together): a caller holds one role in an organisation, so tests admitting disjoint roles exclude each
    other."""
    return _once("one role per member", s, _one_role_per_member, s)


def _one_role_per_member(s: Schema) -> bool:
    members = [t for t in s.tables if t.qualified in membership_tables(s)]
    users = user_tables(s.tables)
    for t in members:
        user = member_column(t, t.tenant_key, users)
        if user is None or t.tenant_key is None or {t.tenant_key, user} not in key_sets(t):
            return False
    return bool(members)


def _only_call(select: Any) -> Node | None:
    value = lone_value((select or {}).get("SelectStmt") if isinstance(select, dict) else None)
    return value.get("FuncCall") if isinstance(value, dict) else None


def _roles_of_call(s: Schema, f: Function, args: list) -> frozenset[str] | None:
    found = _once("role filter", f, _role_filter, s, f)
    if found is None:
        return None
    position, op, table = found
    if position > len(args):
        return None
    given = _constants(args[position - 1])
    labels = role_labels(s, table)
    if given is None or labels is None or not set(given) <= set(labels):
        return None
    if op == "any":
        return frozenset(given)
    if len(given) != 1:
        return None
    at = labels.index(given[0])
    picks = {">=": labels[at:], ">": labels[at + 1:], "<=": labels[:at + 1], "<": labels[:at], "=": [given[0]]}
    return frozenset(picks[op])


def _constants(node: Any) -> list[str] | None:
    """'admin', 'admin'::member_role, array['member', 'admin'] (cast or not): the role names; None otherwise."""
    node = unwrap(node)
    if isinstance(node, dict) and "A_ArrayExpr" in node:
        items = [_constants(x) for x in node["A_ArrayExpr"].get("elements") or []]
        return None if any(x is None or len(x) != 1 for x in items) else [x[0] for x in items]
    value = const(node)
    return [value] if isinstance(value, str) else None


def role_labels(s: Schema, table: Table) -> list[str] | None:
    """The role enum's labels in declaration order (PostgreSQL's order for <, >=, ...)."""
    enum = role_enum(s, table)
    return list(enum.values) if enum is not None else None


def role_enum(s: Schema, table: Table) -> EnumType | None:
    """The enum type of the membership table's role column (None for text roles, or a type the SQL did not make)."""
    col = table.column(role_column(table) or "")
    if col is None:
        return None
    return enum_of(s, col.type)


def _role_filter(s: Schema, f: Function) -> tuple[int, str, Table] | None:
    """(parameter position, how it filters: >=, >, <=, <, = or any, the membership table) where `f`'s body has
    exactly one comparison of a membership table's role column, against one of its parameters, and no OR."""
    reading = f._body
    if reading is None or not reading.params:
        return None
    params = {name: i for i, (name, _) in enumerate(reading.params, start=1) if name}
    roles = {}
    for name in set(f.reads or ()) & membership_tables(s):
        schema, _, table = name.partition(".")
        t = s.table(table, schema)
        if t is not None and role_column(t):
            roles[role_column(t)] = t
    found = []
    for tree in reading.trees:
        for kind, body in nodes(tree):
            if kind == "BoolExpr" and body.get("boolop") == "OR_EXPR":
                return None
            if kind != "A_Expr":
                continue
            sides = [body.get("lexpr"), body.get("rexpr")]
            named = [_column(x) for x in sides]
            if not any(n in roles for n in named if n):
                continue
            op, kind_of = strings(body.get("name")), body.get("kind")
            if len(op) != 1:
                return None
            if named[0] not in roles:  # the role column on the right: min_role <= m.role
                if kind_of != "AEXPR_OP" or op[0] not in _FLIPPED:
                    return None
                sides, named, op = sides[::-1], named[::-1], [_FLIPPED[op[0]]]
            if kind_of == "AEXPR_OP" and op[0] in _FLIPPED:
                mode = op[0]
            elif kind_of == "AEXPR_OP_ANY" and op[0] == "=":
                mode = "any"
            else:
                return None
            position = _parameter(sides[1], params)
            if position is None:
                return None
            found.append((position, mode, roles[named[0]]))
    return found[0] if len(found) == 1 else None


def _column(node: Any) -> str | None:
    fields = strings((node or {}).get("ColumnRef", {}).get("fields")) if isinstance(node, dict) else []
    return fields[-1] if fields else None


def _parameter(node: Any, params: dict[str, int]) -> int | None:
    if isinstance(node, dict) and "ParamRef" in node:
        return node["ParamRef"].get("number")
    fields = strings((node or {}).get("ColumnRef", {}).get("fields")) if isinstance(node, dict) else []
    return params.get(fields[-1]) if len(fields) == 1 else None
