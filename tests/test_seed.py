"""supabase/seed.sql: applies after the migrations, fills every table, and verify still finds 0 leaks on top of it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from blueprint_mcp.sql.design import build_schema
from blueprint_mcp.seed import seed_sql
from blueprint_mcp.templates import load_blueprint_file
from blueprint_mcp.tools import migration_files
from blueprint_mcp.verify.pg import apply_sql
from blueprint_mcp.verify.run import verify
from pgutil import FIXED_TS

ROOT = Path(__file__).resolve().parents[1]
APPS = sorted((ROOT / "blueprints").glob("*.yaml")) + sorted((ROOT / "examples").glob("*.yaml"))


def test_render_writes_a_deterministic_seed():
    bp = load_blueprint_file(APPS[0])
    files = migration_files(bp, datetime.fromisoformat(FIXED_TS))
    assert files["supabase/seed.sql"] == seed_sql(bp)
    assert "fixture" not in files["supabase/seed.sql"]


@pytest.mark.postgres
@pytest.mark.parametrize("path", APPS, ids=[f"{p.parent.name}/{p.stem}" for p in APPS])
def test_seeded_project_fills_every_table_and_verifies_with_zero_leaks(path, make_db, pg_cluster):
    bp = load_blueprint_file(path)
    files = migration_files(bp, datetime.fromisoformat(FIXED_TS))
    conn = make_db("legacy")
    for name in sorted(p for p in files if p.startswith("supabase/migrations/")):
        apply_sql(conn, files[name])
    apply_sql(conn, files["supabase/seed.sql"])  # as `supabase db reset` does, outside any JWT

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
