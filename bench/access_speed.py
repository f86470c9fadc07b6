"""The new policy forms, side by side with the hand-written filter each replaces, in one run.

Usage: python bench/access_speed.py [--orgs 2000] [--rows 200000] [--repeat 15]
On the access-lab blueprint (tests/fixtures/blueprints/access-lab.yaml, plus `complaints`: personal data
behind a `where`), for a caller in 3 organisations (or a portal user linked to 5 clients), each line
prints the median execution time of the RLS-protected query and of the same query as the table owner
with an explicit filter on exactly the rows the caller may see (the limit), and their ratio. Row counts
are checked equal. The last lines repeat the linked chain on another database holding one big organisation
(--rows invoices over 1,000 clients, a portal user linked to 100 of them, an admin): there the planner
scans the whole table for every caller, so each row's check must not cost more with more linked rows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "server"))

import psycopg  # noqa: E402
from timing import ANON, as_caller, paired, rounds  # noqa: E402

from blueprint_mcp.model import parse_blueprint  # noqa: E402
from blueprint_mcp.verify.pg import TempCluster, apply_sql, auth_shim_sql, expose_schemas_sql  # noqa: E402
from blueprint_mcp.verify.run import blueprint_migrations  # noqa: E402

LAB = ROOT / "tests" / "fixtures" / "blueprints" / "access-lab.yaml"


def seed_sql(orgs: int, rows: int, me: str, portal: str, ed: str) -> str:
    """Organisations, me as viewer in 3 and member in 3 others, an editor in 3 more, rows spread evenly, a
    portal user."""
    return f"""
set session_replication_role = replica;  -- bulk load: no triggers (timestamps, audit, role checks)
insert into auth.users (id, email) values ('{me}', 'me@x.io'), ('{portal}', 'portal@x.io');
insert into auth.users (id, email) select gen_random_uuid(), 'u' || g || '@x.io' from generate_series(1, 50) g;
insert into public.organizations (id, name, slug, owner_user_id)
  select gen_random_uuid(), 'Org ' || g, 'org-' || lpad(g::text, 6, '0'), (select id from auth.users where email = 'u1@x.io')
  from generate_series(1, {orgs}) g;
create temporary table o as select id, row_number() over (order by slug) - 1 as n from public.organizations;
insert into public.organization_members (organization_id, user_id, role)
  select id, '{me}', case when n < 3 then 'viewer' else 'member' end::public.member_role from o where n < 6;
insert into public.organization_members (organization_id, user_id, role)
  select id, (select id from auth.users where email = 'u2@x.io'), 'member' from o;
insert into public.reviews (organization_id, created_by, body)
  select o.id, '{me}', 'r' || g from generate_series(1, {rows}) g join o on o.n = g % {orgs};
insert into public.tasks (organization_id, created_by, title, assignee_id)
  select o.id, '{me}', 't' || g, case when g % 3 = 0 then '{me}'::uuid else (select id from auth.users where email = 'u2@x.io') end
  from generate_series(1, {rows}) g join o on o.n = g % {orgs};
insert into public.clients (organization_id, created_by, name, user_id)
  select o.id, '{me}', 'c' || g, case when g <= 5 then '{portal}'::uuid end
  from generate_series(1, {orgs}) g join o on o.n = g % {orgs};
insert into public.invoices (organization_id, created_by, client_id, amount_cents)
  select c.organization_id, '{me}', c.id, g from generate_series(1, {rows}) g
  join (select id, organization_id, row_number() over (order by id) - 1 as n from public.clients) c on c.n = g % {orgs};
insert into public.folders (organization_id, created_by, title, archived_at)
  select o.id, '{me}', 'f' || g, case when g % 10 = 0 then now() end
  from generate_series(1, {rows}) g join o on o.n = g % {orgs};
insert into public.folders_private (organization_id, created_by, folder_id, notes)
  select organization_id, created_by, id, 'n' from public.folders;
insert into public.dossiers (organization_id, created_by, title)
  select o.id, '{me}', 'd' || g from generate_series(1, {rows}) g join o on o.n = g % {orgs};
insert into public.dossiers_private (organization_id, created_by, dossier_id, body)
  select organization_id, created_by, id, 'personal' from public.dossiers;
insert into public.complaints (organization_id, created_by, state)
  select o.id, '{me}', (case when g % 2 = 0 then 'open' else 'escalated' end)::public.complaints_state_enum
  from generate_series(1, {rows}) g join o on o.n = g % {orgs};
insert into public.complaints_private (organization_id, created_by, complaint_id, details)
  select organization_id, created_by, id, 'personal' from public.complaints;
insert into public.claims (organization_id, created_by, status)
  select o.id, '{me}', (case when g % 2 = 0 then 'draft' else 'approved' end)::public.claims_status_enum
  from generate_series(1, {rows}) g join o on o.n = g % {orgs};
insert into public.claims_private (organization_id, created_by, claim_id, iban)
  select organization_id, created_by, id, 'DE89' from public.claims;
insert into auth.users (id, email) values ('{ed}', 'ed@x.io');
insert into public.organization_members (organization_id, user_id, role)
  select id, '{ed}', 'editor' from o where n >= 6 and n < 9;
insert into public.articles (organization_id, created_by, title, status)
  select o.id, '{me}', 'a' || g, (case when g % 2 = 0 then 'draft' else 'final' end)::public.articles_status_enum
  from generate_series(1, {rows // 10}) g join o on o.n = g % {orgs};
insert into public.article_notes (organization_id, created_by, article_id, body)
  select a.organization_id, '{me}', a.id, 'n' || g from generate_series(1, {rows}) g
  join (select id, organization_id, row_number() over (order by id) - 1 as n from public.articles) a
    on a.n = g % {rows // 10};
update public.articles set published = (status = 'final');  -- the final half is public
insert into public.article_quotes (organization_id, created_by, article_id, body, approved)
  select a.organization_id, '{me}', a.id, 'q' || g, g % 2 = 0 from generate_series(1, {rows}) g
  join (select id, organization_id, row_number() over (order by id) - 1 as n from public.articles) a
    on a.n = g % {rows // 10};
insert into public.drafts (organization_id, created_by, body)
  select o.id, '{me}', 'd' || g from generate_series(1, {rows // 10}) g join o on o.n = g % {orgs};
insert into public.parcels (organization_id, created_by, stage, label)
  select o.id, '{me}', (case when g % 2 = 0 then 'packing' else 'sent' end)::public.parcels_stage_enum, 'p' || g
  from generate_series(1, {rows}) g join o on o.n = g % {orgs};
insert into storage.objects (bucket_id, name, owner_id)
  select 'files', o.id || '/f' || g || '.png', '{me}' from generate_series(1, {rows}) g join o on o.n = g % {orgs};
set session_replication_role = origin;
analyze;
"""


def single_org_sql(rows: int, admin: str, portal: str) -> str:
    """One organisation with every invoice, 1,000 clients (100 linked to the portal user), an admin."""
    return f"""
set session_replication_role = replica;
insert into auth.users (id, email) values ('{admin}', 'admin@x.io'), ('{portal}', 'portal@x.io');
insert into public.organizations (id, name, slug, owner_user_id) values (gen_random_uuid(), 'Big', 'big', '{admin}');
insert into public.organization_members (organization_id, user_id, role)
  select id, '{admin}', 'admin' from public.organizations;
insert into public.clients (organization_id, created_by, name, user_id)
  select o.id, '{admin}', 'c' || g, case when g <= 100 then '{portal}'::uuid end
  from generate_series(1, 1000) g cross join public.organizations o;
insert into public.invoices (organization_id, created_by, client_id, amount_cents)
  select c.organization_id, '{admin}', c.id, g from generate_series(1, {rows}) g
  join (select id, organization_id, row_number() over (order by id) - 1 as n from public.clients) c on c.n = g % 1000;
set session_replication_role = origin;
analyze;
"""


# Personal data behind a `where`: members see only open complaints, so the side checks the row (parent gate).
COMPLAINTS = {"name": "complaints", "fields": [
    {"name": "state", "type": "enum", "values": ["open", "escalated"], "nullable": False, "default": "open"},
    {"name": "details", "type": "text", "pii": True}],
    "access": {"select": [{"min_role": "admin"}, {"roles": ["member"], "where": {"column": "state", "equals": "open"}}],
               "insert": "member", "update": "admin"}}

def timed(conn, forms: list[tuple[str, str | None, str]], repeat: int) -> list[tuple[float, int, list[float]]]:
    """For each (query, caller or None for the owner, setup run first in the same transaction): median execution
    ms (timed as bench/timing.py says), the count it returns and every timed run."""
    out = []
    for (sql, user, setup), (times, _, _) in zip(forms, rounds(conn, forms, repeat)):
        with conn.transaction():
            if setup:
                conn.execute(setup)
            as_caller(conn, user)
            count = conn.execute(sql).fetchone()[0]
            raise psycopg.Rollback()
        out.append((statistics.median(times), count, times))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orgs", type=int, default=2_000)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    data = yaml.safe_load(LAB.read_text())
    data["entities"].append(COMPLAINTS)  # the lab's claims: personal data of a row frozen once approved (A23)
    bp = parse_blueprint(data)
    me, portal, ed = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    print(f"{'form':<48}{'policy ms':>11}{'limit ms':>10}{'ratio':>8}")
    with TempCluster() as cluster:
        with lab_database(cluster, "bench", bp) as conn:
            print(f"seeding {args.orgs} organisations, {args.rows} rows per table...", file=sys.stderr)
            apply_sql(conn, seed_sql(args.orgs, args.rows, me, portal, ed))
            conn.execute("vacuum (analyze)")  # a table in use is vacuumed: index-only scans see it all-visible

            def orgs(role: str, user: str = me) -> str:
                ids = [r[0] for r in conn.execute("select organization_id from public.organization_members "
                                                  "where user_id = %s and role = %s", (user, role))]
                return ", ".join(f"'{i}'" for i in ids)

            viewer, member, editor = orgs("viewer"), orgs("member"), orgs("editor", ed)
            draft_org, draft = conn.execute(
                f"select organization_id, id from public.articles where organization_id in ({editor}) "
                "and status = 'draft' order by id limit 1").fetchone()
            notes = ("insert into public.article_notes (organization_id, {author}article_id, body) select "
                     f"'{draft_org}', {{me}}'{draft}', 'x' || g from generate_series(1, 1000) g")
            editable = (f"select a.id from public.articles a where a.organization_id in ({editor}) "
                        "and a.status in ('draft', 'review')")
            clients = ", ".join(f"'{r[0]}'" for r in conn.execute(
                "select id from public.clients where user_id = %s", (portal,)))
            published = conn.execute("select article_id from public.article_quotes q join public.articles a "
                                     "on a.id = q.article_id where a.published and q.approved order by 1 limit 1"
                                     ).fetchone()[0]
            mine_org, mine = conn.execute(
                f"select organization_id, id from public.drafts where organization_id in ({member}) "
                "order by id limit 1").fetchone()
            comments = ("insert into public.draft_comments (organization_id, {author}draft_id, body) select "
                        f"'{mine_org}', {{me}}'{mine}', 'x' || g from generate_series(1, 1000) g")
            packing = ", ".join(f"'{r[0]}'" for r in conn.execute(
                f"select id from public.parcels where organization_id in ({member}) and stage = 'packing' "
                "order by id limit 100"))
            claims = ", ".join(f"'{r[0]}'" for r in conn.execute(
                f"select cp.id from public.claims_private cp join public.claims c on c.id = cp.claim_id "
                f"where cp.organization_id in ({member}) order by cp.id limit 100"))  # half of them approved
            cases = [
                ("exact roles: reviews, viewer in 3", "select count(*) from public.reviews", me,
                 f"select count(*) from public.reviews where organization_id in ({viewer})"),
                ("assigned: tasks, member in 3", "select count(*) from public.tasks", me,
                 f"select count(*) from public.tasks where organization_id in ({member}) and assignee_id = '{me}'"),
                ("linked chain: invoices, portal user of 5 clients", "select count(*) from public.invoices", portal,
                 f"select count(*) from public.invoices where client_id in ({clients})"),
                ("soft delete: folders, member in 6, restorer in 3", "select count(*) from public.folders", me,
                 f"select count(*) from public.folders where organization_id in ({viewer}, {member}) "
                 f"and (archived_at is null or organization_id in ({viewer}))"),
                ("soft-deleted pii: folders_private, member in 6", "select count(*) from public.folders_private", me,
                 f"select count(*) from public.folders_private fp where fp.organization_id in ({viewer}, {member}) "
                 f"and fp.created_by = '{me}' and exists (select 1 from public.folders f where f.id = fp.folder_id "
                 f"and (f.archived_at is null or f.organization_id in ({viewer})))"),
                ("where-gated pii: complaints_private, member in 3", "select count(*) from public.complaints_private",
                 me, f"select count(*) from public.complaints_private cp where cp.organization_id in ({member}) "
                     f"and cp.created_by = '{me}' and exists (select 1 from public.complaints c "
                     f"where c.id = cp.complaint_id and c.state = 'open')"),
                ("column privacy: dossiers_private, review in 3", "select count(*) from public.dossiers_private", me,
                 f"select count(*) from public.dossiers_private where organization_id in ({viewer})"),
                ("under: article_notes, editor in 3", "select count(*) from public.article_notes", ed,
                 f"select count(*) from public.article_notes n where n.organization_id in ({editor}) "
                 f"and n.article_id in ({editable})"),
                ("under: insert 1,000 article_notes, editor",
                 f"with i as ({notes.format(author='', me='')} returning 1) select count(*) from i", ed,
                 f"with i as ({notes.format(author='created_by, ', me=repr(ed) + ', ')} "
                 f"where '{draft}' in ({editable}) returning 1) select count(*) from i"),
                ("pii under a where: update 100 claims_private",
                 f"with u as (update public.claims_private set iban = 'GB33' where id in ({claims}) returning 1) "
                 "select count(*) from u", me,
                 f"with u as (update public.claims_private cp set iban = 'GB33' where cp.id in ({claims}) "
                 f"and cp.organization_id in ({member}) and cp.created_by = '{me}' and exists (select 1 from "
                 "public.claims c where c.id = cp.claim_id and c.status = 'draft') returning 1) select count(*) from u"),
                ("visible parent: article_quotes, anon", "select count(*) from public.article_quotes", ANON,
                 "select count(*) from public.article_quotes q where q.approved and exists (select 1 from "
                 "public.articles a where a.id = q.article_id and a.published)"),
                # The same, JIT off: the policy's per-row sub-plan is costed high enough (200,000 probes) that
                # PostgreSQL compiles the query first, tens of ms the count then spends; it runs the hashed
                # alternative anyway.
                ("visible parent: article_quotes, anon, jit off", "select count(*) from public.article_quotes", ANON,
                 "select count(*) from public.article_quotes q where q.approved and exists (select 1 from "
                 "public.articles a where a.id = q.article_id and a.published)", "", "set local jit = off;"),
                ("visible parent: one article's quotes, anon",
                 f"select count(*) from public.article_quotes where article_id = '{published}'", ANON,
                 f"select count(*) from public.article_quotes q where q.article_id = '{published}' and q.approved "
                 "and exists (select 1 from public.articles a where a.id = q.article_id and a.published)"),
                ("visible reference: insert 1,000 draft_comments",
                 f"with i as ({comments.format(author='', me='')} returning 1) select count(*) from i", me,
                 f"with i as ({comments.format(author='created_by, ', me=repr(me) + ', ')} where exists (select 1 "
                 f"from public.drafts d where d.id = '{mine}' and d.created_by = '{me}') returning 1) "
                 "select count(*) from i"),
                ("transitions: 100 parcels packing -> sent, member",
                 f"with u as (update public.parcels set stage = 'sent' where id in ({packing})"
                 " returning 1) select count(*) from u", me,
                 f"with u as (update public.parcels set stage = 'sent' where id in ({packing}) and organization_id in "
                 f"({member}) and stage = 'packing' returning 1) select count(*) from u",
                 # the hand-written form checks the move in its own filter, instead of the trigger
                 "alter table public.parcels disable trigger parcels_transitions_update_trg;"),
                ("storage: files objects, viewer+member in 6", "select count(*) from storage.objects", me,
                 "select count(*) from storage.objects where bucket_id = 'files' and split_part(name, '/', 1) in "
                 f"({', '.join(x for x in (viewer, member) if x).replace(chr(39), chr(39))})"),
            ]
            measure(conn, cases, args.repeat)
        admin, portal = str(uuid.uuid4()), str(uuid.uuid4())
        with lab_database(cluster, "single", bp) as conn:
            print(f"seeding one organisation with {args.rows} invoices...", file=sys.stderr)
            apply_sql(conn, single_org_sql(args.rows, admin, portal))
            conn.execute("vacuum (analyze)")
            org = conn.execute("select id from public.organizations").fetchone()[0]
            clients = ", ".join(f"'{r[0]}'" for r in conn.execute(
                "select id from public.clients where user_id = %s", (portal,)))
            measure(conn, [
                ("one organisation: invoices, portal of 100", "select count(*) from public.invoices", portal,
                 f"select count(*) from public.invoices where client_id in ({clients})"),
                ("one organisation: invoices, its admin", "select count(*) from public.invoices", admin,
                 f"select count(*) from public.invoices where organization_id = '{org}'"),
            ], args.repeat)
    return 0


@contextmanager
def lab_database(cluster: TempCluster, name: str, bp) -> Iterator[psycopg.Connection]:
    """A database with the lab's migrations applied, as its owner."""
    cluster.create_database(name)
    cluster.execute(expose_schemas_sql(name))
    with psycopg.connect(cluster.dsn(name), autocommit=True) as conn:
        # Synchronous commits: VACUUM marks pages all-visible only once the commit that wrote them is flushed.
        conn.execute("set synchronous_commit = on")
        apply_sql(conn, auth_shim_sql("explicit"))
        for sql in blueprint_migrations(bp):
            apply_sql(conn, sql)
        yield conn


def measure(conn, cases: list[tuple], repeat: int) -> None:
    """Print each case's line: (label, protected query, caller, the limit's query[, what the limit runs first, e.g.
    to switch off a trigger the hand-written form replaces[, what both run first]]); the ratio is the median of the
    ratios of runs taken in the same round."""
    for label, protected, user, limit_sql, *setups in cases:
        limit_setup, both = (*setups, "", "")[:2]
        conn.execute("vacuum (analyze)")  # as autovacuum would: no dead entries left by the rolled-back inserts
        (ours, seen, ours_t), (limit, expected, limit_t) = timed(
            conn, [(protected, user, both), (limit_sql, None, both + limit_setup)], repeat)
        if seen != expected:
            raise SystemExit(f"{label}: the policy shows {seen} rows, the explicit filter {expected}")
        ratio = paired(ours_t, limit_t)[0]
        print(f"{label:<48}{ours:>11.2f}{limit:>10.2f}{ratio:>7.2f}x", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
