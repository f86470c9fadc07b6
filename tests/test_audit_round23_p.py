"""Evasion round 23 (helper p), around round 22's new readings. e01: the caller's id in a slice of the folders
(`= any ((storage.foldername(name))[1:2])`, BP053). e02: a bare `name` in a storage policy's sub-query over a WITH
query is the query's column (BP058). e03: "the caller has a profile" asked by SELECT * INTO a record and FOUND
(BP079). fp01: a catalog loop comparing the schema with current_schema(), fp02: an integer FOR from array_lower() to
array_upper(), fp04: a loop over `select * from unnest(<list>) as t(name)` turn RLS on (BP003/BP017). fp03: `if
<bound> then null; else return; end if;` and fp05: `if not (<bound>) then raise` before the invitation is written
bound its role (BP087), also inside an IF that wraps the write. Each hole fires and its secure counterpart does
not (PostgreSQL's side: /tmp/s30/evasion23/proof.out)."""

from __future__ import annotations

import pytest

from blueprint_mcp.audit import audit_sql

import test_audit_round22_j as r22
from audit_world import UID


def _rules(sql: str) -> set[str]:
    return {f.rule_id for f in audit_sql([("m.sql", sql)]) if f.level.value in ("ERROR", "WARN")}


def _findings(sql: str) -> set[tuple[str, str]]:
    return {(f.rule_id, f.object) for f in audit_sql([("m.sql", sql)]) if f.level.value in ("ERROR", "WARN")}


_UID = UID


# --- e01: BP053, the caller's id in a slice of the folders ------------------------------------------------------------

@pytest.mark.parametrize("test", [
    f"{_UID} = any ((storage.foldername(name))[1:2])",
    f"{_UID} = any ((string_to_array(name, '/'))[1:2])",
    f"{_UID} = any ((storage.foldername(name))[2:])",
    f"{_UID} = any ((storage.foldername(objects.name))[:3])",
    f"(storage.foldername(name))[1:2] @> array[{_UID}]",
    f"{_UID} = any (regexp_split_to_array(name, '/+'))",
])
def test_e01_caller_in_a_slice_of_the_folders_is_any_level(test):
    found = audit_sql([("m.sql", r22._uploads(test))])
    assert [f.rule_id for f in found] == ["BP053"] and "any folder level" in found[0].message


@pytest.mark.parametrize("test", [
    f"{_UID} = any ((storage.foldername(name))[1:1])",
    f"{_UID} = any ((storage.foldername(name))[:1])",
    f"{_UID} = any ((storage.foldername(name))[1:2]) and (storage.foldername(name))[1] = {_UID}",
    f"(storage.foldername(name))[1] = {_UID}",
])
def test_e01_a_slice_of_the_first_folder_only_stays_clean(test):
    assert _rules(r22._uploads(test)) == set()


# --- e02: BP058, a bare `name` in a storage policy's sub-query over a WITH query --------------------------------------

_CTE = "with o as (select id, {columns} from public.organizations) "


@pytest.mark.parametrize("query", [
    _CTE.format(columns="name") + f"select 1 from o where {r22._MINE} and {r22._FOLDER}",
    "with o (id, name) as (select id, 'x' from public.organizations) "
    f"select 1 from o where {r22._MINE} and {r22._FOLDER}",
    "with o as (select id, name from public.organizations) "
    f"select 1 from o where o.id in (select id from o where {r22._MINE}) and {r22._FOLDER}",
])
def test_e02_bare_name_over_a_with_query_is_its_column(query):
    assert _rules(r22._org_files("", "true", "").replace("exists (select 1 from  where true)",
                                                          f"exists ({query})")) == {"BP058"}
    fixed = query.replace("(name", "(objects.name")
    assert _rules(r22._org_files("", "true", "").replace("exists (select 1 from  where true)",
                                                          f"exists ({fixed})")) == set()


@pytest.mark.parametrize("query", [
    _CTE.format(columns="name as org_name") + f"select 1 from o where {r22._MINE} and {r22._FOLDER}",
    "with o (id, org_name) as (select id, name from public.organizations) "
    f"select 1 from o where {r22._MINE} and {r22._FOLDER}",
    "with public_orgs as (select id, name from public.organizations) "
    f"select 1 from public.organizations o where {r22._MINE} and {r22._FOLDER}"
    .replace("public.organizations o", "private.organization_ids_with_role('viewer') as o(id)"),
])
def test_e02_a_with_query_without_a_name_column_leaves_name_the_files(query):
    assert _rules(r22._org_files("", "true", "").replace("exists (select 1 from  where true)",
                                                          f"exists ({query})")) == set()


# --- e03: BP079, "the caller has a profile" asked by SELECT * INTO a record -------------------------------------------

@pytest.mark.parametrize("body", [
    f"select * into p {r22._LOOKUP};\n  return found;",
    f"select * into p {r22._LOOKUP};\n  if not found then return false; end if;\n  return true;",
])
def test_e03_own_profile_found_by_select_into_a_record_is_every_caller(body):
    assert r22._has_profile(body, "declare p record;\n") == {"BP079"}


@pytest.mark.parametrize("body, signup", [
    (f"select * into p {r22._LOOKUP} and role = 'admin';\n  return found;", r22._SIGNUP),
    (f"select * into p {r22._LOOKUP};\n  return not found;", r22._SIGNUP),
    (f"select * into p {r22._LOOKUP};\n  return found;", ""),  # no signup trigger: not every user has one
])
def test_e03_record_lookups_a_caller_may_fail_are_not_every_caller(body, signup):
    assert "BP079" not in r22._has_profile(body, "declare p record;\n", signup)


# --- fp01: a catalog loop comparing the schema with current_schema() --------------------------------------------------

@pytest.mark.parametrize("query, column", [
    (r22._INFO + "table_schema = current_schema() and table_type = 'BASE TABLE'", "table_name"),
    (r22._INFO + "table_schema = current_schema", "table_name"),
    (r22._INFO + "table_schema::text = current_schema()::text", "table_name"),
    ("select tablename from pg_tables where schemaname = pg_catalog.current_schema()", "tablename"),
    ("select c.relname from pg_class c where c.relnamespace = current_schema()::regnamespace and c.relkind = 'r'",
     "relname"),
])
def test_fp01_catalog_loop_over_the_current_schema_turns_rls_on(query, column):
    assert _findings(r22._catalog_loop(query, column)) == set()


@pytest.mark.parametrize("query, left", [
    (r22._INFO + "table_schema = current_schema() and table_name = 'notes'", r22._DOCUMENTS),
    (r22._INFO + "table_schema = current_user", r22._NOTES | r22._DOCUMENTS),
    (r22._INFO + "table_schema = current_schema() and table_type = 'VIEW'", r22._NOTES | r22._DOCUMENTS),
    (r22._INFO + "table_schema = current_schemas(false)", r22._NOTES | r22._DOCUMENTS),
])
def test_fp01_current_schema_loops_that_leave_tables_out_keep_them_reported(query, left):
    assert _findings(r22._catalog_loop(query)) == left


# --- fp02: an integer FOR from array_lower() to array_upper() ---------------------------------------------------------

@pytest.mark.parametrize("bounds", [
    "array_lower(tables, 1) .. array_upper(tables, 1)",
    "1 .. array_upper(tables, 1)",
    "array_lower(tables, 1) .. cardinality(tables)",
])
def test_fp02_a_loop_from_array_lower_to_array_upper_turns_rls_on_for_each(bounds):
    assert _findings(r22._TABLES + r22._index_loop(bounds)) == set()


def test_fp02_array_bounds_that_miss_a_table_keep_it_reported():
    assert _findings(r22._TABLES + r22._index_loop("array_lower(tables, 1) .. 1")) == r22._DOCUMENTS
    assert _findings(r22._TABLES + r22._index_loop("array_upper(tables, 1) .. array_upper(tables, 1)")) == \
        r22._NOTES
    assert _findings(r22._TABLES + r22._index_loop("array_lower(tables, 2) .. array_upper(tables, 1)")) == \
        r22._NOTES | r22._DOCUMENTS  # (another dimension: unread)


# --- fp04: a loop over `select * from unnest(<list>) as t(name)` ------------------------------------------------------

def _row_loop(query: str, element: str) -> str:
    return r22._TABLES + f"""
do $$
declare r record;
begin
  for r in {query} loop
    execute format('alter table public.%I enable row level security', {element});
  end loop;
end $$;
"""


@pytest.mark.parametrize("query, element", [
    ("select * from unnest(array['notes', 'documents']) as t(name)", "r.name"),
    ("select * from unnest(array['notes', 'documents']) t", "r.t"),
    ("select * from unnest('{notes,documents}'::text[])", "r.unnest"),
    ("select * from (values ('notes'), ('documents')) as v(t)", "r.t"),
    ("select * from (values ('notes'), ('documents')) v", "r.column1"),
])
def test_fp04_a_loop_over_the_rows_of_a_list_turns_rls_on(query, element):
    assert _findings(_row_loop(query, element)) == set()


@pytest.mark.parametrize("query, element, left", [
    ("select * from unnest(array['notes', 'documents']) as t(name)", "r.t", r22._NOTES | r22._DOCUMENTS),
    ("select * from unnest(array['notes']) as t(name)", "r.name", r22._DOCUMENTS),
    ("select * from (values ('notes'), ('documents')) as v(t)", "r.column1", r22._NOTES | r22._DOCUMENTS),
])
def test_fp04_row_loops_naming_another_column_or_list_keep_tables_reported(query, element, left):
    assert _findings(_row_loop(query, element)) == left


# --- fp03: BP087, the invitation's role bounded by an IF whose ELSE leaves --------------------------------------------

def _else(test: str, otherwise: str = "return;", after: str = "") -> str:
    return r22._MEMBER + f"  if {test} then\n    null;\n  else\n    {otherwise}\n  end if;\n{after}{r22._INSERT}"


_BOUND = f"p_role < 'admin' or {r22._OWNER}"


@pytest.mark.parametrize("body", [
    _else(_BOUND),
    _else(_BOUND, "raise exception 'owners only' using errcode = '42501';"),
    _else(f"p_role in ('viewer', 'member') or {r22._OWNER}", "raise notice 'skipped';\n    return;"),
])
def test_fp03_an_else_that_leaves_bounds_the_role_written_after_it(body):
    assert r22._invite(body) == {"BP024"}


@pytest.mark.parametrize("body", [
    _else(f"p_role <= 'admin' or {r22._OWNER}"),  # admin for every member
    _else(f"p_role < 'admin' or {r22._ADMIN}"),  # admins make owners
    _else(_BOUND, "null;"),  # the ELSE goes on
    r22._MEMBER + f"  if {_BOUND} then\n    return;\n  else\n    null;\n  end if;\n{r22._INSERT}",  # inverted
    r22._MEMBER + f"  if p_role < 'admin' then\n    null;\n  elsif p_email is null then\n    null;\n  else\n"
    f"    return;\n  end if;\n{r22._INSERT}",  # (an ELSIF goes on for every role: unread)
    _else(_BOUND, after="  p_role := 'owner';\n"),  # the role changes after the test
    f"  begin\n  {_else(_BOUND, 'raise exception ' + chr(39) + 'x' + chr(39) + ';').replace(r22._INSERT, '')}"
    f"  exception when others then null;\n  end;\n{r22._INSERT}",  # the refusal is caught
])
def test_fp03_an_else_that_does_not_bound_the_role_still_fires(body):
    assert r22._invite(body) == {"BP024", "BP087"}


# --- fp05: BP087, `if not (<role below admin> or <owner>) then raise` -------------------------------------------------

_NESTED = "  if p_org = any (array(select private.organization_ids_with_role('member'))) then\n{inner}  end if;\n"


@pytest.mark.parametrize("body", [
    r22._MEMBER + f"  if not ({_BOUND}) then\n    raise exception 'owners only';\n  end if;\n{r22._INSERT}",
    r22._MEMBER + f"  if not ({_BOUND}) then\n    return;\n  end if;\n{r22._INSERT}",
    r22._MEMBER + f"  if not (p_role in ('viewer', 'member') or {r22._OWNER}) then\n    raise exception 'no';\n"
    f"  end if;\n{r22._INSERT}",
    _NESTED.format(inner=f"    if not ({_BOUND}) then\n      return;\n    end if;\n  {r22._INSERT}"),
    _NESTED.format(inner=f"    if p_role >= 'admin' and not ({r22._OWNER}) then\n      return;\n    end if;\n"
                   f"  {r22._INSERT}"),
    _NESTED.format(inner=f"    if {_BOUND} then\n      null;\n    else\n      return;\n    end if;\n  {r22._INSERT}"),
])
def test_fp05_a_refusal_where_the_or_ed_bound_fails_bounds_the_role(body):
    assert r22._invite(body) == {"BP024"}


@pytest.mark.parametrize("body", [
    r22._MEMBER + f"  if not (p_role <= 'admin' or {r22._OWNER}) then\n    raise exception 'no';\n  end if;\n"
    + r22._INSERT,
    r22._MEMBER + f"  if not (p_role < 'admin' or {r22._ADMIN}) then\n    raise exception 'no';\n  end if;\n"
    + r22._INSERT,
    _NESTED.format(inner=f"    if p_role >= 'admin' and not ({r22._ADMIN}) then\n      return;\n    end if;\n"
                   f"  {r22._INSERT}"),
    r22._MEMBER + _NESTED.format(inner=f"    if p_role >= 'admin' and not ({r22._OWNER}) then\n      return;\n"
                                 "    end if;\n") + r22._INSERT,  # (the write is outside the IF around the refusal)
])
def test_fp05_refusals_that_do_not_bound_the_role_still_fire(body):
    assert r22._invite(body) == {"BP024", "BP087"}
