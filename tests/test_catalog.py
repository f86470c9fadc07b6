"""Supabase's catalogue lints on real PostgreSQL: generated backends are clean, the article is not."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from pgutil import migrate

from blueprint_mcp.audit.findings import Finding, Level
from blueprint_mcp.templates import template_names
from blueprint_mcp.verify.catalog import LINTS, LINTS_BY_ID, catalog_lints
from blueprint_mcp.verify.pg import GRANT_MODES, apply_sql

ARTICLE = Path(__file__).parent / "fixtures" / "article.sql"


def pairs(findings: list[Finding]) -> list[tuple[str, str | None]]:
    return [(f.rule_id, f.object) for f in findings]


def blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.level in (Level.ERROR, Level.WARN)]


# --- the lint table --------------------------------------------------------------------------

SUPABASE_LINTS = {
    "0002": ("auth_users_exposed", Level.ERROR, ["SECURITY"]),
    "0003": ("auth_rls_initplan", Level.WARN, ["PERFORMANCE"]),
    "0006": ("multiple_permissive_policies", Level.WARN, ["PERFORMANCE"]),
    "0007": ("policy_exists_rls_disabled", Level.ERROR, ["SECURITY"]),
    "0009": ("duplicate_index", Level.WARN, ["PERFORMANCE"]),
    "0010": ("security_definer_view", Level.ERROR, ["SECURITY"]),
    "0011": ("function_search_path_mutable", Level.WARN, ["SECURITY"]),
    "0013": ("rls_disabled_in_public", Level.ERROR, ["SECURITY"]),
    "0014": ("extension_in_public", Level.WARN, ["SECURITY"]),
    "0015": ("rls_references_user_metadata", Level.ERROR, ["SECURITY"]),
    "0016": ("materialized_view_in_api", Level.WARN, ["SECURITY"]),
    "0017": ("foreign_table_in_api", Level.WARN, ["SECURITY"]),
    "0018": ("unsupported_reg_types", Level.WARN, ["SECURITY"]),
    "0019": ("insecure_queue_exposed_in_api", Level.ERROR, ["SECURITY"]),
    "0021": ("fkey_to_auth_unique", Level.ERROR, ["SECURITY"]),
    "0023": ("sensitive_columns_exposed", Level.ERROR, ["SECURITY"]),
    "0024": ("rls_policy_always_true", Level.WARN, ["SECURITY"]),
    "0025": ("public_bucket_allows_listing", Level.WARN, ["SECURITY"]),
    "0026": ("pg_graphql_anon_table_exposed", Level.WARN, ["SECURITY"]),
    "0027": ("pg_graphql_authenticated_table_exposed", Level.WARN, ["SECURITY"]),
    "0028": ("anon_security_definer_function_executable", Level.WARN, ["SECURITY"]),
    "0029": ("authenticated_security_definer_function_executable", Level.WARN, ["SECURITY"]),
}


def test_lint_table_matches_supabase_ids_names_levels_and_categories():
    assert {lint.id: (lint.name, lint.level, list(lint.categories)) for lint in LINTS} == SUPABASE_LINTS
    assert [lint.id for lint in LINTS] == sorted(SUPABASE_LINTS)


# --- generated backends ----------------------------------------------------------------------


@pytest.mark.parametrize("grant_mode", GRANT_MODES)
@pytest.mark.parametrize("template", template_names())
def test_generated_backend_trips_no_error_or_warn_lint(make_db, template, grant_mode):
    conn = make_db(grant_mode)
    migrate(conn, template)
    assert pairs(blocking(catalog_lints(conn))) == []


# --- the article -----------------------------------------------------------------------------

# Verified by reading tests/fixtures/article.sql:
# - only habits and events enable RLS; every other public table is reachable by anon and
#   authenticated through the legacy default privileges (0013), profiles despite its policies (0007);
# - every habits/events policy calls auth.uid() or auth.jwt() bare (0003); the profiles policies do
#   too, but RLS is off there, so they never run (Supabase reports them as 0007 only);
# - update_updated_at() sets no search_path (0011);
# - daily_org_metrics is a materialized view in public, granted by default privileges (0016);
# - no views, definer functions, extensions, sensitive column names, duplicate indexes, FKs to
#   auth unique keys, always-true write policies or user_metadata: none of the other lints.
ARTICLE_POLICY_LINTS = [
    ("0003", "public.events.Service role can insert events"),
    ("0003", "public.events.Users see own org events"),
    ("0003", "public.habits.Members can delete habits"),
    ("0003", "public.habits.Members can update habits"),
    ("0003", "public.habits.Users create habits in own orgs"),
    ("0003", "public.habits.Users see own org habits"),
    ("0011", "public.update_updated_at"),
]
ARTICLE_LEGACY = sorted([
    ("0007", "public.profiles"),
    *[("0013", f"public.{t}") for t in (
        "audit_logs", "feature_flag_assignments", "feature_flags", "habit_check_ins",
        "organization_members", "organizations", "profiles", "sessions")],
    *ARTICLE_POLICY_LINTS,
    ("0016", "public.daily_org_metrics"),
], key=lambda p: (LINTS_BY_ID[p[0]].level != Level.ERROR, p))


def test_article_sql_trips_exactly_these_lints_on_a_legacy_project(make_db):
    conn = make_db("legacy")
    apply_sql(conn, ARTICLE.read_text())
    findings = catalog_lints(conn)
    assert pairs(findings) == ARTICLE_LEGACY
    by_pair = {(f.rule_id, f.object): f for f in findings}
    assert by_pair[("0013", "public.profiles")].fix_sql == "alter table public.profiles enable row level security;"
    assert by_pair[("0011", "public.update_updated_at")].fix_sql == (
        "alter function public.update_updated_at() set search_path = pg_catalog, pg_temp;")
    assert by_pair[("0016", "public.daily_org_metrics")].fix_sql == (
        "revoke all on table public.daily_org_metrics from public, anon, authenticated;")


def test_article_sql_on_an_explicit_grant_project_exposes_nothing_but_still_misconfigures(make_db):
    # Since 2026 new tables are not granted to the API roles: nothing is reachable, so the
    # exposure lints stay silent; the policy, function and RLS-state lints do not depend on grants.
    conn = make_db("explicit")
    apply_sql(conn, ARTICLE.read_text())
    assert pairs(catalog_lints(conn)) == [("0007", "public.profiles"), *ARTICLE_POLICY_LINTS]


# --- one focused case per lint: the failing SQL finds it once, the fixed SQL finds nothing ----

NOTES = ("create table public.notes (id int primary key, owner_id uuid not null, editor_id uuid);\n"
         "alter table public.notes enable row level security;\n")


def definer(schema: str = "public", revoke_public: bool = True) -> str:
    """A SECURITY DEFINER function (search_path pinned), by default not executable by PUBLIC."""
    sql = (f"create function {schema}.purge_notes() returns int language sql security definer\n"
           f"  set search_path = '' as $$ select 1 $$;\n")
    return sql + (f"revoke execute on function {schema}.purge_notes() from public;\n" if revoke_public else "")


@dataclass(frozen=True)
class Case:
    name: str
    lint: str
    fail: str
    fixed: str
    setup: str = ""
    grant_mode: str = "explicit"
    also: tuple[str, ...] = ()  # lints that necessarily fire with it (0023 implies 0013)
    fix_sql: str | None = None  # the Finding's mechanical fix, exactly


CASES = [
    Case("0002_invoker_view_over_unprotected_auth_users", "0002",
         "create view public.user_directory with (security_invoker = true) as select id, email from auth.users;\n"
         "grant select on public.user_directory to authenticated;",
         "create schema private;\n"
         "create view private.user_directory with (security_invoker = true) as select id, email from auth.users;\n"
         "grant select on private.user_directory to authenticated;",
         fix_sql="revoke all on table public.user_directory from public, anon, authenticated;"),
    Case("0002_materialized_view_over_auth_users", "0002",
         "create materialized view public.user_directory as select id, email from auth.users;\n"
         "grant select on public.user_directory to anon;",
         "create materialized view public.user_directory as select id, email from auth.users;",
         also=("0016",),
         fix_sql="revoke all on table public.user_directory from public, anon, authenticated;"),
    Case("0003_bare_auth_uid", "0003",
         "create policy notes_select on public.notes for select to authenticated using (owner_id = auth.uid());",
         "create policy notes_select on public.notes for select to authenticated using (owner_id = (select auth.uid()));",
         setup=NOTES),
    Case("0003_bare_call_next_to_a_wrapped_one", "0003",
         "create policy notes_select on public.notes for select to authenticated\n"
         "  using (owner_id = (select auth.uid()) or editor_id = auth.uid());",
         "create policy notes_select on public.notes for select to authenticated\n"
         "  using (owner_id = (select auth.uid()) or editor_id = (select auth.uid()));",
         setup=NOTES),
    Case("0003_bare_current_setting_in_with_check", "0003",
         "create policy notes_insert on public.notes for insert to authenticated\n"
         "  with check (owner_id = (current_setting('request.jwt.claims', true)::jsonb ->> 'sub')::uuid);",
         "create policy notes_insert on public.notes for insert to authenticated\n"
         "  with check (owner_id = (select (current_setting('request.jwt.claims', true)::jsonb ->> 'sub')::uuid));",
         setup=NOTES),
    Case("0006_select_and_all_for_the_same_role", "0006",
         "create policy notes_select on public.notes for select to authenticated using (owner_id = (select auth.uid()));\n"
         "create policy notes_all on public.notes for all to authenticated using (owner_id = (select auth.uid()));",
         "create policy notes_select on public.notes for select to authenticated using (owner_id = (select auth.uid()));\n"
         "create policy notes_insert on public.notes for insert to authenticated with check (owner_id = (select auth.uid()));",
         setup=NOTES),
    Case("0007_policy_without_rls", "0007",
         "create table public.notes (id int primary key, owner_id uuid not null);\n"
         "create policy notes_select on public.notes for select to authenticated using (owner_id = (select auth.uid()));",
         "create table public.notes (id int primary key, owner_id uuid not null);\n"
         "create policy notes_select on public.notes for select to authenticated using (owner_id = (select auth.uid()));\n"
         "alter table public.notes enable row level security;",
         fix_sql="alter table public.notes enable row level security;"),
    Case("0009_same_index_twice", "0009",
         "create index notes_owner_idx on public.notes (owner_id);\n"
         "create index notes_owner_id_idx on public.notes (owner_id);",
         "create index notes_owner_idx on public.notes (owner_id);",
         setup=NOTES, fix_sql="drop index public.notes_owner_idx;"),
    Case("0009_index_duplicating_a_unique_constraint", "0009",
         "alter table public.notes add constraint notes_owner_key unique (owner_id);\n"
         "create unique index notes_owner_idx on public.notes (owner_id);",
         "alter table public.notes add constraint notes_owner_key unique (owner_id);",
         setup=NOTES, fix_sql="drop index public.notes_owner_idx;"),
    Case("0010_definer_view", "0010",
         "create view public.note_titles as select 1 as id;\n"
         "grant select on public.note_titles to authenticated;",
         "create view public.note_titles with (security_invoker = true) as select 1 as id;\n"
         "grant select on public.note_titles to authenticated;",
         fix_sql="alter view public.note_titles set (security_invoker = true);"),
    Case("0011_trigger_function_without_search_path", "0011",
         "create function public.touch() returns trigger language plpgsql\n"
         "  as $$ begin new.updated_at := now(); return new; end $$;",
         "create function public.touch() returns trigger language plpgsql set search_path = ''\n"
         "  as $$ begin new.updated_at := now(); return new; end $$;",
         fix_sql="alter function public.touch() set search_path = pg_catalog, pg_temp;"),
    Case("0013_table_granted_without_rls", "0013",
         "create table public.notes (id int primary key);\n"
         "grant select on public.notes to anon;",
         "create table public.notes (id int primary key);\n"
         "grant select on public.notes to anon;\n"
         "alter table public.notes enable row level security;",
         fix_sql="alter table public.notes enable row level security;"),
    Case("0013_legacy_default_privileges", "0013",
         "create table public.notes (id int primary key);",
         "create table public.notes (id int primary key);\n"
         "alter table public.notes enable row level security;",
         grant_mode="legacy", fix_sql="alter table public.notes enable row level security;"),
    Case("0014_extension_in_public", "0014",
         "create extension citext schema public;",
         "create extension citext schema extensions;",
         fix_sql="alter extension citext set schema extensions;"),
    Case("0015_user_metadata_role", "0015",
         "create policy notes_admin on public.notes for select to authenticated\n"
         "  using (((select auth.jwt()) -> 'user_metadata' ->> 'role') = 'admin');",
         "create policy notes_admin on public.notes for select to authenticated\n"
         "  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');",
         setup=NOTES),
    Case("0016_exposed_materialized_view", "0016",
         "create materialized view public.note_counts as select 1 as n;\n"
         "grant select on public.note_counts to authenticated;",
         "create schema private;\n"
         "create materialized view private.note_counts as select 1 as n;\n"
         "grant select on private.note_counts to authenticated;",
         fix_sql="revoke all on table public.note_counts from public, anon, authenticated;"),
    Case("0017_exposed_foreign_table", "0017",
         "create foreign table public.remote_notes (id int) server notes_server;\n"
         "grant select on public.remote_notes to anon;",
         "create foreign table public.remote_notes (id int) server notes_server;",
         setup="create foreign data wrapper notes_fdw;\n"
               "create server notes_server foreign data wrapper notes_fdw;\n",
         fix_sql="revoke all on table public.remote_notes from public, anon, authenticated;"),
    Case("0021_fkey_to_auth_email", "0021",
         "create table public.contacts (id int primary key, email varchar(255) references auth.users (email));\n"
         "alter table public.contacts enable row level security;",
         "create table public.contacts (id int primary key, user_id uuid references auth.users (id));\n"
         "alter table public.contacts enable row level security;",
         setup="alter table auth.users add constraint users_email_key unique (email);\n",
         fix_sql="alter table public.contacts drop constraint contacts_email_fkey;"),
    Case("0023_credentials_table_without_rls", "0023",
         "create table public.api_credentials (id int primary key, api_key text, password text);\n"
         "grant select on public.api_credentials to anon;",
         "create table public.api_credentials (id int primary key, api_key text, password text);\n"
         "grant select on public.api_credentials to anon;\n"
         "alter table public.api_credentials enable row level security;",
         also=("0013",), fix_sql="alter table public.api_credentials enable row level security;"),
    Case("0024_insert_with_check_true", "0024",
         "create policy notes_insert on public.notes for insert to authenticated with check (true);",
         "create policy notes_insert on public.notes for insert to authenticated with check (owner_id = (select auth.uid()));",
         setup=NOTES),
    Case("0024_update_using_true_without_check", "0024",
         "create policy notes_update on public.notes for update to authenticated using (true);",
         "create policy notes_update on public.notes for update to authenticated\n"
         "  using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));",
         setup=NOTES),
    Case("0028_definer_granted_to_anon", "0028",
         definer() + "grant execute on function public.purge_notes() to anon;",
         definer() + "grant execute on function public.purge_notes() to service_role;",
         fix_sql="revoke execute on function public.purge_notes() from public, anon;"),
    Case("0028_definer_left_to_public", "0028",
         definer(revoke_public=False),
         definer(),
         also=("0029",), fix_sql="revoke execute on function public.purge_notes() from public, anon;"),
    Case("0029_definer_granted_to_authenticated", "0029",
         definer() + "grant execute on function public.purge_notes() to authenticated;",
         "create schema private;\n" + definer("private")
         + "grant execute on function private.purge_notes() to authenticated;",
         fix_sql="revoke execute on function public.purge_notes() from public, authenticated;"),
]


def test_every_lint_has_a_focused_case():
    # The lints added with the shared corpus have their cases in tests/corpus/platform.yaml.
    assert sorted({case.lint for case in CASES}) == sorted(set(SUPABASE_LINTS) - {"0018", "0019", "0025", "0026",
                                                                                     "0027"})


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_lint_case_fails_once_and_passes_when_fixed(make_db, case: Case):
    conn = make_db(case.grant_mode)
    apply_sql(conn, case.setup + case.fail)
    findings = catalog_lints(conn)
    assert sorted(f.rule_id for f in findings) == sorted([case.lint, *case.also])
    [finding] = [f for f in findings if f.rule_id == case.lint]
    name, level, categories = SUPABASE_LINTS[case.lint]
    assert (finding.name, finding.level, finding.categories) == (name, level, categories)
    assert finding.object and all(part in finding.message for part in finding.object.split("."))
    assert finding.remediation
    assert finding.fix_sql == case.fix_sql
    if finding.fix_sql:
        apply_sql(conn, finding.fix_sql)
        assert [f.rule_id for f in catalog_lints(conn) if f.rule_id == case.lint] == []

    fixed = make_db(case.grant_mode)
    apply_sql(fixed, case.setup + case.fixed)
    assert pairs(catalog_lints(fixed)) == []


# --- exposure and safety ---------------------------------------------------------------------

CLEAN = {
    "select_using_true_is_deliberate_public_read":
        NOTES + "create policy notes_select on public.notes for select to authenticated using (true);",
    "table_without_api_grants_is_not_exposed": "create table public.notes (id int primary key, password text);",
    "schema_outside_pgrst_db_schemas_is_not_exposed":
        "create schema private;\ncreate table private.notes (id int primary key, password text);\n"
        "grant usage on schema private to anon;\ngrant select on private.notes to anon;",
    "restrictive_policies_do_not_add_up":
        NOTES + "create policy notes_select on public.notes for select to authenticated using (owner_id = (select auth.uid()));\n"
        "create policy notes_live on public.notes as restrictive for select to authenticated using (editor_id is not null);",
    "policies_for_different_roles_do_not_add_up":
        NOTES + "create policy notes_user on public.notes for select to authenticated using (owner_id = (select auth.uid()));\n"
        "create policy notes_anon on public.notes for select to anon using (editor_id is null);",
}


@pytest.mark.parametrize("sql", CLEAN.values(), ids=CLEAN.keys())
def test_clean_sql_trips_no_lint(make_db, sql):
    conn = make_db("explicit")
    apply_sql(conn, sql)
    assert pairs(catalog_lints(conn)) == []


def test_exposed_schemas_come_from_pgrst_db_schemas(make_db):
    conn = make_db("explicit")
    apply_sql(conn, "create schema api;\ncreate table api.notes (id int primary key);\n"
                    "grant select on api.notes to anon;\ncreate table public.notes (id int primary key);\n"
                    "grant select on public.notes to anon;")
    assert pairs(catalog_lints(conn)) == [("0013", "public.notes")]
    conn.execute("set pgrst.db_schemas = ' api ,graphql_public'")
    assert pairs(catalog_lints(conn)) == [("0013", "api.notes")]


def test_runs_inside_a_callers_transaction_and_sees_its_uncommitted_work(make_db):
    conn = make_db("legacy")
    with conn.transaction():
        conn.execute("create table public.scratch (id int primary key)")
        assert pairs(catalog_lints(conn)) == [("0013", "public.scratch")]
        assert conn.execute("select count(*) from public.scratch").fetchone() == (0,)  # still usable


def test_runs_in_a_read_only_transaction(make_db):
    conn = make_db("legacy")
    apply_sql(conn, ARTICLE.read_text())
    with conn.transaction():
        conn.execute("set transaction read only")  # any write by a lint query would now fail
        assert pairs(catalog_lints(conn)) == ARTICLE_LEGACY


def test_a_database_without_the_auth_schema_or_settings_defaults_to_public(pg_cluster):
    import psycopg

    pg_cluster.create_database("catalog_vanilla")
    try:
        with psycopg.connect(pg_cluster.dsn("catalog_vanilla"), autocommit=True) as conn:
            # The API roles are cluster-wide (the shim made them), the auth schema is not.
            apply_sql(conn, "create table public.notes (id int primary key);\n"
                            "grant select on public.notes to anon;")
            assert pairs(catalog_lints(conn)) == [("0013", "public.notes")]
    finally:
        pg_cluster.drop_database("catalog_vanilla")
