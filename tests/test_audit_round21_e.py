"""Evasion round 21, storage and realtime: the caller's id at any folder level in the spellings beside `= any
(storage.foldername(name))` (e04, BP053), a bare `name` in a storage policy's sub-query that is organizations.name
(e08, BP058), a prefix ending with '/' through format() (fp01, BP083), and a channel topic compared with the rows of
the membership helper (fp08, BP072)."""

from __future__ import annotations

import pytest

from audit_world import ORGS, UID, uploads
from blueprint_mcp.audit import audit_sql

_UID = UID
_MINE = "o.id = any (array(select private.organization_ids_with_role('viewer')))"
_TOPIC = "(select realtime.topic())"
_HELPER = "private.organization_ids_with_role('viewer')"


def _rules(sql: str) -> set[str]:
    return {f.rule_id for f in audit_sql([("m.sql", sql)]) if f.level.value in ("ERROR", "WARN")}


_uploads = uploads


@pytest.mark.parametrize("test", [
    f"storage.foldername(name) @> array[{_UID}]",
    f"array[{_UID}] <@ storage.foldername(name)",
    f"storage.foldername(name) && array[{_UID}]",
    f"array[{_UID}] && storage.foldername(objects.name)",
    "storage.foldername(name) @> array[(select auth.uid()::text)]::text[]",
    f"{_UID} in (select unnest(storage.foldername(name)))",
    f"exists (select 1 from unnest(storage.foldername(name)) f where f = {_UID})",
    f"array_position(storage.foldername(name), {_UID}) is not null",
    f"name like '%' || {_UID} || '/%'",
    f"name like '%/' || {_UID} || '/%'",
    f"objects.name ilike concat('%', {_UID}, '%')",
    f"name like format('%%/%s/%%', {_UID})",
    f"name similar to '%' || {_UID} || '/%'",
    f"name ~ ('^.*/' || {_UID} || '/')",
    f"strpos(name, {_UID}) > 0",
    f"position({_UID} in name) > 0",
    f"{_UID} = any (storage.foldername(name))",
])
def test_e04_caller_at_any_folder_level(test):
    assert _rules(_uploads(test)) == {"BP053"}


@pytest.mark.parametrize("test", [
    f"(storage.foldername(name))[1] = {_UID}",
    f"storage.foldername(name) = array[{_UID}]",
    f"storage.foldername(name) <@ array[{_UID}]",
    f"array_position(storage.foldername(name), {_UID}) = 1",
    f"name like {_UID} || '/%'",
    f"name ~ ('^' || {_UID} || '/')",
    f"position({_UID} in name) = 1",
    f"starts_with(name, {_UID} || '/')",
    f"(storage.foldername(name))[1] = {_UID} and storage.foldername(name) @> array[{_UID}]",
])
def test_e04_first_folder_stays_clean(test):
    assert _rules(_uploads(test)) == set()


def test_e04_unanchored_regex_is_an_open_prefix_too():
    assert _rules(_uploads(f"name ~ ({_UID} || '/')")) == {"BP053", "BP083"}


def test_e04_a_constant_folder_anywhere_is_no_caller_test():
    """`@> array['reports']` names no caller: the policy asks nothing of who uploads, as before."""
    assert _rules(_uploads("storage.foldername(name) @> array['reports']")) == {"BP053"}
    assert _rules(_uploads(f"(storage.foldername(name))[1] = {_UID} and 'reports' = any "
                           "(storage.foldername(name))")) == set()


def _org_files(test: str, command: str = "select") -> str:
    clause = "using" if command == "select" else "with check"
    mine = _MINE if command == "select" else _MINE.replace("'viewer'", "'member'")
    return ORGS + f"""
insert into storage.buckets (id, name, public) values ('org-files', 'org-files', false);
create policy org_files on storage.objects for {command} to authenticated
  {clause} (bucket_id = 'org-files' and exists (select 1 from public.organizations o where {mine} and {test}));
"""


@pytest.mark.parametrize("test", [
    "(storage.foldername(name))[1] = o.id::text",
    "starts_with(name, o.id::text || '/')",
    "name like o.id::text || '/%'",
    "split_part(name, '/', 1) = o.id::text",
    "(string_to_array(name, '/'))[1] = o.id::text",
])
def test_e08_bare_name_in_sub_query_is_the_organisation_name(test):
    assert _rules(_org_files(test)) == {"BP058"}
    fixed = test.replace("(name", "(objects.name").replace("name like", "objects.name like")
    assert _rules(_org_files(fixed)) == set(), fixed
    assert _rules(_org_files(fixed.replace("objects.name", "storage.objects.name"))) == set()


def test_e08_captured_through_a_join_and_in_an_upload():
    joined = ORGS + """
insert into storage.buckets (id, name, public) values ('org-files', 'org-files', false);
create policy org_files on storage.objects for select to authenticated using (bucket_id = 'org-files' and exists (
  select 1 from public.organization_members m join public.organizations o on o.id = m.organization_id
   where m.user_id = (select auth.uid()) and (storage.foldername(name))[1] = o.id::text));
"""
    assert _rules(joined) == {"BP058"}
    assert _rules(_org_files("(storage.foldername(name))[1] = o.id::text", "insert")) == {"BP058"}


def test_e08_bare_name_of_a_relation_without_one_is_the_file():
    """organization_members has no `name`: the bare name is the object's path, as PostgreSQL resolves it."""
    sql = ORGS + """
insert into storage.buckets (id, name, public) values ('org-files', 'org-files', false);
create policy org_files on storage.objects for select to authenticated using (bucket_id = 'org-files' and exists (
  select 1 from public.organization_members m
   where m.user_id = (select auth.uid()) and (storage.foldername(name))[1] = m.organization_id::text));
"""
    assert _rules(sql) == set()
    assert _rules(_org_files("o.name = 'Acme'")) == set()  # (a name that is no path test)


def _slugged(prefix: str) -> str:
    return ORGS + f"""
alter table public.organizations add column slug text not null unique;
insert into storage.buckets (id, name, public) values ('org-files', 'org-files', false);
create policy org_files_read on storage.objects for select to authenticated
  using (bucket_id = 'org-files' and exists (select 1 from public.organizations o where {_MINE}
    and starts_with(objects.name, {prefix})));
"""


@pytest.mark.parametrize("prefix", [
    "format('%s/', o.slug)", "format('%I/', o.slug)", "format('%2$s/%1$s/', o.name, o.slug)",
    "pg_catalog.format('%s/', o.slug)", "format('%s', o.slug) || '/'", "format('org-%s', o.id)",
])
def test_fp01_prefix_through_format_ends_with_separator(prefix):
    assert _rules(_slugged(prefix)) == set()


@pytest.mark.parametrize("prefix", [
    "format('%s', o.slug)", "format('%s/%s', o.slug, o.name)", "format(variadic array[o.slug])",
    "format('%s', o.slug || '/') || o.name",
])
def test_fp01_prefix_through_format_without_separator_still_fires(prefix):
    assert _rules(_slugged(prefix)) == {"BP083"}


def test_fp01_like_pattern_through_format_still_reads_the_column():
    sql = _slugged("'x'").replace("starts_with(objects.name, 'x')", "objects.name like format('%s/%%', o.slug)")
    assert _rules(sql) == {"BP083"}


def _channel(using: str) -> str:
    return ORGS + f"""
create policy org_channels_read on realtime.messages for select to authenticated using ({using});
"""


@pytest.mark.parametrize("using", [
    f"exists (select 1 from {_HELPER} as mine(id) where {_TOPIC} = 'org:' || mine.id::text)",
    f"exists (select 1 from {_HELPER} org_id where {_TOPIC} = 'org:' || org_id)",
    f"exists (select 1 from {_HELPER} where {_TOPIC} = 'org:' || organization_ids_with_role)",
    f"exists (select 1 from {_HELPER} as mine(id) where split_part({_TOPIC}, ':', 2)::uuid = mine.id)",
    f"exists (select 1 from {_HELPER} as mine(id) where {_TOPIC} = format('org:%s', id))",
    f"exists (select 1 from public.organizations o where {_MINE} and {_TOPIC} = 'org:' || o.id::text)",
    f"exists (select 1 from public.organizations o where o.id in (select {_HELPER}) "
    f"and {_TOPIC} = 'org:' || o.id::text)",
    "exists (select 1 from public.organization_members m join public.organizations o on o.id = m.organization_id "
    f"where m.user_id = (select auth.uid()) and {_TOPIC} = 'org:' || o.id::text)",
    "exists (select 1 from public.organization_members m where m.user_id = (select auth.uid()) "
    f"and {_TOPIC} = 'org:' || m.organization_id::text)",
    "exists (select 1 from public.organization_members m where m.user_id = (select auth.uid()) "
    f"and starts_with({_TOPIC}, 'org:' || m.organization_id::text || ':'))",
])
def test_fp08_topic_compared_with_the_callers_organisations(using):
    assert _rules(_channel(using)) == set()


@pytest.mark.parametrize("using", [
    f"exists (select 1 from {_HELPER} as mine(id) where {_TOPIC} like 'org:%')",
    f"exists (select 1 from public.organizations o where {_MINE} and {_TOPIC} like 'org:%')",
    "exists (select 1 from public.organization_members m where m.user_id = (select auth.uid()) "
    f"and {_TOPIC} like 'org:%')",
    "exists (select 1 from public.organization_members m, public.organizations o "
    f"where m.user_id = (select auth.uid()) and {_TOPIC} = 'org:' || o.id::text)",
])
def test_fp08_topic_beside_a_membership_not_on_its_rows_still_fires(using):
    assert _rules(_channel(using)) == {"BP072"}
