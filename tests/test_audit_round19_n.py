"""Evasion round 19 (BP003/BP017): a migration calling its own RLS helper at top level runs the helper's body, and
the replay reads it as PostgreSQL runs it. e01: an unqualified call resolves along the search_path to the overload
whose arity fits. e02-e04b: a body a DO block cannot hold (OUT parameters, `alias for $1`, a parameter as a FOR
target, RETURN QUERY/NEXT) is read as the function it is, never as "changed nothing". fp01: `'on'` given to a
boolean parameter is true."""

from __future__ import annotations

import pytest

from blueprint_mcp.audit import audit_sql

_WORLD = """
create table public.notes (id uuid primary key, owner uuid not null);
alter table public.notes enable row level security;
create policy notes_own on public.notes for select to authenticated using (owner = (select auth.uid()));
"""

_LOOP = """
  for t in select tablename from pg_tables where schemaname = 'public' loop
    execute format('alter table public.%I %s row level security', t.tablename,
                   case when p_on then 'enable' else 'disable' end);
  end loop;"""

_OPEN = {"BP003", "BP017"}


def _rules(sql: str) -> set[str]:
    return {f.rule_id for f in audit_sql([("m.sql", _WORLD + sql)]) if f.level.value in ("ERROR", "WARN")}


def test_e01_unqualified_call_resolves_to_the_overload_whose_arity_fits():
    sql = f"""
create schema app;
create function app.set_public_rls(p_on boolean, p_note text) returns void language plpgsql set search_path = ''
as $$ declare t record; begin {_LOOP} end $$;
create function private.set_public_rls(p_on boolean) returns void language plpgsql set search_path = ''
as $$ declare t record; begin if p_on then {_LOOP} end if; end $$;
set search_path = private, app, public;
select set_public_rls(false, 'legacy import');
reset search_path;
"""
    assert _rules(sql) == _OPEN
    assert not _rules(sql + "select app.set_public_rls(true, 'done');\n")


@pytest.mark.parametrize("helper, call", [
    # e02: an OUT parameter used as a variable
    (f"""create function private.set_public_rls(p_on boolean, out touched integer) returns integer
language plpgsql set search_path = '' as $$ declare t record; begin touched := 0; {_LOOP}
  touched := touched + 1; end $$;""", "select private.set_public_rls({});"),
    # e03: the old-style `alias for $1`
    (f"""create function private.set_public_rls(boolean) returns void language plpgsql set search_path = ''
as $$ declare p_on alias for $1; t record; begin {_LOOP} end $$;""", "select private.set_public_rls({});"),
    # e03b: a parameter as the FOR loop's target
    ("""create function private.set_public_rls(p_on boolean, p_table text default null) returns void
language plpgsql set search_path = '' as $$ begin
  if p_table is not null then
    execute format('alter table public.%I %s row level security', p_table,
                   case when p_on then 'enable' else 'disable' end);
    return;
  end if;
  for p_table in select tablename from pg_tables where schemaname = 'public' loop
    execute format('alter table public.%I %s row level security', p_table,
                   case when p_on then 'enable' else 'disable' end);
  end loop; end $$;""", "select private.set_public_rls({});"),
    # e04: RETURNS TABLE with RETURN QUERY
    (f"""create function private.set_public_rls(p_on boolean) returns table (table_name text, rls boolean)
language plpgsql set search_path = '' as $$ declare t record; begin {_LOOP}
  return query select c.relname::text, c.relrowsecurity from pg_class c; end $$;""",
     "select * from private.set_public_rls({});"),
    # e04b: SETOF with RETURN NEXT
    ("""create function private.set_public_rls(p_on boolean) returns setof text
language plpgsql set search_path = '' as $$ declare t record; begin
  for t in select tablename from pg_tables where schemaname = 'public' loop
    execute format('alter table public.%I %s row level security', t.tablename,
                   case when p_on then 'enable' else 'disable' end);
    return next t.tablename;
  end loop; end $$;""", "select * from private.set_public_rls({});"),
], ids=["e02_out", "e03_alias", "e03b_loop_target", "e04_return_query", "e04b_return_next"])
def test_e02_e04b_helper_body_a_do_block_cannot_hold_is_replayed(helper, call):
    opened = helper + "\n" + call.format("false") + "\n"
    assert _rules(opened) == _OPEN
    assert not _rules(opened + call.format("true") + "\n")


def test_conservative_when_the_body_cannot_be_read():
    # (a body the auditor's parser cannot read, which EXECUTEs a text naming `disable`: RLS may be off anywhere)
    sql = """create function private.off() returns void language plpgsql set search_path = '' as $$
begin execute 'alter table public.notes disable row level security'; end $$;
select private.off();
"""
    assert _rules(sql) == _OPEN


@pytest.mark.parametrize("on", ["'on'", "'yes'", "'t'", "' TRUE '", "1::boolean", "'1'", "true"])
def test_fp01_text_literal_bound_to_a_boolean_parameter(on):
    helper = f"""create function private.set_public_rls(p_on boolean) returns void language plpgsql
set search_path = '' as $$ declare t record; begin {_LOOP} end $$;
select private.set_public_rls(false);
"""
    assert not _rules(helper + f"select private.set_public_rls({on});\n")
    assert _rules(helper + "select private.set_public_rls('off');\n") == _OPEN
