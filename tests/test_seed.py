"""supabase/seed.sql: applies after the migrations, fills every table, and verify still finds 0 leaks on top of it."""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from blueprint_mcp.sql.design import build_schema
from blueprint_mcp.seed import seed_sql
from blueprint_mcp.templates import load_blueprint_file
from blueprint_mcp.tools import migration_files, write_files
from blueprint_mcp.verify.pg import apply_sql
from blueprint_mcp.verify.run import verify
from pgutil import FIXED_TS, require_pg_prove

ROOT = Path(__file__).resolve().parents[1]
APPS = sorted((ROOT / "blueprints").glob("*.yaml")) + sorted((ROOT / "examples").glob("*.yaml"))


def test_render_writes_a_deterministic_seed():
    bp = load_blueprint_file(APPS[0])
    files = migration_files(bp, datetime.fromisoformat(FIXED_TS))
    assert files["supabase/seed.sql"] == seed_sql(bp)
    assert "fixture" not in files["supabase/seed.sql"]


def seeded(path: Path, make_db, grant_mode: str):
    """A fresh database with the project's migrations and seed applied, as `supabase db reset` leaves it."""
    bp = load_blueprint_file(path)
    files = migration_files(bp, datetime.fromisoformat(FIXED_TS))
    conn = make_db(grant_mode)
    for name in sorted(p for p in files if p.startswith("supabase/migrations/")):
        apply_sql(conn, files[name])
    apply_sql(conn, files["supabase/seed.sql"])  # outside any JWT, as the CLI runs it
    return bp, files, conn


@pytest.mark.postgres
@pytest.mark.parametrize("path", APPS, ids=[f"{p.parent.name}/{p.stem}" for p in APPS])
def test_seeded_project_fills_every_table_and_verifies_with_zero_leaks(path, make_db, pg_cluster):
    """In the grant mode the pgTAP test below does not use for this app (templates explicit, examples legacy):
    between the two, every app's matrix runs beside its seed in both modes (test_verify runs both without it)."""
    bp, files, conn = seeded(path, make_db, "explicit" if path.parent.name == "blueprints" else "legacy")

    roles = [r.name for r in bp.tenancy.roles]
    members = conn.execute(
        "select o.slug, m.role, count(*) from public.organization_members m join public.organizations o "
        "on o.id = m.organization_id where not o.is_personal group by 1, 2").fetchall()
    assert sorted(members) == sorted((org, role, 2) for org in ("contoso", "northwind") for role in roles)
    assert conn.execute("select count(*) from public.profiles").fetchone()[0] == 2 * 2 * len(roles)
    empty = [t.name for t in build_schema(bp).tables if t.schema_name == "public" and
             conn.execute(f'select count(*) from public."{t.name}"').fetchone()[0] == 0]
    assert empty == []

    report = verify(source=path.stem, migrations=[], blueprint=bp, database_url=pg_cluster.dsn(conn.info.dbname))
    assert report.notes == [] and report.failures == []
    assert report.leaks == 0 and report.ok is True and report.counts["ok"] > 500
    assert conn.execute("select count(*) from public.organizations where slug = 'northwind'").fetchone()[0] == 1


@pytest.mark.postgres
@pytest.mark.parametrize("path", APPS, ids=[f"{p.parent.name}/{p.stem}" for p in APPS])
def test_the_rendered_project_applies_and_its_pgtap_tests_pass_on_the_seeded_database(path, make_db, pg_cluster,
                                                                                      tmp_path):
    """As a user runs it: `render` writes the project, `supabase db reset` applies the migrations and the seed
    from disk, `supabase test db` runs the pgTAP file beside the sample rows. Templates in the legacy grant
    mode, examples in the explicit one (2026 projects)."""
    pg_prove = require_pg_prove()
    write_files(migration_files(load_blueprint_file(path), datetime.fromisoformat(FIXED_TS)), tmp_path)
    conn = make_db("legacy" if path.parent.name == "blueprints" else "explicit")
    for sql_file in sorted((tmp_path / "supabase" / "migrations").glob("*.sql")):
        apply_sql(conn, sql_file.read_text())
    apply_sql(conn, (tmp_path / "supabase" / "seed.sql").read_text())
    test_file = next((tmp_path / "supabase" / "tests" / "database").glob("*.test.sql"))
    out = subprocess.run([pg_prove, "-h", "127.0.0.1", "-p", str(pg_cluster.port), "-U", "postgres",
                          "-d", conn.info.dbname, str(test_file)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "All tests successful." in out.stdout


def test_seed_users_are_written_as_gotrue_writes_a_confirmed_email_signup():
    """Each user as GoTrue writes one: instance, audience and role set, token columns empty strings (GoTrue
    scans them as strings: NULL fails a sign-in), and an email identity naming the user."""
    text = seed_sql(load_blueprint_file(APPS[0]))
    users = [line for line in text.splitlines() if line.startswith("insert into auth.users")]
    identities = [line for line in text.splitlines() if line.startswith("insert into auth.identities")]
    assert users and len(identities) == len(users)
    for line in users:
        assert "'00000000-0000-0000-0000-000000000000', '" in line and "'authenticated', 'authenticated'" in line
        assert ", '', timestamptz '2025-01-01 09:00:00+00', '', '', '', ''," in line



@pytest.mark.postgres
def test_seeded_invitations_are_the_members_accepted_ones_and_none_is_pending(make_db):
    """Found by an independent check: the seed filled invitations like any table, pending (no secret, so
    unusable), with plain members as inviters and the inviter as the one who accepted. Now each member's
    invitation from the owner is seeded as accepted, and none is pending (its secret would be public)."""
    _, _, conn = seeded(ROOT / "blueprints" / "b2b-saas.yaml", make_db, "legacy")
    assert conn.execute("select count(*) from public.invitations where accepted_at is null").fetchone()[0] == 0
    assert conn.execute("select count(*) from public.invitations where not (created_at <= accepted_at and "
                        "accepted_at <= expires_at)").fetchone()[0] == 0  # created, then accepted before it expired
    mismatched = conn.execute(
        "select i.email from public.invitations i join public.organizations o on o.id = i.organization_id "
        "left join public.organization_members m on m.organization_id = i.organization_id "
        "and m.user_id = i.accepted_by and m.role = i.role join auth.users u on u.id = i.accepted_by "
        "where m.user_id is null or i.invited_by is distinct from o.owner_user_id or u.email <> i.email").fetchall()
    assert mismatched == []
    members = conn.execute("select count(*) from public.organization_members m join public.organizations o "
                           "on o.id = m.organization_id where not o.is_personal and m.user_id <> o.owner_user_id")
    assert conn.execute("select count(*) from public.invitations").fetchone()[0] == members.fetchone()[0]


@pytest.mark.postgres
def test_the_pgtap_file_fails_a_loosened_policy_and_names_each_case_that_leaked(make_db, pg_cluster, tmp_path):
    """One pgTAP test per table (pgTAP's own bookkeeping made one per case slow): a policy loosened after
    generation fails that table's test, and the failure lists every case that leaked by its label with what
    happened instead; the other tables still pass."""
    pg_prove = require_pg_prove()
    files = migration_files(load_blueprint_file(ROOT / "blueprints" / "habit-tracker.yaml"),
                            datetime.fromisoformat(FIXED_TS))
    write_files(files, tmp_path)
    conn = make_db("legacy")
    for name in sorted(p for p in files if p.startswith("supabase/migrations/")):
        apply_sql(conn, files[name])
    conn.execute("drop policy milestones_select_policy on public.milestones")
    conn.execute("create policy loose on public.milestones for select to authenticated using (true)")
    test_file = next((tmp_path / "supabase" / "tests" / "database").glob("*.test.sql"))
    out = subprocess.run([pg_prove, "-h", "127.0.0.1", "-p", str(pg_cluster.port), "-U", "postgres",
                          "-d", conn.info.dbname, str(test_file)], capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    failed = [line for line in out.stdout.splitlines() if line.startswith("# Failed test")]
    assert len(failed) == 1 and "milestones: " in failed[0], out.stdout[-3000:]
    assert '("outsider: select milestones in org1 -> denied",allowed)' in out.stdout
    assert '("member: select milestones in org2 -> denied",allowed)' in out.stdout
