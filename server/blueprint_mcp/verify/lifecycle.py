"""Lifecycle scenarios: the attack matrix tests a still world; these move it through time.

Accounts are deleted, members removed or demoted, invitations issued, expired, reused and
accepted, organisations deleted by co-owners, rows backdated, audit rows rewritten. Each scenario
is one case of the same `blueprint_tests.outcome(...)` function (so it also runs in the pgTAP file):
an optional setup as the table owner, one statement as an actor (or as the auth service), and a
probe that measures the world afterwards. Expectations follow from the blueprint's meaning, written
here independently of the SQL generator (docs/lifecycle.md is the table they implement).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..model import Blueprint, Capability, Scope
from ..model.meaning import command_grants, may_give_role, restore_grants, stamped_references, ungrantable
from ..model.schema import Schema
from ..model.names import verb_name
from ..sql.ident import ident, literal, qname
from .conditions import move_row
from .fixtures import (SERVER_COLUMNS, admit, clashes, clashing_rows, clearing_sql, client_writable, for_own_parent,
                       make_distinct, side_of, taken_with, unique_keys, value_for)
from .oracle import ALLOWED, DENIED, from_literal
from .world import ORG, Implicit, Row, World, email_of, insert_sql, stable_id, where_key

AUTH_SERVICE = {"api_role": "none", "claims": {}}  # GoTrue deleting a user: the session user, no JWT
SERVICE_ROLE = {"api_role": "service_role", "claims": {"role": "service_role"}}
LONG_AGO = "'2001-01-01 00:00:00+00'::timestamptz"

MakeCase = Callable[..., object]


def token_hash(token: str) -> str:
    return f"sha256(convert_to({literal(token)}, 'UTF8'))"


def invitation_sql(w: World, inviter: str, email: str, role: str, token: str, org: str = "org1",
                   expires: str | None = None) -> str:
    """As the table owner: a pending invitation whose secret is `token` (stored as its hash only)."""
    inv_id = stable_id("invitation", org, inviter, email, token)
    sql = (f"insert into public.invitations (id, {ORG}, email, role, invited_by) values ({literal(inv_id)}, "
           f"{literal(w.orgs[org])}, {literal(email)}, {literal(role)}, {literal(w.actor_id(inviter))}); "
           f"insert into private.invitation_tokens (invitation_id, token_hash) values ({literal(inv_id)}, "
           f"{token_hash(token)});")
    if expires:
        sql += f" update public.invitations set expires_at = {expires} where id = {literal(inv_id)};"
    return sql


def as_user(w: World, actor: str, sql: str) -> str:
    """Setup SQL run with `actor`'s JWT claims (still as the table owner), then the claims cleared."""
    return (f"select set_config('request.jwt.claims', {literal(json.dumps(w.actors[actor].claims()))}, true); {sql} "
            "select set_config('request.jwt.claims', '', true);")


def lifecycle_cases(bp: Blueprint, schema: Schema, w: World, oracle, make: MakeCase,
                    make_values) -> list:
    out: list = []

    def case(name: str, table: str, actor: str, sql: str, expected: str, kind: str = "probe",
             probe: str | None = None, setup: str | None = None, **who) -> None:
        out.append(make(table, "lifecycle", actor, None, kind, sql, expected, attack=name, probe=probe,
                        setup=setup, **who))

    roles = [r.name for r in bp.tenancy.roles]
    top, writer = roles[0], bp.tenancy.default_member_role.name
    manager_role = bp.tenancy.min_role(Capability.manage_members)
    manager = manager_role.name if manager_role else top
    enums = {f"public.{e.name}": e.values for e in schema.enums}
    _account_deletion(bp, w, case, top)
    _lone_team(bp, schema, w, case)
    _erased_personal_data(bp, w, case)
    if schema.table("audit_logs") is not None:
        _erased_audit_entries(bp, w, case)
    _children_of_deleted_users(bp, schema, w, case, writer, top, enums, make_values)
    if schema.table("invitations") is not None:
        _invitations(bp, schema, w, case, roles, manager, writer)
        _role_changes(w, oracle, case, roles, manager, writer)
    _organization_deletion(bp, w, case, roles)
    _co_owners(bp, w, case, roles)
    _server_columns(bp, schema, w, oracle, case, writer, enums, make_values)
    _stamped_moves(bp, schema, w, oracle, case, writer, top)
    _under_archived_rows(bp, schema, w, oracle, case, writer, enums, make_values)
    if schema.table("audit_logs") is not None:
        _audit_log(bp, schema, w, case, top)
    _personal_data(bp, w, oracle, case)
    _side_authors(schema, w, oracle, case, enums, make_values)
    _personal_workspaces(bp, schema, w, case)
    _restoring(bp, w, oracle, case)
    _demoted_but_named(bp, schema, w, oracle, case)
    return out


def _demoted_but_named(bp: Blueprint, schema: Schema, w: World, oracle, case) -> None:
    """A member named in a column limited to roles (member_roles), demoted later, stays named: roles are checked when
    the column is written (docs/access.md), so the row's editors still edit it (red team 13: the check ran on every
    update of the row, and a demoted dentist's appointments could be edited by nobody, nor emptied by a foreign key
    when someone else left). A row naming a holder of those roles is taken from the world, or one is made to name
    one first (as the table owner: the column is nullable and the lean fixtures leave it empty)."""
    ranked = [r.name for r in bp.tenancy.roles]
    org1 = literal(w.orgs["org1"])
    for e in bp.entities:
        t = schema.table(e.name)
        if not e.is_tenant or e.private_of is not None or t is None:
            continue
        references = {c for fk in t.foreign_keys for c in fk.columns}
        writable = client_writable(t, "update")
        col = next((c.name for c in t.columns if c.name in writable and c.name not in references
                    and c.name not in SERVER_COLUMNS), None)
        rows = [r for r in w.rows if r.table == e.name and r.org == "org1" and r.purpose == "matrix" and "id" in r.key]
        for f in (f for f in e.fields if f.references_member and f.member_roles):
            lower = next((r for r in reversed(ranked) if r not in f.member_roles), None)
            holders = [a for a in w.actors.values() if a.user_id and a.name != w.owners["org1"]
                       and a.memberships.get("org1") in f.member_roles]
            found = next(((r, a, "") for r in rows for a in holders
                          if r.values.get(f.name) == literal(a.user_id)), None)
            # Named as the table owner, then demoted: the state is the same whoever it was before (replica mode
            # checks nothing), so a member of another role stands in where only the primary owner holds these
            # roles (member_roles: [owner]), and a required column is renamed where no key makes it unique.
            members = holders or [a for a in w.actors.values() if a.user_id and a.name != w.owners["org1"]
                                  and a.memberships.get("org1")]
            unique = f.unique or any(f.name in k for k in e.unique_together)
            if found is None and (f.nullable or not unique) and rows and members:
                row, named = rows[0], members[0]
                # A kind of row that may name someone there (`requires` may ask the column empty: random fuzz),
                # its other fields settled as the rules ask; replica mode skips triggers, not CHECK constraints.
                values = admit(t, "org1", w, row.author, {**row.values, f.name: literal(named.user_id)}, [f.name])
                changed = {c: v for c, v in (values or {}).items()
                           if row.values.get(c) != v and c != "id" and not isinstance(v, Implicit)}
                if values is not None:
                    found = (Row(row.table, row.org, row.author, row.key, row.purpose, values=values), named,
                             f" update {qname('public', e.name)} set "
                             + ", ".join(f"{ident(c)} = {v}" for c, v in changed.items())
                             + f" where {where_key(row.key)};")
            if lower is None or col is None or found is None:
                continue
            row, named, naming = found
            editor = next((a for a in w.actors.values() if a.user_id and a.name != named.name
                           and oracle.expect(a, "update", e.name, row, "org1") == ALLOWED), None)
            if editor is None:
                continue
            setup = (" select set_config('session_replication_role', 'replica', true);" + naming +
                     f" update public.organization_members set role = {literal(lower)} where {ORG} = {org1} "
                     f"and user_id = {literal(named.user_id)}; select set_config('session_replication_role', "
                     "'origin', true);")
            case(f"{editor.name} edits a {e.name} row naming {named.name} after {named.name} is made {lower}", e.name,
                 editor.name, f"update {qname('public', e.name)} set {ident(col)} = {ident(col)} "
                 f"where {where_key(row.key)}", ALLOWED, kind="rows", setup=setup)


def _restoring(bp: Blueprint, w: World, oracle, case) -> None:
    """Archived rows come back through restore_<entity>(id), for those who may restore them only."""
    for e in bp.entities:
        if not (e.soft_delete and e.scope in (Scope.organization, Scope.user)) or not restore_grants(bp, e):
            continue  # nobody but the service role restores: there is no restore_<entity>()
        row = next((r for r in w.rows if r.table == e.name
                    and from_literal(r.values.get("archived_at", "null")) is not None), None)
        if row is None:
            continue
        call = f"select public.{ident(verb_name('restore', e.singular))}({row.key['id']})"
        back = f"select count(*) from {qname('public', e.name)} where {where_key(row.key)} and archived_at is null"
        who: dict[bool, str] = {}  # the first actor who may restore it, and the first who may not
        for a in w.actors.values():
            if a.user_id:
                who.setdefault(oracle.may_restore(a, e.name, row), a.name)
        for may, name in who.items():
            case(f"{name} restores an archived {e.name} row", e.name, name, call, ALLOWED if may else DENIED,
                 probe=back)
        # An archived row under an archived row, by someone who would restore it but for that (docs/access.md A24).
        under = next((r for r in w.rows if r.table == e.name and "id" in r.key
                      and from_literal(r.values.get("archived_at", "null")) is not None
                      and oracle.under_archived(e, r)), None)
        restorer = next((a for a in w.actors.values() if a.user_id and under is not None
                         and oracle.may_restore(a, e.name, under, parents=False)), None)
        if restorer is not None:
            case(f"{restorer.name} restores an archived {e.name} row under an archived row", e.name, restorer.name,
                 f"select public.{ident(verb_name('restore', e.singular))}({under.key['id']})",
                 ALLOWED if oracle.may_restore(restorer, e.name, under) else DENIED,
                 probe=f"select count(*) from {qname('public', e.name)} where {where_key(under.key)} "
                       "and archived_at is null")


def _personal_data(bp: Blueprint, w: World, oracle, case) -> None:
    """A member who reads a row but is not one of its pii readers reads the row's personal data."""
    for side in bp.entities:
        if side.private_of is None:
            continue
        ref = side.fields[0].name
        for r in (r for r in w.rows if r.table == side.name and r.purpose == "matrix"):
            parent = next((p for p in w.rows if p.table == side.private_of and p.key.get("id") == r.values.get(ref)),
                          None)
            reader = next((a for a in w.actors.values() if parent is not None
                           and oracle.expect(a, "select", side.private_of, parent, parent.org) == ALLOWED
                           and oracle.expect(a, "select", side.name, r, r.org) == DENIED), None)
            if reader is None:
                continue
            case(f"{reader.name} reads the personal data of a {side.private_of} row they may see", side.name,
                 reader.name, f"select count(*) from {qname('public', side.name)} where {where_key(r.key)}", DENIED,
                 kind="count")
            break


def _side_authors(schema: Schema, w: World, oracle, case, enums, make_values) -> None:
    """A personal-data side row is its row's author's, whoever writes it first (docs/access.md A23: its take_author
    trigger sets the author column from the row): a member who may write the side of someone else's row and
    does so first must not become its author, and so its reader (red team 29: an admin gave Bob's claim an IBAN of
    their choosing and read what Bob entered later)."""
    for t in schema.tables:
        side = side_of(t)
        if not side:
            continue
        owner, ref, parent_table = side[0], side[1], side[2]
        for parent in (r for r in w.rows if r.table == parent_table and r.org == "org1" and r.purpose == "matrix"
                       and r.author is not None and "id" in r.key
                       and from_literal(r.values.get("archived_at", "null")) is None):
            values = {**make_values(t, "org1", w, parent.author, 9950, enums, with_id=False), ref: parent.key["id"]}
            values.pop(owner, None)  # the client sends no author: its default, or the trigger, gives it
            writer = next((a for a in w.actors.values() if a.user_id and a.name != parent.author and oracle.expect(
                a, "insert", t.name, Row(t.name, "org1", a.name, {}, values=values), "org1") == ALLOWED), None)
            if writer is None:
                continue
            case(f"{writer.name} writes the personal data of {parent.author}'s {parent_table} row first and becomes "
                 "its author (A23)", t.name, writer.name, insert_sql(t, values), DENIED,
                 probe=f"select count(*) from {qname(t.schema_name, t.name)} where {ident(ref)} = {parent.key['id']} "
                       f"and {ident(owner)} = {literal(writer.user_id)}",
                 setup=clearing_sql(t, values, w))
            break


def _personal_workspaces(bp: Blueprint, schema: Schema, w: World, case) -> None:
    """A personal workspace has exactly one member (L20): its owner invites nobody into it, and not even the
    service role adds a second member (red team 29: a guest's rows and audit entries there went with the owner's
    account, as that one person's history)."""
    host = w.who("outsider")  # in no organisation: their workspace is there whether users hold one membership or many
    guest = bp.tenancy.default_member_role.name
    if not bp.tenancy.personal_workspaces or host is None or guest not in w.actors:
        return
    workspace = (f"(select o.id from public.organizations o where o.is_personal and o.owner_user_id = "
                 f"{literal(w.actor_id(host))})")
    if schema.table("invitations") is not None:
        case(f"{host} invites someone into their personal workspace (L20)", "invitations", host,
             f"select public.create_invitation({workspace}, 'guest@example.com', {literal(guest)})", DENIED,
             probe=f"select count(*) from public.invitations where {ORG} = {workspace}")
    case(f"the service role adds a second member ({guest}) to {host}'s personal workspace (L20)",
         "organization_members", host,
         f"insert into public.organization_members ({ORG}, user_id, role) values ({workspace}, "
         f"{literal(w.actor_id(guest))}, {literal(guest)})", DENIED,
         probe=f"select count(*) from public.organization_members where {ORG} = {workspace} and user_id = "
               f"{literal(w.actor_id(guest))}", **SERVICE_ROLE)


# --- accounts ---------------------------------------------------------------------------------------

# Core and analytics tables whose rows are about one user (their user column cascades): the fixture
# row's author is that user.
USER_ROWS = ("profiles", "organization_members", "membership_changes", "sessions", "feature_flag_assignments")


def goes_with_account(bp: Blueprint, w: World, victim: str) -> list[Row]:
    """The fixture rows that are the victim's to lose: their profile and memberships, the invitations they
    accepted, rows of `user` scope entities they own (private to them), rows holding their id in a user column declared
    `on_delete: cascade`, and every row that is part of (cascades from) one of those. Rows they merely
    wrote in an organisation stay: the organisation keeps its data when a member goes."""
    uid = literal(w.actor_id(victim))
    # Teams the victim owns that nobody else belongs to are deleted with the account, whole.
    alone = {label for label, owner in w.owners.items() if owner == victim
             and not any(a.name != victim and label in a.memberships for a in w.actors.values())}
    mine: list[Row] = [r for r in w.rows if r.org in alone]
    seen = {id(r) for r in mine}  # rows by identity: two fixture rows may hold equal values
    for r in w.rows:
        if id(r) in seen:
            continue
        e = bp.entity(r.table)
        if e is None:
            # An invitation the victim accepted holds their address: it goes with the account (L01).
            if (r.table in USER_ROWS and r.author == victim) or \
                    (r.table == "invitations" and r.values.get("accepted_by") == uid):
                mine.append(r)
            continue
        owned = (e.scope is Scope.user or _only_its_author_reads(bp, e)) and r.author == victim
        if owned or any(f.is_user_column and f.effective_on_delete == "cascade" and r.values.get(f.name) == uid
                        for f in e.fields):
            mine.append(r)
            seen.add(id(r))
    # (rows keyed otherwise, a membership by organisation and user, name no id: None in here would take every row
    # whose cascading reference is left empty)
    ids = {r.key["id"] for r in mine if "id" in r.key}
    grew = True
    while grew:
        grew = False
        for r in w.rows:
            e = bp.entity(r.table)
            if id(r) in seen:
                continue
            if e is None:
                # A core row (an invitation's token) goes with the row its cascading reference names.
                if any(_cascades_from(w, r, row) for row in mine):
                    mine.append(r)
                    seen.add(id(r))
                    grew = True
                continue
            parts = [f for f in e.fields if f.is_reference and not f.is_user_column and f.effective_on_delete == "cascade"]
            if any(r.values.get(f.name) in ids for f in parts):
                mine.append(r)
                seen.add(id(r))
                if "id" in r.key:
                    ids.add(r.key["id"])
                grew = True
    return mine


def release_member_sql(w: World, org: str, actor: str) -> str:
    """As the table owner, drop the rows whose member references name `actor` in `org` (a NOT NULL member
    reference restricts, so a member who is still assigned cannot leave): a scenario that removes the member
    then tests what it means to test, not the assignment. Foreign keys are off only for these deletes."""
    refs = [(t, fk) for t in (w.schema.tables if w.schema is not None else []) for fk in t.foreign_keys
            if fk.ref_table == "organization_members" and set(fk.ref_columns) == {ORG, "user_id"}]
    if not refs:
        return ""
    value = {ORG: literal(w.orgs[org]), "user_id": literal(w.actor_id(actor))}
    deletes = " ".join(
        f"delete from {qname(t.schema_name, t.name)} where "
        + " and ".join(f"{ident(c)} = {value[rc]}" for c, rc in zip(fk.columns, fk.ref_columns)) + ";"
        for t, fk in refs)
    return (" select set_config('session_replication_role', 'replica', true); " + deletes
            + " select set_config('session_replication_role', 'origin', true);")


def _schema_table(w: World, table: str):
    """The world's table of that name, in whichever schema (private.invitation_tokens too)."""
    return next((t for t in w.schema.tables if t.name == table), None) if w.schema is not None else None


def _cascades_from(w: World, child: Row, parent: Row) -> bool:
    """The core table's own foreign key from `child` to `parent` deletes it with its parent."""
    t = _schema_table(w, child.table)
    have = child.values | child.key
    theirs = parent.values | parent.key
    return t is not None and any(
        fk.on_delete == "cascade" and fk.ref_table == parent.table
        and all(have.get(c) is not None and have.get(c) == theirs.get(rc) for c, rc in zip(fk.columns, fk.ref_columns))
        for fk in t.foreign_keys)


def _table_name(w: World, table: str) -> str:
    t = _schema_table(w, table)
    return qname(t.schema_name if t is not None else "public", table)


def _only_its_author_reads(bp: Blueprint, e) -> bool:
    """Personal data (a private side) that no client but its author may read: it goes with their account, where
    an organisation's other rows stay (L01). A side's readers are its select grants; each must say own."""
    readers = command_grants(bp, e, "select") if e.private_of else []
    return bool(readers) and not any(not g.own or g.public or g.signed_in or g.linked for g in readers)


def _erased_personal_data(bp: Blueprint, w: World, case) -> None:
    """Deleting an account erases the personal data only its owner read (L01), for the first member who wrote
    some and whose deletion nothing holds back."""
    owners = set(w.owners.values())  # a primary owner's deletion may be refused (L03): nothing to measure
    for actor in w.actors.values():
        rows = [r for r in w.rows if r.author == actor.name and r.key and (e := bp.entity(r.table)) is not None
                and _only_its_author_reads(bp, e)]
        if actor.user_id is None or actor.name in owners or not rows or _held_back(bp, w, actor.name):
            continue
        left = " + ".join(f"(exists (select 1 from {_table_name(w, r.table)} where {where_key(r.key)}))::int"
                          for r in rows)
        case(f"deleting {actor.name}'s account erases the personal data only they read", "auth.users", actor.name,
             f"delete from auth.users where id = {literal(actor.user_id)}", DENIED, probe=f"select {left}",
             **AUTH_SERVICE)
        return


def _erased_audit_entries(bp: Blueprint, w: World, case) -> None:
    """Deleting an account takes the user's personal workspace, and its audit entries with it (L01; red team 26: a
    year of a deleted user's workspace stayed for the service role); a team keeps its log (red team 27). Entries of
    the personal workspace are counted after the deletion."""
    owners = set(w.owners.values())  # a primary owner's deletion may be refused (L03): nothing to measure
    for actor in w.actors.values():
        if actor.user_id is None or actor.name in owners or _held_back(bp, w, actor.name):
            continue
        # The organisations the user owns, noted before the deletion (the world's own setup removed some personal
        # workspaces already, and their entries stay: random fuzz).
        noted = (f"select pg_catalog.set_config('blueprint_tests.owned', coalesce((select string_agg(o.id::text, ',') "
                 f"from public.organizations o where o.owner_user_id = {literal(actor.user_id)} and o.is_personal), "
                 "''), true)")
        left = ("select count(*) from public.audit_logs a where a.organization_id::text = any (string_to_array("
                "current_setting('blueprint_tests.owned', true), ',')) and not exists "
                "(select 1 from public.organizations o where o.id = a.organization_id)")
        case(f"deleting {actor.name}'s account erases the audit entries of their personal workspace",
             "auth.users", actor.name, f"delete from auth.users where id = {literal(actor.user_id)}", DENIED,
             probe=left, setup=noted, **AUTH_SERVICE)
        return


def _lost_rows_probe(bp: Blueprint, w: World, victim: str) -> str:
    """How many rows that were not the victim's are gone (fixture rows only: those are the ones we know)."""
    theirs = {id(r) for r in goes_with_account(bp, w, victim)}
    terms = [f"(not exists (select 1 from {_table_name(w, r.table)} where {where_key(r.key)}))::int"
             for r in w.rows if id(r) not in theirs and r.key]
    return "select " + (" + ".join(terms) or "0")


def _held_back(bp: Blueprint, w: World, victim: str) -> bool:
    """A row that outlives the victim's account names them in a user column that restricts (a required
    reference without on_delete), or names a row that goes with the account through a reference that restricts
    (an invoice of reference data the account's deletion cascades to): the database refuses to delete the
    account, as it must (L04)."""
    uid = literal(w.actor_id(victim))
    going = goes_with_account(bp, w, victim)
    theirs = {id(r) for r in going}
    ids = {r.key["id"] for r in going if "id" in r.key}
    for r in w.rows:
        e = bp.entity(r.table)
        if e is None or id(r) in theirs:
            continue
        for f in e.fields:
            if f.effective_on_delete not in ("restrict", "no action"):
                continue
            if f.is_user_column and r.values.get(f.name) == uid:
                return True
            if f.is_reference and not f.is_user_column and r.values.get(f.name) in ids:
                return True
    return False


def _account_deletion(bp: Blueprint, w: World, case, top: str) -> None:
    for actor in w.actors.values():
        if actor.user_id is None:
            continue
        # Deleting any account (GoTrue's admin API runs as the auth service) loses nobody else's rows:
        # either the account goes and others' rows stay, or the deletion is refused.
        case(f"deleting {actor.name}'s account loses no row another user wrote", "auth.users", actor.name,
             f"delete from auth.users where id = {literal(actor.user_id)}", DENIED,
             probe=_lost_rows_probe(bp, w, actor.name), **AUTH_SERVICE)
    gone = "select (not exists (select 1 from auth.users where id = {}))::int"
    owner = w.owners["org1"]
    if any(a.memberships.get("org1") and a.name != owner for a in w.actors.values()):
        case("the primary owner of a team with members deletes their account", "auth.users", owner,
             "select public.delete_my_account()", DENIED, probe=gone.format(literal(w.actor_id(owner))))
    else:  # personal workspaces only: org1 is the owner's alone, and goes with their account
        case("the owner of a workspace nobody else belongs to deletes their account", "auth.users", owner,
             "select public.delete_my_account()", DENIED if _held_back(bp, w, owner) else ALLOWED,
             probe=gone.format(literal(w.actor_id(owner))))
    loner = w.who("outsider")
    case("a user in no team deletes their account", "auth.users", loner,
         "select public.delete_my_account()", DENIED if _held_back(bp, w, loner) else ALLOWED,
         probe=gone.format(literal(w.actor_id(loner))))
    second = next((a for a in w.actors.values() if a.memberships.get("org1") and a.name != owner), None)
    if second is not None and bp.tenancy.team_organizations:
        promoted = (f"update public.organization_members set role = {literal(top)} where {ORG} = "
                    f"{literal(w.orgs['org1'])} and user_id = {literal(second.user_id)};")
        is_owner = (f"select count(*) from public.organizations where id = {literal(w.orgs['org1'])} "
                    f"and owner_user_id = {literal(second.user_id)}")
        case(f"the primary owner transfers ownership to {second.name}", "organizations", owner,
             f"select public.transfer_ownership({literal(w.orgs['org1'])}, {literal(second.user_id)})", ALLOWED,
             probe=is_owner)
        case(f"{second.name} takes ownership for themself", "organizations", second.name,
             f"select public.transfer_ownership({literal(w.orgs['org1'])}, {literal(second.user_id)})", DENIED,
             probe=is_owner, setup=promoted)


def _lone_team(bp: Blueprint, schema: Schema, w: World, case) -> None:
    """A team nobody else belongs to goes with its owner's account (L03), and keeps its audit entries (L01, L19): a
    user in no team first makes one, as the table owner (red team 29: an account deletion that kept such teams was
    refused on their owner key, and one that erased every gone organisation's log took the team's history)."""
    loner = w.who("outsider")
    if not bp.tenancy.team_organizations or loner is None or _held_back(bp, w, loner):
        return
    uid = literal(w.actor_id(loner))
    team = literal(stable_id("org", "lone team"))
    # (The model refuses one membership per user beside personal workspaces and teams: the loner is free to own it.)
    setup = (f"insert into public.organizations (id, name, slug, owner_user_id) values ({team}, 'Lone team', "
             f"'lone-team', {uid});")
    account_gone = f"(not exists (select 1 from auth.users where id = {uid}))"
    case(f"{loner}, a team's only member, deletes their account and the team goes with it (L03)", "auth.users",
         loner, "select public.delete_my_account()", ALLOWED, setup=setup,
         probe=f"select ({account_gone} and not exists (select 1 from public.organizations where id = {team}))::int")
    if schema.table("audit_logs") is None:
        return
    entry = literal(stable_id("audit", "lone team"))
    case(f"deleting the account of {loner}, a team's only member, erases the team's audit entries (L19)",
         "auth.users", loner, f"delete from auth.users where id = {uid}", DENIED,
         setup=setup + f" insert into public.audit_logs (id, {ORG}, action, table_name) values ({entry}, {team}, "
                       "'INSERT', 'organizations');",
         probe=f"select ({account_gone} and not exists (select 1 from public.audit_logs where id = {entry}))::int",
         **AUTH_SERVICE)


def _children_of_deleted_users(bp: Blueprint, schema: Schema, w: World, case, victim: str, other: str, enums,
                               make_values) -> None:
    """Someone else's row inside a row the victim wrote (a task in their project) outlives their account,
    unless the parent row is the victim's own to lose (declared part of the user)."""
    if victim == other:
        return
    theirs = {id(r) for r in goes_with_account(bp, w, victim)}
    for e in bp.entities:
        if e.private_of and _only_its_author_reads(bp, e):
            continue  # a side row takes its row's author: personal data under the victim's row is the victim's
        t = schema.table(e.name)
        for f in e.fields:
            if not f.is_reference or f.is_user_column:
                continue
            parent = next((r for r in w.rows if r.table == f.references and r.author == victim and r.org in ("org1", None)
                           and "id" in r.key), None)
            if parent is None or id(parent) in theirs and f.effective_on_delete == "cascade":
                continue
            org = parent.org if e.is_tenant else None
            if e.is_tenant and parent.org is None:
                continue
            # Client-like values (with_id=True would plan support rows into the world while cases are built).
            values = make_values(t, org, w, other, 9900 + len(w.rows), enums, with_id=False)
            if e.owner_column:
                values[e.owner_column] = literal(w.actor_id(other))
            values[f.name] = parent.key["id"]
            values = admit(t, org, w, other, values, [f.name])
            if values is None:
                continue  # no kind of row references a parent (requires)
            if any(g.is_user_column and g.effective_on_delete == "cascade" and
                   values.get(g.name) == literal(w.actor_id(victim)) for g in e.fields):
                continue  # the row names the victim in a column that goes with their account (the only admin)
            # Fresh unique keys: a clash would be cleared with the rows that name the cleared one (orphans), and in
            # a cycle of references (items -> time -> items) that took the very parent the row goes into.
            make_distinct(t, org, w, other, 9900 + len(w.rows), enums, values, support=False)
            if values.get(f.name) != parent.key["id"]:
                # A key on the reference (one side row per row) moved the row under another parent: the case
                # asks of that one, unless it goes with the account (random fuzz: a side row moved under a
                # membership row naming the victim, which cascades with their membership).
                moved = values.get(f.name)
                parent = next((r for r in w.rows if r.table == f.references and r.key.get("id") == moved), None)
                if parent is None or id(parent) in theirs and f.effective_on_delete == "cascade":
                    continue
            if id(parent) in taken_with(w, clashing_rows(t, values, w)):
                continue  # a key no fresh value frees (a user column) is cleared, and the parent went with it (fuzz)
            child = stable_id("child", e.name, f.name)
            values["id"] = literal(child)
            case(f"deleting {victim}'s account keeps {other}'s {e.name} row in their {f.references}", e.name,
                 victim, f"delete from auth.users where id = {literal(w.actor_id(victim))}", DENIED,
                 probe=f"select (not exists (select 1 from {qname('public', e.name)} where id = {literal(child)}))::int",
                 setup=(clearing_sql(t, values, w, orphans=True) or "") + " "
                 + as_user(w, other, insert_sql(t, values) + ";"),
                 **AUTH_SERVICE)


# --- invitations --------------------------------------------------------------------------------------

def _invitations(bp: Blueprint, schema: Schema, w: World, case, roles: list[str], manager: str,
                 writer: str) -> None:
    invitee = w.who("outsider")
    org1 = literal(w.orgs["org1"])
    inviter = manager if manager in w.actors else roles[0]

    def membership_of(actor: str) -> str:
        return (f"select count(*) from public.organization_members where {ORG} = {org1} and user_id = "
                f"{literal(w.actor_id(actor))}")

    def leave(actor: str) -> str:  # without releasing their assignments first (see release_member_sql)
        return (f" delete from public.organization_members where {ORG} = {org1} and user_id = "
                f"{literal(w.actor_id(actor))};")

    member_of = membership_of(invitee)
    accept = "select public.accept_invitation({})"
    email = email_of(w.actors[invitee])
    # The least role the inviter gives (the default member role may rank above them; the least role may hold a
    # right they lack).
    writer = next(r for r in reversed(roles) if may_give_role(bp, inviter, r))

    case("the invitee accepts (address in another case)", "invitations", invitee, accept.format(literal("tok-ok")),
         ALLOWED, probe=f"{member_of} and role = {literal(writer)}",
         setup=invitation_sql(w, inviter, email.upper(), writer, "tok-ok"))
    case("an expired invitation is accepted", "invitations", invitee, accept.format(literal("tok-old")), DENIED,
         probe=member_of, setup=invitation_sql(w, inviter, email, writer, "tok-old", expires="now() - interval '1 second'"))
    case("an invitation addressed to someone else is accepted", "invitations", invitee,
         accept.format(literal("tok-other")), DENIED, probe=member_of,
         setup=invitation_sql(w, inviter, "someone.else@example.com", writer, "tok-other"))
    case("an invitation is accepted with an unconfirmed address", "invitations", invitee,
         accept.format(literal("tok-unconfirmed")), DENIED, probe=member_of,
         setup=invitation_sql(w, inviter, email, writer, "tok-unconfirmed")
         + f" update auth.users set email_confirmed_at = null where id = {literal(w.actor_id(invitee))};")
    # Leaving deletes the invitation one joined by (L11), so a second use is tried after a demotion: the old
    # invitation would lift the member back to the role it offered.
    below = roles[roles.index(inviter) + 1:]
    if may_give_role(bp, inviter, inviter) and below:
        case("an invitation is used twice (accepted, demoted, accepted again)", "invitations", invitee,
             accept.format(literal("tok-twice")), DENIED, probe=f"{member_of} and role = {literal(inviter)}",
             setup=invitation_sql(w, inviter, email, inviter, "tok-twice")
             + " " + as_user(w, invitee, accept.format(literal("tok-twice")) + ";")
             + f" update public.organization_members set role = {literal(below[-1])} where {ORG} = {org1} "
               f"and user_id = {literal(w.actor_id(invitee))};")
    case("a made-up token is accepted", "invitations", invitee, accept.format(literal("tok-guess")), DENIED,
         probe=member_of)
    # An account goes with its address: the invitations it accepted (admins read them) keep nothing of it (L01).
    case("an account deleted after accepting an invitation leaves its address on it", "invitations", invitee,
         "select public.delete_my_account()", DENIED,
         probe=f"select count(*) from public.invitations where lower(email) = {literal(email.lower())}",
         setup=invitation_sql(w, inviter, email, writer, "tok-kept") + " "
         + as_user(w, invitee, accept.format(literal("tok-kept")) + ";"))
    case("a member who leaves after accepting an invitation leaves their address on it", "invitations", invitee,
         leave(invitee).strip(), DENIED,
         probe=f"select count(*) from public.invitations where lower(email) = {literal(email.lower())}",
         setup=invitation_sql(w, inviter, email, writer, "tok-left") + " "
         + as_user(w, invitee, accept.format(literal("tok-left")) + ";"))
    if inviter != roles[0]:
        case(f"an invitation from a removed {inviter} is accepted", "invitations", invitee,
             accept.format(literal("tok-removed")), DENIED, probe=member_of,
             setup=invitation_sql(w, inviter, email, inviter, "tok-removed")
             + release_member_sql(w, "org1", inviter) + leave(inviter))
        lower = roles[roles.index(inviter) + 1:]
        if lower:
            case(f"an invitation at {inviter} rank from a demoted {inviter} is accepted", "invitations", invitee,
                 accept.format(literal("tok-demoted")), DENIED, probe=member_of,
                 setup=invitation_sql(w, inviter, email, inviter, "tok-demoted")
                 + f" update public.organization_members set role = {literal(lower[0])} where {ORG} = {org1} "
                   f"and user_id = {literal(w.actor_id(inviter))};")
    removed = roles[-1]  # a member sent an invitation (a promotion), then removed before accepting it
    if removed in w.actors and removed not in (roles[0], inviter):
        case(f"an invitation sent to a {removed} who is then removed is accepted", "invitations", removed,
             accept.format(literal("tok-gone")), DENIED,
             probe=membership_of(removed),
             setup=invitation_sql(w, inviter, email_of(w.actors[removed]), inviter, "tok-gone")
             + release_member_sql(w, "org1", removed) + leave(removed))
        # ... nor after moving to another address first: removal revokes by the address of that moment (L11).
        theirs = email_of(w.actors[removed])

        def move_to(address: str) -> str:
            return f" update auth.users set email = {literal(address)} where id = {literal(w.actor_id(removed))};"

        case(f"an invitation sent to a {removed} who moves to another address, is removed and moves back is "
             "accepted", "invitations", removed, accept.format(literal("tok-moved")), DENIED,
             probe=membership_of(removed),
             setup=invitation_sql(w, inviter, theirs, inviter, "tok-moved") + move_to("moved." + theirs)
             + release_member_sql(w, "org1", removed) + leave(removed) + move_to(theirs))
        # ... nor through an invitation sent before to another address of theirs, which the organisation could not
        # tell was theirs, once they take that address (L11: whatever address it was sent to).
        other = "home." + theirs
        case(f"a {removed} removed after an invitation went to another address of theirs takes that address and "
             "accepts it", "invitations", removed, accept.format(literal("tok-alias")), DENIED,
             probe=membership_of(removed),
             setup=invitation_sql(w, inviter, other, inviter, "tok-alias")
             + release_member_sql(w, "org1", removed) + leave(removed) + move_to(other))
        # An invitation sent after they left is a new decision of the organisation's: it is accepted.
        case(f"a {removed} who left is invited again and accepts", "invitations", removed,
             accept.format(literal("tok-again")), ALLOWED, probe=f"{membership_of(removed)} and role = "
             f"{literal(inviter)}", setup=release_member_sql(w, "org1", removed) + leave(removed)
             + " " + invitation_sql(w, inviter, theirs, inviter, "tok-again"))
    # A member who changes their account's address takes the pending invitations to the old one with them (L11):
    # whoever holds that address next (a reassigned company mailbox, where the mailed secret is) joins by none.
    mover = next((a for a in w.actors.values() if a.user_id and a.memberships.get("org1")
                  and a.name not in (w.owners["org1"], inviter, invitee)), None)
    if mover is not None and bp.tenancy.team_organizations:
        left = email_of(mover)
        case(f"an invitation to the address the {mover.name} left is accepted by its next holder (L11)", "invitations",
             invitee, accept.format(literal("tok-left-address")), DENIED, probe=member_of,
             setup=invitation_sql(w, inviter, left, writer, "tok-left-address")
             + f" update auth.users set email = {literal('moved.' + left)} where id = {literal(mover.user_id)};"
             + f" update auth.users set email = {literal(left)} where id = {literal(w.actor_id(invitee))};")
    # A member offered a promotion, then demoted: the offer does not undo the demotion (L11).
    demoted = roles[-2] if len(roles) > 2 else None
    if demoted in w.actors and demoted not in (roles[0], inviter) and roles.index(inviter) < roles.index(demoted):
        case(f"a {demoted} offered {inviter} rank, then demoted to {roles[-1]}, accepts the offer", "invitations",
             demoted, accept.format(literal("tok-offer")), DENIED,
             probe=f"{membership_of(demoted)} and role > {literal(roles[-1])}",
             setup=invitation_sql(w, inviter, email_of(w.actors[demoted]), inviter, "tok-offer")
             + release_member_sql(w, "org1", demoted)
             + f" update public.organization_members set role = {literal(roles[-1])} where {ORG} = {org1} "
               f"and user_id = {literal(w.actor_id(demoted))};")
        # ... nor one sent to another address of theirs, taken after the demotion.
        alias = "home." + email_of(w.actors[demoted])
        case(f"a {demoted} offered {inviter} rank at another address of theirs, then demoted to {roles[-1]}, takes "
             "that address and accepts", "invitations", demoted, accept.format(literal("tok-offer-alias")), DENIED,
             probe=f"{membership_of(demoted)} and role > {literal(roles[-1])}",
             setup=invitation_sql(w, inviter, alias, inviter, "tok-offer-alias")
             + release_member_sql(w, "org1", demoted)
             + f" update public.organization_members set role = {literal(roles[-1])} where {ORG} = {org1} "
               f"and user_id = {literal(w.actor_id(demoted))};"
             + f" update auth.users set email = {literal(alias)} where id = {literal(w.actor_id(demoted))};")
    create = "select public.create_invitation({}, {}, {})"
    pending = "select count(*) from public.invitations where {} = {} and lower(email) = {} and accepted_at is null"
    case(f"{inviter} invites at their own rank", "invitations", inviter,
         create.format(org1, literal("new.hire@example.com"), literal(inviter)), ALLOWED,
         probe=pending.format(ORG, org1, literal("new.hire@example.com")))
    if inviter != roles[0]:
        case(f"{inviter} invites above their rank", "invitations", inviter,
             create.format(org1, literal("boss@example.com"), literal(roles[0])), DENIED,
             probe=pending.format(ORG, org1, literal("boss@example.com")))
    withheld = ungrantable(bp).get(inviter, [])
    if withheld:  # a lower role holding rights the inviter lacks: only a role holding them all gives it (L07)
        case(f"{inviter} invites a {withheld[0]} (a role with rights {inviter} lacks)", "invitations", inviter,
             create.format(org1, literal("second.account@example.com"), literal(withheld[0])), DENIED,
             probe=pending.format(ORG, org1, literal("second.account@example.com")))
        case(f"an invitation to a {withheld[0]} from a {inviter} is accepted", "invitations", invitee,
             accept.format(literal("tok-withheld")), DENIED, probe=member_of,
             setup=invitation_sql(w, inviter, email, withheld[0], "tok-withheld"))
        if roles[0] in w.actors:
            case(f"{roles[0]} invites a {withheld[0]}", "invitations", roles[0],
                 create.format(org1, literal("trusted@example.com"), literal(withheld[0])), ALLOWED,
                 probe=pending.format(ORG, org1, literal("trusted@example.com")))
    below = [r for r in roles if r not in bp.tenancy.holders(Capability.manage_members)]
    if below:
        case(f"a {below[0]} invites", "invitations", below[0],
             create.format(org1, literal("friend@example.com"), literal(roles[-1])), DENIED,
             probe=pending.format(ORG, org1, literal("friend@example.com")))
    case("the same address is invited twice, differently cased", "invitations", inviter,
         create.format(org1, literal("Dup@Example.com"), literal(writer)), DENIED,
         probe=f"select (({pending.format(ORG, org1, literal('dup@example.com'))}) > 1)::int",
         setup=invitation_sql(w, inviter, "dup@example.com", writer, "tok-dup"))
    case("a client sets an invitation's expiry", "invitations", inviter,
         f"insert into public.invitations ({ORG}, email, role, expires_at) values ({org1}, "
         f"'forever@example.com', {literal(writer)}, 'infinity')", DENIED,
         probe="select count(*) from public.invitations where expires_at > now() + interval '31 days'")
    secret = (f"select count(*) from public.invitations i where strpos(to_jsonb(i)::text, 'tok-read') > 0 "
              f"or strpos(to_jsonb(i)::text, encode({token_hash('tok-read')}, 'hex')) > 0")
    case(f"{inviter} reads an invitation's secret", "invitations", inviter, secret, DENIED, kind="count",
         setup=invitation_sql(w, roles[0], "secret@example.com", roles[0], "tok-read"))
    case(f"{inviter} reads the stored invitation hashes", "invitations", inviter,
         "select count(*) from private.invitation_tokens", DENIED, kind="count",
         setup=invitation_sql(w, roles[0], "hash@example.com", roles[0], "tok-hash"))
    if "invitations" in bp.privacy.audit_tables:
        case("an invitation's secret reaches the audit log", "audit_logs", inviter,
             create.format(org1, literal("logged@example.com"), literal(writer)), DENIED,
             probe="select count(*) from public.audit_logs where table_name = 'invitations' and "
                   "(coalesce(new_data::text, '') || coalesce(old_data::text, '')) ~* 'token'")


def _role_changes(w: World, oracle, case, roles: list[str], manager: str, writer: str) -> None:
    """change_member_role(): nobody promotes themself, grants above their rank or touches a peer or a
    superior; a manager changes a member ranked below them. Expectations come from the oracle."""
    org1 = literal(w.orgs["org1"])
    top, lowest = roles[0], roles[-1]
    tries = [(writer, writer, top, f"{writer} promotes themself to {top}"),
             (manager, manager, top, f"{manager} promotes themself to {top}"),
             (manager, lowest, top, f"{manager} makes a {lowest} {top}"),
             (manager, top, lowest, f"{manager} demotes the {top}"),
             (manager, lowest, roles[-2] if len(roles) > 1 else lowest, f"{manager} changes a {lowest}'s role")]
    below = roles[roles.index(manager) + 1:]  # roles that do not manage members
    if below:
        tries.append((below[0], lowest, below[0], f"a {below[0]} changes a {lowest}'s role"))
    for granter, withheld in ungrantable(oracle.bp).items():  # roles with rights the granter lacks (L17)
        member = next((r for r in roles[roles.index(granter) + 1:] if r != withheld[0] and r in w.actors), None)
        if member is not None:
            tries += [(granter, member, withheld[0], f"{granter} makes a {member} a {withheld[0]} (rights {granter} "
                       "lacks)"), (top, member, withheld[0], f"{top} makes a {member} a {withheld[0]}")]
    seen: set[tuple[str, str, str]] = set()
    for actor, member, role, name in tries:
        if (actor, member, role) in seen or actor not in w.actors or member not in w.actors:
            continue
        seen.add((actor, member, role))
        target = w.actors[member]
        if target.memberships.get("org1") == role:
            continue  # no change to observe
        may = oracle.may_change_role(w.actors[actor], target, "org1", role)
        case(name, "organization_members", actor,
             f"select public.change_member_role({org1}, {literal(target.user_id)}, {literal(role)})",
             ALLOWED if may else DENIED,
             probe=f"select count(*) from public.organization_members where {ORG} = {org1} "
                   f"and user_id = {literal(target.user_id)} and role = {literal(role)}")


# --- organisations ------------------------------------------------------------------------------------

def _organization_deletion(bp: Blueprint, w: World, case, roles: list[str]) -> None:
    owner = w.owners["org1"]
    co = next((a for a in w.actors.values() if a.memberships.get("org1") and a.name != owner), None)
    if co is None or not bp.tenancy.team_organizations:
        return
    org1 = literal(w.orgs["org1"])
    gone = f"select (not exists (select 1 from public.organizations where id = {org1}))::int"
    promote = (f"update public.organization_members set role = {literal(roles[0])} where {ORG} = {org1} "
               f"and user_id = {literal(co.user_id)};")
    expected = ALLOWED if bp.tenancy.organization_deleted_by == "capability" else DENIED
    case("a co-owner deletes the organisation", "organizations", co.name,
         f"delete from public.organizations where id = {org1}", expected, probe=gone, setup=promote)
    case("the primary owner deletes the organisation", "organizations", owner,
         f"delete from public.organizations where id = {org1}", ALLOWED, probe=gone)


def _co_owners(bp: Blueprint, w: World, case, roles: list[str]) -> None:
    """A co-owner (the previous owner after a handover keeps an owner membership): the primary owner demotes and
    removes them; a co-owner touches neither the primary owner nor another co-owner (L17)."""
    owner = w.owners["org1"]
    members = [a for a in w.actors.values() if a.memberships.get("org1") and a.name != owner]
    if len(members) < 2 or not bp.tenancy.team_organizations:
        return
    org1 = literal(w.orgs["org1"])
    co, other = members[0], members[1]
    top, lowest = roles[0], roles[-1]

    def promote(*actors) -> str:
        return " ".join(f"update public.organization_members set role = {literal(top)} where {ORG} = {org1} and "
                        f"user_id = {literal(a.user_id)};" for a in actors)

    role_of = (f"select count(*) from public.organization_members where {ORG} = {org1} and user_id = {{}} "
               f"and role = {{}}")
    member_of = f"select count(*) from public.organization_members where {ORG} = {org1} and user_id = {{}}"
    change = "select public.change_member_role({}, {}, {})"
    case(f"the primary owner demotes a co-owner to {lowest}", "organization_members", owner,
         change.format(org1, literal(co.user_id), literal(lowest)),
         ALLOWED if may_give_role(bp, top, lowest) else DENIED,
         probe=role_of.format(literal(co.user_id), literal(lowest)), setup=promote(co))
    case("the primary owner removes a co-owner", "organization_members", owner,
         f"delete from public.organization_members where {ORG} = {org1} and user_id = {literal(co.user_id)}",
         ALLOWED, probe=f"select (({member_of.format(literal(co.user_id))}) = 0)::int",
         setup=promote(co) + release_member_sql(w, "org1", co.name))
    case("a co-owner removes another co-owner", "organization_members", co.name,
         f"delete from public.organization_members where {ORG} = {org1} and user_id = {literal(other.user_id)}",
         DENIED, probe=f"select (({member_of.format(literal(other.user_id))}) = 0)::int",
         setup=promote(co, other))
    case("a co-owner demotes another co-owner", "organization_members", co.name,
         change.format(org1, literal(other.user_id), literal(lowest)), DENIED,
         probe=role_of.format(literal(other.user_id), literal(lowest)), setup=promote(co, other))
    case("a co-owner removes the primary owner", "organization_members", co.name,
         f"delete from public.organization_members where {ORG} = {org1} and user_id = "
         f"{literal(w.actor_id(owner))}", DENIED,
         probe=f"select (({member_of.format(literal(w.actor_id(owner)))}) = 0)::int", setup=promote(co))


# --- server columns -------------------------------------------------------------------------------------

def _server_columns(bp: Blueprint, schema: Schema, w: World, oracle, case, writer: str, enums,
                    make_values) -> None:
    """Backdating and chosen ids: the server owns id, created_at, updated_at (and the author)."""
    actor = w.actors[writer]
    for e in bp.entities:
        if e.scope in (Scope.global_, Scope.service):
            continue
        t = schema.table(e.name)
        target = qname("public", t.name)
        row = next((r for r in w.rows if r.table == t.name and r.org == "org1" and r.purpose == "matrix"
                    and oracle.expect(actor, "update", t.name, r, "org1") == ALLOWED), None)
        # The blueprint's server_set fields (docs/lifecycle.md L13): a value no row holds, a time long ago.
        forged = {f.name: v for f in e.fields if f.server_set and (v := _forged(t, f.name, w, enums)) is not None}
        if row is not None:
            # archived_at: only a delete archives (and restore_<entity>() brings back), never a write.
            for col in ("created_at", "updated_at") + (("archived_at",) if e.soft_delete else ()):
                case(f"backdate a {t.name} row's {col}", t.name, writer,
                     f"update {target} set {ident(col)} = {LONG_AGO} where {where_key(row.key)}", DENIED,
                     probe=f"select count(*) from {target} where {where_key(row.key)} and {ident(col)} < "
                           "'2002-01-01'")
            for col, value in forged.items():
                case(f"set a {t.name} row's server-set {col}", t.name, writer,
                     f"update {target} set {ident(col)} = {value} where {where_key(row.key)}", DENIED,
                     probe=f"select count(*) from {target} where {where_key(row.key)} and {ident(col)} = {value}")
            if e.owner_column:
                victim = next(a for a in w.actors.values() if a.user_id and a.name != writer)
                case(f"re-attribute a {t.name} row to {victim.name}", t.name, writer,
                     f"update {target} set {ident(e.owner_column)} = {literal(victim.user_id)} "
                     f"where {where_key(row.key)}", DENIED,
                     probe=f"select count(*) from {target} where {where_key(row.key)} and "
                           f"{ident(e.owner_column)} = {literal(victim.user_id)}")
        values = make_values(t, "org1", w, writer, 9800 + len(w.rows), enums, with_id=False)
        setup = None
        if e.private_of is not None:
            # Personal data is written for a row of the writer's own (a side row takes its parent's author).
            values, setup = for_own_parent(t, w, values, writer, "org1") or (values, None)
        if oracle.expect(actor, "insert", t.name, Row(t.name, "org1", writer, {}, values=values), "org1") != ALLOWED:
            continue
        chosen = stable_id("chosen", t.name)
        case(f"insert a {t.name} row with a chosen id", t.name, writer,
             insert_sql(t, {**values, "id": literal(chosen)}), DENIED,
             probe=f"select count(*) from {target} where id = {literal(chosen)}", setup=setup)
        case(f"insert a backdated {t.name} row", t.name, writer,
             insert_sql(t, {**values, "created_at": LONG_AGO}), DENIED,
             probe=f"select count(*) from {target} where created_at < '2002-01-01'", setup=setup)
        for col, value in forged.items():
            case(f"insert a {t.name} row giving its server-set {col}", t.name, writer,
                 insert_sql(t, {**values, col: value}), DENIED,
                 probe=f"select count(*) from {target} where {ident(col)} = {value}", setup=setup)


def _stamped_moves(bp: Blueprint, schema: Schema, w: World, oracle, case, writer: str, top: str) -> None:
    """L13's third way in: a row holding server_set fields moved to another parent (a month-old check-in onto a
    habit made today, a sign-off onto another document). Whoever may update the row points each such reference at
    a live row of the organisation they read, a move nothing else refuses: denied; the service role's move goes."""
    order = [writer] + [a for a in w.actors if a != writer]
    for table, columns in stamped_references(bp).items():
        e, t, target = bp.entity(table), schema.table(table), qname("public", table)
        rows = [r for r in w.rows if r.table == table and r.org == "org1" and r.purpose == "matrix"]
        for col in sorted(columns):
            parent = bp.entity(e.field(col).references)
            found = next(((actor, r, move) for actor in (w.actors[n] for n in order) for r in rows
                          if oracle.expect(actor, "update", table, r, "org1") == ALLOWED
                          for move in _moves_to_parents(t, w, oracle, actor, r, col, parent.name)), None)
            if found is None:
                continue
            actor, r, (after, sql) = found
            probe = f"select count(*) from {target} where {where_key(r.key)} and {ident(col)} = {after.values[col]}"
            case(f"move a {table} row holding server-set values to another {parent.name} row", table, actor.name,
                 sql, oracle.expect_transition(actor, table, r, after), probe=probe)
            case(f"the service role moves a {table} row to another {parent.name} row", table, top, sql, ALLOWED,
                 probe=probe, **SERVICE_ROLE)


def _moves_to_parents(t, w: World, oracle, actor, r: Row, col: str, parent: str):
    """(row after, update) pointing `col` at each live org1 row of `parent` the actor reads, that the oracle would
    let the actor make but for L13, and that repeats no unique key."""
    peers = [x.values for x in w.rows if x.table == t.name and x is not r]
    for p in w.rows:
        if p.table != parent or p.org != "org1" or p.purpose != "matrix" or "id" not in p.key \
                or p.key["id"] == r.values.get(col) or from_literal(p.values.get("archived_at") or "null") is not None \
                or oracle.expect(actor, "select", parent, p, "org1") != ALLOWED:
            continue
        move = move_row(t, w, r, col, p.key["id"])
        if move is not None and not clashes(t, move[0].values, peers, unique_keys(t)) \
                and oracle.expect_transition(actor, t.name, r, move[0], stamped=False) == ALLOWED:
            yield move


def _forged(t, col: str, w: World, enums) -> str | None:
    """A value of `col` a client might send instead of the server's: long ago for a time, else a valid value
    that neither a seeded row nor the default holds (None when the column's domain leaves none)."""
    column = t.column(col)
    if column is None:
        return None
    if column.type == "timestamptz":
        return LONG_AGO
    if column.type == "date":
        return "'2001-01-01'::date"
    held = {r.values.get(col) for r in w.rows if r.table == t.name} | {column.default}
    for n in range(9700, 9720):
        value = value_for(t, column, n, enums, w)
        if value != "null" and value not in held:
            return value
    return None


def _under_archived_rows(bp: Blueprint, schema: Schema, w: World, oracle, case, writer: str, enums,
                         make_values) -> None:
    """A writer who may file a row under a live row tries to file it under an archived one (docs/access.md A24)."""
    actor = w.actors[writer]
    for e in bp.entities:
        for f in e.fields:
            parent = bp.entity(f.references) if f.references else None
            if parent is None or not parent.soft_delete or not e.client_writable:
                continue
            archived = next((r for r in w.rows if r.table == parent.name and r.org == "org1" and "id" in r.key
                             and "archived_at" in r.values), None)
            t = schema.table(e.name)
            values = make_values(t, "org1", w, writer, 9900 + len(w.rows), enums, with_id=False)
            if e.private_of is not None:
                values = (for_own_parent(t, w, values, writer, "org1") or (values, None))[0]
            if archived is None or oracle.expect(actor, "insert", t.name, Row(t.name, "org1", writer, {}, values=values),
                                                 "org1") != ALLOWED:
                continue
            values = admit(t, "org1", w, writer, {**values, f.name: archived.key["id"]}, [f.name])
            if values is None:
                continue
            target = qname("public", t.name)
            case(f"insert a {t.name} row under an archived {parent.name} row", t.name, writer, insert_sql(t, values),
                 oracle.expect(actor, "insert", t.name, Row(t.name, "org1", writer, {}, values=values), "org1"),
                 probe=f"select count(*) from {target} where {ident(f.name)} = {archived.key['id']}",
                 setup=clearing_sql(t, values, w))


# --- audit log ---------------------------------------------------------------------------------------------

def _audit_log(bp: Blueprint, schema: Schema, w: World, case, top: str) -> None:
    log = "public.audit_logs"
    seeded = (f"insert into {log} (id, {ORG}, action, table_name, occurred_at) values "
              f"({literal(stable_id('audit', 'old'))}, {literal(w.orgs['org1'])}, 'UPDATE', 'seeded', "
              "now() - interval '20 years');")
    there = f"select count(*) from {log} where id = {literal(stable_id('audit', 'old'))}"
    for who, extra in (("service role", SERVICE_ROLE), ("table owner", AUTH_SERVICE)):
        case(f"the {who} rewrites an audit row", "audit_logs", top,
             f"update {log} set action = 'DELETE' where id = {literal(stable_id('audit', 'old'))}", DENIED,
             probe=f"{there} and action = 'DELETE'", setup=seeded, **extra)
        case(f"the {who} deletes an audit row", "audit_logs", top,
             f"delete from {log} where id = {literal(stable_id('audit', 'old'))}", DENIED,
             probe=f"select (({there}) = 0)::int", setup=seeded, **extra)
    case("the retention function removes rows older than the retention period", "audit_logs", top,
         "select private.purge_audit_logs()", ALLOWED, probe=f"select (({there}) = 0)::int", setup=seeded,
         **AUTH_SERVICE)
    # ... and keeps the rest: an entry an hour inside the retention period stays (L15).
    recent = literal(stable_id("audit", "recent"))
    days = bp.privacy.audit_retention_days
    case("the retention function removes an entry still inside the retention period (L15)", "audit_logs", top,
         "select private.purge_audit_logs()", DENIED,
         probe=f"select (not exists (select 1 from {log} where id = {recent}))::int",
         setup=f"insert into {log} (id, {ORG}, action, table_name, occurred_at) values ({recent}, "
               f"{literal(w.orgs['org1'])}, 'UPDATE', 'seeded', now() - interval '{days} days' + interval '1 hour');",
         **AUTH_SERVICE)
