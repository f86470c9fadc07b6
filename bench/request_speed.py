"""Policy cost per request, as a client of the API pays it: the same reads as policy_speed, timed end to end.

Usage: python bench/request_speed.py [--rows 100000] [--requests 200] [--rounds 6]
policy_speed times the statement's execution alone (EXPLAIN ANALYZE). A request through the API is a transaction
that sets the role and the JWT claims, runs the statement (planned, unless a prepared plan is reused) and commits;
PostgREST sends it prepared by default, a transaction-mode pooler usually unprepared. Here each request is that
transaction, sent over a local socket and timed at the client:
- the limit: the table owner with the caller's organisation ids spelled out (its transaction sets the same claims);
- the generated policy: `authenticated` with the caller's claims, no filter;
each read once prepared (psycopg server-side statements, reused within the session) and once unprepared, the
page's size a bound parameter as PostgREST binds it. Forms take turns in rounds, each round on fresh sessions
after 20 untimed requests; the median request of a round, then the median over rounds. Same seed as policy_speed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

import psycopg  # noqa: E402
from policy_speed import SIZES, seed, vacuum  # noqa: E402

from blueprint_mcp.templates import load_template  # noqa: E402
from blueprint_mcp.tools import migrations  # noqa: E402
from blueprint_mcp.verify.pg import TempCluster, apply_sql, auth_shim_sql, expose_schemas_sql  # noqa: E402

WARMUP = 20


def reads(orgs: list[str], owner: bool) -> list[tuple[str, str, tuple]]:
    """(label, SQL, parameters): policy_speed's two reads, the page's size bound as PostgREST binds it."""
    ids = ", ".join(f"'{o}'" for o in orgs)
    where = f"where organization_id in ({ids}) " if owner else ""
    return [("select count", f"select count(*) from public.habits {where}", ()),
            ("page of 50 newest", f"select * from public.habits {where}order by created_at desc, id limit %s", (50,))]


def median_request(dsn: str, sql: str, params: tuple, claims: str, role: str, prepared: bool,
                   requests: int) -> tuple[float, list]:
    """Median seconds per request on a fresh session, and the rows the last one returned."""
    with psycopg.connect(dsn) as conn:
        times, rows = [], []
        for i in range(WARMUP + requests):
            start = time.perf_counter()
            with conn.transaction():
                conn.execute("select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
                             (role, claims))
                rows = conn.execute(sql, params, prepare=prepared).fetchall()
            if i >= WARMUP:
                times.append(time.perf_counter() - start)
    return statistics.median(times), rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    orgs = max(max(SIZES), args.rows // 100)
    users = {n: str(uuid.uuid4()) for n in SIZES}
    results = []
    with TempCluster() as cluster:
        cluster.create_database("bench")
        cluster.execute(expose_schemas_sql("bench"))
        dsn = cluster.dsn("bench")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("set synchronous_commit = on")  # as policy_speed: VACUUM marks pages all-visible
            apply_sql(conn, auth_shim_sql("explicit"))
            files = migrations(load_template("habit-tracker"), None)
            for path in sorted(files):
                apply_sql(conn, files[path])
            print(f"seeding {orgs} organisations and {args.rows} habits...", file=sys.stderr)
            seed(conn, orgs, args.rows, users)
            vacuum(conn)
            for n, user in users.items():
                mine = [r[0] for r in conn.execute(
                    "select organization_id from public.organization_members where user_id = %s", (user,))]
                claims = json.dumps({"sub": user, "role": "authenticated"})
                for (label, limit_sql, params), (_, ours_sql, _) in zip(reads(mine, True), reads(mine, False)):
                    for prepared in (True, False):
                        limit_t, ours_t = [], []
                        for _ in range(args.rounds):
                            t, limit_rows = median_request(dsn, limit_sql, params, claims, "none", prepared,
                                                            args.requests)
                            limit_t.append(t)
                            t, ours_rows = median_request(dsn, ours_sql, params, claims, "authenticated", prepared,
                                                          args.requests)
                            ours_t.append(t)
                            if limit_rows != ours_rows:
                                raise SystemExit(f"{label}, user in {n}: the generated policy returned other rows "
                                                 f"({len(ours_rows)}) than the limit ({len(limit_rows)})")
                        ratio = statistics.median(a / b for a, b in zip(ours_t, limit_t))
                        results.append((label, n, "prepared" if prepared else "unprepared",
                                        statistics.median(limit_t) * 1e3, statistics.median(ours_t) * 1e3, ratio))
    print(f"{args.rows:,} habits over {orgs:,} organisations (policy_speed's seed); an admin in 3 and one in 50 "
          f"organisations; per request: set role and claims, the read, commit; median of {args.rounds} rounds of "
          f"{args.requests} requests on fresh sessions over a local socket")
    print(f"{'read':<20}{'user in':>8}{'statement':>12}{'limit ms':>10}{'generated ms':>14}{'ratio':>8}")
    for label, n, kind, limit_ms, ours_ms, ratio in results:
        print(f"{label:<20}{n:>8}{kind:>12}{limit_ms:>10.3f}{ours_ms:>14.3f}{ratio:>7.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
