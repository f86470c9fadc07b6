"""Generated names stay within 63 bytes and distinct: a 63-character entity validates, renders and applies."""

from __future__ import annotations

from datetime import datetime

import pytest

from blueprint_mcp.model import parse_blueprint
from blueprint_mcp.sql.ident import object_name
from blueprint_mcp.tools import migration_files
from blueprint_mcp.verify.pg import apply_sql

from pgutil import FIXED_TS

# Two 63-character names sharing their first 61 characters: cut naively, every derived name collides.
LONG_A = "a" * 60 + "_xy"
LONG_B = "a" * 60 + "_xz"
LONG_FIELD = "b" * 63
LONG_BLUEPRINT = {
    "app": {"name": "Long names", "slug": "long-names"},
    "entities": [
        {"name": LONG_A, "soft_delete": True,
         "fields": [{"name": LONG_FIELD, "type": "enum", "values": ["c" * 63, "d"], "nullable": False, "default": "d"},
                    {"name": "title", "type": "text", "unique": True, "check": {"max_length": 80}}],
         "query_patterns": [[LONG_FIELD, "title"]], "unique_together": [[LONG_FIELD, "title"]]},
        {"name": LONG_B,
         "fields": [{"name": "parent_" + "x" * 56, "type": "reference", "references": LONG_A},
                    {"name": "title", "type": "text", "unique": True}]},
    ],
    "privacy": {"audit_tables": [LONG_A, LONG_B]},
}


def test_object_name_keeps_a_short_name_as_is():
    assert object_name("habits", "organization_id", suffix="idx") == "habits_organization_id_idx"


def test_object_name_cuts_to_63_bytes_with_a_stable_hash_that_tells_long_inputs_apart():
    a, b = object_name(LONG_A, suffix="created"), object_name(LONG_B, suffix="created")
    assert len(a.encode()) == len(b.encode()) == 63
    assert a != b
    assert a == object_name(LONG_A, suffix="created")
    assert a.endswith("_created") and a.startswith("a" * 40)


def test_a_63_character_entity_gets_distinct_derived_events():
    bp = parse_blueprint(LONG_BLUEPRINT)
    derived = [e.name for e in bp.events() if e.entity]
    assert len(derived) == 6 == len(set(derived))
    assert all(len(name) <= 63 for name in derived)


@pytest.mark.postgres
def test_a_63_character_entity_renders_sql_that_applies_on_postgresql(make_db):
    conn = make_db()
    files = migration_files(parse_blueprint(LONG_BLUEPRINT), datetime.fromisoformat(FIXED_TS))
    for path in sorted(p for p in files if p.startswith("supabase/migrations/")):
        apply_sql(conn, files[path])
    tables = {r[0] for r in conn.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'public' and c.relkind = 'r' and c.relrowsecurity")}
    assert {LONG_A, LONG_B} <= tables
    policies = conn.execute("select count(*), count(distinct policyname) from pg_policies "
                            "where tablename in (%s, %s)", (LONG_A, LONG_B)).fetchone()
    assert policies[0] == policies[1] > 0
