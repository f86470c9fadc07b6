"""The attack world: actors, two organisations, memberships and a fixture row per table and organisation.

Everything is planned as literal SQL with deterministic ids, so the same world runs in the
verifier and in the pgTAP files `render` writes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from ..model.schema import Schema, Table
from ..sql.ident import column_list, ident, literal, qname

ORG = "organization_id"
NAMESPACE = uuid.UUID("6f1c1a2e-3b4d-4c5e-8f90-a1b2c3d4e5f6")
CORE_FLOW_TABLES = ("profiles", "organizations", "organization_members")


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


@dataclass(frozen=True)
class Actor:
    name: str
    api_role: str  # anon | authenticated
    user_id: str | None
    memberships: dict[str, str] = field(default_factory=dict)  # org label -> role

    def claims(self) -> dict:
        return {"role": self.api_role, **({"sub": self.user_id} if self.user_id else {})}


@dataclass
class Row:
    """A fixture row: which organisation it belongs to and which user authored it."""

    table: str
    org: str | None  # "org1" | "org2" | None (global)
    author: str | None  # actor name
    key: dict[str, str]  # primary-key column -> SQL literal
    purpose: str = "matrix"  # "matrix" rows are judged for every actor; "attack" and "support" rows are not
    statement: int | None = None  # index of the fixture statement that creates it
    values: dict[str, str] = field(default_factory=dict)  # column -> literal, as inserted


@dataclass
class World:
    actors: dict[str, Actor]
    orgs: dict[str, str]  # label -> uuid
    statements: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    role_names: list[str] = field(default_factory=list)  # most privileged first
    cast: dict[str, str] = field(default_factory=dict)  # part (see CAST) -> actor name
    owners: dict[str, str] = field(default_factory=dict)  # org label -> the actor who owns it
    schema: Schema | None = None  # what the fixtures are built for (support rows are looked up in it)
    members_table: str | None = "organization_members"  # where memberships are (references to it name members)
    # statement index -> (statement, values) to try when PostgreSQL refuses that fixture statement
    fallbacks: dict[int, tuple[str, dict[str, str]]] = field(default_factory=dict)
    # table -> row number -> the row's place among the table's bounded ranges (values.ordered_value)
    slots: dict[str, dict[int, int]] = field(default_factory=dict)

    def add(self, statement: str, row: Row | None = None,
            fallback: tuple[str, dict[str, str]] | None = None) -> None:
        """A fixture statement, and the row it creates (dropped from the plan if the statement fails).
        `fallback`: (statement, the row's values) to run instead when PostgreSQL refuses the first."""
        if row is not None:
            row.statement = len(self.statements)
            self.rows.append(row)
            if fallback is not None:
                self.fallbacks[len(self.statements)] = fallback
        self.statements.append(statement)

    def take_back(self, rows: int, statements: int) -> None:
        """Forget the rows and statements planned since there were `rows` and `statements`, with their fallbacks
        (a fallback left behind would be run in place of whichever statement later takes its index)."""
        del self.rows[rows:], self.statements[statements:]
        for i in [k for k in self.fallbacks if k >= statements]:
            del self.fallbacks[i]

    def slot(self, table: str, n: int) -> int:
        """Row n's place in `table`: the same for the same row number, the next one for a new number. Bounded
        ranges (`check` min/max) cannot take their row number's own stretch: the world's numbers run to 10,000."""
        places = self.slots.setdefault(table, {})
        return places.setdefault(n, len(places))

    def actor_id(self, name: str | None) -> str | None:
        return self.actors[name].user_id if name else None

    def who(self, part: str) -> str | None:
        """The actor playing `part` ("owner2", "hopper", "outsider", "anon", "peer"), if the world has one."""
        return self.cast.get(part)


# The actors besides one per role. Role names are free identifiers, so a part is renamed (a trailing
# "_") when a role already has its name: "hopper" the role and "hopper" the part are two users.
CAST = ("peer", "owner2", "hopper", "outsider", "anon")


def plan_actors(roles: list[str], writer: str, peer_role: str | None = None, hopper: bool = True,
                org2_roles: list[str] | None = None) -> tuple[dict[str, Actor], dict[str, str], dict[str, str]]:
    """A user per role in org1 (plus a peer of the member managers), an owner of org2, a hopper
    writing in both (unless a user may hold only one membership), an outsider and anon; and a member of
    org2 for each of `org2_roles` (roles a member reference needs there, see `org2_roles_needed`).
    Returns (actors, organisations, cast)."""
    orgs = {"org1": stable_id("org", "org1"), "org2": stable_id("org", "org2")}
    actors: dict[str, Actor] = {}
    for role in roles:
        actors[role] = Actor(role, "authenticated", stable_id("user", role), {"org1": role})
    cast: dict[str, str] = {}
    for part in CAST:
        if (part == "peer" and not peer_role) or (part == "hopper" and not hopper):
            continue
        name = part
        while name in actors:
            name += "_"
        memberships = {"peer": {"org1": peer_role}, "owner2": {"org2": roles[0]},
                       "hopper": {"org1": writer, "org2": writer}}.get(part, {})
        api_role = "anon" if part == "anon" else "authenticated"
        actors[name] = Actor(name, api_role, None if part == "anon" else stable_id("user", name), memberships)
        cast[part] = name
    for role in org2_roles or []:
        name = f"{role}2"
        while name in actors:
            name += "_"
        actors[name] = Actor(name, "authenticated", stable_id("user", name), {"org2": role})
    return actors, orgs, cast


def users_sql(world: World) -> list[str]:
    """Sign every actor up, as GoTrue would (the signup trigger, if any, runs)."""
    return [signup_sql(a.user_id, email_of(a), {"full_name": a.name.title()}) for a in world.actors.values()
            if a.user_id]


SIGNUP = "insert into auth.users (id, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data) values "


def signup_sql(user_id: str, email: str, metadata: dict) -> str:
    """A confirmed email signup, as GoTrue writes it."""
    return (f"{SIGNUP}({literal(user_id)}, {literal(email)}, now(), "
            f"{literal(json.dumps({'provider': 'email'}))}::jsonb, {literal(json.dumps(metadata))}::jsonb);")


def email_of(actor: Actor) -> str:
    """The address an actor signed up with (confirmed): invitations are addressed to it."""
    return f"{actor.name}@example.com"


class Implicit(str):
    """A column value the database supplies (the author's default): known to the fixtures, never sent."""


def insert_sql(table: Table, values: dict[str, str]) -> str:
    values = {c: v for c, v in values.items() if not isinstance(v, Implicit)}
    cols = list(values)
    if not cols:  # every column has a default: `() values ()` is not SQL
        return f"insert into {qname(table.schema_name, table.name)} default values"
    return (f"insert into {qname(table.schema_name, table.name)} ({column_list(cols)}) "
            f"values ({', '.join(values[c] for c in cols)})")


def fk_order(schema: Schema, tables: list[Table]) -> list[Table]:
    """Tables ordered so that referenced tables come first (ties keep declaration order)."""
    names = {t.name for t in tables}
    done: list[Table] = []
    pending = list(tables)
    while pending:
        for t in pending:
            deps = {fk.ref_table for fk in t.foreign_keys if fk.ref_schema == "public" and fk.ref_table != t.name}
            if deps & names <= {d.name for d in done}:
                done.append(t)
                pending.remove(t)
                break
        else:  # a cycle: take the rest as declared (their cycle edges are nullable by validation)
            done += pending
            break
    return done


# Types without an equality operator: a row is not picked out by them.
_NO_EQUALITY = frozenset({"json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle"})


def pk_key(table: Table, values: dict[str, str]) -> dict[str, str]:
    pk = next((k.columns for k in table.constraints if k.kind == "primary key"), None) or ["id"]
    key = {c: values[c] for c in pk if c in values}
    if key:
        return key
    # No primary key and no id given (a log table of a user's migrations): the row's own values pick it out,
    # never an empty WHERE.
    return {c: v for c, v in values.items() if v.strip().lower() != "null" and (
        (col := table.column(c)) is None or col.type.lower().split("(")[0].removeprefix("pg_catalog.") not in
        _NO_EQUALITY)}


def where_key(key: dict[str, str]) -> str:
    return " and ".join(f"{ident(c)} = {v}" for c, v in key.items())
