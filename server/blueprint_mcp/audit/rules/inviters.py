"""Whether whoever writes a row's role outranks every role the row may hold (BP087, evasion round 12 e09).

`check (role in ('viewer', 'member'))` on invitations keeps out admin and owner, but when any member, viewers too,
may insert invitations, a viewer invites her other address as member and accepts: the bound must be at or below
the least role the insert (or update) policy lets write. A policy is read only without OR: a role helper with a
literal role (`organization_ids_with_role('admin')`), a caller's membership sub-query holding `m.role` to literals,
or a comparison of the caller's role with the row's own (`m.role >= invitations.role`, by the enum's order) tells
the writer's least role; anything else lets the least role of all write.
"""

from __future__ import annotations

from typing import Any

from ...model.schema import Schema, Table
from ...model.tenant_keys import ROLE_RANKS, ranks_reversed
from ..pins import unwrap
from ..tree import boolean_args, const, function_name, nodes, strings

_LEAST = max(ROLE_RANKS.values())
_RELATIVE = -1  # the writer's role is compared with the row's: never below it


def writers_outrank(s: Schema, t: Table, column: str, values: list[str], labels: list[str] | None) -> bool:
    """Every client way to write `t.column` (insert, update) needs a role at or above each of `values`; `labels`:
    the membership role enum's labels in order (None: not an enum)."""
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
    return True


def _writer_rank(tree: Any, t: Table, column: str, labels: list[str] | None) -> int:
    """The rank of the least trusted role a policy lets write (_RELATIVE: no role below the row's own)."""
    if tree is None or any(k == "BoolExpr" and b.get("boolop") != "AND_EXPR" for k, b in nodes(tree)):
        return _LEAST
    ranks: list[int] = []
    for kind, body in nodes(tree):
        if kind == "FuncCall" and function_name(body).split(".")[-1].endswith(("with_role", "has_role")):
            named = [ROLE_RANKS[v] for a in body.get("args") or [] for v in [const(unwrap(a))]
                     if isinstance(v, str) and v in ROLE_RANKS]
            ranks += named[:1]
        elif kind == "SelectStmt" and _pins_caller(body):
            for atom in boolean_args(body.get("whereClause"), "AND_EXPR"):
                if _relative(atom, t, column, labels):
                    return _RELATIVE
                held = _held(atom)
                if held:
                    ranks.append(max(ROLE_RANKS.get(v, _LEAST) for v in held))
    return min(ranks) if ranks else _LEAST


def _pins_caller(select: dict) -> bool:
    return any(k == "FuncCall" and function_name(b) == "auth.uid" for k, b in nodes(select.get("whereClause")))


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


def _relative(atom: Any, t: Table, column: str, labels: list[str] | None) -> bool:
    """`m.role >= <t>.<column>` (or `<=` where the enum lists the most trusted role first): the caller's role is
    at or above the row's."""
    body = atom.get("A_Expr") if isinstance(atom, dict) else None
    if not isinstance(body, dict) or body.get("kind", "AEXPR_OP") != "AEXPR_OP" or not labels:
        return False
    op = "".join(strings(body.get("name")))
    left, right = _role_ref(body.get("lexpr")), _role_ref(body.get("rexpr"))
    if right[-1:] == [column] and right[:1] == [t.name] and left[-1:] == ["role"] and len(left) == 2:
        mine = op
    elif left[-1:] == [column] and left[:1] == [t.name] and right[-1:] == ["role"] and len(right) == 2:
        mine = {">=": "<=", ">": "<", "<=": ">=", "<": ">"}.get(op, "")
    else:
        return False
    return mine in (("<=", "<") if ranks_reversed(labels) else (">=", ">"))
