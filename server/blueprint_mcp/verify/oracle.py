"""Who may do what, derived from the blueprint's meaning (scopes, capabilities), not from the SQL.

The verifier compares these expectations with what PostgreSQL actually does; keeping this
independent of the policy generator is what gives the comparison teeth.
"""

from __future__ import annotations

from ..model import Blueprint, Capability
from ..model.access import Grant
from ..model.meaning import command_grants, may_give_role, member_roles, restore_grants, stamped_references
from ..model.tenant_keys import READ_ONLY_ROLE_NAMES
from .world import Actor, Row, World

ALLOWED, DENIED = "allowed", "denied"


class Oracle:
    """Expected outcome of (actor, command, table, row) for a blueprint-generated backend."""

    def __init__(self, bp: Blueprint, world: World) -> None:
        self.bp, self.world = bp, world
        self.rank = {r.name: i for i, r in enumerate(bp.tenancy.roles)}  # 0 = most privileged
        self.links = self._links()
        self.stamped = stamped_references(bp)  # references of rows holding server_set fields (L13)
        self._grants: dict[tuple[str, str], list[Grant]] = {}  # (entity, command): the blueprint is fixed here

    def role_in(self, actor: Actor, org: str | None) -> str | None:
        return actor.memberships.get(org) if org else None

    def at_least(self, actor: Actor, org: str | None, role: str | None) -> bool:
        mine = self.role_in(actor, org)
        return mine is not None and role is not None and self.rank[mine] <= self.rank[role]

    def can(self, actor: Actor, org: str | None, capability: Capability) -> bool:
        return self.at_least(actor, org, self._min(capability))

    def _min(self, capability: Capability) -> str:
        role = self.bp.tenancy.min_role(capability)
        return (role or self.bp.tenancy.owner_role).name

    def under_refs(self, table: str) -> list[str]:
        """The references the table's insert grants name in `under` (docs/access.md A25)."""
        e = self.bp.entity(table)
        grants = command_grants(self.bp, e, "insert") if e is not None else []
        return list(dict.fromkeys(g.under for g in grants if g.under))

    def outsider_insert(self, actor: Actor, table: str, org: str | None) -> bool:
        """An insert into an organisation the actor does not belong to, where only members may insert (no
        linked, signed_in or public insert grant): RLS's to refuse, before any trigger runs (Case.outsider)."""
        e = self.bp.entity(table)
        return org is not None and org not in actor.memberships and (
            e is None or all(g.is_member_grant for g in command_grants(self.bp, e, "insert")))

    def expect(self, actor: Actor, command: str, table: str, row: Row | None, org: str | None) -> str:
        """`row` for select/update/delete (for insert, the row being inserted, when known); `org` the
        target organisation for insert."""
        entity = self.bp.entity(table)
        if entity is not None:
            return ALLOWED if self._entity(actor, command, entity, row, org) else DENIED
        if actor.api_role != "authenticated":
            return DENIED
        handler = getattr(self, f"_{table}", None)
        return ALLOWED if handler is not None and handler(actor, command, row, org) else DENIED

    # --- core tables -------------------------------------------------------------------------------

    def _profiles(self, actor, command, row, org):
        return command in ("select", "update") and row.author == actor.name

    def _organizations(self, actor, command, row, org):
        if command == "insert":
            return self.bp.tenancy.team_organizations
        if command == "select":
            return self.can(actor, row.org, Capability.read) or row.author == actor.name
        if command == "update":
            return self.can(actor, row.org, Capability.manage_members)
        if command == "delete":  # fixture orgs are team orgs
            if self.bp.tenancy.organization_deleted_by == "capability":
                return self.can(actor, row.org, Capability.delete_organization)
            return self.world.owners.get(row.org) == actor.name  # the primary owner alone
        return False

    def _organization_members(self, actor, command, row, org):
        if command == "select":
            return self.can(actor, row.org, Capability.read) or row.author == actor.name
        if command == "delete":
            if row.author == actor.name:  # leaving: allowed unless the actor is the organisation's owner
                return self.world.owners.get(row.org) != actor.name
            if self.bp.tenancy.team_organizations and self.world.owners.get(row.org) == actor.name:
                return True  # the primary owner removes anyone else, co-owners included (L17)
            target_role = self.world.actors[row.author].memberships.get(row.org)
            mine = self.role_in(actor, row.org)
            return (self.can(actor, row.org, Capability.manage_members) and target_role is not None
                    and self.rank[mine] < self.rank[target_role])
        return False  # memberships come from accept_invitation(), roles change through change_member_role()

    def may_change_role(self, actor: Actor, member: Actor, org: str, new_role: str) -> bool:
        """change_member_role(): a manager changes a member ranked strictly below them (the primary owner: any other
        member), at most to their own role and only to a role whose every right they hold (docs/lifecycle.md L17)."""
        mine, theirs = self.role_in(actor, org), member.memberships.get(org)
        primary = self.world.owners.get(org) == actor.name
        return (self.bp.tenancy.team_organizations and self.can(actor, org, Capability.manage_members)
                and theirs is not None and actor.name != member.name
                and (self.rank[mine] < self.rank[theirs] or primary) and self.rank[mine] <= self.rank[new_role]
                and may_give_role(self.bp, mine, new_role))

    def _invitations(self, actor, command, row, org):
        target = row.org if row else org
        if command in ("select", "delete"):
            return self.can(actor, target, Capability.manage_members)
        return False  # created only by create_invitation(), which sets the secret; never updated by clients

    # --- analytics and privacy ------------------------------------------------------------------------

    def _sessions(self, actor, command, row, org):
        return command == "select" and self.can(actor, row.org, Capability.read) and row.author == actor.name

    def _events(self, actor, command, row, org):
        if command != "select":
            return False
        return self.can(actor, row.org, Capability.manage_members) or (
            self.can(actor, row.org, Capability.read) and row.author == actor.name)

    def _feature_flags(self, actor, command, row, org):
        return command == "select"

    def _feature_flag_assignments(self, actor, command, row, org):
        # Fixture rows are assigned to their author; organisation-wide rows (user null) are read by all.
        return command == "select" and self.can(actor, row.org, Capability.read) and row.author == actor.name

    def _audit_logs(self, actor, command, row, org):
        if command != "select" or not self.can(actor, row.org, Capability.manage_members):
            return False
        e = self.bp.entity(self._value(row, "table_name") or "")
        if e is None or e.name not in self.bp.privacy.audit_tables:
            return True
        # An entry copies its row: only those who may read every row of its table read it (a select grant
        # without own, assigned, where, linked, under or visible, for everyone or for the actor's role).
        role = self.role_in(actor, row.org)

        def every_row(grants) -> bool:
            return any(not (g.own or g.assigned or g.where is not None or g.linked is not None or g.under
                            or g.visible)
                       and (g.public or g.signed_in or role in (member_roles(self.bp, g) or [])) for g in grants)
        # Archived rows (whose changes are logged too) are only for those who may restore them; a row's personal
        # data is only for those who may also see the row (docs/access.md A23), every one of them.
        parent = self.bp.entity(e.private_of) if e.private_of else None
        chain = [e] if parent is None else [e, parent]
        return all(every_row(command_grants(self.bp, x, "select")) and (
            not x.soft_delete or every_row(restore_grants(self.bp, x))) for x in chain)

    def _daily_org_metrics(self, actor, command, row, org):
        # Totals of the organisation's events: for those who read all of them (_events), not the others.
        return command == "select" and self.can(actor, row.org, Capability.manage_members)

    # --- domain entities: docs/access.md, read independently of the policy generator ---------------

    def _entity(self, actor: Actor, command: str, e, row: Row | None, org: str | None) -> bool:
        if command == "insert" and self.under_archived(e, row):
            return False  # nobody files a new row under an archived one (docs/access.md A24)
        if command == "insert" and not self._references_seen(actor, e, row):
            return False  # a client names only rows it may read (docs/access.md A27)
        if command == "insert" and not self._starts_listed(e, row):
            return False  # a state column starts in one of its initial states (A28)
        if command != "insert" and not self._live(actor, e, row, org):
            return False  # an archived row: only those who may restore it reach it
        if command == "delete" and e.soft_delete and self._value(row, "archived_at") is not None:
            return False  # a client's delete of an archived row changes nothing: it keeps when it was archived (A24)
        if not self._parent_seen(actor, e, row):
            return False  # the personal data of a row: read and written only by those who see the row
        if command in ("update", "delete") and not self._grants_hold(actor, e, "select", row, org):
            return False  # PostgreSQL updates and deletes only rows the caller can also see
        return self._grants_hold(actor, e, command, row, org)

    def _live(self, actor: Actor, e, row: Row | None, org: str | None) -> bool:
        """Soft delete (docs/access.md A24): a row not archived, or one the actor may restore."""
        if not e.soft_delete or row is None or self._value(row, "archived_at") is None:
            return True
        target = row.org or org
        return any(self._grant_holds(actor, e, g, row, target) for g in restore_grants(self.bp, e))

    def may_restore(self, actor: Actor, table: str, row: Row, parents: bool = True) -> bool:
        """Restorers who may read the row, unless it names an archived row (nobody files a row there, A24;
        `parents=False`: whether they would restore it but for that)."""
        e = self.bp.entity(table)
        return self._live(actor, e, row, row.org) and self._grants_hold(actor, e, "select", row, row.org) \
            and not (parents and self.under_archived(e, row, restoring=True))

    def expect_transition(self, actor: Actor, table: str, before: Row, after: Row, stamped: bool = True) -> str:
        """An update that changes a row: the row must be selectable and updatable before and after. `stamped`
        False: as if the row's references were not set on insert only for its server_set fields (what else would
        refuse the move)."""
        e = self.bp.entity(table)
        if e.private_of is not None and after.values.get(e.fields[0].name) != before.values.get(e.fields[0].name):
            return DENIED  # personal data belongs to one row for good (docs/access.md A23)
        if self.under_archived(e, after, before):
            return DENIED  # nor moves a row under one
        if not self._references_seen(actor, e, after, before):
            return DENIED  # nor points a reference at a row it may not read (A27)
        if not self._moves_listed(e, before, after):
            return DENIED  # a state changes only along a listed move (A28)
        if any(after.values.get(c) != before.values.get(c) and from_literal(after.values.get(c) or "null") is not None
               for c in self.links.get(table, ())):
            return DENIED  # a link is set on insert; a client may clear it, not point it elsewhere (A09/A10)
        if any(after.values.get(c) != before.values.get(c) and from_literal(after.values.get(c) or "null") is not None
               for c in (self.stamped.get(table, ()) if stamped else ())):
            return DENIED  # nor moves a row holding server_set values to another parent (docs/lifecycle.md L13)
        if not (self._live(actor, e, before, before.org) and self._live(actor, e, after, after.org)):
            return DENIED  # an archived row stays in its restorers' sight: WITH CHECK applies the same rule
        ok = all(self._grants_hold(actor, e, c, r, r.org) for r in (before, after) for c in ("select", "update"))
        return ALLOWED if ok else DENIED

    def _grants_hold(self, actor: Actor, e, command: str, row: Row | None, org: str | None) -> bool:
        target = row.org if row is not None and row.org else org
        grants = self._grants.get((e.name, command))
        if grants is None:
            grants = self._grants[e.name, command] = command_grants(self.bp, e, command)
        return any(self._grant_holds(actor, e, g, row, target) for g in grants)

    def _grant_holds(self, actor: Actor, e, g: Grant, row: Row | None, org: str | None) -> bool:
        signed_in = actor.api_role == "authenticated"
        if g.public:
            who = True
        elif not signed_in:
            return False
        elif g.signed_in:
            who = True
        elif g.linked is not None:
            who = row is not None and self._linked_user(e, g.linked, row) == actor.name
        else:
            who = self.role_in(actor, org) in (member_roles(self.bp, g) or [])
        if not who:
            return False
        if g.own and (row is None or self._author(e, row) != actor.name):
            return False
        if g.assigned and (row is None or self._user(row, g.assigned) != actor.name):
            return False
        if g.where is not None:
            field = e.field(g.where.column)
            value = self._value(row, g.where.column, field.default if field else None)
            if value not in {_norm(v) for v in g.where.values}:
                return False
        if g.under and not self._parent_allows(actor, e, g.under, row, "update"):
            return False
        if g.visible and not self._parent_allows(actor, e, g.visible, row, "select"):
            return False
        return True

    def _parent_allows(self, actor: Actor, e, ref: str, row: Row | None, command: str) -> bool:
        """The parent row the reference names is one the actor may `command`: update for `under` (docs/access.md
        A25), select for `visible` (A29)."""
        parent = self.bp.entity(e.field(ref).references)
        named = self._row_by_id(parent.name, row.values.get(ref)) if row is not None else None
        return named is not None and self.expect(actor, command, parent.name, named, named.org) == ALLOWED

    def _links(self) -> dict[str, set[str]]:
        """Table -> the columns some linked chain walks through there (the author column aside)."""
        out: dict[str, set[str]] = {}
        for e in self.bp.entities:
            for command in ("select", "insert", "update", "delete"):
                for g in command_grants(self.bp, e, command):
                    here = e
                    for col in g.linked or []:
                        if col != here.owner_column:
                            out.setdefault(here.name, set()).add(col)
                        field = here.field(col)
                        here = self.bp.entity(field.references) if field and field.references else here
        return out

    def _parent_seen(self, actor: Actor, e, row: Row | None) -> bool:
        """A private side (docs/access.md A23): the actor may select the row it belongs to."""
        parent = self.bp.entity(e.private_of) if e.private_of else None
        if parent is None or row is None:
            return True
        owner = self._row_by_id(parent.name, row.values.get(e.fields[0].name))
        return owner is not None and self.expect(actor, "select", parent.name, owner, owner.org) == ALLOWED

    def _row_by_id(self, table: str, ref: str | None) -> Row | None:
        """The fixture row of `table` whose id the literal `ref` names."""
        if ref is None:
            return None
        ref = from_literal(ref)
        return next((r for r in self.world.rows if r.table == table and from_literal(r.key.get("id", "null")) == ref),
                    None)

    def under_archived(self, e, row: Row | None, before: Row | None = None, restoring: bool = False) -> bool:
        """The row names an archived row of a soft-deleted entity in a reference it sets (every reference on
        insert; on update, those that change). `restoring`: a row in a cycle of archived rows of its own entity
        through that reference (filed under itself, two under each other) is not held back by it: one of them
        comes back first (red team 18)."""
        if row is None:
            return False
        for f in e.fields:
            target = self.bp.entity(f.references) if f.references else None
            ref = self._value(row, f.name)
            if target is None or not target.soft_delete or ref is None:
                continue
            if before is not None and self._value(before, f.name) == ref:
                continue
            named = self._row_by_id(target.name, ref)
            if named is not None and self._value(named, "archived_at") is not None and \
                    not (restoring and target.name == e.name and self._archived_cycle(e, f.name, row)):
                return True
        return False

    def _archived_cycle(self, e, column: str, row: Row) -> bool:
        """Following `column` up from the row through archived rows of its entity leads back to the row."""
        mine = from_literal(row.key.get("id", "null"))
        seen: set = set()
        above = self._value(row, column)
        while above is not None and above not in seen:
            if above == mine:
                return True
            seen.add(above)
            named = self._row_by_id(e.name, above)
            if named is None or self._value(named, "archived_at") is None:
                return False
            above = self._value(named, column)
        return False

    def _references_seen(self, actor: Actor, e, row: Row | None, before: Row | None = None) -> bool:
        """docs/access.md A27: every reference to another entity the client sets (on insert) or changes (on
        update) names a row the actor may select; member references (A19) and a private side's reference to its
        row (A23) have rules of their own."""
        if row is None:
            return True
        for k, f in enumerate(e.fields):
            parent = self.bp.entity(f.references) if f.references else None
            if parent is None or f.references_member or (e.private_of and k == 0):
                continue
            ref = self._value(row, f.name)
            if ref is None or (before is not None and self._value(before, f.name) == ref):
                continue
            named = self._row_by_id(parent.name, ref)
            if named is None or self.expect(actor, "select", parent.name, named, named.org) != ALLOWED:
                return False
        return True

    def _starts_listed(self, e, row: Row | None) -> bool:
        """docs/access.md A28: each state column of a new row holds one of its initial states (any, when none
        are listed); a column left out holds its default."""
        for t in e.transitions:
            if t.initial and row is not None and self._value(row, t.column, e.field(t.column).default) not in t.initial:
                return False
        return True

    def _moves_listed(self, e, before: Row, after: Row) -> bool:
        """docs/access.md A28: a state column that changes moves from its old value to one listed for it."""
        for t in e.transitions:
            default = e.field(t.column).default
            old, new = self._value(before, t.column, default), self._value(after, t.column, default)
            if old != new and new not in t.moves.get(old or "", []):
                return False
        return True

    def _author(self, e, row: Row) -> str | None:
        """The row's author; a private side's is its parent row's, whoever inserted it (docs/access.md A23)."""
        if e.private_of is None:
            return row.author
        parent = self._row_by_id(e.private_of, row.values.get(e.fields[0].name))
        return parent.author if parent is not None else None

    def _value(self, row: Row | None, column: str, default: object = None) -> str | None:
        """A fixture row's column as text ('true', 'published', '3'), its default when not inserted."""
        if row is None:
            return None
        if column in row.values:
            return from_literal(row.values[column])
        return None if default is None else _norm(default)

    def _user(self, row: Row, column: str) -> str | None:
        """The actor whose user id the row's column holds."""
        uid = self._value(row, column)
        return next((a.name for a in self.world.actors.values() if a.user_id is not None and a.user_id == uid), None)

    def _linked_user(self, e, chain: list[str], row: Row) -> str | None:
        """The actor a chain links the row to; nobody through an archived row of the chain (docs/access.md A10).
        A personal-data side's first step is to its own row (A23), no hop of the chain: an archived row links its
        own personal data as it links itself (random fuzz: the oracle refused its restorer what the row allowed)."""
        current, entity = row, e
        for k, col in enumerate(chain[:-1]):
            ref = self._value(current, col)
            entity = self.bp.entity(entity.field(col).references)
            current = next((r for r in self.world.rows if r.table == entity.name
                            and from_literal(r.key.get("id", "null")) == ref), None)
            if current is None or ref is None:
                return None
            own_row = k == 0 and e.private_of is not None and col == e.fields[0].name
            if entity.soft_delete and self._value(current, "archived_at") is not None and not own_row:
                return None
        last = chain[-1]
        if last == entity.owner_column:
            return self._author(entity, current)
        return self._user(current, last)


def _norm(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def from_literal(sql: str) -> str | None:
    """The text of a fixture literal: 'x' or 'x'::type -> x; true/false/numbers as written; null -> None."""
    text = sql.strip()
    if "::" in text and not text.endswith("'"):
        text = text[: text.rindex("::")]
    if text.lower() == "null":
        return None
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("''", "'")
    return text.lower() if text.lower() in ("true", "false") else text


class GenericOracle:
    """For migrations without a blueprint: only what holds for any multi-tenant backend."""

    def __init__(self, members_table: str | None = None) -> None:
        self.members_table = members_table

    def outsider_insert(self, actor: Actor, table: str, org: str | None) -> bool:
        return org is not None and org not in actor.memberships  # no organisation takes an outsider's rows

    def under_refs(self, table: str) -> list[str]:
        return []  # without a design there is no `under` to read

    def expect(self, actor: Actor, command: str, table: str, row: Row | None, org: str | None) -> str | None:
        if actor.api_role != "authenticated":
            return DENIED
        if table == self.members_table and row is not None and row.author == actor.name and command == "delete":
            return None  # leaving an organisation: a policy decision, not a leak
        target = row.org if row else org
        if target is None:
            return None
        role = actor.memberships.get(target)
        if role is None:
            return DENIED
        if command != "select" and role in READ_ONLY_ROLE_NAMES:
            return DENIED
        return None
