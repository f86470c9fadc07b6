"""The organisations every audit test world starts from: organisations, memberships with a ranked role, and the
caller's organisations by role through a definer helper, each table under RLS with a membership policy (evasion
round 16's tests share it)."""

ORGS = """
create schema if not exists private;
create type public.member_role as enum ('viewer', 'member', 'admin', 'owner');
create table public.organizations (id uuid primary key default gen_random_uuid(), name text not null);
alter table public.organizations enable row level security;
create table public.organization_members (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role public.member_role not null default 'member',
  primary key (organization_id, user_id)
);
create index on public.organization_members (user_id);
alter table public.organization_members enable row level security;
create function private.organization_ids_with_role(min_role public.member_role) returns setof uuid
language sql stable security definer set search_path = '' as $$
  select m.organization_id from public.organization_members m
  where m.user_id = (select auth.uid()) and m.role >= min_role $$;
revoke all on function private.organization_ids_with_role(public.member_role) from public, anon;
grant usage on schema private to authenticated;
grant execute on function private.organization_ids_with_role(public.member_role) to authenticated;
create policy members_select on public.organization_members for select to authenticated
  using (organization_id = any (array(select private.organization_ids_with_role('viewer'))));
create policy orgs_select on public.organizations for select to authenticated
  using (id = any (array(select private.organization_ids_with_role('viewer'))));
"""

# Projects of an organisation its members read.
PROJECTS = """
create table public.projects (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  name text not null,
  notes text,
  unique (organization_id, id)
);
create index on public.projects (organization_id);
alter table public.projects enable row level security;
create policy projects_select on public.projects for select to authenticated
  using (organization_id = any (array(select private.organization_ids_with_role('viewer'))));
"""


def invitations(schema: str = "private", by: str = "token") -> str:
    """Invitations read by admins, and `<schema>.accept_invitation(p_<by>)`, which copies the role of the invitation
    addressed to the caller's e-mail (found by its token or its id) into a membership: what BP087 and BP073 read."""
    token = ",\n  token uuid not null default gen_random_uuid() unique" if by == "token" else ""
    arg = "p_token" if by == "token" else "p_invitation"
    column = "token" if by == "token" else "id"
    return f"""
create table public.invitations (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  email text not null,
  role public.member_role not null default 'member'{token}
);
create index on public.invitations (organization_id);
alter table public.invitations enable row level security;
create policy invitations_select on public.invitations for select to authenticated
  using (organization_id = any (array(select private.organization_ids_with_role('admin'))));
create function {schema}.accept_invitation({arg} uuid) returns uuid
language plpgsql security definer set search_path = '' as $$
declare inv public.invitations;
begin
  select * into inv from public.invitations i
   where i.{column} = {arg} and lower(i.email) = lower((select auth.jwt()) ->> 'email') for update;
  if not found then raise exception 'invalid invitation' using errcode = 'P0002'; end if;
  insert into public.organization_members (organization_id, user_id, role)
  values (inv.organization_id, (select auth.uid()), inv.role) on conflict (organization_id, user_id) do nothing;
  delete from public.invitations where id = inv.id;
  return inv.organization_id;
end $$;
revoke all on function {schema}.accept_invitation(uuid) from public, anon;
grant execute on function {schema}.accept_invitation(uuid) to authenticated;
"""


def documents(extra: str = "") -> str:
    """Documents their organisation's members read; `extra` follows the membership test in the select policy (the
    test under audit, e.g. " or <a token test>")."""
    return f"""
create table public.documents (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  body text
);
create index on public.documents (organization_id);
alter table public.documents enable row level security;
grant select on public.documents to authenticated;
create policy documents_select on public.documents for select to authenticated
  using (organization_id = any (array(select private.organization_ids_with_role('viewer'))){extra});
"""


def errors_fired(sql: str) -> set[str]:
    """The rules reporting an ERROR on the organisations world followed by `sql`."""
    from blueprint_mcp.audit import audit_sql
    from blueprint_mcp.audit.findings import Level

    return {f.rule_id for f in audit_sql([("case.sql", ORGS + sql)]) if f.level is Level.ERROR}


# Two tables read by their owner, no organisation: what a loop enabling row level security over tables reaches
# (rounds 21 and 22); each left without RLS is reported twice.
OWNED_TABLES = """
create table public.notes (id uuid primary key default gen_random_uuid(),
  owner_id uuid not null references auth.users (id) on delete cascade, body text);
create index on public.notes (owner_id);
create table public.documents (id uuid primary key default gen_random_uuid(),
  owner_id uuid not null references auth.users (id) on delete cascade, body text);
create index on public.documents (owner_id);
create policy notes_own on public.notes for select to authenticated using (owner_id = (select auth.uid()));
create policy documents_own on public.documents for select to authenticated using (owner_id = (select auth.uid()));
"""
NOTES_OPEN = {("BP003", "public.notes"), ("BP017", "public.notes")}
DOCUMENTS_OPEN = {("BP003", "public.documents"), ("BP017", "public.documents")}

UID = "(select auth.uid())::text"  # the caller's id as a storage folder name


def uploads(test: str) -> str:
    """A private bucket read by the first folder, and an upload policy testing `test` (rounds 21 to 23)."""
    return f"""
insert into storage.buckets (id, name, public) values ('documents', 'documents', false);
create policy docs_read on storage.objects for select to authenticated
  using (bucket_id = 'documents' and (storage.foldername(name))[1] = {UID});
create policy docs_upload on storage.objects for insert to authenticated
  with check (bucket_id = 'documents' and {test});
"""
