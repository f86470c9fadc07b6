"""Evasion round 17, what DDL runs (BP003/BP017): a migration's call of its own function or procedure runs the
body (e04); EXECUTE of a variable built by string_agg over the catalog (e04b); SET LOCAL search_path ends with
its transaction (e06); AND/OR of decided catalog tests are decided (fp02); and an enabling EXECUTE over a catalog
loop covers every table the loop certainly names (fp03)."""

from __future__ import annotations

from blueprint_mcp.audit import audit_sql

from audit_world import ORGS

_DOCUMENTS = ORGS + """
create table public.documents (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  title text not null
);
create index on public.documents (organization_id);
create policy documents_select on public.documents for select to authenticated
  using (organization_id = any (array(select private.organization_ids_with_role('viewer'))));
"""

_ENABLE_REST = """
alter table public.organizations enable row level security;
alter table public.organization_members enable row level security;
"""


def _found(sql: str) -> list[str]:
    return sorted(f.rule_id for f in audit_sql([("case.sql", sql)]) if f.level.name in ("ERROR", "WARN"))


def test_a_called_helper_that_loops_disable_over_pg_tables_turns_rls_off():
    # e04: the helper's body runs at `select` (and at `call` for a procedure); the CASE over its parameter may
    # give 'disable', which hits every public table; re-enabling documents afterwards (the fixed twin) closes it.
    helper = _DOCUMENTS + """
alter table public.documents enable row level security;
create function private.set_public_rls(p_on boolean) returns void
language plpgsql set search_path = '' as $$
declare t record;
begin
  for t in select tablename from pg_tables where schemaname = 'public' loop
    execute format('alter table public.%I %s row level security', t.tablename,
                   case when p_on then 'enable' else 'disable' end);
  end loop;
end $$;
select private.set_public_rls(false);
""" + _ENABLE_REST
    assert _found(helper) == ["BP003", "BP017"]
    assert _found(helper + "alter table public.documents enable row level security;\n") == []
    procedure = _DOCUMENTS + """
alter table public.documents enable row level security;
create procedure private.disable_public_rls() language plpgsql set search_path = '' as $$
declare t record;
begin
  for t in select tablename from pg_tables where schemaname = 'public' loop
    execute format('alter table public.%I disable row level security', t.tablename);
  end loop;
end $$;
call private.disable_public_rls();
""" + _ENABLE_REST
    assert _found(procedure) == ["BP003", "BP017"]
    assert _found(procedure + "alter table public.documents enable row level security;\n") == []
    # (a helper that enables, called where it may not run, enables nothing for certain)
    enabler = _DOCUMENTS + """
create function private.lock_documents() returns void language sql set search_path = '' as $$
  alter table public.documents enable row level security $$;
"""
    assert _found(enabler + "select private.lock_documents();\n") == []
    maybe = "do $$ begin if random() > 0.5 then perform private.lock_documents(); end if; end $$;\n"
    assert _found(enabler + maybe) == ["BP003", "BP017"]


def test_execute_of_a_string_agg_of_disables_over_pg_tables_turns_rls_off():
    # e04b: the variable holds one `alter table ... disable` per row the catalog query gives.
    sql = _DOCUMENTS + """
alter table public.documents enable row level security;
do $$
declare v_sql text;
begin
  select string_agg(format('alter table public.%I disable row level security;', tablename), ' ')
    into v_sql from pg_tables where schemaname = 'public';
  execute v_sql;
end $$;
""" + _ENABLE_REST
    assert _found(sql) == ["BP003", "BP017"]
    assert _found(sql + "alter table public.documents enable row level security;\n") == []
    # (built by concatenation in a loop, the same)
    aggregated = ("  select string_agg(format('alter table public.%I disable row level security;', tablename), ' ')\n"
                  "    into v_sql from pg_tables where schemaname = 'public';")
    looped = ("  for r in select tablename from pg_tables where schemaname = 'public' loop\n"
              "    v_sql := v_sql || format('alter table public.%I disable row level security;', r.tablename);\n"
              "  end loop;")
    assert aggregated in sql
    concatenated = sql.replace(aggregated, looped).replace("declare v_sql text;", "declare v_sql text := ''; r record;")
    assert _found(concatenated) == ["BP003", "BP017"]


def test_set_local_search_path_ends_at_commit():
    # e06: the second table lands in public (no RLS), not in internal.
    head = ORGS + """
create schema internal;
revoke all on schema internal from public, anon, authenticated;
begin;
set local search_path = internal, public;
create table webhook_endpoints (id uuid primary key, url text not null);
commit;
begin;
"""
    tail = """create table webhook_deliveries (id bigint primary key, payload jsonb not null);
commit;
"""
    found = audit_sql([("case.sql", head + tail)])
    assert sorted({(f.rule_id, f.object) for f in found if f.level.name == "ERROR"}) == [
        ("BP003", "public.webhook_deliveries")]
    assert _found(head + "set local search_path = internal, public;\n" + tail) == []
    # (a file is one transaction: SET LOCAL ends with it, the next file creates in public again)
    files = [("1.sql", ORGS + "create schema internal;\nset local search_path = internal;\n"
                                "create table a (id int primary key);\n"),
             ("2.sql", "create table b (id int primary key);\n")]
    assert sorted({f.object for f in audit_sql(files) if f.rule_id == "BP003"}) == ["public.b"]


def test_do_if_of_an_and_of_catalog_tests_is_decided():
    # fp02: both tests are decided (the table exists, RLS is off), so the enable runs for certain.
    sql = _DOCUMENTS + """
do $$
begin
  if exists (select 1 from pg_tables where schemaname = 'public' and tablename = 'documents')
     and not exists (select 1 from pg_tables where schemaname = 'public' and tablename = 'documents'
                     and rowsecurity) then
    alter table public.documents enable row level security;
  end if;
end $$;
"""
    assert not {"BP003", "BP017"} & set(_found(sql))
    # (an AND with an unknown side and no false one is not decided: the enable may not run; an OR with a true
    # side is decided whatever the other is)
    unknown = sql.replace("if exists (select 1 from pg_tables", "if random() > 0.5 and exists (select 1 from pg_tables")
    assert {"BP003", "BP017"} <= set(_found(unknown))
    either = sql.replace("if exists (select 1 from pg_tables", "if random() > 0.5 or exists (select 1 from pg_tables") \
        .replace("\n     and not exists", "\n     or not exists")
    assert not {"BP003", "BP017"} & set(_found(either))


def test_enable_over_a_catalog_loop_covers_the_tables_it_names():
    # fp03: every public table the model holds when the block runs is enabled; one created after it is not, and
    # a loop an EXIT may end, or one whose query tests what is not read, covers nothing for certain.
    block = """
do $$
declare t record;
begin
  for t in select tablename from pg_tables where schemaname = 'public' loop
    execute format('alter table public.%I enable row level security', t.tablename);
  end loop;
end $$;
"""
    assert _found(_DOCUMENTS + block) == []
    later = _DOCUMENTS.replace("create policy documents_select", "create policy documents_select_x") + block + """
create table public.notes (id int primary key, organization_id uuid);
create policy notes_select on public.notes for select to authenticated using (true);
"""
    assert {f.object for f in audit_sql([("case.sql", later)]) if f.rule_id == "BP003"} == {"public.notes"}
    exits = block.replace("  end loop;", "    exit when random() > 0.5;\n  end loop;")
    assert _found(_DOCUMENTS + exits) == ["BP003", "BP017"]
    unread = block.replace("schemaname = 'public'", "schemaname = 'public' and length(tablename) > 3")
    assert _found(_DOCUMENTS + unread) == ["BP003", "BP017"]
    regclass = """
do $$
declare r record;
begin
  for r in select c.oid::regclass as t from pg_class c where c.relnamespace = 'public'::regnamespace
                                                         and c.relkind = 'r' loop
    execute format('alter table %s enable row level security', r.t);
  end loop;
end $$;
"""
    assert _found(_DOCUMENTS + regclass) == []
