"""Tenancy, analytics and privacy rules over tables, triggers and functions."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pgparse

from ...model.schema import Policy, Schema, Table
from ...sql.ident import ident, qname
from ..findings import Level
from ..registry import rule
from ..parser import parse
from ..body import mentions_variables, new_old_compared, values_set_once, variables_from
from ..role_sets import admitted_roles, one_role_per_member
from ..pins import unwrap
from ..tree import (boolean_args, called_functions, canonical, const, disjuncts, equated_columns, function_name, nodes,
                    replaced, statement_relations, strings)
from .binding import from_relations, tied_to_row
from .reach_rules import _may_raise, authorised_picks, definer_removals
from .common import (
    CLIENT_ROLES,
    _once,
    SENSITIVE_MARK,
    applies_to_clients,
    body_facts,
    calls,
    client_policies,
    compared_later,
    into_select,
    client_update_columns,
    clients_granted,
    commands,
    created,
    find_function,
    is_analytics,
    is_tenant,
    lone_value,
    membership_functions,
    membership_tables,
    only_statement,
    outside_subqueries,
    per_tree,
    policy_label,
    relation_names,
    sql_answer,
    taken_columns,
    view_statement,
    tenant_roots,
    trees,
)

EVENT_PROPERTY_COLUMNS = ("properties", "metadata", "payload", "context", "data")
_KEY_OPERATORS = ("?", "?|", "?&")
_PATH_FUNCTIONS = ("jsonb_path_exists", "jsonb_path_match")


@rule("BP026", "tenant_key_missing", Level.WARN, ("SECURITY", "TENANCY"),
      summary="A table that holds a tenant's data (it references a tenant table) but has no organization_id.",
      why="Its policies must join through the parent on every row to find the organisation (slow and easy to "
          "get wrong), and nothing keeps a row in its parent's organisation.",
      bad="create table comments (id uuid primary key, task_id uuid references tasks (id), body text);",
      fix="Add organization_id uuid not null, a composite foreign key (organization_id, task_id) -> "
          "tasks (organization_id, id), and membership policies on it.")
def tenant_key_missing(r, s: Schema):
    roots = tenant_roots(s)
    tenants = {(t.schema_name, t.name) for t in s.tables if is_tenant(t)} | roots
    for t in created(s):
        if is_tenant(t) or (t.schema_name, t.name) in roots or t.schema_name not in s.exposed_schemas:
            continue
        parent = next((fk for fk in t.foreign_keys if (fk.ref_schema, fk.ref_table) in tenants), None)
        if parent is not None:
            yield r.finding(f"{t.qualified} references {parent.ref_schema}.{parent.ref_table} but has no "
                            f"organization_id.", t.qualified, location=t.location)


@rule("BP030", "tenant_key_mutable", Level.WARN, ("SECURITY", "TENANCY"),
      summary="Clients may update a tenant table but nothing stops organization_id from changing.",
      why="A member of two organisations moves a row from one to the other (an UPDATE that passes both "
          "organisations' checks); history, audit and counters then lie.",
      bad="create policy u on habits for update to authenticated using (...) with check (...);  -- no guard",
      fix="Add a BEFORE UPDATE trigger that rejects changes of organization_id (or grant UPDATE only on the "
          "other columns).")
def tenant_key_mutable(r, s: Schema):
    for t in created(s):
        if not is_tenant(t) or not t.rls_enabled:
            continue
        writers = [p for p in t.policies if p.permissive and applies_to_clients(p) and "update" in commands(p)]
        if not writers:
            continue
        # Only the roles an update policy admits reach a row: a role granted UPDATE that no policy names updates
        # nothing (fp02 of evasion round 10: anon kept the default table grant, authenticated only `update (muted)`).
        moving = [p for p in writers if (allowed := client_update_columns(
            t, CLIENT_ROLES if not p.roles or "public" in p.roles else p.roles)) is None or t.tenant_key in allowed]
        if moving and not _update_guarded(s, t, t.tenant_key):
            yield r.finding(f"{t.qualified}.{t.tenant_key} can change in an update ({policy_label(t, moving[0])}).",
                            t.qualified, location=t.location)


@rule("BP033", "analytics_table_writable", Level.WARN, ("SECURITY", "ANALYTICS"),
      summary="A client role may write an analytics table (events, sessions, flags) through a policy.",
      why="Clients then forge events and sessions: metrics, funnels and anything computed from them can no "
          "longer be trusted. The service role, which writes them from edge functions, needs no policy.",
      bad="create policy p on events for insert with check (auth.jwt() ->> 'role' = 'service_role');",
      fix="Drop the write policies: only SELECT policies for members; log events from an edge function with "
          "the service role.")
def analytics_table_writable(r, s: Schema):
    for t in created(s):
        if not is_analytics(t) or not t.rls_enabled:
            continue
        for p in t.policies:
            writes = [c for c in commands(p) if c != "select"]
            if p.permissive and applies_to_clients(p) and writes:
                yield r.finding(f"{policy_label(t, p)} lets clients {'/'.join(writes)} analytics rows.",
                                f"{t.qualified}.{p.name}", location=p.location or t.location,
                                fix_sql=f"drop policy {ident(p.name)} on {qname(t.schema_name, t.name)};")


def _guards_keys(constraint, column: str) -> bool:
    """A check that tests the jsonb column's keys: `not (properties ?| array[...])` at the top level, or a
    jsonpath over its keys at any depth (`not jsonb_path_exists(properties, '... keyvalue() ...')`)."""
    if constraint.tree is None:
        return True  # the generator's model keeps no trees: a check there is not second-guessed
    for kind, body in nodes(constraint.tree):
        if kind == "A_Expr" and any(n.get("String", {}).get("sval") in _KEY_OPERATORS for n in body.get("name", [])):
            left = body.get("lexpr", {}).get("ColumnRef", {}).get("fields", [])
            if left and left[-1].get("String", {}).get("sval") == column:
                return True
        if kind == "FuncCall" and (body.get("funcname") or [{}])[-1].get("String", {}).get("sval") in _PATH_FUNCTIONS:
            args = body.get("args") or []
            first = args[0].get("ColumnRef", {}).get("fields", []) if args else []
            path = args[1].get("A_Const", {}).get("sval", {}).get("sval", "") if len(args) > 1 else ""
            if first and first[-1].get("String", {}).get("sval") == column and "keyvalue()" in path:
                return True
    return False


@rule("BP034", "event_properties_pii", Level.WARN, ("PRIVACY", "ANALYTICS"),
      summary="An analytics table's jsonb properties accept any key, personal data included.",
      why="Event properties end up in exports and third-party tools; one `email` or `full_name` key and the "
          "analytics store holds personal data nobody consented to.",
      bad="create table events (..., properties jsonb);",
      fix="check (jsonb_typeof(properties) = 'object' and not (properties ?| array['email', 'phone', 'full_name', "
          "'ip_address', ...]))")
def event_properties_pii(r, s: Schema):
    for t in created(s):
        if not is_analytics(t):
            continue
        for col in t.columns:
            if col.name in EVENT_PROPERTY_COLUMNS and col.type in ("jsonb", "json") and \
                    not any(c.kind == "check" and _guards_keys(c, col.name) for c in t.constraints):
                yield r.finding(f"{t.qualified}.{col.name} accepts any key, personal data included.", t.qualified,
                                location=col.location or t.location)


@rule("BP035", "updated_at_trigger_missing", Level.INFO, ("DATA_QUALITY",),
      summary="A table has updated_at but no BEFORE UPDATE trigger that sets it.",
      why="The column keeps its insert time: sync, caching and \"recently changed\" queries read a lie.",
      bad="create table t (..., updated_at timestamptz default now());  -- no trigger",
      fix="create trigger t_set_updated_at before update on t for each row execute function private.set_updated_at();")
def updated_at_trigger_missing(r, s: Schema):
    for t in created(s):
        if t.column("updated_at") is None:
            continue
        maintained = False
        for trg in (x for x in t.triggers if x.fires):
            f = find_function(s, trg.function)
            if trg.timing == "before" and "update" in trg.events and \
                    (f is None or f.assigns is None or "updated_at" in f.assigns or "updated_at" in trg.args):
                maintained = True
        if not maintained:
            yield r.finding(f"{t.qualified}.updated_at is never updated.", t.qualified, location=t.location)


@rule("BP036", "sensitive_table_not_audited", Level.WARN, ("PRIVACY", "COMPLIANCE"),
      summary="A table whose comment marks it (or a column) sensitive has no audit trigger.",
      why="Changes to sensitive data must be traceable (who changed what, when); without a trigger nothing "
          "records them.",
      bad="comment on table payroll is 'sensitive: salaries';  -- and no audit trigger",
      fix="Add an AFTER INSERT OR UPDATE OR DELETE trigger that writes audit_logs (with PII columns redacted).")
def sensitive_table_not_audited(r, s: Schema):
    for t in created(s):
        if not (SENSITIVE_MARK.search(t.comment) or any(SENSITIVE_MARK.search(c.comment) for c in t.columns)):
            continue
        # evasion round 24 e04: `after update` alone left deletes (and inserts) unrecorded; the audit triggers
        # together must fire on each of the three
        audited: set[str] = set()
        for trg in (x for x in t.triggers if x.fires):
            f = find_function(s, trg.function)
            if trg.timing == "after" and \
                    (f is None or f.writes is None or "audit" in trg.function or any("audit" in w for w in f.writes)):
                audited.update(trg.events)
        missing = [e for e in ("insert", "update", "delete") if e not in audited]
        if len(missing) == 3:
            yield r.finding(f"{t.qualified} is marked sensitive but changes to it are not audited.", t.qualified,
                            location=t.location)
        elif missing:
            yield r.finding(f"{t.qualified} is marked sensitive but its audit trigger does not fire on "
                            f"{' or '.join(m.upper() for m in missing)}: those changes leave no trace.", t.qualified,
                            location=t.location)


@rule("BP047", "user_reference_blocks_account_deletion", Level.WARN, ("PRIVACY", "COMPLIANCE"),
      summary="Clients may write any user's id into a column that references auth.users without on delete "
              "cascade or set null (or a row that goes with its user's account, such as a profile).",
      why="An account that a row names there cannot be deleted (23503) until the row changes, and the user it "
          "names cannot change it: whoever may write the column, a stranger included, can stop someone from "
          "deleting their account.",
      bad="create table buyers (..., user_id uuid not null references auth.users (id));  -- a shop's staff insert "
          "buyers",
      fix="Declare the reference nullable with on delete set null (the row stays, unlinked), or on delete cascade "
          "when the row belongs to that user; or let clients write only their own id (with check (user_id = "
          "(select auth.uid())), and no update of the column).")
def user_reference_blocks_account_deletion(r, s: Schema):
    gone, members = _gone_with_accounts(s), membership_tables(s)
    for t in created(s):
        for fk in t.foreign_keys:
            target = f"{fk.ref_schema}.{fk.ref_table}"
            if fk.on_delete not in ("no action", "restrict") or (target != "auth.users" and target not in gone):
                continue
            if target in members:
                continue  # a required member column: the organisation's managers change the row (lifecycle L04)
            cols = [c for c in fk.columns if c != t.tenant_key]
            col = cols[0] if len(cols) == 1 else None
            writes = _client_writes(s, t, col) if col is not None else []
            if not writes:
                continue
            what = "any user's id" if target == "auth.users" else f"a row of {target}, which goes with its user's account,"
            yield r.finding(f"{t.qualified}.{col} references {target} on delete {fk.on_delete}, and clients may "
                            f"{' and '.join(writes)} {what} there.", f"{t.qualified}.{fk.name}",
                            location=fk.location or t.location)


def _gone_with_accounts(s: Schema) -> set[str]:
    """Tables whose rows a deleted account takes along: cascading from auth.users, directly or through rows that
    do. Followed along the cascading foreign keys, so each table is looked at once however long the chains."""
    takes: dict[str, list[str]] = {}  # schema.table -> the tables whose rows cascade from its rows
    for t in s.tables:
        for fk in t.foreign_keys:
            if fk.on_delete == "cascade":
                takes.setdefault(f"{fk.ref_schema}.{fk.ref_table}", []).append(t.qualified)
    gone, todo = {"auth.users"}, ["auth.users"]
    while todo:
        for name in takes.get(todo.pop(), ()):
            if name not in gone:
                gone.add(name)
                todo.append(name)
    return gone - {"auth.users"}


def _client_writes(s: Schema, t: Table, col: str) -> list[str]:
    """The commands (insert, update) by which a client may write another user's id into `col`: granted (or
    Supabase's legacy defaults in an exposed schema), allowed by a policy or with RLS off, and not bound to
    the writer's own id by every permissive policy or by a restrictive one."""
    out = []
    for command in ("insert", "update"):
        if any(trg.timing == "before" and command in trg.events and
               col in _assigned_by(s, trg.function, command, _may_be_null(t, col)) for trg in t.triggers
               if trg.fires):
            # A trigger sets it (new.user_id := auth.uid()), or, on update, compares it with the old row (and
            # raises, as tenant_key_mutable reads a guard): the server decides, not the client.
            continue
        if not clients_granted(s, t, command, col):
            continue
        if t.rls_enabled:
            policies = client_policies(t, command)
            permissive = [p for p in policies if p.permissive]
            if not permissive or any(not p.permissive and _binds_to_writer(p, col) for p in policies) or \
                    all(_binds_to_writer(p, col) for p in permissive):
                continue
        out.append(command)
    return out


def _update_guarded(s: Schema, t: Table, column: str) -> bool:
    """A BEFORE UPDATE trigger on t sets the column back, or compares it with the old row (and raises), or is given
    it (enforce_immutable_columns('id', 'organization_id'), keep_links('key')), or runs only on an update of it
    (`update of organization_id`, `when (old.organization_id is distinct from new.organization_id)`) and may raise
    (evasion round 24: `update of` a function that only clears a field guarded nothing, and a WHEN before a
    function that always raises was not read)."""
    nullable = _may_be_null(t, column)
    return any(trg.timing == "before" and "update" in trg.events and
               (column in trg.args or
                ((column in trg.columns or _fired_by_change(trg, column, nullable)) and
                 _may_raise(s, trg.function)) or
                column in _assigned_by(s, trg.function, "update", nullable))
               for trg in t.triggers if trg.fires)


def _fired_by_change(trg, column: str, nullable: bool) -> bool:
    """The trigger's WHEN holds where the column changes: an OR-ed test comparing new.<column> with old.<column>
    (IS DISTINCT FROM; also <> where the column cannot be NULL), in rows too."""
    if not isinstance(trg.when_tree, dict):
        return False
    return any(c == column and (safe or not nullable)
               for test in boolean_args(trg.when_tree, "OR_EXPR") if isinstance(test, dict) and "A_Expr" in test
               and (test["A_Expr"].get("kind") == "AEXPR_DISTINCT" or strings(test["A_Expr"].get("name")) in
                    (["<>"], ["!="]))
               for c, safe in new_old_compared(test["A_Expr"]))


def _may_be_null(t: Table, column: str) -> bool:
    c = t.column(column)
    return c is None or c.nullable


def _assigned_by(s: Schema, function: str, command: str = "insert", nullable: bool = False) -> list[str]:
    """The columns of NEW a trigger function sets, and on update those it compares with OLD (none known for a
    function the SQL does not define). `nullable`: the column may be NULL, so a comparison with <> guards it only
    as IS DISTINCT FROM does (evasion round 8: `new.owner_id <> old.owner_id` let a member empty the owner, then
    take it: NULL <> x is NULL, and the RAISE never ran)."""
    f = find_function(s, function)
    if f is None:
        return []
    if command != "update":
        return list(f.assigns or [])
    # a test whose branch calls a function that raises (perform private.refuse(...)) guards as a RAISE does
    via = [col for col, calls in (f.compares_via or {}).items()
           if any((g := find_function(s, name)) is not None and g._body is not None and g._body.raises
                  for name in calls)]
    loose = set(f.compares_loosely or ()) if nullable else set()
    return [*(f.assigns or []), *(c for c in f.compares or [] if c not in loose), *via]


def _binds_to_writer(p, col: str) -> bool:
    """Whether the policy's check (USING where it has none) requires `col = auth.uid()` as a conjunct."""
    text, tree = (p.check, p.check_tree) if p.check is not None else (p.using, p.using_tree)
    if tree is None and text:  # a model built without SQL (the generator's) holds the text only
        tree = per_tree("expression", text, lambda: _expression_tree(text))
    if not isinstance(tree, dict):
        return False
    for c in boolean_args(tree, "AND_EXPR"):
        e = c.get("A_Expr") if isinstance(c, dict) else None
        if not e or e.get("kind") != "AEXPR_OP" or strings(e.get("name")) != ["="]:
            continue
        sides = (e.get("lexpr"), e.get("rexpr"))
        if any(_is_column(a, col) and _is_uid(b) for a, b in (sides, sides[::-1])):
            return True
    return False


def _expression_tree(text: str):
    try:
        return parse(f"select ({text})")[0]["stmt"]["SelectStmt"]["targetList"][0]["ResTarget"]["val"]
    except (pgparse.PGQueryError, RecursionError, ValueError, LookupError):
        return None


def _is_column(node, col: str) -> bool:
    return strings((node or {}).get("ColumnRef", {}).get("fields"))[-1:] == [col]


def _is_uid(node) -> bool:
    """auth.uid() or (select auth.uid()), casts aside."""
    while isinstance(node, dict) and "TypeCast" in node:
        node = node["TypeCast"].get("arg")
    sub = (node or {}).get("SubLink")
    if sub and sub.get("subLinkType") == "EXPR_SUBLINK":
        targets = sub.get("subselect", {}).get("SelectStmt", {}).get("targetList", [])
        node = targets[0].get("ResTarget", {}).get("val") if len(targets) == 1 else None
        while isinstance(node, dict) and "TypeCast" in node:
            node = node["TypeCast"].get("arg")
    call = (node or {}).get("FuncCall")
    return bool(call) and not call.get("args") and function_name(call) == "auth.uid"


@rule("BP060", "caller_default_client_written", Level.WARN, ("SECURITY", "DATA_QUALITY"),
      summary="A column defaults to the signed-in user (auth.uid()), but clients may write any user's id into it.",
      why="The default says who wrote the row; the grants and policies let a client send another user's id "
          "instead, or change it later. Rows then claim an author, reporter or approver who never wrote them, and "
          "whatever trusts the column (an own-rows policy, an audit trail, a notification) trusts the claim.",
      bad="create table reports (..., reported_by uuid default auth.uid());  -- insert policy checks membership only",
      fix="Bind it to the writer: with check (reported_by = (select auth.uid())) on every permissive insert "
          "policy and no client update of the column (grant update on the other columns); or grant clients the "
          "other columns only and let the default fill it.")
def caller_default_client_written(r, s: Schema):
    for t in created(s):
        for c in t.columns:
            if c.default is None or "uid" not in c.default.lower() or not _defaults_to_caller(c.default):
                continue
            writes = _client_writes(s, t, c.name)
            if writes:
                yield r.finding(f"{t.qualified}.{c.name} defaults to the signed-in user, but clients may "
                                f"{' and '.join(writes)} another user's id there.", f"{t.qualified}.{c.name}",
                                location=c.location or t.location)


def _caller_stamps(reading) -> set[str]:
    """Fields of NEW a trigger's body sets to the caller's id: `new.created_by := auth.uid()` (casts and a
    sub-select aside), `select auth.uid() into new.created_by`, or a variable holding it (`me := auth.uid();
    new.created_by := me`). A value the client may choose (`coalesce(new.created_by, auth.uid())`) is none."""
    def answer(tree: Any) -> Any:
        kind, body = only_statement(tree)
        return lone_value(body) if kind == "SelectStmt" else None

    if not reading.stamps:
        return set()
    holding = variables_from(reading.trees, reading.into, lambda tree: _is_uid(answer(tree)))
    out = set()
    for field, at in reading.stamps:
        value = answer(reading.trees[at]) if at < len(reading.trees) else None
        bare = unwrap(value)
        names = strings(((bare or {}).get("ColumnRef") or {}).get("fields")) if isinstance(bare, dict) else []
        if _is_uid(value) or (len(names) == 1 and names[0] in holding):
            out.add(field.lower())
    return out


def _defaults_to_caller(default: str) -> bool:
    """auth.uid(), casts aside, as a column's default expression (PostgreSQL refuses a subquery there)."""
    return _is_uid(per_tree("expression", default, lambda: _expression_tree(default)))


def _owner_test(node, col: str, s: Schema | None = None) -> bool:
    """`col = auth.uid()` (either side, casts and a sub-select around the call aside); with the schema, also a
    call of an SQL helper that makes that test of the argument `col` is passed as (`(select private.owns(owner_id))`
    over `select p_owner = (select auth.uid())`: evasion round 7)."""
    e = node.get("A_Expr") if isinstance(node, dict) else None
    if not e:
        return s is not None and _owner_helper_test(node, col, s)
    if equated_columns(e) is None:
        return False
    sides = (e.get("lexpr"), e.get("rexpr"))
    return any(_is_column(a, col) and _is_uid(b) for a, b in (sides, sides[::-1]))


def _owner_helper_test(node, col: str, s: Schema) -> bool:
    """`helper(col)` or `(select helper(col))`, the helper an SQL function whose body is `select <param> =
    auth.uid()` (or an AND with that test) for the parameter `col` is passed as."""
    if not isinstance(node, dict) or not ("SubLink" in node or "FuncCall" in node):
        return False
    return col in _once("owner helper columns", node, _owner_helper_columns, node, s)


def _owner_helper_columns(node, s: Schema) -> frozenset[str]:
    """The columns `_owner_helper_test` holds for, of one node (read once per audit)."""
    return frozenset(c for c in _passed_columns(node) if _owner_helper_reads(node, c, s))


def _passed_columns(node) -> list[str]:
    return [strings(b.get("fields"))[-1] for kind, b in nodes(node) if kind == "ColumnRef" and b.get("fields")]


def _owner_helper_reads(node, col: str, s: Schema) -> bool:
    sub = node.get("SubLink") if isinstance(node, dict) else None
    if isinstance(sub, dict) and sub.get("subLinkType") == "EXPR_SUBLINK":
        node = lone_value((sub.get("subselect") or {}).get("SelectStmt"))
    call = node.get("FuncCall") if isinstance(node, dict) else None
    f = find_function(s, function_name(call)) if isinstance(call, dict) else None
    body = sql_answer(f)
    passed = {i for i, a in enumerate(call.get("args") or [], start=1) if _is_column(a, col)} if body else set()
    if not passed:
        return False
    names = {name: i for i, (name, _) in enumerate(f._body.params, start=1) if name}
    for x in boolean_args(body, "AND_EXPR"):
        e = x.get("A_Expr") if isinstance(x, dict) else None
        if not e or equated_columns(e) is None:
            continue
        sides = (e.get("lexpr"), e.get("rexpr"))
        for a, b in (sides, sides[::-1]):
            ref = a.get("ParamRef") if isinstance(a, dict) else None
            fields = strings((a or {}).get("ColumnRef", {}).get("fields")) if isinstance(a, dict) else []
            position = ref.get("number") if isinstance(ref, dict) else names.get(fields[0]) if len(fields) == 1 \
                else None
            if position in passed and _is_uid(b):
                return True
    return False


def _branches(p, using: bool = True) -> list | None:
    """The policy's OR-ed branches (USING, or WITH CHECK falling back to USING); None for no expression (true)."""
    text, tree = (p.using, p.using_tree) if using or p.check is None else (p.check, p.check_tree)
    if text is None:
        return None
    if tree is None:
        tree = per_tree("expression", text, lambda: _expression_tree(text))
    return boolean_args(tree, "OR_EXPR") if isinstance(tree, dict) else [{}]


def _terms(p, using: bool = True) -> list[list]:
    """The policy's expression as OR-ed conjunctions (tree.disjuncts), or its top-level OR's branches each as one
    conjunction when that grows too large; [[]] for no expression (true)."""
    text, tree = (p.using, p.using_tree) if using or p.check is None else (p.check, p.check_tree)
    if text is None:
        return [[]]
    if tree is None:
        tree = per_tree("expression", text, lambda: _expression_tree(text))
    if not isinstance(tree, dict):
        return [[]]
    found = disjuncts(tree)
    return found if found is not None else [boolean_args(b, "AND_EXPR") for b in boolean_args(tree, "OR_EXPR")]


_MAX_WAYS = 64


def _ways_in(policies: list[Policy], using: bool = True) -> list[tuple[Policy, list]]:
    """(permissive policy, conjunction) for each way in that policies for one command give: each OR-ed conjunction
    of a permissive policy (_terms) AND-ed with one of each restrictive policy's, as PostgreSQL ANDs every
    restrictive policy with the OR of the permissive ones (`admin` and, restrictively, `owner`: admins who own the
    row). A restrictive policy whose conjunctions would make more than _MAX_WAYS ways adds the tests all of them
    hold. [] without a permissive policy: no way in. `using=False`: the WITH CHECK expressions (an insert's, or an
    update's new row; USING where a policy has no check)."""
    ways = [(p, c) for p in policies if p.permissive for c in _terms(p, using)]
    for q in [q for q in policies if not q.permissive] if ways else []:
        terms = _terms(q, using)
        if len(ways) * len(terms) > _MAX_WAYS:
            held = set.intersection(*({canonical(x) for x in c} for c in terms))
            terms = [[x for x in terms[0] if canonical(x) in held]]
        ways = [(p, c + r) for p, c in ways for r in terms]
    return ways


def _owner_gain(s: Schema, t: Table, col: str) -> tuple[Policy, str] | None:
    """An update policy letting someone who is not the row's owner (`col = auth.uid()`) set `col`, and the delete
    that owning the row then gives them beyond their own rights: (the update policy, what it gives). Policies are
    read as ways in (_ways_in: OR-ed conjunctions, each with the restrictive policies' tests): an update whose every
    way in either tests the owner (`member and (owner or admin)`: a member updates only rows they own already) or
    holds every test of a way to delete that needs no owner (an admin, who deletes any row anyway) gives nothing.
    Tests every way to delete holds are left out of that comparison: whoever fails them deletes nothing, owner or
    not (a restrictive `using (done)` binds owner and taker alike)."""
    # the table's ways to delete, read once for all its columns
    delete_terms = _once("ways to delete", t, lambda: [c for _, c in _ways_in(client_policies(t, "delete"))])
    if not any(any(_owner_test(x, col, s) for x in c) for c in delete_terms):
        return None
    if _update_guarded(s, t, col) or not clients_granted(s, t, "update", col):
        return None
    # Tests every way in holds (a wrapper: `member and (admin or owner)`) bind the taker as much as the owner.
    base = set.intersection(*({canonical(x) for x in c} for c in delete_terms))
    deleters = [[x for x in c if canonical(x) not in base] for c in delete_terms
                if not any(_owner_test(x, col, s) for x in c)]
    owners = [c for c in delete_terms if any(_owner_test(x, col, s) for x in c)]
    for p, c in _ways_in(client_policies(t, "update")):
        if any(_owner_test(x, col, s) for x in c):
            continue  # a way in for owners alone (a restrictive owner test is in every way)
        # Owning the row gains a delete where the owner's way reaches rows no way without the owner reaches for
        # this updater: the rows it reaches hold the update's tests and the owner's way's other tests (random
        # fuzz: owners delete drafts they are assigned, and anyone with the role deletes `b in (done, draft)`).
        if any(not _roles_exclude(s, c, o) and not any(
                _holds_all(s, d, c + [x for x in o if not _owner_test(x, col, s)]) for d in deleters) for o in owners):
            return p, "delete"
    return None


def _holds_all(s: Schema, needed: list, have: list) -> bool:
    """Every test of `needed` is among `have`, or follows from one of them: `b = 'draft'` gives `b in ('done',
    'draft')`, and a role in the organisation gives any wider set of roles there (admins are among every role that
    holds a capability all roles hold: random fuzz)."""
    held = {canonical(x) for x in have}
    values = [v for x in have if (v := _value_test(x)) is not None]
    roles = [r for x in have if (r := admitted_roles(s, x)) is not None]
    return all(canonical(y) in held
               or ((w := _value_test(y)) is not None and any(col == w[0] and vals <= w[1] for col, vals in values))
               or ((r := admitted_roles(s, y)) is not None and any(col == r[0] and mine <= r[1] for col, mine in roles))
               for y in needed)


def _value_test(node) -> tuple[str, frozenset] | None:
    """(column, its values) of `col = 'v'` or `col in ('v', 'w')`, casts aside; None for other tests."""
    e = node.get("A_Expr") if isinstance(node, dict) else None
    if not e or strings(e.get("name")) != ["="] or e.get("kind") not in ("AEXPR_OP", "AEXPR_IN"):
        return None
    fields = strings((unwrap(e.get("lexpr")) or {}).get("ColumnRef", {}).get("fields"))
    right = e.get("rexpr")
    items = (right or {}).get("List", {}).get("items") if e.get("kind") == "AEXPR_IN" else [right]
    consts = [unwrap(v) for v in items or []]
    if not fields or not consts or not all(isinstance(v, dict) and "A_Const" in v for v in consts):
        return None
    return fields[-1], frozenset(canonical(v) for v in consts)


def _roles_exclude(s: Schema, updater: list, owner: list) -> bool:
    """The update's way in admits roles the owner's way to delete does not, on the same organisation (`admin`
    updates; exactly `member` deletes what they are assigned): whoever takes the row through that update cannot
    delete it as its owner, as a member holds one role in an organisation. Only tests role_sets reads count."""
    if not one_role_per_member(s):
        return False
    held = [found for x in updater if (found := admitted_roles(s, x)) is not None]
    return any(column == other and not roles & others
               for x in owner if (found := admitted_roles(s, x)) is not None
               for column, roles in [found] for other, others in held)


@rule("BP065", "owner_taken_by_updater", Level.WARN, ("SECURITY",),
      summary="A column makes the signed-in user a row's owner in a policy, and others who may update the row "
              "may set it to themselves.",
      why="A delete policy trusts `owner_id = auth.uid()`, but an update policy admits people who are not the "
          "owner (admins, members, anyone on a null owner) and lets them write the column: they set it to "
          "themselves, become the owner, and delete what their own role never could. A restrictive policy is "
          "AND-ed with every permissive way in: `as restrictive for delete using (owner_id = auth.uid())` beside "
          "an admins' delete policy lets an admin delete only what they own, so an admin who may update any row "
          "takes it, then deletes it. A default (BP060) is no part of it: the column may be empty or filled by "
          "the server. An update for roles the owner's way to delete does not admit gives nothing (admins "
          "update; exactly members delete the rows assigned to them): a user holds one role in an organisation.",
      bad="create policy orgs_update on organizations for update to authenticated using (is_admin(id));\n"
          "create policy orgs_delete on organizations for delete to authenticated using (owner_id = auth.uid());",
      fix="Keep the column out of the clients' update grant (grant update (name, ...) on the other columns) or "
          "refuse its change in a BEFORE UPDATE trigger (new.owner_id is distinct from old.owner_id), and move "
          "ownership through a function that checks the current owner.")
def owner_taken_by_updater(r, s: Schema):
    for t in created(s):
        if not t.rls_enabled:
            continue
        for c in t.columns:
            found = _owner_gain(s, t, c.name)
            if found:
                p, command = found
                yield r.finding(f"{t.qualified}.{c.name} makes a user the row's owner for {command}, but "
                                f"{policy_label(t, p)} lets others update it: they can set it to themselves.",
                                f"{t.qualified}.{c.name}", location=c.location or t.location)


def _self_editable(s: Schema) -> dict[str, tuple[str, set[str]]]:
    """Tables whose rows their user updates (`id = auth.uid()` in a branch of a permissive update policy): by
    qualified name, that key column and the other columns the user may change there (granted to a role the policy
    applies to, not set or guarded by a BEFORE UPDATE trigger, not named by the policy's check). anon's legacy
    UPDATE on every column opens no row of a policy `to authenticated` (evasion round 17 fp01: the docs' `revoke
    update on profiles from authenticated; grant update (full_name, avatar_url) ... to authenticated`)."""
    out: dict[str, tuple[str, set[str]]] = {}
    for t in created(s):
        if not t.rls_enabled:
            continue
        for p in (p for p in client_policies(t, "update") if p.permissive):
            keys = [c.name for c in t.columns for b in (_branches(p) or [])
                    if any(_owner_test(x, c.name) for x in boolean_args(b, "AND_EXPR"))]
            if not keys:
                continue
            checked = {c for _, tree, _ in trees(p) if tree is not None
                       for kind, body in nodes(tree) if kind == "ColumnRef" for c in strings(body.get("fields"))[-1:]}
            roles = CLIENT_ROLES if not p.roles or "public" in p.roles else p.roles
            free = {c.name for c in t.columns if c.name not in keys and c.name not in checked
                    and clients_granted(s, t, "update", c.name, roles)
                    and not _update_guarded(s, t, c.name)}
            if free:
                key, columns = out.get(t.qualified, (keys[0], set()))
                out[t.qualified] = (key, columns | free)
    return out


def _decides_by(s: Schema, tree, default_schema: str, table: str, key: str, columns: set[str]) -> str | None:
    """The first of `columns` a query tests that reads `table` at the caller's own row (`key = auth.uid()`: who the
    caller is, by what they wrote there). A query tied to the outer row instead (a parent's columns, `under`)
    decides about that row, which is the author's to decide."""
    if table not in relation_names(tree, default_schema):
        return None
    for kind, body in nodes(tree):
        if kind != "SelectStmt" or table not in from_relations(body, default_schema) or \
                not any(k == "A_Expr" and _owner_test({k: e}, key) for k, e in nodes(body.get("whereClause"))) or \
                tied_to_row(s, body, default_schema):
            continue
        found = next((c for k, b in nodes(body) if k == "ColumnRef"
                      for c in strings(b.get("fields"))[-1:] if c in columns), None)
        if found:
            return found
    return None


def _caller_views(s: Schema, editable: dict[str, tuple[str, set[str]]]) -> dict[str, tuple[str, set[str]]]:
    """Views that show the caller's own row of a self-editable table (`select p.is_staff from profiles p where
    p.id = auth.uid()`): by qualified name, that table and the editable columns they show, under their own names.
    A lookup through one (`select is_staff from my_profile`) is the caller's row already."""
    out: dict[str, tuple[str, set[str]]] = {}
    for v in s.views:
        tables = [t for t in v.reads or () if t in editable]
        if v.materialized or not tables or not v.query:
            continue
        tree = view_statement(v)
        for table in tables:
            key, columns = editable[table]
            if tree is None or not _decides_by(s, tree, v.schema_name, table, key, columns):
                continue
            shown = {(t.get("ResTarget") or {}).get("name") or
                     (strings((((t.get("ResTarget") or {}).get("val") or {}).get("ColumnRef") or {}).get("fields"))
                      or [""])[-1] for t in tree.get("SelectStmt", {}).get("targetList") or []}
            out[f"{v.schema_name}.{v.name}"] = (table, shown & columns)
    return out


def _through_view(tree, default_schema: str, view: str, columns: set[str]) -> str | None:
    """The first of `columns` a query reading `view` tests or returns."""
    for kind, body in nodes(tree):
        if kind == "SelectStmt" and view in from_relations(body, default_schema):
            found = next((c for k, b in nodes(body) if k == "ColumnRef" for c in strings(b.get("fields"))[-1:]
                          if c in columns), None)
            if found:
                return found
    return None


@rule("BP067", "policy_trusts_self_editable_column", Level.WARN, ("SECURITY",),
      summary="A policy decides by a column users change on their own row (profiles.role, is_admin, plan).",
      why="`profiles` lets each user update their own row, every column the grant allows, and a helper such as "
          "`is_admin()` reads `profiles.role` to open other tables: the user sets `role = 'admin'` on their own "
          "profile (PATCH /profiles) and reads everyone's orders. It is the user_metadata hole (BP020, BP052) in "
          "a table of the app's.",
      bad="create policy profiles_update on profiles for update to authenticated using (id = (select auth.uid()));\n"
          "create function private.is_admin() returns boolean language sql stable security definer set "
          "search_path = '' as $$\n  select exists (select 1 from public.profiles where id = (select auth.uid()) and "
          "role = 'admin') $$;\ncreate policy orders_select on orders for select to authenticated using "
          "(user_id = (select auth.uid()) or (select private.is_admin()));",
      fix="Keep the column out of the users' update grant (grant update (full_name, avatar_url) on profiles), or "
          "refuse its change in a BEFORE UPDATE trigger, or keep roles in a table only the service role or a "
          "checked function writes (memberships).")
def policy_trusts_self_editable_column(r, s: Schema):
    editable = _self_editable(s)
    if not editable:
        return
    for t, p, table, column, view, helper in trusted_columns(s, editable):
        shown = f" (as {view})" if view else ""
        through = f" through {helper}" if helper else ""
        yield r.finding(f"{policy_label(t, p)} decides by {table}.{column}{shown}{through}, which users "
                        f"update on their own row.", f"{t.qualified}.{p.name}", location=p.location or t.location)


def trusted_columns(s: Schema, editable: dict[str, tuple[str, set[str]]]):
    """(table, policy, table read, column, the view it is read through or None, helper or None) of every client
    policy deciding by one of `editable`'s columns (by table: the key column naming the caller's row, and the
    columns): BP067 asks it of self-editable columns, BP049 of those a signup trigger fills from the user's own
    metadata."""
    views = _caller_views(s, editable)
    for t in s.tables:
        for p in (p for p in t.policies if applies_to_clients(p)):
            found = _self_edited_decision(s, t, p, editable, views)
            if found is not None:
                yield (t, p, *found)


def _self_edited_decision(s: Schema, t: Table, p: Policy, editable: dict[str, tuple[str, set[str]]],
                          views: dict[str, tuple[str, set[str]]]) -> tuple[str, str, str | None, str | None] | None:
    """(table, column, the view it is read through or None, the helper that reads it or None) of the first
    self-editable column the policy decides by.

    Only the tables the policy reads (itself and through the functions it calls) are judged: a policy per table
    of a long history, each table its owner's to edit, would otherwise be squared. A branch that keeps to the
    caller's own rows (`user_id = auth.uid() and ...`) lets a preference of theirs decide about their own rows
    only, nothing about anyone else's."""
    columns_here = [c.name for c in t.columns]
    own = [(b, "public", None) for _, tree, _ in trees(p) if tree is not None
           for b in boolean_args(tree, "OR_EXPR")
           if not any(_owner_test(c, col) for c in boolean_args(b, "AND_EXPR") for col in columns_here)]
    helpers = []
    for name, _, _ in (c for b, _, _ in own for c in calls(b)):
        f = find_function(s, name)
        reading = getattr(f, "_body", None) if f is not None else None
        if reading is not None:
            helpers += [(tree, reading.default_schema, f.qualified) for tree in reading.trees]
    read = {n for tree, schema, _ in own + helpers for n in relation_names(tree, schema)}
    for view in (x for x in views if x in read):
        table, columns = views[view]
        for tree, schema, helper in own + helpers:
            if column := _through_view(tree, schema, view, columns):
                return table, column, view, helper
    for table in (x for x in editable if x in read):
        key, columns = editable[table]
        for tree, schema, helper in own + helpers:
            # a table's own policy reading its row's column is the row's owner deciding about their own row
            if (column := _decides_by(s, tree, schema, table, key, columns)) and \
                    not (helper is None and table == t.qualified):
                return table, column, None, helper
    return None


_NEW_OLD = frozenset({"new", "old"})


def _row_keys(where, picked: dict[str, str] | None = None, rows: frozenset[str] = _NEW_OLD) -> list[tuple[str, str]]:
    """(column of the written table, column of NEW/OLD) for each `column = new.x` among the top-level conjuncts
    (`rows`: NEW, OLD and the statement's names for the trigger's transition tables, `t.project_id`), and each
    `column = v.x` (or `= v`) where `picked` says which NEW column chose the row variable v holds."""
    out = []
    picked = picked or {}
    for c in boolean_args(where, "AND_EXPR") if isinstance(where, dict) else []:
        if isinstance(c, dict) and "SubLink" in c:
            out += _in_keys(c["SubLink"], rows)
            continue
        e = c.get("A_Expr") if isinstance(c, dict) else None
        sides = equated_columns(e) if e else None
        for a, b in (sides, sides[::-1]) if sides else ():
            if not a or not b or (len(a) == 2 and a[0].lower() in rows):
                continue
            if len(b) == 2 and b[0].lower() in rows:
                out.append((a[-1], b[1]))
            elif len(b) <= 2 and b[0] in picked and (len(a) == 2 or a[-1] != b[0]):
                out.append((a[-1], picked[b[0]]))
    return out


def _in_keys(link: dict, rows: frozenset[str]) -> list[tuple[str, str]]:
    """`column in (select x.c from ...)` (or `= any (...)`) as _row_keys reads `column = x.c`, x one of `rows`; a
    bare `c` is a column of the sub-query's one relation, when `rows` names it (`id in (select source_project_id
    from copy_jobs where ...)`)."""
    test = strings(((link.get("testexpr") or {}).get("ColumnRef") or {}).get("fields")) \
        if isinstance(link.get("testexpr"), dict) else []
    select = (link.get("subselect") or {}).get("SelectStmt") or {}
    targets = select.get("targetList") or []
    if link.get("subLinkType") != "ANY_SUBLINK" or strings(link.get("operName")) not in ([], ["="]) or not test or \
            (len(test) == 2 and test[0].lower() in rows) or len(targets) != 1:
        return []
    value = strings((((targets[0].get("ResTarget") or {}).get("val") or {}).get("ColumnRef") or {}).get("fields"))
    if len(value) == 1:
        items = [(i or {}).get("RangeVar") for i in select.get("fromClause") or []]
        rv = items[0] if len(items) == 1 and isinstance(items[0], dict) else {}
        value = [((rv.get("alias") or {}).get("aliasname") or rv.get("relname", "")), value[0]]
    return [(test[-1], value[1])] if len(value) == 2 and value[0].lower() in rows else []


def _joins(body: dict) -> tuple[list[dict], Any]:
    """The tables joined in a SELECT's FROM (`from todo join projects p on ...`), which statement_relations leaves
    aside, and the statement's filter: its WHERE and the ON conditions of those joins, AND-ed (`on p.id =
    todo.source_project_id` picks as a WHERE would)."""
    tables: list[dict] = []
    quals: list = []
    stack = list(body.get("fromClause") or [])
    while stack:
        item = stack.pop()
        join = item.get("JoinExpr") if isinstance(item, dict) else None
        if not join:
            continue
        quals += [join["quals"]] if join.get("quals") else []
        for side in (join.get("larg"), join.get("rarg")):
            if isinstance(side, dict) and "RangeVar" in side:
                tables.append(side["RangeVar"])
            else:
                stack.append(side)
    where = body.get("whereClause")
    parts = [x for c in [where, *quals] if c is not None for x in boolean_args(c, "AND_EXPR")]
    return tables, (None if not parts else parts[0] if len(parts) == 1 else
                    {"BoolExpr": {"boolop": "AND_EXPR", "args": parts}})


def _tests_column(where, column: str, clients: frozenset[str] = frozenset(),
                  client_table: Table | None = None) -> bool:
    """The filter tests the written table's own `column` (not a column of a row the client chose: NEW, OLD, a
    queued row `clients` names): the statement keeps to an organisation it names (= new.organization_id, = any
    (<the caller's>)). With `client_table` (the table of the client's row), a test that only compares the column
    with another column of the client's row (`organization_id = job.source_organization_id`, evasion round 6 e04)
    keeps to an organisation the client chose: it ties nothing, unless every insert policy of that table tests
    the column too (the caller must be an admin of the source as well)."""
    names = {"new", "old"} | {c.lower() for c in clients}
    key = client_table.tenant_key if client_table is not None else None

    def own(fields: list[str]) -> bool:
        return fields[-1:] == [column] and (len(fields) == 1 or fields[0].lower() not in names)
    if not any(k == "ColumnRef" and own(strings(b.get("fields"))) for k, b in nodes(where)):
        return False
    if key is None:
        return True
    for c in boolean_args(where, "AND_EXPR"):
        if not any(k == "ColumnRef" and own(strings(b.get("fields"))) for k, b in nodes(c)):
            continue
        sides = equated_columns(c["A_Expr"]) if isinstance(c, dict) and "A_Expr" in c else None
        chosen = sides is not None and any(
            col and own(col) and arg and len(arg) == 2 and arg[0].lower() in names and arg[1] != key and
            arg[1] not in _once("insert-checked columns", client_table, _policy_checked_columns, client_table)
            for col, arg in (sides, sides[::-1]))
        if not chosen:
            return True
    return False


def _policy_checked_columns(t: Table) -> set[str]:
    """The columns every permissive insert policy of t checks against a lookup (a conjunct of its check that names
    the column and calls a function or runs a sub-query: `from_organization_id = any (array(select
    private.organization_ids_with_role('admin')))`); `from_organization_id <> organization_id` checks nothing of
    the caller's (review). None without such a policy."""
    def checked(tree) -> set[str]:
        return {strings(b.get("fields"))[-1] for c in boolean_args(tree, "AND_EXPR")
                if any(k in ("FuncCall", "SubLink") for k, _ in nodes(c))
                for k, b in nodes(c) if k == "ColumnRef" and strings(b.get("fields"))}
    policies = [p for p in client_policies(t, "insert") if p.permissive]
    sets = [{col for _, tree, _ in trees(p) if tree is not None for col in checked(tree)} for p in policies]
    return set.intersection(*sets) if sets else set()


def _kept_by_key(t: Table, u: Table, picked: str, column: str | None = None) -> bool:
    """A foreign key keeps the rows of u that t's `picked` column picks (by u's `column`) in t's row's organisation:
    (tenant key, picked) -> u, or u's own (tenant key, column) -> t (tenant key, picked): a chunk of an export,
    picked by the export's id (`where export_id = e.id`), belongs to the export's organisation."""
    if any(fk.ref_schema == u.schema_name and fk.ref_table == u.name and picked in fk.columns
           and t.tenant_key in fk.columns for fk in t.foreign_keys):
        return True
    return column is not None and any(
        fk.ref_schema == t.schema_name and fk.ref_table == t.name and
        (pairs := dict(zip(fk.columns, fk.ref_columns))).get(column) == picked and
        pairs.get(u.tenant_key) == t.tenant_key for fk in u.foreign_keys)


def _picked_variables(s: Schema, t: Table, reading, rows: frozenset[str] = _NEW_OLD) -> dict[str, tuple[str, str]]:
    """variable -> (table, NEW column) for each variable a SELECT ... INTO fills from a row of another tenant table
    that a NEW column picks (`select * into v from projects where id = new.project_id`), nothing keeping that row
    in the new row's organisation: no test of the table's tenant key in the statement, no composite foreign key,
    and the row's organisation never compared afterwards (`if v.organization_id <> new.organization_id`)."""
    out: dict[str, tuple[str, str]] = {}
    for index, names in reading.into:
        select = into_select(reading, index)
        if select is None or not select.get("fromClause"):
            continue
        where = select.get("whereClause")
        keys = _row_keys(where, {v: col for v, (_, col) in out.items()}, rows)
        for rv in statement_relations("SelectStmt", select) or []:
            u = s.table(rv.get("relname", ""), rv.get("schemaname") or reading.default_schema)
            if u is None or u.qualified == t.qualified or not is_tenant(u) or not u.tenant_key or \
                    _tests_column(where, u.tenant_key):
                continue
            taken = taken_columns(select, len(names))
            checked = any(compared_later(reading, index, name, u.tenant_key,
                                          bool(taken) and taken[position] == u.tenant_key)
                          for position, name in enumerate(names))
            for column, picked in keys:
                if not checked and not _kept_by_key(t, u, picked, column):
                    for name in names:
                        out.setdefault(name, (u.qualified, picked))
    return out


def _transition_names(body, transitions: set[str]) -> frozenset[str]:
    """The names a statement gives the trigger's transition tables (`from new_transfers t`: t, or in a sub-query:
    `where id in (select project_id from new_transfers)`), whose rows are the client's as NEW is."""
    if not transitions:
        return frozenset()
    return frozenset(((rv.get("alias") or {}).get("aliasname") or rv.get("relname", "")).lower()
                     for kind, rv in nodes(body) if kind == "RangeVar"
                     and not rv.get("schemaname") and rv.get("relname", "").lower() in transitions)


def _new_aliases_read(reading):
    """The body with each variable set once, and only from a column of NEW or OLD (`v_project := new.id`, or a
    DECLARE default), read as that column: `where id = v_project` picks by new.id (evasion round 6, e11)."""
    if not reading.into:
        return reading
    aliases = {name: value for name, value in values_set_once(reading).items() if isinstance(value, dict) and
               len(ref := strings((value.get("ColumnRef") or {}).get("fields"))) == 2 and ref[0].lower() in _NEW_OLD}
    if not aliases:
        return reading
    return replace(reading, trees=tuple(_bind(tree, aliases) for tree in reading.trees))


def _trigger_writes_elsewhere(s: Schema, t: Table, f, copies: bool, transitions: set[str] = frozenset(),
                              rows: frozenset[str] = frozenset(),
                              trusted: frozenset[str] = frozenset()) -> list[tuple[str, str, str]]:
    """(writes or reads, table, NEW column) for each statement on another tenant table whose rows a NEW/OLD column
    picks, directly or through a variable a SELECT ... INTO filled from such a row, with neither that table's
    tenant key tied to the row's nor a foreign key keeping the column in the row's tenant: an update or delete, a
    copy (insert ... select, or insert of a picked variable's values), or with `copies` (a BEFORE trigger, which
    may set NEW's columns) a read of a value. `rows`: other names for rows of t the client wrote (a scheduled
    job's loop over a queue: `for job in select * from jobs`); `trusted`: NEW or OLD when it is not the client's
    (OLD of an INSTEAD OF trigger on a view running with the caller's rights: RLS chose it)."""
    if f._body is None:
        return []
    reading = _once("new aliases", f, _new_aliases_read, f._body)
    out: list[tuple[str, str, str]] = []
    clients = (_NEW_OLD | rows) - trusted  # the names for rows the client chose
    variables = _picked_variables(s, t, reading, clients)
    guarded = _guarded_picks(s, t, reading, clients)
    picked = {v: col for v, (_, col) in variables.items()}
    into = dict(reading.into)
    for index, tree in enumerate(reading.trees):
        for kind, body in nodes(tree):
            if kind in ("UpdateStmt", "DeleteStmt"):
                verb = "writes"
            elif kind == "InsertStmt" and ((body.get("selectStmt") or {}).get("SelectStmt") or {}).get("fromClause"):
                # insert into projects select ... from projects p where p.id = new.source_id: a copy of a row
                kind, body, verb = "SelectStmt", body["selectStmt"]["SelectStmt"], "copies rows of"
            elif kind == "InsertStmt":
                # insert into archive values (v.id, v.secret_notes): a copy of the row the variable holds
                used = {strings(b.get("fields"))[0] for k, b in nodes(body.get("selectStmt")) if k == "ColumnRef"}
                for name in sorted(used & set(variables)):
                    table, column = variables[name]
                    if ("copies rows of", table, column) not in out:
                        out.append(("copies rows of", table, column))
                continue
            elif kind == "SelectStmt" and copies and any(k == "ColumnRef" for k, _ in nodes(body.get("targetList"))) \
                    and (index not in into or set(into[index]) & set(variables)):
                # a value taken (select p.name into new.project_name, or into a variable whose row's organisation
                # is never compared), not a test (select 1, or a row whose organisation the body checks)
                if _derives_tenant_key(s, t, body, into.get(index), reading.default_schema):
                    continue
                verb = "reads"
            else:
                continue
            joined, where = _joins(body)
            rvs = (statement_relations(kind, body) or []) + (joined if kind == "SelectStmt" else [])
            keys = _row_keys(where, picked, clients | _transition_names(body, transitions))
            for rv in rvs:
                u = s.table(rv.get("relname", ""), rv.get("schemaname") or reading.default_schema)
                if u is None or u.qualified == t.qualified or not is_tenant(u) or not keys or \
                        _tests_column(where, u.tenant_key, clients, t):
                    continue
                for col, column in keys:
                    if not _kept_by_key(t, u, column, col) and (u.qualified, column) not in guarded and \
                            (verb, u.qualified, column) not in out:
                        out.append((verb, u.qualified, column))
    return out


def _derives_tenant_key(s: Schema, t: Table, select: dict, targets, default_schema: str) -> bool:
    """`select p.organization_id into new.organization_id from projects p where p.id = new.project_id`: a BEFORE
    trigger giving the row its parent's organisation (audit-evasion round 9, fp01), with whatever else it copies
    from that row (`p.name into new.project_name`). The row is then that organisation's, which its policies' WITH
    CHECK (run after BEFORE triggers) checks: nothing of another organisation reaches a caller who may write it."""
    if not t.tenant_key or not targets:
        return False
    keys = {u.tenant_key for rv in statement_relations("SelectStmt", select) or []
            if (u := s.table(rv.get("relname", ""), rv.get("schemaname") or default_schema)) is not None
            and is_tenant(u) and u.tenant_key}
    values = [unwrap((x.get("ResTarget") or {}).get("val")) for x in select.get("targetList") or []]
    return len(values) == len(targets) and any(
        target.lower() == f"new.{t.tenant_key}".lower() and isinstance(v, dict) and
        strings((v.get("ColumnRef") or {}).get("fields"))[-1:] and
        strings(v["ColumnRef"].get("fields"))[-1] in keys for target, v in zip(targets, values))


def _guarded_picks(s: Schema, t: Table, reading, rows: frozenset[str]) -> set[tuple[str, str]]:
    """(table, NEW column) for each row of another tenant table the condition of an IF that raises looks up by the
    NEW column and its tenant key together (`if not exists (select 1 from projects p where p.id = new.project_id and
    p.organization_id = new.organization_id) then raise`): the statements picking it by that column after the
    guard pick a row of the organisation checked."""
    out: set[tuple[str, str]] = set()
    for tree in (reading.trees[i] for i in reading.guards):
        for kind, body in nodes(tree):
            if kind != "SelectStmt" or not body.get("whereClause"):
                continue
            where = body["whereClause"]
            for rv in statement_relations(kind, body) or []:
                u = s.table(rv.get("relname", ""), rv.get("schemaname") or reading.default_schema)
                if u is not None and u.qualified != t.qualified and is_tenant(u) and u.tenant_key and \
                        _tests_column(where, u.tenant_key):
                    out |= {(u.qualified, column) for _, column in _row_keys(where, None, rows)}
    return out


@rule("BP071", "definer_trigger_writes_unchecked_row", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A SECURITY DEFINER trigger on a table clients write (or a definer function a trigger calls with the "
              "new row's columns) updates, deletes or copies from rows of another tenant table picked by a column of "
              "the new row that nothing keeps in the row's organisation.",
      why="The insert policy checks the row's own organisation_id; the trigger then writes past RLS wherever "
          "`new.project_id` points. Without a composite foreign key (organization_id, project_id) -> "
          "projects (organization_id, id), or the written table's organization_id in the trigger's WHERE, a "
          "client names another organisation's project and the trigger moves, changes or deletes it, or copies its "
          "name into the client's own row. An invoker trigger that hands `new.project_id` to a definer helper "
          "(`perform private.move_project(new.project_id, new.organization_id)`) does the same, and so does a "
          "definer INSTEAD OF trigger on a view that writes `where id = new.id`: the client chooses every column "
          "of NEW, and no policy checks a view's rows (`old.id` of a view with the caller's rights is one RLS "
          "chose). A stored generated column computed by a definer lookup (`generated always as "
          "(private.project_label(project_id)) stored`) is the BEFORE trigger's copy written as a column, and so is "
          "an invoker BEFORE trigger setting a column from such a lookup (`new.project_name := "
          "private.project_label(new.project_id)`).",
      bad="create function private.apply_transfer() returns trigger language plpgsql security definer as $$\n"
          "begin update public.projects set organization_id = new.organization_id where id = new.project_id;\n"
          "return new; end $$;",
      fix="Reference the row through a composite foreign key (organization_id, project_id) -> projects "
          "(organization_id, id), or add `and organization_id = <the organisation the row belongs to>` to the "
          "trigger's statement, or make the trigger function and the functions it calls SECURITY INVOKER so RLS "
          "applies.")
def definer_trigger_writes_unchecked_row(r, s: Schema):
    for t in created(s):
        if not is_tenant(t):
            continue
        for trg in t.triggers:
            f = find_function(s, trg.function)
            written = _client_written(s, t, trg.events)
            if f is None or not written:
                continue
            transitions = {r.split(" as ", 1)[1].lower() for r in trg.referencing if " as " in r}
            hits = _trigger_writes_elsewhere(s, t, f, trg.timing == "before", transitions) \
                if f.security_definer else []
            runs = f"runs {f.qualified} with its owner's rights"
            for callee, bound in [] if hits else _once("definers given new", f, _definers_given_new, s, f):
                hits = _trigger_writes_elsewhere(s, t, bound, False, transitions)
                if not hits and _sets_new_from(trg, f, callee):
                    hits = [h for h in _trigger_writes_elsewhere(s, t, bound, True, transitions) if h[0] == "reads"]
                if hits:
                    runs = f"runs {f.qualified}, which calls {callee.qualified} with its owner's rights,"
                    break
            if hits:
                verb, table, column = hits[0]
                into = " into the row" if verb == "reads" else ""
                rows = sorted(transitions)[0] if trg.level == "statement" and transitions else "new"
                yield r.finding(f"Trigger {trg.name} on {t.qualified} {runs} and {verb} {table} where "
                                f"{rows}.{column} points{into}, which nothing keeps in the row's organisation.",
                                f"{t.qualified}.{trg.name}", location=trg.location or t.location)
    # A stored generated column computed by a definer lookup is the BEFORE trigger's copy written as a column.
    for t in created(s):
        if not is_tenant(t) or not _client_written(s, t):
            continue
        for column, callee, hits in _generated_lookups(s, t):
            _, table, picked = hits[0]
            yield r.finding(f"Generated column {column} of {t.qualified} runs {callee.qualified} with its owner's "
                            f"rights and reads {table} where new.{picked} points into the row, which nothing keeps "
                            "in the row's organisation.", f"{t.qualified}.{column}", location=t.location)
    # INSTEAD OF triggers on a view clients write: the client chooses every column of NEW (OLD too, unless the view
    # runs with the caller's rights, when RLS chose it), and no policy checks the view's rows.
    for v in s.views:
        if v.materialized or not v.triggers or not any(
                (u := s.table(*name.split(".", 1)[::-1])) is not None and is_tenant(u) for name in v.reads or ()):
            continue
        qualified = f"{v.schema_name}.{v.name}"
        stand_in = Table(schema_name=v.schema_name, name=v.name, grants=v.grants)
        for trg in v.triggers:
            f = find_function(s, trg.function)
            if f is None or not any(clients_granted(s, stand_in, e) for e in trg.events):
                continue
            trusted = frozenset({"old"}) if v.security_invoker else frozenset()
            hits = _trigger_writes_elsewhere(s, stand_in, f, False, trusted=trusted) if f.security_definer else []
            runs = f"runs {f.qualified} with its owner's rights"
            # An invoker trigger handing NEW's columns to a definer helper does the same (evasion round 6, e08).
            for callee, bound in [] if hits else _once("definers given new", f, _definers_given_new, s, f):
                hits = _trigger_writes_elsewhere(s, stand_in, bound, False, trusted=trusted)
                if hits:
                    runs = f"runs {f.qualified}, which calls {callee.qualified} with its owner's rights,"
                    break
            if hits:
                verb, table, column = hits[0]
                yield r.finding(f"Trigger {trg.name} on view {qualified} {runs} and {verb} {table} where "
                                f"new.{column} points, which the client chooses: nothing keeps it in the caller's "
                                "organisations.", f"{qualified}.{trg.name}", location=trg.location or v.location)


def _sets_new_from(trg, f, callee) -> bool:
    """A BEFORE trigger whose function sets NEW's columns, calling a definer helper that returns a value (not a
    test): `new.project_name := private.project_label(new.project_id)` copies what the helper reads into the row,
    as a generated column computed by it does (evasion round 7, tr1)."""
    return trg.timing == "before" and bool(f.assigns) and \
        callee.returns.lower() not in ("void", "boolean", "bool", "trigger")


class _Bound:
    """A function as a call gives it its arguments: its body read with each parameter the call passes a NEW column
    replaced by that column (`move_project(new.project_id, ...)`: `where id = p_project` reads `where id =
    new.project_id`)."""

    def __init__(self, f, reading) -> None:
        self.qualified, self._body = f.qualified, reading


def _definers_given_new(s: Schema, f, columns: set[str] | None = None) -> list[tuple[object, _Bound]]:
    """(callee, its body bound to the call) for each SECURITY DEFINER function the trigger function's body calls
    with NEW's columns among the arguments, directly or through invoker functions it hands them to (evasion round
    6: trigger -> invoker helper -> definer write). With `columns`, `f` is an expression's parse trees instead (a
    generated column's), whose bare references to those columns are NEW's."""
    trees = f if columns is not None else (f._body.trees if f._body is not None else ())
    return _definers_called(s, trees, columns, set(), 0)


def _definers_called(s: Schema, trees, columns: set[str] | None, seen: set[str], depth: int,
                     rows: frozenset[str] = _NEW_OLD, every: bool = False) -> list:
    """`rows`: the names of the rows whose columns are followed (NEW and OLD, or a worker's queued row); `every`:
    invoker callees count too (a worker the server runs has every right already)."""
    out = []
    for tree in trees:
        for kind, call in nodes(tree):
            callee = find_function(s, function_name(call)) if kind == "FuncCall" else None
            body = callee._body if callee is not None else None
            if body is None or callee.returns.lower() == "trigger":
                continue
            # a parameter whose row the callee loads, checks and only then writes (BP073's load-then-authorise) is
            # one it answers for itself
            # an invoker helper that tests an argument in a guard before handing it on answers for it (review)
            checked = {param for _, param in authorised_picks(s, body, {n: n for n, _ in body.params if n})} \
                if callee.security_definer else \
                {n for n, _ in body.params if n and any(mentions_variables(body.trees[i], {n}) for i in body.guards)}
            bound = {}
            for (name, _), arg in zip(body.params, call.get("args") or []):
                if name in checked:
                    continue
                ref = strings(((arg or {}).get("ColumnRef") or {}).get("fields")) if isinstance(arg, dict) else []
                if name and len(ref) == 2 and ref[0].lower() in rows:
                    bound[name] = arg
                elif name and columns is not None and len(ref) == 1 and ref[0] in columns:
                    bound[name] = {"ColumnRef": {"fields": [{"String": {"sval": "new"}}, {"String": {"sval": ref[0]}}]}}
            if not bound:
                continue
            bound_trees = tuple(_bind(tree, bound) for tree in body.trees)
            if callee.security_definer or every:
                out.append((callee, _Bound(callee, replace(body, trees=bound_trees))))
            if (every or not callee.security_definer) and depth < 4 and callee.qualified not in seen:
                seen.add(callee.qualified)  # an invoker helper hands NEW's columns on
                out += _definers_called(s, bound_trees, None, seen, depth + 1, rows, every)
    return out


def _generated_lookups(s: Schema, t: Table):
    """(column, callee, hits) for each stored generated column of t whose expression hands columns of the row to a
    definer function that reads another tenant table's row by them into the value: a BEFORE trigger's copy."""
    names = {c.name for c in t.columns}
    for c in t.columns:
        text = c.default or ""
        if not text.startswith("generated always as ("):
            continue
        try:
            trees = [pgparse.parse(f"select {text[len('generated always as '):]}")]
        except (pgparse.PGQueryError, RecursionError, ValueError):
            continue
        for callee, bound in _definers_given_new(s, trees, names):
            hits = [h for h in _trigger_writes_elsewhere(s, t, bound, True) if h[0] == "reads"]
            if hits:
                yield c.name, callee, hits
                break


def _bind(tree, bound: dict):
    """The tree with each bare reference to a bound parameter replaced by what the call passed."""
    def value(node):
        names = strings((node.get("ColumnRef") or {}).get("fields")) if isinstance(node.get("ColumnRef"), dict) else []
        return bound.get(names[0]) if len(names) == 1 else None
    return replaced(tree, value)


def _client_written(s: Schema, t: Table, events=("insert", "update")) -> list[str]:
    """Of `events`, the writes clients may make to t: granted, and let through by a policy where RLS is on."""
    return [e for e in events if e in ("insert", "update") and clients_granted(s, t, e)
            and (not t.rls_enabled or client_policies(t, e))]


def _server_run_functions(s: Schema) -> list[tuple[str, object]]:
    """(who runs it, function) for each function a pg_cron job's command calls, and each function those call;
    then each other function clients may not execute that is not a trigger's (run by the service role or a job
    scheduled outside the migrations: Supabase's Cron page keeps its jobs in the database)."""
    out: list[tuple[str, object]] = []
    seen: set[str] = set()
    for job in s.cron_jobs:
        try:
            names = called_functions(pgparse.parse(job.command))
        except (pgparse.PGQueryError, RecursionError, ValueError):
            continue
        while names:
            f = find_function(s, names.pop(0))
            if f is None or f.qualified in seen:
                continue
            seen.add(f.qualified)
            out.append((f"by pg_cron job '{job.name or job.command}'", f))
            names += list(f.calls or ())
    # A function another one calls is that one's helper: its caller decides who reaches it.
    called = {name for g in s.functions for name in g.calls or () if name not in (g.qualified, g.name)}
    called |= {name for v in s.views for name in v.calls or ()}
    out += [("only by the server (no client may execute it)", f) for f in s.functions if f.qualified not in seen and
            f.returns.lower() not in ("trigger", "event_trigger") and not set(CLIENT_ROLES) & set(f.execute_roles)
            and f.qualified not in called and f.name not in called]
    return out


@rule("BP077", "server_worker_trusts_queued_rows", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A worker only the server runs (a pg_cron job's function, or one no client may execute) reads rows "
              "clients write (a queue) and updates, deletes or copies rows of another tenant table that a column of "
              "them picks, which nothing keeps in the queued row's organisation.",
      why="pg_cron runs a job as the role that scheduled it, usually postgres, and the service role bypasses RLS: "
          "the worker reads and writes past every policy. The queue's insert policy checks the job's own "
          "organization_id; the worker then copies or changes whatever row `job.source_project_id` names. A "
          "member of one organisation queues a job naming another organisation's project, and the worker copies "
          "its data into the member's organisation (or changes or deletes it): the confused deputy of BP071, run "
          "on a schedule instead of by a trigger. Jobs made on Supabase's Cron page live in the database, not in "
          "the migrations, so a function no client may execute counts as the server's too. A helper the worker hands "
          "the queued row's columns to (`perform private.copy_project(job.source_project_id, job.organization_id)`) "
          "runs with the worker's rights: its statements are read with those columns.",
      bad="for job in select * from public.copy_jobs loop\n"
          "  insert into public.projects (organization_id, name, notes) select job.organization_id, p.name, p.notes\n"
          "    from public.projects p where p.id = job.source_project_id;\nend loop;",
      fix="Reference the row through a composite foreign key (organization_id, source_project_id) -> projects "
          "(organization_id, id), or add `and p.organization_id = job.organization_id` to the worker's statement.")
def server_worker_trusts_queued_rows(r, s: Schema):
    for how, f in _server_run_functions(s):
        for t, name in _queued_rows(s, f._body) if f._body is not None else ():
            hits = _trigger_writes_elsewhere(s, t, f, False, rows=frozenset({name.lower()}))
            # a helper the worker hands the queued row's columns to (`perform private.copy_project(
            # job.source_project_id, job.organization_id)`: evasion round 7, w5) runs with the worker's rights
            callees = [] if hits else _definers_called(s, f._body.trees, None, set(), 0, frozenset({name.lower()}),
                                                       every=True)
            for callee, bound in callees:
                hits = _trigger_writes_elsewhere(s, t, bound, False, rows=frozenset({name.lower()}))
                if hits:
                    hits = [(f"calls {callee.qualified}, which {hits[0][0]}", *hits[0][1:])]
                    break
            if hits:
                verb, table, column = hits[0]
                yield r.finding(f"Worker {f.qualified}, run {how}, {verb} {table} picked by {name}.{column}, a "
                                f"column of {t.qualified} rows clients write, that nothing keeps in the queued row's "
                                "organisation.", f.qualified, location=f.location)
                break


def _queued_rows(s: Schema, reading) -> list[tuple[Table, str]]:
    """(queue table, the name its rows go by) for the rows a worker takes from a tenant table clients write: each
    variable a SELECT ... INTO or a FOR loop fills from one such table, or where there is none, each name a
    set-based statement gives them (_queue_names)."""
    out: list[tuple[Table, str]] = []
    for index, names in reading.into:
        select = into_select(reading, index)
        rvs = [rv for rv in statement_relations("SelectStmt", select) or [] if rv] if select else []
        t = s.table(rvs[0].get("relname", ""), rvs[0].get("schemaname") or reading.default_schema) \
            if len(rvs) == 1 else None
        if t is not None and is_tenant(t) and _client_written(s, t):
            out += [(t, name) for name in names]
    # A set-based worker: one statement joins the queue (or a CTE taking its rows) to the rows it writes
    # (evasion round 6, e03: with todo as (update jobs ... returning ...) insert ... from todo join projects)
    return out or _queue_names(s, reading)


def _queue_names(s: Schema, reading) -> list[tuple[Table, str]]:
    """(table, name) for each name a statement of the body gives rows of a tenant table clients write, read in its
    FROM: the table's alias, or a CTE over it (`with todo as (update copy_jobs ... returning ...)`), over such a
    CTE (`batch as (select ... from todo)`), or recursive from it (_cte_queue)."""
    out: list[tuple[Table, str]] = []

    def queue(rv: dict) -> Table | None:
        t = s.table(rv.get("relname", ""), rv.get("schemaname") or reading.default_schema)
        return t if t is not None and is_tenant(t) and _client_written(s, t) else None

    def source(rv: dict) -> Table | None:  # a CTE named before, or a queue table
        return (ctes.get(rv.get("relname", "")) if not rv.get("schemaname") else None) or queue(rv)
    for tree in reading.trees:
        ctes: dict[str, Table] = {}
        for kind, body in nodes(tree):
            if kind == "CommonTableExpr" and body.get("ctename"):
                t = _cte_queue(body, source)
                if t is not None:
                    ctes[body["ctename"]] = t
        skipped: set[int] = set()  # a statement's target, and its other references to the table it writes
        for kind, body in nodes(tree):
            if kind in ("InsertStmt", "UpdateStmt", "DeleteStmt"):
                target = body.get("relation") or {}
                skipped.add(id(target))
                same = (target.get("schemaname") or reading.default_schema, target.get("relname"))
                for part in ("selectStmt", "fromClause", "usingClause", "whereClause"):
                    skipped |= {id(b) for k, b in nodes(body.get(part)) if k == "RangeVar" and
                                (b.get("schemaname") or reading.default_schema, b.get("relname")) == same}
        for kind, body in nodes(tree):
            if kind != "RangeVar" or id(body) in skipped:
                continue
            name = (body.get("alias") or {}).get("aliasname") or body.get("relname", "")
            t = ctes.get(body.get("relname", "")) if not body.get("schemaname") else None
            t = t or queue(body)
            if t is not None and (t, name) not in out:
                out.append((t, name))
    return out


def _cte_queue(cte: dict, source) -> Table | None:
    """The queue table a CTE's rows come from (`source`: the queue table a relation of its FROM is, a CTE before it
    included): its one relation, or for a UNION the one table of every branch but the recursive term, which
    reads the CTE itself (`with recursive tree as (select ... from copy_jobs j union all select ... from tree join
    projects c on c.parent_id = tree.source_project_id)`: the rows the queued ones reach are the client's choice
    too)."""
    kind, body = next(iter((cte.get("ctequery") or {}).items()), (None, None))
    if kind is None:
        return None
    branches, stack = [], [body]
    while stack:  # a set operation's branches are SelectStmt fields, not typed nodes
        b = stack.pop()
        if kind == "SelectStmt" and b.get("op", "SETOP_NONE") != "SETOP_NONE":
            stack += [b.get("rarg") or {}, b.get("larg") or {}]
        else:
            branches.append(b)
    found: Table | None = None
    for branch in branches:
        if len(branches) > 1 and any(k == "RangeVar" and not rv.get("schemaname") and
                                     rv.get("relname") == cte["ctename"] for k, rv in nodes(branch)):
            continue
        tables = [source(rv) for rv in statement_relations(kind, branch) or [] if rv]
        if len(tables) != 1 or tables[0] is None or (found is not None and tables[0].qualified != found.qualified):
            return None
        found = tables[0]
    return found


def _removal_limited(s: Schema, members: Table, way: list) -> bool:
    """A way to delete memberships that cannot reach the top role's: it keeps to the caller's own membership
    (leaving: user_id = auth.uid()), tests the removed member's role or user (role < 'admin', role <> 'owner',
    user_id <> the primary owner), admits only
    callers of the top role (organization_ids_with_role('owner')), or only the organisation's primary owner (its id
    in `select o.id from organizations o where o.owner_user_id = auth.uid()`)."""
    from ..role_sets import role_labels
    from ...model.tenant_keys import member_column, role_column, user_tables
    users = user_tables(s.tables)
    user, role = member_column(members, members.tenant_key, users), role_column(members)
    labels = role_labels(s, members) or []
    roots = {f"{schema}.{name}" for schema, name in tenant_roots(s)}
    for x in way:
        if user and _owner_test(x, user):
            return True
        found = admitted_roles(s, x)
        if found is not None and labels and found[1] == {labels[-1]}:
            return True
        for kind, b in nodes(x):
            if kind != "FuncCall":
                continue
            args = b.get("args") or []
            # a helper given the removed member (can_act_on_member(account_id, user_id)) decides about them;
            # one given the top role by name (has_role(org, 'owner') where owner ranks first) admits only it
            if user and any(strings(((unwrap(a) or {}).get("ColumnRef") or {}).get("fields"))[-1:] == [user]
                            for a in args):
                return True
            # (roles kept as text: which ranks first is unknown, so a role named to a helper is taken as the top)
            if any(isinstance(v, str) and (not labels or v == labels[-1]) for a in args for v in [const(unwrap(a))]):
                return True
            f = find_function(s, function_name(b))
            if f is not None and f._body is not None and _primary_owner_body(s, f, members):
                return True
        # the removed member's role or user tested (role < 'admin'; Basejump's user_id != the primary owner)
        row_columns = {c for kind, b in outside_subqueries(x) if kind == "A_Expr" for c in _columns_in(b)}
        if {role, user} & row_columns - {None} or _reads_owned_root(x, roots, members.schema_name):
            return True
    return False


def _primary_owner_body(s: Schema, f, members: Table) -> bool:
    """A helper that answers whether the caller is the organisation's primary owner (`select exists (select 1 from
    groups g where g.id = p_group and g.owner_id = auth.uid())`, in SQL or PL/pgSQL)."""
    roots = {f"{schema}.{name}" for schema, name in tenant_roots(s)}
    return any(_reads_owned_root(tree, roots, f._body.default_schema) for tree in f._body.trees)


def _reads_owned_root(tree, roots: set[str], default_schema: str) -> bool:
    """A sub-query reading an organisations table (`roots`) whose filter tests one of its columns against the
    caller (`o.owner_user_id = auth.uid()`): the caller is that organisation's primary owner."""
    return any(kind == "SelectStmt" and roots & set(from_relations(b, default_schema)) and any(
                   k == "A_Expr" and any(_owner_test({k: e}, c) for c in _columns_in(e))
                   for k, e in nodes(b.get("whereClause")))
               for kind, b in nodes(tree))


def _columns_in(e: dict) -> list[str]:
    return [strings(side["ColumnRef"].get("fields"))[-1] for side in (e.get("lexpr"), e.get("rexpr"))
            if isinstance(side, dict) and "ColumnRef" in side and strings(side["ColumnRef"].get("fields"))]


@rule("BP081", "membership_delete_reaches_owner", Level.WARN, ("SECURITY", "TENANCY"),
      summary="A DELETE policy on the membership table (or a SECURITY DEFINER function clients call) lets members "
              "below the top role remove any membership of their organisations, the owner's too.",
      why="`using (organization_id = any (array(select private.organization_ids_with_role('admin'))))` lets an "
          "admin delete every membership of the organisation: the owner's, then they are the highest role left "
          "(or promote themselves where admins may). BP029 reads inserts and updates; a removal moves power too. "
          "A definer RPC does the same when it checks only that the caller is an admin, then deletes the "
          "membership it is given (`remove_member(p_org, p_user)`) without asking about the member removed "
          "(their role, or whether they own the organisation): evasion round 21 e07.",
      bad="create policy members_delete on organization_members for delete to authenticated\n"
          "  using (organization_id = any (array(select private.organization_ids_with_role('admin'))));",
      fix="Limit what each way removes: the caller's own membership (user_id = (select auth.uid())), members ranked "
          "below the caller (`... and role < 'admin'`), or anyone only for the top role or the primary owner; in a "
          "function, delete `... and role <> 'owner'` or refuse when the member's role (looked up first) is the "
          "top one.")
def membership_delete_reaches_owner(r, s: Schema):
    members = membership_tables(s)
    for t in (t for t in s.tables if t.qualified in members and t.rls_enabled):
        # a policy reading its own table recurses and fails whatever it says (BP028's)
        policies = [p for p in client_policies(t, "delete")
                    if not any(t.qualified in relation_names(tree, t.schema_name) for _, tree, _ in trees(p))]
        for p, way in _ways_in(policies):
            if not _removal_limited(s, t, way):
                yield r.finding(f"{policy_label(t, p)} lets members below the top role delete any membership of "
                                "their organisations, the owner's included.", f"{t.qualified}.{p.name}",
                                location=p.location or t.location)
                break
    for f, through, rel, least in definer_removals(s):
        yield r.finding(f"{f.qualified} deletes {rel} rows of any role, the owner's included, but its check lets in "
                        f"'{least}' callers; clients reach it through {through}.", f.qualified, location=f.location)


@rule("BP091", "creator_keeps_access_after_leaving", Level.WARN, ("SECURITY", "TENANCY"),
      summary="A team table's policy lets a row's writer (created_by) in without asking for membership, beside a "
              "way in for the organisation's members.",
      why="People leave organisations, or are removed from them. The way in for members shows the rows are the "
          "organisation's; the one that asks only `created_by = auth.uid()` keeps a former member reading, changing "
          "or deleting every row they wrote there for as long as the rows live (evasion round 8). The writer's "
          "column is one the caller's id fills (a default of auth.uid(), a BEFORE INSERT trigger setting it, or a "
          "members' insert policy keeping it to the caller: `requester_id = (select auth.uid())`); a "
          "column naming whom the row is about (a customer's own invoices, a join request's requester) is not "
          "read, nor a table only people outside the organisation write rows of (their own requests): they need not "
          "be members at all. A member who wrote a row beside them is its writer after leaving too. A chain through "
          "an owner's-rights helper to a parent's writer (`project_id in (select private.my_project_ids())` over "
          "`projects where created_by = auth.uid()`, past the parent's RLS) is read as well. The model refuses "
          "`linked: [created_by]` and `linked: [project_id, created_by]` on an organisation's entities.",
      bad="create policy projects_select on projects for select to authenticated\n"
          "  using (organization_id = any (array(select private.organization_ids_with_role('viewer')))\n"
          "         or created_by = (select auth.uid()));",
      fix="Ask for membership on that way in too: `(created_by = (select auth.uid()) and organization_id = any "
          "(array(select private.organization_ids_with_role('member'))))`; rows that are the person's own, kept "
          "when they leave, belong in a table of their own without the organisation's key.")
def creator_keeps_access_after_leaving(r, s: Schema):
    from .policy_rules import _checks_membership
    members = membership_tables(s)
    helpers = membership_functions(s)

    def asks_nothing_else(x) -> bool:
        """The test reads no table and calls nothing but the platform's request functions (auth.uid()): any other
        function, qualified or not, may ask for membership (`is_org_member(organization_id)`, defined elsewhere)."""
        return not relation_names(x) and all(name.split(".")[0] in ("auth", "pg_catalog") for name, _, _ in calls(x))

    def members_write(t: Table, required: bool) -> bool:
        """Members insert rows of `t`, people outside the organisation perhaps too (a member who filed a ticket is
        its writer after leaving: red team 18); without `required`, also when clients insert none."""
        ways = _ways_in(client_policies(t, "insert"), using=False)
        return any(any(_checks_membership(s, x, members, helpers) for x in c) for _, c in ways) or \
            not (ways or required)

    ends_of: dict[str, str | None] = {}  # function name -> chain_end, read once per audit

    def chain_end(name: str) -> str | None:
        """`table.column` when `name` is an owner's-rights function whose body reads a team table members write
        rows of, keeping its writer column to the caller, and reads no membership: the rows of whoever wrote those
        rows, past the table's RLS (a linked chain ending at a parent's created_by: red teams 17 and 18)."""
        if name in ends_of:
            return ends_of[name]
        f = find_function(s, name)
        got = body_facts(s, f) if f is not None and f.security_definer else None
        ends_of[name] = None
        if got is None or set(f.reads or ()) & members or set(f.calls or ()) & helpers:
            return None
        for rel, reads in sorted(got[1].pins.items()):
            schema, _, table = rel.partition(".")
            parent = s.table(table, schema)
            if parent is None or not (parent.rls_enabled and is_tenant(parent)) or rel in members or \
                    not members_write(parent, required=True):
                continue
            writer = next((w for w in _writer_columns(s, parent) if any(w in cols for cols in reads)), None)
            if writer is not None:
                ends_of[name] = f"{parent.qualified}.{writer}"
                break
        return ends_of[name]

    def chained(c: list) -> str | None:
        """The end of a chain (chain_end) a way in takes, asking nothing else."""
        ends = [chain_end(name) for x in c for name, _, _ in calls(x) if name.split(".")[0] not in ("auth",
                                                                                                    "pg_catalog")]
        if not ends or None in ends or any(relation_names(x) for x in c):
            return None
        return ends[0]

    for t in s.tables:
        if not (t.rls_enabled and is_tenant(t)) or t.qualified in members:
            continue
        writers = _writer_columns(s, t)
        if not members_write(t, required=False):
            continue  # only people who are not members write rows (a requester's own requests): they keep theirs
        found: dict[str, tuple[Policy, str, list[str]]] = {}
        # Columns naming whom the row is about, beside its writer: one a foreign key with the tenant key ties to a
        # membership ((organization_id, member_id) references organization_members (organization_id, user_id)):
        # the row goes, or loses the name, when the membership does; or another user column (a portal user's
        # customer_id, linked: A09): the row keeps the person it names, member or not, by design. A way that asks
        # for either is theirs, not the writer's (random fuzz: `own` on a linked grant).
        named = {col for fk in t.foreign_keys if f"{fk.ref_schema}.{fk.ref_table}" in members
                 and t.tenant_key in fk.columns for col in fk.columns if col != t.tenant_key}
        named |= {col for fk in t.foreign_keys if (fk.ref_schema, fk.ref_table) == ("auth", "users")
                  for col in fk.columns if col not in writers}
        for command in ("select", "update", "delete"):
            ways = _ways_in(client_policies(t, command))
            if not any(_checks_membership(s, x, members, helpers) for _, c in ways for x in c):
                continue  # no way in asks for membership: the rows are not the organisation's alone
            for p, c in ways:
                if any(_owner_test(x, col, s) for col in named for x in c):
                    continue  # the caller named as whom the row is about
                # (the test itself may be an SQL helper's: `public.is_me(created_by)` over `select u = auth.uid()`)
                owner = next((col for col in writers if any(_owner_test(x, col, s) for x in c)), None)
                if owner is None or not all(asks_nothing_else(x) or _owner_test(x, owner, s) for x in c):
                    owner = chained(c)
                if owner is not None:
                    done = found.setdefault(p.name, (p, owner, []))[2]
                    if command not in done:
                        done.append(command)
        for p, owner, done in found.values():
            yield r.finding(f"{policy_label(t, p)} lets the user named in {owner} {'/'.join(done)} the row without "
                            f"asking for membership of its organisation, beside a way in for members: a former "
                            f"member keeps that access.", f"{t.qualified}.{p.name}", location=p.location or t.location)


def _writer_columns(s: Schema, t: Table) -> list[str]:
    """Columns naming who wrote the row: the caller's id by default (auth.uid()), or set to it by a BEFORE INSERT
    trigger (`new.created_by := auth.uid()`); read once per audit (a parent's, for each chain ending at it)."""
    return _once("writer columns", t, _read_writer_columns, s, t)


def _read_writer_columns(s: Schema, t: Table) -> list[str]:
    stamped: set[str] = set()
    for trigger in (x for x in t.triggers if x.fires):
        f = find_function(s, trigger.function) if trigger.timing == "before" and "insert" in trigger.events else None
        stamped |= _caller_stamps(f._body) if f is not None and f._body is not None else set()
    pinned = _members_pin(s, t)
    return [c.name for c in t.columns if c.name != t.tenant_key and (c.name in stamped or (
        c.default is not None and "uid" in c.default.lower() and _defaults_to_caller(c.default)))
        or c.name in pinned]


def _members_pin(s: Schema, t: Table) -> set[str]:
    """Columns a way in for members to insert keeps to the caller (`requester_id = (select auth.uid())` beside the
    membership test): every row a member writes that way names its writer there, like created_by (red team 19:
    requests members filed for themselves, read by their requester). Not a column a foreign key with the tenant key
    ties to a membership: that one goes with the membership."""
    from .policy_rules import _checks_membership
    members, helpers = membership_tables(s), membership_functions(s)
    tied = {col for fk in t.foreign_keys if f"{fk.ref_schema}.{fk.ref_table}" in members and t.tenant_key in fk.columns
            for col in fk.columns}
    out: set[str] = set()
    for _, c in _ways_in(client_policies(t, "insert"), using=False):
        if any(_checks_membership(s, x, members, helpers) for x in c):
            out |= {col.name for col in t.columns if col.name not in tied and any(_owner_test(x, col.name, s)
                                                                                   for x in c)}
    return out
