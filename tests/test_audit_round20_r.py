"""Evasion round 20, items e02 and e03: each hole fires its rule and its fix does not."""

from __future__ import annotations

import pytest

from audit_world import documents, errors_fired, invitations


# --- e02: a clock-skew allowance written as an interval, moved across, rounded or as BETWEEN (BP079) -------------

_IAT = "(select auth.jwt() ->> 'iat')::bigint"
_EXP = "(select auth.jwt() ->> 'exp')::bigint"


@pytest.mark.parametrize("test", [
    f"{_IAT} < extract(epoch from now() + interval '1 minute')",
    f"{_IAT} - 60 < extract(epoch from now())",
    f"extract(epoch from now()) - {_IAT} > -60",
    f"{_IAT} < floor(extract(epoch from now())) + 60",
    f"{_IAT} <= extract(epoch from now())::bigint + 60",
    f"{_IAT} < extract(epoch from now()) + 60.0",
    f"{_IAT} between 0 and extract(epoch from now()) + 60",
    f"{_IAT} < extract(epoch from localtimestamp) + 60",
    f"{_IAT} < date_part('epoch', now() + '2 min'::interval)",
    f"{_EXP} + 60 > extract(epoch from now())",
    f"{_EXP} > extract(epoch from now() - interval '30 seconds')",
    f"{_EXP} >= ceil(extract(epoch from now()))",  # integers: exp is at least the next whole second
    f"{_EXP} - {_IAT} > 0",  # exp is later than the clock, iat not
])
def test_e02_a_skew_allowance_in_any_linear_spelling_opens_every_row(test):
    assert errors_fired(documents(" or " + test)) == {"BP079"}


@pytest.mark.parametrize("test", [
    f"{_IAT} < extract(epoch from now())",  # an equal second leaves it open
    f"{_IAT} < extract(epoch from now() - interval '1 minute')",
    f"{_IAT} + 60 < extract(epoch from now())",
    f"{_IAT} < floor(extract(epoch from now()))",
    f"{_IAT} < extract(epoch from now())::bigint",  # rounding may land below iat
    f"extract(epoch from now()) - {_IAT} < 60",  # the token's age: open
    f"{_IAT} between extract(epoch from now()) - 60 and extract(epoch from now()) + 60",
    f"{_EXP} > extract(epoch from now() + interval '1 minute')",
    f"{_EXP} > ceil(extract(epoch from now()))",  # exp may be that very second
])
def test_e02_a_test_some_accepted_token_fails_stays_undecided(test):
    assert "BP079" not in errors_fired(documents(" or " + test))


def test_e02_the_interval_skew_as_a_restrictive_policy_is_clean():
    restrictive = f"""
create policy documents_fresh on public.documents as restrictive for select to authenticated
  using ({_IAT} < extract(epoch from now() + interval '1 minute'));
"""
    assert errors_fired(documents("") + restrictive) == set()


# --- e03: marking a task `claimed_at = coalesce(claimed_at, now())` does not use it up (BP073) --------------------

_TASKS = """
create table public.tasks (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  details text,
  status text not null default 'open',
  assignee_email text,
  claimed_at timestamptz
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
  update public.tasks set status = p_status, {claim}
   where id = p_task and lower(assignee_email) = lower((select auth.jwt()) ->> 'email'){where}
  returning * into v_row;
  if not found then raise exception 'not your task' using errcode = '42501'; end if;{after}
  return v_row;
end $$;
revoke all on function public.update_my_task(uuid, text) from public, anon;
grant execute on function public.update_my_task(uuid, text) to authenticated;
"""


def _task(claim: str = "claimed_at = coalesce(claimed_at, now())", where: str = "", after: str = "") -> str:
    return _TASKS.replace("{claim}", claim).replace("{where}", where).replace("{after}", after)


@pytest.mark.parametrize("claim, where, after", [
    ("claimed_at = coalesce(claimed_at, now())", "", ""),  # the attack: the first claim time is kept
    ("claimed_at = now()", "", ""),  # marked, but the pick takes a marked row again
    ("claimed_at = coalesce(claimed_at, now())", " and claimed_at is null", ""),  # keeps the old mark
    ("details = details", "", "\n  delete from public.tasks where id = p_status::uuid;"),  # another row
])
def test_e03_a_mark_that_does_not_use_up_the_picked_row_is_no_organisation_test(claim, where, after):
    assert errors_fired(_task(claim, where, after)) == {"BP073"}


def test_e03_the_pick_with_the_organisation_test_is_clean():
    org = " and organization_id = any (array(select private.organization_ids_with_role('viewer')))"
    assert errors_fired(_task(where=org)) == set()


@pytest.mark.parametrize("claim, where, after", [
    ("claimed_at = now()", " and claimed_at is null", ""),  # used once: a marked row is never picked again
    ("details = details", "", "\n  delete from public.tasks where id = v_row.id;"),  # the picked row is deleted
])
def test_e03_a_row_used_up_by_the_pick_stays_addressed_to_the_caller(claim, where, after):
    assert errors_fired(_task(claim, where, after)) == set()


@pytest.mark.parametrize("by", ["token", "id"])
def test_e03_accepting_an_invitation_still_stays_clean(by):
    assert "BP073" not in errors_fired(invitations("public", by))
