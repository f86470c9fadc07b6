"""Which column scopes a table's rows to a tenant, in SQL the generator did not write.

The blueprint's own name is organization_id. Projects built on other starters name it after their tenant:
Basejump's `account_id` (basejump.account_user (user_id, account_id) -> basejump.accounts), `team_id`,
`workspace_id`. The key is read off the membership table, the one place that says which tenant a user
belongs to: a table whose key pairs user_id with one column referencing another table (or one named like a
membership, *_members, *_user, with a role column). Every table with a column of that name is a tenant
table, as every table with organization_id is one in the blueprint's reading. The audit (every rule that asks
for a tenant key) and verify's generic plan both read it here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from .schema import Table

ORG_KEY = "organization_id"
USER_KEY = "user_id"
MEMBERSHIP_NAMES = ("members", "memberships", "_user", "_users", "_member", "_membership")


# Roles that by their name only read: generic verify expects them to write nothing, and audit reports a write
# policy that admits them.
READ_ONLY_ROLE_NAMES = ("viewer", "read_only", "readonly", "reader", "guest")


def is_role_column(name: str) -> bool:
    """`role`, or a role named for its tenant (`account_role`, `team_role`)."""
    return name == "role" or name.endswith("_role")


# Role names from the most to the least trusted, as apps name them: a rank each (0 the most trusted).
ROLE_RANKS = {"owner": 0, "admin": 1, "administrator": 1, "manager": 1, "editor": 2, "member": 2, "viewer": 3,
              "guest": 3, "reader": 3, "readonly": 3}


def ranks_reversed(labels: list[str]) -> bool:
    """Whether an enum's labels, read by their usual names, run from the most trusted role to the least: as an
    enum orders its values, the least trusted would then compare greatest."""
    ranked = [ROLE_RANKS[v] for v in labels if v in ROLE_RANKS]
    return len(set(ranked)) >= 2 and ranked == sorted(ranked)


def rank_inversion(labels: list[str]) -> tuple[str, str] | None:
    """(a role, a less trusted role declared after it) in an enum's labels, read by their usual names: as an enum
    orders its values, the less trusted one compares greater (`add value 'guest'` appended after 'owner')."""
    known = [v for v in labels if v in ROLE_RANKS]
    for j, b in enumerate(known):
        above = [a for a in known[:j] if ROLE_RANKS[a] < ROLE_RANKS[b]]
        if above:
            return min(above, key=ROLE_RANKS.__getitem__), b  # the most trusted it outranks
    return None


def role_column(t: Table) -> str | None:
    """The column holding a member's role: `role` where there is one, else the first `*_role`."""
    names = [c.name for c in t.columns if is_role_column(c.name)]
    return "role" if "role" in names else (names[0] if names else None)


def key_sets(t: Table) -> list[set[str]]:
    """The column sets of the table's primary key, unique constraints and unique indexes without WHERE."""
    keys = [set(c.columns) for c in t.constraints if c.kind in ("primary key", "unique")]
    return keys + [set(i.columns) for i in t.indexes if i.unique and i.where is None]


def user_tables(tables: Iterable[Table]) -> set[tuple[str, str]]:
    """(schema, name) of the tables with one row per user: a one-column primary key referencing auth.users
    (profiles)."""
    out = set()
    for t in tables:
        pk = next((c.columns for c in t.constraints if c.kind == "primary key"), None)
        if pk and len(pk) == 1 and any(fk.columns == pk and (fk.ref_schema, fk.ref_table) == ("auth", "users")
                                       for fk in t.foreign_keys):
            out.add((t.schema_name, t.name))
    return out


def user_columns(t: Table, users: set[tuple[str, str]]) -> list[str]:
    """The columns that may name the user a row is about: user_id first, then each one-column reference to
    auth.users or to a table of one row per user (a membership keyed by profile_id)."""
    out = [USER_KEY] if t.column(USER_KEY) is not None else []
    for fk in t.foreign_keys:
        target = (fk.ref_schema, fk.ref_table)
        if len(fk.columns) == 1 and (target == ("auth", "users") or target in users) \
                and target != (t.schema_name, t.name) and fk.columns[0] not in out:
            out.append(fk.columns[0])
    return out


def member_column(t: Table, key: str | None, users: set[tuple[str, str]]) -> str | None:
    """The user column of a membership table: the one its key pairs with the tenant key, else the first."""
    columns = user_columns(t, users)
    keys = key_sets(t)
    return next((c for c in columns if {key, c} in keys), columns[0] if columns else None)


def membership_links(tables: Iterable[Table]) -> list[tuple[Table, str]]:
    """(membership table, the column it names its tenant by) for every table shaped like a membership."""
    tables = list(tables)
    users = user_tables(tables)
    out = []
    for t in tables:
        people = user_columns(t, users) if not t.external else []
        if not people:
            continue
        keys = key_sets(t)
        named = t.name.endswith(MEMBERSHIP_NAMES) and any(is_role_column(c.name) for c in t.columns)
        for fk in t.foreign_keys:
            if len(fk.columns) != 1 or fk.columns[0] in people or fk.ref_schema == "auth":
                continue
            if (fk.ref_schema, fk.ref_table) in {(t.schema_name, t.name)} | users:
                continue
            if any({fk.columns[0], user} in keys for user in people) or named:
                out.append((t, fk.columns[0]))
    return out


def membership_table(tables: list[Table], key: str | None) -> Table | None:
    """The membership table that links users to tenants by `key`: the first one shaped so that holds a role (a
    per-user record without one, a shop's customers, links a user to data rather than granting access), named
    like memberships first (a history of past memberships, such as the generated private.membership_changes,
    has the same shape), else the first one shaped so."""
    found = [t for t, column in membership_links(tables) if column == key]
    roled = [t for t in found if any(is_role_column(c.name) for c in t.columns)]
    named = [t for t in roled if t.name.endswith(MEMBERSHIP_NAMES)]
    return (named or roled or found or [None])[0]


def tenant_key_name(tables: list[Table]) -> str | None:
    """organization_id where the SQL uses it; else the membership tables' tenant column that the most tables
    carry (a project's memberships of its own, project_members (project_id), are domain rows inside a
    tenant, and fewer tables hold project_id than the tenant's key)."""
    if any(t.column(ORG_KEY) is not None for t in tables):
        return ORG_KEY
    names = {key for _, key in membership_links(tables)}
    if not names:
        return None
    carried = Counter(key for t in tables for key in names if t.column(key) is not None)
    return max(sorted(names), key=lambda key: carried[key])


def assign_tenant_keys(tables: list[Table]) -> str | None:
    """Set `tenant_key` on every table that carries the tenant column; returns the column's name."""
    key = tenant_key_name(tables)
    for t in tables:
        t.tenant_key = key if key is not None and t.column(key) is not None else None
    return key
