"""The audit reads the tenant key off any project's SQL, and a membership check must tie the row to the caller.

Two gaps an audit of hand-written SQL had: a project keyed by `account_id` (Basejump) or `team_id` got no tenancy
rule at all, and a policy that merely mentioned the membership table counted as checking membership.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from blueprint_mcp.audit import audit_sql
from blueprint_mcp.audit.parse import read_sql
from blueprint_mcp.audit.rules.binding import loose_membership_reads
from blueprint_mcp.audit.rules.common import (clear_facts, membership_functions, membership_tables,
                                                membership_views)
from blueprint_mcp.model.tenant_keys import tenant_key_name
from blueprint_mcp.templates import load_template, template_names
from blueprint_mcp.tools import migration_files

BASEJUMP = """
create schema basejump;
create table basejump.accounts (id uuid primary key default gen_random_uuid(), name text not null);
create table basejump.account_user (
  user_id uuid not null references auth.users (id) on delete cascade,
  account_id uuid not null references basejump.accounts (id) on delete cascade,
  account_role text not null,
  primary key (user_id, account_id)
);
create function basejump.has_role_on_account(account_id uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (select 1 from basejump.account_user wu
                  where wu.user_id = auth.uid() and wu.account_id = has_role_on_account.account_id)
$$;
create table public.notes (
  id uuid primary key default gen_random_uuid(),
  account_id uuid references basejump.accounts (id),
  body text not null
);
alter table public.notes enable row level security;
grant select, insert, update, delete on public.notes to authenticated;
"""


def rules_of(sql: str) -> list[tuple[str, str | None]]:
    return sorted((f.rule_id, f.object) for f in audit_sql([("m.sql", sql)]))


def test_a_basejump_project_is_keyed_by_account_id_and_gets_the_tenancy_rules():
    found = rules_of(BASEJUMP + """
create policy notes_all on public.notes for select to authenticated
  using (exists (select 1 from basejump.account_user au where au.user_id = (select auth.uid())));
create policy notes_update on public.notes for update to authenticated
  using (basejump.has_role_on_account(account_id)) with check (basejump.has_role_on_account(account_id));
""")
    assert ("BP001", "public.notes") in found  # account_id is nullable
    assert ("BP002", "public.notes") in found  # and unindexed
    assert ("BP030", "public.notes") in found  # and clients may move a note to another account
    assert ("BP050", "public.notes.notes_all") in found  # any member of any account reads every note
    assert ("BP050", "public.notes.notes_update") not in found  # the helper is called with the row's key


def test_the_tenant_key_is_organization_id_where_the_sql_uses_it_else_the_membership_tables_column():
    def key(sql: str) -> str | None:
        return tenant_key_name(read_sql([("m.sql", sql)]).schema.tables)

    assert key(BASEJUMP) == "account_id"
    assert key(BASEJUMP + "create table public.x (id int, organization_id uuid);") == "organization_id"
    teams = """
create table public.teams (id uuid primary key);
create table public.team_members (team_id uuid references public.teams, user_id uuid, role text);
create table public.projects (id uuid primary key, team_id uuid references public.teams);
create table public.project_members (project_id uuid references public.projects, user_id uuid, role text,
                                     primary key (project_id, user_id));
create table public.tasks (id uuid primary key, team_id uuid, project_id uuid references public.projects);
"""
    # project_members is a membership inside a team: fewer tables carry project_id than team_id
    assert key(teams) == "team_id"
    profiles = """
create table public.profiles (id uuid primary key references auth.users (id));
create table public.workspaces (id uuid primary key);
create table public.workspace_members (workspace_id uuid references public.workspaces,
                                       profile_id uuid references public.profiles, role text,
                                       primary key (workspace_id, profile_id));
create table public.pages (id uuid primary key, workspace_id uuid references public.workspaces);
"""
    assert key(profiles) == "workspace_id"  # memberships keyed by profile_id, not user_id
    assert key("create table public.t (id int, user_id uuid);") is None


ORGS = """
create table public.organizations (id uuid primary key);
create table public.organization_members (
  id uuid primary key, organization_id uuid not null references public.organizations (id),
  user_id uuid not null, role text not null, unique (organization_id, user_id));
create table public.projects (id uuid primary key, organization_id uuid not null);
create table public.tasks (id uuid primary key, organization_id uuid not null, project_id uuid, created_by uuid);
create schema private;
create function private.ids(r text) returns setof uuid language sql stable security definer set search_path = ''
  as $$ select organization_id from public.organization_members where user_id = auth.uid() $$;
create function private.is_member(o uuid) returns boolean language sql stable security definer
  set search_path = '' as $$ select exists (select 1 from public.organization_members
                                             where user_id = auth.uid() and organization_id = o) $$;
create function private.any_member() returns boolean language sql stable security definer set search_path = ''
  as $$ select exists (select 1 from public.organization_members where user_id = auth.uid()) $$;
create view private.my_memberships with (security_barrier = true) as
  select m.organization_id, m.role from public.organization_members m where m.user_id = (select auth.uid());
create view private.all_memberships as select m.organization_id, m.role from public.organization_members m;
create view private.seen_memberships with (security_invoker = true) as
  select m.organization_id from public.organization_members m;
"""

CASES = {
    "the generated form": ("organization_id = any (array(select private.ids('viewer')))", []),
    "an init plan around it": ("organization_id = any ((select array(select private.ids('viewer')))::uuid[])", []),
    "in a helper": ("organization_id in (select private.ids('viewer'))", []),
    "a helper given the key": ("private.is_member(organization_id)", []),
    "a helper given nothing": ("private.any_member()", ["row"]),
    "exists, uncorrelated": ("exists (select 1 from public.organization_members au "
                             "where au.user_id = (select auth.uid()))", ["row"]),
    "exists, the bare name is the member row's": (
        "exists (select 1 from public.organization_members m "
        "where m.organization_id = organization_id and m.user_id = auth.uid())", ["row"]),
    "exists, qualified": ("exists (select 1 from public.organization_members m "
                          "where m.organization_id = tasks.organization_id and m.user_id = auth.uid())", []),
    "everyone's memberships": ("organization_id in (select organization_id from public.organization_members)",
                               ["caller"]),
    "the caller's memberships": ("organization_id in (select organization_id from public.organization_members "
                                 "where user_id = (select auth.uid()))", []),
    "the caller compared outside": ("(select auth.uid()) = any (array(select m.user_id from "
                                    "public.organization_members m where m.organization_id = tasks.organization_id))",
                                    []),
    "a count": ("(select count(*) from public.organization_members where user_id = auth.uid()) > 0", ["row"]),
    "through the parent": ("exists (select 1 from public.projects p where p.id = project_id and p.organization_id in "
                           "(select organization_id from public.organization_members where user_id = auth.uid()))",
                           []),
    "through the parent, loose inside": (
        "exists (select 1 from public.projects p where p.id = project_id and exists "
        "(select 1 from public.organization_members m where m.user_id = auth.uid()))", ["row"]),
    # Views read past the membership table's RLS with their owner's rights: only a filter of their own (or the
    # invoker's rights over a table with RLS) keeps them to the caller's memberships.
    "the caller's memberships, through a view": (
        "organization_id = any (array(select v.organization_id from private.my_memberships v))", []),
    "a view, uncorrelated": ("exists (select 1 from private.my_memberships)", ["row"]),
    "everyone's memberships, through a view": (
        "organization_id in (select v.organization_id from private.all_memberships v)", ["caller"]),
    "everyone's memberships, through an invoker's view": (
        "organization_id in (select v.organization_id from private.seen_memberships v)", ["caller"]),
    # A disjunction ties only what each of its branches ties: the second passes any member of any organisation.
    "exists, an OR past the row": ("exists (select 1 from public.organization_members m "
                                   "where m.organization_id = tasks.organization_id and m.role = 'admin' "
                                   "or m.user_id = auth.uid())", ["row"]),
    "exists, the OR inside": ("exists (select 1 from public.organization_members m "
                              "where m.organization_id = tasks.organization_id and m.user_id = auth.uid() "
                              "and (m.role = 'owner' or m.role = 'admin'))", []),
    "the owner or a member": ("created_by = auth.uid() or organization_id = any (array(select private.ids('viewer')))",
                              []),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_membership_read_is_tied_to_the_row_and_the_caller(name):
    expr, expected = CASES[name]
    clear_facts()
    s = read_sql([("m.sql", ORGS + f"create policy p on public.tasks for select to authenticated using ({expr});")]).schema
    tree = s.table("tasks").policies[0].using_tree
    assert loose_membership_reads(s, tree, membership_tables(s), membership_functions(s), "public",
                                  membership_views(s)) == expected
    clear_facts()


def test_no_template_reads_memberships_untied():
    for name in template_names():
        files = migration_files(load_template(name), datetime(2025, 1, 1))
        sql = [(p, files[p]) for p in sorted(files) if p.startswith("supabase/migrations/")]
        assert [f for f in audit_sql(sql) if f.rule_id == "BP050"] == [], name


@pytest.mark.parametrize("view, recursion", [("seen_memberships", True), ("my_memberships", False)])
def test_a_membership_policy_recurses_through_an_invokers_view_and_not_through_an_owners(view, recursion):
    """PostgreSQL applies the membership table's policies to a view that runs with the invoker's rights, inside
    the policy itself ("infinite recursion detected"); a view with its owner's rights reads past them."""
    sql = ORGS + ("alter table public.organization_members enable row level security;\n"
                  "create policy members_select on public.organization_members for select to authenticated\n"
                  f"  using (organization_id in (select v.organization_id from private.{view} v));")
    found = [f.object for f in audit_sql([("m.sql", sql)]) if f.rule_id == "BP028"]
    assert found == (["public.organization_members.members_select"] if recursion else [])


# --- the audit's reading and verify's agree, on PostgreSQL ------------------------------------------------

SERVED = ORGS + """
alter table public.organization_members add foreign key (user_id) references auth.users (id) on delete cascade;
alter table public.organization_members enable row level security;
alter table public.projects add foreign key (organization_id) references public.organizations (id) on delete cascade;
alter table public.tasks add foreign key (organization_id) references public.organizations (id) on delete cascade;
alter table public.tasks add foreign key (project_id) references public.projects (id) on delete cascade;
alter table public.projects enable row level security;
alter table public.tasks enable row level security;
revoke all on public.organizations, public.organization_members, public.projects, public.tasks
  from anon, authenticated;
grant usage on schema private to authenticated;
grant select on public.organization_members, public.projects, public.tasks to authenticated;
grant select on private.my_memberships, private.all_memberships, private.seen_memberships to authenticated;
create policy own_memberships on public.organization_members for select to authenticated
  using (user_id = (select auth.uid()) or organization_id = any (array(select private.ids('viewer'))));
create policy projects_select on public.projects for select to authenticated
  using (organization_id = any (array(select private.ids('viewer'))));
"""


@pytest.mark.postgres
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_read_the_audit_calls_loose_leaks_in_verify_and_one_it_calls_tied_does_not(name, empty_db_url):
    """Two readings of one policy: the audit's (BP050, from the parse tree) and verify's (the generic matrix run on
    PostgreSQL). A read the audit lets pass must not leak, and one it reports must leak."""
    from blueprint_mcp.verify.run import verify

    expr, expected = CASES[name]
    sql = SERVED + f"create policy tasks_select on public.tasks for select to authenticated using ({expr});"
    audited = [f.rule_id for f in audit_sql([("m.sql", sql)]) if f.object == "public.tasks.tasks_select"]
    report = verify(source="m.sql", migrations=[sql], database_url=empty_db_url)
    leaked = {(c.table, c.command) for c in report.failures if c.verdict == "LEAK"}
    assert not report.fixture_failures, report.fixture_failures
    assert ("BP050" in audited) == (("tasks", "select") in leaked), (audited, leaked)
    # Here the membership table and the parent have RLS of their own: a read of everyone's memberships sees the
    # caller's, and a loose read under the parent is decided by the parent's policy. Elsewhere, as expected.
    covered = name in ("everyone's memberships", "through the parent, loose inside",
                       "everyone's memberships, through an invoker's view")
    assert ("BP050" in audited) == (bool(expected) and not covered)


def test_the_generic_matrix_takes_the_membership_that_holds_a_role_over_a_shops_customers():
    """e-commerce's customers (organization_id, user_id, unique together) are shaped like a membership and come
    first by name, as introspection lists tables; generic verify took them for the memberships and reported a
    leak and two errors on the generated project. The membership is the table that holds a role."""
    from blueprint_mcp.model.tenant_keys import membership_links, membership_table
    from blueprint_mcp.sql.design import build_schema
    from blueprint_mcp.templates import load_template

    tables = sorted(build_schema(load_template("e-commerce")).tables, key=lambda t: (t.schema_name, t.name))
    assert [t.name for t, _ in membership_links(tables)][:3] == ["membership_changes", "customers",
                                                                 "organization_members"]
    # private.membership_changes (past memberships: when each member left or was demoted) holds a role as well.
    assert membership_table(tables, "organization_id").name == "organization_members"


# --- the helpers policies call: the audit reads their bodies, verify runs them ---------------------------------

HELPERS = {
    # name: (the helper's body as an SQL function of no argument returning the caller's organisation ids, or of
    # one (`o uuid`) answering for one organisation; the rule the audit reports, None = none)
    "pinned": ("select m.organization_id from public.organization_members m where m.user_id = (select auth.uid())",
               None),
    "through a join": ("select m.organization_id from public.organization_members m join auth.users u "
                       "on u.id = m.user_id where u.id = (select auth.uid())", None),
    "a join that never meets the membership": (
        "select m.organization_id from public.organization_members m join auth.users u on u.id = (select auth.uid())",
        "BP054"),
    "the column compared with itself": (
        "select m.organization_id from public.organization_members m where m.user_id = m.user_id", "BP054"),
    "an OR past the caller": ("select m.organization_id from public.organization_members m "
                              "where m.user_id = (select auth.uid()) or m.role = 'member'", "BP054"),
    "a parameter the column hides": ("(organization_id uuid) select exists (select 1 from public.organization_members"
                                     " m where m.organization_id = organization_id and m.user_id = auth.uid())",
                                     "BP055"),
    "a parameter qualified": ("(organization_id uuid) select exists (select 1 from public.organization_members m "
                              "where m.organization_id = helper.organization_id and m.user_id = auth.uid())", None),
}


def _helper_sql(name: str) -> str:
    body, _ = HELPERS[name]
    if body.startswith("("):
        args, body = body[1:].split(") ", 1)
        return (f"create function private.helper({args}) returns boolean language sql stable security definer "
                f"set search_path = '' as $$ {body} $$;\ngrant execute on function private.helper(uuid) to "
                "authenticated;\ncreate policy tasks_select on public.tasks for select to authenticated "
                "using (private.helper(organization_id));")
    return (f"create function private.helper() returns setof uuid language sql stable security definer "
            f"set search_path = '' as $$ {body} $$;\ngrant execute on function private.helper() to authenticated;\n"
            "create policy tasks_select on public.tasks for select to authenticated "
            "using (organization_id = any (array(select private.helper())));")


@pytest.mark.parametrize("name", sorted(HELPERS))
def test_the_audit_reads_whom_a_policys_helper_answers_for(name):
    found = {f.rule_id for f in audit_sql([("m.sql", SERVED + _helper_sql(name))]) if f.object == "private.helper"}
    assert found == ({HELPERS[name][1]} if HELPERS[name][1] else set())


@pytest.mark.postgres
@pytest.mark.parametrize("name", ["a join that never meets the membership", "a parameter the column hides",
                                  "an OR past the caller", "through a join"])
def test_a_helper_the_audit_reports_leaks_in_verify_and_one_it_passes_does_not(name, empty_db_url):
    """The audit's reading of a helper's body (BP054, BP055) and verify's run of the same SQL on PostgreSQL."""
    from blueprint_mcp.verify.run import verify

    sql = SERVED + _helper_sql(name)
    report = verify(source="m.sql", migrations=[sql], database_url=empty_db_url)
    leaked = {(c.table, c.command) for c in report.failures if c.verdict == "LEAK"}
    assert not report.fixture_failures, report.fixture_failures
    assert (("tasks", "select") in leaked) == (HELPERS[name][1] is not None), leaked


@pytest.mark.postgres
@pytest.mark.parametrize("security, recursion", [("security invoker", True), ("security definer", False)])
def test_a_membership_policy_recurses_through_an_invokers_helper_and_not_through_a_definers(
        security, recursion, make_db):
    """A helper without SECURITY DEFINER reads the membership table under its policies, inside the policy that calls
    it: PostgreSQL runs out of stack (54001); BP028 saw only direct reads and views (audit-vs-verify probe)."""
    import psycopg

    sql = ORGS.replace("security definer set search_path", f"{security} set search_path") + (
        "alter table public.organization_members enable row level security;\n"
        "grant usage on schema private to authenticated;\n"
        "grant select on public.organization_members to authenticated;\n"
        "create policy members_select on public.organization_members for select to authenticated\n"
        "  using (organization_id = any (array(select private.ids('viewer'))));")
    found = [f.object for f in audit_sql([("m.sql", sql)]) if f.rule_id == "BP028"]
    assert found == (["public.organization_members.members_select"] if recursion else [])
    conn = make_db("explicit")
    conn.execute(sql)
    with conn.transaction():
        conn.execute("set local role authenticated")
        conn.execute("select set_config('request.jwt.claims', '{\"sub\": \"00000000-0000-4000-8000-000000000001\"}', "
                     "true)")
        try:
            conn.execute("select count(*) from public.organization_members").fetchone()
            failed = None
        except psycopg.Error as e:
            failed = e.sqlstate
    assert failed == ("54001" if recursion else None)


def test_the_audit_reads_a_helper_a_policys_helper_calls():
    """A policy calls private.has_role(o, r), which asks private.ids(r): the membership read that answers for everyone
    sits one call down (BP054 read only the functions a policy calls directly)."""
    sql = SERVED.replace("create policy projects_select", "-- ") + (
        "create function private.everyone(r text) returns setof uuid language sql stable security definer\n"
        "  set search_path = '' as $$ select m.organization_id from public.organization_members m where r <> '' $$;\n"
        "create function private.has_role(o uuid, r text) returns boolean language sql stable\n"
        "  set search_path = '' as $$ select o = any (array(select private.everyone(r))) $$;\n"
        "create policy tasks_select on public.tasks for select to authenticated\n"
        "  using (private.has_role(organization_id, 'viewer'));")
    found = [(f.rule_id, f.object) for f in audit_sql([("m.sql", sql)])
             if f.rule_id in ("BP054", "BP055") and f.object != "private.ids"]  # ORGS's ids() ignores its role
    assert found == [("BP054", "private.everyone")]
