"""Evasion round 17, items e02, e07 and e07b: each hole fires its rule and its fix does not; round 16's fp05 (a helper
over the role helper, tied to its argument) stays clean."""

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


# --- e07 / e07b: a helper over the role helper that does not tie it to its argument (BP027) -----------------------

def _can_read(params: str, body: str, language: str = "sql") -> str:
    return f"""
create function private.can_read({params}) returns boolean
language {language} stable security definer set search_path = '' as $$
{body}
$$;
revoke all on function private.can_read(uuid) from public, anon;
grant execute on function private.can_read(uuid) to authenticated;
""" + _select_policy("(select private.can_read(organization_id))")


def test_e07_parameter_shadowed_by_the_helper_column_compares_the_column_with_itself():
    sql = _can_read("org_id uuid", """  select exists (
    select 1 from private.organization_ids_with_role('viewer') as mine (org_id)
     where mine.org_id = org_id)""")
    assert _fired(sql) == {"BP027"}
    fixed = sql.replace("mine.org_id = org_id", "mine.org_id = can_read.org_id")
    assert _fired(fixed) == set()
    assert _fired(sql.replace("mine.org_id = org_id", "mine.org_id = $1")) == set()


def test_e07_a_one_column_function_takes_its_alias_as_column_name():
    # `from f() as mine` names the one column `mine`: `where mine = org_id` is tied, `where org_id = mine`
    # with the alias `org_id` is the column twice
    tied = _can_read("org_id uuid", """  select exists (
    select 1 from private.organization_ids_with_role('viewer') as mine where mine = org_id)""")
    assert _fired(tied) == set()
    shadowed = _can_read("org_id uuid", """  select exists (
    select 1 from private.organization_ids_with_role('viewer') as org_id where org_id = org_id)""")
    assert _fired(shadowed) == {"BP027"}


@pytest.mark.parametrize("body", [
    # e07b: "owners always": the owner of any organisation reads every organisation's documents
    "  select p_org = any (array(select private.organization_ids_with_role('viewer')))\n"
    "      or exists (select 1 from private.organization_ids_with_role('owner'))",
    "  select p_org is not null and exists (select 1 from private.organization_ids_with_role('viewer'))",
    "  select cardinality(array(select private.organization_ids_with_role('viewer'))) > 0 and p_org is not null",
    "  select p_org = any (array(select private.organization_ids_with_role('viewer'))) or p_org is not null",
])
def test_e07b_membership_not_tied_to_the_argument_in_every_branch(body):
    assert _fired(_can_read("p_org uuid", body)) == {"BP027"}


def test_e07b_fixed_owners_of_the_row_organisation():
    fixed = _can_read("p_org uuid", """  select p_org = any (array(select private.organization_ids_with_role('viewer')))
      or p_org = any (array(select private.organization_ids_with_role('owner')))""")
    assert _fired(fixed) == set()


@pytest.mark.parametrize("body", [
    # round 16 fp05, and the other ways of asking the role helper about the argument
    "  select p_org = any (array(select private.organization_ids_with_role('viewer')))",
    "  select p_org in (select private.organization_ids_with_role('viewer'))",
    "  select exists (select 1 from private.organization_ids_with_role('viewer') as ids (org_id) "
    "where ids.org_id = p_org)",
    "  select array[p_org] <@ array(select private.organization_ids_with_role('viewer'))",
])
def test_fp05_helper_tied_to_its_argument_stays_clean(body):
    assert _fired(_can_read("p_org uuid", body)) == set()


def test_e07_plpgsql_reads_a_clash_as_an_error_unless_the_variable_wins():
    body = """begin
  return exists (select 1 from private.organization_ids_with_role('viewer') as mine (org_id)
                  where mine.org_id = org_id);
end"""
    assert _fired(_can_read("org_id uuid", body, "plpgsql")) == {"BP027"}
    assert _fired(_can_read("org_id uuid", "#variable_conflict use_variable\n" + body, "plpgsql")) == set()
    assert _fired(_can_read("org_id uuid", "#variable_conflict use_column\n" + body, "plpgsql")) == {"BP027"}


def test_e07_branches_that_decide_by_other_row_facts_beside_a_tied_one_stay_clean():
    # a policy's own OR branches may publish rows or show a caller their own; the helper's may too
    sql = """
create function private.can_view(p_org uuid, p_public boolean, p_author uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select p_public or p_author = (select auth.uid())
      or p_org = any (array(select private.organization_ids_with_role('viewer'))) $$;
revoke all on function private.can_view(uuid, boolean, uuid) from public, anon;
grant execute on function private.can_view(uuid, boolean, uuid) to authenticated;
alter table public.documents add column is_public boolean not null default false,
  add column author_id uuid references auth.users (id);
""" + _select_policy("(select private.can_view(organization_id, is_public, author_id))")
    assert _fired(sql) == set()


def test_e07_a_helper_given_the_row_key_asks_about_the_row_found_by_it():
    helper = """
create function private.can_view_document(p_id uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (select 1 from public.documents d
                  where d.id = p_id
                    and d.organization_id = any (array(select private.organization_ids_with_role('viewer')))) $$;
revoke all on function private.can_view_document(uuid) from public, anon;
grant execute on function private.can_view_document(uuid) to authenticated;
""" + _select_policy("(select private.can_view_document(id))")
    assert _fired(helper) == set()
    # found by a column that is no key of the row: any document of the same title in one of the caller's
    # organisations opens this one
    loose = helper.replace("d.id = p_id", "d.title = p_id::text")
    assert _fired(loose) == {"BP027"}
