"""The attack world: actors, two organisations, memberships and a fixture row per table and organisation.

Everything is planned as literal SQL with deterministic ids, so the same world runs in the
verifier and in the pgTAP files `render` writes.
"""

from __future__ import annotations

import json
import re
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
    purpose: str = "matrix"  # "matrix" rows are judged for every actor; "attack" rows only serve attacks
    statement: int | None = None  # index of the fixture statement that creates it
    values: dict[str, str] = field(default_factory=dict)  # column -> literal, as inserted


@dataclass
class World:
    actors: dict[str, Actor]
    orgs: dict[str, str]  # label -> uuid
    statements: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    role_names: list[str] = field(default_factory=list)  # most privileged first

    def add(self, statement: str, row: Row | None = None) -> None:
        """A fixture statement, and the row it creates (dropped from the plan if the statement fails)."""
        if row is not None:
            row.statement = len(self.statements)
            self.rows.append(row)
        self.statements.append(statement)

    def actor_id(self, name: str | None) -> str | None:
        return self.actors[name].user_id if name else None


def plan_actors(roles: list[str], writer: str, peer_role: str | None = None) -> tuple[dict[str, Actor], dict[str, str]]:
    """A user per role in org1 (plus a peer of the member managers), an owner of org2, a hopper
    writing in both, an outsider and anon."""
    orgs = {"org1": stable_id("org", "org1"), "org2": stable_id("org", "org2")}
    actors: dict[str, Actor] = {}
    for role in roles:
        actors[role] = Actor(role, "authenticated", stable_id("user", role), {"org1": role})
    if peer_role:
        actors["peer"] = Actor("peer", "authenticated", stable_id("user", "peer"), {"org1": peer_role})
    actors["owner2"] = Actor("owner2", "authenticated", stable_id("user", "owner2"), {"org2": roles[0]})
    actors["hopper"] = Actor("hopper", "authenticated", stable_id("user", "hopper"), {"org1": writer, "org2": writer})
    actors["outsider"] = Actor("outsider", "authenticated", stable_id("user", "outsider"))
    actors["anon"] = Actor("anon", "anon", None)
    return actors, orgs


def users_sql(world: World) -> list[str]:
    """Sign every actor up, as GoTrue would (the signup trigger, if any, runs)."""
    out = []
    for a in world.actors.values():
        if a.user_id:
            meta = json.dumps({"full_name": a.name.title()})
            out.append("insert into auth.users (id, email, raw_app_meta_data, raw_user_meta_data) values "
                       f"({literal(a.user_id)}, {literal(a.name + '@example.com')}, "
                       f"{literal(json.dumps({'provider': 'email'}))}::jsonb, {literal(meta)}::jsonb);")
    return out


# --- values for columns ---------------------------------------------------------------------------

_ALLOWED = re.compile(r"(?:in \(|= any \(array\[)(.*?)[\])]", re.I)


def allowed_values(table: Table, column: str) -> list[str]:
    """Values a check constraint lists for `column` (`col in (...)` or `col = any (array[...])`)."""
    col = re.escape(column)
    for k in table.constraints:
        expr = k.expression or ""
        if k.kind == "check" and re.search(rf"\b{col}\b", expr) and (m := _ALLOWED.search(expr)):
            return re.findall(r"'((?:[^']|'')*)'", m.group(1))
    return []


_COMPARISON = re.compile(r'^\s*"?([a-z_][a-z0-9_]*)"?\s*(<=|>=|<>|<|>)\s*"?([a-z_][a-z0-9_]*)"?\s*$')
_ORDERED_TYPES = ("timestamptz", "timestamp with time zone", "timestamp", "timestamp without time zone", "date",
                  "integer", "bigint", "smallint", "numeric")


def ordered_columns(table: Table) -> dict[str, int]:
    """Ranks for columns that checks compare (`a > b`) or exclusions range over: a row whose values
    grow with the rank satisfies every comparison and gives a non-empty [start, end) range."""
    edges: list[tuple[str, str]] = []  # (smaller, larger)
    for k in table.constraints:
        if k.kind == "check" and (m := _COMPARISON.match(k.expression or "")):
            a, op, b = m.groups()
            edges.append((b, a) if op in (">", ">=", "<>") else (a, b))
        elif k.kind == "exclude" and len(k.columns) >= 2:
            edges.append((k.columns[-2], k.columns[-1]))
    rank: dict[str, int] = {c: 0 for pair in edges for c in pair}
    for _ in range(len(rank)):  # longest-path ranks; a cycle of strict comparisons has no solution anyway
        for small, large in edges:
            rank[large] = max(rank[large], rank[small] + 1)
    return rank


def value_for(table: Table, col, n: int, enums: dict[str, list[str]]) -> str:
    """A literal that satisfies the column's type and the usual checks (row number n keeps it unique)."""
    ranks = ordered_columns(table)
    base = col.type.split("(")[0].strip().lower()
    if col.name in ranks and base in _ORDERED_TYPES:
        # Row n gets its own day (so exclusion ranges never overlap), columns ordered within it by hour.
        if base == "date":
            return f"(date '2030-01-01' + {n * 10 + ranks[col.name]})"
        if base.startswith("timestamp"):
            return f"(timestamptz '2030-01-01 00:00:00+00' + interval '{n} days' + interval '{ranks[col.name]} hours')"
        return str(n * 10 + ranks[col.name])
    if options := allowed_values(table, col.name):
        return literal(options[0])
    labels = enums.get(base) or enums.get(base.replace("public.", ""))
    if labels:
        return f"{literal(labels[0])}::{col.type}"
    if base in ("text", "character varying", "varchar", "citext", "character"):
        if "email" in col.name:
            return literal(f"fixture{n}@example.com")
        return literal(f"fixture{n}")
    if base in ("integer", "bigint", "smallint", "numeric", "real", "double precision"):
        return "1"
    if base == "boolean":
        return "false"
    if base in ("timestamptz", "timestamp with time zone", "timestamp", "timestamp without time zone"):
        return "now()"
    if base == "date":
        return "current_date"
    if base in ("jsonb", "json"):
        return "'{}'"
    if base == "uuid":
        return literal(stable_id(table.name, col.name, str(n)))
    return f"{literal('fixture')}::{col.type}"


def row_values(table: Table, org: str | None, world: World, author: str, n: int,
               enums: dict[str, list[str]], with_id: bool) -> dict[str, str]:
    """Column -> literal for a row of `table` in `org` written by `author`.

    Only what a client must send: NOT NULL columns without a default, NOT NULL references
    (into the same organisation; users are the author), the tenant key, and the id for fixtures.
    """
    references: dict[str, str] = {}
    for fk in table.foreign_keys:
        target = None if fk.ref_schema == "auth" else _ref_row(world, fk, org, member_roles_of(table, fk))
        for col, ref_col in zip(fk.columns, fk.ref_columns):
            if col == ORG:
                continue
            if fk.ref_schema == "auth":
                # anon has no user: name an existing one, so only access control can stop the write.
                references[col] = literal(world.actor_id(author) or world.actor_id("outsider"))
            elif target is not None and ref_col in target.key:
                references[col] = target.key[ref_col]
    values: dict[str, str] = {}
    for col in table.columns:
        if col.name == ORG and org:
            values[ORG] = literal(world.orgs[org])
        elif col.name == "id" and with_id and col.name not in references:
            values["id"] = literal(stable_id(table.name, org or "global", author, str(n)))
        elif col.name in references and (not col.nullable or (with_id and references[col.name] != "null"
                                                                and _is_auth_ref(table, col.name))):
            # Fixture rows also name their author in optional user columns (events.user_id...).
            values[col.name] = references[col.name]
        elif not col.nullable and col.default is None:
            values[col.name] = value_for(table, col, n, enums)
    return values


def _is_auth_ref(table: Table, column: str) -> bool:
    return any(fk.ref_schema == "auth" and column in fk.columns for fk in table.foreign_keys)


def _ref_row(world: World, fk, org: str | None, roles: list[str] | None = None) -> Row | None:
    same_org = [r for r in world.rows if r.table == fk.ref_table and r.org == org]
    if roles is not None:  # a member reference limited to roles: a member holding one of them
        same_org = [r for r in same_org if world.actors[r.author].memberships.get(org) in roles]
        return (same_org or [None])[0]
    any_row = [r for r in world.rows if r.table == fk.ref_table]
    return (same_org or any_row or [None])[0]


def member_roles_of(table: Table, fk) -> list[str] | None:
    """The roles a member reference is limited to, read from its role-check trigger's arguments."""
    if fk.ref_table != "organization_members":
        return None
    col = fk.columns[-1]
    for trg in table.triggers:
        if trg.function.endswith("check_member_role") and trg.args[:1] == [col]:
            return trg.args[1:]
    return None


def insert_sql(table: Table, values: dict[str, str]) -> str:
    if not values:
        return f"insert into {qname(table.schema_name, table.name)} default values"
    cols = list(values)
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


def pk_key(table: Table, values: dict[str, str]) -> dict[str, str]:
    pk = next((k.columns for k in table.constraints if k.kind == "primary key"), None) or ["id"]
    return {c: values[c] for c in pk if c in values}


def where_key(key: dict[str, str]) -> str:
    return " and ".join(f"{ident(c)} = {v}" for c, v in key.items())
