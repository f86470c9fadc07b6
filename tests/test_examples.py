"""The example apps under examples/ (not templates): each audits clean and verifies (tests/test_seed.py renders
and applies them with their seed and runs their pgTAP tests).

They are written only with the documented access constructs, as an assistant would write them,
so they are the end-to-end proof that the generator, the oracle and the auditor agree on apps
beyond the templates.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from blueprint_mcp.audit import Level
from blueprint_mcp.templates import load_blueprint_file
from blueprint_mcp.tools import audit_findings, verify_rls
from blueprint_mcp.verify.pg import apply_sql, create_user
from blueprint_mcp.verify.run import blueprint_migrations

from pgutil import affected, denied

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


def test_marketplace_staff_file_reviews_unapproved_and_only_managers_publish(make_db):
    """Found by an independent attack: staff inserted reviews with approved = true, public at once, past the
    managers-only update that approves them. Staff now insert unapproved reviews only."""
    conn = make_db()
    for sql in blueprint_migrations(load_blueprint_file(ROOT / "examples" / "marketplace.yaml")):
        apply_sql(conn, sql)
    with conn.cursor() as cur:
        users = {who: create_user(cur, f"{who}@example.com") for who in ("owner", "manager", "staff")}
    shop = conn.execute("insert into public.organizations (name, slug, owner_user_id) values ('S', 's-shop', %s) "
                        "returning id", (users["owner"],)).fetchone()[0]
    for who in ("manager", "staff"):
        conn.execute("insert into public.organization_members (organization_id, user_id, role) values (%s, %s, %s)",
                     (shop, users[who], who))
    buyer = conn.execute("insert into public.buyers (organization_id) values (%s) returning id", (shop,)).fetchone()[0]
    listing = conn.execute("insert into public.listings (organization_id, title, price_cents) values (%s, 'L', 1) "
                           "returning id", (shop,)).fetchone()[0]
    orders = [conn.execute("insert into public.orders (organization_id, buyer_id, listing_id, quantity) "
                           "values (%s, %s, %s, 1) returning id", (shop, buyer, listing)).fetchone()[0] for _ in range(3)]
    review = "insert into public.reviews (organization_id, order_id, rating, approved) values (%s, %s, 5, %s)"
    assert denied(conn, "authenticated", users["staff"], review, (shop, orders[0], True)) == "42501"
    assert affected(conn, "authenticated", users["staff"], review, (shop, orders[0], False)) == 1
    assert affected(conn, "authenticated", users["manager"], review, (shop, orders[1], True)) == 1
