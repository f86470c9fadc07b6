"""Evasion round 19, items e05, e06 and e07: each hole fires its rule and its fix does not."""

from __future__ import annotations

import pytest

from audit_world import documents, errors_fired, invitations


# --- e05: a task kept by its assignee's e-mail is still theirs after they leave the organisation (BP073) ----------

_EMAIL_TASKS = """
create table public.tasks (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  details text,
  status text not null default 'open',
  accepted_at timestamptz,
  assignee_email text
);
create index on public.tasks (organization_id);
alter table public.tasks enable row level security;
grant select on public.tasks to authenticated;
create policy tasks_select on public.tasks for select to authenticated
  using (organization_id = any (array(select private.organization_ids_with_role('viewer'))));
create function public.update_my_task(p_task uuid, p_status text) returns public.tasks
language plpgsql security definer set search_path = '' as $$
declare v_row public.tasks;
begin
  update public.tasks set {set}
   where id = p_task and lower(assignee_email) = lower((select auth.jwt()) ->> 'email'){org}
  returning * into v_row;
  if not found then raise exception 'not your task' using errcode = '42501'; end if;
  return v_row;
end $$;
revoke all on function public.update_my_task(uuid, text) from public, anon;
grant execute on function public.update_my_task(uuid, text) to authenticated;
"""


def _email_task(set_: str = "status = p_status", org: str = "") -> str:
    return _EMAIL_TASKS.replace("{set}", set_).replace("{org}", org)


def test_e05_a_pin_to_the_callers_email_on_a_tenant_row_is_no_organisation_test():
    assert errors_fired(_email_task()) == {"BP073"}


def test_e05_the_assignees_pick_with_the_organisation_test_is_clean():
    org = " and organization_id = any (array(select private.organization_ids_with_role('viewer')))"
    assert errors_fired(_email_task(org=org)) == set()


def test_e05_a_row_used_up_by_the_callers_email_stays_addressed_to_them():
    # marking the row accepted uses it up, as accepting an invitation does, when the pick refuses a row already
    # marked (evasion round 20 e03: without that test the same row is picked again after the assignee left)
    assert errors_fired(_email_task("status = p_status, accepted_at = now()", " and accepted_at is null")) == set()


@pytest.mark.parametrize("by", ["token", "id"])
def test_e05_accepting_an_invitation_by_the_callers_email_stays_clean(by):
    assert "BP073" not in errors_fired(invitations("public", by))


# --- e06: the column an INSERT returns may be an argument echoed back, not the row just made (BP073) --------------

_SUBTASKS = """
create table public.tasks (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  parent_id uuid,
  title text not null,
  subtasks integer not null default 0
);
create index on public.tasks (organization_id);
create index on public.tasks (parent_id);
alter table public.tasks enable row level security;
grant select on public.tasks to authenticated;
create policy tasks_select on public.tasks for select to authenticated
  using (organization_id = any (array(select private.organization_ids_with_role('viewer'))));
create function public.add_subtask(p_org uuid, p_parent uuid, p_title text) returns public.tasks
language plpgsql security definer set search_path = '' as $$
declare
  v_key uuid;
  v_row public.tasks;
begin
  if not p_org = any (array(select private.organization_ids_with_role('member'))) then
    raise exception 'not a member' using errcode = '42501';
  end if;
  insert into public.tasks ({columns}) values ({values}) returning {returned} into v_key;
  update public.tasks set subtasks = subtasks + 1 where id = v_key{org} returning * into v_row;
  return v_row;
end $$;
revoke all on function public.add_subtask(uuid, uuid, text) from public, anon;
grant execute on function public.add_subtask(uuid, uuid, text) to authenticated;
"""


def _subtask(returned: str, org: str = "", columns: str = "organization_id, parent_id, title",
             values: str = "p_org, p_parent, p_title") -> str:
    return _SUBTASKS.replace("{returned}", returned).replace("{org}", org).replace("{columns}", columns) \
        .replace("{values}", values)


def test_e06_a_returned_column_echoing_an_argument_is_no_row_just_made():
    assert errors_fired(_subtask("parent_id")) == {"BP073"}


def test_e06_the_echoed_pick_with_the_organisation_test_is_clean():
    assert errors_fired(_subtask("parent_id", " and organization_id = p_org")) == set()


def test_e06_the_primary_key_the_insert_made_names_the_row_just_made():
    assert errors_fired(_subtask("id")) == set()
    assert errors_fired(_subtask("id", columns="id, organization_id, parent_id, title",
                           values="gen_random_uuid(), p_org, p_parent, p_title")) == set()


def test_e06_a_primary_key_the_caller_chose_still_names_the_row_just_made():
    # the insert succeeded, so no other row holds that key
    assert errors_fired(_subtask("id", columns="id, organization_id, title", values="p_parent, p_org, p_title")) == set()


# --- e07: a clock-skew allowance on iat or exp is ORed in: it holds for every accepted token (BP079) -------------


@pytest.mark.parametrize("test", [
    "(select auth.jwt() ->> 'iat')::bigint < extract(epoch from now()) + 60",
    "(select auth.jwt() ->> 'iat')::bigint <= 60 + extract(epoch from now())",
    "(select auth.jwt() ->> 'exp')::bigint > extract(epoch from now()) - 30",
    "to_timestamp((select auth.jwt() ->> 'exp')::bigint) > now() - interval '1 minute'",
    "to_timestamp((select auth.jwt() ->> 'iat')::bigint) < now() + interval '60 seconds'",
    "extract(epoch from now()) + 60 > (select auth.jwt() ->> 'iat')::bigint",
])
def test_e07_a_clock_skew_allowance_ored_in_opens_every_row(test):
    assert errors_fired(documents(" or " + test)) == {"BP079"}


@pytest.mark.parametrize("test", [
    "(select auth.jwt() ->> 'iat')::bigint < extract(epoch from now()) - 60",
    "(select auth.jwt() ->> 'exp')::bigint > extract(epoch from now()) + 60",
    "to_timestamp((select auth.jwt() ->> 'iat')::bigint) < now() + interval '1 minute ago'",
    "to_timestamp((select auth.jwt() ->> 'iat')::bigint) < now() + interval '-1 minute'",
])
def test_e07_an_offset_against_the_claims_side_stays_undecided(test):
    assert "BP079" not in errors_fired(documents(" or " + test))


def test_e07_the_skew_allowance_as_a_restrictive_policy_is_clean():
    restrictive = """
create policy documents_fresh on public.documents as restrictive for select to authenticated
  using ((select auth.jwt() ->> 'iat')::bigint < extract(epoch from now()) + 60);
"""
    assert errors_fired(documents("") + restrictive) == set()
