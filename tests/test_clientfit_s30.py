"""Session 30 client-fit checks: what a user of the installed package meets (found by an independent check)."""

from __future__ import annotations

import pytest

from blueprint_mcp.verify.guard import refusals

# Each of these, run by verify against a user's database, changed it for good before it was refused:
# the rollback does not undo a replication slot moved or consumed, pages written by pg_surgery, or a
# sequence advanced by nextval() in a column's CHECK constraint.
ESCAPES = [
    ("slot-advance", "select pg_replication_slot_advance('user_slot', pg_current_wal_lsn());",
     "pg_replication_slot_advance() acts outside"),
    ("slot-consume", "select count(*) from pg_logical_slot_get_changes('user_slot', null, null);",
     "pg_logical_slot_get_changes() acts outside"),
    ("slot-consume-binary", "select count(*) from pg_catalog.pg_logical_slot_get_binary_changes('s', null, null);",
     "pg_logical_slot_get_binary_changes() acts outside"),
    ("slot-in-sql-body", "create function public.f() returns bigint language sql begin atomic "
                         "select count(*) from pg_logical_slot_get_changes('s', null, null); end;",
     "pg_logical_slot_get_changes() acts outside"),
    ("pg-surgery", "create extension pg_surgery;", "extension pg_surgery"),
    ("heap-force-kill", "select heap_force_kill('public.customers'::regclass, array['(0,1)']::tid[]);",
     "heap_force_kill() acts outside"),
    ("heap-force-freeze", "select public.heap_force_freeze('public.customers'::regclass, array['(0,1)']::tid[]);",
     "heap_force_freeze() acts outside"),
    ("pg-background", "select pg_background_launch('delete from public.customers');",
     "pg_background_launch() acts outside"),
    ("nextval-in-column-check", "create table public.t (x int check (nextval('public.customers_id_seq') > 0));",
     "nextval() advances a sequence"),
    # red team 30 T5: pgsql-http's request function itself (its verbs were refused by their http_ prefix)
    ("http-request", "select status from http(('GET', 'https://example.com', null, null, null)::http_request);",
     "http() acts outside"),
    ("http-request-qualified", "select extensions.http(('GET', 'https://example.com', null, null, null));",
     "http() acts outside"),
    ("nextval-in-added-column-check", "alter table public.t add column y bigint default 1 "
                                      "check (nextval('public.s') > 0);", "nextval() advances a sequence"),
]


@pytest.mark.parametrize(("sql", "reason"), [(s, r) for _, s, r in ESCAPES], ids=[i for i, _, _ in ESCAPES])
def test_escapes_past_the_rollback_are_refused(sql, reason):
    found = refusals(sql)
    assert found and reason in found[0].reason, found


@pytest.mark.parametrize("sql", [
    "create table public.t (id bigint default nextval('public.s'), n serial, x int check (x > 0));",
    "alter table public.t add column y bigint default nextval('public.s');",
    "alter table public.t alter column id set default nextval('public.s');",
    "select count(*) from pg_logical_slot_peek_changes('s', null, null);",
])
def test_column_defaults_and_reads_stay_allowed(sql):
    assert refusals(sql) == []


def test_verify_of_a_mistyped_folder_says_no_such_folder_as_audit_does(tmp_path, capsys):
    from blueprint_mcp.cli import main

    missing = f"{tmp_path}/supabse/"
    assert main(["audit", missing]) == 2
    audit_err = capsys.readouterr().err
    assert main(["verify", missing]) == 2
    err = capsys.readouterr().err
    assert err == audit_err == f"blueprint-mcp: error: {missing}: no such file or folder\n"
    assert main(["verify", "habbit-tracker"]) == 2  # a bare name is still a template, with its suggestion
    assert "did you mean 'habit-tracker'?" in capsys.readouterr().err


@pytest.mark.postgres
def test_a_table_without_a_primary_key_is_attacked_row_by_row_not_with_an_empty_where(empty_db_url):
    """`create table public.t (x int)` (a log table with no key and nothing required) got a fixture row with no
    values, so every case addressing it said `where ` and ended as a syntax error instead of a verdict."""
    from blueprint_mcp.verify.run import verify

    report = verify(source="nopk.sql", migrations=["create table public.t (x int, note text);"],
                    database_url=empty_db_url)
    assert not [c for c in report.failures if "syntax error" in (c.actual or "") + c.sql], report.failures[:3]
    assert report.counts.get("error", 0) == 0, report.counts
    leaked = {c.command for c in report.failures if c.verdict == "LEAK" and c.actor == "anon"}
    assert {"select", "delete"} <= leaked  # no RLS, anon granted: every command reaches the row


@pytest.mark.parametrize("sql", [
    "create function public.f() returns void language plv8 as $$ plv8.execute('select set' + 'val(1)') $$;",
    "create function public.g() returns void language plperl as $$ spi_exec_query('select set' . 'val(1)'); $$;",
    "create procedure public.p() language pltcl as $$ spi_exec \"select pg_terminate_backend(1)\" $$;",
])
def test_a_function_in_a_language_verify_cannot_read_is_refused_as_a_do_block_in_it_is(sql):
    """A trusted language's body runs SQL built at run time through SPI (setval, a slot advanced): the first wall
    refused such DO blocks but let the same code through as a function."""
    found = refusals(sql)
    assert found and "body cannot be checked (it may run SQL built at run time)" in found[0].reason, found


def test_as_root_runuser_is_found_in_sbin_when_path_leaves_it_out(monkeypatch):
    """An editor or cron starting the server as root with PATH=/usr/bin:/bin got 'runuser is missing. Fix: run as
    a normal user' from verify, though /usr/sbin/runuser was there."""
    import os
    import shutil

    from blueprint_mcp.verify import pg

    installed = shutil.which("runuser", path="/usr/sbin:/sbin")
    if installed is None:
        pytest.skip("no runuser in /usr/sbin or /sbin")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert pg.run_as_prefix()[:1] == [installed]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_audit_paths_on_a_stateless_server_names_the_real_reason_for_a_client_with_roots(tmp_path, mode):
    """A 2025-11-25 client (most editors) offering its roots to `serve --stateless` was told 'this client offers no
    workspace roots': stateless HTTP cannot send it the roots request at all, so say that and what to do."""
    from mcp import Client
    from mcp.types import ListRootsResult, Root
    from serving import serving

    (tmp_path / "a.sql").write_text("create table public.t (id int);\n")

    async def roots(_ctx):
        return ListRootsResult(roots=[Root(uri=tmp_path.as_uri(), name="ws")])

    with serving("streamable-http", "--stateless") as port:
        async with Client(f"http://127.0.0.1:{port}/mcp", mode=mode, list_roots_callback=roots) as c:
            result = await c.call_tool("audit_spec", {"paths": ["a.sql"]})
    text = result.content[0].text
    if mode == "auto":  # protocol 2026-07-28 carries the roots request inside the call
        assert result.is_error is False and "ERROR 1" in text, text
    else:
        assert result.is_error is True and "offers no workspace roots" not in text, text
        assert "stateless HTTP" in text and "without --stateless" in text, text


def test_the_sdist_carries_what_its_tests_and_readme_read():
    """The sdist left out examples/ (test_budget, test_examples... glob it: they passed on nothing), .vscode/
    (test_connect reads it), bench/ and BENCHMARKS.md (the README's `make bench` and its link)."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    include = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["sdist"][
        "include"])
    assert {"examples", ".vscode", "bench", "BENCHMARKS.md", "tests", "README.md", "Makefile"} <= include
    assert all((root / p).exists() for p in include), include


# A design whose notes any signed-in user reads (`using (true)`): 4 leaks, which verify must always report.
LEAKY_NOTES = """
create table public.organizations (id uuid primary key default gen_random_uuid(), name text);
create table public.organization_members (organization_id uuid references public.organizations,
    user_id uuid references auth.users, role text, primary key (organization_id, user_id));
alter table public.organizations enable row level security;
alter table public.organization_members enable row level security;
create policy m on public.organization_members for select to authenticated using (user_id = (select auth.uid()));
create policy o on public.organizations for select to authenticated using (id in (select organization_id
    from public.organization_members where user_id = (select auth.uid())));
create table public.notes (id uuid primary key default gen_random_uuid(), organization_id uuid
    references public.organizations, body text);
alter table public.notes enable row level security;
create policy leak on public.notes for select to authenticated using (true);
grant select on public.notes, public.organizations, public.organization_members to authenticated;
"""


@pytest.mark.parametrize("sql", [
    "set row_security = off;",
    "set local row_security to off;",
    "select set_config('row_security', 'off', false);",
    "create function public.f() returns bool language sql set row_security = off as 'select true';",
    "alter function public.f() set row_security to off;",
])
def test_switching_row_security_off_is_refused(sql):
    """With row_security off a query RLS would filter fails with 42501, which verify counts as denied: one
    `set row_security = off;` at the end of a migration turned 4 leaks into a PASS."""
    found = refusals(sql)
    assert found and "changes row_security" in found[0].reason, found


@pytest.mark.postgres
@pytest.mark.parametrize("options", ["row_security=off", "session_replication_role=replica"])
def test_connection_options_cannot_turn_leaks_into_a_pass_or_invent_some(empty_db_url, options, monkeypatch):
    """PGOPTIONS in the user's shell, or `?options=` in a database_url, set the session verify judges in: with
    row_security off the leaks passed; with session_replication_role=replica (no triggers) habit-tracker failed."""
    from blueprint_mcp.verify.run import verify

    monkeypatch.setenv("PGOPTIONS", f"-c {options}")
    leaky = verify(source="leaky.sql", migrations=[LEAKY_NOTES], database_url=empty_db_url)
    assert leaky.leaks == 4 and not leaky.ok
    assert {(c.table, c.command) for c in leaky.failures if c.verdict == "LEAK"} == {("notes", "select")}
    if options.startswith("session_replication_role"):
        from datetime import datetime

        from blueprint_mcp.templates import load_template
        from blueprint_mcp.tools import migrations

        bp = load_template("habit-tracker")
        files = migrations(bp, datetime(2025, 1, 1))
        clean = verify(source="habit-tracker", migrations=[files[p] for p in sorted(files)], blueprint=bp,
                       database_url=empty_db_url, tables={"habits", "organization_members"})
        assert clean.ok and clean.leaks == 0, clean.failures[:3]


JOIN_BY_INSERT = LEAKY_NOTES.replace("using (true)", "using (false)") + """
create policy j on public.organization_members for insert to authenticated with check (user_id = (select auth.uid()));
grant insert on public.organization_members to authenticated;
"""
PINNED = "00000000-0000-0000-0000-0000000000aa"


@pytest.mark.parametrize("sql", [
    f"select set_config('request.jwt.claim.sub', '{PINNED}', false);",
    f"set \"request.jwt.claim.sub\" = '{PINNED}';",
    "select set_config('request.jwt.claim', '{\"sub\": \"x\"}', true);",
    "create function public.f() returns void language plpgsql as $$ begin "
    "perform set_config('request.jwt.claim.role', 'service_role', false); end $$;",
])
def test_pinning_a_legacy_claim_is_refused(sql):
    """auth.uid() reads request.jwt.claim.sub before request.jwt.claims (which each case sets): one migration line
    pinning it made every actor the same user, and an outsider's join by insert passed."""
    found = refusals(sql)
    assert found and "which verify relies on" in found[0].reason, found


@pytest.mark.postgres
def test_a_claim_pinned_by_pgoptions_does_not_hide_the_join_by_insert(empty_db_url, monkeypatch):
    from blueprint_mcp.verify.run import verify

    monkeypatch.setenv("PGOPTIONS", f"-c request.jwt.claim.sub={PINNED}")
    report = verify(source="join.sql", migrations=[JOIN_BY_INSERT], database_url=empty_db_url)
    assert not report.ok and report.leaks > 0
    assert {c.table for c in report.failures if c.verdict == "LEAK"} == {"organization_members"}


@pytest.mark.parametrize("sql", [
    "create or replace function auth.uid() returns uuid language sql stable as $$ select null::uuid $$;",
    "drop function auth.uid() cascade;",
    "alter function auth.jwt() rename to jwt_old;",
    "alter function auth.role() owner to anon;",
    "drop schema auth cascade;",
    "do $$ begin execute 'drop function auth.email()'; end $$;",
])
def test_redefining_who_is_calling_is_refused(sql):
    """`create or replace function auth.uid() ... select '<one uuid>'` made every actor one user in verify's shim
    (the platform would refuse it: its auth functions are not postgres's), and the join by insert passed."""
    found = refusals(sql)
    assert found and ("which the platform owns" in found[0].reason), found


@pytest.mark.parametrize("sql", [
    "grant execute on function auth.uid() to authenticated;",
    "create function auth.whoami() returns uuid language sql stable as $$ select null::uuid $$;",
    "create function public.uid() returns int language sql as 'select 1';",
    "drop schema if exists scratch cascade; drop function if exists public.f();",
])
def test_other_functions_and_schemas_stay_allowed(sql):
    assert refusals(sql) == []


QUIET_AFTER_SIGNUP = """
create schema if not exists private;
create view private.tuning as select name, setting from pg_catalog.pg_settings;
create function private.on_signup_tuning() returns trigger language plpgsql
set search_path = pg_catalog, pg_temp as $$
begin
  update private.tuning set setting = {value} where name = {name};
  return new;
end $$;
create trigger zz_signup_tuning after insert on auth.users for each row execute function private.on_signup_tuning();
"""


@pytest.mark.postgres
def test_row_security_turned_off_after_verify_set_it_leaves_no_verdict(empty_db_url):
    """Red team 30 T1: a write through a view of pg_settings (the first wall reads an update of private.tuning) in
    a trigger fired as verify's fixtures sign the actors up turned row_security off for every case: 4 leaks read
    as denied and the migration PASSED. Each case now checks what its verdict relies on first."""
    from blueprint_mcp.verify.run import verify

    quiet = QUIET_AFTER_SIGNUP.format(name="'row_security'", value="'off'")
    report = verify(source="quiet", migrations=[LEAKY_NOTES, quiet], database_url=empty_db_url)
    assert not report.ok and report.leaks == 0
    assert report.failures and {c.actual.split(":")[0] for c in report.failures} == {"error"}
    assert "changed row_security, session_replication_role or a legacy" in report.failures[0].actual


def test_a_config_toml_outside_the_workspace_roots_is_not_read(tmp_path):
    """Red team 31 F7: audit_spec `paths` read `[api] schemas` from the root's parent and through a linked
    supabase/config.toml, where every .sql file outside the roots is refused."""
    from blueprint_mcp.audit.sources import collect

    root = tmp_path / "work"
    (root / "supabase" / "migrations").mkdir(parents=True)
    (root / "supabase" / "migrations" / "20250101000000_a.sql").write_text("create table public.t (id int);")
    (tmp_path / "config.toml").write_text('[api]\nschemas = ["public", "outside"]\n')
    assert collect([root], within=[root.resolve()]).exposed is None  # the parent of the root
    assert collect([root], within=None).exposed == ["public", "outside"]  # the CLI reads the project's own
    (root / "supabase" / "config.toml").symlink_to(tmp_path / "config.toml")
    assert collect([root], within=[root.resolve()]).exposed is None
    (root / "supabase" / "config.toml").unlink()
    (root / "supabase" / "config.toml").write_text('[api]\nschemas = ["public", "api"]\n')
    assert collect([root], within=[root.resolve()]).exposed == ["public", "api"]
