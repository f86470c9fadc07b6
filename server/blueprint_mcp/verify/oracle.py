"""Who may do what, derived from the blueprint's meaning (scopes, capabilities), not from the SQL.

The verifier compares these expectations with what PostgreSQL actually does; keeping this
independent of the policy generator is what gives the comparison teeth.
"""

from __future__ import annotations

from ..model import Blueprint, Capability, Scope
from .world import Actor, Row, World

ALLOWED, DENIED = "allowed", "denied"
READ_ONLY_ROLE_NAMES = ("viewer", "read_only", "readonly", "reader", "guest")


class Oracle:
    """Expected outcome of (actor, command, table, row) for a blueprint-generated backend."""

    def __init__(self, bp: Blueprint, world: World) -> None:
        self.bp, self.world = bp, world
        self.rank = {r.name: i for i, r in enumerate(bp.tenancy.roles)}  # 0 = most privileged

    def role_in(self, actor: Actor, org: str | None) -> str | None:
        return actor.memberships.get(org) if org else None

    def at_least(self, actor: Actor, org: str | None, role: str | None) -> bool:
        mine = self.role_in(actor, org)
        return mine is not None and role is not None and self.rank[mine] <= self.rank[role]

    def can(self, actor: Actor, org: str | None, capability: Capability) -> bool:
        return self.at_least(actor, org, self._min(capability))

    def _min(self, capability: Capability) -> str:
        role = self.bp.tenancy.min_role(capability)
        return (role or self.bp.tenancy.owner_role).name

    def expect(self, actor: Actor, command: str, table: str, row: Row | None, org: str | None) -> str:
        """`row` for select/update/delete; `org` (target organisation) for insert."""
        if actor.api_role != "authenticated":
            return DENIED
        handler = getattr(self, f"_{table}", None)
        ok = handler(actor, command, row, org) if handler else self._entity(actor, command, table, row, org)
        return ALLOWED if ok else DENIED

    # --- core tables -------------------------------------------------------------------------------

    def _profiles(self, actor, command, row, org):
        return command in ("select", "update") and row.author == actor.name

    def _organizations(self, actor, command, row, org):
        if command == "insert":
            return self.bp.tenancy.team_organizations
        if command == "select":
            return self.can(actor, row.org, Capability.read) or row.author == actor.name
        if command == "update":
            return self.can(actor, row.org, Capability.manage_members)
        if command == "delete":
            return self.can(actor, row.org, Capability.delete_organization)  # fixture orgs are team orgs
        return False

    def _organization_members(self, actor, command, row, org):
        if command == "select":
            return self.can(actor, row.org, Capability.read) or row.author == actor.name
        if command == "delete":
            if row.author == actor.name:  # leaving: allowed unless the actor is the organisation's owner
                return self.world.owners.get(row.org) != actor.name
            target_role = self.world.actors[row.author].memberships.get(row.org)
            mine = self.role_in(actor, row.org)
            return (self.can(actor, row.org, Capability.manage_members) and target_role is not None
                    and self.rank[mine] < self.rank[target_role])
        return False  # inserts and role changes go through the service role

    def _invitations(self, actor, command, row, org):
        target = row.org if row else org
        if command in ("select", "delete"):
            return self.can(actor, target, Capability.manage_members)
        if command == "insert":  # the fixture invitation uses the default member role
            return (self.can(actor, target, Capability.manage_members)
                    and self.at_least(actor, target, self.bp.tenancy.default_member_role.name))
        return False

    # --- analytics and privacy ------------------------------------------------------------------------

    def _sessions(self, actor, command, row, org):
        return command == "select" and self.can(actor, row.org, Capability.read) and row.author == actor.name

    def _events(self, actor, command, row, org):
        if command != "select":
            return False
        return self.can(actor, row.org, Capability.manage_members) or (
            self.can(actor, row.org, Capability.read) and row.author == actor.name)

    def _feature_flags(self, actor, command, row, org):
        return command == "select"

    def _feature_flag_assignments(self, actor, command, row, org):
        # Fixture rows are assigned to their author; organisation-wide rows (user null) are read by all.
        return command == "select" and self.can(actor, row.org, Capability.read) and row.author == actor.name

    def _audit_logs(self, actor, command, row, org):
        return command == "select" and self.can(actor, row.org, Capability.manage_members)

    def _daily_org_metrics(self, actor, command, row, org):
        return command == "select" and self.can(actor, row.org, Capability.read)

    # --- domain entities ----------------------------------------------------------------------------

    def _entity(self, actor, command, table, row, org):
        """docs/access.md, read independently of the policy generator."""
        e = self.bp.entity(table)
        if e is None:
            return False
        if e.scope is Scope.global_:
            return command == "select"
        target = row.org if row else org
        access = e.access
        read = access.select or self._min(Capability.read)
        write = self._min(Capability.write)
        own = row is not None and row.author == actor.name
        if command == "select":
            return self.at_least(actor, target, read) and (e.scope is not Scope.user or own)
        if e.scope is Scope.service:
            return False
        if command == "insert":
            return self.at_least(actor, target, access.insert or write)
        # The command's minimum role always applies, and so does the select role: PostgreSQL
        # updates and deletes only rows the caller can see.
        needed = getattr(access, command) or write
        if not (self.at_least(actor, target, needed) and self.at_least(actor, target, read)):
            return False
        if e.scope is Scope.user:
            return own
        if access.own_rows_only:  # anyone's rows only for a manager (who also passed the checks above)
            return own or self.can(actor, target, Capability.manage_members)
        return True


class GenericOracle:
    """For migrations without a blueprint: only what holds for any multi-tenant backend."""

    def __init__(self, members_table: str | None = None) -> None:
        self.members_table = members_table

    def expect(self, actor: Actor, command: str, table: str, row: Row | None, org: str | None) -> str | None:
        if actor.api_role != "authenticated":
            return DENIED
        if table == self.members_table and row is not None and row.author == actor.name and command == "delete":
            return None  # leaving an organisation: a policy decision, not a leak
        target = row.org if row else org
        if target is None:
            return None
        role = actor.memberships.get(target)
        if role is None:
            return DENIED
        if command != "select" and role in READ_ONLY_ROLE_NAMES:
            return DENIED
        return None
