"""One corpus, two readings: the static audit and the catalogue queries report the same platform lints.

tests/corpus/platform.yaml holds one failing and one passing case per lint (plus the edge cases
splinter decides: managed schemas, column grants, folded constants, rollbacks). Each case is audited
from its SQL and applied to a legacy-privilege PostgreSQL where the catalogue queries run; both must
report exactly the lint names the case expects.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pgutil import migrate

from blueprint_mcp.audit import RULES, Level, audit_sql
from blueprint_mcp.audit.platform import LINTS, SENSITIVE_COLUMNS
from blueprint_mcp.cli import main
from blueprint_mcp.model.blueprint import Api
from blueprint_mcp.templates import load_template, template_names
from blueprint_mcp.tools import audit_findings, blueprint_sql
from blueprint_mcp.verify import catalog
from blueprint_mcp.verify.pg import apply_sql

CORPUS = yaml.safe_load((Path(__file__).parent / "corpus" / "platform.yaml").read_text(encoding="utf-8"))
STATIC = {r.name for r in RULES.values() if r.platform}


def static_names(case: dict) -> list[str]:
    found = audit_sql([(f"{case['name']}.sql", case["sql"])], assume_platform=case.get("assume_platform", False))
    return sorted(f.name for f in found if f.name in STATIC)


def test_every_platform_lint_has_a_failing_and_a_passing_case_and_both_readings():
    names = {lint.name for lint in LINTS.values()}
    assert names == STATIC == {lint.name for lint in catalog.ALL_LINTS}
    assert len({case["name"] for case in CORPUS}) == len(CORPUS)
    for name in names:
        about = [case for case in CORPUS if name in case["lint"]]
        assert any(name in case["expect"] for case in about), f"{name}: no failing case"
        assert any(name not in case["expect"] for case in about), f"{name}: no passing case"


def test_static_rules_and_catalogue_queries_share_identity_and_prose():
    by_name = {r.name: r for r in RULES.values() if r.platform}
    for lint in catalog.ALL_LINTS:
        rule = by_name[lint.name]
        assert (rule.platform, rule.level, rule.categories, rule.fix) == \
            (lint.id, lint.level, lint.categories, lint.remediation)
        assert rule.summary == LINTS[lint.id].description


def test_the_sensitive_column_list_is_the_platforms_67_names():
    assert len(SENSITIVE_COLUMNS) == len(set(SENSITIVE_COLUMNS)) == 67
    assert {"jwt", "otp", "session_token", "oauth_token", "password", "ssn"} <= set(SENSITIVE_COLUMNS)


@pytest.mark.parametrize("case", CORPUS, ids=[c["name"] for c in CORPUS])
def test_corpus_case_statically(case):
    assert static_names(case) == sorted(case["expect"])


def test_corpus_on_postgresql_gives_the_same_findings_on_the_same_objects(make_db):
    mismatches = {}
    for case in CORPUS:
        platform = case.get("assume_platform", False)
        static = sorted((f.name, f.object) for f in audit_sql([("case.sql", case["sql"])], assume_platform=platform)
                        if f.name in STATIC)
        conn = make_db("legacy")
        apply_sql(conn, case["sql"])
        live = sorted((f.name, f.object) for f in catalog.catalog_lints(conn, catalog.ALL_LINTS, assume_platform=platform))
        conn.close()
        if live != static or sorted(name for name, _ in live) != sorted(case["expect"]):
            mismatches[case["name"]] = {"static": static, "postgresql": live}
    assert mismatches == {}


# Where the platform's lint is wrong, the static rule departs from it on purpose (documented on the rule):
# a string spelling auth.uid() is no call, though the platform matches the deparsed text (BP016);
# `security_invoker = t` is true to PostgreSQL, not to the platform's text comparison (BP011); a plain index
# on a unique key serves nothing the key does not, though the definitions differ by UNIQUE (BP018); a definer
# trigger function cannot be called over RPC (BP010, BP024); a write policy on a partitioned table guards
# every partition (BP023).
DEPARTURES = {
    "string_spelling_a_call": (
        "create table public.notes (id int primary key, note text);\n"
        "alter table public.notes enable row level security;\n"
        "create policy notes_select on public.notes for select to authenticated using (note <> 'auth.uid()');\n",
        [("auth_rls_initplan", "public.notes.notes_select")], []),
    "security_invoker_spelled_t": (
        "create view public.note_titles with (security_invoker = t) as select 1 as id;\n",
        [("security_definer_view", "public.note_titles")], []),
    "plain_index_on_a_unique_key": (
        "create table public.organizations (id int primary key, slug text unique not null);\n"
        "alter table public.organizations enable row level security;\n"
        "create policy organizations_select on public.organizations for select to authenticated using (true);\n"
        "create index idx_organizations_slug on public.organizations (slug);\n",
        [], [("duplicate_index", "public.organizations")]),
    "definer_trigger_function": (
        "create function public.touch() returns trigger language plpgsql security definer set search_path = ''\n"
        "  as $$ begin return new; end $$;\n",
        [("anon_security_definer_function_executable", "public.touch"),
         ("authenticated_security_definer_function_executable", "public.touch")], []),
    "always_true_policy_on_a_partitioned_table": (
        "create table public.events (id int, at date, primary key (id, at)) partition by range (at);\n"
        "alter table public.events enable row level security;\n"
        "create policy events_delete on public.events for delete to authenticated using (true);\n",
        [], [("rls_policy_always_true", "public.events.events_delete")]),
}


@pytest.mark.parametrize("sql, catalogue, static", DEPARTURES.values(), ids=DEPARTURES.keys())
def test_where_the_platform_is_wrong_the_static_rule_departs_from_the_catalogue(make_db, sql, catalogue, static):
    conn = make_db("legacy")
    apply_sql(conn, sql)
    assert sorted((f.name, f.object) for f in catalog.catalog_lints(conn, catalog.ALL_LINTS)) == catalogue
    assert sorted((f.name, f.object) for f in audit_sql([("d.sql", sql)]) if f.name in STATIC) == static


# --- the generated backends on the platform, where pg_graphql is installed --------------------------


@pytest.mark.parametrize("template", template_names())
def test_rendered_templates_trip_no_error_or_warn_with_pg_graphql_installed(template):
    found = audit_findings(template=template, assume_platform=True)
    assert [(f.name, f.object) for f in found if f.level in (Level.ERROR, Level.WARN)] == []


def test_a_blueprint_serving_graphql_keeps_pg_graphql_and_is_told_what_it_shows():
    bp = load_template("b2b-saas").model_copy(update={"api": Api(graphql=True)})
    assert all("pg_graphql" not in sql for _, sql in blueprint_sql(bp, "b2b-saas"))
    names = {f.name for f in audit_findings(blueprint=bp, assume_platform=True)}
    assert names == {"pg_graphql_authenticated_table_exposed"}
    assert not any(f.name.startswith("pg_graphql") for f in audit_findings(blueprint=bp))


def test_cli_assume_platform(tmp_path, capsys):
    sql = tmp_path / "m.sql"
    sql.write_text("create table public.notes (id int primary key);\n"
                   "alter table public.notes enable row level security;\n"
                   "create policy notes_select on public.notes for select to authenticated using (true);\n")
    assert main(["audit", str(sql), "--fail-on", "warn"]) == 0
    assert main(["audit", str(sql), "--fail-on", "warn", "--assume-platform"]) == 1
    out = capsys.readouterr().out
    assert "pg_graphql_anon_table_exposed public.notes" in out and "pg_graphql_authenticated_table_exposed" in out
    sql.write_text(sql.read_text() + "drop extension if exists pg_graphql;\n")
    assert main(["audit", str(sql), "--fail-on", "warn", "--assume-platform"]) == 0


# --- the same lints decided by pg_extension, with a stand-in pg_graphql ------------------------------

# pg_graphql is a Rust (pgrx) extension that cannot be built here, and PostgreSQL 15 reads extension
# control files only from its system share directory. The GraphQL lints read nothing of it but its
# pg_extension row, so a row written into this database's catalogue stands in for it (and `drop
# extension` removes it like the real one).
def install_pg_graphql_stand_in(conn) -> None:
    with conn.transaction():
        conn.execute("set local allow_system_table_mods = on")
        conn.execute("create schema if not exists graphql")
        conn.execute(
            "insert into pg_catalog.pg_extension (oid, extname, extowner, extnamespace, extrelocatable, extversion)"
            " values (pg_catalog.pg_nextoid('pg_catalog.pg_extension', 'oid', 'pg_catalog.pg_extension_oid_index'),"
            " 'pg_graphql', current_user::regrole, 'graphql'::regnamespace, false, '1.5.11')")


def has_pg_graphql(conn) -> bool:
    return conn.execute("select exists (select from pg_catalog.pg_extension x where x.extname = 'pg_graphql')"
                        ).fetchone()[0]


GRAPHQL_SQL = """
create table public.anon_notes (id int primary key);
alter table public.anon_notes enable row level security;
create policy anon_notes_select on public.anon_notes for select to anon using (true);
revoke all on public.anon_notes from authenticated;
create table public.member_notes (id int primary key);
alter table public.member_notes enable row level security;
create policy member_notes_select on public.member_notes for select to authenticated using (true);
revoke all on public.member_notes from anon;
create table public.ledger (id int primary key);
alter table public.ledger enable row level security;
revoke all on public.ledger from anon, authenticated;
"""
GRAPHQL_EXPOSED = [("pg_graphql_anon_table_exposed", "public.anon_notes"),
                   ("pg_graphql_authenticated_table_exposed", "public.member_notes")]


def live_pairs(conn, assume_platform: bool = False) -> list[tuple[str, str | None]]:
    return sorted((f.name, f.object) for f in catalog.catalog_lints(conn, catalog.ALL_LINTS, assume_platform))


def graphql_pairs(pairs: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    return [(name, obj) for name, obj in pairs if name.startswith("pg_graphql_")]


def test_installed_pg_graphql_gives_the_catalogue_what_assume_platform_and_the_static_audit_give(make_db):
    with_extension = make_db("legacy")
    install_pg_graphql_stand_in(with_extension)
    apply_sql(with_extension, GRAPHQL_SQL)
    assumed = make_db("legacy")
    apply_sql(assumed, GRAPHQL_SQL)
    assert not has_pg_graphql(assumed)
    static = sorted((f.name, f.object) for f in audit_sql([("g.sql", GRAPHQL_SQL)], assume_platform=True)
                    if f.name in STATIC)
    live = live_pairs(with_extension)
    assert live == live_pairs(assumed, assume_platform=True) == static
    assert graphql_pairs(live) == GRAPHQL_EXPOSED


def test_dropping_pg_graphql_silences_the_graphql_lints(make_db):
    conn = make_db("legacy")
    install_pg_graphql_stand_in(conn)
    apply_sql(conn, GRAPHQL_SQL)
    assert graphql_pairs(live_pairs(conn)) == GRAPHQL_EXPOSED
    apply_sql(conn, "drop extension pg_graphql;")
    assert not has_pg_graphql(conn)
    assert graphql_pairs(live_pairs(conn)) == []
    assert graphql_pairs(live_pairs(conn, assume_platform=True)) == GRAPHQL_EXPOSED  # assume ignores the drop
    dropped = audit_sql([("g.sql", GRAPHQL_SQL + "drop extension if exists pg_graphql;\n")], assume_platform=True)
    assert [f.name for f in dropped if f.name.startswith("pg_graphql_")] == []


@pytest.mark.parametrize("template", template_names())
def test_rendered_templates_on_postgresql_with_pg_graphql_installed_trip_no_error_or_warn(make_db, template):
    conn = make_db("legacy")
    install_pg_graphql_stand_in(conn)
    migrate(conn, template)
    assert not has_pg_graphql(conn)  # the app does not use GraphQL: its migration drops the extension
    assert [(f.name, f.object) for f in catalog.catalog_lints(conn) if f.level in (Level.ERROR, Level.WARN)] == []


def test_a_blueprint_serving_graphql_is_told_the_same_on_postgresql_with_pg_graphql_installed(make_db):
    bp = load_template("b2b-saas").model_copy(update={"api": Api(graphql=True)})
    conn = make_db("legacy")
    install_pg_graphql_stand_in(conn)
    migrate(conn, bp)
    assert has_pg_graphql(conn)
    static = sorted((f.name, f.object) for f in audit_findings(blueprint=bp, assume_platform=True)
                    if f.name.startswith("pg_graphql_"))
    live = graphql_pairs(live_pairs(conn))
    assert live == static
    assert {name for name, _ in live} == {"pg_graphql_authenticated_table_exposed"}


# --- replay: what a rolled-back change leaves ---------------------------------------------------------


def tables_after(sql: str) -> list[str]:
    from blueprint_mcp.audit import read_sql

    return sorted(t.qualified for t in read_sql([("t.sql", sql)]).schema.tables)


def test_rollback_to_a_savepoint_undoes_only_what_followed_it_and_keeps_the_savepoint():
    assert tables_after("begin; create table a (id int); savepoint s; create table b (id int);\n"
                        "rollback to savepoint s; create table c (id int); rollback to s; commit;") == ["public.a"]


def test_release_forgets_a_savepoint_and_rollback_undoes_the_whole_transaction():
    assert tables_after("create table kept (id int); begin; create table a (id int); savepoint s;\n"
                        "create table b (id int); release savepoint s; rollback;") == ["public.kept"]
    assert tables_after("begin; create table a (id int); savepoint s; release s; rollback to s; commit;") == \
        ["public.a"]  # rollback to a released savepoint is an error in PostgreSQL: nothing happens here


def test_a_rollback_outside_a_transaction_and_an_unfinished_one_change_nothing():
    assert tables_after("create table a (id int); rollback; begin; create table b (id int);") == \
        ["public.a", "public.b"]


def test_a_rollback_restores_what_was_dropped_and_revoked_and_keeps_parse_errors():
    found = audit_sql([("t.sql", "create table public.notes (id int primary key);\nbegin;\n"
                                 "revoke all on public.notes from anon, authenticated;\ndrop table public.notes;\n"
                                 "create tabel x;\nrollback;\n")])
    assert sorted(f.name for f in found if f.level is Level.ERROR) == ["parse_error", "rls_disabled_in_public"]


def test_a_queue_made_by_pgmq_create_is_linted_once_the_api_roles_may_read_it():
    # pgmq is not installed on the test PostgreSQL: this reading is static only.
    sql = ("alter database postgres set pgrst.db_schemas = 'public, pgmq_public';\n"
           "select pgmq.create('jobs');\nselect * from pgmq.create_unlogged('mail');\n")
    assert [f.name for f in audit_sql([("q.sql", sql)])] == []
    found = audit_sql([("q.sql", sql + "grant select on pgmq.q_jobs, pgmq.q_mail to authenticated;\n")])
    assert [(f.name, f.object) for f in found] == [("insecure_queue_exposed_in_api", "pgmq.q_jobs"),
                                                  ("insecure_queue_exposed_in_api", "pgmq.q_mail")]
