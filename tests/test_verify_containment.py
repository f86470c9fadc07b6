"""verify never changes the database it is pointed at: escape attempts are refused before anything
runs, the statements that do run cannot end the transaction, and a full catalogue snapshot taken
before and after is identical every time."""

from __future__ import annotations

import subprocess
import threading
import time
import sys
import uuid

import psycopg
import pytest

from blueprint_mcp.model import BlueprintError
from blueprint_mcp.verify import guard
from blueprint_mcp.verify.guard import UnsafeSql, refusals
from blueprint_mcp.verify.run import verify

KEEP = """
create schema app;
create table public.keepme (id int primary key, note text);
insert into public.keepme values (1, 'one'), (2, 'two'), (3, 'three');
create sequence public.keep_seq;
select nextval('public.keep_seq');
create function app.keep() returns int language sql as 'select 1';
"""

# (case id, SQL, the reason verify gives). Each would have destroyed or escaped something on the
# landed main, or acts beyond the database; every one must be refused before anything runs.
ESCAPES = [
    ("commit-after-drop", "drop table public.keepme; commit;", "transaction control ends or escapes"),
    ("commit-first", "commit; drop table public.keepme;", "transaction control"),
    ("end", "end; drop table public.keepme;", "transaction control"),
    ("rollback", "rollback; drop table public.keepme;", "transaction control"),
    ("begin-commit", "begin; drop table public.keepme; commit;", "transaction control"),
    ("commit-and-chain", "commit and chain; drop table public.keepme;", "transaction control"),
    ("savepoint-release-commit", "savepoint a; release a; drop table public.keepme; commit;", "transaction control"),
    ("abort", "abort; drop table public.keepme;", "transaction control"),
    ("start-transaction", "commit; start transaction; drop table public.keepme; commit;", "transaction control"),
    ("prepare-transaction", "drop table public.keepme; prepare transaction 'bp_escape';", "transaction control"),
    ("commit-prepared", "commit prepared 'bp_escape';", "transaction control"),
    ("do-commit", "drop table public.keepme; do $$ begin commit; end $$;", "DO block: transaction control"),
    ("do-rollback-nested", "do $$ begin if true then rollback; end if; end $$;", "DO block: transaction control"),
    ("procedure-commit", "create procedure public.p() language plpgsql as $$ begin drop table public.keepme; "
                         "commit; end $$; call public.p();", "procedure body: transaction control"),
    ("execute-commit", "do $$ begin execute 'commit'; end $$;", "DO block: EXECUTE: transaction control"),
    ("execute-format", "do $$ begin execute format('drop database %I', 'postgres'); end $$;",
     "DO block: EXECUTE: acts on another database"),
    ("execute-computed", "do $$ declare q text := 'commit'; begin execute q; end $$;",
     "EXECUTE of SQL built at run time cannot be checked"),
    # Found by an independent check: %s pastes raw text, and the guard read it as a harmless name.
    ("execute-format-s-constant", "do $$ begin execute format('select 1; %s', 'commit'); end $$;",
     "DO block: EXECUTE: transaction control"),
    ("execute-format-s-computed", "do $$ declare q text := 'commit'; begin execute format('select %s', q); end $$;",
     "EXECUTE of SQL built at run time cannot be checked"),
    ("execute-format-unparsable", "do $$ begin execute format('%*s', 1, 'commit'); end $$;",
     "EXECUTE of text that does not parse as SQL cannot be checked"),
    ("create-database", "create database bp_escape;", "acts on another database"),
    ("drop-database", "drop database if exists postgres;", "acts on another database"),
    ("alter-database", "alter database postgres set work_mem = '1GB';", "changes a database's settings"),
    ("create-role", "create role bp_evil superuser login;", "creates a cluster-wide role"),
    ("alter-role", "alter role postgres nosuperuser;", "changes a cluster-wide role"),
    ("alter-role-set", "alter role authenticated set statement_timeout = 0;", "role's settings"),
    ("drop-role", "drop role if exists anon;", "drops a cluster-wide role"),
    ("grant-role", "grant postgres to authenticated;", "cluster-wide role membership"),
    ("alter-system", "alter system set fsync = off;", "server's configuration file"),
    ("tablespace", "create tablespace bp_ts location '/tmp';", "creates a directory on the server"),
    ("copy-program", "copy public.keepme to program 'rm -rf /tmp/x';", "runs a shell command"),
    ("copy-to-file", "copy public.keepme to '/tmp/keepme.csv';", "reads or writes a file"),
    ("copy-from-file", "copy public.keepme from '/etc/passwd';", "reads or writes a file"),
    ("copy-stdin", "copy public.keepme from stdin;", "needs a client data stream"),
    ("load", "load 'auto_explain';", "loads a shared library"),
    ("vacuum", "vacuum full public.keepme;", "VACUUM cannot run inside a transaction"),
    ("checkpoint", "checkpoint;", "forces a server checkpoint"),
    ("reindex-database", "reindex database postgres;", "reindexes a whole database"),
    ("dblink", "create extension dblink;", "extension dblink reaches beyond the database"),
    ("postgres-fdw", "create extension postgres_fdw;", "extension postgres_fdw reaches beyond"),
    ("foreign-server", "create server bp_s foreign data wrapper postgres_fdw;", "declares a foreign server"),
    ("untrusted-language", "create function public.f() returns int language plpython3u as 'return 1';",
     "untrusted language"),
    ("c-function", "create function public.f() returns int language c as 'libc.so.6', 'abort';", "native code"),
    ("read-file", "select pg_read_file('/etc/passwd');", "pg_read_file() acts outside the transaction"),
    ("ls-dir", "select pg_ls_dir('.');", "pg_ls_dir() acts outside"),
    ("lo-export", "select lo_export(1, '/tmp/x');", "lo_export() acts outside"),
    ("terminate", "select pg_terminate_backend(pid) from pg_stat_activity;", "pg_terminate_backend() acts outside"),
    ("cancel-in-trigger", "create function public.t() returns trigger language plpgsql as $$ begin "
                          "perform pg_cancel_backend(1); return new; end $$;", "function body: pg_cancel_backend()"),
    ("reload-conf", "select pg_reload_conf();", "pg_reload_conf() acts outside"),
    ("advisory-lock", "select pg_advisory_lock(42);", "pg_advisory_lock() acts outside"),
    ("setval", "select setval('public.keep_seq', 1000);", "setval() acts outside"),
    ("statement-timeout", "set statement_timeout = 0; select pg_sleep(100000);", "changes statement_timeout"),
    ("set-config-timeout", "select set_config('statement_timeout', '0', false);", "changes statement_timeout"),
    # pg_settings is a view whose update rule calls set_config(): a SET in disguise.
    ("pg-settings-timeout", "update pg_settings set setting = '0' where name = 'statement_timeout'; "
                            "select pg_sleep(100000);", "writes the system catalog pg_settings"),
    ("pg-settings-qualified", "update pg_catalog.pg_settings set setting = 'anon' where name = 'role';",
     "writes the system catalog pg_settings"),
    ("catalog-write", "update pg_catalog.pg_authid set rolbypassrls = true where rolname = 'authenticated';",
     "writes the system catalog pg_authid"),
    ("reset-all", "reset all;", "RESET ALL would clear"),
    ("session-authorization", "set session authorization authenticated;", "changes session_authorization"),
    ("discard-all", "discard all;", "discards session state"),
    ("sql-function-body", "create function public.f() returns void language sql as "
                          "'select pg_terminate_backend(1)';", "function body: pg_terminate_backend()"),
    ("subscription", "create subscription bp_sub connection 'host=127.0.0.1' publication p;",
     "connects to another server"),
    # Found by an independent attack: SQL run from a string, a function called through an operator, nextval.
    ("nextval", "select nextval('public.keep_seq');", "nextval() advances a sequence"),
    ("query-to-xml", "select query_to_xml('select setval(''public.keep_seq'', 999)', true, false, '');",
     "SQL in a string: setval()"),
    ("query-to-xml-computed", "select query_to_xml('select set' || 'val(''public.keep_seq'', 9)', true, false, '');",
     "query_to_xml() runs SQL built at run time"),
    ("ts-stat", "select * from ts_stat('select pg_read_file(''/etc/passwd'')::tsvector');",
     "SQL in a string: pg_read_file()"),
    ("operator-function", "create operator public.### (function = setval, leftarg = regclass, rightarg = bigint); "
                          "select 'public.keep_seq'::regclass operator(public.###) 5;", "setval() acts outside"),
    ("aggregate-function", "create aggregate public.agg(int) (sfunc = pg_terminate_backend, stype = int);",
     "pg_terminate_backend() acts outside"),
    ("cast-function", "create cast (int as regclass) with function pg_read_file(text);", "pg_read_file() acts outside"),
    ("pgtap-runner", "select lives_ok('select pg_terminate_backend(1)');", "SQL in a string: pg_terminate_backend()"),
]

# What real migrations do and verify must still run (none of it may be refused).
ALLOWED = [
    "create table public.t (id int); alter table public.t enable row level security;",
    "do $$ begin execute format('alter table %I.%I enable row level security', 'public', 't'); end $$;",
    "create function public.touch() returns trigger language plpgsql as $$ begin new.updated_at := now(); "
    "return new; end $$;",
    "create extension if not exists pgcrypto with schema extensions;",
    "select pg_advisory_xact_lock(1);",
    "set local search_path = public; select set_config('search_path', 'public', true);",
    "create function public.f(p int) returns int language sql stable begin atomic select p + 1; end;",
    "analyze;",
    "create sequence public.s; create table public.t2 (id bigint default nextval('public.s'), n serial);",
    "alter table public.t2 alter column id set default nextval('public.s');",
    "insert into public.t2 (id) values (1); comment on table public.t2 is 'select the plan you need';",
]


def _db(pg_cluster) -> tuple[str, str]:
    name = f"contain_{uuid.uuid4().hex[:12]}"
    pg_cluster.create_database(name)
    url = f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(KEEP)
    return name, url


@pytest.fixture
def user_db(pg_cluster):
    """A user's database holding a table with rows, a sequence, a schema and a function."""
    name, url = _db(pg_cluster)
    yield url
    pg_cluster.drop_database(name)


@pytest.fixture(scope="module")
def refusal_db(pg_cluster):
    """One user's database shared by the attempts that must change nothing: each test compares its own snapshots
    from before and after, so an attempt that changed something fails its own test, whatever ran before it
    (a database of its own per attempt cost more than the attempt)."""
    name, url = _db(pg_cluster)
    yield url
    pg_cluster.drop_database(name)


SNAPSHOT = {
    "databases": "select datname, datallowconn, datconnlimit from pg_database order by 1",
    "roles": "select rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolbypassrls, "
             "rolconnlimit from pg_roles order by 1",
    "memberships": "select roleid::regrole::text, member::regrole::text from pg_auth_members order by 1, 2",
    "role_settings": "select setdatabase, setrole::regrole::text, setconfig from pg_db_role_setting order by 1, 2",
    "tablespaces": "select spcname from pg_tablespace order by 1",
    "prepared": "select gid from pg_prepared_xacts order by 1",
    "file_settings": "select name, setting from pg_file_settings order by 1, 2",
    "schemas": "select nspname from pg_namespace where nspname !~ '^pg_(toast_)?temp_' order by 1",
    "relations": "select n.nspname, c.relname, c.relkind, c.relrowsecurity, c.relacl::text from pg_class c "
                 "join pg_namespace n on n.oid = c.relnamespace where n.nspname !~ '^pg_(toast_)?temp_' "
                 "order by 1, 2",
    "functions": "select p.oid::regprocedure::text, md5(p.prosrc), p.proacl::text from pg_proc p order by 1",
    "policies": "select polrelid::regclass::text, polname from pg_policy order by 1, 2",
    "triggers": "select tgrelid::regclass::text, tgname from pg_trigger where not tgisinternal order by 1, 2",
    "extensions": "select extname, extversion from pg_extension order by 1",
    "types": "select count(*) from pg_type",
    "servers": "select srvname from pg_foreign_server order by 1",
    "subscriptions": "select count(*) from pg_subscription",
    "large_objects": "select count(*) from pg_largeobject_metadata",
    "slots": "select slot_name from pg_replication_slots order by 1",
    "keepme": "select array_agg(row(id, note)::text order by id) from public.keepme",
    "sequence": "select last_value, is_called from public.keep_seq",
}


def snapshot(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in SNAPSHOT.items()}


@pytest.mark.parametrize("sql,reason", [c[1:] for c in ESCAPES], ids=[c[0] for c in ESCAPES])
def test_escape_attempts_are_refused_and_leave_the_database_identical(sql, reason, refusal_db):
    before = snapshot(refusal_db)
    with pytest.raises(UnsafeSql) as info:
        verify(source="attack", migrations=["create table public.ok (id int);", sql], database_url=refusal_db)
    message = str(info.value)
    assert message.startswith("migrations: verify refused to run")
    assert "migration 2, line 1, column " in message and reason in message
    assert snapshot(refusal_db) == before


def test_the_escape_corpus_is_at_least_fifty_cases_with_distinct_ids():
    assert len(ESCAPES) >= 50 and len({c[0] for c in ESCAPES}) == len(ESCAPES)


@pytest.mark.parametrize("sql", ALLOWED)
def test_what_real_migrations_do_is_not_refused(sql):
    assert refusals(sql) == []


def test_refusals_give_the_position_of_each_statement():
    sql = "create table public.a (id int);\n-- a comment\n  commit;\n\nselect pg_read_file('x'); select 1;"
    found = refusals(sql, migration=3)
    assert [(r.migration, r.line, r.column, r.statement) for r in found] == [
        (3, 3, 3, "commit"), (3, 5, 1, "select pg_read_file('x')")]


def test_many_refusals_are_capped_in_the_message():
    with pytest.raises(UnsafeSql) as info:
        guard.check_migrations(["commit;\n" * 25])
    message = str(info.value)
    assert "verify refused to run 25 statements" in message and message.count("`commit`") == 10
    assert "; and 15 more" in message


def test_a_migration_read_again_from_the_cache_is_refused_again_and_numbered_by_its_new_place():
    """check_migrations keeps each migration's reading by text and position: the second call refuses the same
    statement, a migration moved to another place is named by that place, and callers get their own lists."""
    safe, unsafe = "create table public.a (id int);", "create table public.b (id int);\ncommit;"
    for _ in range(2):
        with pytest.raises(UnsafeSql, match="migration 2, line 2, column 1: `commit`"):
            guard.check_migrations([safe, unsafe])
    with pytest.raises(UnsafeSql, match="migration 1, line 2, column 1: `commit`"):
        guard.check_migrations([unsafe, safe])
    first, second = guard.check_migrations([safe]), guard.check_migrations([safe])
    assert first == second and first[0] is not second[0]
    assert [s.text for s in first[0]] == ["create table public.a (id int)"]


# Behind the guard, PostgreSQL itself stops these: each statement runs through PL/pgSQL's EXECUTE,
# where transaction control and commands that cannot run in a transaction block are errors; role
# changes are transactional and undone by the forced rollback. (Files, programs and other sessions are beyond a
# rollback: only the guard stops those, tested above. Sequences verify holds in its transaction, which the
# rollback puts back: tests/test_clientfit_s31.py.)
SECOND_WALL_ERRORS = ["commit-after-drop", "commit-first", "end", "rollback", "begin-commit", "commit-and-chain",
                      "savepoint-release-commit", "abort", "start-transaction", "prepare-transaction",
                      "commit-prepared", "do-commit", "do-rollback-nested", "procedure-commit", "execute-commit",
                      "execute-format", "execute-computed", "create-database", "drop-database", "alter-system",
                      "tablespace", "vacuum", "reindex-database", "copy-stdin", "discard-all", "drop-role"]
SECOND_WALL_ROLLED_BACK = ["create-role", "alter-role", "grant-role", "alter-role-set", "reset-all"]


def _without_guard(monkeypatch) -> None:
    monkeypatch.setattr(guard, "_statement_reasons", lambda tree, text: [])  # take the first wall down


@pytest.mark.parametrize("case", SECOND_WALL_ERRORS)
def test_without_the_guard_postgresql_refuses_and_the_database_stays_identical(case, refusal_db, monkeypatch):
    _without_guard(monkeypatch)
    before = snapshot(refusal_db)
    with pytest.raises(BlueprintError, match="migration 1 of 1 failed: line 1, column "):
        verify(source="attack", migrations=[dict((c[0], c[1]) for c in ESCAPES)[case]], database_url=refusal_db)
    assert snapshot(refusal_db) == before


@pytest.mark.parametrize("case", SECOND_WALL_ROLLED_BACK)
def test_without_the_guard_the_rollback_undoes_role_changes(case, user_db, monkeypatch):
    _without_guard(monkeypatch)
    before = snapshot(user_db)
    verify(source="attack", migrations=[dict((c[0], c[1]) for c in ESCAPES)[case]], database_url=user_db)
    assert snapshot(user_db) == before


def test_a_successful_verify_leaves_the_database_identical(user_db):
    before = snapshot(user_db)
    from blueprint_mcp.tools import verify_rls

    report = verify_rls(template="habit-tracker", database_url=user_db)
    assert report.ok is True
    assert snapshot(user_db) == before


def test_a_migration_failing_half_way_leaves_the_database_identical(user_db):
    before = snapshot(user_db)
    with pytest.raises(BlueprintError, match="migration 1 of 1 failed: line 1, column 35: `select 1/0`: "
                                             "division by zero"):
        verify(source="x", migrations=["drop table public.keepme cascade; select 1/0;"], database_url=user_db)
    assert snapshot(user_db) == before


def test_cli_refuses_an_escaping_migration_folder_with_exit_2(user_db, tmp_path):
    folder = tmp_path / "supabase" / "migrations"
    folder.mkdir(parents=True)
    (folder / "20250101000000_init.sql").write_text("create table public.t (id int);\n")
    (folder / "20250101000001_evil.sql").write_text("drop table public.keepme;\ncommit;\n")
    before = snapshot(user_db)
    done = subprocess.run([sys.executable, "-m", "blueprint_mcp", "verify", str(tmp_path), "--database-url", user_db],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        "blueprint-mcp: error: migrations: verify refused to run 1 statement: migration 2, line 2, column 1: "
        "`commit`: transaction control ends or escapes verify's transaction. Fix: verify applies every migration "
        "inside one transaction and rolls it back; remove these statements (BEGIN/COMMIT wrappers are not "
        "needed: the Supabase CLI also runs each migration in a transaction)"]
    assert snapshot(user_db) == before


async def test_verify_rls_over_mcp_refuses_an_escape_and_changes_nothing(user_db):
    from mcp.client.client import Client

    from blueprint_mcp.app import build_server

    before = snapshot(user_db)
    async with Client(build_server()) as client:
        result = await client.call_tool("verify_rls", {"sql": "drop table public.keepme; commit;",
                                                       "database_url": user_db})
    assert result.is_error is True
    assert "verify refused to run 1 statement: migration 1, line 1, column 27: `commit`" in result.content[0].text
    assert snapshot(user_db) == before


# Found by an independent attack: a verify holding a lock on a user's table could run for as long as its SQL
# made it (each statement had 60 s), and a client that cancelled left it running.
HOLD = "lock table public.keepme in access exclusive mode; select pg_sleep(60);"


def _reads_keepme(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set lock_timeout = '3s'")
        return conn.execute("select count(*) from public.keepme").fetchone() == (3,)


def test_a_verify_running_past_its_time_is_stopped_and_rolled_back(user_db, monkeypatch):
    monkeypatch.setenv("BLUEPRINT_VERIFY_TIMEOUT", "1")
    before = snapshot(user_db)
    started = time.monotonic()
    with pytest.raises(BlueprintError, match=r"verify: verify stopped: it ran longer than 1 s \(BLUEPRINT_VERIFY_"
                                             r"TIMEOUT\); everything it ran was rolled back"):
        verify(source="x", migrations=[HOLD], database_url=user_db)
    assert time.monotonic() - started < 15
    assert snapshot(user_db) == before and _reads_keepme(user_db)


def test_a_stopped_verify_cancels_its_statement_and_releases_its_locks(user_db):
    stop = threading.Event()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            verify(source="x", migrations=[HOLD], database_url=user_db, stop=stop)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(1.5)
    stop.set()
    worker.join(timeout=15)
    assert not worker.is_alive()
    assert [str(e).split(";")[0] for e in outcome] == ["verify: verify stopped: it was cancelled"]
    assert _reads_keepme(user_db)


async def test_a_client_cancelling_verify_rls_stops_it(user_db):
    import anyio
    from mcp.client.client import Client

    from blueprint_mcp.app import build_server

    started = time.monotonic()
    async with Client(build_server()) as client:
        with anyio.move_on_after(1.5):
            await client.call_tool("verify_rls", {"sql": HOLD, "database_url": user_db})
        await anyio.sleep(1)
        assert await anyio.to_thread.run_sync(_reads_keepme, user_db)
    assert time.monotonic() - started < 15  # not the 60 s the statement asked for


def test_values_read_from_the_migrations_cannot_end_verifys_transaction(user_db):
    """Fixture rows are sent with their savepoint as one simple query. A migration that switches
    standard_conforming_strings off and names an enum label built to close a quoted literal early would
    otherwise smuggle a COMMIT after it: verify switches the setting back on before writing any row."""
    before = snapshot(user_db)
    label = "\\''; commit; --"  # the label is  \'; commit; --   (written with standard strings)
    sql = (f"create type public.mood as enum ('{label}');\n"
           "create table public.diary (id uuid primary key default gen_random_uuid(), mood public.mood not null);\n"
           "set standard_conforming_strings = off;\n")
    report = verify(source="attack", migrations=[sql], database_url=user_db)
    assert [f for f in report.fixture_failures if "diary" in f] == []  # the row went in, with its label
    assert snapshot(user_db) == before
