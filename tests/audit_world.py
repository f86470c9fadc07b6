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
