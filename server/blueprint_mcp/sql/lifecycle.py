"""The backend across time: accounts deleted, ownership moved, invitations issued and accepted, the audit
log kept append-only and trimmed. Functions the API calls (public, definer, `search_path = pg_catalog, pg_temp`) and the
triggers that keep the rules when anything else writes. docs/lifecycle.md states what each guarantees.
"""

from __future__ import annotations

from textwrap import indent

from ..model import Blueprint, Capability, Entity, Scope
from ..model.blueprint import ROLE_TYPE
from ..model.entities import Transition
from ..model.meaning import command_grants, least_role, restore_grants, ungrantable
from ..model.names import verb_name
from ..model.tenant_keys import READ_ONLY_ROLE_NAMES
from ..model.schema import Command, Function, Trigger
from .access import any_of, command_pred
from .columns import ORG
from .ident import ident, literal, object_name
from .predicates import Pred
from .tables import INVITATION_DAYS

ROLE = f"public.{ROLE_TYPE}"
# On auth.users, the platform's table: prefixed so they never meet a quickstart's on_auth_user_created.
SIGNUP_TRIGGER = "blueprint_on_auth_user_created"
DELETION_TRIGGER = "blueprint_before_auth_user_deleted"
ADDRESS_TRIGGER = "blueprint_on_auth_user_email_changed"


def _manager(bp: Blueprint) -> str:
    return literal(least_role(bp, Capability.manage_members))


def _withheld(bp: Blueprint, granter: str, role: str) -> str | None:
    """SQL true when a manager holding the role `granter` (an expression) may not give the role `role` although it
    ranks no higher, because it holds rights the granter lacks (docs/lifecycle.md L07); None when the design has
    no such pair. Never null for a non-null `role`."""
    pairs = ungrantable(bp)
    if not pairs:
        return None
    arms = " ".join(f"when {literal(g)} then array[{', '.join(literal(r) for r in roles)}]::{ROLE}[]"
                    for g, roles in pairs.items())
    return f"{role} = any (case {granter} {arms} else '{{}}'::{ROLE}[] end)"


def _withheld_check(bp: Blueprint, granter: str, role: str, message: str) -> str:
    """The PL/pgSQL block refusing a role the granter may not give (`_withheld`), or nothing."""
    test = _withheld(bp, granter, role)
    if test is None:
        return ""
    return f"""
  -- Only roles whose every right the caller holds: an app-defined capability or an exact-role grant may give a
  -- lower role what this one lacks, and a second account of the caller's would then hold it.
  if {test} then
    raise exception using errcode = '42501', message = {literal(message)},
      hint = {literal(f"Ask a member with the {bp.tenancy.owner_role.name} role.")};
  end if;"""


def _and_not(bp: Blueprint, granter: str, role: str) -> str:
    test = _withheld(bp, granter, role)
    return f" and not {test}" if test else ""


def _or(bp: Blueprint, granter: str, role: str) -> str:
    test = _withheld(bp, granter, role)
    return f" or {test}" if test else ""


def _but_withheld(bp: Blueprint) -> str:
    """The comments' words for `ungrantable`: "" when every role holds what the roles below it hold."""
    pairs = "; ".join(f"{g}: never {' or '.join(roles)}" for g, roles in ungrantable(bp).items())
    return f" and only to a role whose every right they hold ({pairs})" if pairs else ""


def _trigger_fn(name: str, body: str, comment: str) -> Function:
    return Function(schema_name="private", name=name, returns="trigger", language="plpgsql",
                    security_definer=True, body=body, comment=comment)


def _rpc(name: str, args: str, arg_types: str, returns: str, body: str, comment: str,
         roles: list[str] | None = None, schema: str = "private") -> Function:
    return Function(schema_name=schema, name=name, args=args, arg_types=arg_types, returns=returns,
                    language="plpgsql", security_definer=True, body=body, comment=comment,
                    execute_roles=roles if roles is not None else ["authenticated", "service_role"],
                    migration="triggers")


# --- accounts and ownership ------------------------------------------------------------------------------

# An auth.users trigger's statement: the pending invitations to the row's old address from the user's organisations.
_REVOKE_OLD_ADDRESS = """
  delete from public.invitations i
   where i.accepted_at is null and i.email = lower(old.email)
     and i.organization_id in (select m.organization_id from public.organization_members m where m.user_id = old.id);"""


def before_user_deleted(invitations: bool = False, audit_log: bool = False) -> Function:
    # Memberships go with the account by cascade, once auth.users has lost the row: the address is read here.
    revoke = """
  -- Invitations to this address from teams the user belonged to go too: signing up again with it would
  -- otherwise bring them back through an invitation sent before (docs/lifecycle.md L11).""" + _REVOKE_OLD_ADDRESS \
        + """
  -- The invitations the user accepted hold their address, which their organisations' managers read: it goes
  -- with the account (L01).
  delete from public.invitations i where i.accepted_by = old.id;""" if invitations else ""
    gone = """
  -- The personal workspace and teams nobody else belongs to go with the account. Rows the user wrote
  -- elsewhere stay (their author column becomes null).
  delete from public.organizations o where o.owner_user_id = old.id;""" if not audit_log else """
  -- The personal workspace and teams nobody else belongs to go with the account. Rows the user wrote
  -- elsewhere stay (their author column becomes null).
  with gone as (delete from public.organizations o where o.owner_user_id = old.id returning o.id, o.is_personal)
  select string_agg(gone.id::text, ',') filter (where gone.is_personal) into erased from gone;
  -- A personal workspace's audit entries are that one person's history (red team 26: a year of a deleted user's
  -- workspace, habit names included, stayed for the service role to read): they go too (L01). A team keeps its log,
  -- deleted on its own or with its last member (red team 27: an owner who removed everyone else, then left, took
  -- the admins' entries with them).
  if erased is not null then
    perform set_config('blueprint.erasing_organizations', erased, true);
    delete from public.audit_logs a where a.organization_id = any (string_to_array(erased, ',')::uuid[]);
    perform set_config('blueprint.erasing_organizations', '', true);
  end if;"""
    return _trigger_fn("before_user_deleted", """declare
  blocking text;""" + ("""
  erased text;""" if audit_log else "") + """
begin
  select string_agg(o.slug, ', ' order by o.slug) into blocking
    from public.organizations o
   where o.owner_user_id = old.id and not o.is_personal
     and exists (select 1 from public.organization_members m
                  where m.organization_id = o.id and m.user_id <> old.id);
  if blocking is not null then
    raise exception using
      errcode = '23503',
      message = format('this account is the primary owner of organisations with other members: %s', blocking),
      hint = 'Transfer ownership first: select public.transfer_ownership(organization_id, new_owner_id).';
  end if;""" + revoke + gone + """
  return old;
end""", "Account deletion: refused while the user is the primary owner of a team with other members; "
        "otherwise removes the organisations only they belong to" + (
            ", and their personal workspace's audit entries." if audit_log else "."))


def revoke_invitations_to_old_address() -> Function:
    return _trigger_fn("revoke_invitations_to_old_address", """begin
  -- Pending invitations to the address a member leaves, from their organisations, go with it. Removal (and
  -- account deletion) revokes those to the address of that moment: a member who had moved to another address
  -- would otherwise keep one, and come back, or up, through it by taking the old address again (L11).""" \
        + _REVOKE_OLD_ADDRESS + """
  return null;
end""", "A changed account address: the pending invitations to the old one from the user's organisations go.")


def delete_my_account() -> Function:
    return _rpc("delete_my_account", "", "", "void", """declare
  me uuid := (select auth.uid());
begin
  if me is null then
    raise exception using errcode = '42501', message = 'sign in to delete your account';
  end if;
  delete from auth.users where id = me;
end""", "The caller deletes their own account; refused with the organisations to hand over first while they "
        "are the primary owner of a team with other members.")


def transfer_ownership(bp: Blueprint) -> Function:
    owner = literal(bp.tenancy.owner_role.name)
    return _rpc("transfer_ownership", "target_organization_id uuid, new_owner_id uuid", "uuid, uuid", "void", f"""begin
  if not exists (select 1 from public.organizations o
                  where o.id = target_organization_id and o.owner_user_id = (select auth.uid())) then
    raise exception using errcode = '42501', message = 'only the primary owner can transfer ownership';
  end if;
  if not exists (select 1 from public.organization_members m
                  where m.organization_id = target_organization_id and m.user_id = new_owner_id) then
    raise exception using errcode = '23503', message = 'the new owner must be a member of the organisation',
      hint = 'Invite them first (create_invitation), then transfer.';
  end if;
  update public.organization_members set role = {owner}
   where organization_id = target_organization_id and user_id = new_owner_id;
  update public.organizations set owner_user_id = new_owner_id where id = target_organization_id;
end""", "The primary owner hands the organisation to another member, who becomes an owner; the previous "
        "owner keeps their owner membership, which the new primary owner may change or remove.")


# --- invitations ----------------------------------------------------------------------------------------

def create_invitation(bp: Blueprint) -> Function:
    return _rpc(
        "create_invitation", f"target_organization_id uuid, invitee_email text, invitee_role {ROLE}",
        f"uuid, text, {ROLE}", "text", f"""declare
  me uuid := (select auth.uid());
  my_role {ROLE};
  secret text := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
  invitation uuid;
begin
  select m.role into my_role from public.organization_members m
   where m.organization_id = target_organization_id and m.user_id = me;
  if my_role is null or my_role < {_manager(bp)} or invitee_role > my_role then
    raise exception using errcode = '42501',
      message = 'only members who manage members invite, and at most at their own role';
  end if;{_withheld_check(bp, "my_role", "invitee_role", "you invite only to roles whose every right you hold")}
  begin
    insert into public.invitations (organization_id, email, role, invited_by)
    values (target_organization_id, invitee_email, invitee_role, me)
    returning id into invitation;
  exception when unique_violation then
    raise exception using errcode = '23505',
      message = 'this address already has a pending invitation to the organisation',
      hint = 'Revoke it (delete the invitation) to send a new one.';
  end;
  insert into private.invitation_tokens (invitation_id, token_hash)
  values (invitation, sha256(convert_to(secret, 'UTF8')));
  return secret;  -- shown once: only its hash is stored
end""", f"A manager invites an address at most at their own role{_but_withheld(bp)}; returns the secret to send "
        f"(valid {INVITATION_DAYS} days, stored only as a hash).")


def accept_invitation(bp: Blueprint) -> Function:
    return _rpc("accept_invitation", "invitation_token text", "text", "uuid", f"""declare
  me uuid := (select auth.uid());
  invite public.invitations;
  address text;
  confirmed timestamptz;
begin
  if me is null then
    raise exception using errcode = '42501', message = 'sign in to accept an invitation';
  end if;
  select i.* into invite
    from private.invitation_tokens t
    join public.invitations i on i.id = t.invitation_id
   where t.token_hash = sha256(convert_to(coalesce(invitation_token, ''), 'UTF8'))
     for update of i;
  if not found or invite.accepted_at is not null then
    raise exception using errcode = '42501', message = 'this invitation does not exist or was already used';
  end if;
  if invite.expires_at <= now() then
    raise exception using errcode = '42501', message = 'this invitation has expired',
      hint = 'Ask for a new invitation.';
  end if;
  -- Sent before the caller left this organisation, was removed or demoted in it, above what they kept: not a way
  -- back, or up, whatever address it was sent to (L11).
  if exists (select 1 from private.membership_changes c
              where c.organization_id = invite.organization_id and c.user_id = me
                and c.changed_at >= invite.created_at and (c.role is null or invite.role > c.role)) then
    raise exception using errcode = '42501',
      message = 'this invitation was sent before you left this organisation or were demoted in it',
      hint = 'Ask a current manager for a new invitation.';
  end if;
  select u.email, u.email_confirmed_at into address, confirmed from auth.users u where u.id = me;
  if confirmed is null or lower(address) is distinct from invite.email then
    raise exception using errcode = '42501',
      message = 'this invitation was sent to another address, or yours is not confirmed yet';
  end if;
  if not exists (select 1 from public.organization_members m
                  where m.organization_id = invite.organization_id and m.user_id = invite.invited_by
                    and m.role >= invite.role and m.role >= {_manager(bp)}{_and_not(bp, "m.role", "invite.role")}) then
    raise exception using errcode = '42501', message = 'the inviter can no longer invite at this role',
      hint = 'Ask a current manager for a new invitation.';
  end if;
  insert into public.organization_members (organization_id, user_id, role)
  values (invite.organization_id, me, invite.role)
  on conflict (organization_id, user_id)
  do update set role = greatest(public.organization_members.role, excluded.role);
  update public.invitations set accepted_at = now(), accepted_by = me where id = invite.id;
  delete from private.invitation_tokens where invitation_id = invite.id;  -- single use
  return invite.organization_id;
end""", "The signed-in user joins with an invitation's secret: single use, unexpired, sent to their confirmed "
        "address, from an inviter who still holds the rank. Returns the organisation id.")


def change_member_role(bp: Blueprint) -> Function:
    return _rpc(
        "change_member_role", f"target_organization_id uuid, member_user_id uuid, new_role {ROLE}",
        f"uuid, uuid, {ROLE}", "void", f"""declare
  me uuid := (select auth.uid());
  my_role {ROLE};
  their_role {ROLE};
begin
  select m.role into my_role from public.organization_members m
   where m.organization_id = target_organization_id and m.user_id = me;
  if my_role is null or my_role < {_manager(bp)} then
    raise exception using errcode = '42501', message = 'only members who manage members change roles';
  end if;
  if new_role is null then
    raise exception using errcode = '22004', message = 'a membership needs a role';
  end if;
  select m.role into their_role from public.organization_members m
   where m.organization_id = target_organization_id and m.user_id = member_user_id
     for update;
  if their_role is null then
    raise exception using errcode = 'P0002', message = 'this user is not a member of the organisation';
  end if;
  -- Strictly below the caller (so never themselves, a peer or the primary owner), and never above them; the
  -- primary owner also changes a co-owner's (after a handover, the one before keeps an owner membership).
  if member_user_id = me or new_role > my_role or (their_role >= my_role and not exists (
       select 1 from public.organizations o where o.id = target_organization_id and o.owner_user_id = me)) then
    raise exception using errcode = '42501',
      message = 'you change the role of members ranked below you, and at most to your own role';
  end if;{_withheld_check(bp, "my_role", "new_role", "you change members only to roles whose every right you hold")}
  update public.organization_members set role = new_role
   where organization_id = target_organization_id and user_id = member_user_id;
end""", f"A manager changes the role of a member ranked below them (the primary owner: of any other member), at "
        f"most to their own role{_but_withheld(bp)}"
        + ("; a demoted inviter loses the invitations above their new role." if ungrantable(bp) else
           " (a demoted inviter loses the invitations above their new role)."))


def normalize_invitation() -> Function:
    return _trigger_fn("normalize_invitation", f"""begin
  new.email := lower(btrim(new.email));
  new.expires_at := least(coalesce(new.expires_at, now() + interval '{INVITATION_DAYS} days'),
                          now() + interval '{INVITATION_DAYS} days');
  return new;
end""", f"Invitations: addresses lower-cased, expiry set by the server and never beyond {INVITATION_DAYS} days.")


def revoke_inviters_invitations(bp: Blueprint) -> Function:
    return _trigger_fn("revoke_inviters_invitations", f"""begin
  delete from public.invitations i
   where i.organization_id = old.organization_id and i.invited_by = old.user_id and i.accepted_at is null
     and (tg_op = 'DELETE' or i.role > new.role or new.role < {_manager(bp)}{_or(bp, "new.role", "i.role")});
  -- When they left or dropped, and what they kept: accept_invitation() refuses, above that, every invitation
  -- sent before, to whichever address (one of theirs the organisation cannot know). Not when the organisation
  -- or the account itself is going (its rows are gone from this statement's view).
  if (tg_op = 'DELETE' or new.role < old.role)
     and exists (select 1 from public.organizations o where o.id = old.organization_id)
     and exists (select 1 from auth.users u where u.id = old.user_id) then
    insert into private.membership_changes (organization_id, user_id, role)
    values (old.organization_id, old.user_id, case when tg_op = 'UPDATE' then new.role end)
    on conflict (organization_id, user_id)
    do update set role = excluded.role, changed_at = clock_timestamp();
  end if;
  if tg_op = 'DELETE' then
    -- A member removed (or leaving) does not come back through an invitation sent to them before.
    delete from public.invitations i
     where i.organization_id = old.organization_id and i.accepted_at is null
       and i.email = (select lower(u.email) from auth.users u where u.id = old.user_id);
    -- Nor does the organisation keep their address on the invitation they joined by.
    delete from public.invitations i where i.organization_id = old.organization_id and i.accepted_by = old.user_id;
  elsif new.role < old.role then
    -- Nor does a member demoted climb back through one (a promotion offered before): those above the new role go.
    delete from public.invitations i
     where i.organization_id = old.organization_id and i.accepted_at is null and i.role > new.role
       and i.email = (select lower(u.email) from auth.users u where u.id = old.user_id);
  end if;
  return null;
end""", "A member who leaves, or drops below an invitation's role or below managing members"
        + (", or to a role that may not give it" if ungrantable(bp) else "")
        + ", loses their pending invitations; one who leaves or is removed also loses those addressed to them, "
          "and the one they joined by (it holds their address), and one demoted those addressed to them above "
          "their new role.")


# --- soft delete ------------------------------------------------------------------------------------------

ARCHIVE_SUFFIX = "archive_on_delete"  # kept whole however long the table name: verify finds the trigger by it


def archive_on_delete(e: Entity) -> Function:
    return _trigger_fn(object_name(e.name, suffix=ARCHIVE_SUFFIX), f"""begin
  -- A client's own delete archives the row (the delete policy decided it may). The service role, and
  -- deletes cascading from another row (an organisation, an account), remove it for good. An archived
  -- row keeps the time it was archived: deleting it again changes nothing.
  if current_setting('role', true) in ('authenticated', 'anon') and pg_trigger_depth() = 1 then
    update public.{ident(e.name)} set archived_at = now() where id = old.id and archived_at is null;
    return null;
  end if;
  return old;
end""", f"Soft delete of {e.name}: a client's DELETE sets archived_at instead of removing the row.")


def refuse_archived_parent(parent: Entity) -> Function:
    """One per soft-deleted entity that others reference through a column the visible-references check does not
    read (a private side's reference to its row): a static query, planned once per session. It runs after the row
    is written (an AFTER trigger: RLS has let the row in) and looks in the row's organisation only; it refuses
    with the foreign key's own error (tg_argv[1] names it), as a made-up id is refused."""
    same_org = f"\n                and p.{ORG} = new.{ORG}" if parent.is_tenant else ""
    return _trigger_fn(object_name(parent.name, suffix="live_parent"), f"""begin
  -- tg_argv[0]: the reference column, [1] its foreign key. Clients only: the service role may still file
  -- rows under an archived row (imports, moderation); an unchanged reference passes (rows under it stay editable).
  if current_setting('role', true) not in ('authenticated', 'anon')
     or (tg_op = 'UPDATE' and (to_jsonb(new) -> tg_argv[0]) is not distinct from (to_jsonb(old) -> tg_argv[0])) then
    return new;
  end if;
  if exists (select 1 from public.{ident(parent.name)} p
              where p.id = (to_jsonb(new) ->> tg_argv[0])::uuid{same_org} and p.archived_at is not null) then
    raise exception using errcode = '23503',
      message = format('insert or update on table "%s" violates foreign key constraint "%s"', tg_table_name,
                       tg_argv[1]),
      detail = {literal(f'Key is not present in table "{parent.name}".')},
      schema = tg_table_schema, table = tg_table_name, constraint = tg_argv[1];
  end if;
  return new;
end""", f"Soft delete of {parent.name}: a client cannot file a new row under an archived one, nor move a row there "
        "(rows already under it stay). Definer: reads archived rows past RLS.")


def refuse_hidden_references(e: Entity, refs: list[tuple[str, Entity, str]]) -> Function:
    """One per table whose rows clients write with references to other rows (docs/access.md A27): after the
    statement (RLS has let the rows in, and the foreign keys hold), each reference a client set or changed must
    name a row the client may read. Security invoker, so the parent's own policies decide; once per statement,
    over the transition tables, so the parent's helpers run once however many rows it wrote. `refs`: (column,
    parent, the column's foreign key).

    A hidden row is refused with the foreign key's own error (message, detail, constraint), the one a made-up id
    gets from PostgreSQL: the two fail alike (red team 17: the message told them apart, and told an archived row
    from both). A row of a soft-deleted parent that the caller may read archived (its restorers) is refused as
    archived: they see that already."""
    def check(col: str, parent: Entity, fkey: str, update: bool) -> str:
        source = "added n join replaced o on o.id = n.id" if update else "added n"
        moved = f"\n                 and n.{ident(col)} is distinct from o.{ident(col)}" if update else ""
        out = f"""    if exists (select 1 from {source}
               where n.{ident(col)} is not null{moved}
                 and not exists (select 1 from public.{ident(parent.name)} p where p.id = n.{ident(col)})) then
      raise exception using errcode = '23503',
        message = {literal(f'insert or update on table "{e.name}" violates foreign key constraint "{fkey}"')},
        detail = {literal(f'Key is not present in table "{parent.name}".')},
        schema = 'public', table = {literal(e.name)}, constraint = {literal(fkey)};
    end if;"""
        if parent.soft_delete:
            out += f"""
    if exists (select 1 from {source} join public.{ident(parent.name)} p on p.id = n.{ident(col)}
               where p.archived_at is not null{moved}) then
      raise exception using errcode = '23503',
        message = {literal(f"{e.name}.{col} names an archived {parent.name} row")},
        hint = 'Restore that row first, or pick a live one.';
    end if;"""
        return out
    inserts, updates = ("\n".join(check(col, parent, fkey, update) for col, parent, fkey in refs)
                        for update in (False, True))
    return Function(schema_name="private", name=object_name(e.name, suffix="visible_refs"), returns="trigger",
                    language="plpgsql", security_definer=False, body=f"""begin
  -- Clients only: the service role and the database's own functions see every row anyway.
  if current_setting('role', true) not in ('authenticated', 'anon') then
    return null;
  end if;
  if tg_op = 'INSERT' then
{inserts}
  else
{updates}
  end if;
  return null;
end""", comment=f"References a client writes into {e.name} name rows that client may read (a foreign key alone "
                    "checks existence past RLS)" + (", live ones where the parent is soft-deleted" if any(
                        parent.soft_delete for _, parent, _ in refs) else "") + ". Invoker: the referenced tables' "
                    "policies decide.")


def refuse_unlisted_moves(e: Entity) -> Function:
    """One per entity with `transitions` (docs/access.md A28): a client inserts a row only in an initial state
    and moves a state column only along a listed move. After the row (RLS first: an outsider learns nothing of
    the rules); the triggers' WHEN conditions leave rows in a listed initial state, and unchanged states, alone."""
    def refuse(condition: str, message: str, args: str, hint: str) -> str:
        return f"""if {condition} then
  raise exception using errcode = '42501',
    message = format({literal(message)}, {args}),
    hint = {literal(hint)};
end if;"""

    inserts, updates = [], []
    for t in e.transitions:
        col, name = ident(t.column), f"{e.name}.{t.column}"
        if t.initial:
            inserts.append(refuse(_starts_elsewhere(t), f"{name} starts as %s, not %s",
                                  f"{literal(', '.join(t.initial))}, new.{col}",
                                  "Insert the row in an initial state; later ones are reached by updates."))
        arms = "".join(f"\n      when {literal(state)} then new.{col}::text in ({', '.join(literal(v) for v in to)})"
                       for state, to in t.moves.items() if to)
        # In parentheses: PL/pgSQL reads an IF condition up to the first THEN outside them.
        listed = f"(case old.{col}::text{arms}\n      else false\n    end)" if arms else "false"
        updates.append(refuse(f"new.{col} is distinct from old.{col}\n   and not {listed}",
                              f"{name} may not move from %s to %s", f"old.{col}, new.{col}",
                              f"Allowed moves: {t.listed}."))

    def block(checks: list[str], depth: int) -> str:
        return "\n".join(indent(c, "  " * depth) for c in checks)
    body = (f"  if tg_op = 'INSERT' then\n{block(inserts, 2)}\n  else\n{block(updates, 2)}\n  end if;" if inserts
            else block(updates, 1))  # without initial states only the update trigger calls it
    return Function(schema_name="private", name=object_name(e.name, suffix="transitions"), returns="trigger",
                    language="plpgsql", security_definer=False, body=f"""begin
  -- Clients only: the service role and the database's own functions move rows as they must.
  if current_user not in ('authenticated', 'anon') then
    return null;
  end if;
{body}
  return null;
end""", comment=f"Clients change {', '.join(t.column for t in e.transitions)} of {e.name} only along the listed moves"
                    + (" and insert rows in an initial state" if inserts else "")
                    + " (the service role and the database's own functions are not bound).")


def _starts_elsewhere(t: Transition) -> str:
    """A new row whose state column is none of its initial states."""
    return f"new.{ident(t.column)}::text not in ({', '.join(literal(v) for v in t.initial)})"


def transition_conditions(e: Entity) -> tuple[str | None, str]:
    """The WHEN conditions of the insert trigger (None: no initial states listed) and of the update trigger."""
    starts = [_starts_elsewhere(t) for t in e.transitions if t.initial]
    moved = [f"old.{ident(t.column)} is distinct from new.{ident(t.column)}" for t in e.transitions]
    return (" or ".join(starts) or None), " or ".join(moved)


def restore_function(bp: Blueprint, e: Entity) -> Function:
    # Like an update: only rows the caller may also read (the select grants), archived or not.
    select = command_grants(bp, e, "select")
    # A definer body reads other tables past their policies: a `visible` parent's select policy is restated.
    seen = any_of(bp, e, select, definer=True) if select else Pred.of("false")
    pred = any_of(bp, e, restore_grants(bp, e), seen, definer=True)
    # Not back under an archived row (a booking of an archived room): nobody files a row there either (A24).
    parents = [(f.name, p) for f in e.fields if f.references and (p := bp.entity(f.references)) is not None
               and p.soft_delete]
    # ... unless the row is in a cycle of archived rows through a reference to its own entity (a folder filed under
    # itself, two under each other: red team 18): each waits for the other, so one of them comes back first.
    # The walk is a sub-select of the update, not a variable: under use_column a field named like the variable
    # (`in_cycle_0`) took its place, and a member who set it let a row come back under an archived one (red team 21).
    live = ""
    # The parent's alias must not hide the row restored, which the test names by its table (an entity named `p`
    # read its own parent_id as the alias's, and came back under an archived parent: red team 24).
    alias = "p" if e.name != "p" else "parent_row"
    for col, p in parents:
        test = (f"not exists (select 1 from public.{ident(p.name)} {alias} where {alias}.id = "
                f"{ident(e.name)}.{ident(col)} and {alias}.archived_at is not null)")
        if p is e:
            test = f"""((with recursive up (id, above) as (
            select r.id, r.{ident(col)} from public.{ident(e.name)} r where r.id = $1
            union
            select q.id, q.{ident(col)} from up join public.{ident(e.name)} q on q.id = up.above
             where q.archived_at is not null)
          select exists (select 1 from up where up.above = $1))
          or {test})"""
        live += f"\n     and {test}"
    name = verb_name("restore", e.singular)
    # The table may have a column named like the parameter (a grant may even filter on it): every bare
    # name in the body means a column (use_column), and the parameter is only ever $1.
    # An exclusion counts live rows only: the row may come back into a range taken since. PostgreSQL's message
    # would show the other row's keys and range, which a caller under RLS never sees from their own statement
    # (red team 17): the refusal says no more than that.
    hint = ",\n      hint = 'A row under an archived row comes back once that row is restored.'" if parents else ""
    overlap = f"""
exception when exclusion_violation then
  raise exception using errcode = '23P01',
    message = {literal(f"this {e.name} row overlaps a live row's range (an exclusion): it stays archived")};""" \
        if e.exclusions else ""
    fn = _rpc(name, "archived_row_id uuid", "uuid", "void", f"""#variable_conflict use_column
begin
  update public.{ident(e.name)} set archived_at = null
   where id = $1 and archived_at is not null
     and ({pred}){live};
  if not found then
    raise exception using errcode = '42501',
      message = {literal(f"no archived {e.name} row with this id that you may restore")}{hint};
  end if;{overlap}
end""", f"Brings an archived {e.name} row back, for those who may restore it (its restore grants).")
    # A role named as read-only that the restore grants let write (restore: viewer): said where a reader, and the
    # audit's BP059, looks, as the policies say it (fuzz, session 31: the audit read the definer form).
    # (one the update policy names already is no finding of the function: the audit reads the policies first, and
    # the policy says it there)
    policy = str(command_pred(bp, e, Command.update))
    readers = [r for r in READ_ONLY_ROLE_NAMES if f"'{r}'" in str(pred) and f"'{r}'" not in policy]
    if readers:
        fn.ignore = [f"BP059 the blueprint lets {', '.join(readers)} restore {e.name} rows (its restore grants)"]
    return fn


# --- audit log -----------------------------------------------------------------------------------------

def protect_audit_log() -> Function:
    return _trigger_fn("protect_audit_log", """begin
  if tg_op = 'DELETE' and current_setting('blueprint.purging_audit_logs', true) = 'on' then
    if old.occurred_at < now() - make_interval(days => tg_argv[0]::int) then
      return old;
    end if;
  end if;
  -- A personal workspace that went with its user's account (before_user_deleted): its entries go with it.
  if tg_op = 'DELETE' and old.organization_id::text = any (string_to_array(
        current_setting('blueprint.erasing_organizations', true), ','))
     and not exists (select 1 from public.organizations o where o.id = old.organization_id) then
    return old;
  end if;
  raise exception using errcode = '42501', message = 'audit_logs is append-only',
    hint = 'Rows older than the retention period are removed by private.purge_audit_logs().';
end""", "Append-only audit log: no update, delete or truncate by any role, except the retention function "
        "removing rows past the retention period, and account deletion removing those of the personal workspace that "
        "went with the account.")


def purge_audit_logs(bp: Blueprint) -> Function:
    days = bp.privacy.audit_retention_days
    return _rpc("purge_audit_logs", "", "", "bigint", f"""declare
  removed bigint;
begin
  perform set_config('blueprint.purging_audit_logs', 'on', true);
  delete from public.audit_logs where occurred_at < now() - interval '{days} days';
  get diagnostics removed = row_count;
  perform set_config('blueprint.purging_audit_logs', 'off', true);
  return removed;
end""", f"Retention: deletes audit rows older than {days} days and returns how many. Schedule it (pg_cron) "
        "as the service role.", roles=["service_role"])


def auth_triggers(bp: Blueprint) -> list[Trigger]:
    out = [Trigger(name=SIGNUP_TRIGGER, timing="after", events=["insert"], function="private.handle_new_user"),
           Trigger(name=DELETION_TRIGGER, timing="before", events=["delete"], function="private.before_user_deleted")]
    if bp.tenancy.team_organizations:  # invitations exist
        out.append(Trigger(name=ADDRESS_TRIGGER, timing="after", events=["update"], columns=["email"],
                           when="lower(old.email) is distinct from lower(new.email)",
                           function="private.revoke_invitations_to_old_address"))
    return out


def api_wrapper(impl: Function) -> Function:
    """The API's entry point for a definer function kept in `private`: an invoker SQL function in public
    (PostgREST exposes it as /rpc/<name>), so no definer function is reachable through the API."""
    names = [a.split()[0] for a in impl.args.split(",") if a.strip()]
    call = f"private.{impl.name}({', '.join(names)})"
    return Function(schema_name="public", name=impl.name, args=impl.args, arg_types=impl.arg_types,
                    returns=impl.returns, language="sql", body=f"select {call}",
                    comment=impl.comment + f" Calls {call.split('(')[0]} (definer).",
                    execute_roles=impl.execute_roles, migration="triggers")


def api_functions(bp: Blueprint) -> list[Function]:
    """The lifecycle functions clients (or the service role) call, in creation order: each definer
    implementation in private, then its public wrapper."""
    impls = [delete_my_account()]
    if bp.tenancy.team_organizations:
        impls += [transfer_ownership(bp), create_invitation(bp), accept_invitation(bp), change_member_role(bp)]
    impls += [restore_function(bp, e) for e in bp.entities
              if e.soft_delete and e.scope in (Scope.organization, Scope.user) and restore_grants(bp, e)]
    out: list[Function] = []
    for f in impls:
        out += [f, api_wrapper(f)]
    if bp.privacy.audit_tables:
        out.append(purge_audit_logs(bp))
    return out
