"""The analytics pack on known events: the same exact numbers on PostgreSQL, DuckDB and ClickHouse (chDB).

Two organisations; A is measured, B and A's system events (no user) are noise that must not count.
Window 2025-03-01..2025-03-10. Activity of A (UTC days):
  u7: 02-05 | u1: 02-10, 03-01, 03-02, 03-08 | u2: 03-01, 03-02, 03-15 | u8: 03-01, 03-08, 03-31
  u4: 03-02, 03-03, 03-09 | u3: 03-05 (last event 23:59:59 UTC)
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timezone

import pytest

from blueprint_mcp.analytics import DIALECTS, analytics_queries, funnel, queries_sql, transpile
from blueprint_mcp.analytics.queries import UnknownEvent
from blueprint_mcp.templates import load_template

from pgutil import migrate

BP = load_template("habit-tracker")
ORG_A, ORG_B = uuid.UUID(int=0xA), uuid.UUID(int=0xB)
U = {n: uuid.UUID(int=n) for n in range(1, 9)}
PARAMS = {"organization_id": str(ORG_A), "from_date": "2025-03-01", "to_date": "2025-03-10"}


def _at(day: str, clock: str = "12:00:00") -> datetime:
    return datetime.fromisoformat(f"2025-{day}T{clock}+00:00")


EVENTS = [  # (organisation, user, event, time)
    (ORG_A, U[7], "page_viewed", _at("02-05")),
    (ORG_A, U[1], "user_signed_up", _at("02-10")),  # before the window: not a funnel start
    (ORG_A, U[1], "onboarding_started", _at("03-01")),
    (ORG_A, U[1], "page_viewed", _at("03-02")),
    (ORG_A, U[1], "page_viewed", _at("03-08")),
    (ORG_A, U[2], "user_signed_up", _at("03-01", "10:00:00")),
    (ORG_A, U[2], "onboarding_started", _at("03-01", "10:05:00")),
    (ORG_A, U[2], "onboarding_completed", _at("03-01", "10:10:00")),
    (ORG_A, U[2], "habit_created", _at("03-02", "09:00:00")),
    (ORG_A, U[2], "habit_updated", _at("03-02", "09:30:00")),
    (ORG_A, U[2], "page_viewed", _at("03-15")),
    (ORG_A, U[8], "user_signed_up", _at("03-01")),
    (ORG_A, U[8], "onboarding_started", _at("03-08", "08:00:00")),
    (ORG_A, U[8], "onboarding_completed", _at("03-08", "08:30:00")),
    (ORG_A, U[8], "habit_created", _at("03-31")),  # after the window: the funnel stops at step 3
    (ORG_A, U[4], "user_signed_up", _at("03-02", "08:00:00")),
    (ORG_A, U[4], "onboarding_started", _at("03-02", "08:01:00")),
    (ORG_A, U[4], "habit_created", _at("03-03")),
    (ORG_A, U[4], "habit_check_in_created", _at("03-03", "12:01:00")),
    (ORG_A, U[4], "habit_check_in_created", _at("03-03", "12:02:00")),
    (ORG_A, U[4], "page_viewed", _at("03-09")),
    (ORG_A, U[3], "onboarding_started", _at("03-05", "12:00:00")),  # before signing up: out of order
    (ORG_A, U[3], "user_signed_up", _at("03-05", "13:00:00")),
    (ORG_A, U[3], "onboarding_completed", _at("03-05", "23:59:59")),
    (ORG_A, None, "organization_updated", _at("03-04")),
    (ORG_B, U[1], "page_viewed", _at("03-04")),
    (ORG_B, U[6], "user_signed_up", _at("03-05", "01:00:00")),
    (ORG_B, U[6], "onboarding_started", _at("03-05", "02:00:00")),
    (ORG_B, U[6], "onboarding_completed", _at("03-05", "03:00:00")),
    (ORG_B, U[6], "habit_created", _at("03-05", "04:00:00")),
]

EXPECTED = {
    "active_users": [  # day, dau, wau, mau
        ("2025-03-01", 3, 3, 4), ("2025-03-02", 3, 4, 5), ("2025-03-03", 1, 4, 5), ("2025-03-04", 0, 4, 5),
        ("2025-03-05", 1, 5, 6), ("2025-03-06", 0, 5, 6), ("2025-03-07", 0, 5, 5), ("2025-03-08", 2, 5, 5),
        ("2025-03-09", 1, 4, 5), ("2025-03-10", 0, 4, 5),
    ],
    "retention": [  # cohort day, size, day 1, 7, 14, 30
        ("2025-03-01", 2, 1, 1, 1, 1), ("2025-03-02", 1, 1, 1, 0, 0), ("2025-03-05", 1, 0, 0, 0, 0),
    ],
    "funnel_activation": [
        (1, "user_signed_up", 4), (2, "onboarding_started", 3), (3, "onboarding_completed", 2),
        (4, "habit_created", 1),
    ],
    "funnel_team_growth": [(1, "organization_created", 0), (2, "member_invited", 0), (3, "invitation_accepted", 0)],
    "funnel_conversion": [(1, "user_signed_up", 4), (2, "plan_selected", 0), (3, "checkout_completed", 0)],
    "entity_activity": [  # entity, day, created, updated, deleted, users
        ("habit_check_ins", "2025-03-03", 2, 0, 0, 1), ("habits", "2025-03-02", 1, 1, 0, 1),
        ("habits", "2025-03-03", 1, 0, 0, 1),
    ],
}
QUERIES = {q.name: q for q in analytics_queries(BP)}


def _norm(rows) -> list[tuple]:
    """Dates as ISO text and counts as int, whatever the engine's client returned."""
    def one(v):
        if isinstance(v, (date, datetime)):
            return v.isoformat()[:10]
        if isinstance(v, str) and v.isdigit():
            return int(v)
        return v
    return [tuple(one(v) for v in row) for row in rows]


def _category(name: str) -> str:
    return next(e.category.value for e in BP.events() if e.name == name)


@pytest.fixture(scope="module")
def postgres(pg_cluster, shim_template):
    """The habit-tracker migrations, the events inserted, a session time zone far from UTC."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:16]}"
    pg_cluster.create_database(name, template=shim_template("explicit"))
    conn = psycopg.connect(pg_cluster.dsn(name), autocommit=True)
    try:
        migrate(conn, "habit-tracker")
        with conn.transaction():
            # Keys to auth.users and organizations are not what is measured: skip their triggers.
            conn.execute("set local session_replication_role = replica")
            for org, user, event, at in EVENTS:
                conn.execute("insert into public.events (organization_id, user_id, event_name, event_category,"
                             " occurred_at) values (%s, %s, %s, %s, %s)", (org, user, event, _category(event), at))
        conn.execute("set timezone = 'America/New_York'")  # days are UTC days whatever the session says
        yield conn
    finally:
        conn.close()
        pg_cluster.drop_database(name)


@pytest.fixture(scope="module")
def duck():
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    con.execute("set timezone = 'UTC'")
    con.execute("create table events (organization_id uuid, user_id uuid, event_name varchar,"
                " event_category varchar, occurred_at timestamp)")
    con.executemany("insert into events values (?, ?, ?, ?, ?)",
                    [(o, u, n, _category(n), t.replace(tzinfo=None)) for o, u, n, t in EVENTS])
    yield con
    con.close()


@pytest.fixture(scope="module")
def clickhouse():
    chdb_session = pytest.importorskip("chdb.session")
    s = chdb_session.Session()
    s.query("create table events (organization_id UUID, user_id Nullable(UUID), event_name String,"
            " event_category String, occurred_at DateTime64(6, 'UTC')) engine = Memory")

    def value(v):
        return "NULL" if v is None else "'" + str(v).replace("'", "''") + "'"

    rows = ", ".join(f"({value(o)}, {value(u)}, {value(n)}, {value(_category(n))}, "
                     f"{value(t.astimezone(timezone.utc).strftime('%Y-%m-%d %H:%M:%S'))})"
                     for o, u, n, t in EVENTS)
    s.query(f"insert into events values {rows}")
    yield s
    s.close()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_postgres_answers_exactly(postgres, name):
    rows = postgres.execute(transpile(QUERIES[name], "postgres"), PARAMS).fetchall()
    assert _norm(rows) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_duckdb_answers_the_same(duck, name):
    rows = duck.execute(transpile(QUERIES[name], "duckdb"), PARAMS).fetchall()
    assert _norm(rows) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_clickhouse_answers_the_same(clickhouse, name):
    result = clickhouse.query(transpile(QUERIES[name], "clickhouse"), "JSONCompact", params=PARAMS)
    assert _norm(json.loads(result.bytes())["data"]) == EXPECTED[name]


def test_daily_metrics_view_agrees_with_dau(postgres):
    postgres.execute("select private.refresh_daily_org_metrics()")
    rows = postgres.execute("select day, active_users from private.daily_org_metrics where organization_id = %s"
                            " and day between '2025-03-01' and '2025-03-10' order by day", (ORG_A,)).fetchall()
    # A day with only A's system event has a row with no active user; days without events have none.
    assert _norm(rows) == [("2025-03-01", 3), ("2025-03-02", 3), ("2025-03-03", 1), ("2025-03-04", 0),
                           ("2025-03-05", 1), ("2025-03-08", 2), ("2025-03-09", 1)]


def test_funnel_refuses_events_outside_the_taxonomy():
    with pytest.raises(UnknownEvent, match="invoice_paid not in the blueprint's event taxonomy"):
        funnel("billing", ["user_signed_up", "invoice_paid"], BP)


def test_every_dialect_file_names_every_query():
    names = [q.name for q in analytics_queries(BP)]
    assert names == ["active_users", "retention", "funnel_activation", "funnel_team_growth", "funnel_conversion",
                     "entity_activity"]
    for dialect in DIALECTS:
        text = queries_sql(BP, dialect)
        assert [line[len("-- name: "):] for line in text.splitlines() if line.startswith("-- name: ")] == names
    assert "@organization_id" in queries_sql(BP, "bigquery")
    assert "{organization_id: UUID}" in queries_sql(BP, "clickhouse")


def test_metrics_refresh_is_scheduled_where_pg_cron_exists_and_verify_accepts_the_block(postgres):
    from blueprint_mcp.sql.design import build_schema
    from blueprint_mcp.sql.render import rls_sql
    from blueprint_mcp.verify.guard import refusals

    rls = rls_sql(build_schema(BP), BP.app.slug)
    assert ("perform cron.schedule('refresh_daily_org_metrics', '0 * * * *', "
            "'select private.refresh_daily_org_metrics()');") in rls
    assert refusals(rls) == []
    # This PostgreSQL has no pg_cron: the migrations applied (the fixture) and the block did nothing.
    assert postgres.execute("select count(*) from pg_catalog.pg_extension where extname = 'pg_cron'").fetchone() \
        == (0,)


async def test_resource_serves_the_pack_in_the_asked_dialect_and_names_the_choices_otherwise():
    from mcp import Client, MCPError

    from blueprint_mcp.app import build_server

    async with Client(build_server()) as c:
        duck_text = (await c.read_resource("blueprint://designs/habit-tracker/analytics.sql?dialect=duckdb"))
        default = (await c.read_resource("blueprint://designs/habit-tracker/analytics.sql"))
        with pytest.raises(MCPError, match="unknown dialect 'snowflake'.*postgres, duckdb, clickhouse, bigquery"):
            await c.read_resource("blueprint://designs/habit-tracker/analytics.sql?dialect=snowflake")
    assert duck_text.contents[0].text == queries_sql(BP, "duckdb")
    assert default.contents[0].text == queries_sql(BP, "postgres")
