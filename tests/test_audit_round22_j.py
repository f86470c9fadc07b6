"""Evasion round 22 (helper j), around round 21's new readings. e01: a bare `name` in a storage policy's sub-query
over a helper's rows (`from private.my_organizations() o`) is organizations.name (BP058). e02: the caller's id at any
level of `string_to_array(name, '/')` (BP053). e03: "the caller has a profile" asked by PERFORM and FOUND in a
PL/pgSQL helper (BP079). e04, e05: an admin check wrapping the write (`if <admin> then ... end if`) hands ownership
over (BP084) or removes the owner (BP081). fp01: the same wrapping IF bounding an invitation's role (BP087). fp02: a
DO loop over an array's indexes (`for i in 1 .. array_length(tables, 1)`) and fp03: a catalog loop comparing with
`'public'::text` turn RLS on (BP003/BP017). Each hole fires and its secure counterpart does not (PostgreSQL's side:
/tmp/s30/evasion22/proof.out)."""

from __future__ import annotations

import pytest

from blueprint_mcp.audit import audit_sql

from audit_world import DOCUMENTS_OPEN, NOTES_OPEN, ORGS, OWNED_TABLES, UID, documents, invitations, uploads


def _rules(sql: str) -> set[str]:
    return {f.rule_id for f in audit_sql([("m.sql", sql)]) if f.level.value in ("ERROR", "WARN")}


def _findings(sql: str) -> set[tuple[str, str]]:
    return {(f.rule_id, f.object) for f in audit_sql([("m.sql", sql)]) if f.level.value in ("ERROR", "WARN")}


# --- fp03: a catalog loop comparing with constants cast to text ----------------------------------------------------

_TABLES, _NOTES, _DOCUMENTS = OWNED_TABLES, NOTES_OPEN, DOCUMENTS_OPEN


def _catalog_loop(query: str, column: str = "table_name") -> str:
    return _TABLES + f"""
do $$
declare r record;
begin
  for r in {query} loop
    execute format('alter table public.%I enable row level security', r.{column});
  end loop;
end $$;
"""


_INFO = "select table_name from information_schema.tables where "


@pytest.mark.parametrize("query, column", [
    (_INFO + "table_schema = 'public'::text and table_type = 'BASE TABLE'::text", "table_name"),
    (_INFO + "table_schema::text = 'public'", "table_name"),
    (_INFO + "table_schema in ('public'::text) and table_type in ('BASE TABLE'::character varying)", "table_name"),
    ("select table_name::text from information_schema.tables where table_schema = 'public'::name", "table_name"),
    ("select tablename from pg_tables where schemaname = 'public'::name", "tablename"),
    ("select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
     "where n.nspname = 'public'::name and c.relkind = 'r'::\"char\"", "relname"),
])
def test_fp03_catalog_loop_with_constants_cast_to_text_turns_rls_on(query, column):
    assert _findings(_catalog_loop(query, column)) == set()


@pytest.mark.parametrize("query, left", [
    (_INFO + "table_schema = 'private'::text", _NOTES | _DOCUMENTS),
    (_INFO + "table_schema = 'public'::text and table_type = 'VIEW'::text", _NOTES | _DOCUMENTS),
    (_INFO + "table_schema = 'public'::text and table_name <> 'documents'::text", _DOCUMENTS),
    (_INFO + "table_schema = 'public' and table_name not in ('documents'::text)", _DOCUMENTS),
])
def test_fp03_cast_constants_that_leave_tables_out_keep_them_reported(query, left):
    assert _findings(_catalog_loop(query)) == left


# --- fp02: a DO loop over an array's indexes ---------------------------------------------------------------------

def _index_loop(bounds: str, element: str = "tables[i]", action: str = "enable",
                declared: str = "tables text[] := array['notes', 'documents'];") -> str:
    return f"""
do $$
declare
  {declared}
begin
  for i in {bounds} loop
    execute format('alter table public.%I {action} row level security', {element});
  end loop;
end $$;
"""


@pytest.mark.parametrize("loop", [
    _index_loop("1 .. array_length(tables, 1)"),
    _index_loop("1 .. cardinality(tables)"),
    _index_loop("1 .. 2"),
    _index_loop("1 .. array_length(tables, 1)", declared="tables text[] := '{notes,documents}';"),
    _index_loop("1 .. 2", "(array['notes', 'documents'])[i]", declared=""),
    _index_loop("1 .. array_length(tables, 1) by 1"),
])
def test_fp02_a_loop_over_the_indexes_of_a_list_turns_rls_on_for_each(loop):
    assert _findings(_TABLES + loop) == set()


def test_fp02_index_loops_that_miss_a_table_or_open_them_keep_it_reported():
    assert _findings(_TABLES + _index_loop("1 .. 1")) == _DOCUMENTS
    assert _findings(_TABLES + _index_loop("2 .. array_length(tables, 1)")) == _NOTES
    assert _findings(_TABLES + _index_loop("1 .. array_length(tables, 1) - 1")) == _NOTES | _DOCUMENTS  # (unread)
    assert _findings(_TABLES + _index_loop("1 .. array_length(tables, 1) by 2")) == _NOTES | _DOCUMENTS
    maybe = _index_loop("1 .. array_length(tables, 1)", declared="tables text[] := array['notes', 'documents'];\n"
                        "  begin_ int;").replace("begin\n  for", "begin\n  if random() > 0.5 then tables := "
                                                 "array['notes']; end if;\n  for")
    assert _findings(_TABLES + maybe) == _NOTES | _DOCUMENTS
    both = "alter table public.notes enable row level security;\nalter table public.documents enable row level " \
           "security;\n"
    assert _findings(_TABLES + both + _index_loop("1 .. array_length(tables, 1)", action="disable")) == \
        _NOTES | _DOCUMENTS
    assert _findings(_TABLES + both + _index_loop("1 .. 1", action="disable")) == _NOTES


# --- e02: BP053, the caller's id at any level of string_to_array(name, '/') -------------------------------------

_UID = UID


_uploads = uploads


@pytest.mark.parametrize("test", [
    f"{_UID} = any (string_to_array(name, '/'))",
    f"{_UID} = any (string_to_array(objects.name, '/'::text))",
    f"{_UID} = any (regexp_split_to_array(name, '/'))",
    f"string_to_array(name, '/') @> array[{_UID}]",
    f"array[{_UID}] <@ string_to_array(storage.objects.name, '/')",
    f"array_position(string_to_array(name, '/'), {_UID}) is not null",
    f"{_UID} in (select unnest(string_to_array(name, '/')))",
])
def test_e02_caller_at_any_level_of_the_split_name(test):
    assert _rules(_uploads(test)) == {"BP053"}


@pytest.mark.parametrize("test", [
    f"(string_to_array(name, '/'))[1] = {_UID}",
    f"(regexp_split_to_array(name, '/'))[1] = {_UID}",
    f"{_UID} = any (string_to_array(name, '/')) and (string_to_array(name, '/'))[1] = {_UID}",
    f"array_position(string_to_array(name, '/'), {_UID}) = 1",
    f"{_UID} = any (string_to_array(name, '-')) and (storage.foldername(name))[1] = {_UID}",
])
def test_e02_first_level_of_the_split_name_stays_clean(test):
    assert _rules(_uploads(test)) == set()


@pytest.mark.parametrize("test", [
    f"position('/' || {_UID} || '/' in '/' || name) > 0",
    f"strpos('/' || objects.name, '/' || {_UID} || '/') > 0",
    f"regexp_like(name, {_UID})",
    f"regexp_like(name, '/' || {_UID} || '/')",
])
def test_e02_nearby_searches_of_the_path_at_any_level(test):
    assert _rules(_uploads(test)) == {"BP053"}


@pytest.mark.parametrize("test", [
    f"regexp_like(name, '^' || {_UID} || '/')",
    f"strpos(name, {_UID} || '/') = 1",
    f"position({_UID} || '/' in name) = 1",
    f"position('/' || {_UID} || '/' in '/' || name) = 1",
])
def test_e02_searches_anchored_at_the_first_folder_stay_clean(test):
    assert _rules(_uploads(test)) == set()


def test_e02_a_split_of_another_text_is_no_folder_test():
    """(Reported as before, for testing no folder: not as a test of the caller at any folder level.)"""
    found = audit_sql([("m.sql", _uploads(f"{_UID} = any (string_to_array(bucket_id, '/'))"))])
    assert [f.rule_id for f in found] == ["BP053"] and "any folder level" not in found[0].message


# --- e01: BP058, a bare `name` in a storage policy's sub-query over a helper's rows ----------------------------------

_SETOF = """create function private.my_organizations() returns setof public.organizations
language sql stable security definer set search_path = '' as $$
  select o.* from public.organizations o where o.id = any (array(select private.organization_ids_with_role('viewer')))
$$;
"""
_TABLE = """create function private.my_organizations() returns table (id uuid, {column} text)
language sql stable security definer set search_path = '' as $$
  select o.id, o.name from public.organizations o
   where o.id = any (array(select private.organization_ids_with_role('viewer'))) $$;
"""
_VIEW = """create view public.my_organizations with (security_invoker = true) as
  select o.id, o.{column} from public.organizations o;
"""
_MINE = "o.id = any (array(select private.organization_ids_with_role('viewer')))"
_FOLDER = "(storage.foldername(name))[1] = o.id::text"


def _org_files(source: str, test: str, before: str = "") -> str:
    return ORGS + before + f"""
insert into storage.buckets (id, name, public) values ('org-files', 'org-files', false);
create policy org_files_read on storage.objects for select to authenticated
  using (bucket_id = 'org-files' and exists (select 1 from {source} where {test}));
"""


@pytest.mark.parametrize("source, test, before", [
    ("private.my_organizations() o", _FOLDER, _SETOF),
    ("private.my_organizations() as o", "starts_with(name, o.id::text || '/')", _SETOF),
    ("private.my_organizations() o", _FOLDER, _TABLE.replace("{column}", "name")),
    ("private.my_organizations() o", _FOLDER, _SETOF.replace("setof public.organizations", "public.organizations")),
    ("public.my_organizations o", f"{_MINE} and {_FOLDER}", _VIEW.replace("{column}", "name")),
    ("(select id, name from public.organizations) o", f"{_MINE} and {_FOLDER}", ""),
    ("private.my_organizations() as o(org_id)", "(storage.foldername(name))[1] = o.org_id::text", _SETOF),
])
def test_e01_bare_name_over_a_helpers_rows_is_their_name(source, test, before):
    assert _rules(_org_files(source, test, before)) == {"BP058"}
    fixed = test.replace("(name", "(objects.name")
    assert _rules(_org_files(source, fixed, before)) == set()


@pytest.mark.parametrize("source, test, before", [
    ("private.my_organizations() o", _FOLDER, _TABLE.replace("{column}", "org_name")),
    ("public.my_organizations o", f"{_MINE} and {_FOLDER}", _VIEW.replace("{column}", "id as org_id")),
    ("(select id, name as org_name from public.organizations) o", f"{_MINE} and {_FOLDER}", ""),
    ("private.my_organizations() as o(id, org_name)", _FOLDER, _SETOF),
    ("private.organization_ids_with_role('viewer') as o(id)", _FOLDER, ""),
    ("private.organization_ids_with_role('viewer') o", "(storage.foldername(name))[1] = o::text", ""),
])
def test_e01_a_helper_without_a_name_column_leaves_name_the_files(source, test, before):
    assert _rules(_org_files(source, test, before)) == set()


# --- e03: BP079, "the caller has a profile" asked by PERFORM and FOUND ---------------------------------------------

_PROFILES = """
create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  full_name text,
  role text
);
alter table public.profiles enable row level security;
grant select on public.profiles to authenticated;
create policy profiles_self on public.profiles for select to authenticated using (id = (select auth.uid()));
"""
_SIGNUP = """
create function private.handle_new_user() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  insert into public.profiles (id, full_name) values (new.id, new.raw_user_meta_data ->> 'full_name');
  return new;
end $$;
create trigger on_auth_user_created after insert on auth.users
  for each row execute function private.handle_new_user();
"""
_DOCS_SQL = documents(" or (select private.has_profile())")
_LOOKUP = "from public.profiles where id = (select auth.uid())"


def _has_profile(body: str, declare: str = "", signup: str = _SIGNUP) -> set[str]:
    helper = f"""
create function private.has_profile() returns boolean
language plpgsql stable security definer set search_path = '' as $$
{declare}begin
  {body}
end $$;
"""
    return {f.rule_id for f in audit_sql([("m.sql", ORGS + _PROFILES + signup + helper + _DOCS_SQL)])
            if f.level.value == "ERROR"}


@pytest.mark.parametrize("body, declare", [
    (f"perform 1 {_LOOKUP};\n  return found;", ""),
    (f"perform * {_LOOKUP};\n  if not found then return false; end if;\n  return true;", ""),
    (f"perform 1 {_LOOKUP};\n  if found then return true; else return false; end if;", ""),
    (f"select id into v {_LOOKUP};\n  return found;", "declare v uuid;\n"),
    (f"select id into v {_LOOKUP};\n  return v is not null;", "declare v uuid;\n"),
    ("select p.id into v from public.profiles p where p.id = auth.uid();\n  if not found then\n"
     "    raise exception 'no profile';\n  end if;\n  return true;", "declare v uuid;\n"),
    ("perform 1 from auth.users where id = auth.uid();\n  return found;", ""),
])
def test_e03_own_profile_found_by_perform_or_select_into_is_every_caller(body, declare):
    assert _has_profile(body, declare) == {"BP079"}


@pytest.mark.parametrize("body, declare, signup", [
    (f"perform 1 {_LOOKUP} and role = 'admin';\n  return found;", "", _SIGNUP),
    (f"perform 1 {_LOOKUP};\n  return not found;", "", _SIGNUP),
    (f"perform 1 {_LOOKUP};\n  return found;", "", ""),  # no signup trigger: not every user has one
    (f"select full_name into v {_LOOKUP};\n  return v is not null;", "declare v text;\n", _SIGNUP),
    (f"perform 1 {_LOOKUP};\n  perform 1 from public.organization_members m where m.user_id = auth.uid() "
     "and m.role = 'owner';\n  return found;", "", _SIGNUP),  # FOUND is the last query's
    (f"perform private.audit_read() {_LOOKUP};\n  return found;", "", _SIGNUP),  # (a call in the list: unread)
    ("return found;", "", _SIGNUP),  # false on entry
])
def test_e03_lookups_a_caller_may_fail_are_not_every_caller(body, declare, signup):
    assert "BP079" not in _has_profile(body, declare, signup)  # (BP050 may read the owner test, rightly)


# --- e04, e05, fp01: a check wrapping the write (`if <check> then <write> end if`) ------------------------------------

_ADMIN = "p_org = any (array(select private.organization_ids_with_role('admin')))"
_OWNER = "p_org = any (array(select private.organization_ids_with_role('owner')))"
_TO_OWNER = """    update public.organization_members set role = 'owner'
     where organization_id = p_org and user_id = p_new_owner;
"""


def _definer(name: str, params: str, body: str) -> str:
    types = ", ".join(p.split()[1] for p in params.split(", "))
    return ORGS + f"""
create function public.{name}({params}) returns void
language plpgsql security definer set search_path = '' as $$
begin
{body}end $$;
revoke all on function public.{name}({types}) from public, anon;
grant execute on function public.{name}({types}) to authenticated;
"""


def _transfer(body: str) -> set[str]:
    return _rules(_definer("transfer_ownership", "p_org uuid, p_new_owner uuid", body))


@pytest.mark.parametrize("body", [
    f"  if {_ADMIN} then\n{_TO_OWNER}  end if;\n",
    f"  if {_ADMIN} and p_new_owner is not null then\n{_TO_OWNER}  end if;\n",
    f"  if not ({_ADMIN}) then\n    raise exception 'admins only';\n  else\n{_TO_OWNER}  end if;\n",
    f"  if p_new_owner is not null then\n    if {_ADMIN} then\n{_TO_OWNER}    end if;\n  end if;\n",
    f"  if {_ADMIN} then\n    update public.organization_members set role = 'admin' where organization_id = p_org "
    f"and role = 'owner';\n{_TO_OWNER}  end if;\n",
])
def test_e04_admin_check_wrapping_the_transfer_hands_ownership_over(body):
    assert _transfer(body) == {"BP024", "BP084"}


@pytest.mark.parametrize("body", [
    f"  if {_OWNER} then\n{_TO_OWNER}  end if;\n",
    f"  if {_ADMIN} then\n    null;\n  end if;\n  if {_OWNER} then\n{_TO_OWNER}  end if;\n",
    f"  if not ({_OWNER}) then\n    raise exception 'owners only';\n  else\n{_TO_OWNER}  end if;\n",
    f"  if {_ADMIN} then\n    update public.organization_members set role = 'member' where organization_id = p_org "
    "and user_id = p_new_owner and role < 'admin';\n  end if;\n",
])
def test_e04_owner_check_wrapping_the_transfer_or_a_write_below_is_clean(body):
    assert _transfer(body) == {"BP024"}


def test_e04_a_write_after_the_wrapping_if_is_not_under_it():
    """(No check on the write's path: BP084 reads none; BP089 is the rule of a write no check guards.)"""
    body = f"  if {_ADMIN} then\n    null;\n  end if;\n{_TO_OWNER}"
    assert "BP084" not in _transfer(body)


_REMOVE = "    delete from public.organization_members where organization_id = p_org and user_id = p_user;\n"


def _removal(body: str) -> set[str]:
    return _rules(_definer("remove_member", "p_org uuid, p_user uuid", body))


@pytest.mark.parametrize("body", [
    f"  if {_ADMIN} then\n{_REMOVE}  end if;\n",
    f"  if {_ADMIN} and p_user <> (select auth.uid()) then\n{_REMOVE}  end if;\n",
    f"  if not ({_ADMIN}) then\n    return;\n  else\n{_REMOVE}  end if;\n",
])
def test_e05_admin_check_wrapping_the_removal_removes_the_owner(body):
    assert _removal(body) == {"BP024", "BP081"}


@pytest.mark.parametrize("body", [
    f"  if {_OWNER} then\n{_REMOVE}  end if;\n",
    f"  if {_ADMIN} then\n{_REMOVE.replace(';', ' and role <> ' + chr(39) + 'owner' + chr(39) + ';')}  end if;\n",
    f"  if {_ADMIN} and not exists (select 1 from public.organization_members m where m.organization_id = p_org "
    "and m.user_id = p_user and m.role = 'owner') then\n" + _REMOVE + "  end if;\n",
])
def test_e05_removal_wrapped_by_an_owner_check_or_kept_below_is_clean(body):
    assert _removal(body) == {"BP024"}


def _invite(body: str) -> set[str]:
    return _rules(invitations() + _definer("invite_member", "p_org uuid, p_email text, p_role public.member_role",
                                           body))


_MEMBER = """  if not p_org = any (array(select private.organization_ids_with_role('member'))) then
    raise exception 'members only' using errcode = '42501';
  end if;
"""
_INSERT = "    insert into public.invitations (organization_id, email, role) values (p_org, p_email, p_role);\n"


@pytest.mark.parametrize("body", [
    _MEMBER + f"  if p_role < 'admin' or {_OWNER} then\n{_INSERT}  end if;\n",
    _MEMBER + f"  if p_role in ('viewer', 'member') or {_OWNER} then\n{_INSERT}  end if;\n",
    _MEMBER + f"  if p_role >= 'admin' and not ({_OWNER}) then\n    raise notice 'skipped';\n  else\n{_INSERT}"
    "  end if;\n",
    f"  if p_org = any (array(select private.organization_ids_with_role('member'))) then\n"
    f"    if p_role < 'admin' or {_OWNER} then\n  {_INSERT}    end if;\n  end if;\n",
])
def test_fp01_invitation_written_inside_an_if_bounding_its_role_is_clean(body):
    assert _invite(body) == {"BP024"}


@pytest.mark.parametrize("body", [
    _MEMBER + f"  if p_role <= 'admin' or {_OWNER} then\n{_INSERT}  end if;\n",  # admin for every member
    _MEMBER + f"  if p_role < 'admin' or {_ADMIN} then\n{_INSERT}  end if;\n",  # admins make owners
    _MEMBER + f"  if p_email is not null then\n{_INSERT}  end if;\n",  # no role test
    _MEMBER + f"  if p_role < 'admin' or {_OWNER} then\n    null;\n  end if;\n{_INSERT}",  # written after it
    _MEMBER + f"  if p_role >= 'admin' and not ({_OWNER}) then\n{_INSERT}  end if;\n",  # the branch that refuses
])
def test_fp01_an_if_that_does_not_bound_the_role_still_fires(body):
    assert _invite(body) == {"BP024", "BP087"}
