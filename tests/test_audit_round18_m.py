"""Evasion round 18, items e04, e04b and fp05: a DO block whose EXECUTE runs a command text its loop's query or a
scalar sub-select computes fires BP003/BP017 on the table it leaves open, and its fix does not; a loop over a
written list of names read through a record's field enables RLS on those tables for certain."""

from __future__ import annotations

import pytest

from blueprint_mcp.audit import audit_sql
from blueprint_mcp.audit.findings import Level

from audit_world import ORGS

PRELUDE = ORGS + """
create table public.projects (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  name text not null
);
create index on public.projects (organization_id);
alter table public.projects enable row level security;
create policy projects_select on public.projects for select to authenticated
  using (organization_id = any (array(select private.organization_ids_with_role('viewer'))));
create table public.documents (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  title text not null
);
create index on public.documents (organization_id);
create policy documents_select on public.documents for select to authenticated
  using (organization_id = any (array(select private.organization_ids_with_role('viewer'))));
"""
_DOCUMENTS_ON = "alter table public.documents enable row level security;\n"
_REENABLE = """
alter table public.organizations enable row level security;
alter table public.organization_members enable row level security;
alter table public.projects enable row level security;
"""
_RLS = {"BP003", "BP017"}


def _fired(sql: str) -> set[str]:
    """The rules reporting an ERROR on the prelude followed by `sql`."""
    return {f.rule_id for f in audit_sql([("case.sql", PRELUDE + sql)]) if f.level is Level.ERROR}


# --- e04: the command text computed in the loop's query, run through the row -------------------------------------

_DISABLE = "format('alter table %I.%I disable row level security', schemaname, tablename)"
_QUOTED = "'alter table public.' || quote_ident(tablename) || ' disable row level security'"


@pytest.mark.parametrize("loop", [
    f"declare r record; begin for r in select {_DISABLE} as cmd from pg_tables where schemaname = 'public' "
    "loop execute r.cmd; end loop; end",
    f"declare r record; begin for r in select {_QUOTED} as cmd from pg_tables where schemaname = 'public' "
    "loop execute r.cmd; end loop; end",
    f"declare r record; begin for r in select {_DISABLE} from pg_tables where schemaname = 'public' "
    "loop execute r.format; end loop; end",  # (an unnamed column takes its function's name)
    f"declare v_cmd text; begin for v_cmd in select {_DISABLE} from pg_tables where schemaname = 'public' "
    "loop execute v_cmd; end loop; end",
])
def test_e04_a_loop_running_the_commands_its_query_computes_opens_every_table_it_may_name(loop):
    block = f"do $$ {loop} $$;\n"
    assert _fired(_DOCUMENTS_ON + block + _REENABLE) == _RLS
    assert _fired(_DOCUMENTS_ON + block + _REENABLE + _DOCUMENTS_ON) == set()


def test_e04_a_loop_over_other_schemas_tables_leaves_public_alone():
    block = (f"do $$ declare r record; begin for r in select {_DISABLE} as cmd from pg_tables "
             "where schemaname = 'archive' loop execute r.cmd; end loop; end $$;\n")
    assert _fired(_DOCUMENTS_ON + block) == set()


# --- e04b: the command text aggregated by a scalar sub-select ----------------------------------------------------

_AGG = f"string_agg({_DISABLE}, '; ')"


@pytest.mark.parametrize("body", [
    f"begin execute (select {_AGG} from pg_tables where schemaname = 'public'); end",
    f"declare v text; begin v := (select {_AGG} from pg_tables where schemaname = 'public'); execute v; end",
    f"declare v text; begin select array_to_string(array_agg({_DISABLE}), '; ') into v from pg_tables "
    "where schemaname = 'public'; execute v; end",
    f"declare v text := (select {_AGG} from pg_tables where schemaname = 'public'); begin execute v; end",
])
def test_e04b_an_execute_of_an_aggregated_sub_select_opens_every_table_it_may_name(body):
    block = f"do $$ {body} $$;\n"
    assert _fired(_DOCUMENTS_ON + block + _REENABLE) == _RLS
    assert _fired(_DOCUMENTS_ON + block + _REENABLE + _DOCUMENTS_ON) == set()


def test_e04b_a_sub_select_of_other_schemas_tables_leaves_public_alone():
    block = f"do $$ begin execute (select {_AGG} from pg_tables where schemaname = 'archive'); end $$;\n"
    assert _fired(_DOCUMENTS_ON + block) == set()


# --- fp05: a loop over a written list of names, read through a record ---------------------------------------------

_ON = ("execute format('alter table public.%I enable row level security', {v}); "
       "execute format('alter table public.%I force row level security', {v});")


@pytest.mark.parametrize("loop, variable", [
    ("for r in select unnest(array['documents', 'projects']) as table_name loop", "r.table_name"),
    ("for r in select unnest(array['documents', 'projects']) loop", "r.unnest"),
    ("for r in select t from unnest(array['documents', 'projects']) t loop", "r.t"),
    ("for r in values ('documents'), ('projects') loop", "r.column1"),
    ("for t in select unnest(array['documents', 'projects']) loop", "t"),
    ("foreach t in array array['documents', 'projects'] loop", "t"),
])
def test_fp05_a_loop_over_written_names_enables_each_of_them(loop, variable):
    block = f"do $$ declare r record; t text; begin {loop} {_ON.format(v=variable)} end loop; end $$;\n"
    assert not _fired(block) & _RLS
    assert _fired(block.replace("'documents', ", "").replace("('documents'), ", "")) == _RLS


def test_fp05_a_record_the_body_overwrites_is_not_unrolled():
    block = ("do $$ declare r record; begin for r in select unnest(array['documents']) as table_name loop "
             "select 'projects' as table_name into r; "
             f"{_ON.format(v='r.table_name')} end loop; end $$;\n")
    assert _fired(block) == _RLS
