"""Evasion round 16 (e10, e14, e15, fp06): prefixes and patterns made from an organisation's slug, on storage object
names (BP083) and realtime topics (BP072)."""

from __future__ import annotations

import pytest

from blueprint_mcp.audit import audit_sql

_SCHEMA = """
create schema if not exists private;
create table public.organizations (id uuid primary key default gen_random_uuid(), name text not null,
  slug text unique);
alter table public.organizations enable row level security;
create table public.organization_members (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null default 'member',
  primary key (organization_id, user_id)
);
alter table public.organization_members enable row level security;
create function private.organization_ids_with_role(min_role text) returns setof uuid
language sql stable security definer set search_path = '' as $$
  select m.organization_id from public.organization_members m where m.user_id = (select auth.uid()) $$;
revoke all on function private.organization_ids_with_role(text) from public, anon;
grant execute on function private.organization_ids_with_role(text) to authenticated;
create policy members_select on public.organization_members for select to authenticated
  using (organization_id = any (array(select private.organization_ids_with_role('viewer'))));
create policy orgs_select on public.organizations for select to authenticated
  using (id = any (array(select private.organization_ids_with_role('viewer'))));
"""

_SLUGIFY = """
create function private.slugify_organization() returns trigger language plpgsql set search_path = '' as $$
begin
  new.slug := trim(both '-' from regexp_replace(lower(coalesce(new.slug, new.name)), '{keep}', '-', 'g'));
  return new;
end $$;
create trigger organizations_slug before {events} on public.organizations
  for each row execute function private.slugify_organization();
"""

_STORAGE = """
insert into storage.buckets (id, name, public) values ('org-files', 'org-files', false);
create policy org_files_read on storage.objects for select to authenticated
  using (bucket_id = 'org-files' and exists (select 1 from public.organizations o
    where o.id = any (array(select private.organization_ids_with_role('viewer'))) and {test}));
"""

_REALTIME = """
create policy org_channels_read on realtime.messages for select to authenticated
  using (exists (select 1 from public.organization_members m join public.organizations o on o.id = m.organization_id
                  where m.user_id = (select auth.uid()) and {test}));
"""


def _rules(sql: str, *ids: str) -> list[str]:
    return sorted(f.rule_id for f in audit_sql([("case.sql", _SCHEMA + sql)]) if f.rule_id in ids)


def _slugify(keep: str = "[^a-z0-9]+", events: str = "insert or update") -> str:
    return _SLUGIFY.replace("{keep}", keep).replace("{events}", events)


@pytest.mark.parametrize("test", [
    "objects.name ~ ('^' || o.slug || '/')",
    "objects.name ~* ('^' || o.slug || '/')",
    "regexp_like(objects.name, '^' || o.slug || '/')",
    "regexp_match(objects.name, '^' || o.slug || '/') is not null",
    "substring(objects.name from '^' || o.slug || '/') is not null",
])
def test_regex_made_from_a_slug_that_keeps_dots_is_its_pattern(test):
    """e10: the slugify trigger keeps '.', a regular expression's any character: slug '....' matches 'acme/'."""
    sql = _slugify("[^a-z0-9.]+") + _STORAGE.replace("{test}", test)
    assert _rules(sql, "BP083") == ["BP083"]
    assert _rules(_STORAGE.replace("{test}", test), "BP083") == ["BP083"]  # (no trigger at all)


@pytest.mark.parametrize("test", [
    r"objects.name ~ ('^' || regexp_replace(o.slug, '([.])', '\\\1', 'g') || '/')",  # ('+', '*', '(' ... left)
    "objects.name similar to o.slug || '/%'",
])
def test_pattern_escaping_some_metacharacters_or_over_a_free_slug_is_its_pattern(test):
    assert _rules(_STORAGE.replace("{test}", test), "BP083") == ["BP083"]


@pytest.mark.parametrize("keep, test", [
    ("[^a-z0-9.]+", "starts_with(objects.name, o.slug || '/')"),  # e10's fix
    ("[^a-z0-9]+", "objects.name ~ ('^' || o.slug || '/')"),  # a slug of letters, digits and '-' holds none
    ("[^a-z0-9]+", "objects.name similar to o.slug || '/%'"),
    ("[^a-z0-9.]+", r"objects.name ~ ('^' || regexp_replace(o.slug, '([.*+?^${}()|\[\]\\])', '\\\1', 'g') || '/')"),
])
def test_regex_or_prefix_with_separator_over_a_bounded_or_escaped_slug_passes(keep, test):
    assert _rules(_slugify(keep) + _STORAGE.replace("{test}", test), "BP083") == []


@pytest.mark.parametrize("test", [
    "left(objects.name, length(o.slug)) = o.slug",
    "o.slug = left(objects.name, length(o.slug))",
    "substr(objects.name, 1, length(o.slug)) = o.slug",
    "position(o.slug in objects.name) = 1",
    "strpos(objects.name, o.slug) = 1",
    "strpos(objects.name, o.slug || '/') > 0",  # (anywhere: 'x/acme/...')
    "objects.name >= o.slug and objects.name < o.slug || '~'",
    "objects.name between o.slug and o.slug || '~'",
    "objects.name ~ ('^' || o.slug)",
    "objects.name ~ (o.slug || '/')",  # (not anchored)
])
def test_prefix_idioms_without_separator_are_open_prefixes(test):
    """e15: `left(name, length(o.slug)) = o.slug` holds for 'acme/...' when the slug is 'a'."""
    found = [f for f in audit_sql([("case.sql", _SCHEMA + _slugify() + _STORAGE.replace("{test}", test))])
             if f.rule_id == "BP083"]
    assert len(found) == 1 and "does not end with '/'" in found[0].message


@pytest.mark.parametrize("test", [
    "left(objects.name, length(o.slug) + 1) = o.slug || '/'",  # e15's fix
    "substr(objects.name, 1, length(o.slug) + 1) = o.slug || '/'",
    "position(o.slug || '/' in objects.name) = 1",
    "objects.name >= o.slug || '/' and objects.name < o.slug || '0'",
    "split_part(objects.name, '/', 1) = o.slug",
    "(storage.foldername(objects.name))[1] = o.slug",
    "left(objects.name, 36) = o.id::text",
    "strpos(objects.name, '..') = 0",
])
def test_prefix_idioms_with_separator_pass(test):
    assert _rules(_slugify() + _STORAGE.replace("{test}", test), "BP083") == []


_E14 = "starts_with((select realtime.topic()), 'org:' || o.slug{tail})"


@pytest.mark.parametrize("test", [
    _E14.replace("{tail}", ""),
    "realtime.topic() like 'org:' || o.slug || '%'",
    "left(realtime.topic(), length('org:' || o.slug)) = 'org:' || o.slug",
    "realtime.topic() like 'org:' || o.slug || ':%'",  # (no trigger: the slug may hold '%')
])
def test_realtime_topic_prefix_without_separator_or_made_a_pattern_is_reported(test):
    """e14: channels are 'org:<slug>:<room>', and slug 'a' joins 'org:acme:board'."""
    slugify = "" if test.endswith(":%'") else _slugify()
    assert _rules(slugify + _REALTIME.replace("{test}", test), "BP072") == ["BP072"]


@pytest.mark.parametrize("test", [
    _E14.replace("{tail}", " || ':'"),  # e14's fix
    "split_part((select realtime.topic()), ':', 2) = o.slug",
    "starts_with(realtime.topic(), 'org:' || o.id::text)",
    "realtime.topic() like 'org:' || o.slug || ':%'",  # (the trigger keeps '%' and '_' out)
])
def test_realtime_topic_prefix_with_separator_passes(test):
    assert _rules(_slugify() + _REALTIME.replace("{test}", test), "BP072") == []


_FP06_GRANTS = """
revoke update on public.organizations from anon, authenticated;
grant update (name) on public.organizations to authenticated;
create policy orgs_update on public.organizations for update to authenticated
  using (id = any (array(select private.organization_ids_with_role('owner'))))
  with check (id = any (array(select private.organization_ids_with_role('owner'))));
"""
_LIKE = "objects.name like o.slug || '/%'"


@pytest.mark.parametrize("grants", [
    _FP06_GRANTS,
    "grant select, insert, update on public.organizations to authenticated;",  # (RLS, and no update policy)
])
def test_insert_only_slug_trigger_where_no_client_updates_the_slug_sanitises_it(grants):
    """fp06: the slug is fixed at creation; clients may update the name only."""
    sql = _slugify(events="insert") + _STORAGE.replace("{test}", _LIKE) + grants
    assert _rules(sql, "BP083") == []


@pytest.mark.parametrize("grants", [
    _FP06_GRANTS.replace("grant update (name)", "grant update (name, slug)"),
    _FP06_GRANTS.replace("revoke update on public.organizations from anon, authenticated;", ""),
    _FP06_GRANTS + """
create function public.rename_slug(p_org uuid, p_slug text) returns void language sql security definer
  set search_path = '' as $$ update public.organizations set slug = p_slug where id = p_org $$;
grant execute on function public.rename_slug(uuid, text) to authenticated;
""",
    _FP06_GRANTS + """
create function public.claim_slug(p_name text, p_slug text) returns void language sql security definer
  set search_path = '' as $$ insert into public.organizations (name, slug) values (p_name, p_slug)
    on conflict (slug) do update set slug = excluded.slug || '-2' $$;
grant execute on function public.claim_slug(text, text) to authenticated;
""",
])
def test_insert_only_slug_trigger_with_an_update_of_the_slug_sanitises_nothing(grants):
    sql = _slugify(events="insert") + _STORAGE.replace("{test}", _LIKE) + grants
    assert _rules(sql, "BP083") == ["BP083"]
