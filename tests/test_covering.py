"""The tenant index stores what the read policy checks, so a count under RLS is an index-only scan."""

from __future__ import annotations

import json
from datetime import datetime

import psycopg
import pytest

from blueprint_mcp.model import parse_blueprint
from blueprint_mcp.sql.design import build_schema
from blueprint_mcp.templates import load_template
from blueprint_mcp.tools import migration_files
from blueprint_mcp.verify.pg import apply_sql, create_user


def _index(schema, table: str, name: str):
    return next(i for i in schema.table(table).indexes if i.name == name)


def test_the_tenant_index_includes_the_columns_the_read_policy_checks():
    s = build_schema(load_template("habit-tracker"))
    # Archived habits are read by their creator (a member) or an admin: the policy checks created_by.
    assert _index(s, "habits", "habits_organization_id_archived_at_idx").include == ["created_by"]
    s = build_schema(load_template("cms"))
    # Of entries' two tenant indexes, the one that already holds status gains created_by; the other nothing.
    assert _index(s, "entries", "entries_organization_id_status_published_at_idx").include == ["created_by"]
    assert _index(s, "entries", "entries_organization_id_cover_id_idx").include == []
    # An index that already holds every column the policy checks is left as it is.
    s = build_schema(load_template("e-commerce"))
    assert all(i.include == [] for i in s.table("orders").indexes)


def _app(*entities: dict) -> dict:
    return {"app": {"name": "Cover", "slug": "cover"}, "entities": list(entities)}


def test_nothing_is_included_without_a_tenant_index_or_for_wide_or_many_columns():
    plain = _app({"name": "notes", "fields": [{"name": "body", "type": "text"}],
                  "access": {"select": [{"min_role": "member", "own": True}]}})
    assert all(i.include == [] for i in build_schema(parse_blueprint(plain)).table("notes").indexes)
    wide = _app({"name": "notes", "fields": [{"name": "label", "type": "text"}, {"name": "day", "type": "date"}],
                 "query_patterns": [["organization_id", "day"]],
                 "access": {"select": [{"min_role": "member", "where": {"column": "label", "equals": "x"}}]}})
    assert all(i.include == [] for i in build_schema(parse_blueprint(wide)).table("notes").indexes)


@pytest.mark.postgres
def test_a_members_count_of_habits_reads_no_heap(make_db):
    conn = make_db()
    conn.execute("set synchronous_commit = on")  # VACUUM marks pages all-visible only once their commits are flushed
    files = migration_files(load_template("habit-tracker"), datetime(2025, 1, 1))
    for path in sorted(p for p in files if p.startswith("supabase/migrations/")):
        apply_sql(conn, files[path])
    with conn.cursor() as cur:
        ann = create_user(cur, "ann@example.com")
    org = conn.execute("select id from public.organizations where owner_user_id = %s", (ann,)).fetchone()[0]
    apply_sql(conn, f"""
        alter table public.habits disable trigger user;
        insert into public.habits (organization_id, created_by, name)
          select '{org}', '{ann}', 'h' || g from generate_series(1, 2000) g;
        alter table public.habits enable trigger user;
    """)
    conn.execute("vacuum (analyze) public.habits")
    with conn.transaction():
        conn.execute("set local role authenticated")
        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps({"sub": ann}),))
        conn.execute("set local enable_seqscan = off")  # a 2,000-row table: ask for the index the big one gets
        plan = conn.execute("explain (analyze, format json) select count(*) from public.habits").fetchone()[0][0]
        raise psycopg.Rollback()
    scans = []

    def walk(node):
        scans.append(node)
        for child in node.get("Plans") or []:
            walk(child)
    walk(plan["Plan"])
    scan = next(n for n in scans if n.get("Relation Name") == "habits")
    assert (scan["Node Type"], scan["Index Name"], scan["Heap Fetches"], scan["Actual Rows"]) == (
        "Index Only Scan", "habits_organization_id_archived_at_idx", 0, 2000)
