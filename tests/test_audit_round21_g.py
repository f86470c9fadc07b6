"""Evasion round 21 (e07, fp02, fp05). e07: an admin-checked SECURITY DEFINER `remove_member` deletes any membership,
the owner's too (BP081 reads the definer form of the DELETE policy it reports). fp02: a definer refusing a
non-owner's admin invitation by an early `return;` refuses as the `raise` version does (BP087). fp05: a membership
helper counting the caller's memberships of the argument (`select count(*) > 0 ... where o.id = p_org`) asks what
the `exists` form asks (BP027)."""

from __future__ import annotations

import pytest

from blueprint_mcp.audit import audit_sql

from audit_world import ORGS, invitations


def _rules(sql: str) -> set[str]:
    return {f.rule_id for f in audit_sql([("case.sql", ORGS + sql)])}


# --- e07: BP081, a definer RPC removing members ---------------------------------------------------------------------

_ADMIN = """  if not p_org = any (array(select private.organization_ids_with_role('admin'))) then
    raise exception 'only admins remove members' using errcode = '42501';
  end if;
"""
_DELETE = "  delete from public.organization_members where organization_id = p_org and user_id = p_user"
_LOOKUP = """  select m.role into v_role from public.organization_members m
   where m.organization_id = p_org and m.user_id = p_user;
"""
_OWNER_ROW = """  if exists (select 1 from public.organization_members m
             where m.organization_id = p_org and m.user_id = p_user and m.role = 'owner') then
"""
_IS_OWNER = """
create function private.is_owner(p_org uuid, p_user uuid) returns boolean
language sql stable set search_path = '' as $$
  select exists (select 1 from public.organization_members m
                 where m.organization_id = p_org and m.user_id = p_user and m.role = 'owner') $$;
"""


def _remove(body: str, declare: str = "", language: str = "plpgsql") -> str:
    head = "create function public.remove_member(p_org uuid, p_user uuid) returns void\n" \
        f"language {language} security definer set search_path = '' as $$\n"
    text = f"{body}\n" if language == "sql" else f"{declare}begin\n{body}end\n"
    return head + text + """$$;
revoke all on function public.remove_member(uuid, uuid) from public, anon;
grant execute on function public.remove_member(uuid, uuid) to authenticated;
"""


def test_e07_admin_checked_definer_removes_the_owner():
    assert _rules(_remove(_ADMIN + _DELETE + ";\n")) == {"BP024", "BP081"}


@pytest.mark.parametrize("body", [
    # the check by an early RETURN, or in the DELETE's own filter (PL/pgSQL or SQL)
    "  if not p_org = any (array(select private.organization_ids_with_role('admin'))) then return; end if;\n"
    + _DELETE + ";\n",
    _DELETE + " and organization_id = any (array(select private.organization_ids_with_role('admin')));\n",
    # tests that say nothing of the member's rank: a member at all, NULL, not the caller; a role filter keeping owners
    _ADMIN + "  if not exists (select 1 from public.organization_members m where m.organization_id = p_org\n"
    "                 and m.user_id = p_user) then raise exception 'not a member'; end if;\n" + _DELETE + ";\n",
    _ADMIN + "  if p_user = (select auth.uid()) then raise exception 'use leave_organization'; end if;\n"
    + _DELETE + ";\n",
    _ADMIN + _DELETE + " and role <> 'viewer';\n",
    _ADMIN + _DELETE + " and role in ('admin', 'owner');\n",
    _ADMIN + "  delete from public.organization_members where organization_id = p_org\n"
    "    and user_id = (select u.id from auth.users u where u.email = p_user::text);\n",
], ids=["return_check", "check_in_filter", "member_at_all", "not_the_caller", "role_not_viewer", "roles_listed",
         "user_by_email"])
def test_e07_nearby_spellings_still_remove_the_owner(body):
    assert _rules(_remove(body)) == {"BP024", "BP081"}


def test_e07_null_role_test_and_sql_function_remove_the_owner():
    null = _ADMIN + _LOOKUP + "  if v_role is null then raise exception 'not a member'; end if;\n" + _DELETE + ";\n"
    assert _rules(_remove(null, "declare v_role public.member_role;\n")) == {"BP024", "BP081"}
    sql = _DELETE.strip() + " and organization_id = any (array(select private.organization_ids_with_role('admin')))"
    assert _rules(_remove(sql, language="sql")) == {"BP024", "BP081"}


@pytest.mark.parametrize("body", [
    _ADMIN + _DELETE + " and role <> 'owner';\n",
    _ADMIN + _DELETE + " and role < 'admin';\n",
    _ADMIN + _DELETE + " and role = any (array['viewer', 'member']::public.member_role[]);\n",
    _ADMIN.replace("'admin'", "'owner'") + _DELETE + ";\n",
    _ADMIN + _OWNER_ROW + "    raise exception 'cannot remove the owner';\n  end if;\n" + _DELETE + ";\n",
    _ADMIN + _OWNER_ROW + "    return;\n  end if;\n" + _DELETE + ";\n",
    _ADMIN + "  if (select m.role from public.organization_members m where m.organization_id = p_org\n"
    "      and m.user_id = p_user) <> 'owner' then\n  " + _DELETE + ";\n  end if;\n",
    _ADMIN + _DELETE + " and role < (select m.role from public.organization_members m\n"
    "    where m.organization_id = p_org and m.user_id = (select auth.uid()));\n",
    # the caller leaves: their own membership
    "  if not p_org = any (array(select private.organization_ids_with_role('viewer'))) then\n"
    "    raise exception 'members only';\n  end if;\n"
    "  delete from public.organization_members where organization_id = p_org and user_id = (select auth.uid());\n",
], ids=["role_not_owner", "role_below_admin", "roles_below_listed", "owners_only", "owner_refused", "owner_returned",
         "owner_branch", "below_caller", "leave"])
def test_e07_removal_kept_below_the_owner_is_clean(body):
    assert _rules(_remove(body)) == {"BP024"}


def test_e07_member_looked_up_or_asked_about_is_clean():
    lookup = _ADMIN + _LOOKUP + "  if v_role = 'owner' then raise exception 'cannot remove the owner'; end if;\n" \
        + _DELETE + ";\n"
    assert _rules(_remove(lookup, "declare v_role public.member_role;\n")) == {"BP024"}
    helper = _ADMIN + "  if private.is_owner(p_org, p_user) then raise exception 'owner'; end if;\n" + _DELETE + ";\n"
    assert _rules(_IS_OWNER + _remove(helper)) == {"BP024"}
    in_filter = _ADMIN + _DELETE + " and not private.is_owner(organization_id, user_id);\n"
    assert _rules(_IS_OWNER + _remove(in_filter)) == {"BP024"}


# --- fp02: BP087, a refusal by early RETURN ---------------------------------------------------------------------------

_OWNER = "not p_org = any (array(select private.organization_ids_with_role('owner')))"
_MEMBER = """  if not p_org = any (array(select private.organization_ids_with_role('member'))) then
    raise exception 'members only' using errcode = '42501';
  end if;
"""
_INSERT = "  insert into public.invitations (organization_id, email, role) values (p_org, p_email, p_role);\n"


def _invite(body: str) -> str:
    return invitations() + f"""
create function private.invite_member(p_org uuid, p_email text, p_role public.member_role) returns void
language plpgsql security definer set search_path = '' as $$
begin
{body}end $$;
revoke all on function private.invite_member(uuid, text, public.member_role) from public, anon;
grant execute on function private.invite_member(uuid, text, public.member_role) to authenticated;
create function public.invite_member(p_org uuid, p_email text, p_role public.member_role) returns void
language sql security invoker set search_path = '' as $$ select private.invite_member(p_org, p_email, p_role) $$;
"""


@pytest.mark.parametrize("body", [
    _MEMBER + f"  if p_role >= 'admin' and {_OWNER} then\n    return;  -- only owners invite admins\n  end if;\n"
    + _INSERT,
    _MEMBER + f"  if p_role >= 'admin' and {_OWNER} then\n    raise notice 'only owners invite admins';\n"
    "    return;\n  end if;\n" + _INSERT,
    "  if not p_org = any (array(select private.organization_ids_with_role('member'))) then return; end if;\n"
    f"  if p_role >= 'admin' and {_OWNER} then return; end if;\n" + _INSERT,
    _MEMBER + f"  if p_role < 'admin' then null; elsif {_OWNER} then return; end if;\n" + _INSERT,
], ids=["return", "notice_then_return", "both_by_return", "elsif_return"])
def test_fp02_admin_invitation_refused_by_return_is_clean(body):
    assert _rules(_invite(body)) == set()


@pytest.mark.parametrize("body", [
    _MEMBER + f"  if p_role = 'admin' and {_OWNER} then return; end if;\n" + _INSERT,  # 'owner' passes
    _MEMBER + _INSERT + f"  if p_role >= 'admin' and {_OWNER} then return; end if;\n",  # written before
    _MEMBER + "  if p_role >= 'admin' then\n  " + _INSERT + "    return;\n  end if;\n"
    + _INSERT.replace("p_role)", "'member')"),  # the branch writes the role, then returns
    _MEMBER + "  if p_email is null then return; end if;\n" + _INSERT,
], ids=["admin_only", "after_insert", "writes_then_returns", "other_test"])
def test_fp02_return_that_does_not_refuse_the_role_still_fires(body):
    assert _rules(_invite(body)) == {"BP087"}


# --- fp05: BP027, a helper counting memberships ----------------------------------------------------------------------

_HELPER = "private.organization_ids_with_role('viewer')"
_FILES = """
revoke all on function private.can_read(uuid) from public, anon;
grant execute on function private.can_read(uuid) to authenticated;
create table public.files (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  body text
);
create index on public.files (organization_id);
alter table public.files enable row level security;
grant select on public.files to authenticated;
create policy files_select on public.files for select to authenticated
  using ((select private.can_read(organization_id)));
"""


def _sql_helper(body: str) -> str:
    return f"""
create function private.can_read(p_org uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  {body}
$$;""" + _FILES


def _plpgsql_helper(body: str, declare: str = "n int;") -> str:
    return f"""
create function private.can_read(p_org uuid) returns boolean
language plpgsql stable security definer set search_path = '' as $$
declare {declare}
begin
  {body}
end $$;""" + _FILES


@pytest.mark.parametrize("helper", [
    _sql_helper(f"select count(*) > 0 from {_HELPER} as o(id) where o.id = p_org"),
    _sql_helper(f"select count(*) >= 1 from {_HELPER} as o(id) where o.id = p_org"),
    _sql_helper(f"select 0 <> count(o.id) from {_HELPER} as o(id) where o.id = p_org"),
    _sql_helper(f"select (select count(*) from {_HELPER} as o(id) where o.id = p_org) > 0"),
    _sql_helper(f"select (select count(*) > 0 from {_HELPER} as o(id) where o.id = p_org)"),
    _sql_helper(f"select coalesce(bool_or(o.id = p_org), false) from {_HELPER} as o(id)"),
    _plpgsql_helper(f"return (select count(*) from {_HELPER} as o(id) where o.id = p_org) > 0;"),
    _plpgsql_helper(f"v_orgs := array(select {_HELPER});\n  return p_org = any (v_orgs);", "v_orgs uuid[];"),
    _plpgsql_helper("return p_org = any (v_orgs);", f"v_orgs uuid[] := array(select {_HELPER});"),
    _plpgsql_helper(f"select array_agg(o) into v_orgs from {_HELPER} o;\n  return p_org = any (v_orgs);",
                    "v_orgs uuid[];"),
], ids=["count_gt_0", "count_ge_1", "0_ne_count", "scalar_count", "scalar_test", "bool_or", "plpgsql_count",
         "array_variable", "array_default", "array_agg"])
def test_fp05_helper_counting_memberships_of_the_argument_is_clean(helper):
    assert _rules(helper) == set()


@pytest.mark.parametrize("helper, found", [
    (_sql_helper(f"select count(*) > 0 from {_HELPER} as o(id)"), {"BP027", "BP055"}),  # any membership
    (_sql_helper(f"select count(*) > 0 from {_HELPER} as o(id) where o.id = o.id"), {"BP027", "BP055"}),
    (_sql_helper(f"select count(*) >= 0 from {_HELPER} as o(id) where o.id = p_org"), {"BP027"}),  # always
    (_sql_helper(f"select count(*) = 0 from {_HELPER} as o(id) where o.id = p_org"), {"BP027"}),  # outsiders
    (_sql_helper(f"select (select count(*) from {_HELPER} as o(id) where o.id = p_org) < 1"), {"BP027"}),
    (_sql_helper(f"select bool_or(o.id is not null) from {_HELPER} as o(id)"), {"BP027", "BP055"}),
    (_plpgsql_helper(f"v_orgs := array(select {_HELPER});\n  return cardinality(v_orgs) > 0;", "v_orgs uuid[];"),
     {"BP027", "BP055"}),
    (_plpgsql_helper(f"v_orgs := array(select {_HELPER});\n  return p_org is not null and cardinality(v_orgs) > 0;",
                     "v_orgs uuid[];"), {"BP027"}),
], ids=["no_filter", "self_compared", "count_ge_0", "count_eq_0", "count_lt_1", "bool_or_other", "cardinality",
         "cardinality_and"])
def test_fp05_count_that_does_not_tie_the_argument_still_fires(helper, found):
    assert _rules(helper) == found


# The same reading of an early RETURN in the other definer readings (fp02's nearby spellings, the insecure side):
# an admin check by RETURN before handing ownership over (BP084), a RETURN skipped by a NULL role (BP080), a RETURN on
# FOUND right after an INSERT (BP085).

def _drop(body: str) -> str:
    return f"""
create table public.audit_log (
  id bigint generated always as identity primary key,
  organization_id uuid not null references public.organizations (id) on delete cascade,
  action text not null
);
create index on public.audit_log (organization_id);
alter table public.audit_log enable row level security;
create policy audit_log_select on public.audit_log for select to authenticated
  using (organization_id = any (array(select private.organization_ids_with_role('admin'))));
create function public.drop_org(p_org uuid) returns void
language plpgsql security definer set search_path = '' as $$
declare v_role public.member_role;
begin
{body}
  delete from public.organizations where id = p_org;
end $$;
revoke all on function public.drop_org(uuid) from public, anon;
grant execute on function public.drop_org(uuid) to authenticated;
"""


_MY_ROLE = """  select m.role into v_role from public.organization_members m
   where m.organization_id = p_org and m.user_id = (select auth.uid());
"""


def test_fp02_return_refusals_read_by_the_other_definer_rules():
    transfer = """
create function public.transfer_ownership(p_org uuid, p_new_owner uuid) returns void
language plpgsql security definer set search_path = '' as $$
begin
  if not (p_org = any (array(select private.organization_ids_with_role('admin')))) then
    return;
  end if;
  update public.organization_members set role = 'owner' where organization_id = p_org and user_id = p_new_owner;
end $$;
revoke all on function public.transfer_ownership(uuid, uuid) from public, anon;
grant execute on function public.transfer_ownership(uuid, uuid) to authenticated;
"""
    assert _rules(transfer) == {"BP024", "BP084"}
    assert _rules(transfer.replace("'admin'", "'owner'")) == {"BP024"}
    assert _rules(_drop(_MY_ROLE + "  if v_role < 'owner' then return; end if;")) == {"BP024", "BP080"}
    assert _rules(_drop(_MY_ROLE + "  if v_role is null or v_role < 'owner' then return; end if;")) == {"BP024"}
    found = """  perform 1 from public.organization_members m
   where m.organization_id = p_org and m.user_id = (select auth.uid()) and m.role = 'owner';
"""
    log = "  insert into public.audit_log (organization_id, action) values (p_org, 'delete');\n"
    assert _rules(_drop(found + log + "  if not found then return; end if;")) == {"BP024", "BP085"}
    assert _rules(_drop(found + "  if not found then return; end if;\n" + log)) == {"BP024"}
