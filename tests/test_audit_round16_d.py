"""Evasion round 16, items e06, e06b, e07, e08, e16, fp03, fp03c, fp05 and fp07: each hole fires its rule and its
fix does not; each safe idiom stays clean of the rule that wrongly fired."""

from __future__ import annotations

import pytest

from blueprint_mcp.audit import audit_sql
from blueprint_mcp.audit.findings import Level

from audit_world import ORGS, PROJECTS

# The world of the round: organisations, memberships with a ranked role, the caller's organisations by role.
PRELUDE = ORGS + PROJECTS


def _fired(sql: str) -> set[str]:
    """The rules reporting an ERROR or a WARN on the prelude followed by `sql`."""
    return {f.rule_id for f in audit_sql([("case.sql", PRELUDE + sql)]) if f.level in (Level.ERROR, Level.WARN)}


# --- e06 / e06b: user_metadata read one helper further away, or through a variable (BP052) ---------------------

_ADMIN_DELETE = """
create policy projects_delete on public.projects for delete to authenticated
  using (organization_id = any (array(select private.organization_ids_with_role('member')))
         and (select private.is_admin()));
"""


def test_e06_user_metadata_read_by_a_helper_of_a_helper_is_trusted_by_the_policy():
    sql = """
create function private.profile_claims() returns jsonb language sql stable set search_path = '' as $$
  select coalesce(auth.jwt() -> 'user_metadata', '{}'::jsonb) $$;
create function private.is_admin() returns boolean language sql stable set search_path = '' as $$
  select coalesce(private.profile_claims() ->> 'role', '') = 'admin' $$;
grant execute on function private.profile_claims(), private.is_admin() to authenticated;
""" + _ADMIN_DELETE
    assert _fired(sql) == {"BP052"}
    fixed = """
create policy projects_delete on public.projects for delete to authenticated
  using (organization_id = any (array(select private.organization_ids_with_role('admin'))));
"""
    assert _fired(fixed) == set()


def test_e06_helpers_calling_each_other_are_read_to_an_end():
    sql = """
create function private.is_admin() returns boolean language sql stable set search_path = '' as $$
  select private.is_owner() $$;
create function private.is_owner() returns boolean language sql stable set search_path = '' as $$
  select private.is_admin() $$;
""" + _ADMIN_DELETE
    assert "BP052" not in _fired(sql)


@pytest.mark.parametrize("declare, assign", [
    ("claims jsonb := auth.jwt();", ""),
    ("claims jsonb := current_setting('request.jwt.claims', true)::jsonb;", ""),
    ("claims jsonb; meta jsonb;", "claims := (select auth.jwt()); meta := claims -> 'user_metadata';"),
])
def test_e06b_user_metadata_read_through_a_variable_holding_the_claims(declare, assign):
    sql = f"""
create function private.is_admin() returns boolean language plpgsql stable set search_path = '' as $$
declare
  {declare}
begin
  {assign}
  return coalesce(claims -> 'user_metadata' ->> 'role', '') = 'admin';
end $$;
grant execute on function private.is_admin() to authenticated;
""" + _ADMIN_DELETE
    assert _fired(sql) == {"BP052"}
    app = sql.replace("'user_metadata'", "'app_metadata'")
    assert _fired(app) == set()


# --- e16: a test every signed-in caller passes, OR-ed beside the membership check (BP079) -----------------------

_DOCUMENTS = """
create table public.documents (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  title text not null
);
create index on public.documents (organization_id);
alter table public.documents enable row level security;
"""
_MEMBER = "organization_id = any (array(select private.organization_ids_with_role('viewer')))"


@pytest.mark.parametrize("branch", [
    "coalesce((select auth.jwt()) ->> 'aud', '') = 'authenticated'",
    "(select auth.jwt()) ->> 'sub' is not null",
    "(select auth.email()) is not null",
    "exists (select 1 from auth.users u where u.id = (select auth.uid()))",
    "(select auth.jwt()) ->> 'aal' in ('aal1', 'aal2')",
])
def test_e16_signed_in_test_beside_the_membership_check_admits_everyone(branch):
    sql = _DOCUMENTS + f"""
create policy documents_select on public.documents for select to authenticated
  using ({_MEMBER} or {branch});
"""
    assert _fired(sql) == {"BP079"}
    fixed = _DOCUMENTS + f"""
create policy documents_select on public.documents for select to authenticated using ({_MEMBER});
"""
    assert _fired(fixed) == set()


@pytest.mark.parametrize("branch", [
    "(select auth.jwt()) ->> 'aal' = 'aal2'",  # a step-up requirement, not every caller
    "exists (select 1 from auth.users u where u.id = (select auth.uid()) and u.email like '%@staff.example')",
])
def test_e16_a_test_some_signed_in_callers_fail_is_no_every_caller_test(branch):
    sql = _DOCUMENTS + f"""
create policy documents_select on public.documents for select to authenticated
  using ({_MEMBER} or {branch});
"""
    assert "BP079" not in _fired(sql)


def test_e16_role_claim_with_an_empty_fallback_in_a_helper():
    sql = _DOCUMENTS + """
create function private.can_read(p_org uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select p_org = any (array(select private.organization_ids_with_role('viewer')))
      or coalesce((select auth.jwt()) ->> 'role', '') = 'authenticated' $$;
revoke all on function private.can_read(uuid) from public, anon;
grant execute on function private.can_read(uuid) to authenticated;
create policy documents_select on public.documents for select to authenticated
  using ((select private.can_read(organization_id)));
"""
    assert _fired(sql) == {"BP079"}


# --- e07: a share link's lookup ignores what the link allows (BP057) --------------------------------------------

_LINKS = """
create table public.documents (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  body text not null default '',
  unique (organization_id, id)
);
create index on public.documents (organization_id);
alter table public.documents enable row level security;
create policy documents_select on public.documents for select to authenticated
  using (organization_id = any (array(select private.organization_ids_with_role('viewer'))));
create table public.share_links (
  token text primary key default encode(extensions.gen_random_bytes(18), 'hex'),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  document_id uuid not null,
  can_edit boolean not null default false,
  uses integer not null default 0,
  foreign key (organization_id, document_id) references public.documents (organization_id, id) on delete cascade
);
create index on public.share_links (organization_id, document_id);
alter table public.share_links enable row level security;
create function public.save_shared_document(p_token text, p_document uuid, p_body text) returns void
language plpgsql security definer set search_path = '' as $$
declare
  v_link public.share_links;
begin
  select * into v_link from public.share_links l where l.token = p_token{lookup};
  if not found{test} then
    raise exception 'invalid or read-only link' using errcode = '42501';
  end if;
  update public.documents set body = p_body where id = p_document and id = v_link.document_id;
end $$;
revoke all on function public.save_shared_document(text, uuid, text) from public;
grant execute on function public.save_shared_document(text, uuid, text) to anon, authenticated;
"""


def _links(lookup: str = "", test: str = "") -> set[str]:
    return {f.rule_id for f in audit_sql([("case.sql", PRELUDE + _LINKS.format(lookup=lookup, test=test))])
            if f.level is Level.ERROR}


def test_e07_view_only_link_saves_a_document():
    assert _links() == {"BP057"}


@pytest.mark.parametrize("lookup, test", [
    (" and l.can_edit", ""),
    ("", " or not v_link.can_edit"),
])
def test_e07_edit_link_tested_saves_cleanly(lookup, test):
    assert _links(lookup, test) == set()


def test_e07_a_links_own_use_counter_needs_no_edit_right():
    sql = _LINKS.format(lookup="", test="").replace(
        "update public.documents set body = p_body where id = p_document and id = v_link.document_id;",
        "update public.share_links set uses = uses + 1 where token = v_link.token;")
    assert "BP057" not in _fired(sql)


# --- e08: the row's own organisation compared with itself (BP073) -----------------------------------------------

_DUPLICATE = """
create function private.project_org(p_project uuid) returns uuid
language sql stable set search_path = '' as $$
  select organization_id from public.projects where id = p_project $$;
create function public.duplicate_project(p_org uuid, p_project uuid) returns uuid
language plpgsql security definer set search_path = '' as $$
declare
  v_src public.projects;
  v_new uuid;
begin
  if not p_org = any (array(select private.organization_ids_with_role('member'))) then
    raise exception 'members only' using errcode = '42501';
  end if;
  select * into v_src from public.projects where id = p_project and {test};
  if not found then
    raise exception 'no such project' using errcode = 'P0002';
  end if;
  insert into public.projects (organization_id, name, notes)
  values (p_org, v_src.name || ' (copy)', v_src.notes) returning id into v_new;
  return v_new;
end $$;
revoke all on function public.duplicate_project(uuid, uuid) from public, anon;
grant execute on function public.duplicate_project(uuid, uuid) to authenticated;
"""


@pytest.mark.parametrize("test", [
    "organization_id = private.project_org(p_project)",
    "organization_id = (select p.organization_id from public.projects p where p.id = p_project)",
    "organization_id in (select private.project_org(p_project))",
])
def test_e08_the_rows_own_organisation_is_no_organisation_test(test):
    assert "BP073" in _fired(_DUPLICATE.format(test=test))


@pytest.mark.parametrize("test", [
    "organization_id = any (array(select private.organization_ids_with_role('viewer')))",
    "organization_id in (select m.organization_id from public.organization_members m "
    "where m.user_id = (select auth.uid()))",
])
def test_e08_a_test_against_the_callers_organisations_stays_clean(test):
    assert "BP073" not in _fired(_DUPLICATE.format(test=test))


# --- fp03 / fp03c: refusing unless the picked row is in an organisation of the caller's (BP073) ------------------

_RENAME = """
create function private.has_role(p_org uuid, p_role public.member_role) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (select 1 from public.organization_members m
                  where m.organization_id = p_org and m.user_id = (select auth.uid()) and m.role >= p_role) $$;
revoke all on function private.has_role(uuid, public.member_role) from public, anon;
grant execute on function private.has_role(uuid, public.member_role) to authenticated;
create function public.rename_project(p_project uuid, p_name text) returns void
language plpgsql security definer set search_path = '' as $$
declare
  v_role public.member_role;
begin
  {check}
  update public.projects set name = p_name where {pick} = p_project;
end $$;
revoke all on function public.rename_project(uuid, text) from public, anon;
grant execute on function public.rename_project(uuid, text) to authenticated;
"""
_ADMIN_ORGS = "organization_id = any (array(select private.organization_ids_with_role('admin')))"
_JOINED = ("select m.role into v_role from public.projects p join public.organization_members m "
           "on m.organization_id = p.organization_id and m.user_id = (select auth.uid()) where p.id = p_project;")


def _rename(check: str, pick: str = "id") -> set[str]:
    return {f.rule_id for f in audit_sql([("case.sql", PRELUDE + _RENAME.format(check=check, pick=pick))])
            if f.level is Level.ERROR}


@pytest.mark.parametrize("check", [
    f"if not exists (select 1 from public.projects where id = p_project and {_ADMIN_ORGS}) then "
    "raise exception 'not allowed' using errcode = '42501'; end if;",
    "perform 1 from public.projects p where p.id = p_project and private.has_role(p.organization_id, 'admin'); "
    "if not found then raise exception 'not allowed' using errcode = '42501'; end if;",
    _JOINED + " if v_role is null or v_role < 'admin' then raise exception 'not allowed'; end if;",
])
def test_fp03_refusal_unless_the_row_is_the_callers_is_an_organisation_test(check):
    assert "BP073" not in _rename(check)


@pytest.mark.parametrize("check, pick", [
    # the refusal the wrong way round
    (f"if exists (select 1 from public.projects where id = p_project and {_ADMIN_ORGS}) then "
     "raise exception 'not allowed'; end if;", "id"),
    # no test of the organisation
    ("if not exists (select 1 from public.projects where id = p_project) then raise exception 'no'; end if;", "id"),
    # no refusal when the caller holds no membership there (v_role is NULL): BP080's hole, BP073 stays
    (_JOINED + " if v_role < 'admin' then raise exception 'not allowed'; end if;", "id"),
    # the refusal swallowed by its own handler
    (f"begin if not exists (select 1 from public.projects where id = p_project and {_ADMIN_ORGS}) then "
     "raise exception 'not allowed'; end if; exception when others then null; end;", "id"),
])
def test_fp03_twins_that_check_nothing_still_fire(check, pick):
    # BP057 takes a body that never asks who calls; BP073 one that asks, but not of the row
    assert _rename(check, pick) & {"BP057", "BP073"}


def test_fp03_a_pick_by_a_column_that_is_no_key_is_not_checked_by_one_row():
    check = (f"if not exists (select 1 from public.projects where name = p_name and {_ADMIN_ORGS}) then "
             "raise exception 'not allowed'; end if;")
    sql = _RENAME.format(check=check, pick="name").replace("where name = p_project", "where name = p_name")
    assert "BP073" in {f.rule_id for f in audit_sql([("case.sql", PRELUDE + sql)])}


# --- fp07: an invitation picked by its id and the caller's e-mail (BP073) ----------------------------------------

_ACCEPT = """
create table public.invitations (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  email text not null,
  role public.member_role not null default 'member',
  created_at timestamptz not null default now()
);
create index on public.invitations (organization_id);
alter table public.invitations enable row level security;
create policy invitations_select on public.invitations for select to authenticated
  using (organization_id = any (array(select private.organization_ids_with_role('admin'))));
create function public.accept_invitation(p_invitation uuid) returns uuid
language plpgsql security definer set search_path = '' as $$
declare inv public.invitations;
begin
  select * into inv from public.invitations i where i.id = p_invitation{pin} for update;
  if not found then raise exception 'invalid invitation' using errcode = 'P0002'; end if;
  insert into public.organization_members (organization_id, user_id, role)
  values (inv.organization_id, (select auth.uid()), inv.role) on conflict (organization_id, user_id) do nothing;
  delete from public.invitations where id = inv.id;
  return inv.organization_id;
end $$;
revoke all on function public.accept_invitation(uuid) from public, anon;
grant execute on function public.accept_invitation(uuid) to authenticated;
"""


def test_fp07_invitation_by_id_and_the_callers_email_is_addressed_to_the_caller():
    pin = " and lower(i.email) = lower((select auth.jwt()) ->> 'email')"
    assert "BP073" not in _fired(_ACCEPT.format(pin=pin))


def test_fp07_invitation_by_id_alone_is_any_organisations():
    assert "BP073" in _fired(_ACCEPT.format(pin=""))


# --- fp05: a boolean helper built on the role helper checks membership (BP027) -----------------------------------

_CAN_READ = _DOCUMENTS + """
create function private.can_read(p_org uuid) returns boolean
language sql stable security definer set search_path = '' as $$ select {body} $$;
revoke all on function private.can_read(uuid) from public, anon;
grant execute on function private.can_read(uuid) to authenticated;
create policy documents_select on public.documents for select to authenticated
  using ((select private.can_read(organization_id)));
"""


def test_fp05_helper_over_the_role_helper_checks_membership():
    body = "p_org = any (array(select private.organization_ids_with_role('viewer')))"
    assert _fired(_CAN_READ.format(body=body)) == set()


@pytest.mark.parametrize("body, rules", [
    ("p_org is not null", {"BP027"}),  # asks nothing of the memberships
    ("p_org = any (array(select private.organization_ids_with_role('viewer'))) "
     "or auth.role() = 'authenticated'", {"BP079"}),  # BP079's own example
])
def test_fp05_twins_still_fire(body, rules):
    assert _fired(_CAN_READ.format(body=body)) == rules


def test_e07_a_test_of_the_flag_that_only_logs_decides_nothing():
    sql = _LINKS.format(lookup="", test="").replace(
        "  update public.documents",
        "  if not v_link.can_edit then raise notice 'read-only link used to save'; end if;\n  update public.documents")
    assert "BP057" in _fired(sql)


def test_e08_a_variable_holding_the_rows_own_organisation_is_no_test():
    sql = _DUPLICATE.replace("declare\n", "declare\n  v_org uuid := private.project_org(p_project);\n")
    assert "BP073" in _fired(sql.format(test="organization_id = v_org"))


@pytest.mark.parametrize("setting", [
    # the variable checked against the caller's organisations first
    "select p.organization_id into v_org from public.projects p where p.id = p_project;\n"
    "  if not v_org = any (array(select private.organization_ids_with_role('viewer'))) then raise exception 'no';"
    " end if;",
    # the variable is one of the caller's own organisations
    "select m.organization_id into v_org from public.organization_members m where m.user_id = (select auth.uid())"
    " limit 1;",
])
def test_e08_a_variable_the_caller_decides_is_a_test(setting):
    sql = _DUPLICATE.replace("declare\n", "declare\n  v_org uuid;\n").replace("begin\n", f"begin\n  {setting}\n", 1)
    assert "BP073" not in _fired(sql.format(test="organization_id = v_org"))
