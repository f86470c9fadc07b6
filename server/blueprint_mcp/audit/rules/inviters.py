"""Whether whoever writes a row's role outranks every role the row may hold (BP087, evasion round 12 e09).

`check (role in ('viewer', 'member'))` on invitations keeps out admin and owner, but when any member, viewers too,
may insert invitations, a viewer invites her other address as member and accepts: the bound must be at or below
the least role the insert (or update) policy lets write. A policy is read only without OR: a role helper with a
literal role (`organization_ids_with_role('admin')`), a caller's membership sub-query holding `m.role` to literals,
or a comparison of the caller's role with the row's own (`m.role >= invitations.role`, by the enum's order) tells
the writer's least role; anything else lets the least role of all write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from ...model.schema import Function, Schema, Table
from ...model.tenant_keys import ROLE_RANKS, ranks_reversed
from ..pins import unwrap
from ..tree import boolean_args, const, function_name, nodes, qualified, strings

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
        if floor != _RELATIVE and floor > needed:
            return False
    return True


class DefinerWrite(NamedTuple):
    function: Function
    through: str
    kind: str  # "insert" or "update"
    at: int  # the statement's position in the body's trees
    value: Any  # the expression written to the column (None: its default)
    statement: dict


def definer_writes(s: Schema, t: Table, column: str) -> list[DefinerWrite]:
    """Each INSERT into `t` and each UPDATE of `t` setting `column` by a SECURITY DEFINER function clients reach."""
    from .reach_rules import client_definers
    out: list[DefinerWrite] = []
    for f, through in client_definers(s):
        reading = f._body
        if reading is None or t.qualified not in (f.writes or ()):
            continue
        for at, tree in enumerate(reading.trees):
            for kind, body in nodes(tree):
                if kind not in ("InsertStmt", "UpdateStmt") or not isinstance(body.get("relation"), dict) or \
                        qualified(body["relation"], reading.default_schema) != t.qualified:
                    continue
                if kind == "InsertStmt":
                    out.append(DefinerWrite(f, through, "insert", at, _inserted(t, body, column), body))
                    continue
                for target in body.get("targetList") or []:
                    res = target.get("ResTarget") or {}
                    if res.get("name") == column:
                        out.append(DefinerWrite(f, through, "update", at, res.get("val"), body))
    return out


def _inserted(t: Table, insert: dict, column: str | None) -> Any:
    """The expression an INSERT ... VALUES (one row) or INSERT ... SELECT writes to `column`; None for its default
    (or what is not read)."""
    cols = [(c.get("ResTarget") or {}).get("name") for c in insert.get("cols") or []] or \
        [c.name for c in t.columns]
    if column not in cols:
        return None
    select = (insert.get("selectStmt") or {}).get("SelectStmt") or {}
    rows = select.get("valuesLists") or []
    items = ((rows[0].get("List") or {}).get("items") or []) if len(rows) == 1 else \
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
    if w.kind == "insert":
        org = _fields(_inserted(t, w.statement, t.tenant_key)) if t.tenant_key else None
        orgs = [org] if org else []
        extra: list[Any] = []
    else:
        extra = list(boolean_args(w.statement.get("whereClause"), "AND_EXPR"))
        orgs = [[t.tenant_key], [t.name, t.tenant_key]] + [
            f for e in extra for a, b in [_equated(e)] if a and b for f, g in ((a, b), (b, a))
            if g[-1:] == [t.tenant_key]] if t.tenant_key else []
    passed: list[Any] = []
    for at in reading.refuses_when:
        if at >= w.at:
            continue
        for atom in boolean_args(_test_at(reading, at), "OR_EXPR"):
            negated = (unwrap(atom) or {}).get("BoolExpr") if isinstance(unwrap(atom), dict) else None
            if isinstance(negated, dict) and negated.get("boolop") == "NOT_EXPR" and len(negated.get("args")) == 1:
                passed += boolean_args(negated["args"][0], "AND_EXPR")
    return _rank(passed + extra, labels, lambda f: bool(row_role) and f == row_role,
                 lambda f: not t.tenant_key or f in orgs, lambda f: not t.tenant_key or f in orgs)


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
