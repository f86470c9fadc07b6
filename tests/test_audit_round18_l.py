"""Evasion round 18 fp04: BP083 reads a table's slug triggers together (an insert trigger and an update trigger
whose WHEN skips only unchanged slugs), and a WHEN that fires exactly on the values holding a character outside
a safe class."""

from __future__ import annotations

import pytest

from audit_world import ORGS
from blueprint_mcp.audit import audit_sql

# Owners may rename their organisation and its slug, so an update of the slug can happen.
_BASE = """
alter table public.organizations add column slug text unique;
create policy orgs_update on public.organizations for update to authenticated
  using (id = any (array(select private.organization_ids_with_role('owner'))))
  with check (id = any (array(select private.organization_ids_with_role('owner'))));
create function private.slugify_organization() returns trigger language plpgsql set search_path = '' as $$
begin
  new.slug := trim(both '-' from regexp_replace(lower(coalesce(new.slug, new.name)), '[^a-z0-9]+', '-', 'g'));
  return new;
end $$;
"""

_STORAGE = """
create policy org_files_read on storage.objects for select to authenticated
  using (bucket_id = 'org-files' and exists (select 1 from public.organizations o
    where o.id = any (array(select private.organization_ids_with_role('viewer')))
      and objects.name like o.slug || '/%'));
"""


def _trigger(name: str, events: str, when: str = "") -> str:
    return f"""create trigger {name} before {events} on public.organizations
  for each row {when} execute function private.slugify_organization();
"""


def _bp083(triggers: str) -> list[str]:
    return sorted(f.rule_id for f in audit_sql([("case.sql", ORGS + _BASE + triggers + _STORAGE)])
                  if f.rule_id == "BP083")


_INSERT = _trigger("organizations_slug_insert", "insert")


@pytest.mark.parametrize("update", [
    _trigger("organizations_slug_update", "update of slug, name",
             "when (new.slug is distinct from old.slug or new.name is distinct from old.name)"),
    _trigger("organizations_slug_update", "update of slug", "when (new.slug is distinct from old.slug)"),
    _trigger("organizations_slug_update", "update", "when (not (old.slug is not distinct from new.slug))"),
    _trigger("organizations_slug_update", "update of slug"),
])
def test_slug_triggers_split_into_insert_and_update_sanitise_together(update):
    """fp04: every insert passes the insert trigger, and every update that changes the slug passes the update
    trigger; an update skipped by the WHEN keeps the slug the triggers already sanitised (carol's '%' and '_'
    are stored as '')."""
    assert _bp083(_INSERT + update) == []
    assert _bp083(update + _INSERT) == []  # (the order of creation is not the order of reading)


@pytest.mark.parametrize("update", [
    "",  # no update trigger: an owner's `update ... set slug = '%'` is kept
    _trigger("organizations_slug_update", "update of name", "when (new.name is distinct from old.name)"),
    _trigger("organizations_slug_update", "update", "when (new.name is distinct from old.name)"),
    _trigger("organizations_slug_update", "update", "when (new.slug <> old.slug)"),  # (null old slug: skipped)
    _trigger("organizations_slug_update", "update", "when (new.slug is distinct from new.name)"),
])
def test_slug_update_left_to_a_when_that_skips_changed_slugs_is_raw(update):
    """fp04's twin: an update of the slug alone that no sanitising trigger sees stores the owner's '%'."""
    assert _bp083(_INSERT + update) == ["BP083"]


def test_another_before_trigger_setting_the_slug_undoes_the_pair():
    """A BEFORE trigger that copies a raw value into the slug may run after the sanitising ones."""
    raw = """create function private.raw_slug() returns trigger language plpgsql set search_path = '' as $$
begin
  new.slug := new.name;
  return new;
end $$;
create trigger organizations_z before insert or update on public.organizations
  for each row execute function private.raw_slug();
"""
    update = _trigger("organizations_slug_update", "update of slug", "when (new.slug is distinct from old.slug)")
    assert _bp083(_INSERT + update + raw) == ["BP083"]


@pytest.mark.parametrize("when", [
    "when (new.slug is null or new.slug !~ '^[a-z0-9-]+$')",
    "when (new.slug !~ '^[a-z0-9-]*$')",
    "when (not (new.slug ~ '^[a-z0-9-]+$'))",
    "when (new.slug ~ '[^a-z0-9-]')",
    "when (new.slug is null or new.slug ~ '[^a-z0-9-]+')",
    "when (not (new.slug !~ '[^a-z0-9-]'))",
])
def test_slug_trigger_firing_on_every_value_outside_the_safe_class_sanitises(when):
    """fp04 (scratch x_badonly): the WHEN skips only values made of 'a'-'z', '0'-'9' and '-', which hold no
    wildcard; every other value is slugified."""
    assert _bp083(_trigger("organizations_slug", "insert or update", when)) == []


@pytest.mark.parametrize("when", [
    "when (new.slug !~ '^[a-z0-9_-]+$')",  # '_' is skipped
    "when (new.slug ~ '[^a-z0-9%-]')",  # '%' is skipped
    "when (new.slug ~ '^[^a-z0-9-]')",  # only a bad first character
    "when (new.slug ~* '[^a-z0-9-]')",  # (not read)
    "when (new.slug !~ '[a-z0-9-]')",  # skips every value holding one safe character
    "when (new.slug ~ '^[a-z0-9-]+$')",  # fires on the good values only
])
def test_slug_trigger_whose_when_skips_a_wildcard_is_raw(when):
    """The same WHEN idiom with a class holding a wildcard, or not a whole-value test, lets a typed '%' through."""
    assert _bp083(_trigger("organizations_slug", "insert or update", when)) == ["BP083"]


_GENERATED = """
alter table public.organizations add column slug text
  generated always as (trim(both '-' from regexp_replace(lower(name), '[^a-z0-9]+', '-', 'g'))) stored;
create policy orgs_update on public.organizations for update to authenticated
  using (id = any (array(select private.organization_ids_with_role('owner'))));
"""


@pytest.mark.parametrize("after, found", [
    ("", []),
    ("alter table public.organizations alter column slug drop expression;", ["BP083"]),  # (then clients write it)
    ("alter table public.organizations alter column slug set expression as (lower(name));", ["BP083"]),
])
def test_generated_slug_from_a_sanitising_function_holds_no_wildcard(after, found):
    """fp04's review: a stored generated column holds only what its expression makes of the row's name, which
    keeps 'a'-'z', '0'-'9' and '-'; `lower(name)` keeps '%', and a dropped expression leaves a plain column."""
    sql = ORGS + _GENERATED + after + _STORAGE
    assert sorted(f.rule_id for f in audit_sql([("case.sql", sql)]) if f.rule_id == "BP083") == found


_HELPER = """
create function private.slugify(v text) returns text language sql immutable set search_path = '' as $$
  select trim(both '-' from regexp_replace(lower(v), '[^a-z0-9]+', '-', 'g')) $$;
"""
_PLPGSQL_HELPER = """
create function private.slugify(v text) returns text language plpgsql immutable set search_path = '' as $$
begin
  return trim(both '-' from regexp_replace(lower(v), '[^a-z0-9]+', '-', 'g'));
end $$;
"""
_SHADOWED = """
create function private.slugify(v text) returns text language plpgsql immutable set search_path = '' as $$
declare v text := '%';
begin
  return lower(v);
end $$;
"""
_LOWER = """
create function private.slugify(v text) returns text language sql immutable set search_path = '' as $$
  select lower($1) $$;
"""


@pytest.mark.parametrize("helper, found", [(_HELPER, []), (_PLPGSQL_HELPER, []), (_SHADOWED, ["BP083"]),
                                           (_LOWER, ["BP083"])])
@pytest.mark.parametrize("column", [
    "alter table public.organizations add column slug text generated always as (private.slugify(name)) stored;",
    """alter table public.organizations add column slug text;
create function private.slug_trigger() returns trigger language plpgsql set search_path = '' as $$
begin
  new.slug := private.slugify(coalesce(new.slug, new.name));
  return new;
end $$;
create trigger organizations_slug before insert or update on public.organizations
  for each row execute function private.slug_trigger();
""",
])
def test_slugify_helper_is_read_as_its_body(helper, found, column):
    """fp04's review: a slug made by the migration's own slugify helper (SQL `select <expr>` or a PL/pgSQL RETURN)
    holds what the helper's expression makes of its argument; a helper keeping '%' (`lower($1)`, a DECLARE
    shadowing the parameter) does not sanitise."""
    sql = ORGS + helper + column + """create policy orgs_update on public.organizations for update to authenticated
  using (id = any (array(select private.organization_ids_with_role('owner'))));
""" + _STORAGE
    assert sorted(f.rule_id for f in audit_sql([("case.sql", sql)]) if f.rule_id == "BP083") == found
