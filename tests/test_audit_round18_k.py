"""Evasion round 18, items e01, e01b, e01c, e05, fp01, fp01b, fp02 and fp02b: a function a migration calls is replayed
wherever the call is evaluated (a PL/pgSQL assignment, INSERT ... SELECT, CREATE TABLE AS), found along the whole
search_path, and with the call's constant arguments (or the parameters' defaults) bound to its parameters."""

from __future__ import annotations

import pytest

from blueprint_mcp.audit import audit_sql
from blueprint_mcp.audit.findings import Level

from audit_world import ORGS

PRELUDE = ORGS + """
create table public.documents (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  body text
);
create index on public.documents (organization_id);
alter table public.documents enable row level security;
create policy documents_select on public.documents for select to authenticated
  using (organization_id = any (array(select private.organization_ids_with_role('viewer'))));
"""

# An ops helper that turns RLS on or off on every public table.
_FLIP = """
create function {schema}.set_public_rls(p_on boolean) returns integer
language plpgsql set search_path = '' as $$
declare t record; n integer := 0;
begin
  for t in select tablename from pg_tables where schemaname = 'public' loop
    execute format('alter table public.%I %s row level security', t.tablename,
                   case when p_on then 'enable' else 'disable' end);
    n := n + 1;
  end loop;
  return n;
end $$;
"""

_REENABLE = """
alter table public.organizations enable row level security;
alter table public.organization_members enable row level security;
"""
_FIXED = "alter table public.documents enable row level security;\n"


def _errors(sql: str) -> set[tuple[str, str]]:
    """(rule, subject) of each ERROR on the prelude followed by `sql`."""
    return {(f.rule_id, f.object) for f in audit_sql([("case.sql", PRELUDE + sql)]) if f.level is Level.ERROR}


_OPEN = {("BP003", "public.documents"), ("BP017", "public.documents")}


@pytest.mark.parametrize("call", [
    # e01: the call in a DO block's assignment (also an IF condition, a RETURN, a RAISE argument)
    "do $$ declare n integer; begin n := private.set_public_rls(false); raise notice '%', n; end $$;",
    "do $$ begin if private.set_public_rls(false) > 0 then raise notice 'off'; end if; end $$;",
    "do $$ begin raise notice 'off on %', private.set_public_rls(false); end $$;",
    # e01b, e01c: the call in INSERT ... SELECT, CREATE TABLE AS, INSERT ... VALUES and UPDATE ... SET
    "create table private.log (note text);\n"
    "insert into private.log (note) select 'off on ' || private.set_public_rls(false) || ' tables';",
    "create table private.run as select now() as at, private.set_public_rls(false) as opened;",
    "create table private.log (note text);\ninsert into private.log (note) values (private.set_public_rls(false));",
    "create table private.log (note text);\nupdate private.log set note = private.set_public_rls(false)::text;",
])
def test_e01_calls_in_any_evaluated_expression_are_replayed(call: str) -> None:
    sql = _FLIP.format(schema="private") + call + "\n" + _REENABLE
    assert _errors(sql) == _OPEN
    assert _errors(sql + _FIXED) == set()


def test_e05_unqualified_call_resolves_along_the_whole_search_path() -> None:
    sql = "create schema app;\n" + _FLIP.format(schema="app") + \
        "set search_path = public, app;\nselect set_public_rls(false);\nreset search_path;\n" + _REENABLE
    assert _errors(sql) == _OPEN
    assert _errors(sql + _FIXED) == set()
    # the same in a DO block under SET LOCAL
    do = "create schema app;\n" + _FLIP.format(schema="app") + \
        "do $$ begin set local search_path = public, app; perform set_public_rls(false); end $$;\n" + _REENABLE
    assert _errors(do) == _OPEN
    assert _errors(do + _FIXED) == set()


def test_fp01_constant_argument_decides_the_case() -> None:
    flip = _FLIP.format(schema="private")
    # turned off, then back on for every public table: clean
    assert _errors(flip + "select private.set_public_rls(false);\nselect private.set_public_rls(true);\n") == set()
    # fp01b: a safety net after explicit enables: clean
    assert _errors(flip + _REENABLE + "select private.set_public_rls(true);\n") == set()
    # only turned off: every public table is open
    opened = _errors(flip + "select private.set_public_rls(false);\n")
    assert {s for _, s in opened} == {"public.organizations", "public.organization_members", "public.documents"}
    # an argument the file cannot spell stays unknown: the disable may run, the enable is not certain
    unknown = flip + "select private.set_public_rls(random() > 0.5);\n"
    assert _OPEN <= _errors(unknown)


_NOTES = """
create table public.notes (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade
);
create index on public.notes (organization_id);
create policy notes_select on public.notes for select to authenticated
  using (organization_id = any (array(select private.organization_ids_with_role('viewer'))));
"""
_SECURE = """
create function private.secure_table(p_table text) returns void
language plpgsql set search_path = '' as $$
begin
  execute format('alter table public.%I enable row level security', p_table);
  execute format('alter table public.%I force row level security', p_table);
end $$;
""" + _NOTES


def test_fp02_constant_argument_names_the_table() -> None:
    assert _errors(_SECURE + "select private.secure_table('notes');\n") == set()
    assert _errors(_SECURE + "select private.secure_table(p_table => 'notes');\n") == set()
    # another table named: notes stays without RLS
    assert ("BP003", "public.notes") in _errors(_SECURE + "select private.secure_table('documents');\n")


_APPLY = """
create function private.apply_rls(p_table text default null) returns void
language plpgsql set search_path = '' as $$
declare r record;
begin
  for r in select tablename from pg_tables
            where schemaname = 'public' and (p_table is null or tablename = p_table) loop
    execute format('alter table public.%I enable row level security', r.tablename);
  end loop;
end $$;
""" + _NOTES


def test_fp02b_parameter_default_is_bound() -> None:
    assert _errors(_APPLY + "select private.apply_rls();\n") == set()
    assert _errors(_APPLY + "select private.apply_rls('notes');\n") == set()
    # another table named: notes stays without RLS
    assert ("BP003", "public.notes") in _errors(_APPLY + "select private.apply_rls('documents');\n")
