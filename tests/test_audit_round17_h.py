"""Evasion round 17, item e02: the hole fires its rule and its fix does not."""

from __future__ import annotations

import pytest

from blueprint_mcp.audit import audit_sql
from blueprint_mcp.audit.findings import Level

from audit_world import ORGS

_DOCUMENTS = ORGS + """
create table public.documents (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  title text not null
);
create index on public.documents (organization_id);
alter table public.documents enable row level security;
grant select on public.documents to authenticated;
"""
_MEMBER = "organization_id = any (array(select private.organization_ids_with_role('viewer')))"


def _fired(sql: str) -> set[str]:
    """The rules reporting an ERROR or a WARN on the documents world followed by `sql`."""
    return {f.rule_id for f in audit_sql([("case.sql", _DOCUMENTS + sql)]) if f.level in (Level.ERROR, Level.WARN)}


def _select_policy(test: str, to: str = "authenticated") -> str:
    return f"create policy documents_select on public.documents for select to {to} using ({test});\n"


# --- e02: a test of the token every ordinary signed-in user passes, OR-ed beside the membership check (BP079) -----

@pytest.mark.parametrize("branch", [
    "(select (auth.jwt() ->> 'is_anonymous')::boolean) is false",  # the round's file
    "(select auth.jwt()) ->> 'is_anonymous' = 'false'",
    "not coalesce(((select auth.jwt()) ->> 'is_anonymous')::boolean, false)",
    "((select auth.jwt()) ->> 'is_anonymous')::boolean is distinct from true",
    "(select auth.jwt()) -> 'is_anonymous' = 'false'::jsonb",
    "(select auth.jwt()) ->> 'iss' is not null",
    "(select auth.jwt()) ? 'sub'",
    "((select auth.jwt()) ->> 'exp')::bigint > 0",
    "(select auth.jwt()) ->> 'role' <> 'anon'",
    "(select auth.role()) is not distinct from 'authenticated'",
    "current_user <> 'anon'",
    "(select auth.jwt()) ->> 'role' ~ 'authenticated'",
    "(select auth.jwt()) ->> 'aud' like 'auth%'",
    "(select auth.uid())::text <> ''",
    "(select auth.uid()) = (select auth.uid())",
    "length((select auth.jwt()) ->> 'sub') = 36",
    "(select auth.jwt()) -> 'app_metadata' ->> 'provider' is not null",
    "coalesce((select auth.jwt()) ->> 'aal', 'aal1') = any (array['aal1', 'aal2'])",
    "(select auth.jwt()) ->> 'aal' = 'aal1' or (select auth.jwt()) ->> 'aal' = 'aal2'",
])
def test_e02_a_test_every_signed_in_user_passes_admits_everyone(branch):
    assert _fired(_select_policy(f"{_MEMBER} or {branch}")) == {"BP079"}


def test_e02_fixed_the_anonymous_test_as_a_restrictive_policy():
    fixed = _select_policy(_MEMBER) + """
create policy documents_no_guests on public.documents as restrictive for select to authenticated
  using ((select (auth.jwt() ->> 'is_anonymous')::boolean) is false);
"""
    assert _fired(fixed) == set()


@pytest.mark.parametrize("branch", [
    "(select (auth.jwt() ->> 'is_anonymous')::boolean) is true",  # guests only: ordinary users fail it
    "(select auth.jwt()) ->> 'aal' = 'aal2'",  # a step-up requirement
    "(select auth.jwt()) ->> 'email' like '%@staff.example'",
    "(select auth.uid()) = '00000000-0000-0000-0000-000000000001'",
    "(select auth.jwt()) ? 'org_id'",  # a custom claim: nothing known of it
    "(select auth.jwt()) ->> 'role' in ('anon', 'service_role')",
    "(select auth.jwt()) ?& array['sub', 'staff']",
])
def test_e02_a_narrow_test_of_the_token_is_no_every_caller_test(branch):
    assert "BP079" not in _fired(_select_policy(f"{_MEMBER} or {branch}"))


def test_e02_mfa_gating_beside_the_membership_check_is_clean():
    assert _fired(_select_policy(f"{_MEMBER} and (select auth.jwt()) ->> 'aal' = 'aal2'")) == set()


def test_e02_a_signed_in_test_on_a_policy_for_anon_too_is_no_every_caller_test():
    # the anon key's token carries no subject: the test keeps anon out
    assert "BP079" not in _fired(_select_policy(f"{_MEMBER} or (select auth.jwt()) ? 'sub'", to="public"))
    assert "BP079" in _fired(_select_policy(f"{_MEMBER} or (select auth.jwt()) ->> 'role' in ('anon', "
                                            "'authenticated')", to="public"))
