"""Evasion round 21, items e01, e02, e03, e05 and e06 (BP079, a policy true for every caller): the token test read
through an array constant (`'{authenticated,service_role}'::text[]`), a CASE, the clock as `timezone('utc', now())`,
a PL/pgSQL helper's RETURN, and the caller's own row of a table a signup trigger fills for every user (profiles).
Each hole fires BP079 and its secure counterpart does not."""

from __future__ import annotations

import pytest

from audit_world import documents, errors_fired


def _documents(extra: str, before: str = "") -> str:
    return before + documents(" or " + extra)


# --- e01: the role test over an array constant '{...}'::text[] ----------------------------------------------------

@pytest.mark.parametrize("test", [
    "(select auth.role()) = any ('{authenticated,service_role}'::text[])",
    "(select auth.role()) = any ('{authenticated,service_role}')",  # untyped: read as text[]
    """auth.role() = any ('{ "authenticated" , service_role }'::varchar[])""",
    "(auth.jwt() ->> 'role') = any ('{authenticated,anon}'::text[])",
    "(auth.jwt() ->> 'aal') = any ('{aal1,aal2}'::text[])",
    "array[(select auth.role())] <@ '{authenticated,service_role}'::text[]",
    "array[(select auth.role())] <@ array['authenticated', 'service_role']",
    "'{authenticated,service_role}'::text[] @> array[auth.role()]",
    "array[auth.role()] && '{authenticated,service_role}'",
    "auth.jwt() ?| '{sub,email}'",
    """auth.jwt() @> '{"role": "authenticated"}'::jsonb""",  # the claims as a json constant
    """'{"role": "authenticated", "app_metadata": {}}' <@ auth.jwt()""",
])
def test_e01_role_among_an_array_constant_is_every_caller(test):
    assert errors_fired(_documents(test)) == {"BP079"}


@pytest.mark.parametrize("test", [
    "(select auth.role()) = any ('{service_role}'::text[])",
    "(select auth.role()) = any ('{anon,service_role}'::text[])",
    "(select auth.role()) = all ('{authenticated,service_role}'::text[])",
    "(select auth.role()) <> all ('{authenticated,service_role}'::text[])",
    "(auth.jwt() ->> 'aal') = any ('{aal2}'::text[])",
    "auth.role() = any ('{NULL}'::text[])",  # an unquoted NULL is NULL
    """auth.role() = any ('{"{authenticated}"}'::text[])""",  # a quoted element keeps its braces
    "array[(select auth.role())] <@ '{service_role}'::text[]",
    "array[auth.role(), 'x'] <@ '{authenticated}'::text[]",
    "auth.jwt() ?& '{sub,custom}'",
    """auth.jwt() @> '{"role": "service_role"}'::jsonb""",
    """auth.jwt() @> '{"app_metadata": {"role": "staff"}}'""",
    """auth.jwt() @> '{"is_anonymous": true}'""",
])
def test_e01_narrow_array_constants_are_not_every_caller(test):
    assert errors_fired(_documents(test)) == set()


# --- e02: "is signed in" as a CASE expression ---------------------------------------------------------------------

@pytest.mark.parametrize("test", [
    "case when (select auth.uid()) is null then false else true end",
    "case when auth.uid() is not null then true else false end",
    "case when auth.uid() is null then false when auth.role() = 'authenticated' then true end",
    "case (select auth.role()) when 'authenticated' then true else false end",
    "(case when auth.uid() is null then 0 else 1 end) = 1",
    "coalesce(case when auth.uid() is null then null else true end, false)",
    "num_nonnulls(auth.uid()) > 0",
    "num_nulls(auth.uid()) = 0",
])
def test_e02_signed_in_as_a_case_is_every_caller(test):
    assert errors_fired(_documents(test)) == {"BP079"}


@pytest.mark.parametrize("test", [
    "case when (select auth.uid()) is null then false else false end",
    "case when auth.uid() is not null then false else true end",
    "case when auth.uid() is not null then (auth.jwt() ->> 'aal') = 'aal2' else false end",
    "case (select auth.role()) when 'service_role' then true else false end",
    "case when auth.uid() is null then false end",  # NULL for every signed-in caller
    "num_nulls(auth.uid()) > 0",
])
def test_e02_cases_a_caller_may_fail_are_not_every_caller(test):
    assert errors_fired(_documents(test)) == set()


# --- e03: expiry against timezone('utc', now()) -------------------------------------------------------------------

_EXP = "(select auth.jwt() ->> 'exp')::bigint"
_IAT = "(auth.jwt() ->> 'iat')::bigint"


@pytest.mark.parametrize("test", [
    f"{_EXP} > extract(epoch from timezone('utc'::text, now()))",
    f"{_EXP} > extract(epoch from now() at time zone 'utc')",
    f"{_EXP} > extract(epoch from (current_timestamp at time zone 'UTC'))::bigint",
    f"{_EXP} > date_part('epoch', timezone('Etc/UTC', now()))",
    f"to_timestamp({_EXP}) > timezone('utc', now())",
    f"to_timestamp({_EXP}) > (now() at time zone 'utc')::timestamptz",
    f"to_timestamp({_EXP}) > now()::timestamp",  # the session's zone, UTC on Supabase, as localtimestamp
    f"{_IAT} <= extract(epoch from timezone('utc', now()))",
])
def test_e03_expiry_against_the_utc_clock_is_every_caller(test):
    assert errors_fired(_documents(test)) == {"BP079"}


@pytest.mark.parametrize("test", [
    f"{_EXP} > extract(epoch from timezone('Asia/Tokyo', now()))",  # nine hours ahead: not read
    f"{_EXP} > extract(epoch from timezone('utc', now()) + interval '1 hour')",
    f"{_EXP} < extract(epoch from timezone('utc', now()))",
    f"{_IAT} < extract(epoch from timezone('utc', now()))",  # an equal second leaves it open
    f"{_IAT} < extract(epoch from now()::timestamp(0))",  # rounded: may land below iat
])
def test_e03_other_clock_tests_are_not_every_caller(test):
    assert errors_fired(_documents(test)) == set()


# --- e05: "is signed in" behind a PL/pgSQL helper -----------------------------------------------------------------

def _helper(body: str, head: str = "language plpgsql stable set search_path = ''") -> str:
    return _documents("(select public.is_authenticated())",
                      f"create function public.is_authenticated() returns boolean {head} as $$ {body} $$;\n")


@pytest.mark.parametrize("body", [
    "begin return auth.uid() is not null; end",
    "begin return (select auth.role()) = 'authenticated'; end",
    "begin if auth.uid() is null then return false; end if; return true; end",
    "begin if auth.uid() is null then return false; else return true; end if; end",
    "begin if auth.uid() is not null then return true; end if; return false; end",
    "begin if auth.uid() is null then raise exception 'not signed in'; end if; return true; end",
    "begin raise notice 'checking'; return auth.uid() is not null; end",
    "declare v_uid uuid := auth.uid(); begin return v_uid is not null; end",
    "declare v_uid uuid; begin v_uid := auth.uid(); return v_uid is not null; end",
    "declare v_uid uuid; begin select auth.uid() into v_uid; return v_uid is not null; end",
    "begin return exists (select 1 from auth.users where id = auth.uid()); end",
    "begin if exists (select 1 from auth.users u where u.id = auth.uid()) then return true; end if; return false; end",
    "begin case auth.role() when 'authenticated', 'x' then return true; else return false; end case; end",
    "begin case when auth.uid() is not null then return true; end case; end",  # no ELSE: raises otherwise
    "declare r text := auth.role(); begin case when r = 'anon' then return false; else null; end case; "
    "return true; end",
])
def test_e05_signed_in_plpgsql_helper_is_every_caller(body):
    assert errors_fired(_helper(body)) == {"BP079"}
    assert errors_fired(_helper(body, "language plpgsql stable security definer set search_path = ''")) == {"BP079"}


@pytest.mark.parametrize("head_body", [
    ("language sql stable", "select auth.uid() is not null"),
    ("language sql stable return", "auth.uid() is not null"),  # the SQL-standard body
    ("language sql stable begin atomic", "select auth.uid() is not null; end"),
])
def test_e05_signed_in_sql_helper_in_every_body_form_is_every_caller(head_body):
    head, body = head_body
    sql = _documents("(select public.is_authenticated())",
                     f"create function public.is_authenticated() returns boolean {head} {body};\n"
                     if "return" in head or "atomic" in head else
                     f"create function public.is_authenticated() returns boolean {head} as $$ {body} $$;\n")
    assert errors_fired(sql) == {"BP079"}
    assert errors_fired(sql.replace("is not null", "is null")) == set()


@pytest.mark.parametrize("body", [
    "begin return auth.uid() is null; end",
    "begin if auth.uid() is not null then return false; end if; return true; end",
    "begin return (auth.jwt() ->> 'aal') = 'aal2'; end",
    "declare v_uid uuid; begin return v_uid is not null; end",  # never set: NULL
    "declare v_uid uuid := auth.uid(); begin v_uid := null; return v_uid is not null; end",
    "begin if auth.uid() is not null then raise exception 'x'; end if; return true; end",
    "begin perform 1; return auth.uid() is not null; exception when others then return false; end",  # unread
    "begin case when auth.uid() is null then return true; end case; end",
    "begin case auth.role() when 'anon' then return true; else return false; end case; end",
])
def test_e05_plpgsql_helpers_a_caller_may_fail_are_not_every_caller(body):
    assert errors_fired(_helper(body)) == set()


# --- e06: "the caller has a profile", which the signup trigger gives every user -----------------------------------

_PROFILES = """
create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  user_id uuid unique references auth.users (id),
  full_name text,
  role text
);
alter table public.profiles enable row level security;
{policy}
create function private.handle_new_user() returns trigger
language plpgsql security definer set search_path = '' as $$
{body}
$$;
create trigger on_auth_user_created {timing} on auth.users
  for each row {when} execute function private.handle_new_user();
"""
_OWN = "create policy profiles_self on public.profiles for select to authenticated using (id = (select auth.uid()));"
_MAKES = "begin\n  insert into public.profiles (id) values (new.id);\n  return new;\nend"
_HAS = "exists (select 1 from public.profiles p where p.id = (select auth.uid()))"


def _signup(test: str = _HAS, policy: str = _OWN, body: str = _MAKES, timing: str = "after insert", when: str = "",
            extra: str = "") -> str:
    prelude = _PROFILES.replace("{policy}", policy).replace("{body}", body).replace("{timing}", timing) \
        .replace("{when}", when) + extra
    return _documents(test, prelude)


_HELPER = "create function private.has_profile() returns boolean language {lang} stable {security} " \
          "set search_path = '' as $$ {body} $$;\n"


@pytest.mark.parametrize("case", [
    {},
    {"test": "exists (select 1 from profiles where auth.uid() = id)"},
    {"test": "(select auth.uid()) in (select id from public.profiles)"},
    {"test": "(select count(*) from public.profiles where id = (select auth.uid())) > 0"},
    {"test": "0 < (select count(*) from public.profiles p where p.id = auth.uid())"},
    {"test": "(select count(1) from public.profiles where id = auth.uid()) >= 1"},
    {"timing": "before insert"},
    {"body": "begin insert into public.profiles (id, full_name) select new.id, new.raw_user_meta_data ->> 'name';"
             " return new; end"},
    {"body": "begin insert into public.profiles (id) values (new.id) on conflict (id) do nothing; return new; end"},
    {"body": "declare v text := 'x'; begin raise notice 'new user'; insert into public.profiles values "
             "(new.id, null, v); return new; end"},  # no column list: the table's order
    {"test": "exists (select 1 from public.profiles where user_id = auth.uid())",
     "body": "begin insert into public.profiles (id, user_id) values (gen_random_uuid(), new.id); return new; end",
     "policy": "create policy p on public.profiles for select to authenticated using (user_id = auth.uid());"},
    {"policy": "create policy p on public.profiles for select to authenticated using (true);"},
    {"policy": "create policy p on public.profiles for all to authenticated using (auth.uid() = id);"},
    {"policy": _OWN + "\ncreate policy r on public.profiles as restrictive for select to authenticated "
                      "using ((select auth.uid()) = id);"},
    {"test": "(select private.has_profile())", "policy": "",  # a definer helper reads past RLS
     "extra": _HELPER.format(lang="sql", security="security definer",
                             body="select exists (select 1 from public.profiles where id = auth.uid())")},
    {"test": "(select private.has_profile())",
     "extra": _HELPER.format(lang="plpgsql", security="",
                             body="begin return exists (select 1 from public.profiles where id = auth.uid()); end")},
])
def test_e06_own_row_of_a_table_every_signup_fills_is_every_caller(case):
    assert errors_fired(_signup(**case)) == {"BP079"}


@pytest.mark.parametrize("case", [
    {"test": "exists (select 1 from public.profiles p where p.id = (select auth.uid()) and p.role = 'admin')"},
    {"test": "exists (select 1 from public.profiles p where p.id = organization_id)"},
    {"test": "(select count(*) from public.profiles where id = (select auth.uid())) > 1"},
    {"test": "(select count(*) from public.profiles where id = (select auth.uid())) = 0"},
    {"test": "(select count(*) from public.profiles) > 0"},
    {"policy": ""},  # under RLS with no policy the caller sees no profile
    {"policy": "create policy p on public.profiles for select to authenticated using (role = 'admin');"},
    {"policy": _OWN + "\nrevoke select on public.profiles from authenticated;"},
    {"policy": _OWN + "\ncreate policy r on public.profiles as restrictive for select to authenticated "
                      "using (role = 'admin');"},
    {"body": "begin if new.raw_app_meta_data ->> 'provider' = 'google' then insert into public.profiles (id) "
             "values (new.id); end if; return new; end"},  # only some signups
    {"timing": "after update"},
    {"when": "when (new.email like '%@staff.example')"},
    {"extra": "drop trigger on_auth_user_created on auth.users;"},
    {"test": "(select private.has_profile())", "policy": "",  # an invoker helper sees no profile
     "extra": _HELPER.format(lang="sql", security="",
                             body="select exists (select 1 from public.profiles where id = auth.uid())")},
])
def test_e06_lookups_a_caller_may_fail_are_not_every_caller(case):
    assert errors_fired(_signup(**case)) == set()
