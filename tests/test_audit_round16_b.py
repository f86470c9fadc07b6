"""Evasion round 16 (e03, e04, e11, e12, e13): what DDL actually runs. A migration file the Supabase CLI skips, a
statement under an IF (or rolled back by a handler) that may not run, an EXECUTE over catalog names, and a
search_path schema that does not exist yet."""

from __future__ import annotations

from pathlib import Path

import pytest

from blueprint_mcp import tools
from blueprint_mcp.audit import audit_sql

from audit_world import ORGS

_DOCUMENTS = """
create table public.documents (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  title text not null
);
create index on public.documents (organization_id);
"""
_DOCUMENT_POLICIES = """
create policy documents_select on public.documents for select to authenticated
  using (organization_id = any (array(select private.organization_ids_with_role('viewer'))));
"""


def _rules(sql: str) -> set[str]:
    return {f.rule_id for f in audit_sql([("case.sql", ORGS + sql)])}


def _folder_rules(root: Path, files: dict[str, str]) -> list[tuple[str, str]]:
    folder = root / "supabase" / "migrations"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return sorted((f.rule_id, Path(f.file or "").name)
                  for f in tools.audit_findings(paths=[root]))


@pytest.mark.parametrize("rls_name, found", [
    # e03: the CLI skips a file not named <digits>_<name>.sql; the table it secures stays open
    ("2024-03-01_enable_rls.sql", [("BP003", "20240102000000_documents.sql"), ("BP037", "2024-03-01_enable_rls.sql")]),
    ("20240301000000_enable_rls.sql", []),
])
def test_a_migration_the_supabase_cli_skips_is_not_applied_and_is_reported(tmp_path, rls_name, found):
    files = {"20240101000000_orgs.sql": ORGS, "20240102000000_documents.sql": _DOCUMENTS,
             rls_name: "alter table public.documents enable row level security;\n" + _DOCUMENT_POLICIES}
    assert _folder_rules(tmp_path, files) == found


@pytest.mark.parametrize("folder", ["sql", "supabase/migrations"])
def test_a_folder_of_plain_sql_files_applies_every_one(tmp_path, folder):
    # Not a supabase/migrations folder, or one none of whose names the CLI takes (another tool runs it): every
    # .sql file, in name order, as before.
    (tmp_path / folder).mkdir(parents=True)
    for name, text in {"01-orgs.sql": ORGS, "02-documents.sql": _DOCUMENTS,
                       "03-rls.sql": "alter table public.documents enable row level security;\n"
                                     + _DOCUMENT_POLICIES}.items():
        (tmp_path / folder / name).write_text(text)
    assert tools.audit_findings(paths=[tmp_path / folder]) == []


@pytest.mark.parametrize("test, found", [
    # e04: the double negation skips the enable exactly where RLS is off, on every database
    ("not exists (select 1 from pg_tables where schemaname = 'public' and tablename = 'documents' and not rowsecurity)",
     {"BP003", "BP017"}),
    ("not exists (select 1 from pg_tables where schemaname = 'public' and tablename = 'documents' and rowsecurity)",
     set()),
    ("not exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace\n"
     "  where n.nspname = 'public' and c.relname = 'documents' and not c.relrowsecurity)", {"BP003", "BP017"}),
    ("not exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace\n"
     "  where n.nspname = 'public' and c.relname = 'documents' and c.relrowsecurity)", set()),
    ("to_regclass('public.documents') is not null", set()),
    ("current_setting('app.env', true) = 'staging'", {"BP003", "BP017"}),  # (a condition not decided: may not run)
])
def test_an_enable_under_an_if_counts_only_when_its_condition_holds(test, found):
    sql = _DOCUMENTS + _DOCUMENT_POLICIES + f"""
do $$
begin
  if {test} then
    alter table public.documents enable row level security;
  end if;
end $$;"""
    assert _rules(sql) == found


@pytest.mark.parametrize("test, found", [
    ("to_regclass('public.documents') is null", set()),  # (the ELSE runs: every condition before it is false)
    ("to_regclass('public.documents') is not null", {"BP003", "BP017"}),
])
def test_an_enable_in_an_else_counts_only_when_the_conditions_before_it_are_false(test, found):
    sql = _DOCUMENTS + _DOCUMENT_POLICIES + f"""
do $$ begin
  if {test} then
    raise notice 'nothing to do';
  else
    alter table public.documents enable row level security;
  end if;
end $$;"""
    assert _rules(sql) == found


def test_a_disable_under_an_if_counts_as_applied():
    # What opens access under a condition may run: it is applied as before.
    sql = _DOCUMENTS + "alter table public.documents enable row level security;\n" + _DOCUMENT_POLICIES + """
do $$ begin
  if current_setting('app.env', true) = 'staging' then
    alter table public.documents disable row level security;
  end if;
end $$;"""
    assert _rules(sql) == {"BP003", "BP017"}


@pytest.mark.parametrize("reenable, found", [
    # e11: a loop over the catalog disables RLS on every public table; only those re-enabled after get it back
    ("organizations, organization_members", {"BP003", "BP017"}),
    ("organizations, organization_members, documents", set()),
])
def test_a_disable_executed_over_catalog_names_hits_every_table_of_the_schema(reenable, found):
    sql = _DOCUMENTS + "alter table public.documents enable row level security;\n" + _DOCUMENT_POLICIES + """
do $$
declare t record;
begin
  for t in select tablename from pg_tables where schemaname = 'public' loop
    execute format('alter table public.%I disable row level security', t.tablename);
  end loop;
end $$;
""" + "".join(f"alter table public.{x} enable row level security;\n" for x in reenable.split(", "))
    assert _rules(sql) == found


@pytest.mark.parametrize("names, found", [
    # the loop's own tests of the names narrow the tables it may disable
    ("tablename like 'import\\_%'", {("BP003", "public.import_rows")}),
    ("tablename not in ('organizations', 'organization_members')", {("BP003", "public.import_rows"),
                                                                   ("BP003", "public.documents"),
                                                                   ("BP017", "public.documents")}),
    ("tableowner = 'postgres'", {(rule, f"public.{table}") for rule in ("BP003", "BP017") for table in (
        "organizations", "organization_members", "documents")} | {("BP003", "public.import_rows")}),  # (not read)
])
def test_a_loop_over_catalog_names_disables_what_its_query_may_give(names, found):
    sql = _DOCUMENTS + "alter table public.documents enable row level security;\n" + _DOCUMENT_POLICIES + f"""
create table public.import_rows (id uuid primary key);
alter table public.import_rows enable row level security;
do $$
declare r record;
begin
  for r in select schemaname, tablename from pg_tables where schemaname = 'public' and {names} loop
    execute format('alter table %I.%I disable row level security', r.schemaname, r.tablename);
  end loop;
end $$;"""
    assert {(f.rule_id, f.object) for f in audit_sql([("case.sql", ORGS + sql)])} - {("BP004", "public.import_rows")} \
        == found


@pytest.mark.parametrize("internal_first, found", [
    # e12: `internal` does not exist yet when the table is made, so PostgreSQL creates it in public
    (False, [("BP003", "20240201000000_webhooks.sql")]),
    (True, []),
])
def test_a_search_path_schema_not_created_yet_is_passed_over(tmp_path, internal_first, found):
    schema = "create schema internal;\nrevoke all on schema internal from public, anon, authenticated;\n"
    webhooks = """set search_path = internal, public;
create table webhook_endpoints (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  signing_secret text not null
);
create index on webhook_endpoints (organization_id);
reset search_path;
"""
    files = {"20240101000000_orgs.sql": ORGS, "20240201000000_webhooks.sql": webhooks,
             f"20240{'115' if internal_first else '215'}000000_internal_schema.sql": schema}
    assert _folder_rules(tmp_path, files) == found


@pytest.mark.parametrize("drop_inside, found", [
    # e13: the CREATE raises 42710 (documents_select exists), and the handler rolls the DROP back with it
    (True, {"BP006", "BP007", "BP027"}),
    (False, set()),
])
def test_a_drop_policy_a_handler_may_roll_back_does_not_count(drop_inside, found):
    drop = 'drop policy if exists "Enable read access for all users" on public.documents;\n'
    sql = _DOCUMENTS + "alter table public.documents enable row level security;\n" + """
create policy "Enable read access for all users" on public.documents for select using (true);
""" + _DOCUMENT_POLICIES + ("" if drop_inside else drop) + """
do $$
begin
  """ + (drop if drop_inside else "") + _DOCUMENT_POLICIES + """
exception when duplicate_object then
  raise notice 'documents_select exists already';
end $$;"""
    assert _rules(sql) == found


def test_a_view_drop_or_function_hardening_a_handler_may_roll_back_does_not_count():
    # Round 16 e13's reading for what else protects: the view and the definer function stay as they were.
    sql = """
create view public.organization_names as select id, name from public.organizations;
create function public.organization_count() returns bigint language sql security definer
  as $$ select count(*) from public.organizations $$;
do $$
begin
  drop view public.organization_names;
  alter function public.organization_count() security invoker set search_path = '';
  create table private.audit_marker (id int primary key);
exception when others then
  raise notice 'skipped';
end $$;"""
    assert _rules(sql) == {"BP009", "BP010", "BP011", "BP024", "BP057"}
    assert _rules(sql.replace("exception when others then\n  raise notice 'skipped';\n", "")) == set()
