"""Policy speed, measured side by side in one run: generated policy vs the article's vs no RLS.

Usage: python bench/policy_speed.py [--orgs 10000] [--rows 1000000] [--repeat 5]
Prints the median execution time of `select count(*) from habits` for a user in 3 organisations,
and each form's ratio to the limit (table owner, no RLS, explicit filter on the 3 ids).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import uuid
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

import psycopg  # noqa: E402

from blueprint_mcp.templates import load_template  # noqa: E402
from blueprint_mcp.tools import migration_files  # noqa: E402
from blueprint_mcp.verify.pg import TempCluster, apply_sql, auth_shim_sql, expose_schemas_sql  # noqa: E402

ARTICLE_POLICY = """
create table public.habits_article (like public.habits including all);
alter table public.habits_article enable row level security;
grant select on public.habits_article to authenticated;
create policy "Users see own org habits" on public.habits_article for select using (
  organization_id in (select organization_id from public.organization_members where user_id = auth.uid()));
"""


def median_ms(conn, sql: str, as_user: str | None, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        with conn.transaction():
            if as_user:
                conn.execute("set local role authenticated")
                conn.execute("select set_config('request.jwt.claims', %s, true)",
                             (json.dumps({"sub": as_user, "role": "authenticated"}),))
            plan = conn.execute("explain (analyze, format json) " + sql).fetchone()[0]
            times.append(plan[0]["Execution Time"])
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orgs", type=int, default=10_000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with TempCluster() as cluster:
        cluster.create_database("bench")
        cluster.execute(expose_schemas_sql("bench"))
        with psycopg.connect(cluster.dsn("bench"), autocommit=True) as conn:
            apply_sql(conn, auth_shim_sql("explicit"))
            files = migration_files(load_template("habit-tracker"), datetime(2025, 1, 1))
            for path in sorted(p for p in files if p.startswith("supabase/migrations/")):
                apply_sql(conn, files[path])
            user = str(uuid.uuid4())
            print(f"seeding {args.orgs} organisations and {args.rows} habits...", file=sys.stderr)
            apply_sql(conn, f"""
                alter table public.organizations disable trigger user;
                insert into auth.users (id, email) select gen_random_uuid(), 'u' || g || '@x.io' from generate_series(1, 100) g;
                insert into auth.users (id, email) values ('{user}', 'me@x.io');
                insert into public.organizations (id, name, slug, owner_user_id)
                  select gen_random_uuid(), 'Org ' || g, 'org-' || g, (select id from auth.users where email = 'u1@x.io')
                  from generate_series(1, {args.orgs}) g;
                alter table public.organizations enable trigger user;
                insert into public.organization_members (organization_id, user_id, role)
                  select id, '{user}', 'member' from public.organizations order by slug limit 3;
                insert into public.habits (organization_id, created_by, name)
                  select o.id, '{user}', 'h' || g
                  from generate_series(1, {args.rows}) g
                  join (select id, row_number() over (order by id) - 1 as n from public.organizations) o
                    on o.n = g % {args.orgs};
                {ARTICLE_POLICY}
                insert into public.habits_article select * from public.habits;
                analyze;
            """)
            ids = [r[0] for r in conn.execute(
                "select organization_id from public.organization_members where user_id = %s", (user,))]
            id_list = ", ".join(f"'{i}'" for i in ids)
            limit = median_ms(conn, f"select count(*) from public.habits where organization_id in ({id_list})",
                              None, args.repeat)
            ours = median_ms(conn, "select count(*) from public.habits", user, args.repeat)
            article = median_ms(conn, "select count(*) from public.habits_article", user, args.repeat)
            expected = conn.execute(
                f"select count(*) from public.habits where organization_id in ({id_list})").fetchone()[0]
            for table in ("habits", "habits_article"):
                with conn.transaction():
                    conn.execute("set local role authenticated")
                    conn.execute("select set_config('request.jwt.claims', %s, true)",
                                 (json.dumps({"sub": user, "role": "authenticated"}),))
                    seen = conn.execute(f"select count(*) from public.{table}").fetchone()[0]
                if seen != expected:
                    raise SystemExit(f"{table}: the policy shows {seen} rows, expected {expected}")
            counts = [expected]
    print(f"{args.rows} habits over {args.orgs} organisations; user in 3 (visible rows: {counts[0]})")
    print(f"{'policy':<52}{'median ms':>12}{'vs limit':>10}")
    for label, ms in (("limit: owner, no RLS, explicit filter", limit),
                      ("generated: = any (array(select private.helper()))", ours),
                      ("article: in (select ... where user_id = auth.uid())", article)):
        print(f"{label:<52}{ms:>12.2f}{ms / limit:>9.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
