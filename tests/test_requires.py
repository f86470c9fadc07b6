"""`requires` (docs/access.md A26): fields filled or left empty by kind of row.

Three readings of one rule: the CHECK the generator writes, the fixtures verify and the seed build (which must
meet it, whether they read it as written or as PostgreSQL prints it back), and PostgreSQL itself.
"""

from __future__ import annotations

import re

from datetime import datetime

import psycopg
import pytest

from blueprint_mcp.model import parse_blueprint
from blueprint_mcp.model.schema import Column, Constraint, Table
from blueprint_mcp.templates import load_template
from blueprint_mcp.tools import migration_files, verify_rls
from blueprint_mcp.verify.pg import apply_sql
from blueprint_mcp.verify.values import Requirement, allowed_values, domain, ordered_columns, requirement

WRITTEN = [
    ("kind <> 'review' or rating is not null", Requirement("kind", ("review",), ("rating",), ())),
    ("kind <> 'reply' or rating is null", Requirement("kind", ("reply",), (), ("rating",))),
    ("kind not in ('meeting', 'call') or (agenda is not null and dial_in is null)",
     Requirement("kind", ("meeting", "call"), ("agenda",), ("dial_in",))),
    ("urgent <> true or note is not null", Requirement("urgent", ("true",), ("note",), ())),
    ("kind <> 'it''s' or note is null", Requirement("kind", ("it's",), (), ("note",))),
    # Quoted values are read whole: commas, ' or ', casts and capitals inside them are theirs.
    ("kind not in ('a,b', 'c') or rating is not null", Requirement("kind", ("a,b", "c"), ("rating",), ())),
    ("kind not in ('x', 'a or b') or rating is null", Requirement("kind", ("x", "a or b"), (), ("rating",))),
    ("kind <> 'a::b  C' or rating is null", Requirement("kind", ("a::b  C",), (), ("rating",))),
]
PRINTED = [  # as pg_get_constraintdef prints them back (introspection reads with an empty search_path)
    ("CHECK (((kind <> 'review'::public.reviews_kind_enum) OR (rating IS NOT NULL)))",
     Requirement("kind", ("review",), ("rating",), ())),
    ("CHECK (((kind <> ALL (ARRAY['meeting'::public.k_enum, 'call'::public.k_enum])) OR "
     "((agenda IS NOT NULL) AND (dial_in IS NULL))))", Requirement("kind", ("meeting", "call"), ("agenda",), ("dial_in",))),
    ("CHECK (((level <> 3) OR (note IS NULL)))", Requirement("level", ("3",), (), ("note",))),
    ("CHECK (((kind <> ALL (ARRAY['a,b'::text, 'x or y'::text])) OR (rating IS NULL)))",
     Requirement("kind", ("a,b", "x or y"), (), ("rating",))),
    ("CHECK (((level <> ALL (ARRAY[('-1'::integer)::bigint, (2)::bigint])) OR (note IS NULL)))",
     Requirement("level", ("-1", "2"), (), ("note",))),
]
NOT_ONE = ["(kind <> 'x' or a is null) and b is null", "kind <> 'x' or (a is null or b is null)",
           "rating >= 1.0 and rating <= 5.0", "ends_at > starts_at", "CHECK ((period_end > period_start))",
           "status in ('a', 'b')", "kind <> 'x' or b = 1", "kind <> 'x' or note is null or other is null",
           "char_length(body) >= 1"]


@pytest.mark.parametrize("expression,expected", WRITTEN + PRINTED, ids=[e[:50] for e, _ in WRITTEN + PRINTED])
def test_a_requirement_reads_the_same_written_or_printed_back(expression, expected):
    assert requirement(expression) == expected


@pytest.mark.parametrize("expression", NOT_ONE)
def test_other_checks_are_not_requirements(expression):
    assert requirement(expression) is None


def test_a_requirements_list_says_where_it_applies_not_what_the_column_may_hold():
    t = Table(schema_name="public", name="bookings", columns=[
        Column(name="kind", type="text", nullable=False), Column(name="agenda", type="integer")], constraints=[
        Constraint(name="bookings_requires_1_check", kind="check",
                   expression="kind not in ('meeting', 'call') or agenda is not null"),
        Constraint(name="bookings_agenda_check", kind="check", expression="agenda >= 1 and agenda <= 9")])
    assert allowed_values(t, "kind") == []
    assert allowed_values(t, "agenda") == []
    d = domain(t, t.column("agenda"), {})
    assert (d.lo, d.hi) == (1, 9)


def test_comparisons_printed_back_by_postgresql_order_the_fixture_slots():
    t = Table(schema_name="public", name="payouts", columns=[
        Column(name="period_start", type="date", nullable=False), Column(name="period_end", type="date", nullable=False)],
        constraints=[Constraint(name="c", kind="check", expression="CHECK ((period_end > period_start))")])
    assert ordered_columns(t) == {"period_start": 0, "period_end": 1}


def _app(*entities: dict) -> dict:
    return {"app": {"name": "Requires", "slug": "requires"}, "entities": list(entities)}


CALLS = {
    "name": "calls",
    "fields": [
        {"name": "kind", "type": "enum", "values": ["hold", "meeting", "call"], "nullable": False, "default": "hold"},
        {"name": "urgent", "type": "boolean", "nullable": False, "default": False},
        {"name": "agenda", "type": "text"},
        {"name": "dial_in", "type": "text", "check": {"min_length": 3}},
        {"name": "minutes", "type": "integer", "check": {"min": 1, "max": 600}},
        {"name": "escalation", "type": "text"},
    ],
    "requires": [
        {"when": {"column": "kind", "equals": "hold"}, "empty": ["agenda", "dial_in"]},
        {"when": {"column": "kind", "in": ["meeting", "call"]}, "filled": ["agenda", "minutes"]},
        {"when": {"column": "kind", "equals": "call"}, "filled": ["dial_in"]},
        {"when": {"column": "urgent", "equals": True}, "filled": ["escalation"]},
    ],
    "access": {
        "select": "viewer",
        "insert": [{"min_role": "member", "where": {"column": "kind", "in": ["hold", "meeting"]}},
                   {"min_role": "admin"}],
        "update": [{"min_role": "member", "where": {"column": "kind", "in": ["hold", "meeting"]}},
                   {"min_role": "admin"}],
    },
}


@pytest.fixture(scope="module")
def url(pg_cluster):
    pg_cluster.create_database("requires_verify")
    yield f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/requires_verify"
    pg_cluster.drop_database("requires_verify")


@pytest.mark.postgres
def test_verify_meets_every_rule_in_fixtures_inserts_and_kind_changes(url):
    """Every row the matrix writes, every client insert and every update that moves a row to another kind meets
    the rules: a refusal by a CHECK would be an error verdict (or an unbuilt fixture), not a decision of RLS."""
    report = verify_rls(blueprint=_app(CALLS), database_url=url, include_cases=True)
    assert [(f.verdict, f.actor, f.attack or f.command, f.table, f.actual) for f in report.failures] == []
    assert report.fixture_failures == []
    moves = [c for c in report.cases if c.table == "calls" and c.command == "update kind"]
    assert moves and any("agenda = " in c.sql and "kind = 'hold'" in c.sql for c in moves)


@pytest.mark.postgres
def test_verify_reads_the_rules_postgresql_prints_back_for_a_migrations_folder(url):
    """A migrations folder (no blueprint): the rules, the enum casts in keys and the comparisons come back from the
    catalog; every fixture row is built and no case errs (public reviews read as leaks: the generic matrix
    expects anon to read nothing)."""
    from blueprint_mcp.verify.run import verify

    files = migration_files(load_template("marketplace"), datetime(2025, 1, 1))
    report = verify(source="marketplace", migrations=[files[p] for p in sorted(files)
                                                       if p.startswith("supabase/migrations/")], database_url=url)
    assert report.fixture_failures == []
    assert [(c.table, c.command, c.actual) for c in report.failures if c.verdict != "LEAK"] == []
    assert {(c.table, c.command, c.actor) for c in report.failures} <= {
        (t, "select", a) for t in ("reviews", "categories") for a in
        ("anon", "owner", "manager", "shipper", "bookkeeper", "owner2", "hopper", "outsider", "peer")}


@pytest.mark.postgres
def test_a_shops_reply_carries_no_rating_and_a_review_always_one(make_db):
    conn = make_db()
    files = migration_files(load_template("marketplace"), datetime(2025, 1, 1))
    for path in sorted(p for p in files if p.startswith("supabase/migrations/")):
        apply_sql(conn, files[path])
    apply_sql(conn, files["supabase/seed.sql"])
    order, org = conn.execute("select id, organization_id from public.orders order by id limit 1").fetchone()
    conn.execute("delete from public.reviews where order_id = %s", (order,))
    add = "insert into public.reviews (organization_id, order_id, kind, rating, body) values (%s, %s, %s, %s, 'x')"
    for kind, rating in (("reply", 5), ("review", None)):
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(add, (org, order, kind, rating))
    conn.execute(add, (org, order, "review", 4))
    conn.execute(add, (org, order, "reply", None))
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("update public.reviews set rating = 5 where order_id = %s and kind = 'reply'", (order,))


def test_the_marketplace_states_its_rule_and_the_seed_meets_it():
    bp = load_template("marketplace")
    rules = next(e for e in bp.entities if e.name == "reviews").requires
    assert [(r.when.column, r.when.values, r.filled, r.empty) for r in rules] == [
        ("kind", ["review"], ["rating"], []), ("kind", ["reply"], [], ["rating"])]
    seed = migration_files(bp, datetime(2025, 1, 1))["supabase/seed.sql"]
    rows = [line for line in seed.splitlines() if line.startswith("insert into public.reviews")]
    reviews = [line for line in rows if "'review'::" in line]
    replies = [line for line in rows if "'reply'::" in line]
    assert reviews and replies and len(reviews) + len(replies) == len(rows)
    def rating(line: str) -> str | None:
        columns = line.split(" (", 1)[1].split(")", 1)[0].split(", ")
        values = line.rsplit(" values (", 1)[1].rstrip(");").split(", ")
        return dict(zip(columns, values)).get("rating")
    assert all(rating(line) == "1" for line in reviews)
    assert all(rating(line) in (None, "null") for line in replies)


def test_parse_accepts_the_rule_on_the_model():
    bp = parse_blueprint(_app(CALLS))
    assert [len(r.filled) + len(r.empty) for r in bp.entity("calls").requires] == [2, 2, 1, 1]


@pytest.mark.postgres
def test_a_case_the_default_kind_forbids_is_tried_on_a_kind_that_allows_it(url):
    """Review: tasks of the default kind (internal) must leave project_id empty. The cross-organisation reference
    attack, the `under`, naming and lifecycle cases were left out for such rows, so a loosened foreign key
    passed. They now run on a billable task (the rule's column moved outside the rule), and the leak shows."""
    from blueprint_mcp.verify.run import verify

    data = _app({"name": "projects", "fields": [{"name": "title", "type": "text", "nullable": False}]},
                {"name": "tasks", "fields": [
                    {"name": "kind", "type": "enum", "values": ["billable", "internal"], "nullable": False,
                     "default": "internal"},
                    {"name": "project_id", "type": "reference", "references": "projects"}],
                 "requires": [{"when": {"column": "kind", "equals": "internal"}, "empty": ["project_id"]}]})
    bp = parse_blueprint(data)
    files = migration_files(bp, datetime(2025, 1, 1))
    migrations = [files[p] for p in sorted(files) if p.startswith("supabase/migrations/")]
    tenant_fk = ("constraint tasks_organization_id_project_id_fkey foreign key (organization_id, project_id) "
                 "references public.projects (organization_id, id) on delete set null (project_id)")
    assert sum(tenant_fk in m for m in migrations) == 1
    # Loosened twice: the composite key, and the check that a client's reference names a row it may read
    # (docs/access.md A27), which would refuse another organisation's project on its own.
    loose = [re.sub(r"create trigger tasks_visible_refs_\w+\n(.*\n)*?.*;\n", "",
                    m.replace(tenant_fk, "constraint tasks_project_id_fkey foreign key (project_id) "
                                         "references public.projects (id) on delete set null")) for m in migrations]
    assert sum("tasks_visible_refs" in m for m in migrations) and not any("trigger tasks_visible_refs" in m
                                                                          for m in loose)
    for blueprint in (None, bp):
        report = verify(source="loose", migrations=loose, database_url=url, blueprint=blueprint)
        leaks = {(c.attack or c.command) for c in report.failures if c.verdict == "LEAK"}
        assert "insert a tasks row referencing another organisation's projects" in leaks
        assert [c for c in report.failures if c.verdict != "LEAK"] == []
    report = verify(source="tight", migrations=migrations, database_url=url, blueprint=bp, include_cases=True)
    assert report.ok and report.fixture_failures == []
    attack = [c for c in report.cases if c.attack == "insert a tasks row referencing another organisation's projects"]
    assert attack and all("'billable'" in c.sql for c in attack)


@pytest.mark.postgres
def test_rules_that_settle_each_other_and_a_unique_field_to_fill_build_every_row(url, make_db):
    """Review: a kind that asks a status filled, a status that asks a note filled (settled until nothing moves),
    and a unique code with a length check to fill (made distinct like any key, never emptied to dodge it)."""
    data = _app({"name": "notes", "fields": [
        {"name": "kind", "type": "enum", "values": ["a", "b"], "nullable": False, "default": "a"},
        {"name": "status", "type": "enum", "values": ["x", "y"]},
        {"name": "note", "type": "text"},
        {"name": "code", "type": "text", "unique": True, "check": {"min_length": 4, "max_length": 8}}],
        "requires": [{"when": {"column": "status", "equals": "x"}, "filled": ["note"]},
                     {"when": {"column": "kind", "equals": "a"}, "filled": ["status", "code"]}]})
    report = verify_rls(blueprint=data, database_url=url)
    assert report.fixture_failures == []
    assert [(f.verdict, f.actor, f.attack or f.command, f.actual) for f in report.failures] == []
    conn = make_db()
    files = migration_files(parse_blueprint(data), datetime(2025, 1, 1))
    for path in sorted(p for p in files if p.startswith("supabase/migrations/")):
        apply_sql(conn, files[path])
    apply_sql(conn, files["supabase/seed.sql"])
    rows = conn.execute("select kind::text, status::text, note is not null, code, organization_id "
                        "from public.notes").fetchall()
    assert rows and all(status is not None and has_note and code for kind, status, has_note, code, _ in rows
                        if kind == "a")
    assert len({(org, code) for *_, code, org in rows}) == len(rows)  # unique inside the organisation
