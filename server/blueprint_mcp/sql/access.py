"""Grants -> policies: the SQL reading of model.meaning.command_grants.

Each grant becomes one predicate (who AND its row conditions); a command's predicates are OR-ed
into one policy `to authenticated`, and public grants also into one `to anon`. Every membership
test keeps the fast form `organization_id = any (array(select private.<helper>(...)))` (one init
plan per statement, the tenant index usable); linked chains use the same form over a definer
helper that returns the linked rows' ids, ANDed with its hashed `in (select ...)` (see linked_pred).
"""

from __future__ import annotations

import hashlib
from collections import Counter

from ..model import Blueprint
from ..model.access import Grant, Match
from ..model.entities import Entity
from ..model.meaning import (audit_readers, bucket_grants, command_grants, covers, linked_hops, member_roles,
                             pii_readers, restore_grants, seen_by_select, uncovered)
from ..model.schema import Command, Function, Policy, Table
from .columns import ORG
from .ident import ident, literal, object_name, qname
from .predicates import API_ROLE, Pred, both, either, in_orgs, is_me, policy, returning_query
from ..model.blueprint import ROLE_TYPE

ROLE_SET_HELPER = "organization_ids_with_any_role"
PUBLIC_ROLES = ["anon", "authenticated"]


def role_set_helper() -> Function:
    return Function(
        schema_name="private", name=ROLE_SET_HELPER, args=f"roles public.{ROLE_TYPE}[]",
        arg_types=f"public.{ROLE_TYPE}[]", returns="setof uuid", language="plpgsql", security_definer=True,
        volatility="stable",
        body=returning_query("select m.organization_id\n"
                             "  from public.organization_members m\n"
                             " where m.user_id = (select auth.uid())\n"
                             "   and m.role = any (roles)"),
        comment="Organisations where the caller holds one of exactly these roles. Definer: reads memberships "
                "past RLS.",
        execute_roles=["authenticated", "service_role"],
    )


HelperKey = tuple[str, tuple[str, ...], bool]


def helper_key(bp: Blueprint, e: Entity, chain: list[str]) -> HelperKey:
    """(target, chain from it, archived_too) of the helper a linked chain of two or more columns from `e` calls:
    the entity its first column names, the rest of the chain, and whether an archived target row links too. A
    row's personal data is linked by the row's own chain (docs/access.md A10, A23): the side's first step is to its
    own row, archived or not, no hop (random fuzz: the owner restoring an archived project was refused its personal
    data, and had reached it only through an updaters' grant that had dropped its role test)."""
    target = linked_hops(bp, e, chain)[1][0]
    own_row = bool(e.private_of) and chain[0] == e.fields[0].name
    return target.name, tuple(chain[1:]), own_row and target.soft_delete


def _name_parts(key: HelperKey) -> list[str]:
    return [key[0], *key[1], *(["incl_archived"] if key[2] else [])]


def linked_helper_name(bp: Blueprint, target: Entity, chain: list[str], archived_too: bool = False) -> str:
    """The helper of the chain from `target`, one name per chain of the blueprint (_helper_names)."""
    key = (target.name, tuple(chain), archived_too and target.soft_delete)
    return _helper_names(bp).get(key) or object_name(*_name_parts(key), suffix="linked_ids")


_NAMES: dict[int, tuple[Blueprint, dict[HelperKey, str]]] = {}


def _helper_names(bp: Blueprint) -> dict[HelperKey, str]:
    """(target, chain from it, archived_too) -> helper name of every chain the blueprint's linked grants follow, once
    per blueprint. Names are joined with "_", so two chains may read alike (`[client_contact, user_id]` and `[client,
    contact_user_id]` from projects): those get a digest of their own parts instead (red team 21: one helper served
    both chains, and an invoice policy answered for the day-to-day contact), compared before object_name cuts them
    to 63 bytes (red team 22). Names that still meet (a column named like another chain's cut name, two long names
    whose 8-hex digests meet: red team 24) take a 16-hex digest of the chain."""
    known = _NAMES.get(id(bp))
    if known is not None and known[0] is bp:
        return known[1]
    chains = sorted({helper_key(bp, e, g.linked) for e in bp.entities
                     for command in ("select", "insert", "update", "delete")
                     for g in command_grants(bp, e, command) if g.linked is not None and len(g.linked) > 1})
    joined = {key: "_".join([*_name_parts(key), "linked_ids"]) for key in chains}
    alike = Counter(joined.values())
    names = {key: object_name(*_name_parts(key), suffix="linked_ids",
                              taken={joined[key]} if alike[joined[key]] > 1 else ()) for key in chains}
    met = Counter(names.values())
    for key, name in names.items():
        if met[name] > 1:
            digest = hashlib.sha1("\x1f".join(_name_parts(key)).encode()).hexdigest()[:16]
            names[key] = object_name(*_name_parts(key), suffix=f"{digest}_linked_ids")
    if len(_NAMES) >= 16:
        _NAMES.clear()
    _NAMES[id(bp)] = (bp, names)
    return names


def linked_helper(bp: Blueprint, e: Entity, chain: list[str]) -> Function:
    """ids of the rows the chain's first column may point at: those whose chain ends at the caller."""
    hops = linked_hops(bp, e, chain)[1:]  # from the first referenced entity on
    target = hops[0][0]
    joins, alias = [], "t1"
    key = helper_key(bp, e, chain)
    # An archived row of the chain links nobody (red team 17: a portal user whose client was archived kept
    # reading and writing the client's invoices through it); restoring it links again. A row's personal data is
    # the exception: its own row is its start, archived or not (helper_key).
    live = ["t1.archived_at is null"] if target.soft_delete and not key[2] else []
    for k, (ent, col) in enumerate(hops[:-1], start=1):
        nxt = bp.entity(ent.field(col).references)
        joins.append(f"  join {qname('public', nxt.name)} t{k + 1} on t{k + 1}.id = t{k}.{ident(col)}"
                     f" and t{k + 1}.{ORG} = t{k}.{ORG}")
        alias = f"t{k + 1}"
        if nxt.soft_delete:
            live.append(f"{alias}.archived_at is null")
    last_col = hops[-1][1]
    body = (f"select t1.id\n  from {qname('public', target.name)} t1\n" + "".join(j + "\n" for j in joins)
            + f" where {alias}.{ident(last_col)} = (select auth.uid())" + "".join(f"\n   and {x}" for x in live))
    return Function(
        schema_name="private", name=linked_helper_name(bp, target, list(key[1]), key[2]), args="", arg_types="",
        returns="setof uuid", language="plpgsql", security_definer=True, volatility="stable",
        body=returning_query(body),
        comment=f"{target.name} rows{', archived ones too,' if key[2] else ''} linked to the caller through "
                f"{' -> '.join(c for _, c in hops)}. "
                "Definer: follows the chain past RLS, returns ids only.",
        execute_roles=["authenticated", "service_role"],
    )


def in_role_set(roles: list[str]) -> Pred:
    array = "array[" + ", ".join(literal(r) for r in roles) + f"]::public.{ROLE_TYPE}[]"
    return Pred.of(f"{ident(ORG)} = any (array(select private.{ROLE_SET_HELPER}({array})))", (ORG,))


def ranked(bp: Blueprint, roles: list[str]) -> bool:
    """Whether `roles` (most privileged first) are a prefix of the ranking: the ranked helper serves them."""
    return roles == [r.name for r in bp.tenancy.roles][: len(roles)]


def roles_pred(bp: Blueprint, roles: list[str]) -> Pred:
    """Callers holding one of `roles` (most privileged first) in the row's organisation."""
    return in_orgs(roles[-1]) if ranked(bp, roles) else in_role_set(roles)


def audit_branches(bp: Blueprint) -> list[tuple[str, list[str]]]:
    """(table, readers) of each audited table whose entries not every reader of the audit trail may read
    (docs/lifecycle.md L19): an empty list means only the service role reads them."""
    every = audit_readers(bp, "organizations")
    return [(t, readers) for t in bp.privacy.audit_tables if (readers := audit_readers(bp, t)) != every]


def match_pred(m: Match) -> Pred:
    values = m.values
    if len(values) == 1:
        return Pred.of(f"{ident(m.column)} = {literal(values[0])}", (m.column,))
    return Pred.of(f"{ident(m.column)} in ({', '.join(literal(v) for v in values)})", (m.column,))


def linked_pred(column: str, helper: str) -> Pred:
    """`column` among the ids a linked helper returns, in two forms ANDed. `= any (array(...))` is the one
    the planner can match against the column's index (a bitmap OR beside the tenant test); `in (select ...)`
    is hashed, so a row the scan reads costs one probe however many rows the caller is linked to. Where the
    planner scans the table instead (one big organisation: its tenant test seems to hold for every row),
    `= any` alone walks the whole array for every row: bench/access_speed.py's single-organisation line."""
    call = f"select private.{ident(helper)}()"
    return Pred.of(f"{ident(column)} in ({call}) and {ident(column)} = any (array({call}))", (column,))


def who_pred(bp: Blueprint, e: Entity, g: Grant) -> Pred | None:
    """The caller part of a grant; None when anyone qualifies (public, signed_in)."""
    roles = member_roles(bp, g)
    if roles is not None:
        return roles_pred(bp, roles)
    if g.linked is not None:
        if len(g.linked) == 1:
            return is_me(g.linked[0])
        target, rest, archived_too = helper_key(bp, e, g.linked)
        return linked_pred(g.linked[0], linked_helper_name(bp, bp.entity(target), list(rest), archived_too))
    return None


def grant_pred(bp: Blueprint, e: Entity, g: Grant, definer: bool = False) -> Pred:
    """The grant's parts ANDed, the row's own columns first: inside an OR (an archived row's restorers) PostgreSQL
    evaluates them in this order and stops at the first false, and a membership array is looked up (one
    helper call) only when first needed, so `created_by = (select auth.uid()) and organization_id = any (...)`
    skips the lookup for every row someone else wrote. At the top level the planner orders them by cost
    anyway, and the tenant key's index condition is found in any order."""
    if e.private_of and g.under is not None and g.under == e.fields[0].name:
        return row_writer_pred(bp, e, g)
    parts = []
    if g.own:
        parts.append(is_me(e.owner_column))
    if g.assigned:
        parts.append(is_me(g.assigned))
    if g.where is not None:
        parts.append(match_pred(g.where))
    parts += [p for p in (who_pred(bp, e, g),) if p is not None]
    if g.under:
        parts.append(under_pred(bp, e, g.under, definer))
    if g.visible:
        parts.append(visible_pred(bp, e, g.visible, definer))
    return both(*parts) if parts else Pred.of("true")


def visible_pred(bp: Blueprint, e: Entity, ref: str, definer: bool = False) -> Pred:
    """The row's parent (named by `ref`) is one the caller may read: the sub-query runs under the parent's select
    policy, so the parent's own grants decide (a retracted article hides its comments), with nothing restated.
    A correlated `exists` probes the parent by its key for each row read: a page of one article's comments costs
    what the hand-written filter does. `ref in (select id from parent)` was measured too: it hashes every parent
    the caller may read first, 11x the filter for one article's comments (bench/access_speed.py), though it
    counts a whole table faster (the planner runs it in parallel, and the hashed `exists` not). `definer`: read
    inside a security definer function (restore_<entity>), where no policy applies: the parent's select policy is
    then restated in the sub-query (red team 10: a member restored a note of a project she no longer read), read as
    a definer reads it, so the parent's own sub-queries restate theirs in turn (review: a client read past its
    policy two levels up)."""
    parent = bp.entity(e.field(ref).references)
    restated = f" and ({command_pred(bp, parent, Command.select, definer=True)})" if definer else ""
    return Pred.of(f"exists (select 1 from {qname('public', parent.name)} where {ident(parent.name)}.id = "
                   f"{ident(e.name)}.{ident(ref)}{restated})", (ref,))


def under_pred(bp: Blueprint, e: Entity, ref: str, definer: bool = False) -> Pred:
    """The row's parent (named by `ref`) is one the caller may update: the parent's own update predicate, read
    on the parent inside the sub-query (its bare column names are the parent's there), under the parent's
    select policy as well (the sub-query runs under RLS)."""
    parent = bp.entity(e.field(ref).references)
    rows = command_pred(bp, parent, Command.update, definer=definer)
    # `definer`: read where no policy applies (restore_<entity>): the parent's select policy is restated too, with
    # its own `visible` parents restated in turn (review: a grandparent read past its policy)
    seen = f" and ({command_pred(bp, parent, Command.select, definer=True)})" if definer else ""
    return Pred.of(f"exists (select 1 from {qname('public', parent.name)} where {ident(parent.name)}.id = "
                   f"{ident(e.name)}.{ident(ref)} and ({rows}){seen})", (ref,))


def row_writer_pred(bp: Blueprint, side: Entity, g: Grant) -> Pred:
    """A write of a row's personal data (docs/access.md A23) under a grant with a condition on the row: the caller
    may update the row it belongs to, as the row's own update grants with such a condition say, read on the row
    inside the sub-query (under the row's select policy too). Who the grant names is tested where it admits fewer
    than the row's updaters (update and delete keep to the roles that read the personal data; a linked user is one
    person): updating the row admits only its updaters. When only the author writes it (own), the row's update
    grants are read for its author: the branches that cannot admit them go."""
    parent = bp.entity(side.private_of)
    every = command_grants(bp, parent, Command.update.value)
    roles = member_roles(bp, g)
    # The row's update grants that test only who are the side's own grants already (model/meaning.py): here, those
    # with a condition on the row.
    grants = [h for h in every if h.where is not None or h.assigned or h.under]
    if g.own:
        grants = uncovered(bp, [h.narrowed(own=True) for h in grants])
    # Who is spent only when every grant the sub-query reads admits members of these roles alone. A linked user's
    # grant always says who (staff who may update the row under their own grant are not that user), and a linked
    # updater of the row holds no role: random fuzz, the assignee of an admins' ticket deleted its admin-only
    # personal data, as the admins' grant had dropped its role test.
    spent = roles is not None and all(set(member_roles(bp, h) or [None]) <= set(roles) for h in grants)
    who = None if spent else who_pred(bp, side, g)
    rows = command_pred(bp, parent, Command.update, grants)
    writer = Pred.of(f"exists (select 1 from {qname('public', parent.name)} where {ident(parent.name)}.id = "
                     f"{ident(side.name)}.{ident(g.under)} and ({rows}))", (g.under,))
    return both(who, writer) if who is not None else writer


def any_of(bp: Blueprint, e: Entity, grants: list[Grant], visible: Pred | None = None,
           definer: bool = False) -> Pred:
    """The grants OR-ed; with `visible` (the select predicate), a grant no select grant covers is
    ANDed with it, so update and delete never reach rows the caller cannot see (PostgreSQL applies
    the select policy only when the statement reads columns, not to `delete from t`). `definer`: read where no
    policy applies (grant_pred)."""
    preds = list(dict.fromkeys(
        grant_pred(bp, e, g, definer) if visible is None or seen_by_select(bp, e, g)
        else both(grant_pred(bp, e, g, definer), visible) for g in grants))
    if any(p == "true" for p in preds):
        return Pred.of("true")
    return preds[0] if len(preds) == 1 else either(*preds)


LIVE = "archived_at is null"


def live_pred(bp: Blueprint, e: Entity) -> Pred | None:
    """Soft delete: a row is reachable while not archived, or by those who may restore it; None without
    soft delete."""
    if not e.soft_delete:
        return None
    restorers = restore_grants(bp, e)
    return either(Pred.of(LIVE), any_of(bp, e, restorers)) if restorers else Pred.of(LIVE)


def parent_gate(bp: Blueprint, e: Entity, command: Command = Command.select) -> Pred | None:
    """The personal data of a row follows the row: reached only by callers who may see that row (its select
    policy decides: the sub-query runs under it), so a pii reader never reads the personal data of a row a
    `where`, a role list or soft delete hides from them, and nobody writes it for a row they cannot see. None
    for tables other than private sides, and for reads and changes where a select grant of the row admits every
    pii reader on every live row already (the check would be spent)."""
    parent = bp.entity(e.private_of) if e.private_of else None
    if parent is None:
        return None
    ref = e.fields[0].name
    if command is not Command.insert and not parent.soft_delete and \
            all(seen_by_select(bp, parent, g) for g in pii_readers(bp, parent)):
        return None
    return Pred.of(f"exists (select 1 from {qname('public', parent.name)} p "
                   f"where p.id = {ident(e.name)}.{ident(ref)})")


def command_pred(bp: Blueprint, e: Entity, command: Command, grants: list[Grant] | None = None,
                 definer: bool = False) -> Pred:
    """The rows of `e` a caller may run `command` on, as the command's policy says it (a private side's
    personal data: only for those who may see its row); `false` when no client may. `grants`: those of the
    command read for some callers only (a row's author), instead of all of them."""
    grants = command_grants(bp, e, command.value) if grants is None else grants
    if not grants:
        return Pred.of("false")
    select_grants = command_grants(bp, e, "select")
    visible = any_of(bp, e, select_grants, definer=definer) if select_grants else Pred.of("false")
    seen = visible if command in (Command.update, Command.delete) else None
    ref = e.fields[0].name if e.private_of and command is not Command.select else None
    # A write under the row the personal data belongs to reads that row under its select policy already: the
    # gate is for the other grants.
    under, plain = [], []
    for g in grants:
        (under if ref is not None and g.under == ref else plain).append(g)
    pred = any_of(bp, e, plain, seen, definer) if plain else None
    live, restorers = live_pred(bp, e), restore_grants(bp, e)
    if pred is not None and live is not None and command is not Command.insert and not all(
            any(covers(bp, r, g) for r in restorers) for g in plain):
        pred = both(pred, live)  # archived rows: only for those who may restore them (unless all may)
    gate = parent_gate(bp, e, command)
    if pred is not None and gate is not None:
        pred = both(pred, gate)  # a row's personal data: only for those who may see the row
    if under:
        writes = any_of(bp, e, under, seen, definer)
        pred = writes if pred is None else either(pred, writes)
    return pred


def grant_policies(bp: Blueprint, e: Entity, table: Table) -> list[Policy]:
    """One policy per command for signed-in callers, plus one select policy for anon if public."""
    out: list[Policy] = []
    n = table.name
    live = live_pred(bp, e)
    for command in (Command.select, Command.insert, Command.update, Command.delete):
        grants = command_grants(bp, e, command.value)
        if not grants:
            continue
        pred = command_pred(bp, e, command)
        if command is Command.select:
            public = [g for g in grants if g.public]
            # every row: a public grant with no condition (`visible` is one: rows whose parent the caller
            # reads, red team 15: read as none, it gave anon every comment of every draft)
            every = any(g.where is None and g.visible is None for g in public)
            if every and (live is None or live == LIVE):
                # Every (live) row is public and no signed-in restorer sees more: one policy for anon and
                # signed-in callers alike (a signed-in-only copy would read as a missing membership check).
                everyone = policy(n, command, using=live or Pred.of("true"),
                                  comment=f"Public: everyone reads every {'live ' if live else ''}row.")
                everyone.roles = list(PUBLIC_ROLES)
                out.append(everyone)
                continue
            if every:  # soft delete: every live row is public, archived ones only for signed-in restorers
                out.append(policy(n, command, using=live, comment="Public: everyone reads every live row."))
            else:
                comment = "Reference data: every signed-in user reads it." if not e.is_tenant and pred == "true" else ""
                out.append(policy(n, command, using=pred, comment=comment))
            if public:
                if every:
                    anon_pred = Pred.of(LIVE)
                else:
                    rows = any_of(bp, e, public)
                    anon_pred = rows if live is None else both(rows, LIVE)
                anon = policy(n, command, using=anon_pred, comment="Public rows, for anyone.")
                anon.name = object_name(n, "select", "public", suffix="policy")
                anon.roles = ["anon"]
                out.append(anon)
        elif command is Command.insert:
            out.append(policy(n, command, check=pred))
        elif command is Command.update:
            # WITH CHECK as well as USING: otherwise a row could be moved out of what the caller may touch.
            out.append(policy(n, command, using=pred, check=pred))
        else:
            out.append(policy(n, command, using=pred))
    return out


def access_functions(bp: Blueprint) -> list[Function]:
    """The definer helpers the grants of this blueprint call, each once."""
    out: dict[str, Function] = {}
    commands = ("select", "insert", "update", "delete")
    uses = [(e, g) for e in bp.entities for c in commands for g in command_grants(bp, e, c)]
    uses += [(None, g) for b in bp.storage for c in commands for g in bucket_grants(bp, b, c)]
    if any(readers and not ranked(bp, readers) for _, readers in audit_branches(bp)):
        out[ROLE_SET_HELPER] = role_set_helper()
    for e, g in uses:
        roles = member_roles(bp, g)
        if roles is not None and not ranked(bp, roles):
            out.setdefault(ROLE_SET_HELPER, role_set_helper())
        if e is not None and g.linked is not None and len(g.linked) > 1:
            fn = linked_helper(bp, e, g.linked)
            if out.setdefault(fn.name, fn) != fn:
                raise ValueError(f"two linked helpers are both named {fn.name}")
    return list(out.values())


__all__ = ["API_ROLE", "PUBLIC_ROLES", "access_functions", "grant_policies"]
