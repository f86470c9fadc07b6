"""Rules over the functions policies call: a helper must answer for the caller and read what it is given.

A policy that calls a helper trusts its body: BP050 reads the policy, these read the body (the facts `callers`
derives from the body the parser keeps). A helper whose membership read is not pinned to the caller answers with everyone's
memberships; one that never reads the argument the policy passes (the row's organisation) decides nothing
about the row.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ...model.schema import Function, Policy, Schema, Table
from ..findings import Level
from ..platform import managed
from ..registry import rule
from ..callers import unread_parameters
from ..tree import nodes, strings
from .common import (_once, base_type, body_facts, calls, enum_of, find_function, membership_tables, policy_label,
                     relation_names, trees, untied_membership_reads)


def policy_helpers(s: Schema) -> list[tuple[Function, Table, Policy]]:
    """Each function a policy calls, directly or through the helpers it calls (defined in the audited SQL, outside
    the platform's schemas), with the first policy that reaches it."""
    return _once("policy helpers", s, _policy_helpers, s)


def _policy_helpers(s: Schema) -> list[tuple[Function, Table, Policy]]:
    out: dict[str, tuple[Function, Table, Policy]] = {}
    pending: list[tuple[str, Table, Policy]] = [(name, t, p) for t in s.tables for p in t.policies
                                                for _, tree, _ in trees(p) for name, _, _ in calls(tree)]
    pending.reverse()
    while pending:
        name, t, p = pending.pop()
        f = find_function(s, name)
        if f is not None and not managed(f.schema_name) and f.qualified not in out:
            out[f.qualified] = (f, t, p)
            pending += [(inner, t, p) for inner in reversed(f.calls or [])]
    return list(out.values())


@rule("BP054", "policy_helper_not_tied_to_caller", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A function a policy calls (or one that function calls) reads memberships without keeping them to the "
              "caller's.",
      why="The policy trusts the helper to answer for the caller. A body that does not pin the membership's user "
          "column to the caller in every branch (`m.user_id = (select auth.uid())`, a variable holding it, or a "
          "parameter the policy passes), or its organisation to the caller's (`m.organization_id in (select ... "
          "where user_id = auth.uid())`: the caller's co-members), answers with every user's memberships: `m.user_id = m.user_id`, a join "
          "with auth.users that never meets the membership, `or m.role = 'owner'`, or `m.user_id = user_id` in "
          "an SQL function with a parameter named user_id (the column wins) all let any signed-in user through "
          "wherever anyone would pass. A definer helper reads past the table's RLS; an invoker's reads a table "
          "without RLS alike.",
      bad="create function private.my_org_ids() returns setof uuid language sql stable security definer\n"
          "set search_path = '' as $$ select m.organization_id from public.organization_members m\n"
          "  join auth.users u on u.id = (select auth.uid()) $$;",
      fix="Filter the memberships by the caller: where m.user_id = (select auth.uid()); in PL/pgSQL, declare "
          "caller uuid := auth.uid() and compare with it. If the helper counts an organisation's members on "
          "purpose, answer with the count (count(*)) or suppress the finding with the reason.")
def policy_helper_not_tied_to_caller(r, s: Schema) -> Iterator:
    members = membership_tables(s)
    for f, t, p in policy_helpers(s):
        if not set(f.reads or ()) & members or (found := body_facts(s, f)) is None:
            continue
        # (an invoker's reads of a table with RLS show the caller what its policies allow)
        for rel, user in untied_membership_reads(s, found[1], f.security_definer):
            yield r.finding(f"{f.qualified} (reached from {policy_label(t, p)}) reads {rel} without keeping "
                            f"{user} to the caller: it answers with every user's memberships.", f.qualified,
                            location=f.location)


@rule("BP055", "policy_helper_ignores_argument", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A function a policy calls (or one that function calls) never reads one of its parameters.",
      why="The policy passes the row's organisation (or the caller, or a role) and trusts the helper to decide by "
          "it; a body that never reads the parameter decides the same for every row. In an SQL function a column "
          "of the query takes a parameter's name: in `is_member(organization_id uuid)`, `where m.organization_id "
          "= organization_id` compares the membership's column with itself, so any member of any organisation "
          "passes.",
      bad="create function private.is_member(organization_id uuid) returns boolean language sql stable\n"
          "security definer set search_path = '' as $$ select exists (select 1 from public.organization_members m\n"
          "  where m.organization_id = organization_id and m.user_id = (select auth.uid())) $$;",
      fix="Name parameters apart from columns (p_organization_id), or qualify them with the function's name "
          "(is_member.organization_id) or write $1; drop a parameter the helper does not need.")
def policy_helper_ignores_argument(r, s: Schema) -> Iterator:
    for f, t, p in policy_helpers(s):
        found = body_facts(s, f) if f._body is not None and f._body.params else None
        unread = unread_parameters(*found) if found is not None else []
        if unread:
            yield r.finding(f"{f.qualified} (reached from {policy_label(t, p)}) never reads "
                            f"{', '.join(unread)}: what the policy passes there decides nothing.",
                            f.qualified, location=f.location)


# A membership's own end, kept on the row instead of deleting it: a removed, left or suspended member, a pending one.
_ENDED_AT = re.compile(r"(removed|deleted|revoked|left|archived|disabled|deactivated|suspended|banned|ended)_(at|on)")
_ENDED_FLAG = re.compile(r"(is_)?(active|deleted|removed|disabled|suspended|banned|archived|revoked)")
_NOT_IN = ("invited", "pending", "removed", "inactive", "suspended", "left", "revoked", "disabled", "banned",
           "deleted", "archived", "requested")


def _lifecycle_columns(s: Schema, t: Table) -> list[str]:
    """Columns of a membership table saying a row no longer (or not yet) grants anything: `removed_at`, `is_active`,
    a `status` whose values name a pending or ended membership."""
    out = []
    for c in t.columns:
        kind = base_type(s, c.type).lower()
        if _ENDED_AT.fullmatch(c.name) and ("time" in kind or "date" in kind) or \
                _ENDED_FLAG.fullmatch(c.name) and kind in ("boolean", "bool"):
            out.append(c.name)
        elif c.name in ("status", "state"):
            labels = (e.values if (e := enum_of(s, c.type)) is not None else []) + [(c.default or "").strip("'")]
            if any(label.split("'")[0].lower() in _NOT_IN or label.lower() == "active" for label in labels):
                out.append(c.name)
    return out


@rule("BP095", "membership_lifecycle_ignored", Level.WARN, ("SECURITY", "TENANCY"),
      summary="The membership table keeps removed (or pending) members as rows with a column saying so, and a "
              "policy, or a helper a policy calls, reads memberships without looking at that column.",
      why="Removing a member by `update organization_members set removed_at = now()` (to keep the history) leaves "
          "the row in place: a helper that reads `organization_id ... where user_id = auth.uid()` and nothing else "
          "still counts the removed member, who keeps reading the organisation's data (audit-evasion round 9, e06). "
          "The same for `status = 'invited'` rows made before the invitation is accepted, and `is_active = false`.",
      bad="alter table public.organization_members add column removed_at timestamptz;\n"
          "create function private.organization_ids_with_role(...) ... select m.organization_id\n"
          "  from public.organization_members m where m.user_id = (select auth.uid()) ...",
      fix="Filter every read that grants access: `and m.removed_at is null` (`m.status = 'active'`, "
          "`m.is_active`); or delete the membership and keep its history in an audit log.")
def membership_lifecycle_ignored(r, s: Schema) -> Iterator:
    ended = {t.qualified: cols for t in s.tables if t.qualified in membership_tables(s)
             if (cols := _lifecycle_columns(s, t))}
    if not ended:
        return

    def ignored(tree, rel: str) -> str | None:
        named = {strings(b.get("fields"))[-1] for k, b in nodes(tree) if k == "ColumnRef" and b.get("fields")}
        return None if named & set(ended[rel]) else ended[rel][0]
    for f, t, p in policy_helpers(s):
        reading = f._body
        for rel in sorted(set(f.reads or ()) & set(ended)):
            col = ignored(list(reading.trees), rel) if reading is not None else None
            if col is not None:
                yield r.finding(f"{f.qualified} (reached from {policy_label(t, p)}) reads {rel} without looking at "
                                f"{col}: members removed (or not yet in) that way still count.", f.qualified,
                                location=f.location)
    for t in s.tables:
        if t.qualified in ended:
            continue  # (the membership table's own policies show a member their rows, ended ones too)
        for p in t.policies:
            for clause, tree, _ in trees(p):
                for rel in sorted(relation_names(tree, t.schema_name) & set(ended)):
                    col = ignored(tree, rel)
                    if col is not None:
                        yield r.finding(f"{policy_label(t, p)} reads {rel} in its {clause} without looking at {col}: "
                                        "members removed (or not yet in) that way still count.",
                                        f"{t.qualified}.{p.name}", location=p.location or t.location)
                        break
