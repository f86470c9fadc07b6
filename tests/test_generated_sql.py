"""The generated migrations on a real PostgreSQL 15 with the Supabase auth shim."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from blueprint_mcp.templates import load_template, template_names
from blueprint_mcp.tools import migration_files, write_files

from pgutil import FIXED_TS, migrate

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("grant_mode", ["explicit", "legacy"])
@pytest.mark.parametrize("template", template_names())
def test_migrations_apply_and_every_public_table_has_rls(make_db, template, grant_mode):
    conn = make_db(grant_mode)
    migrate(conn, template)
    no_rls = conn.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relrowsecurity").fetchall()
    assert no_rls == []


def public_tables(template: str) -> set[str]:
    """Entities the blueprint itself makes readable by anyone: a `public` select grant (docs/access.md A11)."""
    bp = load_template(template)
    return {e.name for e in bp.entities if isinstance(e.access.select, list) and any(g.public for g in e.access.select)}


@pytest.mark.parametrize("template", template_names())
def test_every_policy_is_to_authenticated_and_for_one_command(make_db, template):
    """Every policy names authenticated alone, except the select policies of tables the blueprint makes
    public, which also (or only) name anon: exactly those tables, and never for another command."""
    conn = make_db()
    migrate(conn, template)
    policies = conn.execute("select tablename, policyname, roles::text[], cmd from pg_policies").fetchall()
    assert policies, "expected policies"
    public = public_tables(template)
    assert [p for p in policies if p[2] != ["authenticated"]
            and not (p[0] in public and p[3] == "SELECT" and set(p[2]) <= {"anon", "authenticated"})] == []
    assert {p[0] for p in policies if "anon" in p[2]} == public
    assert [p for p in policies if p[3] == "ALL"] == []


@pytest.mark.parametrize("template", template_names())
def test_anon_holds_only_select_on_public_tables_in_legacy_mode(make_db, template):
    """Under the legacy default privileges anon would hold everything: it keeps SELECT on the tables the
    blueprint makes public (their policies pick the rows) and nothing else, private side tables included."""
    conn = make_db("legacy")
    migrate(conn, template)
    granted = conn.execute(
        "select table_name, privilege_type from information_schema.role_table_grants "
        "where grantee = 'anon' and table_schema = 'public'").fetchall()
    assert sorted(granted) == sorted((t, "SELECT") for t in public_tables(template))


@pytest.mark.parametrize("template", template_names())
def test_private_helpers_are_not_executable_by_anon_or_public(make_db, template):
    conn = make_db("legacy")
    migrate(conn, template)
    rows = conn.execute(
        "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
        "where n.nspname = 'private' and (has_function_privilege('anon', p.oid, 'execute'))").fetchall()
    assert rows == []
    definer_without_path = conn.execute(
        "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
        "where n.nspname = 'private' and p.prosecdef "
        "and not coalesce(p.proconfig @> array['search_path=pg_catalog, pg_temp'], false)").fetchall()
    assert definer_without_path == []


def test_rendered_files_apply_with_psql_in_file_name_order(make_db, pg_cluster, tmp_path: Path):
    psql = shutil.which("psql") or str(Path(pg_cluster.bindir) / "psql")
    conn = make_db()
    write_files(migration_files(load_template("habit-tracker"), datetime.fromisoformat(FIXED_TS)), tmp_path)
    dbname = conn.info.dbname
    for sql_file in sorted((tmp_path / "supabase" / "migrations").glob("*.sql")):
        subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg_cluster.dsn(dbname), "-f", str(sql_file)],
                       check=True, capture_output=True, text=True)
    tables = conn.execute("select count(*) from pg_tables where schemaname = 'public' and not rowsecurity").fetchone()
    assert tables == (0,)


def test_generation_is_deterministic():
    ts = datetime.fromisoformat(FIXED_TS)
    assert migration_files(load_template("habit-tracker"), ts) == migration_files(load_template("habit-tracker"), ts)


@pytest.mark.parametrize("template", ["habit-tracker", "e-commerce"])
def test_migrations_alone_are_exactly_the_migration_files_render_writes(template):
    """`migrations` (what the tests apply, without generating the pgTAP file and the seed) is render's migration
    folder to the byte, under the same names."""
    from blueprint_mcp.tools import migrations

    ts = datetime.fromisoformat(FIXED_TS)
    files = migration_files(load_template(template), ts)
    assert migrations(load_template(template), ts) == {
        p: text for p, text in files.items() if p.startswith("supabase/migrations/")}
    assert len(migrations(load_template(template), ts)) == 3


def test_a_linked_chain_through_a_column_named_like_the_helpers_variable_still_reads(make_db):
    """The helpers keep the caller's id in a PL/pgSQL variable, `caller`. A chain ending in a user column of
    that name reads the invoice for the client's user and no one else (without `#variable_conflict
    use_variable` every read failed: column reference "caller" is ambiguous)."""
    from blueprint_mcp.model import parse_blueprint
    from blueprint_mcp.verify.pg import apply_sql, create_user
    from blueprint_mcp.verify.run import blueprint_migrations
    from pgutil import run_as

    bp = parse_blueprint({"app": {"name": "Calls", "slug": "calls"}, "entities": [
        {"name": "clients", "fields": [{"name": "caller", "type": "reference", "references": "auth.users"}],
         "access": {"select": [{"min_role": "member"}, {"linked": ["caller"]}]}},
        {"name": "invoices", "fields": [{"name": "client_id", "type": "reference", "references": "clients"}],
         "access": {"select": [{"min_role": "admin"}, {"linked": ["client_id", "caller"]}]}}]})
    conn = make_db("explicit")
    for sql in blueprint_migrations(bp):
        apply_sql(conn, sql)
    with conn.cursor() as cur:
        linked, other = create_user(cur, "linked@example.com"), create_user(cur, "other@example.com")
        org = cur.execute("insert into public.organizations (name, slug, owner_user_id) values ('O', 'org-one', %s) "
                          "returning id", (other,)).fetchone()[0]
        client = cur.execute("insert into public.clients (organization_id, caller) values (%s, %s) returning id",
                             (org, linked)).fetchone()[0]
        cur.execute("insert into public.invoices (organization_id, client_id) values (%s, %s)", (org, client))
    count = "select count(*) from public.invoices"
    assert run_as(conn, "authenticated", linked, count)[0][0] == 1
    assert run_as(conn, "authenticated", create_user(conn.cursor(), "x@example.com"), count)[0][0] == 0


def test_a_read_rule_is_decided_inside_the_tenant_index_so_a_count_stays_index_only(make_db):
    """habits' read policy also reads archived_at and created_by (archived rows: their creator if a member, or an
    admin). Its query-pattern index (organization_id, archived_at) is extended with created_by, so a member's
    `count(*)` (what PostgREST runs for `Prefer: count=exact`) is an index-only scan that reads no heap, as the
    table owner's count is, and still hides the archived rows of others."""
    from blueprint_mcp.verify.pg import act_as
    from pgutil import run_as

    conn = make_db("explicit")
    migrate(conn, "habit-tracker")
    member, admin, *writers = [str(u) for (u,) in conn.execute(
        "insert into auth.users (id, email) select gen_random_uuid(), 'u' || g || '@x.io' "
        "from generate_series(1, 6) g returning id").fetchall()]
    conn.execute("alter table public.organizations disable trigger user")
    orgs = [str(o) for (o,) in conn.execute(
        "insert into public.organizations (name, slug, owner_user_id) select 'O' || g, 'org-' || g, %s "
        "from generate_series(1, 40) g returning id", (admin,)).fetchall()]
    conn.execute("alter table public.organizations enable trigger user")
    conn.execute("insert into public.organization_members (organization_id, user_id, role) values "
                 "(%s, %s, 'member'), (%s, %s, 'admin')", (orgs[0], member, orgs[0], admin))
    conn.execute("alter table public.habits disable trigger user")
    conn.execute("""insert into public.habits (organization_id, created_by, name, archived_at)
                    select (%s::uuid[])[1 + g %% 40], (%s::uuid[])[1 + g / 40 %% 4], 'h' || g,
                           case when g / 40 %% 10 = 3 then now() end
                    from generate_series(0, 3999) g""", (orgs, writers))
    conn.execute("alter table public.habits enable trigger user")
    for _ in range(5):  # as autovacuum would: until every page is all-visible (asynchronous commits may delay it)
        conn.execute("vacuum (freeze, analyze) public.habits")
        if conn.execute("select relallvisible = relpages from pg_class "
                        "where oid = 'public.habits'::regclass").fetchone()[0]:
            break
    # At this size the planner may take a bitmap scan (which reads the heap whatever the index holds); at scale
    # (bench/policy_speed.py) it takes the index-only scan on its own. Here it is asked which index scan it has.
    with conn.transaction(force_rollback=True):
        cur = conn.cursor()
        cur.execute("set local enable_bitmapscan = off")
        cur.execute("set local enable_seqscan = off")
        act_as(cur, "authenticated", member)
        plan = "\n".join(r[0] for r in cur.execute(
            "explain (analyze, costs off, timing off, summary off) select count(*) from public.habits"))
    assert "Index Only Scan using habits_organization_id_archived_at_created_by_idx on habits" in plan, plan
    assert "Heap Fetches: 0" in plan, plan
    # Writers' archived rows are hidden from the member (who wrote none) and shown to the admin.
    count = "select count(*) from public.habits"
    assert run_as(conn, "authenticated", member, count)[0][0] == 90
    assert run_as(conn, "authenticated", admin, count)[0][0] == 100


def _docs_indexes(**entity) -> list[list[str]]:
    from blueprint_mcp.model import parse_blueprint
    from blueprint_mcp.sql.design import build_schema

    docs = {"name": "docs", "soft_delete": True, "query_patterns": [["organization_id", "status"]], "fields": [
        {"name": "status", "type": "enum", "values": ["draft", "live"], "nullable": False, "default": "draft"},
        {"name": "title", "type": "text"},
        {"name": "reviewer", "type": "reference", "references": "auth.users"},
        {"name": "member_id", "type": "reference", "references": "organization_members"}]}
    bp = parse_blueprint({"app": {"name": "D", "slug": "d"}, "entities": [{**docs, **entity}]})
    return [i.columns for i in next(t for t in build_schema(bp).tables if t.name == "docs").indexes]


@pytest.mark.parametrize(("entity", "index"), [
    # The read rule (archived rows for members) reads archived_at: the pattern's index takes it as a key.
    ({}, ["organization_id", "status", "archived_at"]),
    ({"access": {"select": [{"min_role": "viewer", "assigned": "reviewer"}]}},
     ["organization_id", "status", "reviewer", "archived_at"]),
    # A text column, or a reference to another row (its values do not repeat): no index keyed on it.
    ({"access": {"select": [{"min_role": "viewer", "where": {"column": "title", "equals": "x"}}]}},
     ["organization_id", "status"]),
    ({"access": {"select": [{"min_role": "viewer", "assigned": "member_id"}]}}, ["organization_id", "status"]),
    # A public arm ORed with the members' one: a bitmap scan reads the heap whatever the index holds.
    ({"access": {"select": [{"min_role": "viewer"},
                            {"public": True, "where": {"column": "status", "equals": "live"}}]}},
     ["organization_id", "status"]),
])
def test_a_query_patterns_index_is_extended_with_the_read_rules_columns_only_when_that_keeps_counts_in_it(
        entity, index):
    indexes = _docs_indexes(**entity)
    assert [i for i in indexes if i[:2] == ["organization_id", "status"]] == [index]


def test_a_pattern_that_already_holds_the_read_rules_columns_leaves_the_others_as_declared():
    """(organization_id, status) is not widened into a second (organization_id, status, archived_at)."""
    patterns = [["organization_id", "status"], ["organization_id", "status", "archived_at"]]
    assert [i for i in _docs_indexes(query_patterns=patterns) if i[:2] == ["organization_id", "status"]] == patterns


def test_no_index_is_added_or_extended_for_a_read_rule_without_a_query_pattern():
    """Only an index the blueprint asked for is widened: the tenant-safe key (organization_id, member_id) that
    foreign keys point at is left as it is, and no new index adds to every write."""
    assert _docs_indexes(query_patterns=[]) == [["created_by"], ["reviewer"], ["organization_id", "member_id"]]


INJECTED = ("; grant select, insert, update, delete on table public.deals to anon; create policy deals_anon_all on "
            "public.deals for all to anon using (true) with check (true); --")


def test_a_value_holding_dollar_quotes_stays_inside_its_function_body(make_db):
    """Red team 15: a soft-deleted entity's restore function restates its select grants, `where` values included,
    in a body quoted with $$; a value '$$' ended the body there. The migration failed to parse, and psql without
    ON_ERROR_STOP ran the rest of the value as statements (anon got every privilege on the table and a policy
    opening it). Bodies now take a dollar tag they do not contain: the migrations apply, the values stay values."""
    from blueprint_mcp.audit.parser import parse
    from blueprint_mcp.model import parse_blueprint

    where = {"column": "price_tier", "in": ["$$", INJECTED]}
    grants = [{"min_role": "admin"}, {"min_role": "member", "where": where}]
    bp = parse_blueprint({"app": {"name": "Eats", "slug": "eats"}, "tenancy": {"personal_workspaces": False},
                          "entities": [{"name": "deals", "scope": "organization", "soft_delete": True, "fields": [
                              {"name": "price_tier", "type": "text", "nullable": False, "default": "$"}],
                              "access": {c: grants for c in ("select", "insert", "update", "delete")}}]})
    conn = make_db()
    files = migrate(conn, bp)
    statements = [next(iter(s["stmt"])) for text in files.values() for s in parse(text)]
    assert "GrantStmt" in statements and "CreatePolicyStmt" in statements  # the reading sees statements at all
    grants = [g["GrantStmt"] for text in files.values() for s in parse(text) for g in [s["stmt"]] if "GrantStmt" in g]
    assert [g for g in grants if g.get("is_grant") and "'deals'" in str(g.get("objects"))
            and "'anon'" in str(g.get("grantees"))] == []
    assert "deals_anon_all" not in {s["stmt"]["CreatePolicyStmt"]["policy_name"] for text in files.values()
                                    for s in parse(text) if "CreatePolicyStmt" in s["stmt"]}
    assert "as $fn$" in files[next(p for p in files if p.endswith("_triggers.sql"))]
    assert conn.execute("select count(*) from pg_policies where policyname = 'deals_anon_all'").fetchone() == (0,)
    assert conn.execute("select count(*) from information_schema.role_table_grants where grantee = 'anon' "
                        "and table_name = 'deals'").fetchone() == (0,)


def test_dollar_quoted_takes_a_tag_its_body_does_not_hold():
    from blueprint_mcp.sql.ident import dollar_quoted

    assert dollar_quoted("select 1") == "$$\nselect 1\n$$"
    assert dollar_quoted("select '$$'") == "$fn$\nselect '$$'\n$fn$"
    assert dollar_quoted("select '$$', '$fn$'") == "$fn1$\nselect '$$', '$fn$'\n$fn1$"


def test_a_linked_inserter_gets_one_refusal_for_a_non_member_and_a_member_without_the_role(make_db):
    """Red teams 14 and 16: a user a linked insert grant lets in, naming someone in a member column limited to
    roles, got 23503 from the membership key for a non-member and the role check's message for a member without the
    role, so any signed-in user could probe who belongs to an organisation. The role check now fires before the
    key's (its trigger name sorts first), and refuses both alike."""
    from blueprint_mcp.model import parse_blueprint
    from pgutil import build_world

    bp = parse_blueprint({"app": {"name": "Feedback", "slug": "feedback"}, "tenancy": {"personal_workspaces": False},
                          "entities": [{"name": "tickets", "scope": "organization", "fields": [
                              {"name": "subject", "type": "text", "nullable": False},
                              {"name": "requester", "type": "reference", "references": "auth.users"},
                              {"name": "handler", "type": "reference", "references": "organization_members",
                               "member_roles": ["owner"]}],
                              "access": {"select": [{"min_role": "member"}, {"linked": ["requester"]}],
                                         "insert": [{"min_role": "member"}, {"linked": ["requester"]}]}}]})
    conn = make_db()
    migrate(conn, bp)
    w = build_world(conn, ["owner", "member"])
    insert = ("insert into public.tickets (organization_id, subject, requester, handler) "
              "values (%s, 'probe', auth.uid(), %s)")
    refusals = set()
    for named in ("member", "owner2"):  # a member without the role; someone of another organisation
        with pytest.raises(psycopg.Error) as info:
            w.as_("outsider", insert, (w.org1, w.users[named]))
        refusals.add((info.value.sqlstate, info.value.diag.message_primary))
    assert refusals == {("23503", "tickets.handler must name a member holding one of the roles owner")}
