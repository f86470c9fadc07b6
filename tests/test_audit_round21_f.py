"""Evasion round 21 (BP003/BP017), RLS turned on where the reader did not follow it: a DO loop over
information_schema.tables (fp03), the RLS-on event trigger's `not cmd.in_extension` (fp04, and BP010/BP024 on its
function, which no API role can call), the migration's own RLS helper called in a loop (fp06), a SET LOCAL
session_replication_role that ends at its COMMIT (fp07); the variants: a FOREACH over an array variable (v1), the
enable in the ELSIF branch taken (v2), `to_regclass('notes')` without a schema (v3). Each secure spelling is clean;
each insecure neighbour still reports the tables it leaves open (PostgreSQL's side: /tmp/s30/evasion21/proof.out)."""

from __future__ import annotations

import pytest

from audit_world import DOCUMENTS_OPEN, NOTES_OPEN, OWNED_TABLES
from blueprint_mcp.audit import audit_sql

_WORLD = "\ncreate schema if not exists private;" + OWNED_TABLES
_NOTES, _DOCUMENTS = NOTES_OPEN, DOCUMENTS_OPEN


def _findings(sql: str, world: str = _WORLD) -> set[tuple[str, str]]:
    return {(f.rule_id, f.object) for f in audit_sql([("m.sql", world + sql)]) if f.level.value in ("ERROR", "WARN")}


def test_the_world_alone_reports_both_tables():
    assert _findings("") == _NOTES | _DOCUMENTS


# --- fp03: a loop over information_schema.tables ---------------------------------------------------------------

def _catalog_loop(query: str, command: str) -> str:
    return f"""
do $$
declare r record;
begin
  for r in {query} loop
    execute {command};
  end loop;
end $$;
"""


_INFO = "select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'"
_BY_NAME = "format('alter table public.%I enable row level security', r.table_name)"


@pytest.mark.parametrize("query, command", [
    (_INFO, _BY_NAME),
    ("select table_name from information_schema.tables where table_schema = 'public'", _BY_NAME),
    ("select t.table_name from information_schema.tables t where t.table_schema in ('public') "
     "and t.table_type in ('BASE TABLE')", _BY_NAME),
    ("select table_schema, table_name from information_schema.tables where table_schema = 'public' and "
     "table_type = 'BASE TABLE'",
     "format('alter table %I.%I enable row level security', r.table_schema, r.table_name)"),
    ("select schemaname, tablename from pg_tables where schemaname = 'public'",
     "'alter table ' || quote_ident(r.schemaname) || '.' || quote_ident(r.tablename) || ' enable row level security'"),
])
def test_fp03_a_loop_over_information_schema_tables_turns_rls_on(query, command):
    assert _findings(_catalog_loop(query, command)) == set()


def test_fp03_the_loops_that_name_other_tables_leave_these_reported():
    views = _INFO.replace("'BASE TABLE'", "'VIEW'")
    assert _findings(_catalog_loop(views, _BY_NAME)) == _NOTES | _DOCUMENTS
    other = _INFO.replace("'public'", "'app'")
    assert _findings(_catalog_loop(other, _BY_NAME)) == _NOTES | _DOCUMENTS
    some = _INFO + " and table_name like 'n%'"
    assert _findings(_catalog_loop(some, _BY_NAME)) == _DOCUMENTS
    swapped = "format('alter table %I.%I enable row level security', r.table_name, r.table_schema)"
    both = _INFO.replace("select table_name", "select table_schema, table_name")
    assert _findings(_catalog_loop(both, swapped)) == _NOTES | _DOCUMENTS


# --- fp04: the RLS-on event trigger skips extension tables ----------------------------------------------------------

_EVENT = """
create or replace function public.rls_auto_enable() returns event_trigger
language plpgsql security definer set search_path = pg_catalog as $$
declare cmd record;
begin
  for cmd in select * from pg_event_trigger_ddl_commands()
    where command_tag in ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
      and object_type in ('table', 'partitioned table')
  loop
    if {test} then
      execute format('alter table %s enable row level security', cmd.object_identity);
    end if;
  end loop;
end $$;
create event trigger ensure_rls on ddl_command_end
  when tag in ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO') execute function public.rls_auto_enable();
"""
_LATER = """
create table public.later (id uuid primary key default gen_random_uuid(),
  owner_id uuid not null references auth.users (id) on delete cascade, body text);
create index on public.later (owner_id);
create policy later_own on public.later for select to authenticated using (owner_id = (select auth.uid()));
"""
_LATER_OPEN = {("BP003", "public.later"), ("BP017", "public.later")}


@pytest.mark.parametrize("test", [
    "cmd.schema_name = 'public' and not cmd.in_extension",
    "cmd.schema_name = 'public' and cmd.in_extension = false",
    "cmd.schema_name = 'public' and cmd.in_extension is not true",
    "cmd.schema_name = 'public' and cmd.in_extension is false",
    "cmd.schema_name = 'public' and cmd.in_extension = 'f'",
    "cmd.schema_name = any (array['public'])",
    "cmd.schema_name = any ('{public,app}'::text[])",
    "cmd.schema_name <> all (array['auth', 'storage'])",
    "cmd.schema_name like any (array['pub%'])",
])
def test_fp04_the_event_trigger_tests_of_in_extension_and_arrays_are_read(test):
    assert _findings(_EVENT.format(test=test) + _LATER, "") == set()


@pytest.mark.parametrize("test", [
    "cmd.in_extension",
    "cmd.schema_name = 'public' and cmd.in_extension is true",
    "cmd.schema_name <> all (array['public'])",
    "cmd.schema_name <> any (array['public'])",
    "cmd.schema_name = all (array['public', 'app'])",
])
def test_fp04_a_test_that_admits_no_table_of_the_migration_leaves_it_reported(test):
    assert _findings(_EVENT.format(test=test) + _LATER, "") == _LATER_OPEN


def test_fp04_a_guard_on_in_extension_in_the_loop_query_or_before_the_enable():
    guarded = _EVENT.format(test="true").replace(
        "and object_type in ('table', 'partitioned table')", "and object_type = 'table' and not in_extension")
    assert _findings(guarded + _LATER, "") == set()
    skip = _EVENT.format(test="cmd.schema_name = 'public'").replace(
        "    if cmd.schema_name", "    if cmd.in_extension then continue; end if;\n    if cmd.schema_name")
    assert _findings(skip + _LATER, "") == set()
    wrong_way = _EVENT.format(test="cmd.schema_name = 'public'").replace(
        "    if cmd.schema_name", "    if not cmd.in_extension then continue; end if;\n    if cmd.schema_name")
    assert _findings(wrong_way + _LATER, "") == _LATER_OPEN


def test_fp04_an_event_trigger_function_is_not_callable_over_rpc_but_a_definer_rpc_is():
    """PostgreSQL: `select public.rls_auto_enable()` as authenticated fails, `trigger functions can only be called
    as triggers`; BP010 and BP024 are about what clients call over /rest/v1/rpc."""
    assert _findings(_EVENT.format(test="cmd.schema_name = 'public'"), "") == set()
    rpc = ("create function public.add_note(p text) returns void language sql security definer "
           "set search_path = '' as $$ select 1 $$;\n")
    assert _findings(rpc, "") == {("BP010", "public.add_note"), ("BP024", "public.add_note")}


# --- fp06: the migration's own RLS helper called in a loop ---------------------------------------------------------

_HELPER = """
create function private.secure_table(p_table text) returns void
language plpgsql set search_path = '' as $$
begin
  execute format('alter table public.%I {action} row level security', p_table);
end $$;
"""
_SECURE = _HELPER.format(action="enable")
_OPEN = _HELPER.format(action="disable")
_TABLES_HELPER = """
create function private.secure_tables({params}) returns void
language plpgsql set search_path = '' as $$
declare t text;
begin
  foreach t in array p_tables loop
    execute format('alter table public.%I enable row level security', t);
  end loop;
end $$;
"""


@pytest.mark.parametrize("call", [
    "do $$ declare t text; begin foreach t in array array['notes', 'documents'] loop "
    "perform private.secure_table(t); end loop; end $$;",
    "do $$ declare r record; begin for r in select unnest(array['notes', 'documents']) as tname loop "
    "perform private.secure_table(r.tname); end loop; end $$;",
    "do $$ declare t text; n text; begin foreach t in array '{notes,documents}'::text[] loop "
    "perform private.secure_table(p_table => t); end loop; end $$;",
    "select private.secure_table(t) from unnest(array['notes', 'documents']) t;",
    "select private.secure_table(x.name) from unnest('{notes,documents}'::text[]) as x(name);",
    "do $$ begin perform private.secure_table(t) from unnest(array['notes', 'documents']) t; end $$;",
])
def test_fp06_the_helper_called_once_per_name_turns_rls_on_for_each(call):
    assert _findings(_SECURE + call) == set()


def test_fp06_a_procedure_called_in_the_loop():
    procedure = _SECURE.replace("function private.secure_table(p_table text) returns void",
                                "procedure private.secure_table(p_table text)")
    call = ("do $$ declare t text; begin foreach t in array array['notes', 'documents'] loop "
            "call private.secure_table(t); end loop; end $$;")
    assert _findings(procedure + call) == set()


@pytest.mark.parametrize("params, call", [
    ("p_tables text[]", "select private.secure_tables(array['notes', 'documents']);"),
    ("p_tables text[]", "select private.secure_tables('{notes,documents}');"),
    ("variadic p_tables text[]", "select private.secure_tables('notes', 'documents');"),
    ("variadic p_tables text[]", "select private.secure_tables(variadic array['notes', 'documents']);"),
])
def test_fp06_a_helper_given_the_names_loops_over_them(params, call):
    assert _findings(_TABLES_HELPER.format(params=params) + call) == set()
    fewer = call.replace(", 'documents'", "").replace(",documents", "")
    assert _findings(_TABLES_HELPER.format(params=params) + fewer) == _DOCUMENTS


def test_fp06_a_helper_that_opens_a_table_called_in_a_loop_opens_the_tables_named():
    both = ("alter table public.notes enable row level security;\n"
            "alter table public.documents enable row level security;\n")
    loop = ("do $$ declare t text; begin foreach t in array array['notes'] loop "
            "perform private.secure_table(t); end loop; end $$;")
    assert _findings(both + _OPEN + loop) == _NOTES
    scan = "select private.secure_table(t) from unnest(array['documents']) t;"
    assert _findings(both + _OPEN + scan) == _DOCUMENTS
    assert _findings(_SECURE + loop) == _DOCUMENTS
    filtered = "select private.secure_table(t) from unnest(array['notes', 'documents']) t where t = 'notes';"
    assert _findings(_SECURE + filtered) == _NOTES | _DOCUMENTS  # (which rows pass is not read: may not run)


# --- fp07: SET LOCAL session_replication_role ends at COMMIT ------------------------------------------------------

_TRIGGER = _EVENT.format(test="cmd.schema_name = 'public'").replace("public.rls_auto_enable", "private.rls_auto_enable")
_SEED = """
create table public.countries (code text primary key, name text not null);
create policy countries_read on public.countries for select to anon, authenticated using (true);
"""


@pytest.mark.parametrize("seed", [
    "begin;\nset local session_replication_role = replica;\ninsert into public.countries values ('FR', 'France');\n"
    "commit;\n",
    "begin;\nselect set_config('session_replication_role', 'replica', true);\n"
    "insert into public.countries values ('FR', 'France');\ncommit;\n",
    "begin;\nset local session_replication_role = replica;\nrollback;\n",
    "set session_replication_role = replica;\ninsert into public.countries values ('FR', 'France');\n"
    "reset session_replication_role;\n",
])
def test_fp07_replica_mode_that_has_ended_lets_the_event_trigger_fire(seed):
    assert _findings(_TRIGGER + _SEED + seed + _LATER, "") == set()


@pytest.mark.parametrize("seed", [
    "begin;\nset session_replication_role = replica;\ncommit;\n",
    "begin;\nset local session_replication_role = replica;\nset session_replication_role = replica;\ncommit;\n",
    "begin;\nselect set_config('session_replication_role', 'replica', false);\ncommit;\n",
    "set local session_replication_role = replica;\n",  # (the file is one transaction: it lasts to its end)
])
def test_fp07_replica_mode_still_in_force_keeps_the_trigger_off(seed):
    assert _findings(_TRIGGER + _SEED + seed + _LATER, "") == _LATER_OPEN


def test_fp07_replica_mode_set_local_inside_the_transaction_keeps_the_trigger_off_there():
    inside = "begin;\nset local session_replication_role = replica;\n" + _LATER + "commit;\n"
    assert _findings(_TRIGGER + _SEED + inside, "") == _LATER_OPEN


# --- v1: a FOREACH over an array variable ---------------------------------------------------------------------------

def _array_loop(declared: str, before: str = "", action: str = "enable") -> str:
    return f"""
do $$
declare
  {declared}
  t text;
begin
  {before}
  foreach t in array tables loop
    execute format('alter table public.%I {action} row level security', t);
  end loop;
end $$;
"""


@pytest.mark.parametrize("declared, before", [
    ("tables text[] := array['notes', 'documents'];", ""),
    ("tables text[] := '{notes,documents}';", ""),
    ("tables text[] := string_to_array('notes,documents', ',');", ""),
    ("tables text[];", "tables := array['notes', 'documents'];"),
])
def test_v1_a_loop_over_an_array_variable_turns_rls_on_for_its_names(declared, before):
    assert _findings(_array_loop(declared, before)) == set()


def test_v1_an_array_variable_that_may_hold_another_list_leaves_the_tables_reported():
    maybe = _array_loop("tables text[] := array['notes'];",
                        "if random() > 0.5 then tables := array['notes', 'documents']; end if;")
    assert _findings(maybe) == _NOTES | _DOCUMENTS
    assert _findings(_array_loop("tables text[] := array['notes'];")) == _DOCUMENTS
    both = ("alter table public.notes enable row level security;\n"
            "alter table public.documents enable row level security;\n")
    assert _findings(both + _array_loop("tables text[] := array['documents'];", action="disable")) == _DOCUMENTS
    for grown in ("array['x'] || 'documents'", "'documents' || array['x']", "array['x'] || array['documents']"):
        assert _findings(both + _array_loop(f"tables text[] := {grown};", action="disable")) == _DOCUMENTS, grown


# --- v2, v3: to_regclass guards ------------------------------------------------------------------------------------

_ELSIF = """
alter table public.documents enable row level security;
do $$
begin
  if to_regclass('public.{legacy}') is not null then
    null;
  elsif to_regclass('public.notes') is not null then
    alter table public.notes enable row level security;
  end if;
end $$;
"""


def test_v2_the_elsif_after_a_test_of_a_table_that_does_not_exist_runs():
    assert _findings(_ELSIF.format(legacy="notes_v1")) == set()


@pytest.mark.parametrize("before, legacy", [
    ("create table public.notes_v1 (id int primary key);\nalter table public.notes_v1 enable row level security;\n",
     "notes_v1"),
    ("create sequence public.notes_counter;\n", "notes_counter"),
    ("create type public.notes_shape as (a int);\n", "notes_shape"),
    ("create index notes_by_body on public.notes (body);\n", "notes_by_body"),
    ("", "notes_pkey"),  # (the primary key's index)
    ("", "notes_owner_id_idx"),  # (`create index on public.notes (owner_id)`)
])
def test_v2_a_relation_that_may_exist_leaves_the_elsif_uncertain(before, legacy):
    assert _findings(before + _ELSIF.format(legacy=legacy)) == _NOTES


_UNQUALIFIED = """
do $$
begin
  if to_regclass('notes') is not null then
    alter table public.notes enable row level security;
  end if;
  if to_regclass('documents') is not null then
    alter table public.documents enable row level security;
  end if;
end $$;
"""


def test_v3_to_regclass_without_a_schema_finds_the_table_on_the_search_path():
    assert _findings(_UNQUALIFIED) == set()
    assert _findings("set search_path = app;\n" + _UNQUALIFIED) == _NOTES | _DOCUMENTS
    unknown = _UNQUALIFIED.replace("to_regclass('notes') is not null", "to_regclass('notes_v1') is null")
    assert _findings(unknown) == _NOTES
