"""Policy cost, measured side by side in one run: the generated policies vs the limit vs the article's form.

Usage: python bench/policy_speed.py [--rows 100000] [--orgs ROWS/100] [--repeat 25]
On habit-tracker's `habits`, for an admin in 3 organisations and one in 50, each operation runs under
EXPLAIN ANALYZE (TIMING OFF) in a transaction that is rolled back, and prints the median execution time of
- the limit: the table owner (no RLS) with an explicit filter on exactly the caller's organisations;
- the rule: the limit with the rest of the read rule spelled out (archived rows for their creator or an
  admin), so the ratio to it is the cost of the mechanism rather than of the rule;
- the lookup: the table owner running the rule with the caller's memberships looked up in the same
  statement, once per role the rule names (what an app without RLS runs to hide the same rows; the limit
  and the rule know the ids beforehand);
- the floor: the limit with the ids looked up in one sub-select by the caller's id spelled out (no role, no
  archived-row rule, no RLS on the lookup, no auth.uid()): what the lookup itself costs, so that the rest of the
  generated policy's extra time is the price of doing it safely (the caller's id read from the JWT claims, a
  definer call past the membership table's RLS, once per role the rule names);
- the generated policy (`organization_id = any (array(select private.organization_ids_with_role(...)))`);
- the article's form (`organization_id in (select organization_id from organization_members where
  user_id = auth.uid())`), put in place of the generated policies inside the measured transaction,
with each policy's ratio to the limit (the median of the ratios of runs taken in the same round) and the plan
shape of the generated one. Operations: SELECT count, a page of the 50 newest rows, UPDATE of 100 rows, INSERT of
1,000 rows, DELETE of 100 rows. Each organisation's rows are written by 8 people and one in 20 is archived; each
organisation has 8 other members, so the membership lookups read an index of a table of realistic size. Row
counts are checked equal across the five. Triggers are disabled during writes, so only the policies' cost differs. The
table is vacuumed before every operation, as autovacuum keeps a table in use: its pages all-visible (index-only
scans read no heap) and no dead entries left by the rolled-back writes before.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import uuid
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

import psycopg  # noqa: E402
from timing import paired, rounds  # noqa: E402

from blueprint_mcp.templates import load_template  # noqa: E402
from blueprint_mcp.tools import migration_files  # noqa: E402
from blueprint_mcp.verify.pg import TempCluster, apply_sql, auth_shim_sql, expose_schemas_sql  # noqa: E402

MEMBER_ORGS = "organization_id in (select organization_id from public.organization_members where user_id = auth.uid())"
# The article's policies replace the generated ones on the same table inside the measured transaction (then
# rolled back), so both forms run against the same rows, keys and indexes.
ARTICLE_POLICIES = f"""
drop policy habits_select_policy on public.habits;
drop policy habits_insert_policy on public.habits;
drop policy habits_update_policy on public.habits;
drop policy habits_delete_policy on public.habits;
create policy article_select on public.habits for select using ({MEMBER_ORGS});
create policy article_insert on public.habits for insert with check ({MEMBER_ORGS});
create policy article_update on public.habits for update using ({MEMBER_ORGS}) with check ({MEMBER_ORGS});
create policy article_delete on public.habits for delete using ({MEMBER_ORGS});
"""
SIZES = (3, 50)
# Each organisation's rows are written by this many of its people, and one in 20 is archived (soft deleted), as
# in an app in use: a single writer and no archived rows would flatter every index and skip the archived-row rule.
CREATORS = 8
MEMBERS = 8  # members of each organisation besides the two callers


def operations(orgs: list[str], ids: list[str], user: str, form: str) -> list[tuple[str, str]]:
    """(label, SQL) of each operation. `limit`: the table owner spells out the caller's organisations;
    `lookup`: the table owner looks them up as an app without RLS would (the caller is an admin there,
    so reads need any membership and writes admin, as the policies ask of this caller), reads with the
    archived-row rule too; `rule`: the limit with the rest of habits' read rule spelled out too (archived rows:
    their creator if a member, or an admin), what a hand-written filter that hides the same rows runs (writes:
    the limit already is this caller's rule); `floor`: the limit with the ids looked up in one sub-select, as a
    policy's array does, by the caller's id spelled out (no role, no archived-row rule, no RLS on the lookup, no
    auth.uid()): what the lookup alone costs;
    `policy`: no filter."""
    table = "habits"
    if form in ("limit", "rule"):
        def scope(role: str) -> str:
            return ", ".join(f"'{o}'" for o in orgs)
    else:
        def scope(role: str) -> str:
            return (f"select m.organization_id from public.organization_members m where m.user_id = '{user}' "
                    f"and m.role >= '{role}'")
    owner = form != "policy"
    where = f"where organization_id in ({scope('viewer')})" if owner else ""
    if form == "floor":
        def scope(role: str) -> str:
            return (f"select m.organization_id from public.organization_members m where m.user_id = '{user}'"
                    + (f" and m.role >= '{role}'" if role != "viewer" else ""))
        where = f"where organization_id = any (array({scope('viewer')}))"
    if form in ("rule", "lookup"):
        where += (f" and (archived_at is null or (organization_id in ({scope('member')}) and created_by = '{user}') "
                  f"or organization_id in ({scope('admin')}))")
    and_admin = f" and organization_id in ({scope('admin')})" if owner else ""
    if form == "floor":
        and_admin = f" and organization_id = any (array({scope('admin')}))"
    id_list = ", ".join(f"'{i}'" for i in ids)
    if form == "floor":
        insert = (f"insert into public.{table} (organization_id, created_by, name) select '{orgs[0]}', '{user}', "
                  f"'n' || g from generate_series(1, 1000) g where '{orgs[0]}' = any (array({scope('member')}))")
    elif form == "lookup":
        insert = (f"insert into public.{table} (organization_id, created_by, name) select '{orgs[0]}', '{user}', "
                  f"'n' || g from generate_series(1, 1000) g where '{orgs[0]}' in ({scope('member')})")
    elif form in ("limit", "rule"):
        insert = (f"insert into public.{table} (organization_id, created_by, name) "
                  f"select '{orgs[0]}', '{user}', 'n' || g from generate_series(1, 1000) g")
    else:  # the client leaves created_by to its default, auth.uid() (it may not write it)
        insert = (f"insert into public.{table} (organization_id, name) "
                  f"select '{orgs[0]}', 'n' || g from generate_series(1, 1000) g")
    return [
        ("select count", f"select count(*) from public.{table} {where}"),
        ("page of 50 newest", f"select * from public.{table} {where} order by created_at desc, id limit 50"),
        ("update 100 rows", f"update public.{table} set name = name || '!' where id in ({id_list}){and_admin}"),
        ("insert 1,000 rows", insert),
        ("delete 100 rows", f"delete from public.{table} where id in ({id_list}){and_admin}"),
    ]


def run(conn, forms: list[tuple[str, str | None, str]], repeat: int) -> list[tuple[float, int, dict, list[float]]]:
    """For each (SQL, user or None for the table owner, setup) form: median execution ms, rows the top node
    returned, the plan of the last run and every timed run, planning included (timed as bench/timing.py says)."""
    out = []
    for times, plan, planning in rounds(conn, forms, repeat):
        rows = plan.get("Actual Rows", 0) if plan["Node Type"] != "ModifyTable" else _modified(plan)
        out.append((statistics.median(times), rows, plan, times, [t + p for t, p in zip(times, planning)]))
    return out


def _modified(plan: dict) -> int:
    """Rows a ModifyTable node wrote: those its outer child fed it (init plans are the policies' sub-queries)."""
    child = next((k for k in plan.get("Plans") or [] if k.get("Parent Relationship") == "Outer"), {})
    return int(child.get("Actual Rows", 0))


def shape(plan: dict, depth: int = 0) -> str:
    """The plan's node types, children in parentheses, init plans marked: enough to see the strategy."""
    name = plan["Node Type"] + (f" on {plan['Relation Name']}" if "Relation Name" in plan and depth < 3 else "")
    if plan.get("Parent Relationship") == "InitPlan":
        name = "InitPlan " + name
    kids = plan.get("Plans") or []
    return name + (f"({', '.join(shape(k, depth + 1) for k in kids)})" if kids and depth < 3 else "")


def seed(conn, orgs: int, rows: int, users: dict[int, str]) -> None:
    member_rows = "\n".join(
        f"insert into public.organization_members (organization_id, user_id, role) "
        f"select id, '{user}', 'admin' from public.organizations order by slug limit {n};" for n, user in users.items())
    apply_sql(conn, f"""
        alter table public.organizations disable trigger user;
        insert into auth.users (id, email) select gen_random_uuid(), 'u' || g || '@x.io' from generate_series(1, 100) g;
        {' '.join(f"insert into auth.users (id, email) values ('{u}', 'user{n}@x.io');" for n, u in users.items())}
        insert into public.organizations (id, name, slug, owner_user_id)
          select gen_random_uuid(), 'Org ' || g, 'org-' || lpad(g::text, 6, '0'),
                 (select id from auth.users where email = 'u1@x.io')
          from generate_series(1, {orgs}) g;
        alter table public.organizations enable trigger user;
        {member_rows}
        alter table public.habits disable trigger user;
        insert into public.habits (organization_id, created_by, name, created_at, archived_at)
          select o.id, c.id, 'h' || g, now() - make_interval(secs => g),
                 case when (g / {orgs}) % 20 = 7 then now() - make_interval(secs => g) end
          from generate_series(1, {rows}) g
          join (select id, row_number() over (order by email) - 1 as n from auth.users
                 where email ~ '^u[0-9]+@') c on c.n = (g / {orgs}) % {CREATORS}
          join (select id, row_number() over (order by id) - 1 as n from public.organizations) o
            on o.n = g % {orgs};
        -- Each team organisation's other members ({MEMBERS} people, each in one), so a membership lookup reads an
        -- index among {orgs * MEMBERS:,} rows as in an app in use, not a table holding only the two callers'.
        alter table auth.users disable trigger user;
        alter table public.organization_members disable trigger user;
        insert into auth.users (id, email)
          select gen_random_uuid(), 'm' || lpad(g::text, 7, '0') || '@x.io' from generate_series(1, {orgs * MEMBERS}) g;
        insert into public.organization_members (organization_id, user_id, role)
          select o.id, u.id, 'member'
          from (select id, row_number() over (order by email) - 1 as n from auth.users where email ~ '^m[0-9]+@') u
          join (select id, row_number() over (order by slug) - 1 as n from public.organizations
                 where not is_personal) o on o.n = u.n / {MEMBERS};
        alter table public.organization_members enable trigger user;
        alter table auth.users enable trigger user;
        analyze;
    """)


def vacuum(conn) -> None:
    """As autovacuum keeps a table in use: before each operation, so index-only scans see an all-visible table and
    the rolled-back writes of the one before (30 rounds of 1,000 inserted rows, dead in every index) are gone."""
    for _ in range(3):  # a page whose tuples' hint bits were not yet set may need a second pass
        conn.execute("vacuum (freeze, analyze) public.habits, public.organization_members")
        visible, pages = conn.execute(
            "select relallvisible, relpages from pg_class where oid = 'public.habits'::regclass").fetchone()
        if visible >= 0.98 * pages:  # (at 1M rows about 1.6% of the pages stay unmarked, pass after pass)
            return
    raise SystemExit(f"VACUUM left {pages - visible} of {pages} pages of habits not all-visible: the counts would "
                     "read the heap")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--orgs", type=int, default=None, help="default: one per 100 rows")
    ap.add_argument("--repeat", type=int, default=25)
    args = ap.parse_args()
    orgs = args.orgs or max(max(SIZES), args.rows // 100)
    users = {n: str(uuid.uuid4()) for n in SIZES}
    results = []
    with TempCluster() as cluster:
        cluster.create_database("bench")
        cluster.execute(expose_schemas_sql("bench"))
        with psycopg.connect(cluster.dsn("bench"), autocommit=True) as conn:
            # The throwaway cluster commits asynchronously; VACUUM cannot mark a page all-visible while the commit
            # that wrote its rows is not yet flushed, and index-only scans would then read the heap for every row,
            # which a table in production (autovacuumed long after its writes) does not.
            conn.execute("set synchronous_commit = on")
            apply_sql(conn, auth_shim_sql("explicit"))
            files = migration_files(load_template("habit-tracker"), datetime(2025, 1, 1))
            for path in sorted(p for p in files if p.startswith("supabase/migrations/")):
                apply_sql(conn, files[path])
            print(f"seeding {orgs} organisations and {args.rows} habits...", file=sys.stderr)
            seed(conn, orgs, args.rows, users)
            for n, user in users.items():
                mine = [r[0] for r in conn.execute(
                    "select organization_id from public.organization_members where user_id = %s", (user,))]
                ids = [r[0] for r in conn.execute(
                    "select id from public.habits where organization_id = any(%s) order by id limit 100", (mine,))]
                if len(ids) < 100:
                    raise SystemExit(f"the user in {n} organisations sees {len(ids)} rows: raise --rows")
                forms = [operations(mine, ids, user, form) for form in ("limit", "rule", "lookup", "floor", "policy")]
                for (label, limit_sql), (_, rule_sql), (_, lookup_sql), (_, floor_sql), (_, sql) in zip(*forms):
                    vacuum(conn)
                    measured = run(conn, [(limit_sql, None, ""), (rule_sql, None, ""), (lookup_sql, None, ""),
                                          (floor_sql, None, ""), (sql, user, ""), (sql, user, ARTICLE_POLICIES)],
                                   args.repeat)
                    (limit_ms, limit_rows, _, limit_t, limit_all), (_, rule_rows, _, rule_t, _), \
                        (_, lookup_rows, _, lookup_t, _), (_, floor_rows, _, floor_t, _), \
                        (ours_ms, ours_rows, plan, ours_t, ours_all), (art_ms, art_rows, _, art_t, _) = measured
                    if not limit_rows == rule_rows == lookup_rows == floor_rows == ours_rows == art_rows:
                        raise SystemExit(f"{label}, user in {n}: rows differ: limit {limit_rows}, rule {rule_rows}, "
                                         f"lookup {lookup_rows}, floor {floor_rows}, generated {ours_rows}, "
                                         f"article {art_rows}")
                    results.append((label, n, limit_rows, limit_ms, ours_ms, art_ms, paired(ours_t, limit_t),
                                    paired(ours_all, limit_all)[0], paired(ours_t, rule_t)[0],
                                    paired(ours_t, lookup_t)[0], paired(floor_t, limit_t)[0],
                                    paired(art_t, limit_t)[0], shape(plan)))
    print(f"{args.rows:,} habits over {orgs:,} organisations, each with {MEMBERS} other members; an admin in 3 and "
          "one in 50 organisations; "
          f"median of {args.repeat} runs (EXPLAIN ANALYZE, TIMING OFF); triggers off during writes")
    print("limit: the table owner with the caller's organisation ids spelled out; rule: the limit with habits' "
          "archived-row rule spelled out too; lookup: the rule with the ids looked up in organization_members "
          "(what an app without RLS runs); floor: the limit with the ids looked up in one sub-select by the "
          "caller's id spelled out (no role, no archived-row rule, no RLS, no auth.uid()): the lookup alone")
    print("ratios are medians of the ratios within each round; +us: the generated policy's median extra time "
          "over the limit in the same round; planned: /limit with each side's planning time added (a statement sent "
          "unprepared is planned every time; a prepared one reuses its plan)")
    print(f"{'operation':<20}{'user in':>8}{'rows':>7}{'limit ms':>10}{'generated ms':>14}"
          f"{'/limit':>8}{'+us':>7}{'planned':>9}{'/rule':>8}{'/lookup':>9}{'floor':>7}{'article ms':>12}{'/limit':>9}")
    for label, n, rows, limit_ms, ours_ms, art_ms, (ratio, extra), planned, by_rule, by_lookup, floor, art_ratio, _ \
            in results:
        print(f"{label:<20}{n:>8}{rows:>7}{limit_ms:>10.2f}{ours_ms:>14.2f}"
              f"{ratio:>7.2f}x{extra:>7.0f}{planned:>8.2f}x{by_rule:>7.2f}x{by_lookup:>8.2f}x{floor:>6.2f}x"
              f"{art_ms:>12.2f}{art_ratio:>8.1f}x")
    print("\nplan shape of the generated policy:")
    for label, n, *_, plan in results:
        print(f"  {label}, user in {n}: {plan}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
