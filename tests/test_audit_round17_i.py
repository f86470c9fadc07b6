"""Evasion round 17 (e05, fp05, fp01): a slug trigger's WHEN, a slug domain's CHECK (BP083, BP072), and the
docs' column-grant idiom on profiles (BP067)."""

from __future__ import annotations

import pytest

from audit_world import ORGS
from blueprint_mcp.audit import audit_sql

_SLUG = """
alter table public.organizations add column slug {type} unique;
"""

_SLUGIFY = """
create function private.slugify_organization() returns trigger language plpgsql set search_path = '' as $$
begin
  new.slug := trim(both '-' from regexp_replace(lower(coalesce(new.slug, new.name)), '[^a-z0-9]+', '-', 'g'));
  return new;
end $$;
create trigger organizations_slug before {events} on public.organizations
  for each row {when} execute function private.slugify_organization();
"""

_STORAGE = """
create policy org_files_read on storage.objects for select to authenticated
  using (bucket_id = 'org-files' and exists (select 1 from public.organizations o
    where o.id = any (array(select private.organization_ids_with_role('viewer')))
      and objects.name like o.slug || '/%'));
"""

_REALTIME = """
create policy org_channels_read on realtime.messages for select to authenticated
  using (exists (select 1 from public.organization_members m join public.organizations o on o.id = m.organization_id
                  where m.user_id = (select auth.uid()) and realtime.topic() like 'org:' || o.slug || ':%'));
"""


def _rules(sql: str, *ids: str) -> list[str]:
    return sorted(f.rule_id for f in audit_sql([("case.sql", ORGS + sql)]) if f.rule_id in ids)


def _slugify(when: str = "", events: str = "insert or update") -> str:
    return _SLUGIFY.replace("{when}", when).replace("{events}", events)


@pytest.mark.parametrize("when", [
    "when (new.slug is null)",  # only a missing slug is made from the name: a typed '%%' is kept
    "when (new.name is not null)",
    "when (new.slug is not null and new.slug <> '')",
    "when (pg_trigger_depth() = 0)",
])
def test_slug_trigger_with_a_when_that_skips_typed_slugs_sanitises_nothing(when):
    """e05: the trigger fires only on the rows its WHEN lets through; a slug the owner types reaches the pattern
    raw (carol's slug '%%' reads acme/ and beta/). The same trigger without WHEN is clean."""
    base = _SLUG.replace("{type}", "text")
    assert _rules(base + _slugify(when) + _STORAGE, "BP083") == ["BP083"]
    assert _rules(base + _slugify(when) + _REALTIME, "BP072") == ["BP072"]
    assert _rules(base + _slugify() + _STORAGE, "BP083") == []
    assert _rules(base + _slugify() + _REALTIME, "BP072") == []


@pytest.mark.parametrize("when", ["when (new.slug is not null)", "when (true)",
                                  "when (new.slug is not null or new.name = '')"])
def test_slug_trigger_whose_when_holds_for_every_slug_sanitises(when):
    """e05's twin: a WHEN true for every row holding a slug leaves only a null slug alone, which makes no
    pattern (`null || '/%'` matches nothing)."""
    assert _rules(_SLUG.replace("{type}", "text") + _slugify(when) + _STORAGE, "BP083") == []


def test_slug_trigger_on_update_of_other_columns_sanitises_no_update_of_the_slug():
    """e05 (the README's `update of` form): an UPDATE OF list without the slug lets `update set slug = '%'`
    through. (Owners may update the row: with no update policy no update happens, and the insert trigger alone
    sanitises, as in evasion round 16 fp06; round 18 fp04 reads the events per trigger.)"""
    base = _SLUG.replace("{type}", "text") + """create policy orgs_update on public.organizations for update
  to authenticated using (id = any (array(select private.organization_ids_with_role('owner'))));
"""
    assert _rules(base + _slugify(events="insert or update of name") + _STORAGE, "BP083") == ["BP083"]
    assert _rules(base + _slugify(events="insert or update of name, slug") + _STORAGE, "BP083") == []


_DOMAIN = """
create domain public.slug_base as text check (value ~ '^[a-z0-9-]+$');
create domain public.slug as public.slug_base check (length(value) < 64);
"""


@pytest.mark.parametrize("domains, column_type", [
    ("create domain public.slug as text check (value ~ '^[a-z0-9-]+$');", "public.slug"),
    ("create domain public.slug as text constraint slug_chars check (value is null or value ~ '^[a-z0-9-]+$');",
     "public.slug"),
    (_DOMAIN, "public.slug"),  # the CHECK is the nested domain's
    (_DOMAIN, "slug"),
    ("create domain public.org_key as uuid;", "public.org_key"),  # a domain over uuid holds no wildcard
])
def test_slug_domain_check_confines_it_like_a_column_check(domains, column_type):
    """fp05: a value of the domain passes its CHECK (and its base domain's), so `like o.slug || '/%'` is clean,
    as it is with the same CHECK on the column."""
    sql = domains + _SLUG.replace("{type}", column_type)
    assert _rules(sql + _STORAGE, "BP083") == []
    assert _rules(sql + _REALTIME, "BP072") == []
    column_check = _SLUG.replace("{type}", "text check (slug ~ '^[a-z0-9-]+$')")
    assert _rules(column_check + _STORAGE, "BP083") == []


@pytest.mark.parametrize("domains", [
    "create domain public.slug as text check (value ~ '^[a-z0-9_-]+$');",  # '_' is a wildcard
    "create domain public.slug as text check (value ~ '^[a-z0-9-]+$' or length(value) > 3);",
    "create domain public.slug as text check (not (value ~ '^[a-z0-9-]+$'));",
    "create domain public.slug as text;\nalter domain public.slug add constraint slug_chars\n"
    "  check (value ~ '^[a-z0-9-]+$') not valid;",  # the values stored before are not checked
    "create domain public.slug as text constraint slug_chars check (value ~ '^[a-z0-9-]+$');\n"
    "alter domain public.slug drop constraint slug_chars;",
    "create domain public.slug as text check (value ~ '^[a-z0-9-]+$');\n"
    "alter domain public.slug drop constraint slug_check;",  # PostgreSQL's name for it
])
def test_slug_domain_check_that_admits_a_wildcard_or_is_gone_confines_nothing(domains):
    """fp05's twins: a domain CHECK confines the slug only when every value passing it is free of wildcards."""
    sql = domains + _SLUG.replace("{type}", "public.slug")
    assert _rules(sql + _STORAGE, "BP083") == ["BP083"]


_PROFILES = """
create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  full_name text,
  avatar_url text,
  is_staff boolean not null default false
);
alter table public.profiles enable row level security;
create policy profiles_select_own on public.profiles for select to authenticated using (id = (select auth.uid()));
create policy profiles_update_own on public.profiles for update to {roles}
  using (id = (select auth.uid())) with check (id = (select auth.uid()));
{grants}
create function private.is_staff() returns boolean
language sql stable security definer set search_path = '' as $$
  select coalesce((select p.is_staff from public.profiles p where p.id = (select auth.uid())), false) $$;
revoke all on function private.is_staff() from public, anon;
grant execute on function private.is_staff() to authenticated;
create table public.projects (id uuid primary key, organization_id uuid not null references public.organizations (id),
  name text not null);
alter table public.projects enable row level security;
create policy projects_select_staff on public.projects for select to authenticated
  using ((select private.is_staff()));
"""
_DOCS_IDIOM = """
revoke update on public.profiles from authenticated;
grant update (full_name, avatar_url) on public.profiles to authenticated;
"""


def _profiles(roles: str, grants: str) -> str:
    return _PROFILES.replace("{roles}", roles).replace("{grants}", grants)


def test_docs_column_grant_idiom_keeps_is_staff_out_of_the_self_update():
    """fp01: after `revoke update ... from authenticated; grant update (full_name, avatar_url)`, authenticated (the
    update policy's only role) cannot write is_staff; anon's legacy UPDATE opens no row of a policy `to
    authenticated`. The same without the column grant, or with the policy open to anon too, is BP067."""
    assert _rules(_profiles("authenticated", _DOCS_IDIOM), "BP067") == []
    assert _rules(_profiles("authenticated", ""), "BP067") == ["BP067"]
    assert _rules(_profiles("authenticated", "grant update on public.profiles to authenticated;"),
                  "BP067") == ["BP067"]
    assert _rules(_profiles("public", _DOCS_IDIOM), "BP067") == ["BP067"]  # anon still updates every column
    assert _rules(_profiles("anon, authenticated", _DOCS_IDIOM), "BP067") == ["BP067"]
    assert _rules(_profiles("public", _DOCS_IDIOM + "revoke update on public.profiles from anon;"), "BP067") == []
