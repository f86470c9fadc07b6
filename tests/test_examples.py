"""The example apps under examples/ (not templates): each renders, applies, audits clean and verifies.

They are written only with the documented access constructs, as an assistant would write them,
so they are the end-to-end proof that the generator, the oracle and the auditor agree on apps
beyond the templates.
"""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from blueprint_mcp.audit import Level
from blueprint_mcp.templates import load_blueprint_file
from blueprint_mcp.tools import audit_findings, migration_files, verify_rls, write_files
from pgutil import FIXED_TS, require_pg_prove
from blueprint_mcp.verify.pg import apply_sql

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
LAB = ROOT / "tests" / "fixtures" / "blueprints" / "access-lab.yaml"
APPS = [*EXAMPLES, LAB]


def test_there_are_three_example_apps():
    assert [p.stem for p in EXAMPLES] == ["clinic", "marketplace", "publishing"]


@pytest.mark.parametrize("path", APPS, ids=[p.stem for p in APPS])
def test_example_audits_with_no_error_or_warning(path):
    findings = audit_findings(blueprint=load_blueprint_file(path))
    assert [(f.name, f.object) for f in findings if f.level in (Level.ERROR, Level.WARN)] == []


@pytest.mark.parametrize("grant_mode", ["legacy", "explicit"])
@pytest.mark.parametrize("path", APPS, ids=[p.stem for p in APPS])
def test_example_verifies_with_zero_leaks_and_every_fixture_built(path, grant_mode, pg_cluster):
    name = f"example_{path.stem.replace('-', '_')}_{grant_mode}"
    pg_cluster.create_database(name)
    try:
        report = verify_rls(path=str(path), database_url=f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/{name}",
                           grant_mode=grant_mode)
    finally:
        pg_cluster.drop_database(name)
    assert report.notes == []  # a fixture the verifier could not build is a failure, not a skip
    assert report.failures == []
    assert report.leaks == 0 and report.ok is True
    assert report.counts["ok"] > 1000


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_renders_a_project_whose_migrations_and_pgtap_tests_pass(path, make_db, pg_cluster, tmp_path):
    files = migration_files(load_blueprint_file(path), datetime.fromisoformat(FIXED_TS))
    write_files(files, tmp_path)
    conn = make_db("legacy")
    for sql_file in sorted((tmp_path / "supabase" / "migrations").glob("*.sql")):
        apply_sql(conn, sql_file.read_text())
    pg_prove = require_pg_prove()
    test_file = next((tmp_path / "supabase" / "tests" / "database").glob("*.test.sql"))
    out = subprocess.run([pg_prove, "-h", "127.0.0.1", "-p", str(pg_cluster.port), "-U", "postgres",
                          "-d", conn.info.dbname, str(test_file)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
