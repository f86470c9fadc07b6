"""Evasion round 17, items e01, e03, e03b, fp04 and fp04b: each hole fires its rule and its fix does not; each safe
idiom stays clean of the rule that wrongly fired."""

from __future__ import annotations

import pytest

from blueprint_mcp.audit import audit_sql
from blueprint_mcp.audit.findings import Level

from audit_world import ORGS, PROJECTS, invitations

PRELUDE = ORGS + PROJECTS


def _fired(sql: str) -> set[str]:
    """The rules reporting an ERROR on the prelude followed by `sql`."""
    return {f.rule_id for f in audit_sql([("case.sql", PRELUDE + sql)]) if f.level is Level.ERROR}


# --- e01: a creator removed from the organisation still writes its project (BP073) -------------------------------

_AUTHOR = """
alter table public.projects add column created_by uuid references auth.users (id) {default};
create index on public.projects (created_by);
create policy projects_insert on public.projects for insert to authenticated
  with check (organization_id = any (array(select private.organization_ids_with_role('member'))){pin});
create function public.update_my_project_notes(p_project uuid, p_notes text) returns void
language plpgsql security definer set search_path = '' as $$
begin
  update public.projects set notes = p_notes
   where id = p_project and created_by = (select auth.uid()){org};
  if not found then raise exception 'not your project' using errcode = '42501'; end if;
end $$;
revoke all on function public.update_my_project_notes(uuid, text) from public, anon;
grant execute on function public.update_my_project_notes(uuid, text) to authenticated;
grant select, insert on public.projects to authenticated;
"""
_MEMBER_ORGS = " and organization_id = any (array(select private.organization_ids_with_role('member')))"


@pytest.mark.parametrize("default, pin", [
    ("default auth.uid()", ""),  # the writer by default
    ("", " and created_by = (select auth.uid())"),  # kept to the writer by the members' insert policy
])
def test_e01_a_pick_by_the_rows_author_is_no_organisation_test(default, pin):
    assert _fired(_AUTHOR.format(default=default, pin=pin, org="")) == {"BP073"}


def test_e01_the_authors_pick_with_the_organisation_test_is_clean():
    assert _fired(_AUTHOR.format(default="default auth.uid()", pin="", org=_MEMBER_ORGS)) == set()


# --- e03 / e03b: the role tested, then reassigned before the write (BP087) ---------------------------------------

_INVITE = invitations("public", "token") + """{helper}
create function public.invite_member(p_org uuid, p_email text, p_role {type} default 'member') returns uuid
language plpgsql security definer set search_path = '' as $$
declare v_id uuid;
begin
  if not p_org = any (array(select private.organization_ids_with_role('member'))) then
    raise exception 'members only' using errcode = '42501';
  end if;
  {body}
  return v_id;
end $$;
revoke all on function public.invite_member(uuid, text, {type}) from public, anon;
grant execute on function public.invite_member(uuid, text, {type}) to authenticated;
"""
_OWNERS_ONLY = ("if {role} in ('admin', 'owner') and not p_org = any (array(select "
                "private.organization_ids_with_role('owner'))) then raise exception 'owners only'; end if;")
_INSERT = ("insert into public.invitations (organization_id, email, role) values (p_org, p_email, {value}) "
           "returning id into v_id;")


def _invite(body: str, helper: str = "", type: str = "text") -> set[str]:
    return _fired(_INVITE.format(helper=helper, type=type, body=body))


@pytest.mark.parametrize("change", [
    "p_role := lower(trim(p_role));",
    "select lower(trim(p_role)) into p_role;",
])
def test_e03_a_parameter_reassigned_after_its_test_is_unbounded(change):
    body = _OWNERS_ONLY.format(role="p_role") + change + _INSERT.format(value="p_role::public.member_role")
    assert _invite(body) == {"BP087"}


def test_e03_the_parameter_normalised_before_its_test_is_bounded():
    body = "p_role := lower(trim(p_role));" + _OWNERS_ONLY.format(role="p_role") + \
        _INSERT.format(value="p_role::public.member_role")
    assert _invite(body) == set()


def test_e03b_a_variable_reassigned_after_its_test_is_unbounded():
    body = ("declare v_role text := p_role; begin " + _OWNERS_ONLY.format(role="v_role") +
            " v_role := lower(trim(v_role)); " + _INSERT.format(value="v_role::public.member_role") + " end;")
    assert _invite(body) == {"BP087"}


def test_e03b_the_variable_normalised_where_declared_is_bounded():
    body = ("declare v_role text := lower(trim(p_role)); begin " + _OWNERS_ONLY.format(role="v_role") +
            _INSERT.format(value="v_role::public.member_role") + " end;")
    assert _invite(body) == set()


# --- fp04: the role check in a helper the function PERFORMs (BP087) ----------------------------------------------

_ASSERT = """
create function private.assert_can_grant(p_org uuid, p_role public.member_role default 'member') returns void
language plpgsql stable security definer set search_path = '' as $$
begin
  if p_role >= 'admin' and {owner} p_org = any (array(select private.organization_ids_with_role('owner'))) then
    raise exception 'only owners add admins' using errcode = '42501';
  end if;
end $$;
revoke all on function private.assert_can_grant(uuid, public.member_role) from public, anon;
"""


def test_fp04_a_performed_helper_refusing_the_role_bounds_it():
    body = "perform private.assert_can_grant(p_org, p_role);" + _INSERT.format(value="p_role")
    assert _invite(body, _ASSERT.format(owner="not"), "public.member_role") == set()


@pytest.mark.parametrize("owner, call", [
    ("", "perform private.assert_can_grant(p_org, p_role);"),  # refuses the owners instead
    ("not", "perform private.assert_can_grant(p_org, 'member');"),  # checks another role
    ("not", "if p_role = 'admin' then perform private.assert_can_grant(p_org, p_role); end if;"),  # owner passes
    ("not", "perform private.assert_can_grant(p_org);"),  # the helper's p_role is its default, not the caller's
])
def test_fp04_a_helper_that_does_not_refuse_the_written_role_is_no_bound(owner, call):
    helper = _ASSERT.format(owner=owner)
    assert _invite(call + _INSERT.format(value="p_role"), helper, "public.member_role") == {"BP087"}


# --- fp04b: the role capped by LEAST with a constant (BP087) -----------------------------------------------------

def test_fp04b_least_with_member_caps_the_role():
    body = _INSERT.format(value="least(p_role, 'member'::public.member_role)")
    assert _invite(body, type="public.member_role") == set()


@pytest.mark.parametrize("value, type", [
    ("least(p_role, 'admin'::public.member_role)", "public.member_role"),  # admin still passes
    ("greatest(p_role, 'member'::public.member_role)", "public.member_role"),  # a floor, not a cap
    ("least(p_role, 'member')::public.member_role", "text"),  # by collation: least('admin', 'member') is 'admin'
])
def test_fp04b_caps_that_let_a_management_role_through_still_fire(value, type):
    assert _invite(_INSERT.format(value=value), type=type) == {"BP087"}


def test_fp04_a_helpers_own_variable_is_not_the_callers_of_the_same_name():
    # the helper tests its own v_role (always 'viewer'), not the caller's v_role that is written
    helper = _ASSERT.format(owner="not").replace("begin\n  if p_role", "declare v_role public.member_role := 'viewer';"
                                                 "\nbegin\n  if v_role")
    body = ("declare v_role public.member_role := p_role; begin perform private.assert_can_grant(p_org, p_role); "
            + _INSERT.format(value="v_role") + " end;")
    assert _invite(body, helper, "public.member_role") == {"BP087"}
