"""Trigger functions and triggers: timestamps, immutable keys, signup, ownership, audit.

Every function lives in `private` with `set search_path = pg_catalog, pg_temp` and fully qualified names, so a
caller's search_path can never redirect it; definer functions are revoked from public and anon.
"""

from __future__ import annotations

import textwrap

from ..model import Blueprint, Entity
from ..model.schema import Function, Table, Trigger
from .columns import ORG
from ..model.blueprint import ROLE_TYPE
from .ident import ident, literal, object_name
from . import lifecycle as life
from ..model.meaning import command_grants, link_columns, stamped_references


def _fn(name: str, body: str, comment: str, definer: bool = False) -> Function:
    return Function(schema_name="private", name=name, returns="trigger", language="plpgsql",
                    security_definer=definer, body=body, comment=comment)


def set_updated_at() -> Function:
    return _fn("set_updated_at", "begin\n  new.updated_at := now();\n  return new;\nend",
               "Keeps updated_at true on every update.")


def enforce_immutable_columns() -> Function:
    return _fn("enforce_immutable_columns", """declare
  col text;
  before_value jsonb;
begin
  foreach col in array tg_argv loop
    before_value := to_jsonb(old) -> col;
    if (to_jsonb(new) -> col) is distinct from before_value then
      -- The one change allowed: a user column nulled by `on delete set null` because that user's
      -- account was deleted (the user no longer exists).
      if jsonb_typeof(to_jsonb(new) -> col) = 'null' and jsonb_typeof(before_value) = 'string'
         and not exists (select 1 from auth.users u where u.id::text = before_value #>> '{}') then
        continue;
      end if;
      raise exception using
        errcode = '42501',
        message = format('%I.%I cannot change', tg_table_name, col),
        hint = 'Create a new row instead; a row never moves between organisations or owners.';
    end if;
  end loop;
  return new;
end""", "Rejects updates of the columns named in the trigger arguments (tenant key, owner), except a user column "
       "nulled after that user's account was deleted. Definer: checks auth.users.", definer=True)


def handle_new_user(bp: Blueprint) -> Function:
    personal = ""
    if bp.tenancy.personal_workspaces:
        personal = """
  insert into public.organizations (name, slug, is_personal, owner_user_id)
  values ('Personal workspace', 'personal-' || replace(new.id::text, '-', ''), true, new.id);"""
    return _fn("handle_new_user", f"""begin
  insert into public.profiles (id, full_name, avatar_url)
  values (new.id, left(new.raw_user_meta_data ->> 'full_name', 200), new.raw_user_meta_data ->> 'avatar_url');{personal}
  return new;
end""", "Signup: creates the profile" + (" and the personal workspace" if personal else "") +
               ". Definer because it runs as the auth service; a failure here fails signup.", definer=True)


def add_owner_membership(bp: Blueprint) -> Function:
    owner = literal(bp.tenancy.owner_role.name)
    return _fn("add_owner_membership", f"""begin
  insert into public.organization_members (organization_id, user_id, role)
  values (new.id, new.owner_user_id, {owner})
  on conflict (organization_id, user_id) do update set role = excluded.role;
  return new;
end""", "Every new organisation starts with its creator as owner.", definer=True)


def guard_organization_update(bp: Blueprint) -> Function:
    owner = literal(bp.tenancy.owner_role.name)
    return _fn("guard_organization_update", f"""begin
  if new.owner_user_id is distinct from old.owner_user_id then
    if (select auth.uid()) is not null and (select auth.uid()) is distinct from old.owner_user_id then
      raise exception using errcode = '42501', message = 'only the current owner can transfer ownership';
    end if;
    if not exists (
      select 1 from public.organization_members m
       where m.organization_id = new.id and m.user_id = new.owner_user_id and m.role = {owner}
    ) then
      raise exception using errcode = '23514', message = 'the new owner must already be an owner member',
        hint = 'Use public.transfer_ownership(organization_id, new_owner_id).';
    end if;
  end if;
  return new;
end""", "Ownership moves only from the current owner to another owner member.", definer=True)


def protect_primary_owner(bp: Blueprint) -> Function:
    owner = literal(bp.tenancy.owner_role.name)
    return _fn("protect_primary_owner", f"""begin
  -- The owner named on the organisation is always an owner member, so an organisation can never
  -- lose its last owner. Deleting the organisation or the user's account is still allowed.
  if exists (
       select 1 from public.organizations o
        where o.id = old.organization_id and o.owner_user_id = old.user_id
     )
     and exists (select 1 from auth.users u where u.id = old.user_id)
     and (tg_op = 'DELETE' or new.role <> {owner} or new.user_id <> old.user_id
          or new.organization_id <> old.organization_id) then
    raise exception using errcode = '42501',
      message = 'the organisation''s owner cannot leave or be demoted',
      hint = 'Transfer ownership (organizations.owner_user_id) to another owner first.';
  end if;
  if tg_op = 'DELETE' then
    return old;
  end if;
  return new;
end""", "Last-owner protection for memberships.", definer=True)


def personal_workspace_guard() -> Function:
    return _fn("personal_workspace_guard", """begin
  if exists (
    select 1 from public.organizations o
     where o.id = new.organization_id and o.is_personal
       and o.owner_user_id is distinct from (to_jsonb(new) ->> 'user_id')::uuid
  ) then
    raise exception using errcode = '42501', message = 'a personal workspace has exactly one member',
      hint = 'Create a team organisation to collaborate.';
  end if;
  return new;
end""", "Nobody joins or is invited into someone's personal workspace. After the row (RLS first): its error "
       "would tell an outsider whose workspace an id is.", definer=True)


def audit_row_change() -> Function:
    return _fn("audit_row_change", """declare
  old_row jsonb := case when tg_op in ('UPDATE', 'DELETE') then to_jsonb(old) end;
  new_row jsonb := case when tg_op in ('INSERT', 'UPDATE') then to_jsonb(new) end;
  row_data jsonb := coalesce(new_row, old_row);
  redacted text[] := coalesce(tg_argv[1:], '{}');
begin
  -- tg_argv[0] names the tenant column; the rest are PII columns kept out of the log.
  insert into public.audit_logs (organization_id, actor_id, action, table_name, record_id, old_data, new_data)
  values ((row_data ->> tg_argv[0])::uuid, (select auth.uid()), tg_op, tg_table_name,
          (row_data ->> 'id')::uuid, old_row - redacted, new_row - redacted);
  return null;
end""", "Writes one audit_logs row per changed row, PII columns removed.", definer=True)


def take_parent_author(side, parent) -> Function:
    """One per private side table: a static query, planned once per session."""
    ref, owner, parent_owner = ident(side.fields[0].name), ident(side.owner_column), ident(parent.owner_column)
    return _fn(object_name(side.name, suffix="take_author"), f"""begin
  new.{owner} := (select p.{parent_owner} from public.{ident(parent.name)} p
                   where p.{ORG} = new.{ORG} and p.id = new.{ref});
  return new;
end""", f"A row's personal data is its author's: a {side.name} row takes its {parent.name} row's author, whoever "
        "inserts it, so the author checks of its policies are checks on the parent's author. Definer: reads the "
        "parent past RLS.", definer=True)


def check_member_role(bp: Blueprint) -> Function:
    role_type = f"public.{ROLE_TYPE}"
    return _fn("check_member_role", f"""declare
  col text := tg_argv[0];
  member uuid := (to_jsonb(new) ->> col)::uuid;
begin
  -- Checked when the column is written: a member named before a demotion stays named, and an update that leaves
  -- the column alone (an edit, a foreign key emptying another column when someone leaves) is not refused for it.
  if tg_op = 'UPDATE' and member is not distinct from (to_jsonb(old) ->> col)::uuid then
    return new;
  end if;
  if member is not null and not exists (
    select 1 from public.organization_members m
     where m.organization_id = new.organization_id
       and m.user_id = member
       and m.role = any (tg_argv[1:]::{role_type}[])) then
    raise exception using
      errcode = '23503',  -- like the membership foreign key it sharpens
      message = format('%I.%I must name a member holding one of the roles %s', tg_table_name, col,
                       array_to_string(tg_argv[1:], ', ')),
      hint = 'Pick a member of this organisation with one of those roles.';
  end if;
  return new;
end""", "Member references limited to roles: the user in column tg_argv[0] must hold one of the roles that "
       "follow when the column is written (a later demotion does not undo rows). Definer: reads memberships past RLS.",
        definer=True)


def _set_on_insert(name: str, service: str, hint: str, comment: str) -> Function:
    """A trigger refusing client updates that point a column (its arguments) at another row or user; clearing it
    is allowed, and the service role (`service`: why it may) writes it as it must. `hint`: plain text, written as
    adjacent SQL literals of at most 100 characters (PostgreSQL joins literals separated by a line break)."""
    pieces = textwrap.wrap(hint, 98, drop_whitespace=False, break_long_words=False)
    hint_sql = "\n               ".join(literal(p) for p in pieces)
    return _fn(name, f"""declare
  col text;
begin
  if current_user not in ('anon', 'authenticated') then
    return new;  -- {service}
  end if;
  foreach col in array tg_argv loop
    if (to_jsonb(new) -> col) is distinct from (to_jsonb(old) -> col)
       and jsonb_typeof(to_jsonb(new) -> col) <> 'null' then
      raise exception using
        errcode = '42501',
        message = format('%I.%I is set on insert only; a client may clear it, not point it elsewhere',
                         tg_table_name, col),
        hint = {hint_sql};
    end if;
  end loop;
  return new;
end""", comment)


def keep_links() -> Function:
    return _set_on_insert(
        "keep_links", "the service role (an edge function that checked who the user is) may re-link",
        "Whom it names reaches the row from outside the organisation: let the service role re-link it.",
        "Refuses client updates that point a column a linked grant reads at another row or user (clearing it "
        "is allowed): a member re-linking a row to themselves would read what their role does not let them, and "
        "keep it after leaving.")


def keep_stamped_parents() -> Function:
    return _set_on_insert(
        "keep_stamped_parents", "the service role may move a row to another parent",
        "The row's server-set fields were stamped for the row it names: insert a new row, let the service role "
        "move it, or mark the reference movable: true in the blueprint.",
        "Refuses client updates that point a reference of a row holding server_set fields at another row "
        "(clearing it is allowed): those values (a check-in's time, a sign-off's signer) were set for the row it "
        "names, and would attest a row they never saw (a month-old check-in moved onto a habit made today).")


def visible_references(bp: Blueprint, e: Entity) -> list[tuple[str, Entity]]:
    """(column, parent entity) of the references clients write into `e` that must name a row they may read
    (docs/access.md A27): every reference to another entity, but a member reference (A19: checked against the
    membership) and a private side's reference to its row (A23: the row's readers already)."""
    if not any(command_grants(bp, e, c) for c in ("insert", "update")):
        return []
    side = e.fields[0].name if e.private_of else None
    return [(f.name, parent) for f in e.fields
            if f.references and not f.references_member and f.name != side
            and (parent := bp.entity(f.references)) is not None]


def _foreign_key(table: Table, column: str) -> str:
    """The name of the foreign key a reference column belongs to (alone, or beside organization_id)."""
    return next(fk.name for fk in table.foreign_keys if column in fk.columns and column != "organization_id")


def _trigger(table: Table, label: str, timing: str, events: list[str], fn: Function, args: list[str] | None = None,
             before_keys: bool = False, **statement):
    """A row trigger (`when`: its WHEN condition); `level="statement"` (and `referencing`) for a statement trigger.
    `before_keys`: an AFTER trigger that must fire before the foreign keys' checks (PostgreSQL fires a table's
    triggers in name order, and those are named "RI_ConstraintTrigger_..."): its name starts with "A_", quoted."""
    name = object_name(table.name, label, suffix="trg")
    if before_keys:
        name = "A_" + name[:61]
    table.triggers.append(Trigger(name=name, timing=timing, events=events, function=fn.qualified, args=args or [],
                                  **statement))


def apply_triggers(bp: Blueprint, tables: list[Table]) -> list[Function]:
    """Attach triggers to `tables` and return the functions they need, in creation order."""
    upd, immut = set_updated_at(), enforce_immutable_columns()
    new_user, add_owner = handle_new_user(bp), add_owner_membership(bp)
    guard_org, protect, personal = guard_organization_update(bp), protect_primary_owner(bp), personal_workspace_guard()
    audit = audit_row_change()
    functions = [upd, immut, new_user, add_owner, guard_org, protect, personal]
    links = link_columns(bp)
    if links:
        functions.append(keep := keep_links())
    stamped = stamped_references(bp)
    if stamped:
        functions.append(keep_stamped := keep_stamped_parents())
    limited = [(e, f) for e in bp.entities for f in e.fields if f.references_member and f.member_roles]
    if limited:
        functions.append(member_role := check_member_role(bp))
        for e, f in limited:
            table = next(t for t in tables if t.name == e.name)
            # After the row: RLS first, so an outsider's insert fails alike whoever it names (a before
            # trigger's error would tell them who holds which role in another organisation). And before the
            # membership key's own check, so a caller RLS lets in (a linked user) gets the same refusal for a
            # non-member as for a member without the role (red teams 14 and 16: 23503 from the key told them apart).
            _trigger(table, f"{f.name}_member_role", "after", ["insert", "update"], member_role,
                     [f.name] + [r for r in (x.name for x in bp.tenancy.roles) if r in f.member_roles],
                     before_keys=True)
    sides = [(e, bp.entity(e.private_of)) for e in bp.entities if e.private_of and e.owner_column]
    sides = [(e, parent) for e, parent in sides if parent is not None and parent.owner_column]
    for e, parent in sides:
        functions.append(take_author := take_parent_author(e, parent))
        table = next(t for t in tables if t.name == e.name)
        # Arguments unused by the function: what verify's fixtures read (owner column, reference, parent).
        _trigger(table, "take_author", "before", ["insert"], take_author, [e.owner_column, e.fields[0].name, parent.name])
    guards: dict[str, Function] = {}  # one per soft-deleted entity others reference past the visibility check
    for e in bp.entities:
        checked = {col for col, _ in visible_references(bp, e)}  # archived parents: refused there, as the caller
        for f in e.fields:
            parent = bp.entity(f.references) if f.references else None
            if parent is None or not parent.soft_delete or f.name in checked:
                continue
            if parent.name not in guards:
                functions.append(guards.setdefault(parent.name, life.refuse_archived_parent(parent)))
            table = next(t for t in tables if t.name == e.name)
            _trigger(table, f"{f.name}_live", "after", ["insert", "update"], guards[parent.name],
                     [f.name, _foreign_key(table, f.name)])
    for e in bp.entities:
        refs = visible_references(bp, e)
        if refs:
            table = next(t for t in tables if t.name == e.name)
            functions.append(hidden := life.refuse_hidden_references(
                e, [(col, parent, _foreign_key(table, col)) for col, parent in refs]))
            _trigger(table, "visible_refs_insert", "after", ["insert"], hidden, level="statement",
                     referencing=["new table as added"])
            _trigger(table, "visible_refs_update", "after", ["update"], hidden, level="statement",
                     referencing=["old table as replaced", "new table as added"])
    for e in bp.entities:
        if e.transitions:
            functions.append(moves := life.refuse_unlisted_moves(e))
            table = next(t for t in tables if t.name == e.name)
            starts, moved = life.transition_conditions(e)
            # After the row: RLS first, so a refusal tells nobody outside the organisation anything.
            if starts:
                _trigger(table, "transitions_insert", "after", ["insert"], moves, when=starts)
            _trigger(table, "transitions_update", "after", ["update"], moves, when=moved)
    audited = set(bp.privacy.audit_tables)
    if audited:
        functions += [audit, protect_log := life.protect_audit_log()]
    functions.append(life.before_user_deleted(invitations=bp.tenancy.team_organizations,
                                               audit_log=bool(bp.privacy.audit_tables)))
    if bp.tenancy.team_organizations:
        functions += [normalize := life.normalize_invitation(), revoke := life.revoke_inviters_invitations(bp),
                      life.revoke_invitations_to_old_address()]
    for t in tables:
        names = [c.name for c in t.columns]
        immutable = {
            "profiles": ["id"], "organizations": ["id", "is_personal"],
            "organization_members": ["id", ORG, "user_id"],
            "invitations": ["id", ORG, "email", "role", "invited_by"], "invitation_tokens": ["invitation_id"],
        }.get(t.name)
        if immutable is None and t.tenant_key:
            entity = bp.entity(t.name)
            immutable = ["id", ORG] + ([entity.owner_column] if entity and entity.owner_column else [])
            if entity is not None and entity.private_of:
                immutable.append(entity.fields[0].name)  # personal data never moves to another row
        if immutable and t.name != "audit_logs" and t.schema_name == "public":
            _trigger(t, "immutable", "before", ["update"], immut, immutable)
        if links.get(t.name) and t.schema_name == "public":
            _trigger(t, "keep_links", "before", ["update"], keep, sorted(links[t.name]))
        if stamped.get(t.name) and t.schema_name == "public":
            _trigger(t, "keep_stamped", "before", ["update"], keep_stamped, sorted(stamped[t.name]))
        if "updated_at" in names:
            _trigger(t, "set_updated_at", "before", ["update"], upd)
        if t.name == "organizations":
            _trigger(t, "add_owner", "after", ["insert"], add_owner)
            _trigger(t, "guard_update", "before", ["update"], guard_org)
        if t.name == "organization_members":
            _trigger(t, "protect_owner", "before", ["update", "delete"], protect)
            _trigger(t, "personal_guard", "after", ["insert"], personal)
            if bp.tenancy.team_organizations:
                _trigger(t, "revoke_invitations", "after", ["update", "delete"], revoke)
        if t.name == "invitations":
            _trigger(t, "personal_guard", "after", ["insert"], personal)
            _trigger(t, "normalize", "before", ["insert"], normalize)
        if t.name == "audit_logs":
            days = [str(bp.privacy.audit_retention_days)]
            _trigger(t, "append_only", "before", ["update", "delete"], protect_log, days)
            _trigger(t, "no_truncate", "before", ["truncate"], protect_log, days, level="statement")
        entity = bp.entity(t.name)
        if entity is not None and entity.soft_delete and entity.client_writable and command_grants(bp, entity, "delete"):
            functions.append(archive := life.archive_on_delete(entity))
            _trigger(t, "archive_on_delete", "before", ["delete"], archive)
        if t.name in audited:
            tenant_col = "id" if t.name == "organizations" else ORG
            _trigger(t, "audit", "after", ["insert", "update", "delete"], audit,
                     [tenant_col] + [c.name for c in t.columns if c.pii])
    return functions
