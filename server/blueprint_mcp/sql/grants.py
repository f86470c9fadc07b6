"""Explicit grants, correct with and without Supabase's legacy default privileges."""

from __future__ import annotations

from ..model.schema import Command, Privilege, Table

# Core tables where the client may write only some columns, whatever the policies allow.
_COLUMNS = {
    # owner_user_id may be sent on insert: the policy holds it to the caller (it defaults to them).
    ("organizations", Command.insert): ["name", "slug", "owner_user_id"],
    ("organizations", Command.update): ["name", "slug"],
}
# What the server decides on every table: the row's identity, its tenant once set, its author and its
# timestamps. A client that could write them could backdate, re-attribute or re-home rows.
SERVER_COLUMNS = {"id", "created_at", "updated_at", "archived_at"}  # archived_at: delete archives, restore_<x>()
_FIXED_AFTER_INSERT = {"organization_id"}


def client_columns(t: Table, command: Command, author: str | None, fixed: set[str] = frozenset(),
                   server_set: set[str] = frozenset()) -> list[str] | None:
    """The columns authenticated may write with `command`, or None for "every column". `fixed`: set on insert
    only; `server_set`: the blueprint's fields only the server writes (their default fills them)."""
    listed = _COLUMNS.get((t.name, command))
    if listed is not None:
        return listed
    if command not in (Command.insert, Command.update):
        return None
    server = SERVER_COLUMNS | ({author} if author else set()) | server_set
    if command is Command.update:
        # updated_at stays grantable: its trigger overwrites whatever a client sends with now().
        server = (server | _FIXED_AFTER_INSERT | fixed) - {"updated_at"}
    return [c.name for c in t.columns if c.name not in server]


def apply_grants(tables: list[Table], authors: dict[str, str] | None = None,
                 fixed: dict[str, set[str]] | None = None, server_set: dict[str, set[str]] | None = None) -> None:
    """authenticated gets exactly the commands it has policies for, writes limited to the columns a client
    may set; anon only the public reads it has policies for; service_role all (none on private tables)."""
    authors, fixed, server_set = authors or {}, fixed or {}, server_set or {}
    for t in tables:
        commands = {p.command for p in t.policies if "authenticated" in p.roles}
        privileges = []
        for cmd in (Command.select, Command.insert, Command.update, Command.delete):
            if cmd not in commands:
                continue
            columns = client_columns(t, cmd, authors.get(t.name), fixed.get(t.name, set()),
                                     server_set.get(t.name, set()))
            if columns == []:
                continue  # nothing a client may set: the command stays with the service role
            privileges.append(Privilege(privilege=cmd.value, columns=columns or []))
        if t.schema_name != "public":
            t.grants = {}  # reached only through definer functions
            continue
        t.grants = {"authenticated": privileges,
                    "service_role": [Privilege(privilege=p) for p in ("select", "insert", "update", "delete")]}
        if t.name == "audit_logs":
            t.grants["service_role"] = [Privilege(privilege="select")]  # append-only: written by its trigger alone
        if any("anon" in p.roles and p.command is Command.select for p in t.policies):
            t.grants = {"anon": [Privilege(privilege="select")], **t.grants}
