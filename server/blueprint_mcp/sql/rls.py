"""RLS: the membership helper, and one policy per command for every table, each `to authenticated`.

Membership is read through `private.organization_ids_with_role(min_role)`, a SECURITY DEFINER
function in a schema PostgREST does not expose, used as
`organization_id = any (array(select private.organization_ids_with_role('viewer')))`: the
array is computed once per statement (an init plan) and the planner can use the index on the
tenant key, which measured as fast as a hand-written filter. The definer function also breaks
the recursion a membership-table policy reading the membership table would cause.
"""

from __future__ import annotations

from ..model import Blueprint, Capability, Scope
from ..model.blueprint import ROLE_TYPE
from ..model.schema import Command, Function, Policy, Table
from .columns import ORG, add_index
from .ident import ident, literal, object_name

HELPER = "organization_ids_with_role"
API_ROLE = "authenticated"


def helper_function(bp: Blueprint) -> Function:
    return Function(
        schema_name="private", name=HELPER, args=f"min_role public.{ROLE_TYPE}", arg_types=f"public.{ROLE_TYPE}",
        returns="setof uuid", language="sql", security_definer=True, volatility="stable",
        body=(
            "select m.organization_id\n"
            "  from public.organization_members m\n"
            " where m.user_id = (select auth.uid())\n"
            "   and m.role >= min_role"
        ),
        comment="Organisations where the caller holds min_role or higher. Definer: reads memberships past RLS.",
        execute_roles=["authenticated", "service_role"],
    )


class Pred(str):
    """A policy predicate that remembers the columns it filters on (each needs an index)."""

    columns: tuple[str, ...] = ()

    @classmethod
    def of(cls, text: str, columns: tuple[str, ...] = ()) -> "Pred":
        p = cls(text)
        p.columns = columns
        return p


def uid() -> str:
    return "(select auth.uid())"


def in_orgs(role: str, column: str = ORG) -> Pred:
    """The fast membership predicate (see the module docstring)."""
    return Pred.of(f"{ident(column)} = any (array(select private.{HELPER}({literal(role)})))", (column,))


def is_me(column: str) -> Pred:
    return Pred.of(f"{ident(column)} = {uid()}", (column,))


def _join(op: str, other: str, parts: tuple[str, ...]) -> Pred:
    text = f" {op} ".join(p if f" {other} " not in p else f"({p})" for p in parts)
    cols = tuple(dict.fromkeys(c for p in parts for c in getattr(p, "columns", ())))
    return Pred.of(text, cols)


def both(*parts: str) -> Pred:
    return _join("and", "or", parts)


def either(*parts: str) -> Pred:
    return _join("or", "and", parts)


def policy(table: str, command: Command, *, using: str | None = None, check: str | None = None,
           comment: str = "") -> Policy:
    columns = [c for pred in (using, check) for c in getattr(pred, "columns", ())]
    return Policy(name=object_name(table, command.value, suffix="policy"), command=command, roles=[API_ROLE],
                  using=None if using is None else str(using), check=None if check is None else str(check),
                  comment=comment, columns=list(dict.fromkeys(columns)))


def _min(bp: Blueprint, capability: Capability) -> str:
    role = bp.tenancy.min_role(capability)
    # No role holds it: only the top role (which holds everything by validation) qualifies.
    return (role or bp.tenancy.owner_role).name


def _lower_than_each_manager(bp: Blueprint, op: str) -> str:
    """Target role `op` the caller's own: one init-plan branch per role that manages members."""
    managers = [r.name for r in bp.tenancy.roles if Capability.manage_members in r.capabilities]
    return either(*[both(in_orgs(r), f"role {op} {literal(r)}") for r in managers])


def core_policies(bp: Blueprint, table: Table) -> list[Policy]:
    read, manage = _min(bp, Capability.read), _min(bp, Capability.manage_members)
    delete_org = _min(bp, Capability.delete_organization)
    n = table.name
    if n == "profiles":
        return [policy(n, Command.select, using=is_me("id"), comment="Users read only their own profile."),
                policy(n, Command.update, using=is_me("id"), check=is_me("id"),
                       comment="Users edit only their own profile.")]
    if n == "organizations":
        out = [policy(n, Command.select, using=either(in_orgs(read, "id"), is_me("owner_user_id")),
                      comment="Members see their organisations; the owner column lets insert ... returning work.")]
        if bp.tenancy.team_organizations:
            out.append(policy(n, Command.insert, check=both(is_me("owner_user_id"), "is_personal = false"),
                              comment="Anyone signed in may create a team organisation they own."))
        out += [policy(n, Command.update, using=in_orgs(manage, "id"), check=in_orgs(manage, "id"),
                       comment="Managers edit settings; ownership transfer is guarded by a trigger."),
                policy(n, Command.delete, using=both(in_orgs(delete_org, "id"), "is_personal = false"),
                       comment="Only roles that may delete the organisation; personal workspaces stay.")]
        return out
    if n == "organization_members":
        return [policy(n, Command.select, using=either(in_orgs(read), is_me("user_id")),
                       comment="Members see who else belongs to their organisations."),
                policy(n, Command.delete, using=either(is_me("user_id"), _lower_than_each_manager(bp, "<")),
                       comment="Leave, or remove members ranked below you. Inserts and role changes go through "
                               "the service role (edge functions), never the client.")]
    if n == "invitations":
        return [policy(n, Command.select, using=in_orgs(manage), comment="Managers see pending invitations."),
                policy(n, Command.insert, check=both(_lower_than_each_manager(bp, "<="), is_me("invited_by")),
                       comment="Managers invite at most at their own rank."),
                policy(n, Command.delete, using=in_orgs(manage), comment="Managers revoke invitations.")]
    return []


def _higher(bp: Blueprint, *roles: str) -> str:
    """The most privileged of `roles`: whoever holds it, or above, holds every one of them."""
    ranked = [r.name for r in bp.tenancy.roles]
    return min(roles, key=ranked.index)


def entity_policies(bp: Blueprint, table: Table) -> list[Policy]:
    """One policy per command; the meaning of each (docs/access.md) is this function's contract."""
    e = bp.entity(table.name)
    n, a = e.name, e.access
    if e.scope is Scope.global_:
        return [policy(n, Command.select, using="true", comment="Reference data: every signed-in user reads it.")]
    read = a.select or _min(bp, Capability.read)
    write = _min(bp, Capability.write)
    own = [is_me(e.owner_column)] if e.scope is Scope.user else []
    out = [policy(n, Command.select, using=both(in_orgs(read), *own))]
    if e.scope is Scope.service:
        return out
    stamped = [is_me(e.owner_column)] if e.owner_column else []
    # UPDATE and DELETE reach a row only when SELECT shows it, so they need the select role too;
    # folding it into their own policy holds writes without WHERE (which skip SELECT) to the same rule.
    ins = a.insert or write
    upd, dele = _higher(bp, a.update or write, read), _higher(bp, a.delete or write, read)

    def mine(role: str) -> Pred:
        if a.own_rows_only and e.scope is Scope.organization:
            # Your own rows from `role` up; anyone's only at or above both `role` and the managers' role.
            anyone = _higher(bp, role, _min(bp, Capability.manage_members))
            if anyone == role:
                return in_orgs(role)
            return either(both(in_orgs(role), is_me(e.owner_column)), in_orgs(anyone))
        return both(in_orgs(role), *own)

    out += [
        policy(n, Command.insert, check=both(in_orgs(ins), *stamped)),
        # WITH CHECK as well as USING: otherwise a row could be moved into another organisation.
        policy(n, Command.update, using=mine(upd), check=mine(upd)),
        policy(n, Command.delete, using=mine(dele)),
    ]
    return out


def analytics_policies(bp: Blueprint, table: Table) -> list[Policy]:
    read, manage = _min(bp, Capability.read), _min(bp, Capability.manage_members)
    n = table.name
    if n == "sessions":
        return [policy(n, Command.select, using=both(in_orgs(read), is_me("user_id")),
                       comment="Users see their own sessions.")]
    if n == "events":
        return [policy(n, Command.select, using=either(in_orgs(manage), both(in_orgs(read), is_me("user_id"))),
                       comment="Managers see the organisation's events; others their own.")]
    if n == "feature_flags":
        return [policy(n, Command.select, using="true", comment="Flags are readable by every signed-in user.")]
    if n == "feature_flag_assignments":
        return [policy(n, Command.select, using=both(in_orgs(read), either("user_id is null", is_me("user_id"))),
                       comment="Organisation-wide assignments and the caller's own.")]
    if n == "audit_logs":
        return [policy(n, Command.select, using=in_orgs(manage), comment="Managers read the audit trail.")]
    return []


def policies_for(bp: Blueprint, table: Table) -> list[Policy]:
    if table.section == "core":
        return core_policies(bp, table)
    if table.section == "domain":
        return entity_policies(bp, table)
    return analytics_policies(bp, table)


def apply_rls(bp: Blueprint, tables: list[Table]) -> None:
    """Enable RLS everywhere and attach the policies; index every column a policy filters on."""
    for t in tables:
        t.rls_enabled = True
        t.policies = policies_for(bp, t)
        for col in dict.fromkeys(c for pol in t.policies for c in pol.columns):
            add_index(t, [col])
