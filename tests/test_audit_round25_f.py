"""Evasion round 25 (helper f): storage buckets and policies, read-only roles, definer RPCs. e01: a later migration
making a bucket public with an UPDATE of storage.buckets (BP048). e02: a public bucket whose uploads go into the
caller's folder, with Supabase's starter avatar update policy checking the bucket only (BP053). e03: a definer RPC
asking for the caller's viewer organisations before deleting past RLS (BP059). fp01: a write policy bounded above
viewer (`m.role > 'viewer'`, BP059). fp02: a definer write run only inside an IF EXISTS finding the row in the
caller's organisations, fp02b / fp03: a refusal reading the row's organisation through a scalar sub-query (BP073).
Each hole fires and its secure counterpart does not (PostgreSQL's side: /tmp/s31/evasion25/proof.out)."""

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


# --- e02: BP053, a public bucket's update checking the bucket only where uploads go by folder ---------------------

_PUBLIC_AVATARS = """
insert into storage.buckets (id, name, public, allowed_mime_types) values ('avatars', 'avatars', {public},
  array['image/png', 'image/jpeg']);
create policy avatars_upload on storage.objects for insert to authenticated
  with check ({upload});
create policy avatars_update on storage.objects for update to authenticated
  using ((select auth.uid()) = owner)
  with check ({check});
"""
_MINE = "(storage.foldername(name))[1] = (select auth.uid())::text"


def _public_avatars(check: str, upload: str = f"bucket_id = 'avatars' and {_MINE}", public: str = "true") -> str:
    return _PUBLIC_AVATARS.format(public=public, upload=upload, check=check)


@pytest.mark.parametrize("check, upload", [
    ("bucket_id = 'avatars'", f"bucket_id = 'avatars' and {_MINE}"),
    ("bucket_id = 'avatars' and owner_id = (select auth.uid())::text", f"bucket_id = 'avatars' and {_MINE}"),
    ("bucket_id = 'avatars'", "bucket_id = 'avatars' and name = (select auth.uid())::text || '.png'"),
    ("bucket_id = 'avatars'", "bucket_id = 'avatars' and split_part(name, '/', 1) = (select auth.uid())::text"),
])
def test_e02_public_bucket_update_into_any_folder_fires(check, upload):
    assert _rules(_public_avatars(check, upload)) == {"BP053"}


@pytest.mark.parametrize("check, upload, public", [
    (f"bucket_id = 'avatars' and {_MINE}", f"bucket_id = 'avatars' and {_MINE}", "true"),
    ("bucket_id = 'avatars' and name = (select auth.uid())::text || '/avatar.png'",
     f"bucket_id = 'avatars' and {_MINE}", "true"),
    # uploads not by folder: nothing says a file's path is whose
    ("bucket_id = 'avatars'", "bucket_id = 'avatars' and owner_id = (select auth.uid())::text", "true"),
    # a private bucket no select policy reads: its files are read by nobody but the service role
    ("bucket_id = 'avatars'", f"bucket_id = 'avatars' and {_MINE}", "false"),
])
def test_e02_update_tied_to_the_folder_or_no_folder_layout_stays_clean(check, upload, public):
    assert _rules(_public_avatars(check, upload, public)) == set()


# --- fp01: BP059, a strict bound above the read-only role --------------------------------------------------------

def _insert_policy(test: str) -> str:
    return PROJECTS + f"""
create policy projects_insert on public.projects for insert to authenticated
  with check (exists (select 1 from public.organization_members m
                      where m.organization_id = projects.organization_id
                        and m.user_id = (select auth.uid()) and {test}));
"""


@pytest.mark.parametrize("test", [
    "m.role > 'viewer'",
    "m.role > 'viewer'::public.member_role",
    "'viewer' < m.role",
    "m.role is distinct from 'viewer'",
    "m.role >= 'member'",
    "not (m.role <= 'viewer')",
])
def test_fp01_bound_above_viewer_is_clean(test):
    assert "BP059" not in _rules(_insert_policy(test))


@pytest.mark.parametrize("test", [
    "m.role >= 'viewer'",
    "m.role is not distinct from 'viewer'",
    "not (m.role > 'viewer')",
    "m.role < 'admin'",
    "'member' > m.role",
    "m.role in ('viewer', 'member')",
])
def test_fp01_bound_admitting_viewer_still_fires(test):
    assert "BP059" in _rules(_insert_policy(test))


def test_fp01_bound_past_a_lower_read_only_label_fires():
    world = ORGS.replace("('viewer', 'member', 'admin', 'owner')", "('guest', 'viewer', 'member', 'admin', 'owner')")
    findings = audit_sql([("m.sql", world + _insert_policy("m.role > 'guest'"))])
    assert [f.message.split(" admits ")[1].split(" to ")[0] for f in findings if f.rule_id == "BP059"] == ["viewer"]


# --- e03: BP059, a definer function clients call asking for a read-only role before it writes --------------------

def _definer(body: str, grant: str = "authenticated", schema: str = "public") -> str:
    return PROJECTS + f"""
create function {schema}.remove_project(p_id uuid) returns void
language plpgsql security definer set search_path = '' as $$
declare v_org uuid;
begin
{body}
end $$;
revoke all on function {schema}.remove_project(uuid) from public, anon;
grant execute on function {schema}.remove_project(uuid) to {grant};
"""


_VIEWER = "private.organization_ids_with_role('viewer')"
_ADMIN = "private.organization_ids_with_role('admin')"
_ORG_OF = "  select organization_id into v_org from public.projects where id = p_id;\n"


@pytest.mark.parametrize("body", [
    f"  delete from public.projects where id = p_id and organization_id = any (array(select {_VIEWER}));",
    f"  delete from public.projects where id = p_id and organization_id in (select {_VIEWER});",
    _ORG_OF + f"  if not (v_org = any (array(select {_VIEWER}))) then raise exception 'no'; end if;\n"
              "  delete from public.projects where id = p_id;",
    _ORG_OF + f"  if v_org = any (array(select {_VIEWER})) then\n"
              "    update public.projects set name = 'archived' where id = p_id;\n  end if;",
    _ORG_OF + "  if not exists (select 1 from public.organization_members m where m.organization_id = v_org\n"
              "      and m.user_id = (select auth.uid()) and m.role in ('viewer', 'member')) then return; end if;\n"
              "  delete from public.projects where id = p_id;",
])
def test_e03_definer_write_admitting_viewer_fires(body):
    assert "BP059" in _rules(_definer(body))


@pytest.mark.parametrize("body, grant, schema", [
    (f"  delete from public.projects where id = p_id and organization_id = any (array(select {_ADMIN}));",
     "authenticated", "public"),
    (_ORG_OF + f"  if not (v_org = any (array(select {_ADMIN}))) then raise exception 'no'; end if;\n"
               "  delete from public.projects where id = p_id;", "authenticated", "public"),
    (_ORG_OF + "  if not exists (select 1 from public.organization_members m where m.organization_id = v_org\n"
               "      and m.user_id = (select auth.uid()) and m.role > 'viewer') then return; end if;\n"
               "  delete from public.projects where id = p_id;", "authenticated", "public"),
    # a viewer's read through a definer function writes nothing
    (f"  perform 1 from public.projects where id = p_id and organization_id = any (array(select {_VIEWER}));",
     "authenticated", "public"),
    # a function clients cannot call
    (f"  delete from public.projects where id = p_id and organization_id = any (array(select {_VIEWER}));",
     "service_role", "private"),
])
def test_e03_definer_write_for_writers_or_out_of_reach_is_clean(body, grant, schema):
    assert "BP059" not in _rules(_definer(body, grant, schema))


def test_e03_viewer_stamping_their_own_membership_is_clean():
    sql = """
alter table public.organization_members add column last_seen_at timestamptz;
create function public.touch(p_org uuid) returns void
language sql security definer set search_path = '' as $$
  update public.organization_members set last_seen_at = now()
   where organization_id = p_org and user_id = (select auth.uid())
     and organization_id = any (array(select private.organization_ids_with_role('viewer'))) $$;
revoke all on function public.touch(uuid) from public, anon;
grant execute on function public.touch(uuid) to authenticated;
"""
    assert "BP059" not in _rules(sql)


# --- fp02: BP073, the write runs inside an IF EXISTS that finds the row in the caller's organisations -------------

_HELD = ("exists (select 1 from public.projects p join public.organization_members m\n"
         "      on m.organization_id = p.organization_id\n"
         "      where p.id = p_id and m.user_id = (select auth.uid()) and m.role >= 'admin')")


@pytest.mark.parametrize("body", [
    f"  if {_HELD} then\n    delete from public.projects where id = p_id;\n  end if;",
    f"  if {_HELD} then\n    update public.projects set name = 'archived' where id = p_id;\n"
    "    delete from public.projects where id = p_id;\n  end if;",
    f"  if {_HELD} and p_id is not null then\n    delete from public.projects where id = p_id;\n  end if;",
    "  if exists (select 1 from public.projects p where p.id = p_id\n"
    f"      and p.organization_id = any (array(select {_ADMIN}))) then\n"
    "    delete from public.projects where id = p_id;\n  else\n    raise exception 'not allowed';\n  end if;",
])
def test_fp02_write_inside_if_exists_held_is_clean(body):
    assert "BP073" not in _rules(_definer(body))


@pytest.mark.parametrize("body", [
    # the write after the IF runs whatever the test found
    f"  if {_HELD} then\n    update public.projects set name = 'archived' where id = p_id;\n  end if;\n"
    "  delete from public.projects where id = p_id;",
    # the write in the ELSE runs where the row is not the caller's
    f"  if {_HELD} then\n    return;\n  else\n    delete from public.projects where id = p_id;\n  end if;",
    f"  if not {_HELD} then\n    delete from public.projects where id = p_id;\n  end if;",
    f"  if {_HELD} or p_id is not null then\n    delete from public.projects where id = p_id;\n  end if;",
    # the EXISTS tests some project of the caller's, not the one deleted
    "  if exists (select 1 from public.organization_members m where m.user_id = (select auth.uid())\n"
    "      and m.role >= 'admin') then\n    delete from public.projects where id = p_id;\n  end if;",
])
def test_fp02_write_outside_the_held_branch_still_fires(body):
    assert "BP073" in _rules(_definer(body))


# --- fp02b: BP073, the refusal's membership test reads the picked row's organisation through a scalar sub-query ---

def _refusal(org: str, user: str = "m.user_id = (select auth.uid())") -> str:
    return ("  if not exists (select 1 from public.organization_members m\n"
            f"      where m.organization_id = {org}\n"
            f"        and {user} and m.role >= 'admin') then\n"
            "    raise exception 'only admins delete projects';\n  end if;\n"
            "  delete from public.projects where id = p_id;")


@pytest.mark.parametrize("body", [
    _refusal("(select organization_id from public.projects where id = p_id)"),
    _refusal("(select p.organization_id from public.projects p where p.id = p_id)"),
    _refusal("(select organization_id from public.projects where id = p_id)", "user_id = (select auth.uid())"),
    _refusal("(select p.organization_id from public.projects p where p.id = p_id)").replace(
        "  if not exists", "  if exists").replace(
        "then\n    raise exception 'only admins delete projects';\n  end if;\n"
        "  delete from public.projects where id = p_id;",
        "then\n    delete from public.projects where id = p_id;\n  end if;"),
])
def test_fp02b_organisation_of_the_picked_row_by_scalar_sub_query_is_clean(body):
    assert "BP073" not in _rules(_definer(body))


def test_fp02b_bare_names_on_both_sides_are_clean():
    body = _refusal("(select organization_id from public.projects where id = p_id)", "user_id = (select auth.uid())")
    body = body.replace("public.organization_members m", "public.organization_members").replace("m.", "")
    assert "organization_members\n      where organization_id = (select organization_id" in body
    assert "BP073" not in _rules(_definer(body))
    assert "BP073" in _rules(_definer(body.replace("where id = p_id)", "where name = 'x' limit 1)")))


@pytest.mark.parametrize("body", [
    # the sub-query picks a project by its name, not by a key: another may share it
    _refusal("(select organization_id from public.projects where name = 'x' and id <> p_id limit 1)"),
    # any project of the caller's organisations' checks the caller, not the one deleted
    _refusal("(select organization_id from public.projects limit 1)"),
    # the membership row is not the caller's
    _refusal("(select organization_id from public.projects where id = p_id)", "m.user_id is not null"),
])
def test_fp02b_scalar_sub_query_not_about_the_picked_row_still_fires(body):
    assert _rules(_definer(body)) & {"BP073", "BP057", "BP068"}


def test_e03_role_the_tables_own_policy_admits_is_the_policys_finding():
    body = f"  delete from public.projects where id = p_id and organization_id = any (array(select {_VIEWER}));"
    policy = f"""
create policy projects_delete on public.projects for delete to authenticated
  using (organization_id = any (array(select {_VIEWER})));
"""

    def by_function(sql: str) -> list:
        return [f for f in _findings(sql) if f.rule_id == "BP059" and f.object == "public.remove_project"]
    assert by_function(_definer(body) + policy) == []
    assert by_function(_definer(body) + policy.replace("delete to", "update to"))


@pytest.mark.parametrize("body", [
    # the viewer's organisations AND the member's: members (the generator's restore functions)
    f"  update public.projects set notes = null where id = p_id\n"
    f"    and (organization_id = any (array(select {_VIEWER})) and organization_id = any (array(select\n"
    "      private.organization_ids_with_role('member'))));",
    # a rank asked of someone else (the inviter of an invitation), not of the caller
    _ORG_OF + "  if not exists (select 1 from public.organization_members m where m.organization_id = v_org\n"
              "      and m.user_id = p_id and m.role >= 'viewer') then raise exception 'no'; end if;\n"
              f"  delete from public.projects where id = p_id and organization_id = any (array(select {_ADMIN}));",
])
def test_e03_viewer_narrowed_or_asked_of_someone_else_is_clean(body):
    assert "BP059" not in _rules(_definer(body))


def test_e03_viewer_or_member_still_fires():
    body = (f"  update public.projects set notes = null where id = p_id\n"
            f"    and (organization_id = any (array(select {_VIEWER})) or organization_id = any (array(select\n"
            "      private.organization_ids_with_role('member'))));")
    assert "BP059" in _rules(_definer(body))


# --- e04: BP084, the caller's rank asked by an EXISTS on the membership table before ownership is handed over -----

def _transfer(check: str, alias: str = "") -> str:
    m = f"{alias}." if alias else ""
    return f"""
create function public.transfer_ownership(p_org uuid, p_new_owner uuid) returns void
language plpgsql security definer set search_path = '' as $$
begin
  if not exists (select 1 from public.organization_members {alias}
                 where {m}organization_id = p_org and {m}user_id = (select auth.uid()) and {check.format(m=m)}) then
    raise exception 'only managers hand the organisation over';
  end if;
  update public.organization_members set role = 'owner' where organization_id = p_org and user_id = p_new_owner;
  update public.organization_members set role = 'admin'
   where organization_id = p_org and user_id = (select auth.uid()) and role = 'owner';
end $$;
revoke all on function public.transfer_ownership(uuid, uuid) from public, anon;
grant execute on function public.transfer_ownership(uuid, uuid) to authenticated;
"""


@pytest.mark.parametrize("check, alias", [
    ("{m}role >= 'admin'", ""),
    ("{m}role >= 'admin'", "m"),
    ("{m}role in ('admin', 'owner')", ""),
    ("{m}role = any (array['admin', 'owner']::public.member_role[])", "m"),
    ("'member' < {m}role", "m"),
])
def test_e04_admin_check_by_exists_before_owner_write_fires(check, alias):
    assert "BP084" in _rules(_transfer(check, alias))


@pytest.mark.parametrize("check, alias", [
    ("{m}role = 'owner'", ""),
    ("{m}role >= 'owner'", "m"),
    ("{m}role in ('owner')", "m"),
])
def test_e04_owner_check_by_exists_is_clean(check, alias):
    assert "BP084" not in _rules(_transfer(check, alias))


@pytest.mark.parametrize("check", [
    # an OR in the test: not read as one rank (left unread, as before)
    "{m}role >= 'admin' or {m}role = 'owner'",
])
def test_e04_exists_not_read_as_the_callers_rank_stays_unread(check):
    assert "BP084" not in _rules(_transfer(check))


def test_e03_viewer_leaving_is_clean_and_removing_others_fires():
    leave = """
create function public.leave(p_org uuid) returns void
language plpgsql security definer set search_path = '' as $$
begin
  if not p_org = any (array(select private.organization_ids_with_role('viewer'))) then raise exception 'no'; end if;
  delete from public.organization_members where organization_id = p_org and user_id = (select auth.uid());
end $$;
revoke all on function public.leave(uuid) from public, anon;
grant execute on function public.leave(uuid) to authenticated;
"""
    assert "BP059" not in _rules(leave)
    remove = leave.replace("(uuid)", "(uuid, uuid)").replace("(p_org uuid)", "(p_org uuid, p_user uuid)")
    assert "BP059" in _rules(remove.replace("user_id = (select auth.uid())", "user_id = p_user"))
