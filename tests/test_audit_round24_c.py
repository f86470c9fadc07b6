"""Evasion round 24 (helper c): grants, triggers that guard the tenant key, audited tables. e01: a column GRANT
beside Supabase's default grant of the whole table, e02: a whole-table GRANT after column grants (BP082). e03: a
BEFORE UPDATE OF organization_id trigger whose function only clears a field (BP030). e04: a sensitive table's audit
trigger firing on UPDATE only (BP036). e05: Realtime's publication taking every table of a schema (TABLES IN
SCHEMA, BP086). fp01: a trigger WHEN comparing the tenant key with OLD before a function that raises, fp02: a
guard comparing NEW with OLD as rows (BP030). Each hole fires and its secure counterpart does not
(PostgreSQL's side: /tmp/s31/evasion24/proof.out)."""

from __future__ import annotations

import pytest

from blueprint_mcp.audit import audit_sql

from audit_world import ORGS, PROJECTS


def _findings(sql: str) -> list:
    return [f for f in audit_sql([("m.sql", ORGS + sql)]) if f.level.value in ("ERROR", "WARN")]


def _rules(sql: str) -> set[str]:
    return {f.rule_id for f in _findings(sql)}


# --- e01, e02: BP082, column grants beside the privilege on the whole table ----------------------------------------

_PROFILES = """
create table public.profiles (id uuid primary key references auth.users (id) on delete cascade, full_name text,
  phone text);
alter table public.profiles enable row level security;
create policy profiles_select on public.profiles for select to authenticated using (true);
"""


@pytest.mark.parametrize("grants", [
    "grant select (id, full_name) on public.profiles to authenticated;",
    "grant select (id, full_name) on table public.profiles to anon, authenticated;",
    "revoke select on public.profiles from anon;\ngrant select (id, full_name) on public.profiles to authenticated;",
    "revoke update on public.profiles from anon;\ngrant update (full_name) on public.profiles to authenticated;",
])
def test_e01_a_column_grant_beside_the_default_table_grant_restricts_nothing(grants):
    found = _findings(_PROFILES + grants)
    assert [f.rule_id for f in found] == ["BP082"] and "restricts nothing" in found[0].message


_REVOKED = _PROFILES + """
revoke select on public.profiles from anon, authenticated;
grant select (id, full_name) on public.profiles to authenticated;
alter table public.profiles add column avatar_url text;
"""


@pytest.mark.parametrize("later", [
    "grant select on public.profiles to authenticated;",
    "grant all on public.profiles to authenticated;",
    "grant select, update on table public.profiles to authenticated;",
    "grant select on all tables in schema public to authenticated;",
])
def test_e02_a_table_grant_after_column_grants_gives_back_every_column(later):
    found = _findings(_REVOKED + later)
    assert [f.rule_id for f in found] == ["BP082"] and "grant select (id, full_name)" in found[0].message


@pytest.mark.parametrize("sql", [
    _REVOKED,
    _REVOKED + "grant select (avatar_url) on public.profiles to authenticated;",
    _REVOKED + "revoke select (id, full_name) on public.profiles from authenticated;\n"
               "grant select on public.profiles to authenticated;",
    _PROFILES + "grant select (id, full_name) on public.profiles to authenticated;\n"
                "revoke select on public.profiles from anon, authenticated;\n"
                "grant select (id, full_name) on public.profiles to authenticated;",
    _PROFILES + "revoke all on public.profiles from anon, authenticated;\n"
                "grant select (id, full_name) on public.profiles to service_role;\n"
                "grant update (full_name) on public.profiles to authenticated;",
    _PROFILES + "grant select on public.profiles to authenticated;",
])
def test_e01_e02_column_grants_that_restrict_stay_clean(sql):
    assert _rules(sql) == set()


def test_e02_a_column_grant_in_a_schema_the_api_does_not_serve_is_left_alone():
    assert _rules(_PROFILES.replace("public.profiles", "private.profiles")
                  + "grant select (id, full_name) on private.profiles to authenticated;") - {"BP003"} == set()


# --- e03, fp01, fp02: BP030, triggers that guard the tenant key (or do not) ------------------------------------------

_UPDATE = PROJECTS + """
create policy projects_update on public.projects for update to authenticated
  using (organization_id = any (array(select private.organization_ids_with_role('member'))))
  with check (organization_id = any (array(select private.organization_ids_with_role('member'))));
"""


def _trigger(body: str, spec: str = "before update", name: str = "private.guard") -> str:
    return _UPDATE + f"""
create function {name}() returns trigger language plpgsql set search_path = '' as $$
begin
{body}
end $$;
create trigger projects_guard {spec} on public.projects for each row execute function {name}();
"""


_CLEARS = "  new.notes := null;\n  return new;"
_RAISES = "  raise exception 'a row cannot move to another organisation';"


@pytest.mark.parametrize("sql", [
    _trigger(_CLEARS, "before update of organization_id"),
    _trigger(_CLEARS, "before update of name, organization_id"),
    _trigger("  raise warning 'moved';\n  return new;", "before update of organization_id"),
    _trigger(_CLEARS, "before update of organization_id on public.projects for each row when (true) --"),
    _trigger(_RAISES, "before update of name"),
    _trigger(_RAISES, "before update").replace(
        "for each row execute", "for each row when (old.name is distinct from new.name) execute"),
    _trigger(_RAISES, "before update").replace(
        "for each row execute", "for each row when (old.organization_id is distinct from new.organization_id and "
                                "old.name is distinct from new.name) execute"),
    _trigger(_CLEARS, "before update").replace(
        "for each row execute", "for each row when (old.organization_id is distinct from new.organization_id) execute"),
    # organization_id may be NULL here: <> lets a move to or from NULL through
    _trigger(_RAISES, "before update").replace("organization_id uuid not null", "organization_id uuid").replace(
        "for each row execute", "for each row when (old.organization_id <> new.organization_id) execute"),
    _trigger("  if (new.id, new.name) is distinct from (old.id, old.name) then raise exception 'no'; end if;\n"
             "  return new;"),
    _trigger("  if (new.id, new.organization_id) is distinct from (old.id) then raise exception 'no'; end if;\n"
             "  return new;"),
])
def test_e03_a_trigger_that_does_not_refuse_the_move_guards_nothing(sql):
    assert "BP030" in _rules(sql)


@pytest.mark.parametrize("sql", [
    _trigger(_RAISES, "before update of organization_id"),
    _trigger("  if not exists (select 1 from public.organization_members m where m.user_id = auth.uid() and "
             "m.organization_id = new.organization_id and m.role = 'owner') then raise exception 'no'; end if;\n"
             "  return new;", "before update of organization_id"),
    _trigger("  perform private.refuse();\n  return new;", "before update of organization_id").replace(
        "create trigger", "create function private.refuse() returns void language plpgsql as $$ begin raise "
                          "exception 'no'; end $$;\ncreate trigger"),
    _UPDATE + "create trigger projects_guard before update of organization_id on public.projects for each row "
              "execute function util.refuse_change();",
])
def test_e03_a_trigger_run_by_the_key_that_may_raise_stays_clean(sql):
    assert "BP030" not in _rules(sql)


@pytest.mark.parametrize("when", [
    "old.organization_id is distinct from new.organization_id",
    "new.organization_id is distinct from old.organization_id",
    "old.organization_id <> new.organization_id",
    "new.organization_id != old.organization_id",
    "old.name is distinct from new.name or old.organization_id is distinct from new.organization_id",
    "(old.id, old.organization_id) is distinct from (new.id, new.organization_id)",
])
def test_fp01_a_when_comparing_the_key_before_a_refusal_guards_it(when):
    sql = _trigger(_RAISES).replace("for each row execute", f"for each row when ({when}) execute")
    assert "BP030" not in _rules(sql)


@pytest.mark.parametrize("test", [
    "(new.id, new.organization_id) is distinct from (old.id, old.organization_id)",
    "(old.organization_id, old.id) is distinct from (new.organization_id, new.id)",
    "row(new.organization_id) is distinct from row(old.organization_id)",
    "(new.organization_id, new.id) <> (old.organization_id, old.id)",
    "row(new.organization_id, new.id) is distinct from row(old.organization_id, old.id) or new.name = ''",
])
def test_fp02_a_guard_comparing_rows_compares_each_column(test):
    sql = _trigger(f"  if {test} then\n    raise exception 'immutable';\n  end if;\n  return new;")
    assert "BP030" not in _rules(sql)


def test_fp02_rows_compared_with_not_equal_are_loose_on_a_nullable_key():
    sql = _trigger("  if (new.organization_id, new.id) <> (old.organization_id, old.id) then raise exception 'no';"
                   " end if;\n  return new;").replace("organization_id uuid not null", "organization_id uuid")
    assert "BP030" in _rules(sql)


# --- e04: BP036, an audit trigger that misses some changes -----------------------------------------------------------

_SALARIES = """
create table public.audit_logs (id bigint generated always as identity primary key, table_name text, op text);
alter table public.audit_logs enable row level security;
create table public.salaries (id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade, amount numeric not null);
create index on public.salaries (organization_id);
comment on table public.salaries is 'sensitive: salaries';
alter table public.salaries enable row level security;
create policy salaries_select on public.salaries for select to authenticated
  using (organization_id = any (array(select private.organization_ids_with_role('admin'))));
create function private.audit_change() returns trigger language plpgsql security definer set search_path = '' as $$
begin insert into public.audit_logs (table_name, op) values (tg_table_name, tg_op); return null; end $$;
"""


def _audited(*events: str) -> str:
    return _SALARIES + "".join(f"create trigger salaries_audit_{i} after {e} on public.salaries for each row "
                               "execute function private.audit_change();\n" for i, e in enumerate(events))


def _bp036(sql: str) -> list[str]:
    return [f.message for f in _findings(sql) if f.rule_id == "BP036"]


@pytest.mark.parametrize("events, missing", [
    (["update"], "INSERT or DELETE"),
    (["insert or update"], "DELETE"),
    (["update or delete"], "INSERT"),
    (["insert", "update"], "DELETE"),
    (["delete or truncate"], "INSERT or UPDATE"),
])
def test_e04_an_audit_trigger_missing_some_changes_is_reported(events, missing):
    assert [m.split("does not fire on ")[-1] for m in _bp036(_audited(*events))] == \
        [f"{missing}: those changes leave no trace."]


@pytest.mark.parametrize("events", [
    ["insert or update or delete"],
    ["insert or delete", "update"],
    ["insert", "update of amount", "delete"],
])
def test_e04_audit_triggers_covering_every_change_stay_clean(events):
    assert _bp036(_audited(*events)) == []


def test_e04_no_audit_trigger_keeps_its_message():
    assert _bp036(_SALARIES) == ["public.salaries is marked sensitive but changes to it are not audited."]
    disabled = _audited("insert or update or delete") + \
        "alter table public.salaries disable trigger salaries_audit_0;"
    assert _bp036(disabled) == ["public.salaries is marked sensitive but changes to it are not audited."]


# --- e05: BP086, a publication of every table of a schema -------------------------------------------------------------

_JOBS = """
create schema internal;
create table internal.job_events (id bigint generated always as identity primary key, organization_id uuid not null,
  payload jsonb);
create index on internal.job_events (organization_id);
grant usage on schema internal to authenticated;
grant select on internal.job_events to authenticated;
"""


@pytest.mark.parametrize("publish", [
    "alter publication supabase_realtime add tables in schema internal;",
    "alter publication supabase_realtime add table public.organizations, tables in schema internal;",
    "alter publication supabase_realtime set tables in schema internal;",
    "drop publication if exists supabase_realtime;\n"
    "create publication supabase_realtime for tables in schema internal;",
    "alter publication supabase_realtime add tables in schema internal;\n"
    "alter publication supabase_realtime drop table public.organizations;",
])
def test_e05_a_schema_published_to_realtime_streams_its_tables(publish):
    assert [(f.rule_id, f.object) for f in _findings(_JOBS + publish)] == [("BP086", "internal.job_events")]


@pytest.mark.parametrize("publish", [
    "alter publication supabase_realtime add tables in schema audit;",
    "alter publication supabase_realtime add tables in schema internal;\n"
    "alter publication supabase_realtime drop tables in schema internal;",
    "alter publication supabase_realtime add tables in schema internal;\n"
    "alter table internal.job_events enable row level security;\n"
    "create policy job_events_select on internal.job_events for select to authenticated\n"
    "  using (organization_id = any (array(select private.organization_ids_with_role('viewer'))));",
    "create publication other for tables in schema internal;",
])
def test_e05_a_schema_not_published_or_protected_stays_clean(publish):
    assert _findings(_JOBS + publish) == []
