"""Who may run a command, in words: the one description of grants that answers and the spec share."""

from __future__ import annotations

from .access import Grant
from .blueprint import Blueprint
from .entities import Entity


def describe_grants(bp: Blueprint, entity: Entity, grants: list[Grant], command: str = "select") -> str:
    """A short reading of a command's grants, OR-ed (from the model, not the SQL)."""
    if not grants:
        return "service role only"
    return "; or ".join(dict.fromkeys(_describe(bp, entity, g, command) for g in grants))


def _describe(bp: Blueprint, entity: Entity, g: Grant, command: str) -> str:
    if g.public:
        who = "everyone (anon too)"
    elif g.signed_in:
        who = "every signed-in user"
    elif g.linked:
        who = f"the user in {g.linked[0]}" if len(g.linked) == 1 else \
            "the user " + " -> ".join(g.linked) + " leads to"
    elif g.min_role:
        who = f"{g.min_role}+"
    elif g.roles:
        who = " or ".join(g.roles)
    else:
        who = f"holders of {g.capability} ({', '.join(bp.tenancy.holders(g.capability))})"
    rows = []
    if g.own and command != "insert":  # a new row's author is always the caller: nothing more to say there
        rows.append(f"own rows ({entity.owner_column})")
    if g.assigned:
        rows.append(f"rows assigned to them ({g.assigned})")
    if g.under:
        parent = entity.field(g.under)
        rows.append(f"under {parent.references if parent else g.under} rows they may update ({g.under})")
    if g.visible:
        parent = entity.field(g.visible)
        rows.append(f"under {parent.references if parent else g.visible} rows they may read ({g.visible})")
    if g.where is not None:
        values = [_value(v) for v in g.where.values]
        rows.append(f"where {g.where.column} = {values[0]}" if len(values) == 1
                    else f"where {g.where.column} in ({', '.join(values)})")
    return who + (", " + ", ".join(rows) if rows else "")


def _value(v: object) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v) if isinstance(v, (int, float)) else f"'{v}'"
