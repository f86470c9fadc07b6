"""Supabase's database-advisor lints that SQL alone decides, under Supabase's names and levels."""

from __future__ import annotations

import re
from typing import Any

from ...model.schema import Function, Schema
from ...sql.ident import ident, qname
from ..platform import (INITPLAN_SCHEMAS_EXCLUDED, MISSING, always_true_clauses, managed, mentions_user_metadata,
                        sensitive, trigger_function)
from ..findings import Level
from ..registry import rule
from ..tree import indexed
from .common import (
    AUTH_FUNCTIONS,
    api_selectable,
    calls,
    created,
    exposed,
    find_function,
    linted_policies,
    per_tree,
    policy_label,
    select_leads,
    trees,
    user_tables,
)

_WRAPPABLE = re.compile(r'"?auth"?\s*\.\s*"?(uid|jwt|role|email)"?\s*\(\s*\)', re.IGNORECASE)


def _wrapped(text: str, byte_offsets: list[int]) -> str | None:
    """`text` with each argument-less auth.x() call at those offsets wrapped as (select auth.x())."""
    raw = text.encode("utf-8", "surrogatepass")
    out, last = [], 0
    for off in sorted(set(byte_offsets)):
        at = len(raw[:off].decode("utf-8", "ignore"))
        m = _WRAPPABLE.match(text, at)
        if m is None or at < last:
            return None
        out += [text[last:at], f"(select auth.{m.group(1).lower()}())"]
        last = m.end()
    return "".join(out) + text[last:]


def _unwrapped_calls(tree, text: str) -> tuple[list[str], str | None]:
    """(the auth functions a clause calls per row, the clause with those calls wrapped or None)."""
    wrapped = select_leads(tree)
    unwrapped = [(name, body.get("location", -1)) for name, body, _ in calls(tree)
                 if name in AUTH_FUNCTIONS and id(body) not in wrapped]
    return [name for name, _ in unwrapped], _wrapped(text, [at for _, at in unwrapped]) if unwrapped else None


@rule("BP016", platform="0003",
      why="Unwrapped, the call is evaluated for every row the query touches; wrapped in a scalar sub-query "
          "(select auth.uid()) it becomes an init plan computed once per statement (179 ms -> 9 ms on 100k rows). "
          "As the platform reads the deparsed policy, a call is wrapped only where a sub-select's output starts "
          "with it: `(select owner_id = auth.uid())` is correlated and runs per row, and so does a call filtering "
          "a sub-select's own rows. Deliberate differences from the platform's text match: a bare call next "
          "to a wrapped one of the same function is still reported; a string literal spelling 'auth.uid()' "
          "is not a call; and a sub-select whose output starts with the call, `(select auth.jwt() ->> 'sub')`, "
          "is an init plan like `(select auth.jwt()) ->> 'sub'`, though the platform wants `select auth.jwt()` "
          "verbatim. Not caught: `(select auth.uid() = owner_id)`, correlated, so per row.",
      bad="create policy p on habits for select to authenticated using (created_by = auth.uid());")
def auth_rls_initplan(r, s: Schema):
    for t, p in linted_policies(s, INITPLAN_SCHEMAS_EXCLUDED, roles=None):  # the platform reads every role's
        found, rewritten = [], {}
        for clause, tree, text in trees(p):
            names, wrapped = per_tree("per-row auth calls", tree, lambda: _unwrapped_calls(tree, text))
            found += names
            if names:
                rewritten[clause] = wrapped
        if not found:
            continue
        fix = None
        if rewritten and all(rewritten.values()):
            fix = f"alter policy {ident(p.name)} on {qname(t.schema_name, t.name)} " + \
                  " ".join(f"{clause} ({text})" for clause, text in rewritten.items()) + ";"
        names = ", ".join(f"{n}()" for n in dict.fromkeys(found))
        yield r.finding(f"{policy_label(t, p)} calls {names} for every row.", f"{t.qualified}.{p.name}",
                        location=p.location or t.location, fix_sql=fix)


@rule("BP017", platform="0007",
      why="Policies do nothing until RLS is enabled: the table is as open as its grants, and the policies "
          "give a false sense of protection.",
      bad="create policy p on profiles for select using (id = (select auth.uid()));  -- no enable row level security")
def policy_exists_rls_disabled(r, s: Schema):
    for t in created(s):
        if t.policies and not t.rls_enabled:
            yield r.finding(f"{t.qualified} has {len(t.policies)} policies but row level security is disabled.",
                            t.qualified, location=t.location,
                            fix_sql=f"alter table {qname(t.schema_name, t.name)} enable row level security;")


@rule("BP018", platform="0009",
      why="Every write maintains both; the second never serves a query the first cannot. Indexes are compared "
          "as the platform compares them (method, keys, operator classes, collations, order, INCLUDE, "
          "predicate), and beyond it a plain index on the keys of a unique one (a primary key, a unique "
          "constraint or index) is reported too: the unique index serves every query the plain one would, "
          "but their definitions differ by UNIQUE, so the platform does not report the pair.",
      bad="slug text unique ...; create index idx_organizations_slug on organizations (slug);")
def duplicate_index(r, s: Schema):
    # One finding per group of indexes serving the same queries on a table, as the platform reports them.
    for owner in [*created(s), *(v for v in s.views if not managed(v.schema_name))]:
        groups: dict[Any, list[tuple[str, list[str], bool, Any]]] = {}  # shape -> (label, columns, unique, index)
        for c in getattr(owner, "constraints", []):
            if c.kind in ("primary key", "unique"):
                groups.setdefault(c.shape or (tuple(c.columns), None), []).append(
                    (f"key {c.name}", c.columns, True, None))
        for i in owner.indexes:
            groups.setdefault(i.shape or (tuple(i.columns), i.where), []).append((i.name, i.columns, i.unique, i))
        for members in groups.values():
            if len(members) < 2:
                continue
            keep = next((m for m in members if m[2]), members[0])  # a unique one serves what the others do
            rest = [m for m in members if m is not keep]
            extra = [m[3] for m in rest if m[3] is not None]
            yield r.finding(f"{owner.schema_name}.{owner.name} ({', '.join(keep[1])}): "
                            f"{', '.join(m[0] for m in rest)} duplicate {keep[0]}.", f"{owner.schema_name}.{owner.name}",
                            location=(extra[0].location if extra else None) or owner.location,
                            fix_sql="\n".join(f"drop index {qname(owner.schema_name, i.name)};" for i in extra) or None)


@rule("BP019", platform="0014",
      why="Its functions and types land in the API schema, callable and visible to every API role.",
      bad="create extension pg_trgm;  -- defaults to public")
def extension_in_public(r, s: Schema):
    for e in s.extensions:
        if e.schema_name == "public":
            yield r.finding(f"Extension {e.name} is installed in public.", f"{e.schema_name}.{e.name}",
                            location=e.location,
                            fix_sql=f"alter extension {ident(e.name)} set schema extensions;")


def _reads_user_metadata(tree) -> bool:
    return mentions_user_metadata((kind, body) for kind, body, _ in indexed(tree))


@rule("BP020", platform="0015",
      why="Users edit their own user_metadata through the client API: a policy trusting it is a policy "
          "the user writes. Read as the platform reads each clause: user_metadata after auth.jwt() or a "
          "request.jwt.claims setting (a column merely named like it is not reported), or raw_user_meta_data.",
      bad="using ((auth.jwt() -> 'user_metadata' ->> 'org_id')::uuid = organization_id)")
def rls_references_user_metadata(r, s: Schema):
    for t in user_tables(s):
        for p in t.policies:
            if any(per_tree("reads user metadata", tree, lambda: _reads_user_metadata(tree))
                   for _, tree, _ in trees(p)):
                yield r.finding(f"{policy_label(t, p)} reads user_metadata, which the user controls.",
                                f"{t.qualified}.{p.name}", location=p.location or t.location)


@rule("BP052", "policy_trusts_user_metadata_through_function", Level.ERROR, ("SECURITY",),
      summary="A policy calls a function that decides by the user's own metadata (user_metadata).",
      why="The platform's lint (0015, BP020) reads the policy's own text; a helper such as "
          "`private.current_org()` returning `auth.jwt() -> 'user_metadata' ->> 'org_id'` hides the same hole: "
          "users write their user_metadata themselves (supabase.auth.updateUser), so they pick the organisation "
          "or role the policy trusts.",
      bad="create function private.current_org() returns uuid language sql stable as $$\n  select "
          "(auth.jwt() -> 'user_metadata' ->> 'org_id')::uuid $$;\ncreate policy p on habits for select "
          "to authenticated using (organization_id = (select private.current_org()));",
      fix="Decide by memberships the server writes (organization_id = any (array(select "
          "private.organization_ids_with_role('viewer')))) or by app_metadata, which only the service role sets.")
def policy_trusts_user_metadata_through_function(r, s: Schema):
    for t in user_tables(s):
        for p in t.policies:
            helpers = sorted({f.qualified for _, tree, _ in trees(p) for name, _, _ in calls(tree)
                              if (f := find_function(s, name)) is not None and _metadata_reader(s, f)})
            if helpers:
                yield r.finding(f"{policy_label(t, p)} calls {', '.join(helpers)}, which reads user_metadata, "
                                f"which the user controls.", f"{t.qualified}.{p.name}", location=p.location or t.location)


def _metadata_reader(s: Schema, f: Function, seen: frozenset[str] = frozenset()) -> bool:
    """`f` reads user_metadata, or calls a function that does, however deep: a helper deciding by
    `private.profile_claims() ->> 'role'` decides by what profile_claims read (evasion round 16 e06). `seen` keeps
    recursive helpers finite."""
    if f.reads_user_metadata:
        return True
    seen = seen | {f.qualified}
    return any(g.qualified not in seen and not managed(g.schema_name) and _metadata_reader(s, g, seen)
               for name in f.calls or () if (g := find_function(s, name)) is not None)


@rule("BP021", platform="0021",
      why="Supabase may change or drop those constraints in auth upgrades, and the reference leaks identity "
          "details into your schema.",
      bad="owner_email text references auth.users (email)")
def fkey_to_auth_unique(r, s: Schema):
    for t in created(s):
        for fk in t.foreign_keys:
            if fk.ref_schema == "auth" and fk.ref_columns != ["id"]:
                yield r.finding(f"{t.qualified} foreign key {fk.name} references {fk.ref_schema}.{fk.ref_table} "
                                f"({', '.join(fk.ref_columns)}).", f"{t.qualified}.{fk.name}",
                                location=fk.location or t.location)


@rule("BP022", platform="0023",
      why="Anyone with the anon key reads it through the API.",
      bad="create table public.integrations (id uuid primary key, api_key text);  -- RLS off")
def sensitive_columns_exposed(r, s: Schema):
    for t in created(s):
        if exposed(s, t) and not t.rls_enabled:
            hits = api_selectable(t, [c.name for c in t.columns if sensitive(c.name)])
            if hits:
                yield r.finding(f"{t.qualified} exposes {', '.join(hits)} without row level security.",
                                t.qualified, location=t.location,
                                fix_sql=f"alter table {qname(t.schema_name, t.name)} enable row level security;")


@rule("BP023", platform="0024",
      why="Every client holding that role may write any row; for SELECT `using (true)` is a deliberate "
          "public read and is allowed. Policies on a partitioned table are reported too: they guard every "
          "partition, though the platform reads plain tables only.",
      bad="create policy p on habits for update to authenticated using (true) with check (true);")
def rls_policy_always_true(r, s: Schema):
    for t, p in linted_policies(s):
        if not p.permissive:
            continue
        using = MISSING if p.using is None else p.using_tree
        check = MISSING if p.check is None else p.check_tree
        command = str(p.command.value if p.command != "all" else "all")
        # Policies share their clauses' trees: one folding per command and pair of trees (both held by
        # policies, so their ids stand for them during the audit).
        clauses = per_tree(("always true", command, id(check)), using,
                           lambda: always_true_clauses(command, using, check))
        if clauses:
            yield r.finding(f"{policy_label(t, p)} ({p.command}) is always true in {' and '.join(clauses)}.",
                            f"{t.qualified}.{p.name}", location=p.location or t.location)


@rule("BP024", platform="0029",
      why="Any signed-in user can call it over HTTP at /rest/v1/rpc/<name>, and it runs with its owner's "
          "rights, past RLS. Trigger and event-trigger functions are left out: PostgreSQL refuses to call them "
          "except as triggers (the platform reports them anyway).",
      bad="create function public.add_member(...) ... security definer ...;  -- executable by PUBLIC")
def authenticated_definer_executable(r, s: Schema):
    for f in s.functions:
        if not managed(f.schema_name) and f.security_definer and not trigger_function(f) and \
                f.schema_name in s.exposed_schemas and \
                {"authenticated", "public"} & set(f.execute_roles):
            yield r.finding(f"Definer function {f.qualified} is executable by authenticated through the API.",
                            f.qualified, location=f.location)


@rule("BP025", platform="0002",
      why="It publishes users' emails and metadata through the API, past the auth schema's protection.",
      bad="create view public.member_emails as select m.*, u.email from organization_members m join auth.users u ...;")
def auth_users_exposed(r, s: Schema):
    users = next((t for t in s.tables if t.qualified == "auth.users"), None)
    users_protected = users is not None and users.rls_enabled
    for v in s.views:
        # A security-invoker view is safe only while auth.users itself is protected by RLS.
        insecure = v.materialized or not v.security_invoker or not users_protected
        if exposed(s, v) and "auth.users" in (v.reads or []) and insecure:
            yield r.finding(f"View {v.schema_name}.{v.name} exposes auth.users.", f"{v.schema_name}.{v.name}",
                            location=v.location)
