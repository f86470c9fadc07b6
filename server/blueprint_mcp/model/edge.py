"""The Supabase Edge Functions a blueprint's project has: one rule read by the spec, config.toml and render."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .blueprint import Blueprint
from .privacy import EVENT_PII_KEYS
from .meaning import command_grants, linked_hops


@dataclass(frozen=True)
class EdgeFunction:
    name: str
    needs: Literal["teams", "analytics", "sessions"]  # what the blueprint must have for the function to exist


# Thin shells over database functions and tables that only exist with team organisations or analytics.
EDGE_FUNCTIONS = (
    EdgeFunction("invite-member", "teams"),
    EdgeFunction("accept-invitation", "teams"),
    EdgeFunction("change-member-role", "teams"),
    EdgeFunction("log-event", "analytics"),
    EdgeFunction("track-session", "sessions"),
)


def edge_functions(bp: Blueprint) -> tuple[str, ...]:
    """The names of `bp`'s edge functions, in declaration order."""
    has = {"teams": bp.tenancy.team_organizations, "analytics": bp.analytics.enabled,
           "sessions": bp.analytics.enabled and bp.analytics.sessions}
    return tuple(f.name for f in EDGE_FUNCTIONS if has[f.needs])


EVENT_PROPERTIES_BYTES = 4096  # of properties serialised as JSON (UTF-8)
EVENT_PROPERTIES_DEPTH = 3  # nested objects and arrays inside properties
SESSION_USER_AGENT = 512  # characters of the User-Agent header track-session keeps


def event_pii_keys(bp: Blueprint) -> list[str]:
    """Property keys log-event refuses at any depth: the blueprint's pii_keys(), then the fixed list."""
    return list(dict.fromkeys([*bp.pii_keys(), *EVENT_PII_KEYS]))


@dataclass(frozen=True)
class EventLink:
    """A row of `table` in the organisation naming the caller in `column` links them to it: live (`live`: the table
    is soft-deleted, and an archived row links nobody, A10) and, where the linked grant narrows its own rows, with
    `where_column` holding one of `where_values` (red team 20: an archived patient, and one the grant's where never
    admits, kept logging the clinic's events) and, for a grant with `visible` (A29), only while the caller may read
    the `parent` row its `visible` column names (red team 21 F2: a portal user of a closed branch kept logging)."""

    table: str
    column: str
    live: bool
    where_column: str | None = None
    where_values: tuple = ()
    visible: str | None = None
    parent: str | None = None


def event_links(bp: Blueprint) -> list[EventLink]:
    """The lookups that link a user who is no member to an organisation, for tenant tables: where the blueprint's
    linked grants end (a shopper's customer row at their store, a patient's at their clinic); such a user may log
    its events as its members do, though they never become one. A grant's where and visible narrow the lookup when
    the chain is one hop (both are on the row the user is named in); a grant of the same end without either widens
    it. In declaration order, each lookup once."""
    ends: dict[tuple[str, str], list[EventLink] | None] = {}
    for e in bp.entities:
        if e.private_of is not None:
            # A pii side table: its readers read the row it belongs to as well (A23), so it links nobody new, and
            # its chains, a hop longer, would widen the row's own narrowed lookup (red team 22).
            continue
        for command in ("select", "insert", "update", "delete"):
            for g in command_grants(bp, e, command):
                if not g.linked:
                    continue
                anchor, column = linked_hops(bp, e, g.linked)[-1]
                if not anchor.is_tenant:
                    continue
                key = (anchor.name, column)
                where = g.where if len(g.linked) == 1 else None
                visible = g.visible if len(g.linked) == 1 else None
                link = EventLink(anchor.name, column, anchor.soft_delete, where.column if where else None,
                                 tuple(where.values) if where else (), visible,
                                 e.field(visible).references if visible else None)
                if where is None and visible is None:
                    ends[key] = None  # every row naming them links them (live ones, if archived rows exist)
                elif key not in ends:
                    ends[key] = [link]
                elif ends[key] is not None and link not in ends[key]:
                    ends[key].append(link)
    return [link for (table, column), links in ends.items()
            for link in (links or [EventLink(table, column, bp.entity(table).soft_delete)])]


def link_columns(links: list[EventLink]) -> list[str]:
    """`table.column` of each end the lookups read, once (a column several grants end at has one lookup each)."""
    return list(dict.fromkeys(f"{x.table}.{x.column}" for x in links))
