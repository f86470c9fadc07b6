"""Evasion round 25 (helper f): storage buckets and policies, read-only roles. e01: a later migration making a
bucket public with an UPDATE of storage.buckets (BP048). Each hole fires and its secure counterpart does not
(PostgreSQL's side: /tmp/s31/evasion25/proof.out)."""

from __future__ import annotations

import pytest

from blueprint_mcp.audit import audit_sql

from audit_world import ORGS, PROJECTS


def _findings(sql: str) -> list:
    return [f for f in audit_sql([("m.sql", ORGS + sql)]) if f.level.value in ("ERROR", "WARN")]


def _rules(sql: str) -> set[str]:
    return {f.rule_id for f in _findings(sql)}


# --- e01: BP048, a bucket made public (or given other types) by a later UPDATE -------------------------------------

_AVATARS = """
insert into storage.buckets (id, name, public{types_col}) values ('avatars', 'avatars', false{types});
create policy avatars_read on storage.objects for select to authenticated
  using (bucket_id = 'avatars' and (storage.foldername(name))[1] = (select auth.uid())::text);
create policy avatars_upload on storage.objects for insert to authenticated
  with check (bucket_id = 'avatars' and (storage.foldername(name))[1] = (select auth.uid())::text);
"""


def _avatars(later: str, types: str = "") -> str:
    return _AVATARS.format(types_col=", allowed_mime_types" if types else "", types=f", {types}" if types else "") \
        + later + "\n"


@pytest.mark.parametrize("later", [
    "update storage.buckets set public = true where id = 'avatars';",
    "update storage.buckets set public = true where name = 'avatars';",
    "update storage.buckets set public = 'true' where id in ('avatars', 'media');",
    "update storage.buckets set public = true;",
    "update storage.buckets set public = true, updated_at = now() where id = 'avatars' and public = false;",
])
def test_e01_bucket_made_public_later_fires(later):
    assert _rules(_avatars(later)) == {"BP048"}


@pytest.mark.parametrize("later, types", [
    ("update storage.buckets set allowed_mime_types = array['image/png', 'image/svg+xml'] where id = 'avatars';",
     "array['image/png']"),
    ("update storage.buckets set allowed_mime_types = null where id = 'avatars';", "'{image/png}'"),
])
def test_e01_public_bucket_given_active_types_later_fires(later, types):
    sql = _avatars(later, types).replace("'avatars', false", "'avatars', true")
    assert _rules(sql) == {"BP048"}


@pytest.mark.parametrize("later, types", [
    ("update storage.buckets set public = true where id = 'media';", ""),
    ("update storage.buckets set public = true where id = 'avatars';", "array['image/png', 'image/webp']"),
    ("update storage.buckets set public = true where id = 'avatars';\n"
     "update storage.buckets set public = false where id = 'avatars';", ""),
    ("update storage.buckets set file_size_limit = 1048576 where id = 'avatars';", ""),
    ("update storage.buckets set public = true where id = current_setting('app.bucket');", ""),
])
def test_e01_bucket_left_private_or_inert_stays_clean(later, types):
    assert _rules(_avatars(later, types)) == set()


def test_e01_bucket_made_private_later_is_clean():
    sql = _avatars("update storage.buckets set public = false where id = 'avatars';").replace(
        "'avatars', false", "'avatars', true")
    assert _rules(sql) == set()
