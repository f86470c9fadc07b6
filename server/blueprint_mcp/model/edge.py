"""The Supabase Edge Functions a blueprint's project has: one rule read by the spec, config.toml and render."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .blueprint import Blueprint
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


# log-event: what event properties may carry, beyond the database's check (events.properties holds none of
# the blueprint's pii_keys() at any depth, in any case). Keys refused at any depth besides pii_keys():
EVENT_PII_KEYS = ("name", "username", "display_name", "token", "access_token", "refresh_token", "secret",
                  "api_key", "birthday", "dob", "postcode", "zip_code", "card_number", "iban", "passport")
# Words that make a key nobody declared look personal or secret (`user_email`, `ip_address`, `access_token`):
# matched against the `_`-separated words of keys the event does not declare.
EVENT_PII_WORDS = ("email", "phone", "password", "ssn", "address", "ip", "token", "secret", "passport", "iban")
EVENT_PROPERTIES_BYTES = 4096  # of properties serialised as JSON (UTF-8)
EVENT_PROPERTIES_DEPTH = 3  # nested objects and arrays inside properties
SESSION_USER_AGENT = 512  # characters of the User-Agent header track-session keeps


def event_pii_keys(bp: Blueprint) -> list[str]:
    """Property keys log-event refuses at any depth: the blueprint's pii_keys(), then the fixed list."""
    return list(dict.fromkeys([*bp.pii_keys(), *EVENT_PII_KEYS]))


def event_links(bp: Blueprint) -> list[tuple[str, str]]:
    """(table, user column) where the blueprint's linked grants end, for tenant tables: a user named there is
    linked to that row's organisation (a shopper to their store, a patient to their clinic) and may log its
    events as its members do, though they never become one. In declaration order, each pair once."""
    out: dict[tuple[str, str], None] = {}
    for e in bp.entities:
        for command in ("select", "insert", "update", "delete"):
            for g in command_grants(bp, e, command):
                if g.linked:
                    anchor, column = linked_hops(bp, e, g.linked)[-1]
                    if anchor.is_tenant:
                        out[(anchor.name, column)] = None
    return list(out)
