"""The one meaning of an entity's access design: the grants each command has.

Scopes, a role name per command and `own_rows_only` are shorthands; this module says what they
mean as grants (docs/access.md is the same table in prose). The SQL generator and the verifier's
oracle both start from these grants and read them independently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from .access import COMMANDS, Command, Grant
from .blueprint import Blueprint
from .entities import Entity, Scope
from .storage import Bucket
from .tenancy import Capability

T = TypeVar("T")

# The built-in capability a command needs when the design names no grant for it.
DEFAULT_CAPABILITY: dict[str, Capability] = {
    "select": Capability.read, "insert": Capability.write, "update": Capability.write, "delete": Capability.write,
}


def least_role(bp: Blueprint, capability: Capability) -> str:
    """The least role holding a built-in capability; the owner role when nobody else does."""
    role = bp.tenancy.min_role(capability)
    return (role or bp.tenancy.owner_role).name


def more_privileged(bp: Blueprint, a: str, b: str) -> str:
    names = [r.name for r in bp.tenancy.roles]
    return a if names.index(a) <= names.index(b) else b


def pii_readers(bp: Blueprint, parent: Entity) -> list[Grant]:
    """Who reads `parent`'s pii fields, in the parent's terms: its pii_read, or by default the row's author
    (a member who may read) and the users its select grants link to."""
    spec = parent.pii_read
    if isinstance(spec, str):
        return [Grant(min_role=spec)]
    if isinstance(spec, list):
        return list(spec)
    out = []
    if parent.owner_column:
        out.append(Grant(min_role=least_role(bp, Capability.read), own=True))
    out += [Grant(linked=g.linked) for g in command_grants(bp, parent, "select") if g.linked]
    return out


def _private_grants(bp: Blueprint, side: Entity, command: Command) -> list[Grant]:
    """A private side table's grants, before the usual narrowing. select: the parent's pii readers. update and
    delete: whoever may update the row the personal data belongs to (changing or removing it edits the row): each
    of the parent's update grants that tests only who (and authorship) as it is, each with a condition on the
    parent's columns (where, assigned, under) as `under` the reference to that row, so the condition is read on
    the row; soft delete's too. insert: the same, and the row's author by the parent's insert grants that need no
    parent column (where, assigned and under are dropped): an author gives their own row its personal data, once
    (one side row per row), and changes it only as an updater; an author an update grant admits by role (its
    `where` read on the row) gives it only as that updater. Without an author column there is no author to give
    it. Linked chains start one hop earlier, at the reference to the parent. With no member left, only the service
    role writes it; a soft-deleted entity's personal data is deleted by the service role alone (clearing a field is
    an update)."""
    parent = bp.entity(side.private_of)
    ref = side.fields[0].name
    if command == "select":
        return [g.narrowed(linked=[ref, *g.linked]) if g.linked else g for g in pii_readers(bp, parent)]
    if side.scope is Scope.service or (command == "delete" and parent.soft_delete):
        return []
    who = ("min_role", "roles", "capability", "linked")

    def on_row(g: Grant) -> bool:  # a condition on the parent's columns, which the side table does not have
        return g.where is not None or g.assigned is not None or g.under is not None
    updaters = command_grants(bp, parent, "update")
    # A grant that tests nothing but who (and authorship: the side row's author is the row's) reads the same on
    # the side; one with a condition on the row's columns is read on the row, `under` it.
    grants = [Grant(**{k: getattr(g, k) for k in who if getattr(g, k) is not None}, own=g.own, under=ref)
              if on_row(g) else g for g in updaters] \
        if any(g.is_member_grant for g in updaters) else []
    readers = _private_grants(bp, side, "select")
    if side.owner_column and readers and all(r.own and not r.linked for r in readers):
        # Only authors read it, and nobody writes what they may not read (a planted or swapped bank account):
        # every member write is the author's.
        grants = [g.narrowed(own=True) if g.is_member_grant else g for g in grants]
    if command == "insert" and side.owner_column:
        # The parent's insert grants are its author's already (own). An author whose role an update grant admits
        # (its `where` or `under` is the row's state: a claim its author edits as a draft) gives it only as that
        # updater, the condition read on the row: given "once" whenever, an approved claim took a bank account
        # after its author could no longer edit it (red team 32 F2).
        # (`under` too: a claim its author edits while its report is open, red team 33 F2; not `assigned`, which
        # names who, not the row's state: an author filing a ticket an agent is assigned to still gives its data)
        editors = {r for g in updaters if g.is_member_grant and g.assigned is None
                   for r in member_roles(bp, g) or []}
        if any(not g.is_member_grant and (g.where is not None or g.under is not None) for g in updaters):
            # A linked updater whose edits the row's state limits may be its author (any member names
            # themselves where they insert): the author's data too waits for that state (red team 34 F4).
            editors = {r.name for r in bp.tenancy.roles}
        authors = []
        for g in command_grants(bp, parent, "insert"):
            roles = member_roles(bp, g) or []
            if on_row(g) or (g.is_member_grant and set(roles) <= editors):
                continue
            rest = [r for r in roles if r not in editors]
            authors.append(Grant(roles=rest, own=g.own) if g.is_member_grant and rest != roles else g)
        if any(g.is_member_grant for g in authors):
            grants = authors + grants
    grants = [g.narrowed(linked=[ref, *g.linked]) if g.linked else g for g in grants]
    return uncovered(bp, grants)


def uncovered(bp: Blueprint, grants: list[Grant]) -> list[Grant]:
    """Drops a grant another one already admits (a manager's "any row" narrowed to own rows), keeping the first
    of equal ones."""
    return [g for i, g in enumerate(grants)
            if not any(covers(bp, h, g) and (not covers(bp, g, h) or j < i) for j, h in enumerate(grants) if j != i)]


# While `remembered_grants` is on: (id of the blueprint, id of the entity, command) -> ((blueprint, entity),
# grants), and (id of the blueprint, "ungrantable") -> (blueprint, ungrantable). An entry holds the objects whose
# ids it is keyed by, so those ids name them alone meanwhile.
_REMEMBERED: ContextVar[dict[tuple, tuple[Any, Any]] | None] = ContextVar("remembered_grants", default=None)


@contextmanager
def remembered_grants() -> Iterator[None]:
    """Within it, `command_grants` works out each entity's command once and answers copies after: for one
    reading of a blueprint nothing changes meanwhile (build_schema). The grants of one command are asked for
    again and again (policies, triggers, indexes, the private side tables and update/delete reading their
    select grants): 6,200 calls for the 800 commands of a 200-entity blueprint, and build_schema took a quarter
    to a third less time with each worked out once. `ungrantable` too: the invitation and role functions ask
    for it ten times, each reading every grant list once per pair of roles (30 ms for 200 entities)."""
    if _REMEMBERED.get() is not None:
        yield
        return
    token = _REMEMBERED.set({})
    try:
        yield
    finally:
        _REMEMBERED.reset(token)


def _remember(key: tuple, held: Any, work: Callable[[], T]) -> T:
    """`work()`, done once per key while `remembered_grants` is on (`held`: what the key's ids name)."""
    memo = _REMEMBERED.get()
    if memo is None:
        return work()
    if key not in memo:
        memo[key] = (held, work())
    return memo[key][1]


def command_grants(bp: Blueprint, e: Entity, command: Command) -> list[Grant]:
    """The grants of `command` on `e`, OR-ed; [] means only the service role may run it."""
    return list(_remember((id(bp), id(e), command), (bp, e), lambda: _command_grants(bp, e, command)))


def _command_grants(bp: Blueprint, e: Entity, command: Command) -> list[Grant]:
    spec = e.access.spec(command)
    side = e.private_of is not None and bp.entity(e.private_of) is not None
    if side:
        spec = _private_grants(bp, e, command)
        if e.scope is Scope.service and command != "select":
            return []
    if e.scope is Scope.global_:
        if command != "select":
            return []
        return list(spec) if isinstance(spec, list) else [Grant(signed_in=True)]
    if e.scope is Scope.service and command != "select":
        return []
    if isinstance(spec, list):
        grants = list(spec)
    else:
        role = spec or least_role(bp, DEFAULT_CAPABILITY[command])
        grants = [Grant(min_role=role)]
        if e.access.own_rows_only and command in ("update", "delete") and e.scope is Scope.organization:
            # Your own rows with the command's role; anyone's with a role that both meets the command's
            # role and manages members (when that is the command's role itself, simply anyone's).
            manager = more_privileged(bp, role, least_role(bp, Capability.manage_members))
            grants = [Grant(min_role=role)] if manager == role else [Grant(min_role=role, own=True),
                                                                        Grant(min_role=manager)]
    if e.scope is Scope.user:
        grants = [g.narrowed(own=True) for g in grants]
    if command == "insert" and e.owner_column and not side:
        # The author of a new row is the caller: nobody inserts rows in someone else's name. (A private side
        # row's author is its parent row's: `_private_grants` says who may write it.)
        grants = [g.narrowed(own=True) for g in grants]
    if command in ("update", "delete"):
        grants = _within_select_roles(bp, e, grants)
    return grants


def restore_grants(bp: Blueprint, e: Entity) -> list[Grant]:
    """Who sees a soft-deleted entity's archived rows and restores them: its restore spec, else its
    delete grants. [] means only the service role."""
    if not e.soft_delete:
        return []
    spec = e.restore
    if spec is None:
        return command_grants(bp, e, "delete")
    grants = [Grant(min_role=spec)] if isinstance(spec, str) else list(spec)
    if e.scope is Scope.user:
        grants = [g.narrowed(own=True) for g in grants]
    return grants


def _within_select_roles(bp: Blueprint, e: Entity, grants: list[Grant]) -> list[Grant]:
    """Update and delete reach only rows the caller may select. When every select grant is a plain
    member grant, a member grant of these commands keeps only the roles that may also select (the
    same meaning, one membership test instead of two); other grants are left to `seen_by_select`."""
    select = command_grants(bp, e, "select")
    if not select or any(g.who not in ("min_role", "roles", "capability") or g.own or g.assigned or g.where
                         for g in select):
        return grants
    readers = {r for g in select for r in member_roles(bp, g) or []}
    names = [r.name for r in bp.tenancy.roles]
    out = []
    for g in grants:
        roles = member_roles(bp, g)
        if roles is None or set(roles) <= readers:
            out.append(g)
            continue
        kept = [r for r in roles if r in readers]
        if not kept:
            continue  # nobody this grant admits may see the rows
        who = {"min_role": None, "roles": None, "capability": None}
        who.update({"min_role": kept[-1]} if kept == names[: len(kept)] else {"roles": kept})
        out.append(g.narrowed(**who))
    return out


def bucket_grants(bp: Blueprint, bucket: Bucket, command: Command) -> list[Grant]:
    """The grants of `command` on a bucket's objects, OR-ed; insert always records the uploader."""
    spec = bucket.access.spec(command)
    if isinstance(spec, list):
        grants = list(spec)
    else:
        grants = [Grant(min_role=spec or least_role(bp, DEFAULT_CAPABILITY[command]))]
    if command == "insert":
        grants = [g.narrowed(own=True) for g in grants]
    return grants


def member_roles(bp: Blueprint, g: Grant) -> list[str] | None:
    """The exact roles a member grant admits (most privileged first); None for non-member grants."""
    names = [r.name for r in bp.tenancy.roles]
    if g.min_role is not None:
        return names[: names.index(g.min_role) + 1]
    if g.roles is not None:
        return [n for n in names if n in g.roles]
    if g.capability is not None:
        return bp.tenancy.holders(g.capability)
    return None


def linked_hops(bp: Blueprint, e: Entity, chain: list[str]) -> list[tuple[Entity, str]]:
    """(entity, column) for each hop of a linked chain; the last column holds the linked user."""
    hops = []
    current = e
    for i, col in enumerate(chain):
        hops.append((current, col))
        if i < len(chain) - 1:
            field = current.field(col)
            current = bp.entity(field.references) if field is not None and field.references else current
    return hops


def link_columns(bp: Blueprint) -> dict[str, set[str]]:
    """Entity -> its columns a linked grant reads (a hop of some chain, from any entity, personal data's
    readers included), its author column aside. Whom they name decides who outside the organisation reaches
    rows, so clients set them on insert only: a member re-linking a row to themselves would read what their
    role does not let them, and keep it after leaving (docs/access.md A09/A10)."""
    out: dict[str, set[str]] = {}
    for x in bp.entities:
        for command in ("select", "insert", "update", "delete"):
            for g in command_grants(bp, x, command):
                for ent, col in linked_hops(bp, x, g.linked) if g.linked else []:
                    # The author column and a private side's reference never change at all (immutable).
                    if col != ent.owner_column and not (ent.private_of and col == ent.fields[0].name):
                        out.setdefault(ent.name, set()).add(col)
    return out


def stamped_references(bp: Blueprint) -> dict[str, set[str]]:
    """Entity -> its references to other entities that clients set on insert only because the entity has
    server_set fields (docs/lifecycle.md L13): those values were stamped for the row the reference names, so moving
    the row to another parent (a month-old check-in onto a habit made today, a sign-off onto another document)
    would have the server attest what it never saw. A client may clear one; the service role moves rows. Left out:
    fields marked `movable`, user and member references, server_set references (no client writes them), a private
    side's reference to its row (immutable), the columns `link_columns` holds already (keep_links refuses the same
    moves), entities no client updates."""
    links = link_columns(bp)
    out: dict[str, set[str]] = {}
    for e in bp.entities:
        if not any(f.server_set for f in e.fields) or not command_grants(bp, e, "update"):
            continue
        side = e.fields[0].name if e.private_of else None
        cols = {f.name for f in e.fields if f.references and not f.movable and not f.server_set and f.name != side
                and not f.is_user_column and bp.entity(f.references) is not None} - links.get(e.name, set())
        if cols:
            out[e.name] = cols
    return out


def set_on_insert_columns(bp: Blueprint) -> dict[str, set[str]]:
    """Entity -> the references clients set on insert only (and may only clear after): the columns a linked grant
    reads (`link_columns`) and those of rows holding server_set fields (`stamped_references`)."""
    out = link_columns(bp)
    for entity, cols in stamped_references(bp).items():
        out[entity] = out.get(entity, set()) | cols
    return out


def covers(bp: Blueprint, wide: Grant, narrow: Grant) -> bool:
    """True when every caller and row `narrow` admits, `wide` admits too (a sufficient test)."""
    if wide.public or (wide.signed_in and not narrow.public):
        who = True
    elif wide.linked is not None or narrow.linked is not None:
        who = wide.linked == narrow.linked
    else:
        wide_roles, narrow_roles = member_roles(bp, wide), member_roles(bp, narrow)
        who = wide_roles is not None and narrow_roles is not None and set(narrow_roles) <= set(wide_roles)
    if not who:
        return False
    if wide.own and not narrow.own:
        return False
    if wide.assigned and wide.assigned != narrow.assigned:
        return False
    if wide.under and wide.under != narrow.under:
        return False
    if wide.visible and wide.visible != narrow.visible:
        return False
    if wide.where is not None:
        if narrow.where is None or narrow.where.column != wide.where.column:
            return False
        return {str(v) for v in narrow.where.values} <= {str(v) for v in wide.where.values}
    return True


def role_covers(bp: Blueprint, wide: str, narrow: str) -> bool:
    """True when role `wide` holds every right role `narrow` holds: each capability, and for every command of
    every entity (their private sides, restores and buckets too) a grant admitting `wide` to whatever a grant
    admits `narrow` to, and every member reference `narrow` may be named in (a sufficient test). Built-in
    capabilities and `min_role` grants follow the ranking; app-defined capabilities and `roles` grants need
    not, so a role may hold rights a higher one lacks (a dentist's x-rays, which the admin does not read)."""
    if wide == narrow:
        return True
    if not set(bp.tenancy.role(narrow).capabilities) <= set(bp.tenancy.role(wide).capabilities):
        return False
    as_wide = {"min_role": None, "capability": None, "roles": [wide]}
    for grants in _role_gated(bp):
        for g in grants:
            roles = member_roles(bp, g)
            if roles and narrow in roles and wide not in roles \
                    and not any(covers(bp, w, g.narrowed(**as_wide)) for w in grants):
                return False
    return not any(f.member_roles and narrow in f.member_roles and wide not in f.member_roles
                   for e in bp.entities for f in e.fields)


def _role_gated(bp: Blueprint) -> Iterator[list[Grant]]:
    """Every list of OR-ed grants the design has: each entity's commands and restores, each bucket's commands."""
    for e in bp.entities:
        for command in COMMANDS:
            yield command_grants(bp, e, command)
        yield restore_grants(bp, e)
    for bucket in bp.storage:
        for command in COMMANDS:
            yield bucket_grants(bp, bucket, command)


def ungrantable(bp: Blueprint) -> dict[str, list[str]]:
    """Manager role -> the roles at or below its rank it may not give (invite to, or change a member to),
    because they hold rights it lacks: a manager making a second account of theirs such a role would reach what
    their own role does not (docs/lifecycle.md L07, L17). The top role owns the organisation and gives every
    role; only roles that manage members give any. Empty when every role holds what the roles below it hold."""
    return {g: list(roles) for g, roles in _remember((id(bp), "ungrantable"), bp, lambda: _ungrantable(bp)).items()}


def _ungrantable(bp: Blueprint) -> dict[str, list[str]]:
    names = [r.name for r in bp.tenancy.roles]
    managers = bp.tenancy.holders(Capability.manage_members)
    out: dict[str, list[str]] = {}
    for i, granter in enumerate(names[1:], start=1):
        if granter in managers:
            lacking = [r for r in names[i:] if not role_covers(bp, granter, r)]
            if lacking:
                out[granter] = lacking
    return out


def may_give_role(bp: Blueprint, granter: str, role: str) -> bool:
    """A manager holding `granter` gives `role` (an invitation, a role change): at most at their own rank, and
    only roles whose every right they hold (the top role gives every role)."""
    names = [r.name for r in bp.tenancy.roles]
    return (granter in bp.tenancy.holders(Capability.manage_members) and names.index(role) >= names.index(granter)
            and role not in ungrantable(bp).get(granter, []))


def seen_by_select(bp: Blueprint, e: Entity, g: Grant) -> bool:
    """Update and delete reach only rows the caller may also select: True when grant `g` of one of
    those commands needs no select condition added, because some select grant covers it."""
    return any(covers(bp, s, g) for s in command_grants(bp, e, "select"))


def erased_with_author(bp: Blueprint, e: Entity) -> bool:
    """A private side (personal data) that only the row's author reads: once their account is gone nobody but the
    service role would, so it goes with the account (docs/lifecycle.md L01: habit-tracker's check-in notes)."""
    if e.private_of is None or not e.owner_column:
        return False
    grants = command_grants(bp, e, "select")
    return bool(grants) and all(g.own and g.is_member_grant for g in grants)


def audit_readers(bp: Blueprint, table: str) -> list[str]:
    """The roles that read `table`'s entries in audit_logs (most privileged first): those that read the audit
    trail (manage_members and above) and may also read every row of the table (a select grant with no row
    condition admits them; with soft delete, a restore grant too). An entry copies its row, so nobody reads in
    the log a row their policies hide."""
    managers = member_roles(bp, Grant(min_role=least_role(bp, Capability.manage_members))) or []
    e = bp.entity(table)
    if e is None:
        return managers  # organizations, organization_members, invitations: managers read all of them
    select = command_grants(bp, e, "select")
    readers = [r for r in managers if any(covers(bp, g, Grant(roles=[r])) for g in select)]
    if e.soft_delete:
        # Archived rows are their restorers' alone, and their changes are logged too.
        restorers = restore_grants(bp, e)
        readers = [r for r in readers if any(covers(bp, g, Grant(roles=[r])) for g in restorers)]
    parent = bp.entity(e.private_of) if e.private_of else None
    if parent is not None:
        # A row's personal data is read only where the row is (docs/access.md A23): an entry of it names a row,
        # its author and who wrote it, so only those who read every row of the parent read it.
        readers = [r for r in readers if r in audit_readers(bp, parent.name)]
    return readers
