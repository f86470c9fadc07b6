"""Evasion round 18, items e03, fp03, e02 and e02b: each hole fires its rule and its fix does not; each safe idiom
stays clean of the rule that wrongly fired."""

from __future__ import annotations

import pytest

from audit_world import documents, errors_fired, invitations


# --- e03: an assignee removed from the organisation still reads and overwrites its task (BP073) ------------------

_TASKS = """
create table public.tasks (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  details text,
  {column} uuid references auth.users (id)
);
create index on public.tasks (organization_id);
create index on public.tasks ({column});
alter table public.tasks enable row level security;
grant select on public.tasks to authenticated;
create policy tasks_select on public.tasks for select to authenticated
  using (organization_id = any (array(select private.organization_ids_with_role('viewer'))));
create function public.update_my_task(p_task uuid, p_details text) returns public.tasks
language plpgsql security definer set search_path = '' as $$
declare v_row public.tasks;
begin
  update public.tasks set details = p_details
   where id = p_task and {column} = (select auth.uid()){org}
  returning * into v_row;
  if not found then raise exception 'not your task' using errcode = '42501'; end if;
  return v_row;
end $$;
revoke all on function public.update_my_task(uuid, text) from public, anon;
grant execute on function public.update_my_task(uuid, text) to authenticated;
"""
_MEMBER_ORGS = " and organization_id = any (array(select private.organization_ids_with_role('member')))"


def _task(column: str, org: str = "") -> str:
    return _TASKS.replace("{column}", column).replace("{org}", org)


@pytest.mark.parametrize("column", ["assignee_id", "reviewer_id", "user_id", "updated_by", "approver_id"])
def test_e03_a_pin_of_a_user_column_on_a_tenant_row_is_no_organisation_test(column):
    assert errors_fired(_task(column)) == {"BP073"}


def test_e03_the_assignees_pick_with_the_organisation_test_is_clean():
    assert errors_fired(_task("assignee_id", _MEMBER_ORGS)) == set()


_ACCEPT = invitations("public", "id")


def test_e03_an_invitation_addressed_to_the_callers_email_stays_addressed_to_them():
    assert "BP073" not in errors_fired(_ACCEPT)


_REMADE = _ACCEPT + """
create function public.invite_member(p_org uuid, p_email text) returns uuid
language plpgsql security definer set search_path = '' as $$
declare v_id uuid;
begin
  if not p_org = any (array(select private.organization_ids_with_role('admin'))) then
    raise exception 'admins only' using errcode = '42501';
  end if;
  insert into public.invitations (organization_id, email) values (p_org, p_email) returning id into v_id;
  update public.invitations set email = lower(email) where id = {pick};
  return v_id;
end $$;
revoke all on function public.invite_member(uuid, text) from public, anon;
grant execute on function public.invite_member(uuid, text) to authenticated;
"""


def test_e03_a_pick_of_the_row_the_body_just_inserted_stays_in_its_organisation():
    # (once clean only because the insert also called auth.uid(), which made v_id "the caller's")
    assert "BP073" not in errors_fired(_REMADE.replace("{pick}", "v_id"))
    assert "BP073" in errors_fired(_REMADE.replace("{pick}", "v_id").replace(
        "returning id into v_id;", "returning id into v_id;\n  select id into v_id from public.invitations "
        "where email = p_email;"))


# --- fp03: the invited role capped by a CASE (BP087) --------------------------------------------------------------

_INVITE = _ACCEPT + """
create function public.invite_member(p_org uuid, p_email text, p_role public.member_role default 'member')
returns uuid language plpgsql security definer set search_path = '' as $$
declare v_id uuid;
begin
  if not p_org = any (array(select private.organization_ids_with_role('member'))) then
    raise exception 'members only' using errcode = '42501';
  end if;
  insert into public.invitations (organization_id, email, role) values (p_org, p_email, {value})
  returning id into v_id;
  return v_id;
end $$;
revoke all on function public.invite_member(uuid, text, public.member_role) from public, anon;
grant execute on function public.invite_member(uuid, text, public.member_role) to authenticated;
"""


@pytest.mark.parametrize("value", [
    "case when p_role > 'member' then 'member'::public.member_role else p_role end",
    "case when p_role <= 'member' then p_role else 'member' end",
    "case p_role when 'owner' then 'member' when 'admin' then 'member' else p_role end",
])
def test_fp03_a_case_capping_the_role_below_admin_bounds_it(value):
    assert "BP087" not in errors_fired(_INVITE.replace("{value}", value))


@pytest.mark.parametrize("value", [
    "case when p_role = 'owner' then 'member'::public.member_role else p_role end",  # admin passes
    "case when p_role > 'member' then 'owner'::public.member_role else p_role end",  # caps at owner
    "case when p_role::text > 'member' then 'member'::public.member_role else p_role end",  # by collation
    "case when p_email like '%@example.com' then p_role else 'member' end",  # a test of something else
])
def test_fp03_a_case_letting_a_management_role_through_still_fires(value):
    assert "BP087" in errors_fired(_INVITE.replace("{value}", value))


# --- e02 / e02b: a test every accepted token passes, ORed beside the membership check (BP079) -------------------


def _documents(test: str, restrictive: bool = False) -> set[str]:
    if not restrictive:
        return errors_fired(documents(f" or {test}"))
    return errors_fired(documents("") + "create policy documents_guard on public.documents as "
                  f"restrictive for select to authenticated using ({test});\n")


@pytest.mark.parametrize("test", [
    "(select (auth.jwt() ->> 'exp')::bigint) > extract(epoch from now())",  # PostgREST refuses an expired token
    "to_timestamp((auth.jwt() ->> 'exp')::bigint) >= now()",
    "extract(epoch from current_timestamp) < (auth.jwt() ->> 'exp')::numeric",
    "(auth.jwt() ->> 'iat')::bigint <= extract(epoch from now())",  # issued before the request
    "(select current_setting('role')) = 'authenticated'",  # the role PostgREST sets for the request
    "current_setting('role', true) <> 'anon'",
])
def test_e02_a_test_every_accepted_token_passes_opens_every_row(test):
    assert _documents(test) == {"BP079"}


@pytest.mark.parametrize("test", [
    "(auth.jwt() ->> 'exp')::bigint > extract(epoch from now()) + 3000",  # a token near its end: some fail it
    "(auth.jwt() ->> 'iat')::bigint > extract(epoch from now()) - 300",  # a recent sign-in: some fail it
    "(auth.jwt() ->> 'iat')::bigint < extract(epoch from now())",  # (the same second leaves it open)
    "session_user = 'authenticated'",  # the API's login role, never the request's
])
def test_e02_a_narrower_test_of_the_clock_or_the_login_role_is_not_every_caller(test):
    assert "BP079" not in _documents(test)


@pytest.mark.parametrize("test", [
    "(select (auth.jwt() ->> 'exp')::bigint) > extract(epoch from now())",
    "(select current_setting('role')) = 'authenticated'",
])
def test_e02_the_same_test_as_a_restrictive_policy_is_clean(test):
    assert "BP079" not in _documents(test, restrictive=True)
