"""Evasion round 16, the "RLS on by default" event-trigger reader (audit/event_body.py): guards on tg_tag (e05,
fp02) and guard clauses that log before they jump (e17, fp08). PostgreSQL's side of the same shapes is the corpus
case rls_disabled_in_public_event_trigger_tg_tag_and_logged_guards (tests/corpus/platform.yaml)."""

from __future__ import annotations

import pytest

from blueprint_mcp.audit import audit_sql

_FUNCTION = """
create function private.rls_auto_enable() returns event_trigger
language plpgsql security definer set search_path = pg_catalog as $$
declare
  cmd record;
begin
{body}
end $$;
"""
_LOOP = """  for cmd in select * from pg_event_trigger_ddl_commands() where object_type = 'table' loop
{body}
  end loop;"""
_ENABLE = "execute format('alter table %s enable row level security', cmd.object_identity);"
_ANY_TAG = "create event trigger ensure_rls on ddl_command_end execute function private.rls_auto_enable();\n"
_TABLE_TAGS = ("create event trigger ensure_rls on ddl_command_end when tag in ('CREATE TABLE', 'CREATE TABLE AS', "
               "'SELECT INTO') execute function private.rls_auto_enable();\n")
_DOCUMENTS = """
create table public.documents (id uuid primary key, organization_id uuid not null, title text not null);
create policy documents_select on public.documents for select to authenticated using (true);
"""
_BACKUP = """
create table public.projects (id uuid primary key, organization_id uuid not null, notes text);
alter table public.projects enable row level security;
create policy projects_select on public.projects for select to authenticated using (true);
create table public.projects_notes_backup as select id, organization_id, notes from public.projects;
alter table public.projects_notes_backup add primary key (id);
"""
_SCRATCH = """
create table public.tmp_contact_import (id bigint primary key, organization_id uuid not null, email text not null);
"""
_RLS = {"BP003", "BP017"}


def _findings(sql: str) -> set[tuple[str, str]]:
    return {(f.rule_id, f.object) for f in audit_sql([("m.sql", sql)]) if f.rule_id in _RLS}


def _function(guard: str, loop: str) -> str:
    return _FUNCTION.format(body=guard + _LOOP.format(body=loop))


def test_e05_a_guard_on_tg_tag_keeps_a_ctas_table_out():
    loop = f"    if cmd.schema_name = 'public' then\n      {_ENABLE}\n    end if;"
    guarded = _function("  if tg_tag <> 'CREATE TABLE' then\n    return;\n  end if;\n", loop) + _ANY_TAG
    assert _findings(guarded + _DOCUMENTS + _BACKUP) == {("BP003", "public.projects_notes_backup")}
    fixed = _function("", loop) + _TABLE_TAGS
    assert _findings(fixed + _DOCUMENTS + _BACKUP) == set()


def test_e05_a_test_the_reader_cannot_read_leaves_the_tables_reported():
    loop = f"    if cmd.schema_name = 'public' then\n      {_ENABLE}\n    end if;"
    for guard in ("  if tg_tag = any (v_tags) then\n    return;\n  end if;\n",
                  "  if current_setting('app.skip_rls', true) = 'on' then\n    return;\n  end if;\n",
                  "  if upper(tg_tag) <> 'CREATE TABLE' then\n    return;\n  end if;\n"):
        sql = _function(guard, loop) + _ANY_TAG + _DOCUMENTS + _BACKUP
        assert _findings(sql) == {("BP003", "public.documents"), ("BP017", "public.documents"),
                                  ("BP003", "public.projects_notes_backup")}, guard


def test_fp02_a_negated_in_on_tg_tag_lets_every_table_creating_command_in():
    loop = f"    if cmd.schema_name = 'public' then\n      {_ENABLE}\n    end if;"
    guard = "  if tg_tag not in ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO') then\n    return;\n  end if;\n"
    assert _findings(_function(guard, loop) + _ANY_TAG + _DOCUMENTS + _BACKUP) == set()
    narrower = "  if tg_tag not in ('CREATE TABLE', 'SELECT INTO') then\n    return;\n  end if;\n"
    assert _findings(_function(narrower, loop) + _ANY_TAG + _DOCUMENTS + _BACKUP) == {
        ("BP003", "public.projects_notes_backup")}


@pytest.mark.parametrize("before_jump", [
    "raise log 'rls_auto_enable: % is an import scratch table, left as is', cmd.object_identity;",
    "raise notice 'skipped %', cmd.object_identity;\n      perform pg_notify('rls', cmd.object_identity);",
])
def test_e17_a_logged_skip_guard_skips_the_tables_its_test_admits(before_jump):
    loop = (f"    if cmd.object_identity like 'public.tmp%' then\n      {before_jump}\n      continue;\n    end if;\n"
            f"    {_ENABLE}")
    sql = _function("", loop) + _TABLE_TAGS + _DOCUMENTS + _SCRATCH
    assert _findings(sql) == {("BP003", "public.tmp_contact_import")}
    fixed = sql + "alter table public.tmp_contact_import enable row level security;\n"
    assert _findings(fixed) == set()


def test_fp08_a_logged_skip_of_other_schemas_covers_public():
    loop = ("    if cmd.schema_name <> 'public' then\n      raise log 'rls_auto_enable: skipping %', "
            f"cmd.object_identity;\n      continue;\n    end if;\n    {_ENABLE}")
    assert _findings(_function("", loop) + _TABLE_TAGS + _DOCUMENTS) == set()
    # The same guard that raises instead of logging aborts the command: nothing reaches the EXECUTE for the
    # tables it admits, and the others still get RLS.
    raising = loop.replace("raise log", "raise exception")
    assert _findings(_function("", raising) + _TABLE_TAGS + _DOCUMENTS) == set()


def test_a_return_in_a_loop_over_every_row_may_come_before_the_tables_row():
    # PostgreSQL lists a serial or identity column's sequence before its table: `return` on that row leaves the
    # table without RLS. Only a loop over table rows (one per command) reads such a guard as a skip.
    guard = f"    if cmd.object_type <> 'table' then\n      return;\n    end if;\n    {_ENABLE}"
    every_row = _FUNCTION.format(body="  for cmd in select * from pg_event_trigger_ddl_commands() loop\n"
                                      f"{guard}\n  end loop;")
    assert _findings(every_row + _TABLE_TAGS + _DOCUMENTS) == {("BP003", "public.documents"),
                                                                ("BP017", "public.documents")}
    public_only = f"    if cmd.schema_name <> 'public' then\n      return;\n    end if;\n    {_ENABLE}"
    assert _findings(_function("", public_only) + _TABLE_TAGS + _DOCUMENTS) == set()


def test_an_enable_a_later_statement_of_its_handled_block_may_roll_back_is_not_counted():
    loop = (f"    begin\n      {_ENABLE}\n      perform private.audit_ddl(cmd.object_identity);\n"
            "    exception when others then\n      raise log 'failed';\n    end;")
    assert _findings(_function("", loop) + _TABLE_TAGS + _DOCUMENTS) == {("BP003", "public.documents"),
                                                                          ("BP017", "public.documents")}
    alone = f"    begin\n      {_ENABLE}\n    exception when others then\n      raise log 'failed';\n    end;"
    assert _findings(_function("", alone) + _TABLE_TAGS + _DOCUMENTS) == set()
    before = loop.replace(f"      {_ENABLE}\n      perform private.audit_ddl(cmd.object_identity);\n",
                          f"      perform private.audit_ddl(cmd.object_identity);\n      {_ENABLE}\n")
    assert before != loop
    assert _findings(_function("", before) + _TABLE_TAGS + _DOCUMENTS) == {("BP003", "public.documents"),
                                                                            ("BP017", "public.documents")}


def test_an_enable_of_a_row_whose_name_the_body_rewrites_is_not_counted():
    loop = (f"    if cmd.schema_name = 'public' then\n      cmd.object_identity := 'public.audit_log';\n    end if;\n"
            f"    {_ENABLE}")
    assert _findings(_function("", loop) + _TABLE_TAGS + _DOCUMENTS) == {("BP003", "public.documents"),
                                                                          ("BP017", "public.documents")}


def test_an_ilike_skip_guard_folds_case():
    loop = f"    continue when cmd.object_identity ilike 'PUBLIC.TMP\\_%';\n    {_ENABLE}"
    sql = _function("", loop) + _TABLE_TAGS + _DOCUMENTS + _SCRATCH
    assert _findings(sql) == {("BP003", "public.tmp_contact_import")}


def test_object_identity_quotes_a_keyword_as_postgresql_does():
    # quote_ident quotes column-name keywords too: `public."position"` is the name a guard must test.
    loop = f"    continue when cmd.object_identity = 'public.\"position\"';\n    {_ENABLE}"
    sql = _function("", loop) + _TABLE_TAGS + "create table public.position (id int primary key);\n"
    assert _findings(sql) == {("BP003", "public.position")}
    unquoted = sql.replace("'public.\"position\"'", "'public.position'")
    assert _findings(unquoted) == set()
