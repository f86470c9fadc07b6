"""Paths past a table's protection that verify's generic matrix does not try (BP056-BP058), on PostgreSQL.

verify seeds and attacks the exposed tables that carry the tenant key; these rules read what reaches past them: a
private table without RLS (or a private view running as its owner, or a materialized one) behind a view or
function with the caller's rights, a definer function, called through
one, that never asks who calls, and a child table (no tenant key) whose policy looks at a parent, not the row's. Each case runs as a member of one organisation asking for the other's rows: the audit reports
the SQL exactly when the rows come back.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from blueprint_mcp.audit import audit_sql
from blueprint_mcp.verify.pg import act_as

from pgutil import run_as

BASE = """
create schema private;
grant usage on schema private to authenticated;
create table public.organizations (id uuid primary key);
create table public.organization_members (
  organization_id uuid not null references public.organizations (id),
  user_id uuid not null references auth.users (id), role text not null, primary key (organization_id, user_id));
create index on public.organization_members (user_id);
create table public.projects (id uuid primary key, organization_id uuid not null references public.organizations (id),
                              name text not null);
create index on public.projects (organization_id);
create table private.project_secrets (id uuid primary key,
  organization_id uuid not null references public.organizations (id), api_key text not null);
create index on private.project_secrets (organization_id);
alter table public.organizations enable row level security;
alter table public.organization_members enable row level security;
alter table public.projects enable row level security;
create function private.org_ids() returns setof uuid language sql stable security definer set search_path = ''
  as $$ select m.organization_id from public.organization_members m where m.user_id = (select auth.uid()) $$;
revoke all on function private.org_ids() from public, anon;
grant execute on function private.org_ids() to authenticated;
create policy members_own on public.organization_members for select to authenticated
  using (user_id = (select auth.uid()));
create policy orgs_select on public.organizations for select to authenticated
  using (id = any (array(select private.org_ids())));
create policy projects_select on public.projects for select to authenticated
  using (organization_id = any (array(select private.org_ids())));
grant select on public.organizations, public.organization_members, public.projects to authenticated;
"""

# A definer function returning an organisation's projects to whoever passes its membership check.
ORG_PROJECTS = """create function private.org_projects(p_org uuid) returns setof public.projects language plpgsql stable
  security definer set search_path = '' as $$
begin
  if not exists (select 1 from public.organization_members m where m.organization_id = p_org
                 and {check}) then
    return;  -- nothing for an outsider
  end if;
  return query select * from public.projects where organization_id = p_org;
end $$;
revoke all on function private.org_projects(uuid) from public, anon;
grant execute on function private.org_projects(uuid) to authenticated;
create function public.org_projects(p_org uuid) returns setof public.projects language sql stable
  set search_path = '' as $$ select * from private.org_projects(p_org) $$;"""

# A definer function saving a project by the id the client sends (an offline-first editor makes its ids).
UPSERT = """create function public.save_project(p_org uuid, p_id uuid, p_name text) returns setof text
  language plpgsql security definer set search_path = '' as $$
begin
  if not (p_org = any (array(select private.org_ids()))) then return; end if;
  return query insert into public.projects (id, organization_id, name) values (p_id, p_org, p_name)
    on conflict (id) do update set name = excluded.name{tie} returning name;
end $$;
revoke all on function public.save_project(uuid, uuid, text) from public, anon;
grant execute on function public.save_project(uuid, uuid, text) to authenticated;
"""
# The same edit as a MERGE (PostgreSQL 15), returning the rows it changed.
MERGE = """create function public.apply_edit(p_org uuid, p_project uuid, p_name text) returns integer
  language plpgsql security definer set search_path = '' as $$
declare n integer;
begin
  if not (p_org = any (array(select private.org_ids()))) then return 0; end if;
  merge into public.projects p using (select p_project as id, p_name as name) e on p.id = e.id{tie}
  when matched then update set name = e.name;
  get diagnostics n = row_count;
  return n;
end $$;
revoke all on function public.apply_edit(uuid, uuid, text) from public, anon;
grant execute on function public.apply_edit(uuid, uuid, text) to authenticated;
"""

# A definer function serving the organisations picked in an org switcher, checked by overlap or containment.
OVERLAP = """create function public.projects_for_orgs(p_orgs uuid[]) returns setof public.projects language plpgsql
  stable security definer set search_path = '' as $$
begin
  if not (p_orgs {check} array(select private.org_ids())) then return; end if;
  return query select * from public.projects where organization_id = any (p_orgs);
end $$;
revoke all on function public.projects_for_orgs(uuid[]) from public, anon;
grant execute on function public.projects_for_orgs(uuid[]) to authenticated;
"""

DYNAMIC = """create function public.get_record(p_org uuid, p_table text, p_id uuid) returns jsonb language plpgsql
  stable security definer set search_path = '' as $$
declare result jsonb;
begin
  if p_table not in ('projects', 'organizations') then raise exception 'unknown entity %', p_table; end if;
  if not (p_org = any (array(select private.org_ids()))) then return null; end if;
  execute format('select to_jsonb(t) from public.%I t where t.id = $1{tie}', p_table) into result using p_id, p_org;
  return result;
end $$;
revoke all on function public.get_record(uuid, text, uuid) from public, anon;
grant execute on function public.get_record(uuid, text, uuid) to authenticated;
"""

# Server code reads and writes live projects through a view in the private schema, granted to nobody.
LIVE = """create view private.live_projects as select id, organization_id, name from public.projects;
create function public.rename_live(p_org uuid, p_project uuid, p_name text) returns setof text
  language plpgsql security definer set search_path = '' as $$
begin
  if not (p_org = any (array(select private.org_ids()))) then return; end if;
  return query update private.live_projects set name = p_name where id = p_project{tie} returning name;
end $$;
revoke all on function public.rename_live(uuid, uuid, text) from public, anon;
grant execute on function public.rename_live(uuid, uuid, text) to authenticated;
"""

# The project search: the organisation switcher may be on "all" (no organisation).
SEARCH = """create function public.search_projects(p_org uuid default null) returns setof text language plpgsql
  stable security definer set search_path = '' as $$
begin
  if {guard}not (p_org = any (array(select private.org_ids()))) then return; end if;
  return query select name from public.projects p where (p_org is null or p.organization_id = p_org);
end $$;
revoke all on function public.search_projects(uuid) from public, anon;
grant execute on function public.search_projects(uuid) to authenticated;
"""

CASES = {
    # name: (SQL added to BASE, the query a member of org1 runs for org2's rows, the rule the audit reports)
    "an invoker's view over a private table without RLS": (
        "grant select on private.project_secrets to authenticated;\n"
        "create view public.secrets with (security_invoker = true) as\n"
        "  select id, organization_id, api_key from private.project_secrets;\n"
        "grant select on public.secrets to authenticated;",
        "select count(*) from public.secrets where organization_id = '{org2}'", "BP056"),
    "an invoker's function over a private table without RLS": (
        "grant select on private.project_secrets to authenticated;\n"
        "create function public.secrets_of(org uuid) returns setof text language sql stable set search_path = ''\n"
        "  as $$ select api_key from private.project_secrets where organization_id = org $$;",
        "select count(*) from public.secrets_of('{org2}')", "BP056"),
    "the private table with RLS": (
        "grant select on private.project_secrets to authenticated;\n"
        "alter table private.project_secrets enable row level security;\n"
        "create policy secrets_select on private.project_secrets for select to authenticated\n"
        "  using (organization_id = any (array(select private.org_ids())));\n"
        "create view public.secrets with (security_invoker = true) as\n"
        "  select id, organization_id, api_key from private.project_secrets;\n"
        "grant select on public.secrets to authenticated;",
        "select count(*) from public.secrets where organization_id = '{org2}'", None),
    "an invoker's view over a private view running as its owner": (
        "create view private.project_directory as select id, organization_id, name from public.projects;\n"
        "grant select on private.project_directory to authenticated;\n"
        "create view public.project_directory with (security_invoker = true) as\n"
        "  select * from private.project_directory;\n"
        "grant select on public.project_directory to authenticated;",
        "select count(*) from public.project_directory where organization_id = '{org2}'", "BP056"),
    "an invoker's view over a private materialized view": (
        "create materialized view private.project_counts as select organization_id, count(*) as n\n"
        "  from public.projects group by organization_id;\n"
        "grant select on private.project_counts to authenticated;\n"
        "create view public.project_counts with (security_invoker = true) as select * from private.project_counts;\n"
        "grant select on public.project_counts to authenticated;",
        "select count(*) from public.project_counts where organization_id = '{org2}'", "BP056"),
    "an invoker's view over a private view with the caller's rights": (
        "create view private.project_directory with (security_invoker = true) as\n"
        "  select id, organization_id, name from public.projects;\n"
        "grant select on private.project_directory to authenticated;\n"
        "create view public.project_directory with (security_invoker = true) as\n"
        "  select * from private.project_directory;\n"
        "grant select on public.project_directory to authenticated;",
        "select count(*) from public.project_directory where organization_id = '{org2}'", None),
    "a definer function behind an invoker's function": (
        "create function private.projects_of(org uuid) returns setof public.projects language sql stable\n"
        "  security definer set search_path = '' as $$ select * from public.projects where organization_id = org $$;\n"
        "revoke all on function private.projects_of(uuid) from public, anon;\n"
        "grant execute on function private.projects_of(uuid) to authenticated;\n"
        "create function public.org_projects(org uuid) returns setof public.projects language sql stable\n"
        "  set search_path = '' as $$ select * from private.projects_of(org) $$;",
        "select count(*) from public.org_projects('{org2}')", "BP057"),
    "a definer function renaming a project of any organisation through a private view": (
        LIVE.format(tie=""), "select count(*) from public.rename_live('{org1}', '{p2}', 'taken')", "BP073"),
    "a definer function renaming through a private view a project of the organisation it checks": (
        LIVE.format(tie=" and organization_id = p_org"),
        "select count(*) from public.rename_live('{org1}', '{p2}', 'taken')", None),
    "a definer function whose optional organisation filter lets a null through": (
        SEARCH.format(guard=""), "select count(*) from public.search_projects() n where n = 'p2'", "BP073"),
    "a definer function refusing a null organisation before its optional filter": (
        SEARCH.format(guard="p_org is null or "),
        "select count(*) from public.search_projects() n where n = 'p2'", None),
    "a definer function two invoker calls away from the API": (
        "create function private.all_projects() returns setof public.projects language sql stable\n"
        "  security definer set search_path = '' as $$ select * from public.projects $$;\n"
        "revoke all on function private.all_projects() from public, anon;\n"
        "grant execute on function private.all_projects() to authenticated;\n"
        "create function private.project_section() returns setof public.projects language sql stable\n"
        "  set search_path = '' as $$ select * from private.all_projects() $$;\n"
        "revoke all on function private.project_section() from public, anon;\n"
        "grant execute on function private.project_section() to authenticated;\n"
        "create function public.dashboard() returns setof public.projects language sql stable\n"
        "  set search_path = '' as $$ select * from private.project_section() $$;",
        "select count(*) from public.dashboard() p where p.organization_id = '{org2}'", "BP057"),
    "a definer function behind an invoker's view": (
        "create function private.all_projects() returns setof public.projects language sql stable\n"
        "  security definer set search_path = '' as $$ select * from public.projects $$;\n"
        "revoke all on function private.all_projects() from public, anon;\n"
        "grant execute on function private.all_projects() to authenticated;\n"
        "create view public.project_list with (security_invoker = true) as\n"
        "  select id, organization_id, name from private.all_projects();\n"
        "grant select on public.project_list to authenticated;",
        "select count(*) from public.project_list where organization_id = '{org2}'", "BP057"),
    "a child table's policy looking at the parent, not the row's": (
        "create table public.tasks (id uuid primary key, project_id uuid not null references public.projects (id),\n"
        "  title text not null);\ncreate index on public.tasks (project_id);\n"
        "alter table public.tasks enable row level security;\ngrant select on public.tasks to authenticated;\n"
        "create policy tasks_select on public.tasks for select to authenticated using (exists (\n"
        "  select 1 from public.projects p where p.organization_id = any (array(select private.org_ids()))));",
        "select count(*) from public.tasks where title = 't2'", "BP058"),
    "a child table's policy looking at the row's parent": (
        "create table public.tasks (id uuid primary key, project_id uuid not null references public.projects (id),\n"
        "  title text not null);\ncreate index on public.tasks (project_id);\n"
        "alter table public.tasks enable row level security;\ngrant select on public.tasks to authenticated;\n"
        "create policy tasks_select on public.tasks for select to authenticated using (exists (\n"
        "  select 1 from public.projects p where p.id = tasks.project_id\n"
        "  and p.organization_id = any (array(select private.org_ids()))));",
        "select count(*) from public.tasks where title = 't2'", None),
    "a definer function that only asks whether someone is signed in": (
        "create function public.project_by_id(p_id uuid) returns setof public.projects language sql stable\n"
        "  security definer set search_path = '' as $$\n"
        "  select * from public.projects where id = p_id and (select auth.uid()) is not null $$;\n"
        "revoke all on function public.project_by_id(uuid) from public, anon;\n"
        "grant execute on function public.project_by_id(uuid) to authenticated;",
        "select count(*) from public.project_by_id('{p2}')", "BP057"),
    "a definer function whose membership check an owner branch defeats": (
        ORG_PROJECTS.format(check="(m.user_id = auth.uid() or m.role = 'owner')"),
        "select count(*) from public.org_projects('{org2}')", "BP068"),
    "a definer function whose membership check keeps to the caller": (
        ORG_PROJECTS.format(check="m.user_id = auth.uid() and (m.role = 'owner' or m.role = 'member')"),
        "select count(*) from public.org_projects('{org2}')", None),
    "a definer function whose parameter a column hides": (
        "create function private.project_names(organization_id uuid) returns setof text language sql stable\n"
        "  security definer set search_path = '' as $$\n"
        "  select p.name from public.projects p where p.organization_id = organization_id\n"
        "  and project_names.organization_id = any (array(select private.org_ids())) $$;\n"
        "revoke all on function private.project_names(uuid) from public, anon;\n"
        "grant execute on function private.project_names(uuid) to authenticated;\n"
        "create function public.project_names(p_org uuid) returns setof text language sql stable\n"
        "  set search_path = '' as $$ select * from private.project_names(p_org) $$;",
        "select count(*) from public.project_names('{org1}') n where n = 'p2'", "BP069"),
    "a definer function that checks one organisation and renames a project of any": (
        "create function public.rename_project(p_org uuid, p_project uuid, p_name text) returns setof text\n"
        "  language plpgsql security definer set search_path = '' as $$\n"
        "begin\n"
        "  if not (p_org = any (array(select private.org_ids()))) then return; end if;\n"
        "  return query update public.projects set name = p_name where id = p_project returning name;\n"
        "end $$;\n"
        "revoke all on function public.rename_project(uuid, uuid, text) from public, anon;\n"
        "grant execute on function public.rename_project(uuid, uuid, text) to authenticated;",
        "select count(*) from public.rename_project('{org1}', '{p2}', 'taken')", "BP073"),
    "a definer function that renames a project of the organisation it checks": (
        "create function public.rename_project(p_org uuid, p_project uuid, p_name text) returns setof text\n"
        "  language plpgsql security definer set search_path = '' as $$\n"
        "begin\n"
        "  if not (p_org = any (array(select private.org_ids()))) then return; end if;\n"
        "  return query update public.projects set name = p_name where id = p_project and organization_id = p_org\n"
        "    returning name;\n"
        "end $$;\n"
        "revoke all on function public.rename_project(uuid, uuid, text) from public, anon;\n"
        "grant execute on function public.rename_project(uuid, uuid, text) to authenticated;",
        "select count(*) from public.rename_project('{org1}', '{p2}', 'taken')", None),
    "a definer function upserting by the client's id over another organisation's project": (
        UPSERT.format(tie=""), "select count(*) from public.save_project('{org1}', '{p2}', 'taken')", "BP073"),
    "a definer function upserting by the client's id within the organisation it checks": (
        UPSERT.format(tie=" where projects.organization_id = excluded.organization_id"),
        "select count(*) from public.save_project('{org1}', '{p2}', 'taken')", None),
    "a definer function merging on the argument": (
        MERGE.format(tie=""),
        "select count(*) from public.apply_edit('{org1}', '{p2}', 'taken') n where n > 0", "BP073"),
    "a definer function merging within the organisation it checks": (
        MERGE.format(tie=" and p.organization_id = p_org"),
        "select count(*) from public.apply_edit('{org1}', '{p2}', 'taken') n where n > 0", None),
    "a definer function deleting each id of an array argument": (
        "create function public.delete_projects(p_org uuid, p_ids uuid[]) returns integer\n"
        "  language plpgsql security definer set search_path = '' as $$\n"
        "declare v_id uuid; n integer := 0; k integer;\n"
        "begin\n"
        "  if not (p_org = any (array(select private.org_ids()))) then return 0; end if;\n"
        "  foreach v_id in array p_ids loop\n"
        "    delete from public.projects where id = v_id;\n"
        "    get diagnostics k = row_count; n := n + k;\n"
        "  end loop;\n"
        "  return n;\n"
        "end $$;\n"
        "revoke all on function public.delete_projects(uuid, uuid[]) from public, anon;\n"
        "grant execute on function public.delete_projects(uuid, uuid[]) to authenticated;",
        "select count(*) from public.delete_projects('{org1}', array['{p2}'::uuid]) n where n > 0", "BP073"),
    "a definer function whose admin check tests the membership's organisation, not the row's": (
        "create function public.delete_project(p_org uuid, p_project uuid) returns integer\n"
        "  language plpgsql security definer set search_path = '' as $$\n"
        "declare n integer;\n"
        "begin\n"
        "  delete from public.projects p where p.id = p_project and exists (select 1 from\n"
        "    public.organization_members m where m.organization_id = p_org and m.user_id = (select auth.uid()));\n"
        "  get diagnostics n = row_count;\n"
        "  return n;\n"
        "end $$;\n"
        "revoke all on function public.delete_project(uuid, uuid) from public, anon;\n"
        "grant execute on function public.delete_project(uuid, uuid) to authenticated;",
        "select count(*) from public.delete_project('{org1}', '{p2}') n where n > 0", "BP073"),
    "a definer function that reads a project's organisation and checks the caller there first": (
        "create function public.retitle_project(p_project uuid, p_name text) returns integer\n"
        "  language plpgsql security definer set search_path = '' as $$\n"
        "declare v_org uuid; n integer;\n"
        "begin\n"
        "  select organization_id into v_org from public.projects where id = p_project;\n"
        "  if v_org is null or not (v_org = any (array(select private.org_ids()))) then return 0; end if;\n"
        "  update public.projects set name = p_name where id = p_project;\n"
        "  get diagnostics n = row_count;\n"
        "  return n;\n"
        "end $$;\n"
        "revoke all on function public.retitle_project(uuid, text) from public, anon;\n"
        "grant execute on function public.retitle_project(uuid, text) to authenticated;",
        "select count(*) from public.retitle_project('{p2}', 'taken') n where n > 0", None),
    "a definer function reading a row by the client's id through EXECUTE ... USING": (
        DYNAMIC.format(tie=""),
        "select count(*) from public.get_record('{org1}', 'projects', '{p2}') r where r is not null", "BP073"),
    "a definer function reading through EXECUTE a row of the organisation it checks": (
        DYNAMIC.format(tie=" and t.organization_id = $2"),
        "select count(*) from public.get_record('{org1}', 'projects', '{p2}') r where r is not null", None),
    "a definer function checking that the caller belongs to one of the organisations passed": (
        OVERLAP.format(check="&&"),
        "select count(*) from public.projects_for_orgs(array['{org1}', '{org2}']::uuid[]) p "
        "where p.organization_id = '{org2}'", "BP074"),
    "a definer function checking that the caller belongs to each organisation passed": (
        OVERLAP.format(check="<@"),
        "select count(*) from public.projects_for_orgs(array['{org1}', '{org2}']::uuid[]) p "
        "where p.organization_id = '{org2}'", None),
    "a definer function that checks the caller": (
        "create function private.projects_of(org uuid) returns setof public.projects language sql stable\n"
        "  security definer set search_path = '' as $$ select * from public.projects\n"
        "  where organization_id = org and org = any (array(select private.org_ids())) $$;\n"
        "revoke all on function private.projects_of(uuid) from public, anon;\n"
        "grant execute on function private.projects_of(uuid) to authenticated;\n"
        "create function public.org_projects(org uuid) returns setof public.projects language sql stable\n"
        "  set search_path = '' as $$ select * from private.projects_of(org) $$;",
        "select count(*) from public.org_projects('{org2}')", None),
}

ORG1, ORG2 = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"
USER = "00000000-0000-4000-8000-0000000000aa"
OWNER2 = "00000000-0000-4000-8000-0000000000bb"  # org2's owner: the other organisation has members too
P1, P2 = "00000000-0000-4000-8000-0000000000b1", "00000000-0000-4000-8000-0000000000b2"


REACH_RULES = ("BP056", "BP057", "BP058", "BP068", "BP069", "BP073", "BP074")


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_audit_reports_a_path_past_protection_exactly_where_one_exists(name):
    extra, _, rule_id = CASES[name]
    found = {f.rule_id for f in audit_sql([("m.sql", BASE + extra)]) if f.rule_id in REACH_RULES}
    assert found == ({rule_id} if rule_id else set())


@pytest.mark.postgres
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_path_the_audit_reports_returns_another_organisations_rows(make_db, name):
    extra, query, rule_id = CASES[name]
    conn = make_db("explicit")
    conn.execute(BASE + extra)
    conn.execute(f"""
insert into auth.users (id, email) values ('{USER}', 'a@example.com'), ('{OWNER2}', 'b@example.com');
insert into public.organizations values ('{ORG1}'), ('{ORG2}');
insert into public.organization_members values ('{ORG1}', '{USER}', 'member'), ('{ORG2}', '{OWNER2}', 'owner');
insert into public.projects values ('{P1}', '{ORG1}', 'p1'), ('{P2}', '{ORG2}', 'p2');
insert into private.project_secrets values (gen_random_uuid(), '{ORG1}', 'k1'), (gen_random_uuid(), '{ORG2}', 'k2');
""")
    if "materialized view" in extra:  # filled as a scheduled refresh would
        conn.execute("refresh materialized view private.project_counts")
    if "create table public.tasks" in extra:  # a task under each organisation's project
        conn.execute(f"insert into public.tasks values (gen_random_uuid(), '{P1}', 't1'), "
                     f"(gen_random_uuid(), '{P2}', 't2')")
    seen = as_member(conn, query.format(org1=ORG1, org2=ORG2, p2=P2))[0][0]
    assert (seen > 0) == (rule_id is not None), seen


def as_member(conn, sql: str) -> list[tuple]:
    """Run one statement as the member of org1, through the API role, in its own transaction."""
    return run_as(conn, "authenticated", USER, sql)


def as_member_refused(conn, sql: str, refusal: str) -> None:
    """Run one statement as the member of org1; a guarded variant may refuse it with `refusal` (a RAISE)."""
    try:
        as_member(conn, sql)
    except psycopg.errors.RaiseException as exc:
        assert refusal in str(exc), exc


def applied(make_db, sql: str, rule_id: str):
    """A database with `sql` applied, org1 and org2, and the user a member of org1; whether the audit reports
    `rule_id` on the same SQL."""
    reported = any(f.rule_id == rule_id for f in audit_sql([("m.sql", sql)]))
    conn = make_db("explicit")
    conn.execute(sql)
    conn.execute(f"""
insert into auth.users (id, email) values ('{USER}', 'a@example.com');
insert into public.organizations values ('{ORG1}'), ('{ORG2}');
insert into public.organization_members values ('{ORG1}', '{USER}', 'member');
""")
    return conn, reported


ADD_TEAMMATE = """
create function public.add_teammate(p_org uuid, p_user uuid, p_role text) returns void
language plpgsql security definer set search_path = '' as $$
begin
  if not (p_org = any (array(select private.org_ids()))) then
    raise exception 'only members add teammates';
  end if;
  {guard}
  insert into public.organization_members (organization_id, user_id, role) values (p_org, p_user, p_role)
  on conflict (organization_id, user_id) do update set role = excluded.role;
end $$;
revoke all on function public.add_teammate(uuid, uuid, text) from public, anon;
grant execute on function public.add_teammate(uuid, uuid, text) to authenticated;
"""
# The caller's role caps the one given (members give member at most).
CAPPED = ("if p_role not in ('member') then raise exception 'members give the member role only'; end if;")


@pytest.mark.postgres
@pytest.mark.parametrize("guard", ["", CAPPED], ids=["uncapped", "capped"])
def test_a_role_a_definer_function_writes_unchecked_is_reported_exactly_where_a_member_becomes_owner(make_db, guard):
    conn, reported = applied(make_db, BASE + ADD_TEAMMATE.format(guard=guard), "BP070")
    as_member_refused(conn, f"select public.add_teammate('{ORG1}', '{USER}', 'owner')", "member role only")
    role = conn.execute(f"select role from public.organization_members where user_id = '{USER}'").fetchone()[0]
    assert reported == (role == "owner") == (guard == ""), (reported, role)


# Transfer requests any member files for their own organisation; a definer trigger applies them.
REQUESTS = """
create table public.project_transfers (id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id), project_id uuid not null);
create index on public.project_transfers (organization_id);
alter table public.project_transfers enable row level security;
grant insert (organization_id, project_id) on public.project_transfers to authenticated;
create policy transfers_insert on public.project_transfers for insert to authenticated
  with check (organization_id = any (array(select private.org_ids())));
"""
TRANSFERS = REQUESTS + """
create function private.apply_transfer() returns trigger language plpgsql security definer set search_path = '' as $$
begin
  update public.projects set organization_id = new.organization_id where id = new.project_id {tie};
  return new;
end $$;
create trigger transfers_apply after insert on public.project_transfers
  for each row execute function private.apply_transfer();
"""
# The same transfer as a batch: a statement trigger reads the requests from its transition table.
BATCH = REQUESTS + """
create function private.apply_transfers() returns trigger language plpgsql security definer set search_path = '' as $$
begin
  update public.projects p set organization_id = t.organization_id from added t where p.id = t.project_id {tie};
  return null;
end $$;
create trigger transfers_apply after insert on public.project_transfers
  referencing new table as added for each statement execute function private.apply_transfers();
"""
# The same transfer through an invoker trigger handing the row's columns to a definer helper.
HELPER = REQUESTS + """
create function private.move_project(p_project uuid, p_organization uuid) returns void language sql
  security definer set search_path = '' as $$
  update public.projects set organization_id = p_organization where id = p_project {tie} $$;
grant execute on function private.move_project(uuid, uuid) to authenticated;
create function private.apply_transfer() returns trigger language plpgsql set search_path = '' as $$
begin
  perform private.move_project(new.project_id, new.organization_id);
  return new;
end $$;
create trigger transfers_apply after insert on public.project_transfers
  for each row execute function private.apply_transfer();
"""
# The project must already be the caller's: one of their organisations.
TIED = "and organization_id = any (array(select private.org_ids()))"

# Time entries keep their project's name for the export, computed by a definer lookup.
LABELS = """
create function private.project_label(p_project uuid, p_org uuid) returns text language sql immutable
  security definer set search_path = '' as $$
  select p.name from public.projects p where p.id = p_project {tie} $$;
create table public.time_entries (id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id), project_id uuid not null,
  label text generated always as (private.project_label(project_id, organization_id)) stored);
create index on public.time_entries (organization_id);
alter table public.time_entries enable row level security;
grant select, insert (organization_id, project_id) on public.time_entries to authenticated;
create policy entries_insert on public.time_entries for insert to authenticated
  with check (organization_id = any (array(select private.org_ids())));
create policy entries_select on public.time_entries for select to authenticated
  using (organization_id = any (array(select private.org_ids())));
"""


@pytest.mark.postgres
@pytest.mark.parametrize("tie", ["", "and p.organization_id = p_org"], ids=["untied", "tied"])
def test_a_generated_column_computed_by_a_definer_lookup_is_reported_exactly_where_it_copies_anothers(make_db, tie):
    conn, reported = applied(make_db, BASE + LABELS.format(tie=tie), "BP071")
    conn.execute(f"insert into public.projects values ('{P2}', '{ORG2}', 'p2')")
    as_member(conn, f"insert into public.time_entries (organization_id, project_id) values ('{ORG1}', '{P2}')")
    label = as_member(conn, "select label from public.time_entries")[0][0]
    assert reported == (label == "p2") == (tie == ""), (reported, label)


# A monthly-partitioned log whose partitions a maintenance function creates (legacy default privileges).
PARTITIONS = """
create table public.activity_log (id bigint generated always as identity,
  organization_id uuid not null references public.organizations (id), action text not null,
  created_at timestamptz not null default now(), primary key (id, created_at)) partition by range (created_at);
alter table public.activity_log enable row level security;
create policy activity_log_select on public.activity_log for select to authenticated
  using (organization_id = any (array(select private.org_ids())));
grant select on public.activity_log to authenticated;
create function private.create_partition(p_month date) returns void language plpgsql set search_path = '' as $$
begin
  execute format('create table if not exists {schema}.%I partition of public.activity_log for values from (%L) to (%L)',
                 'activity_log_' || to_char(p_month, 'YYYY_MM'), p_month, p_month + 31);
end $$;
"""


@pytest.mark.postgres
@pytest.mark.parametrize("schema", ["public", "private"])
def test_a_table_made_at_run_time_is_reported_exactly_where_the_api_reads_it_past_rls(make_db, schema):
    sql = BASE + PARTITIONS.format(schema=schema)
    reported = any(f.rule_id == "BP078" for f in audit_sql([("m.sql", sql)]))
    conn = make_db("legacy")  # Supabase's default privileges: new tables in public are the API roles'
    conn.execute(sql)
    conn.execute(f"insert into auth.users (id, email) values ('{USER}', 'a@example.com');"
                 f"insert into public.organizations values ('{ORG1}'), ('{ORG2}');"
                 f"insert into public.organization_members values ('{ORG1}', '{USER}', 'member');"
                 "select private.create_partition('2026-11-01');"
                 f"insert into public.activity_log (organization_id, action, created_at) values "
                 f"('{ORG2}', 'invoice.sent', '2026-11-05')")
    try:
        seen = as_member(conn, f"select count(*) from {schema}.activity_log_2026_11 where organization_id = "
                               f"'{ORG2}'")[0][0]
    except psycopg.errors.InsufficientPrivilege:
        seen = 0  # the API roles may not use the schema
    assert reported == (seen == 1) == (schema == "public"), (reported, seen)


# Cards over projects (a join), made writable by a DO INSTEAD rule, or by an invoker INSTEAD OF trigger.
CARDS = """
create view public.project_cards with (security_invoker = true) as
  select p.id, p.organization_id, p.name, o.id as org from public.projects p join public.organizations o
    on o.id = p.organization_id;
grant select, insert on public.project_cards to authenticated;
grant insert on public.projects to authenticated;
"""
CARDS_RULE = CARDS + """create rule project_cards_insert as on insert to public.project_cards do instead
  insert into public.projects (id, organization_id, name) values (new.id, new.organization_id, new.name);
"""
CARDS_TRIGGER = CARDS + """create function private.project_cards_insert() returns trigger language plpgsql
  set search_path = '' as $$
begin
  insert into public.projects (id, organization_id, name) values (new.id, new.organization_id, new.name);
  return new;
end $$;
create policy projects_insert on public.projects for insert to authenticated
  with check (organization_id = any (array(select private.org_ids())));
create trigger project_cards_insert instead of insert on public.project_cards
  for each row execute function private.project_cards_insert();
"""


@pytest.mark.postgres
@pytest.mark.parametrize("form", [CARDS_RULE, CARDS_TRIGGER], ids=["rule", "invoker-trigger"])
def test_a_rule_on_a_view_is_reported_exactly_where_it_writes_past_rls(make_db, form):
    conn, reported = applied(make_db, BASE + form, "BP062")
    try:
        as_member(conn, f"insert into public.project_cards (id, organization_id, name) values ('{P2}', '{ORG2}', "
                        "'planted')")
    except psycopg.errors.InsufficientPrivilege:
        pass  # the projects policy refuses it
    planted = conn.execute(f"select count(*) from public.projects where id = '{P2}'").fetchone()[0]
    assert reported == (planted == 1) == (form is CARDS_RULE), (reported, planted)


# A grid over projects (a join: not auto-updatable) edited through a definer INSTEAD OF trigger.
GRID = """
create view public.project_grid with (security_invoker = true) as
  select p.id, p.organization_id, p.name, o.id as org from public.projects p join public.organizations o
    on o.id = p.organization_id;
grant select, update on public.project_grid to authenticated;
create function private.project_grid_update() returns trigger language plpgsql security definer
  set search_path = '' as $$
begin
  if not (new.organization_id = any (array(select private.org_ids()))) then raise exception 'not yours'; end if;
  update public.projects set name = new.name where id = {row}.id;
  return new;
end $$;
create trigger project_grid_update instead of update on public.project_grid
  for each row execute function private.project_grid_update();
"""


@pytest.mark.postgres
@pytest.mark.parametrize("row", ["new", "old"])
def test_a_definer_instead_of_trigger_on_a_view_is_reported_exactly_where_the_client_picks_the_row(make_db, row):
    conn, reported = applied(make_db, BASE + GRID.format(row=row), "BP071")
    conn.execute(f"insert into public.projects values ('{P1}', '{ORG1}', 'p1'), ('{P2}', '{ORG2}', 'p2')")
    as_member(conn, f"update public.project_grid set id = '{P2}', name = 'taken' where id = '{P1}'")
    name = conn.execute(f"select name from public.projects where id = '{P2}'").fetchone()[0]
    assert reported == (name == "taken") == (row == "new"), (reported, name)


@pytest.mark.postgres
@pytest.mark.parametrize("form, tie", [(TRANSFERS, ""), (TRANSFERS, TIED), (BATCH, ""), (BATCH, "and p." + TIED[4:]),
                                       (HELPER, ""), (HELPER, TIED)],
                         ids=["row-untied", "row-tied", "statement-untied", "statement-tied", "helper-untied",
                              "helper-tied"])
def test_a_definer_trigger_moving_a_row_a_client_names_is_reported_exactly_where_it_takes_anothers(make_db, form,
                                                                                                  tie):
    conn, reported = applied(make_db, BASE + form.format(tie=tie), "BP071")
    conn.execute(f"insert into public.projects values ('{P2}', '{ORG2}', 'p2')")
    as_member(conn, f"insert into public.project_transfers (organization_id, project_id) values ('{ORG1}', '{P2}')")
    owner = str(conn.execute(f"select organization_id from public.projects where id = '{P2}'").fetchone()[0])
    assert reported == (owner == ORG1) == (tie == ""), (reported, owner)


ARCHIVES = """
create table public.archive_requests (id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id), project_id uuid not null);
create index on public.archive_requests (organization_id);
alter table public.archive_requests enable row level security;
grant insert (organization_id, project_id) on public.archive_requests to authenticated;
create policy archives_insert on public.archive_requests for insert to authenticated
  with check (organization_id = any (array(select private.org_ids())));
create function private.archive_project() returns trigger language plpgsql security definer set search_path = '' as $$
declare
  v_project public.projects%rowtype;
begin
  select * into v_project from public.projects where id = new.project_id;
  {check}
  delete from public.projects where id = v_project.id;
  return new;
end $$;
create trigger archives_apply after insert on public.archive_requests
  for each row execute function private.archive_project();
"""
# The picked row's organisation must be the request's.
CHECKED = "if v_project.organization_id is distinct from new.organization_id then raise exception 'not yours'; end if;"


@pytest.mark.postgres
@pytest.mark.parametrize("check", ["", CHECKED], ids=["unchecked", "checked"])
def test_a_definer_trigger_deleting_a_row_it_picked_into_a_variable_is_reported_exactly_where_it_takes_anothers(
        make_db, check):
    conn, reported = applied(make_db, BASE + ARCHIVES.format(check=check), "BP071")
    conn.execute(f"insert into public.projects values ('{P2}', '{ORG2}', 'p2')")
    as_member_refused(conn, f"insert into public.archive_requests (organization_id, project_id) "
                            f"values ('{ORG1}', '{P2}')", "not yours")
    left = conn.execute(f"select count(*) from public.projects where id = '{P2}'").fetchone()[0]
    assert reported == (left == 0) == (check == ""), (reported, left)


# Members queue copies of their organisation's projects; a pg_cron job's worker (run as the table owner, past RLS)
# makes them.
COPY_JOBS = """
create table public.copy_jobs (id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id), source_project_id uuid not null,
  done boolean not null default false);
create index on public.copy_jobs (organization_id);
alter table public.copy_jobs enable row level security;
grant insert (organization_id, source_project_id) on public.copy_jobs to authenticated;
create policy copy_jobs_insert on public.copy_jobs for insert to authenticated
  with check (organization_id = any (array(select private.org_ids())));
create function private.run_copy_jobs() returns void language plpgsql set search_path = '' as $$
declare
  job record;
begin
  for job in select * from public.copy_jobs where not done loop
    insert into public.projects (id, organization_id, name)
    select gen_random_uuid(), job.organization_id, 'copy of ' || p.name
      from public.projects p where p.id = job.source_project_id {tie};
    update public.copy_jobs set done = true where id = job.id;
  end loop;
end $$;
revoke all on function private.run_copy_jobs() from public, anon, authenticated;
select cron.schedule('copy-jobs', '* * * * *', 'select private.run_copy_jobs()');
"""


@pytest.mark.postgres
@pytest.mark.parametrize("tie", ["", "and p.organization_id = job.organization_id"], ids=["untied", "tied"])
def test_a_scheduled_worker_copying_a_row_a_queued_job_names_is_reported_exactly_where_it_copies_anothers(make_db,
                                                                                                       tie):
    sql = BASE + COPY_JOBS.format(tie=tie)
    reported = any(f.rule_id == "BP077" for f in audit_sql([("m.sql", sql)]))
    # This PostgreSQL has no pg_cron: the schedule is the audit's to read, and the test runs the job as pg_cron
    # would, as the role that scheduled it.
    conn, _ = applied(make_db, sql.replace("select cron.schedule", "-- select cron.schedule"), "BP077")
    conn.execute(f"insert into public.projects values ('{P2}', '{ORG2}', 'p2')")
    as_member(conn, f"insert into public.copy_jobs (organization_id, source_project_id) values ('{ORG1}', '{P2}')")
    conn.execute("select private.run_copy_jobs()")
    copied = as_member(conn, "select count(*) from public.projects where name = 'copy of p2'")[0][0]
    assert reported == (copied == 1) == (tie == ""), (reported, copied)


RENAMES = """
create table public.project_renames (id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id), project_id uuid not null, new_name text);
create index on public.project_renames (organization_id);
alter table public.project_renames enable row level security;
grant insert (organization_id, project_id, new_name) on public.project_renames to authenticated;
create policy renames_insert on public.project_renames for insert to authenticated
  with check (organization_id = any (array(select private.org_ids())));
create function private.apply_rename() returns trigger language plpgsql security definer set search_path = '' as $$
begin
  if not exists (select 1 from public.projects p where p.id = new.project_id {guard}) then
    raise exception 'no such project';
  end if;
  update public.projects set name = new.new_name where id = new.project_id;
  return new;
end $$;
create trigger renames_apply after insert on public.project_renames
  for each row execute function private.apply_rename();
"""


@pytest.mark.postgres
@pytest.mark.parametrize("guard", ["", "and p.organization_id = new.organization_id"], ids=["exists", "same-org"])
def test_a_definer_trigger_guarded_by_a_lookup_is_reported_exactly_where_the_guard_lets_anothers_row_through(
        make_db, guard):
    conn, reported = applied(make_db, BASE + RENAMES.format(guard=guard), "BP071")
    conn.execute(f"insert into public.projects values ('{P2}', '{ORG2}', 'p2')")
    as_member_refused(conn, f"insert into public.project_renames (organization_id, project_id, new_name) "
                            f"values ('{ORG1}', '{P2}', 'taken')", "no such project")
    name = conn.execute(f"select name from public.projects where id = '{P2}'").fetchone()[0]
    assert reported == (name == "taken") == (guard == ""), (reported, name)


ACCEPT = """
create table private.invitations (id uuid primary key default gen_random_uuid(), organization_id uuid not null,
  token text not null unique, role text not null);
create function public.accept_invitation(p_org uuid, p_token text) returns void
language plpgsql security definer set search_path = '' as $$
declare
  inv private.invitations;
begin
  select * into inv from private.invitations where token = p_token;
  if not found then
    raise exception 'no such invitation';
  end if;
  {check}
  insert into public.organization_members (organization_id, user_id, role) values (p_org, (select auth.uid()), inv.role)
  on conflict do nothing;
end $$;
revoke all on function public.accept_invitation(uuid, text) from public, anon;
grant execute on function public.accept_invitation(uuid, text) to authenticated;
"""
# The organisation named must be the invitation's.
SAME_ORG = "if inv.organization_id <> p_org then raise exception 'not this organisation'; end if;"


@pytest.mark.postgres
@pytest.mark.parametrize("check", ["", SAME_ORG], ids=["unchecked", "checked"])
def test_a_membership_written_into_the_organisation_an_argument_names_is_reported_exactly_where_one_joins_another(
        make_db, check):
    conn, reported = applied(make_db, BASE + ACCEPT.format(check=check), "BP075")
    # an invitation of the caller's own organisation, which they may mint for themselves
    conn.execute(f"insert into private.invitations (organization_id, token, role) values ('{ORG1}', 'tok', 'owner')")
    as_member_refused(conn, f"select public.accept_invitation('{ORG2}', 'tok')", "not this organisation")
    joined = conn.execute(f"select count(*) from public.organization_members where organization_id = '{ORG2}' "
                          f"and user_id = '{USER}'").fetchone()[0]
    assert reported == (joined == 1) == (check == ""), (reported, joined)


HOOK = """
do $$ begin create role supabase_auth_admin; exception when duplicate_object then null; end $$;
create table public.documents (id uuid primary key, organization_id uuid not null references public.organizations (id),
  body text not null);
create index on public.documents (organization_id);
alter table public.documents enable row level security;
grant select on public.documents to authenticated;
create policy documents_select on public.documents for select to authenticated
  using (organization_id = ((select auth.jwt()) ->> 'active_org')::uuid);
create function public.custom_access_token_hook(event jsonb) returns jsonb language plpgsql stable
  set search_path = '' as $$
declare
  claims jsonb := event -> 'claims';
begin
  claims := jsonb_set(claims, '{{active_org}}', coalesce({source}, 'null'::jsonb));
  return jsonb_set(event, '{{claims}}', claims);
end $$;
grant execute on function public.custom_access_token_hook(jsonb) to supabase_auth_admin;
revoke execute on function public.custom_access_token_hook(jsonb) from authenticated, anon, public;
"""
# Where the hook takes the active organisation from: what the user wrote, or their first membership.
FROM_METADATA = "event -> 'claims' -> 'user_metadata' -> 'active_org'"
FROM_MEMBERSHIP = ("to_jsonb((select m.organization_id from public.organization_members m "
                   "where m.user_id = (event ->> 'user_id')::uuid limit 1))")


@pytest.mark.postgres
@pytest.mark.parametrize("source", [FROM_METADATA, FROM_MEMBERSHIP], ids=["user_metadata", "membership"])
def test_a_token_hook_claim_from_user_metadata_is_reported_exactly_where_the_user_picks_the_organisation(
        make_db, source):
    conn, reported = applied(make_db, BASE + HOOK.format(source=source), "BP076")
    conn.execute(f"insert into public.documents values (gen_random_uuid(), '{ORG2}', 'theirs')")
    # The user wrote active_org = org2 into their metadata (supabase.auth.updateUser); Auth runs the hook at sign-in.
    event = {"user_id": USER, "claims": {"sub": USER, "role": "authenticated",
                                         "user_metadata": {"active_org": ORG2}}}
    claims = conn.execute("select public.custom_access_token_hook(%s::jsonb) -> 'claims'",
                          (json.dumps(event),)).fetchone()[0]
    with conn.transaction():
        cur = conn.cursor()
        act_as(cur, "authenticated", USER, claims)
        seen = cur.execute(f"select count(*) from public.documents where organization_id = '{ORG2}'").fetchone()[0]
    assert reported == (seen > 0) == (source == FROM_METADATA), (reported, seen)
