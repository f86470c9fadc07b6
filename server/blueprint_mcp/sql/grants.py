"""Explicit grants, correct with and without Supabase's legacy default privileges."""

from __future__ import annotations

from ..model.schema import Command, Privilege, Table

# Core tables where the client may write only some columns, whatever the policies allow.
_COLUMNS = {
    ("profiles", Command.update): "editable",
    ("organizations", Command.insert): ["name", "slug", "owner_user_id"],
    ("organizations", Command.update): ["name", "slug", "owner_user_id"],
    ("invitations", Command.insert): ["organization_id", "email", "role", "invited_by", "expires_at"],
}
_SERVER_COLUMNS = {"id", "created_at", "updated_at"}


def apply_grants(tables: list[Table]) -> None:
    """authenticated gets exactly the commands it has policies for; anon only the public reads it has
    policies for; service_role all."""
    for t in tables:
        commands = {p.command for p in t.policies if "authenticated" in p.roles}
        privileges = []
        for cmd in (Command.select, Command.insert, Command.update, Command.delete):
            if cmd not in commands:
                continue
            columns = _COLUMNS.get((t.name, cmd))
            if columns == "editable":
                columns = [c.name for c in t.columns if c.name not in _SERVER_COLUMNS]
            privileges.append(Privilege(privilege=cmd.value, columns=columns or []))
        t.grants = {"authenticated": privileges,
                    "service_role": [Privilege(privilege=p) for p in ("select", "insert", "update", "delete")]}
        if any("anon" in p.roles and p.command is Command.select for p in t.policies):
            t.grants = {"anon": [Privilege(privilege="select")], **t.grants}
