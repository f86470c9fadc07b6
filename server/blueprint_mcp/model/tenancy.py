"""Tenancy: personal workspaces, team organisations, ordered roles with capabilities."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from .access import CapabilityDef
from .base import Ident, Model, Text
from .errors import ValueProblem as Invalid
from .limits import CAPABILITIES, DESCRIPTION_CHARS, ROLES


class Capability(StrEnum):
    read = "read"
    write = "write"
    manage_members = "manage_members"
    manage_billing = "manage_billing"
    delete_organization = "delete_organization"


BUILTIN_CAPABILITIES = tuple(c.value for c in Capability)


class Role(Model):
    """One membership role; the tenancy lists roles from most to least privileged."""

    name: Ident = Field(description="Role name, a value of the member_role type (e.g. owner, dentist).")
    description: Text = Field("", max_length=DESCRIPTION_CHARS,
                              description="What the role is for; shown in the spec's roles table.")
    capabilities: list[Ident] = Field(
        default_factory=list, max_length=CAPABILITIES + len(Capability),
        description="Built-in capabilities (read, write, manage_members, manage_billing, delete_organization) "
                    "and app-defined ones declared in tenancy.capabilities.")


def default_roles() -> list[Role]:
    c = Capability
    return [
        Role(name="owner", description="Full control, billing and deletion of the organisation.",
             capabilities=[c.read, c.write, c.manage_members, c.manage_billing, c.delete_organization]),
        Role(name="admin", description="Invites and removes members, manages shared data.",
             capabilities=[c.read, c.write, c.manage_members]),
        Role(name="member", description="Creates and edits the organisation's data.",
             capabilities=[c.read, c.write]),
        Role(name="viewer", description="Read-only access.", capabilities=[c.read]),
    ]


class Tenancy(Model):
    """How users, organisations and roles relate; every tenant row is scoped by `tenant_key`."""

    personal_workspaces: bool = Field(True, description="Create a personal organisation for every user at signup.")
    team_organizations: bool = Field(True, description="Users may create team organisations and invite others.")
    multiple_memberships: bool = Field(True, description="A user may belong to many organisations.")
    roles: list[Role] = Field(default_factory=default_roles, max_length=ROLES, description="Most privileged first.")
    capabilities: list[CapabilityDef] = Field(
        default_factory=list, max_length=CAPABILITIES,
        description="App-defined capabilities (e.g. view_clinical_notes) that roles may hold and grants may name. "
                    "Unlike the built-in ones they need not follow the role ranking.")
    organization_deleted_by: Literal["primary_owner", "capability"] = Field(
        "primary_owner",
        description="Who may delete a team organisation. primary_owner: only organizations.owner_user_id, "
                    "co-owners cannot (default); capability: every role holding delete_organization.")
    tenant_key: Literal["organization_id"] = Field(
        "organization_id", description="organization_id: the column scoping every tenant row (NOT NULL, indexed, "
                                       "immutable); the only value.")

    @model_validator(mode="after")
    def _roles_form_a_hierarchy(self) -> "Tenancy":
        if not self.roles:
            raise Invalid("roles: at least one role is needed", "list roles most privileged first; the first owns "
                          "the organisation")
        names = [r.name for r in self.roles]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise Invalid(f"roles: duplicate role names {dupes}", "give every role a distinct name")
        declared = [c.name for c in self.capabilities]
        clash = [n for n in declared if n in BUILTIN_CAPABILITIES]
        if clash:
            raise Invalid(f"capabilities: {clash} are built in", "declare only app-defined capabilities")
        if len(set(declared)) != len(declared):
            raise Invalid("capabilities: a capability is declared twice", "declare each once")
        for i, r in enumerate(self.roles):
            unknown = [c for c in r.capabilities if c not in BUILTIN_CAPABILITIES and c not in declared]
            if unknown:
                raise Invalid(f"roles[{i}] ('{r.name}') holds undeclared capabilities {unknown}",
                              f"declare them in tenancy.capabilities or use built-in ones {list(BUILTIN_CAPABILITIES)}")
        top = self.roles[0]
        missing = [c.value for c in Capability if c not in top.capabilities]
        if missing:
            raise Invalid(f"roles[0] ('{top.name}') owns the organisation and must hold every capability",
                          f"add {missing}")
        # Built-in capabilities grant "role >= X"; that only means something when a higher role can
        # do everything a lower role can. App-defined capabilities are exact role sets instead.
        for i in range(1, len(self.roles)):
            higher, lower = self.roles[i - 1], self.roles[i]
            extra = [c for c in lower.capabilities if c in BUILTIN_CAPABILITIES and c not in higher.capabilities]
            if extra:
                raise Invalid(
                    f"roles[{i}] ('{lower.name}') has {extra} which the higher role '{higher.name}' lacks; "
                    "roles are ordered most privileged first",
                    "give the higher role those capabilities or reorder the roles")
        for i, role in enumerate(self.roles):
            # Writes and member management reach only rows the role can see (PostgreSQL applies the
            # SELECT policy to UPDATE and DELETE), so without read they would silently do nothing.
            builtin = [c for c in role.capabilities if c in BUILTIN_CAPABILITIES]
            if builtin and Capability.read not in role.capabilities:
                raise Invalid(f"roles[{i}] ('{role.name}') has {builtin} but not read: it could not see the rows "
                              "it may change", "add read (or give it no built-in capability at all)")
        if not self.personal_workspaces and not self.team_organizations:
            raise Invalid("personal_workspaces and team_organizations are both false: users would have no "
                          "organisation to hold data", "enable at least one")
        if self.personal_workspaces and self.team_organizations and not self.multiple_memberships:
            raise Invalid("multiple_memberships is false but users get a personal workspace and may also join "
                          "teams, which needs two memberships",
                          "set multiple_memberships: true or disable one of the two")
        return self

    @property
    def default_member_role(self) -> Role:
        """The role new members get unless told otherwise: the least role that may write."""
        return self.min_role(Capability.write) or self.roles[-1]

    @property
    def owner_role(self) -> Role:
        return self.roles[0]

    def holders(self, capability: str) -> list[str]:
        """Names of the roles holding `capability`, most privileged first."""
        return [r.name for r in self.roles if capability in r.capabilities]

    def capability_names(self) -> list[str]:
        return list(BUILTIN_CAPABILITIES) + [c.name for c in self.capabilities]

    def min_role(self, capability: Capability) -> Role | None:
        """The least privileged role holding `capability` (every higher role holds it too)."""
        holders = [r for r in self.roles if capability in r.capabilities]
        return holders[-1] if holders else None

    def role(self, name: str) -> Role:
        for r in self.roles:
            if r.name == name:
                return r
        raise KeyError(name)

    def roles_at_least(self, name: str) -> list[Role]:
        """`name` and every role above it, most privileged first."""
        names = [r.name for r in self.roles]
        return self.roles[: names.index(name) + 1]
