"""RLS: the membership helper, and one policy per command for every table, each `to authenticated`.

Membership is read through `private.organization_ids_with_role(min_role)`, a SECURITY DEFINER
function in a schema PostgREST does not expose, used as
`organization_id = any (array(select private.organization_ids_with_role('viewer')))`: the
array is computed once per statement (an init plan) and the planner can use the index on the
tenant key, which measured as fast as a hand-written filter. The definer function also breaks
the recursion a membership-table policy reading the membership table would cause.
"""

from __future__ import annotations

from ..audit.parser import parse
from ..audit.tree import column_name, row_columns, strings
from ..model import Blueprint, Capability, FieldType
from ..model.schema import Command, Policy, Table
from .access import audit_branches, grant_policies, roles_pred
from .columns import ORG, add_index, index
from .ident import literal
from .predicates import (API_ROLE, HELPER, Pred, both, either, helper_function, in_orgs, is_me, owned_orgs,
                         policy, uid)

__all__ = ["API_ROLE", "HELPER", "Pred", "apply_rls", "helper_function", "policies_for"]


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
                       comment="Managers edit the name and slug; ownership moves only through transfer_ownership()."),
                _delete_organization(bp, delete_org)]
        return out
    if n == "organization_members":
        writes = ("Memberships are added by accept_invitation() and roles changed by change_member_role(), never "
                  "by a client write." if bp.tenancy.team_organizations else
                  "Memberships come from the signup trigger, never from a client write.")
        removes = [is_me("user_id"), _lower_than_each_manager(bp, "<")]
        if bp.tenancy.team_organizations:
            # The primary owner removes anyone else, co-owners included: after a handover the new owner can
            # remove the one before, who keeps an owner membership (L17).
            removes.append(both(owned_orgs(), f"user_id <> {uid()}"))
        return [policy(n, Command.select, using=either(in_orgs(read), is_me("user_id")),
                       comment="Members see who else belongs to their organisations."),
                policy(n, Command.delete, using=either(*removes),
                       comment="Leave, or remove members ranked below you (the primary owner: anyone else). "
                               + writes)]
    if n == "invitations":
        # No insert policy: invitations are created by create_invitation(), which sets the secret.
        return [policy(n, Command.select, using=in_orgs(manage), comment="Managers see invitations (never secrets)."),
                policy(n, Command.delete, using=in_orgs(manage), comment="Managers revoke invitations.")]
    return []


def _delete_organization(bp: Blueprint, delete_org: str) -> Policy:
    if bp.tenancy.organization_deleted_by == "capability":
        return policy("organizations", Command.delete, using=both(in_orgs(delete_org, "id"), "is_personal = false"),
                      comment="Roles holding delete_organization delete a team; personal workspaces stay.")
    return policy("organizations", Command.delete, using=both(is_me("owner_user_id"), "is_personal = false"),
                  comment="Only the primary owner deletes a team (co-owners cannot); personal workspaces stay.")


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
        branches = audit_branches(bp)
        if not branches:
            return [policy(n, Command.select, using=in_orgs(manage), comment="Managers read the audit trail.")]
        # An entry copies its row: a table some managers may not read in full shows its entries only to those
        # who may (none: the service role alone).
        others = "table_name not in (" + ", ".join(literal(t) for t, _ in branches) + ")"
        kept = [both(f"table_name = {literal(t)}", roles_pred(bp, readers)) for t, readers in branches if readers]
        return [policy(n, Command.select, using=both(in_orgs(manage), either(others, *kept)),
                       comment="Managers read the audit trail; a table's entries only those who read all its rows.")]
    return []


def policies_for(bp: Blueprint, table: Table) -> list[Policy]:
    if table.section == "core":
        return core_policies(bp, table)
    if table.section == "domain":
        return grant_policies(bp, bp.entity(table.name), table)
    return analytics_policies(bp, table)


def apply_rls(bp: Blueprint, tables: list[Table]) -> None:
    """Enable RLS everywhere and attach the policies; index every column a policy filters on, and let a
    domain table's query-pattern index decide its read rule (`_cover_read_rule`)."""
    for t in tables:
        # Tables outside the API's schemas (private.invitation_tokens) are closed by privileges alone:
        # no client role holds any, and RLS with no policy would only add a lint.
        t.rls_enabled = t.schema_name == "public"
        t.policies = policies_for(bp, t)
        for col in dict.fromkeys(c for pol in t.policies for c in pol.columns):
            add_index(t, [col])
        if t.section == "domain":
            _cover_read_rule(bp, t)


# Types whose values repeat within an organisation (flags, states, timestamps that are mostly NULL, the members
# who wrote a row), so an index keyed on them still deduplicates; a reference to another row would not.
_SMALL_TYPES = {"boolean", "timestamptz", "date"}


def _cover_read_rule(bp: Blueprint, t: Table) -> None:
    """A read policy that filters on more than the tenant key (archived rows for their creator or an admin)
    reads those columns from the heap for every row, even in `count(*)`, which PostgREST runs for
    `Prefer: count=exact`. When every read policy is `organization_id = any (...) and <rule>` (so the scan
    is an index scan on the tenant key; an OR across arms is a bitmap scan, which reads the heap anyway)
    and an index from the blueprint's query patterns leads with the tenant key, that index's keys are
    extended with the rule's columns, so the rule is decided inside the index and counts stay index-only
    scans, as the table owner's are. Extended as keys, not INCLUDE columns (those turn off B-tree
    deduplication and slow every scan), and only with columns whose values repeat (`_SMALL_TYPES`, the
    blueprint's enums, references to users): all of them or none, since one left out sends every row to
    the heap anyway."""
    patterns = [list(q) for q in bp.entity(t.name).query_patterns]
    target = next((i for i in t.indexes if i.columns[0] == ORG and i.columns in patterns and not i.unique
                   and i.where is None), None)
    if target is None:
        return
    quals = [parse(f"create policy p on t using ({p.using})")[0]["stmt"]["CreatePolicyStmt"]["qual"]
             for p in t.policies if p.command is Command.select and p.using]
    if not quals or not all(_tenant_conjunct(q) for q in quals):
        return
    read = dict.fromkeys(c for q in quals for c in row_columns(q))
    read.pop(ORG, None)
    if not read:
        return
    # (the entity's own enum fields: naming their types would walk every field of the blueprint, per table)
    enums = {f.name for f in bp.entity(t.name).fields if f.type is FieldType.enum}
    users = {col for fk in t.foreign_keys if (fk.ref_schema, fk.ref_table) == ("auth", "users") for col in fk.columns}
    types = {c.name: c.type for c in t.columns}
    if any(col not in types or not (types[col] in _SMALL_TYPES or col in enums or col in users) for col in read):
        return
    if any(i.columns[0] == ORG and set(read) <= set(i.columns) and not i.unique and i.where is None
           for i in t.indexes):
        return  # a pattern already holds them all (or the same columns would be indexed twice)
    t.indexes[t.indexes.index(target)] = index(t.name, [*target.columns, *(c for c in read if c not in target.columns)])


def _tenant_conjunct(qual: dict) -> bool:
    """`organization_id = any (...)`, alone or as one of the top-level ANDs."""
    kind, body = next(iter(qual.items()))
    parts = body["args"] if kind == "BoolExpr" and body["boolop"] == "AND_EXPR" else [qual]
    return any(kind == "A_Expr" and body.get("kind") == "AEXPR_OP_ANY" and strings(body.get("name")) == ["="]
               and (body.get("lexpr") or {}).get("ColumnRef") and column_name(body["lexpr"]["ColumnRef"]) == ORG
               for part in parts for kind, body in part.items())
