"""Rules over policy expressions (their parse trees): membership, recursion, per-row work.

They need the trees the SQL parser keeps; a model built without them (the generator's) is not
checked by these rules.
"""

from __future__ import annotations

import re

from ...model.schema import Schema
from ...model.tenant_keys import (READ_ONLY_ROLE_NAMES, ROLE_RANKS, is_role_column, member_column, rank_inversion,
                                  ranks_reversed, role_column)
from ...model.tenant_keys import user_tables as per_user_tables
from ..findings import Level
from ..registry import rule
from ..body import USER_METADATA, mentions_variables, names_metadata, variables_from
from ..pins import unwrap
from ..token_claims import every_caller, test_text
from ..role_sets import role_enum
from ..tree import canonical, const, disjuncts, function_name, is_true, nodes, nodes_in, qualified, strings
from .binding import _from_items, filtering, from_relations, loose_membership_reads, row_independent_reads, tied_to_row
from .membership_ties import ties_membership
from .common import (
    CLIENT_ROLES,
    _once,
    applies_to_clients,
    base_type,
    calls,
    client_update_columns,
    commands,
    enum_of,
    find_function,
    function_answer,
    is_membership_name,
    lone_value,
    is_tenant,
    linted_policies,
    membership_functions,
    membership_tables,
    membership_views,
    only_statement,
    outside_subqueries,
    per_tree,
    policy_label,
    read_tables,
    relation_names,
    sql_answer,
    strings_in,
    tenant_roots,
    trees,
    unwrapped_value,
)
from .own_rows import own_row_exists
from .stranger import true_for_stranger
from .storage_names import captured_paths, object_policies
from .prefixes import TOPIC_SEPARATORS, is_topic, open_prefixes, pattern_columns, pattern_hole

# Functions a policy may call per row at no real cost, or that never read memberships.
# The platform's own functions: auth.uid() and friends, and storage.foldername()/filename()/extension() of
# Supabase's documented storage policies (a per-row call there is the pattern, not a membership helper).
_TRUSTED_SCHEMAS = ("auth", "pg_catalog", "storage")


def _checks_membership(s: Schema, tree, members: set[str], helpers: set[str], table=None,
                       callers: frozenset[str] = frozenset()) -> bool | None:
    """True when the expression reads a membership table or calls a helper that does; None = cannot tell. A read on
    the nullable side of an outer join the WHERE requires nothing of checks nothing (`filtering`). A helper over a
    membership helper counts when it compares the memberships with the row's organisation (of `table`; any column
    when no table is given) it is given (`membership_ties`: evasion round 16 fp05, round 17 e07/e07b)."""
    tree = filtering(tree)
    if any(is_membership_name(name, members) or name in membership_views(s) for name in relation_names(tree)):
        return True
    unknown = False
    for name, call, _ in calls(tree):
        if name in helpers or ties_membership(s, call, table, helpers, callers):
            return True
        if "." in name and name.split(".")[0] not in _TRUSTED_SCHEMAS and find_function(s, name) is None:
            unknown = True  # a helper defined elsewhere: give it the benefit of the doubt
    return None if unknown else False


def _deliberate_public_read(s: Schema, p, tree_list) -> bool:
    """A SELECT policy naming anon whose expression only compares the row's columns with constants
    (e.g. `to anon using (published = true)`): a publication, not a forgotten membership check. A sub-query over a
    table with RLS tied to the row (`exists (select 1 from articles where articles.id = comments.article_id)`: the
    comments of articles anon may read), or matched against the row's column (`article_id in (select articles.id
    from articles)`), publishes no more than that table's own policies do."""
    if "anon" not in p.roles or commands(p) != ("select",):
        return False
    for tree in tree_list:
        if list(calls(tree)):
            return False
        for kind, body in nodes(tree):
            if kind != "SubLink":
                continue
            select = (body.get("subselect") or {}).get("SelectStmt") or {}
            read = [s.table(*name.split(".", 1)[::-1]) for name in from_relations(select, "public")]
            if not read or any(t is None or not t.rls_enabled for t in read) or \
                    not (tied_to_row(s, select, "public") or any(k == "ColumnRef" for k, _ in
                                                                 nodes(body.get("testexpr")))):
                return False
    return True


@rule("BP027", "policy_without_membership_check", Level.WARN, ("SECURITY", "TENANCY"),
      summary="A policy on a tenant table that never checks organisation membership.",
      why="Without a membership check the policy decides access by something else (a JWT claim, the row's "
          "owner, or nothing): rows of one organisation become reachable from another, or a member who left "
          "keeps access. An update policy that checks membership in USING but not in WITH CHECK lets a member "
          "move their rows into any organisation.",
      bad="create policy p on events for insert with check (auth.jwt() ->> 'role' = 'service_role');",
      fix="Check membership: organization_id = any (array(select private.organization_ids_with_role('member'))); "
          "writes meant for the service role need no policy at all (it bypasses RLS).")
def policy_without_membership_check(r, s: Schema):
    members, helpers = membership_tables(s), membership_functions(s)

    def checks(tree, t, callers: frozenset[str]) -> bool:  # (identical clauses share a tree)
        return per_tree(("checks membership", t.qualified, callers), tree,
                        lambda: _checks_membership(s, tree, members, helpers, t, callers)) is not False
    for t in s.tables:
        if not is_tenant(t) or t.qualified in members:
            continue
        for p in t.policies:
            clauses = trees(p)
            if not (clauses and p.permissive and applies_to_clients(p)) or \
                    _deliberate_public_read(s, p, [tree for _, tree, _ in clauses]):
                continue
            using = next((tree for clause, tree, _ in clauses if clause == "using"), None)
            check = next((tree for clause, tree, _ in clauses if clause == "with check"), None)
            callers = frozenset(_api_roles(p))
            if using is not None and checks(using, t, callers):
                asymmetric = check is not None and not checks(check, t, callers)
            elif check is None or not checks(check, t, callers):
                yield r.finding(f"{policy_label(t, p)} does not check membership of the row's organisation.",
                                f"{t.qualified}.{p.name}", location=p.location or t.location)
                continue
            else:
                asymmetric = False
            if asymmetric:
                # USING picks the rows, WITH CHECK what they become: a member may move a row of theirs into any
                # organisation (evasion round 7, e07)
                yield r.finding(f"{policy_label(t, p)} checks membership in USING but not in WITH CHECK: a member "
                                "moves their rows into any organisation.", f"{t.qualified}.{p.name}",
                                location=p.location or t.location)


@rule("BP050", "membership_check_not_tied_to_row", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A policy reads memberships but does not tie them to the row's organisation, or reads everyone's, or "
              "takes the role beside them from a JWT claim no key of the row's organisation picks.",
      why="A membership check protects a row only by comparing the row's organisation with the caller's "
          "memberships. An EXISTS that compares nothing of the row (including `m.organization_id = "
          "organization_id`, where the bare name is the membership row's own column) passes for any member of "
          "any organisation; a sub-query without `user_id = auth.uid()` on a membership table without RLS reads every "
          "user's memberships, so any row of an organisation with members passes. So does a view of the memberships "
          "that runs with its owner's rights (past the table's RLS) and does not filter by the caller itself in "
          "every branch (`m.user_id = (select auth.uid()) and m.role = 'admin' or m.role = 'owner'` lets every "
          "owner's membership through). A join ties the row through one relation and not the membership: in "
          "`exists (select 1 from organizations o join organization_members m on m.user_id = (select auth.uid()) "
          "where o.id = tasks.organization_id)` the caller's membership of any organisation passes. "
          "A role taken from a JWT claim no key of the row's organisation picks "
          "(`auth.jwt() -> 'app_metadata' ->> 'org_role' in ('admin', 'owner')` beside a membership test) is one "
          "role for all the user's organisations: kept as their highest, an owner of B who is a member of A deletes "
          "A's projects (audit-evasion round 10, e04). A sub-query that names no caller (`exists (select 1 from "
          "organization_members m where m.organization_id = documents.organization_id)`) counts on the membership "
          "table's RLS to show the caller only their own memberships: once a policy there shows every signed-in "
          "user every membership (a people directory's `using (true)`), any row of an organisation with members "
          "passes (audit-evasion round 11, e04); so does one with a branch that compares nothing of the row with "
          "the caller (`user_id = (select auth.uid()) or listed`: an opt-out directory, round 12 e10).",
      bad="create policy p on tasks for select to authenticated using (exists (select 1 from "
          "organization_members m\n  where m.organization_id = organization_id and m.user_id = (select auth.uid())));",
      fix="Compare the row's tenant key with the caller's memberships: organization_id = any (array(select "
          "private.organization_ids_with_role('viewer'))); in an EXISTS, qualify the row's column with its table "
          "(m.organization_id = tasks.organization_id) and keep m.user_id = (select auth.uid()). Ask the role the "
          "same way (organization_ids_with_role('admin')), or key the claim by organisation and read the row's "
          "entry: `auth.jwt() -> 'app_metadata' -> 'org_roles' ->> organization_id::text`.")
def membership_check_not_tied_to_row(r, s: Schema):
    members, helpers = membership_tables(s), membership_functions(s)
    if not members:
        return
    guarded = {t.qualified for t in s.tables if is_tenant(t)} | {f"{a}.{b}" for a, b in tenant_roots(s)}
    roles = _membership_roles(s, members)
    opened = _open_membership_tables(s, members)
    for t in s.tables:
        if t.qualified not in guarded or t.qualified in members:
            continue
        for p in t.policies:
            if not (p.permissive and applies_to_clients(p)):
                continue
            for clause, tree, _ in trees(p):
                loose = per_tree(("loose membership", t.schema_name), tree,
                                 lambda: loose_membership_reads(s, tree, members, helpers, t.schema_name,
                                                                membership_views(s), opened))
                if "row" in loose:
                    yield r.finding(f"{policy_label(t, p)} reads memberships in {clause.upper()} but ties them to "
                                    f"nothing of the row: a member of any organisation passes.",
                                    f"{t.qualified}.{p.name}", location=p.location or t.location)
                elif "open" in loose:
                    name, policy = next(((n, q) for n, q in opened.items() if n in relation_names(tree)),
                                        next(iter(opened.items())))
                    yield r.finding(f"{policy_label(t, p)} reads memberships in {clause.upper()} without naming the "
                                    f"caller, and counts on {name}'s RLS to keep them to the caller's, but its policy "
                                    f"\"{policy}\" shows signed-in users other users' memberships: any row of an "
                                    "organisation with members passes.", f"{t.qualified}.{p.name}",
                                    location=p.location or t.location)
                elif "caller" in loose:
                    yield r.finding(f"{policy_label(t, p)} compares the row with every user's memberships in "
                                    f"{clause.upper()}, not the caller's: any row of an organisation with members "
                                    f"passes.", f"{t.qualified}.{p.name}", location=p.location or t.location)
                elif t.tenant_key and (claim := per_tree(("global role claim", t.tenant_key), tree, lambda: (
                        (found := _global_role_claim(s, tree, t.tenant_key, roles)) and _checks_membership(
                            s, tree, members, helpers) and found))):
                    yield r.finding(f"{policy_label(t, p)} takes the caller's role in {clause.upper()} from the "
                                    f"claim {claim}, which no key of the row's organisation picks: a role held in "
                                    f"one organisation decides in every organisation the user is a member of.",
                                    f"{t.qualified}.{p.name}", location=p.location or t.location)


def _open_membership_tables(s: Schema, members: set[str]) -> dict[str, str]:
    """Membership table -> the policy that shows signed-in callers other users' rows: a permissive select policy for
    authenticated true for each of them (`using (true)`: a people directory opened later, evasion round 11 e04) or
    with a branch not keyed to the caller (`or listed`, round 12 e10), with no restrictive select policy narrowing
    it. A policy reading memberships without naming the caller counts on that table's RLS to keep them to the
    caller's."""
    out: dict[str, str] = {}
    for name in sorted(members):
        u = s.table(*name.split(".", 1)[::-1])
        if u is None or not u.rls_enabled or any(not q.permissive and "select" in commands(q) and
                                                 applies_to_clients(q) for q in u.policies):
            continue
        q = next((q for q in u.policies if q.permissive and "select" in commands(q) and applies_to_clients(q)
                  and {"authenticated", "public"} & set(q.roles or ["public"]) and q.using_tree is not None
                  and (_true_for(s, q.using_tree, frozenset({"authenticated"})) or
                       not _keyed_to_caller(s, q.using_tree))), None)
        if q is not None:
            out[name] = q.name
    return out


def _keyed_to_caller(s: Schema, tree) -> bool:
    """Every OR-ed branch of a policy compares a column of the row with the caller or the caller's organisations:
    `user_id = (select auth.uid())`, `organization_id = any (array(select private.organization_ids_with_role(...)))`,
    `organization_id in (select ... where user_id = auth.uid())`, or an EXISTS naming the caller. A branch that
    does not (`or listed`, `or is_public`, `or not private.is_blocked()`) shows rows of other users by the row's
    own data: an opt-out directory (evasion round 12 e10) shows nearly every membership to every signed-in user."""
    branches = disjuncts(tree)
    return branches is not None and all(any(_names_caller(s, atom) for atom in branch) for branch in branches)


def _names_caller(s: Schema, atom) -> bool:
    """A test of the row against the caller: a comparison (=, IN, = ANY) of a column with an expression that calls
    auth.uid() or a helper whose body does, an EXISTS sub-query that does, or a boolean helper given a column whose
    body does (`private.is_member_of(organization_id)`)."""
    def caller(node) -> bool:
        for kind, body in nodes(node):
            if kind == "FuncCall":
                name = function_name(body)
                f = find_function(s, name) if name != "auth.uid" else None
                if name == "auth.uid" or (f is not None and f.body and "auth.uid" in f.body):
                    return True
        return False
    atom = unwrap(atom)
    call = atom.get("FuncCall") if isinstance(atom, dict) else None
    if isinstance(call, dict):  # `private.is_member_of(organization_id)`: a boolean helper asking of the caller
        f = find_function(s, function_name(call))  # (evasion round 13 fp03)
        return f is not None and f.returns.lower() in ("boolean", "bool") and bool(f.body) and \
            "auth.uid" in f.body and any("ColumnRef" in (unwrap(a) or {}) for a in call.get("args") or [])
    link = atom.get("SubLink") if isinstance(atom, dict) else None
    if isinstance(link, dict):
        if link.get("subLinkType") == "EXISTS_SUBLINK":
            return caller(link.get("subselect"))
        return link.get("subLinkType") == "ANY_SUBLINK" and "ColumnRef" in (unwrap(link.get("testexpr")) or {}) and \
            caller(link.get("subselect"))
    e = atom.get("A_Expr") if isinstance(atom, dict) else None
    if not isinstance(e, dict) or strings(e.get("name")) != ["="] or \
            e.get("kind", "AEXPR_OP") not in ("AEXPR_OP", "AEXPR_IN", "AEXPR_OP_ANY"):
        return False
    sides = (e.get("lexpr"), e.get("rexpr"))
    return any("ColumnRef" in (unwrap(a) or {}) and caller(b) for a, b in (sides, sides[::-1]))


def _membership_roles(s: Schema, members: set[str]) -> frozenset[str]:
    """The role names of the membership tables: their role column's enum labels, and the usual names."""
    labels = set(ROLE_RANKS)
    for name in members:
        t = s.table(*name.split(".", 1)[::-1])
        column = t.column(role_column(t)) if t is not None and role_column(t) else None
        enum = enum_of(s, column.type) if column is not None else None
        labels |= set(enum.values) if enum is not None else set()
    return frozenset(labels)


def _claim_path(s: Schema, node, depth: int = 0) -> list[str] | None:
    """The constant path of a claim read from the request's JWT (`auth.jwt() -> 'app_metadata' ->> 'org_role'`,
    `#>> '{app_metadata,org_role}'`, current_setting('request.jwt.claims')::jsonb ...), or of an SQL helper
    answering one; None for anything else, or a path a column picks (`->> organization_id::text`)."""
    node = unwrapped_value(node)
    keys: list[str] = []
    while isinstance(node, dict) and isinstance(node.get("A_Expr"), dict) and \
            strings(node["A_Expr"].get("name")) in (["->"], ["->>"], ["#>"], ["#>>"]):
        e = node["A_Expr"]
        key = const(unwrapped_value(e.get("rexpr")))
        if not isinstance(key, str):
            return None
        keys[:0] = [k.strip().strip('"') for k in key.strip("{}").split(",")] if \
            strings(e.get("name"))[0].startswith("#") else [key]
        node = unwrapped_value(e.get("lexpr"))
    call = node.get("FuncCall") if isinstance(node, dict) else None
    if not isinstance(call, dict):
        return None
    name, args = function_name(call), call.get("args") or []
    if keys and ((name == "auth.jwt" and not args) or (name.split(".")[-1] == "current_setting" and args and
                                                       const(args[0]) == "request.jwt.claims")):
        return keys
    answer = sql_answer(find_function(s, name)) if not keys and depth < 2 else None
    return _claim_path(s, answer, depth + 1) if answer is not None else None


def _global_role_claim(s: Schema, tree, tenant_key: str, roles: frozenset[str]) -> str | None:
    """The claim (as `'app_metadata' -> 'org_role'`) a clause compares with a role name, when its path is constant
    (the same role for every organisation: e04's "highest role anywhere"), and the clause does not take the row's
    organisation from a claim too (an active organisation, whose role the claim beside it is); user_metadata and the
    request's own role are other rules'."""
    found, org_claim = None, False
    for kind, body in nodes(tree):
        if kind != "A_Expr" or strings(body.get("name")) not in (["="], ["<>"], ["!="]):
            continue
        for side, other in ((body.get("lexpr"), body.get("rexpr")), (body.get("rexpr"), body.get("lexpr"))):
            path = _claim_path(s, side)
            if path is None:
                continue
            column = strings(((unwrap(other) or {}).get("ColumnRef") or {}).get("fields")) \
                if isinstance(unwrap(other), dict) else []
            if column[-1:] == [tenant_key]:
                org_claim = True
            items = (other.get("List") or {}).get("items") if isinstance(other, dict) else None
            named = {const(unwrapped_value(x)) for x in (items if items is not None else [other])}
            if found is None and named & roles and path[0] not in USER_METADATA and path != ["role"]:
                found = " -> ".join(f"'{k}'" for k in path)
    return None if org_claim else found


def _tenant_data(s: Schema, t) -> bool:
    """A tenant table, or one under a tenant table (tasks under projects): rows of one organisation."""
    tenants = _once("tenant tables", s, lambda: {x.qualified for x in s.tables if is_tenant(x)})
    return t.qualified in tenants or any(f"{fk.ref_schema}.{fk.ref_table}" in tenants for fk in t.foreign_keys)


def _shared_by_tenants(s: Schema, t) -> bool:
    """A table whose rows name their organisations in an array of tenant keys (`organization_ids uuid[]`: a
    document shared between partner organisations): rows of those organisations (evasion round 11, e01)."""
    keys = _once("tenant keys", s, lambda: {x.tenant_key for x in s.tables if is_tenant(x)})
    return any(c.name == f"{key}s" and c.type.endswith("[]") for key in keys for c in t.columns)


@rule("BP058", "policy_not_tied_to_row", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A policy on an organisation's rows decides by a sub-query that looks at nothing of the row.",
      why="A sub-query over another organisation's table (the row's parent, as a rule) that is not tied to the row "
          "asks whether the caller sees any such row, not this one's: `exists (select 1 from projects p where "
          "p.organization_id = any (...))` on tasks passes every task of every organisation for anyone who sees one "
          "project. Child tables without organization_id depend on that tie alone. On storage.objects, a bare "
          "`name` inside a sub-query whose relation has a `name` column is that column, as PostgreSQL resolves it: "
          "`exists (select 1 from organizations o where ... and (storage.foldername(name))[1] = o.id::text)` tests "
          "the organisation's name, not the file's path, and an owner who renames their organisation `<its id>/x` "
          "reads every organisation's files (evasion round 21 e08).",
      bad="create policy tasks_select on tasks for select to authenticated using (exists (select 1 from projects p\n"
          "  where p.organization_id = any (array(select private.organization_ids_with_role('viewer')))));",
      fix="Tie the sub-query to the row: exists (select 1 from projects p where p.id = tasks.project_id and "
          "p.organization_id = any (...)); better, give the table organization_id and check it directly. In a "
          "storage policy's sub-query, name the file's path objects.name.")
def policy_not_tied_to_row(r, s: Schema):
    members = membership_tables(s)
    for t in s.tables:
        if not (t.rls_enabled and _tenant_data(s, t)):
            continue
        for p in t.policies:
            if not (p.permissive and applies_to_clients(p)):
                continue
            for clause, tree, _ in trees(p):
                read = per_tree(("row independent", t.schema_name), tree,
                                lambda: row_independent_reads(s, tree, t.schema_name))
                tenant = [name for name in read or [] if name not in members
                          and (x := s.table(*name.split(".", 1)[::-1])) is not None and _tenant_data(s, x)]
                if tenant:
                    yield r.finding(f"{policy_label(t, p)} decides in {clause.upper()} by {', '.join(tenant)} without "
                                    f"looking at the row: whoever passes once passes for every row.",
                                    f"{t.qualified}.{p.name}", location=p.location or t.location)
    for p in object_policies(s):
        captured = [(clause, x) for clause, tree, _ in trees(p) if p.permissive and applies_to_clients(p)
                    for x in captured_paths(s, tree)]
        if captured:
            clause, table = captured[0]
            yield r.finding(f"Policy {p.name} on storage.objects tests `name` in {clause.upper()} inside a sub-query "
                            f"over {table}, where it is {table}.name, not the file's path: that test asks nothing of "
                            "the file (write objects.name).", f"storage.objects.{p.name}", location=p.location)


_READ_ONLY = frozenset(READ_ONLY_ROLE_NAMES)


def _admitted_read_only_roles(tree, orders: list[list[str]] | None = None, negated: bool = False) -> list[str]:
    """Read-only role names (viewer...) a clause names as string constants, outside a negation (`role <> 'viewer'`,
    `not in`, NOT): `private.organization_ids_with_role('viewer')`, `m.role in ('member', 'viewer')` in a
    sub-query. A comparison with a column of the policy's own row, outside sub-queries, is about the row written
    (an invitation's `role in ('viewer', 'member')`: evasion round 8), not the caller."""
    out: list[str] = []
    stack: list[tuple[object, bool, bool]] = [(tree, negated, False)]
    while stack:
        value, negated, nested = stack.pop()
        if isinstance(value, list):
            stack += [(v, negated, nested) for v in value]
            continue
        if not isinstance(value, dict):
            continue
        if len(value) == 1 and "A_Const" in value:
            text = (value["A_Const"].get("sval") or {}).get("sval")
            if not negated and text in READ_ONLY_ROLE_NAMES and text not in out:
                out.append(text)
            continue
        expr = value.get("A_Expr") if len(value) == 1 else None
        bool_expr = value.get("BoolExpr") if len(value) == 1 else None
        if isinstance(expr, dict) and not nested and any(
                isinstance(x, dict) and "ColumnRef" in x and _constants_only(y)
                for x, y in ((expr.get("lexpr"), expr.get("rexpr")), (expr.get("rexpr"), expr.get("lexpr")))):
            continue  # the row's own column (`role in ('viewer', 'member')` on invitations): what is written
        # `<>`, IS DISTINCT FROM, and a strict bound (`m.role > 'viewer'`: the ranks above it) leave the role out
        # (evasion round 25 fp01); a strict bound admits the read-only labels of the enum past it
        strict = isinstance(expr, dict) and expr.get("kind") == "AEXPR_OP" and strings(expr.get("name")) in (
            [">"], ["<"])
        if strict and not negated:
            for label in _past_bound(expr, orders or []):
                if label in READ_ONLY_ROLE_NAMES and label not in out:
                    out.append(label)
        if isinstance(expr, dict) and (strings(expr.get("name")) in (["<>"], ["!="]) or
                                       expr.get("kind") == "AEXPR_DISTINCT" or strict):
            negated = not negated
        elif isinstance(bool_expr, dict) and bool_expr.get("boolop") == "NOT_EXPR":
            negated = not negated
        nested = nested or (len(value) == 1 and "SubLink" in value)
        stack += [(v, negated, nested) for v in value.values() if isinstance(v, dict | list)]
    return out


def _callers_read_only_roles(s: Schema, test, orders: list[list[str]], turned: bool) -> list[str]:
    """The read-only roles a definer body's test (a write's WHERE, an IF's, a refusal's turned over) admits for the
    caller: of its AND-ed parts that name a role and ask who calls (auth.uid(), auth.jwt(), a membership helper, a
    function calling auth.uid()), the roles every such part admits (`<viewer's organisations> and <member's>` asks
    for members). A part about someone else (`m.user_id = invite.invited_by and m.role >= 'viewer'`: the inviter's
    rank) admits no caller."""
    kind, body = only_statement(test) if isinstance(test, list) else ("", {})
    expr = lone_value(body) if kind == "SelectStmt" else test
    if expr is None:
        return []
    inner = expr.get("BoolExpr") if isinstance(expr, dict) else None
    if turned and isinstance(inner, dict) and inner.get("boolop") == "NOT_EXPR" and len(inner.get("args") or []) == 1:
        expr, turned = inner["args"][0], False
    parts, flat = [expr], []
    while parts:
        part = parts.pop()
        bool_ = part.get("BoolExpr") if isinstance(part, dict) and not turned else None
        if isinstance(bool_, dict) and bool_.get("boolop") == "AND_EXPR":
            parts += bool_.get("args") or []
        else:
            flat.append(part)
    roles = set(READ_ONLY_ROLE_NAMES) | set(ROLE_RANKS) | {x for o in orders for x in o}
    helpers = membership_functions(s)
    out: list[str] | None = None
    for part in flat:
        if not roles & set(strings_in(part)):
            continue
        asks = False
        for name, _, _ in calls(part):
            g = find_function(s, name)
            asks = asks or name in ("auth.uid", "auth.jwt") or name in helpers or \
                g is not None and "auth.uid" in (g.calls or ())
        if not asks:
            continue
        admitted = _admitted_read_only_roles(part, orders, turned)
        out = admitted if out is None else [x for x in out if x in admitted]
    return out or []


def _past_bound(expr: dict, orders: list[list[str]]) -> list[str]:
    """The labels of the enum (declaration order) a strict bound admits: `role > 'guest'` or `'guest' < role` the
    labels after 'guest', `role < 'admin'` those before; [] where the constant is no label of a known enum."""
    sides = [expr.get("lexpr"), expr.get("rexpr")]
    texts = []
    for x in sides:
        while isinstance(x, dict) and "TypeCast" in x:
            x = x["TypeCast"].get("arg")
        texts.append(const(x) if isinstance(x, dict) else None)
    at = 1 if isinstance(texts[1], str) else 0 if isinstance(texts[0], str) else -1
    if at < 0:
        return []
    labels = next((o for o in orders if texts[at] in o), None)
    if labels is None:
        return []
    i = labels.index(texts[at])
    above = (strings(expr.get("name")) == [">"]) == (at == 1)
    return labels[i + 1:] if above else labels[:i]


def _constants_only(node) -> bool:
    """Constants alone: 'viewer', ('viewer', 'member'), array['viewer'], casts aside (no call, no sub-query)."""
    return bool(node) and all(kind in ("A_Const", "List", "A_ArrayExpr", "TypeCast", "TypeName", "String", "Integer")
                              for kind, _ in nodes(node))


@rule("BP059", "read_only_role_writes", Level.WARN, ("SECURITY", "TENANCY"),
      summary="A write policy, or a SECURITY DEFINER function clients call that writes, admits a role named as "
              "read-only (viewer, reader, guest).",
      why="The role's name promises that it only reads; a write policy naming it (`organization_ids_with_role("
          "'viewer')` for the least role and above, `role in ('member', 'viewer')`, `m.role < 'admin'` where viewer "
          "ranks below admin) lets it insert, change or delete the organisation's rows, and so does a definer "
          "function that asks for it before writing past RLS (`delete_project(p_id)` deleting where the "
          "organisation is among the caller's viewer organisations). verify's generic matrix expects such roles to "
          "write nothing.",
      bad="create policy projects_insert on projects for insert to authenticated\n"
          "  with check (organization_id = any (array(select private.organization_ids_with_role('viewer'))));",
      fix="Ask for the least role that writes (organization_ids_with_role('member')); if the role is meant to "
          "write, give it a name that says so.")
def read_only_role_writes(r, s: Schema):
    # the enums that rank a read-only role: a strict bound on one of their labels may admit it
    orders = [e.values for e in s.enums if _READ_ONLY & set(e.values)]
    ranked = {label for o in orders for label in o}
    for t in s.tables:
        for p in t.policies:
            if not (p.permissive and applies_to_clients(p)) or commands(p) == ("select",):
                continue
            for clause, tree, _ in trees(p):
                named = per_tree("read-only roles", tree, lambda: _admitted_read_only_roles(tree, orders) if _READ_ONLY
                                 & set(strings_in(tree)) or ranked and set(strings_in(tree)) & ranked else [])
                if named:
                    writes = "/".join(c for c in commands(p) if c != "select")
                    yield r.finding(f"{policy_label(t, p)} admits {', '.join(named)} to {writes} in {clause.upper()}.",
                                    f"{t.qualified}.{p.name}", location=p.location or t.location)
                    break
    yield from _read_only_definer_writes(r, s, orders)


_WRITE_VERBS = {"InsertStmt": "insert", "UpdateStmt": "update", "DeleteStmt": "delete"}


def _read_only_definer_writes(r, s: Schema, orders: list[list[str]]):
    """The definer form (evasion round 25 e03: `delete_project(p_id)` deleting where the project's organisation is
    among `organization_ids_with_role('viewer')`, past RLS, while the table's policy asks for admins): a function
    clients reach writes a table under RLS where a test admits a read-only role: the write's own WHERE, a refusal
    in the body (turned over: it refuses the others; an ELSE that leaves, as it is), or an IF around the write. An
    update of the caller's own membership or profile row that sets nothing anything decides by (as BP089 reads it),
    or its delete (leaving the organisation), is no write of the organisation's. A role the table's own policies
    for the command admit is theirs to report."""
    from .reach_rules import _guarded, _own_row_update, client_definers
    for f, through in client_definers(s):
        reading = f._body
        texts = {const({kind: body}) for kind, body in nodes(list(reading.trees)) if kind == "A_Const"} \
            if reading is not None else set()
        if not (_READ_ONLY | {x for o in orders for x in o}) & texts:
            continue
        tests = [(reading.trees[at], True) for at in [*reading.refuses_when, *reading.leaves_when]
                 if at < len(reading.trees)]
        tests += [(reading.trees[at], False) for at in reading.leaves_unless if at < len(reading.trees)]
        enclosed = dict(reading.enclosed)
        for at, tree in enumerate(reading.trees):
            kind, body = only_statement(tree)
            rel = body.get("relation") if kind in _WRITE_VERBS else None
            t = _guarded(s, qualified(rel, reading.default_schema)) if isinstance(rel, dict) else None
            # an update of the caller's own row that sets nothing anything decides by, or its delete (leaving)
            if t is None or kind in ("UpdateStmt", "DeleteStmt") and _own_row_update(s, reading, t, body):
                continue
            where = body.get("whereClause") if kind != "InsertStmt" else \
                ((body.get("selectStmt") or {}).get("SelectStmt") or {}).get("whereClause")
            around = [(reading.trees[c], not holds) for c, holds in enclosed.get(at, ()) if c < len(reading.trees)]
            # the roles the table's own policies for the command admit already: those are the policies' findings
            # (or their deliberate suppressions: a blueprint's restore function for a role its grants name)
            admitted = {label for p in t.policies if p.permissive and applies_to_clients(p) and
                        _WRITE_VERBS[kind] in commands(p) for _, tree, _ in trees(p) if tree is not None
                        for label in _admitted_read_only_roles(tree, orders)}
            named: list[str] = []
            for test, turned in [(where, False), *around, *tests]:
                for label in _callers_read_only_roles(s, test, orders, turned) if test is not None else []:
                    if label not in named and label not in admitted:
                        named.append(label)
            if named:
                yield r.finding(f"Definer function {f.qualified} admits {', '.join(named)} to {_WRITE_VERBS[kind]} "
                                f"{t.qualified} past RLS; clients reach it through {through}.", f.qualified,
                                location=f.location)
                break


@rule("BP028", "membership_policy_recursion", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A policy on the membership table that reads the membership table itself.",
      why="PostgreSQL applies the policy to its own sub-query: every query on the table fails with "
          "\"infinite recursion detected in policy\" (42P17), and so does every policy that reads it. A view with "
          "the invoker's rights (security_invoker) over the table recurses the same way, and so does a function "
          "without SECURITY DEFINER that the policy calls (stack depth limit exceeded, 54001).",
      bad="create policy p on organization_members for select using (organization_id in "
          "(select organization_id from organization_members where user_id = (select auth.uid())));",
      fix="Read memberships through a SECURITY DEFINER helper in a private schema, or use "
          "user_id = (select auth.uid()) for the member's own rows.")
def membership_policy_recursion(r, s: Schema):
    members = membership_tables(s)
    for t in s.tables:
        if t.qualified not in members:
            continue
        # a view with the invoker's rights reads the table under its policies too (one with its owner's does not)
        through = {f"{v.schema_name}.{v.name}" for v in s.views
                   if v.security_invoker and not v.materialized and t.qualified in (v.reads or [])}
        for p in t.policies:
            if any(({t.qualified} | through) & relation_names(tree, t.schema_name) for _, tree, _ in trees(p)):
                yield r.finding(f"{policy_label(t, p)} reads {t.qualified} itself: infinite recursion.",
                                f"{t.qualified}.{p.name}", location=p.location or t.location)
                continue
            # so does a function without SECURITY DEFINER that the policy calls: its query runs under them
            invoker = sorted({f.qualified for _, tree, _ in trees(p) for name, _, _ in calls(tree)
                              if (f := find_function(s, name)) is not None and not f.security_definer
                              and t.qualified in (f.reads or ())})
            if invoker:
                yield r.finding(f"{policy_label(t, p)} calls {', '.join(invoker)}, which reads {t.qualified} with the "
                                f"caller's rights: infinite recursion.", f"{t.qualified}.{p.name}",
                                location=p.location or t.location)


@rule("BP090", "policy_recursion", Level.ERROR, ("SECURITY", "CORRECTNESS"),
      summary="A policy reads its own table, directly or through other tables' SELECT policies (a cycle).",
      why="PostgreSQL applies a table's SELECT policies to every sub-query that reads it, inside a policy too, and "
          "refuses a table whose policies come round to it again while they are being applied: a policy on `a` "
          "that reads `a`, or reads `b` whose SELECT policy reads `a`, makes every query it applies to fail with "
          "\"infinite recursion detected in policy\" (42P17), as long as `a`'s SELECT policies hold a sub-query "
          "(`(select auth.uid())` is one). A child row's policy that restates its parent's rule, which reads the "
          "child table, is the usual way in. (Membership tables: BP028. A loop through a function without "
          "SECURITY DEFINER depends on the rows it meets and is not reported here.)",
      bad="create policy comments_select on comments for select to authenticated using (exists (\n"
          "  select 1 from comments c where c.id = comments.reply_to and c.author_id = (select auth.uid())));",
      fix="Read the other row through a SECURITY DEFINER helper in a private schema that checks the caller "
          "itself, or decide by the row's own columns and the caller's memberships.")
def policy_recursion(r, s: Schema):
    protected = {t.qualified: t for t in s.tables if t.rls_enabled}
    views = {f"{v.schema_name}.{v.name}": v for v in s.views}

    def read_through(names, seen: frozenset = frozenset()):
        """Tables a read of `names` applies policies of: a view with the invoker's rights passes the read on."""
        for name in names:
            v = views.get(name)
            if v is None:
                yield name
            elif v.security_invoker and not v.materialized and name not in seen:
                yield from read_through(v.reads or (), seen | {name})

    known: dict[int, set[str]] = {}

    def reads(t, p) -> set[str]:
        """The protected tables the policy's sub-queries read (a CTE's name is not a table), once per policy."""
        out = known.get(id(p))
        if out is None:
            out = set()
            for _, tree, _ in trees(p):
                direct = read_tables(tree, t.schema_name)[0]
                out.update(read_through(direct) if views else direct)
            out = known[id(p)] = out & protected.keys()
        return out

    def for_role(role: str, p) -> bool:
        """The policy applies to the API role (no TO, PUBLIC, or the role named)."""
        return not p.roles or "public" in p.roles or role in p.roles

    # Per API role: the sub-query of a signed-in caller's policy meets the SELECT policies for authenticated only.
    graphs: dict[str, tuple[dict[str, set[str]], set[str]]] = {}
    for role in ("authenticated", "anon"):
        reads_of: dict[str, set[str]] = {}
        sub_selects: set[str] = set()  # tables whose SELECT policies for the role hold a sub-query
        for name, t in protected.items():
            reads_of[name] = set()
            for p in t.policies:
                if for_role(role, p) and p.command in ("select", "all"):
                    reads_of[name] |= reads(t, p)
                    if name not in sub_selects and any(read_tables(tree, t.schema_name)[1] for _, tree, _ in trees(p)):
                        sub_selects.add(name)
        graphs[role] = (reads_of, sub_selects)

    def path_back(start: set[str], home: str, reads_of: dict[str, set[str]]) -> list[str] | None:
        """The tables from a policy's reads back to `home` through SELECT policies; None when none leads there."""
        came: dict[str, str | None] = {name: None for name in sorted(start)}
        queue = list(came)
        while queue:
            name = queue.pop(0)
            if name == home:
                path = [name]
                while came[path[-1]] is not None:
                    path.append(came[path[-1]])
                return path[::-1]
            for nxt in sorted(reads_of.get(name, ())):
                if nxt not in came:
                    came[nxt] = name
                    queue.append(nxt)
        return None

    for name, t in protected.items():
        if not any(name in sub for _, sub in graphs.values()):
            continue  # reading the table applies SELECT policies without sub-queries: nothing comes round
        for p in t.policies:
            if not applies_to_clients(p):
                continue
            start = reads(t, p)
            if not start or (name in start and name in membership_tables(s)):
                continue  # reads nothing, or a membership table reading itself: BP028 says so
            path = next((found for role, (reads_of, sub) in graphs.items() if for_role(role, p) and name in sub
                         and (found := path_back(start, name, reads_of)) is not None), None)
            if path is not None:
                via = "".join(f", whose SELECT policy reads {n}" for n in path[1:])
                yield r.finding(f"{policy_label(t, p)} reads {path[0]}{via}: infinite recursion on every query it "
                                "applies to (42P17).", f"{t.qualified}.{p.name}", location=p.location or t.location)


@rule("BP029", "membership_client_write", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="An INSERT or UPDATE policy lets clients write the membership table.",
      why="A client that can insert memberships joins any organisation; one that can update them promotes "
          "itself to owner. Well-known starters give clients no such policy at all. An UPDATE policy whose roles "
          "are granted other columns only (`grant update (muted)`: a member mutes their notifications) is not "
          "reported: it moves nobody.",
      bad="create policy j on organization_members for insert to authenticated\n"
          "  with check (user_id = (select auth.uid()));",
      fix="Drop the policy: write memberships from SECURITY DEFINER triggers/functions or the service role "
          "(an invite-acceptance edge function).")
def membership_client_write(r, s: Schema):
    members = membership_tables(s)
    users = per_user_tables(s.tables)
    for t in s.tables:
        if t.qualified not in members:
            continue
        keys = {t.tenant_key, member_column(t, t.tenant_key, users)} | {c.name for c in t.columns
                                                                        if is_role_column(c.name)}
        for p in t.policies:
            # Clients granted UPDATE of other columns only (a member mutes their notifications) move nobody.
            updatable = client_update_columns(t, p.roles or CLIENT_ROLES)
            harmless = updatable is not None and not keys & set(updatable)
            writes = [c for c in commands(p) if c == "insert" or (c == "update" and not harmless)]
            if p.permissive and applies_to_clients(p) and writes:
                yield r.finding(f"{policy_label(t, p)} lets clients {' and '.join(writes)} memberships.",
                                f"{t.qualified}.{p.name}", location=p.location or t.location)


@rule("BP049", "signup_trusts_user_metadata", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A trigger on auth.users writes memberships, or columns policies decide by, from the user's own "
              "metadata (raw_user_meta_data).",
      why="Whoever signs up chooses their user metadata (supabase.auth.signUp({options: {data}})) and may change "
          "it later (updateUser): a trigger that makes memberships from it lets anyone join any organisation, "
          "in any role, by naming it at signup. The same holds for a column of the app's own table it fills "
          "(`profiles.organization_id`, `profiles.role`) that a policy or its helper decides by (`organization_id "
          "= (select private.my_org())`).",
      bad="create function private.handle_new_user() returns trigger language plpgsql security definer "
          "set search_path = '' as $$\nbegin\n  insert into public.organization_members (organization_id, "
          "user_id, role)\n  values ((new.raw_user_meta_data ->> 'organization_id')::uuid, new.id, 'owner');\n"
          "  return new;\nend $$;\ncreate trigger on_auth_user_created after insert on auth.users\n"
          "  for each row execute function private.handle_new_user();",
      fix="Make memberships from server-checked facts only: an invitation accepted with its secret "
          "(accept_invitation), or raw_app_meta_data, which only the service role writes.")
def signup_trusts_user_metadata(r, s: Schema):
    members = membership_tables(s)
    for trg in s.auth_triggers:
        f = find_function(s, trg.function)
        written = sorted(t for t in (f.metadata_writes or []) if t in members) if f is not None else []
        if written:
            yield r.finding(f"Trigger {trg.name} on auth.users runs {f.qualified}, which writes "
                            f"{', '.join(written)} from the user's own metadata.", f.qualified,
                            location=f.location or trg.location)
    # The same choice kept in a table of the app's that policies read (profiles.organization_id from the signup's
    # metadata, read by a my_org() helper: evasion round 7): the user names their organisation, or role, at signup.
    chosen = _chosen_at_signup(s)
    if chosen and _named_elsewhere(s, {c for _, columns in chosen.values() for c in columns}):
        from .tenancy_rules import trusted_columns
        for t, p, table, column, view, helper in trusted_columns(s, chosen):
            through = f" through {view or helper}" if view or helper else ""
            yield r.finding(f"{policy_label(t, p)} decides by {table}.{column}{through}, which a trigger on "
                            "auth.users fills from the user's own metadata: they choose it at signup.",
                            f"{t.qualified}.{p.name}", location=p.location or t.location)


def _named_elsewhere(s: Schema, columns: set[str]) -> bool:
    """Whether a policy, or a function other than the triggers on auth.users, names one of `columns` at all: reading
    every policy as BP067 does is worth it only then (a signup filling profiles.full_name decides nothing)."""
    word = re.compile(r"\b(" + "|".join(map(re.escape, sorted(columns))) + r")\b", re.IGNORECASE)
    signup = {t.function for t in s.auth_triggers}
    return any(word.search(text or "") for t in s.tables for p in t.policies for text in (p.using, p.check)) or \
        any(word.search(f.body or "") for f in s.functions if f.qualified not in signup and f.name not in signup)


def _chosen_at_signup(s: Schema) -> dict[str, tuple[str, set[str]]]:
    """Columns a trigger on auth.users fills from the user's own metadata, in a row keyed by the new user's id
    (`insert into profiles (id, organization_id) values (new.id, (new.raw_user_meta_data ->> 'org')::uuid)`): by
    table, that key column and the columns so chosen."""
    out: dict[str, tuple[str, set[str]]] = {}
    for trg in s.auth_triggers:
        f = find_function(s, trg.function)
        reading = getattr(f, "_body", None) if f is not None else None
        if reading is None or not f.metadata_writes:
            continue
        for tree in reading.trees:
            for kind, body in nodes(tree):
                if kind != "InsertStmt" or not isinstance(body.get("relation"), dict):
                    continue
                rv = body["relation"]
                table = qualified(rv, reading.default_schema)
                cols = [(c.get("ResTarget") or {}).get("name") for c in body.get("cols") or []]
                for row in ((body.get("selectStmt") or {}).get("SelectStmt") or {}).get("valuesLists") or []:
                    items = (row.get("List") or {}).get("items") or []
                    key = next((c for c, v in zip(cols, items) if isinstance(v, dict) and
                                strings((v.get("ColumnRef") or {}).get("fields")) == ["new", "id"]), None)
                    picked = {c for c, v in zip(cols, items) if c and c != key and names_metadata(v)}
                    if key and picked:
                        out[table] = (key, out.get(table, (key, set()))[1] | picked)
    return out


@rule("BP031", "policy_in_subquery", Level.WARN, ("PERFORMANCE",),
      summary="A policy filters with `column in (select ...)` where `column = any (array(select ...))` applies.",
      why="The IN form stays a hashed sub-plan over a sequential scan of the table; the array form is an init "
          "plan whose result the planner matches against the index. Measured on 1,000,000 rows: 74 ms vs 0.5 ms. "
          "An IN ANDed with the array form of the same select on the same column is not reported: the index "
          "serves the array arm, and the hashed IN spares each row read a walk of the array.",
      bad="using (organization_id in (select organization_id from organization_members\n"
          "  where user_id = (select auth.uid())))",
      fix="using (organization_id = any (array(select private.organization_ids_with_role('viewer'))))")
def policy_in_subquery(r, s: Schema):
    for t in s.tables:
        for p in t.policies:
            for _, tree, _ in trees(p):
                column = per_tree("in (select ...)", tree, lambda: _in_subquery(tree))
                if column is not None:
                    yield r.finding(f"{policy_label(t, p)} uses `{column} in (select ...)`.",
                                    f"{t.qualified}.{p.name}", location=p.location or t.location)
                    break


def _in_subquery(tree) -> str | None:
    """The column of the first `column in (select ...)` evaluated per row, or None. Not one ANDed with
    `column = any (array(<the same select>))`: that arm is the one the index serves, and the hashed IN
    only spares each row read a walk of the array (the generated linked form, sql/access.linked_pred)."""
    indexed = _indexed_in_subqueries(tree)
    hit = next((body for kind, body in outside_subqueries(tree) if kind == "SubLink"
                and body.get("subLinkType") == "ANY_SUBLINK" and "ColumnRef" in body.get("testexpr", {})
                and id(body) not in indexed), None)
    if hit is None:
        return None
    return ".".join(x.get("String", {}).get("sval", "*") for x in hit["testexpr"]["ColumnRef"].get("fields", []))


def _indexed_in_subqueries(tree) -> set[int]:
    """ids of the `column in (select q)` nodes with a sibling `column = any (array(q))` in their AND."""
    out: set[int] = set()
    for kind, body in outside_subqueries(tree):
        if kind != "BoolExpr" or body.get("boolop") != "AND_EXPR":
            continue
        args = body.get("args") or []
        arrays = [canonical([a["A_Expr"]["lexpr"], a["A_Expr"]["rexpr"]["SubLink"].get("subselect")])
                  for a in args if "A_Expr" in a and a["A_Expr"].get("kind") == "AEXPR_OP_ANY"
                  and strings(a["A_Expr"].get("name")) == ["="]
                  and a["A_Expr"].get("rexpr", {}).get("SubLink", {}).get("subLinkType") == "ARRAY_SUBLINK"]
        for a in args:
            link = a.get("SubLink") or {}
            if link.get("subLinkType") == "ANY_SUBLINK" and \
                    canonical([link.get("testexpr"), link.get("subselect")]) in arrays:
                out.add(id(link))
    return out


def _per_row_call(s: Schema, tree) -> str | None:
    """A user-defined function called outside sub-queries with a column of the row as argument."""
    for kind, body in outside_subqueries(tree):
        if kind != "FuncCall":
            continue
        name = function_name(body)
        schema = name.split(".")[0] if "." in name else None
        if schema in _TRUSTED_SCHEMAS or (schema is None and find_function(s, name) is None):
            continue
        refs = [ctx for k, _, ctx in nodes_in(body.get("args"), lambda k, b: "select" if k == "SelectStmt" else None)
                if k == "ColumnRef"]
        if any(not ctx for ctx in refs):
            return name
    return None


@rule("BP032", "policy_per_row_function", Level.WARN, ("PERFORMANCE",),
      summary="A policy calls a user-defined function with a column of the row, once per row.",
      why="A SECURITY DEFINER helper such as is_member(organization_id) runs for every row scanned: measured "
          "5,650 ms vs 0.5 ms on 1,000,000 rows, past the API's statement timeouts.",
      bad="using (private.is_member(organization_id))",
      fix="Let the helper return the caller's organisations once: "
          "organization_id = any (array(select private.organization_ids_with_role('viewer'))).")
def policy_per_row_function(r, s: Schema):
    for t in s.tables:
        for p in t.policies:
            name = next((n for _, tree, _ in trees(p)
                         if (n := per_tree("per-row call", tree, lambda: _per_row_call(s, tree)))), None)
            if name:
                yield r.finding(f"{policy_label(t, p)} calls {name}() with a column, for every row.",
                                f"{t.qualified}.{p.name}", location=p.location or t.location)



# What a request may leave empty: no signed-in user (anon), no claim, no header.
_CALLER_VALUES = ("auth.uid", "auth.jwt", "auth.role", "auth.email", "current_setting")


@rule("BP063", "caller_null_matches_null", Level.WARN, ("SECURITY",),
      summary="A policy matches a column to the caller's value so that NULL matches NULL (IS NOT DISTINCT FROM, "
              "or COALESCEs falling back to one value), or so that a NULL value matches every row.",
      why="When the request carries no such value (an anonymous caller has no auth.uid(); a request without the "
          "header or claim reads NULL), `column is not distinct from <caller's value>` is true for every row whose "
          "column is NULL: a share link without a token opens every row that has none. `coalesce(column, '') = "
          "coalesce(<caller's value>, '')` does the same. An optional filter, `organization_id = coalesce(<pinned "
          "organisation>, organization_id)` or `<value> is null or organization_id = <value>`, matches every row "
          "when the value is NULL: as the whole tenant test it lets a caller with none pinned read every "
          "organisation's rows (audit-evasion round 9).",
      bad="using (share_token is not distinct from (current_setting('request.headers', true)::json ->> "
          "'x-share-token'))",
      fix="Compare with `=`, which never matches NULL, or add `<caller's value> is not null` to the branch; keep a "
          "membership test beside an optional filter (AND) and write the filter without the fallback.")
def caller_null_matches_null(r, s: Schema):
    for t, p in linted_policies(s, roles=None):
        for clause, tree, _ in trees(p):
            optional = per_tree("optional filter", tree, lambda: _optional_filter(s, tree))
            if optional:
                yield r.finding(f"{policy_label(t, p)} tests a column by {optional} in its {clause}, with no "
                                "membership test beside it: without that value every row passes.",
                                f"{t.qualified}.{p.name}", location=p.location or t.location)
                continue
            for body, how in per_tree("null meets null", tree, lambda: _null_comparisons(tree)):
                sides = [_caller_value(body.get("lexpr")), _caller_value(body.get("rexpr"))]
                columns = [_nullable_column(t, _coalesced(body.get("lexpr"))),
                           _nullable_column(t, _coalesced(body.get("rexpr")))]
                if (sides[0] and columns[1]) or (sides[1] and columns[0]):
                    yield r.finding(f"{policy_label(t, p)} compares a column with {sides[0] or sides[1]} by {how} "
                                    f"in its {clause}: without that value every row whose column is NULL matches.",
                                    f"{t.qualified}.{p.name}", location=p.location or t.location)
                    break


def _null_comparisons(tree) -> list[tuple[dict, str]]:
    """(comparison, how) of each comparison in the tree under which NULL may meet NULL (shared clauses: once)."""
    out = []
    for kind, body in nodes(tree):
        if kind != "A_Expr":
            continue
        how = "IS NOT DISTINCT FROM" if body.get("kind") == "AEXPR_NOT_DISTINCT" else \
            "= between COALESCEs with one fallback" if _same_fallback(body) else \
            "= on a COALESCE whose fallback a request header can send" if _header_sends_fallback(body) else None
        if how is not None:
            out.append((body, how))
    return out


def _optional_filter(s: Schema, tree, guarded: bool = False) -> str | None:
    """How a test meant to narrow to a value lets everything through without one, where no membership test is ANDed
    beside it (audit-evasion round 9, e07: the organisation a member pinned, every organisation with none):
    `col = coalesce(x, col)`, or `x is null or col = x`. Beside a membership test it narrows what that allows."""
    node = unwrap(tree)
    if not isinstance(node, dict):
        return None
    how = _optional_form(node)
    if how is not None:
        return None if guarded else how
    b = node.get("BoolExpr")
    if not isinstance(b, dict) or b.get("boolop") not in ("AND_EXPR", "OR_EXPR"):
        return None
    args = b.get("args") or []
    if b["boolop"] == "AND_EXPR" and not guarded:
        members, helpers = membership_tables(s), membership_functions(s)
        guarded = any(_optional_form(unwrap(a)) is None and _checks_membership(s, a, members, helpers) is not False
                      for a in args)  # (a helper defined elsewhere may check: the benefit of the doubt, as BP027)
    return next((how for a in args if (how := _optional_filter(s, a, guarded))), None)


def _optional_form(node) -> str | None:
    """`col = coalesce(x, ..., col)`, or an OR of `x is null` and `col = x`."""
    if not isinstance(node, dict):
        return None
    e = node.get("A_Expr")
    if isinstance(e, dict) and e.get("kind") == "AEXPR_OP" and strings(e.get("name")) == ["="]:
        sides = (unwrap(e.get("lexpr")), unwrap(e.get("rexpr")))
        for a, b in (sides, sides[::-1]):
            args = (b or {}).get("CoalesceExpr", {}).get("args") if isinstance(b, dict) else None
            if isinstance(a, dict) and "ColumnRef" in a and args and len(args) >= 2 and \
                    canonical(unwrap(args[-1])) == canonical(a):
                return "= on a COALESCE falling back to the column itself"
    b = node.get("BoolExpr")
    if isinstance(b, dict) and b.get("boolop") == "OR_EXPR":
        args = b.get("args") or []
        empty = {canonical(unwrap(x["NullTest"].get("arg"))) for x in args if isinstance(x, dict) and
                 (x.get("NullTest") or {}).get("nulltesttype") == "IS_NULL"}
        for x in args:
            e = x.get("A_Expr") if isinstance(x, dict) else None
            if not (empty and isinstance(e, dict) and e.get("kind") == "AEXPR_OP" and strings(e.get("name")) == ["="]):
                continue
            sides = (unwrap(e.get("lexpr")), unwrap(e.get("rexpr")))
            if any(isinstance(a, dict) and "ColumnRef" in a and canonical(c) in empty for a, c in (sides, sides[::-1])):
                return "= in an OR that holds when the value is NULL"
    return None


def _same_fallback(expr) -> bool:
    """`coalesce(a, K) = coalesce(b, K)`: both sides fall back to the same value, so NULL meets NULL."""
    if expr.get("kind") != "AEXPR_OP" or strings(expr.get("name")) != ["="]:
        return False
    args = [(side or {}).get("CoalesceExpr", {}).get("args") for side in (expr.get("lexpr"), expr.get("rexpr"))]
    return all(a and len(a) >= 2 for a in args) and canonical(args[0][-1]) == canonical(args[1][-1])


def _header_sends_fallback(expr) -> bool:
    """`coalesce(column, K) = <a request header>`: the client sends K and meets every row whose column is NULL."""
    if expr.get("kind") != "AEXPR_OP" or strings(expr.get("name")) != ["="]:
        return False
    sides = (expr.get("lexpr"), expr.get("rexpr"))
    return any((a or {}).get("CoalesceExpr") and _reads_header(b) for a, b in (sides, sides[::-1]))


def _reads_header(side) -> bool:
    for kind, body in nodes(side):
        if kind == "FuncCall" and function_name(body) in ("current_setting", "pg_catalog.current_setting"):
            first = (body.get("args") or [{}])[0].get("A_Const", {}).get("sval", {}).get("sval", "")
            if first.startswith("request.header"):
                return True
    return False


def _coalesced(side):
    """The first argument of a COALESCE (what may be NULL), or the operand itself."""
    args = (side or {}).get("CoalesceExpr", {}).get("args") if isinstance(side, dict) else None
    return args[0] if args else side


def _caller_value(side) -> str | None:
    """The first function of the request's own values the operand calls (auth.uid(), current_setting()...)."""
    names = (function_name(body) for kind, body in nodes(side) if kind == "FuncCall")
    return next((f"{name}()" for name in names if name in _CALLER_VALUES), None)


def _nullable_column(t, side) -> bool:
    """The operand reads a column that may be NULL: a bare column of the table declared NOT NULL never is."""
    refs = [strings(b.get("fields")) for k, b in nodes(side) if k == "ColumnRef"]
    if not refs:
        return False
    bare = isinstance(side, dict) and "ColumnRef" in side
    col = t.column(refs[0][-1]) if bare and refs[0] else None
    return not (col is not None and not col.nullable)


_ORDERING = ("<", "<=", ">", ">=")


@rule("BP064", "role_ranks_reversed", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A role enum lists a more trusted role before a less trusted one (or roles are text), and policies "
              "or helpers compare roles by order.",
      why="An enum's order is its declaration order: ('owner', 'admin', 'member', 'viewer') makes viewer the "
          "greatest value, so `role >= 'admin'` holds for viewers and members and fails for owners. `alter type "
          "member_role add value 'guest'` without BEFORE appends guest after owner: guests pass every `>=` check. "
          "A rank taken from that order (`array_position(enum_range(null::member_role), role)`) is the same "
          "comparison. A text role (or one whose type is a domain over text) compares by collation: 'viewer' >= "
          "'admin' holds, and so does an enum role cast to text (`m.role::text >= p_role`), however the enum is "
          "declared. A domain over an enum orders as that enum.",
      bad="create type member_role as enum ('owner', 'admin', 'member', 'viewer');  -- then m.role >= min_role",
      fix="Declare the enum from the least to the most trusted role ('viewer', 'member', 'admin', 'owner'); add a "
          "role where it ranks (`add value 'guest' before 'viewer'`); or compare with IN lists.")
def role_ranks_reversed(r, s: Schema):
    members = membership_tables(s)
    for t in (t for t in s.tables if t.qualified in members):
        col = t.column(role_column(t) or "")
        enum = role_enum(s, t)
        # a domain over text orders as text (evasion round 10 e01: `create domain project_role as text check ...`)
        base = base_type(s, col.type) if col is not None else ""
        if col is not None and enum is None and _TEXT_TYPE.match(base.split(".")[-1].strip('"').lower()):
            where = _ordered_use(s, t, col.name, "")
            if where:
                kind = col.type if base == col.type else f"{col.type} (a domain over {base})"
                yield r.finding(f"{t.qualified}.{col.name} is {kind}, and {where} compares roles by order: text "
                                "compares by collation, not by rank ('viewer' > 'member' > 'editor' > 'admin').",
                                f"{t.qualified}.{col.name}", location=t.location)
            continue
        inverted = rank_inversion(enum.values) if enum is not None else None
        if inverted is None:
            # Declared least trusted first (or too few known names to tell), but compared as text: `m.role::text >=
            # p_role` orders by collation, not by the enum (evasion round 7: viewers passed an admins' check).
            where = _ordered_use(s, t, col.name, "", as_text=True) if enum is not None else None
            if where:
                yield r.finding(f"{t.qualified}.{col.name} is cast to text, and {where} compares roles by order "
                                "there: text compares by collation, not by the enum's rank ('viewer' > 'member' > "
                                "'admin').", f"{t.qualified}.{col.name}", location=t.location)
            continue
        reversed_enum = ranks_reversed(enum.values)
        # Declared most trusted first, `m.role <= min_role` admits min_role and the roles more trusted: only a
        # comparison that puts the member's role on the greater side (`>=`) is wrong (evasion round 7's note).
        where = _ordered_use(s, t, col.name, enum.name, greater_only=reversed_enum)
        if where and reversed_enum:
            yield r.finding(f"Enum {enum.schema_name}.{enum.name} lists {enum.values[0]!r} first, so it is the "
                            f"least value, and {where} compares roles by order: '{enum.values[-1]}' outranks "
                            f"'{enum.values[0]}' there.", f"{enum.schema_name}.{enum.name}",
                            location=enum.location or t.location)
        elif where:
            yield r.finding(f"Enum {enum.schema_name}.{enum.name} declares {inverted[1]!r} after {inverted[0]!r} "
                            f"({', '.join(enum.values)}), so {inverted[1]!r} compares greater, and {where} compares "
                            f"roles by order: '{inverted[1]}' outranks '{inverted[0]}' there.",
                            f"{enum.schema_name}.{enum.name}", location=enum.location or t.location)


_TEXT_TYPE = re.compile(r"^(text|citext|varchar|character varying|char|character|bpchar)(\(\d+\))?$")


def _ordered_use(s: Schema, members, column: str, enum: str, as_text: bool = False,
                 greater_only: bool = False) -> str | None:
    """The first policy or function that compares `column` of the membership table `members` (or a value cast to
    `enum`) with <, <=, > or >=, in a statement that reads that table (or a policy on it); `as_text`: only where the
    column is cast to a text type there; `greater_only`: only a comparison that may put the column on the greater
    side (`m.role >= min_role`, `min_role < m.role`; one whose sides are both something else, too)."""
    for label, table, default_schema, tree, comparisons in _ordering_trees(s):
        # the comparisons first: far fewer trees compare the column than read the table
        if any((_as_text(s, side, column) if as_text else _names_role(side, column, enum))
               and not (greater_only and _role_not_greater(lhs, rhs, how, column, enum))
               for lhs, rhs, how in comparisons for side in (lhs, rhs)) and \
                (table is members or members.qualified in relation_names(tree, default_schema)):
            return label
    return None


def _as_text(s: Schema, side, column: str) -> bool:
    """The operand is the role column cast to a text type (`m.role::text`, `cast(role as varchar)`, a domain over
    text)."""
    cast = side.get("TypeCast") if isinstance(side, dict) else None
    if not isinstance(cast, dict):
        return False
    names = strings(((cast.get("typeName") or {}).get("names")))
    arg = cast.get("arg")
    return bool(names) and _TEXT_TYPE.match(base_type(s, ".".join(names)).split(".")[-1].lower()) is not None and \
        isinstance(arg, dict) and "ColumnRef" in arg and (strings(arg["ColumnRef"].get("fields")) or [""])[-1] == column


def _ordering_trees(s: Schema) -> list[tuple[str, object, str, object, list[tuple]]]:
    """(label, the policy's table or None, default schema, tree, the sides of each <, <=, > or >= in it) of every
    policy and function tree that orders anything: found once per audit (most order nothing), read per membership
    table."""
    def ordering(tree) -> list[tuple]:  # identical clauses share a tree: each is walked once
        return per_tree("ordering", tree, lambda: [sides for kind, body in nodes(tree) if kind == "A_Expr"
                                                   for sides in _ordered_sides(body)])

    def collect() -> list[tuple[str, object, str, object, list[tuple]]]:
        out = []
        for t in s.tables:
            for p in t.policies:
                out += [(f"policy {p.name} on {t.qualified}", t, "public", tree, found)
                        for _, tree, _ in trees(p) if (found := ordering(tree))]
        for f in s.functions:
            reading = getattr(f, "_body", None)
            out += [(f"function {f.qualified}", None, reading.default_schema, tree, found)
                    for tree in (reading.trees if reading is not None else ()) if (found := ordering(tree))]
        return out
    return _once("ordering trees", s, collect)


_BETWEEN = ("AEXPR_BETWEEN", "AEXPR_NOT_BETWEEN", "AEXPR_BETWEEN_SYM", "AEXPR_NOT_BETWEEN_SYM")


def _ordered_sides(e: dict) -> list[tuple]:
    """(left, right, how) of each ordering an expression makes, `how` the operator read left to right (None where a
    range stands for it): `a < b` (<, <=, >, >=); `a between x and y` (a with each bound); and `a = any
    (enum_range(x, y))` (a >= x and a <= y): an enum's range follows its declaration order as `>=` does (evasion
    round 6: `m.role = any (enum_range(min_role, null))` with 'guest' appended ranked guests above owners)."""
    kind, name = e.get("kind"), strings(e.get("name"))[-1:]
    if kind == "AEXPR_OP" and name and name[0] in _ORDERING:
        return [(e.get("lexpr"), e.get("rexpr"), name[0])]
    if kind in _BETWEEN:
        bounds = ((e.get("rexpr") or {}).get("List") or {}).get("items") or []
        return [(e.get("lexpr"), bound, None) for bound in bounds]
    call = (e.get("rexpr") or {}).get("FuncCall") if isinstance(e.get("rexpr"), dict) else None
    # enum_range(a, b) ranks; enum_range(null::t), one argument, is every value: an IN list, no order
    if kind in ("AEXPR_OP_ANY", "AEXPR_OP_ALL") and call and function_name(call).split(".")[-1] == "enum_range" \
            and len(call.get("args") or []) == 2:
        low, high = call["args"]
        return [(e.get("lexpr"), bound, how) for bound, how in ((low, ">="), (high, "<=")) if not _is_null(bound)]
    return []


def _is_null(node) -> bool:
    """NULL, cast or not (`enum_range(null, min_role)`: no lower bound)."""
    node = unwrap(node)
    return isinstance(node, dict) and "A_Const" in node and node["A_Const"].get("isnull") is True


def _role_not_greater(lhs, rhs, how: str | None, column: str, enum: str) -> bool:
    """The comparison keeps the membership's role column on the lesser side (`m.role <= min_role`, `min_role >=
    m.role`): right for an enum declared most trusted first. False when it cannot tell (no operator, or the column
    on neither side or on both)."""
    left, right = _is_role_column(lhs, column, enum), _is_role_column(rhs, column, enum)
    if how is None or left == right:
        return False
    return how in ("<", "<=") if left else how in (">", ">=")


def _is_role_column(side, column: str, enum: str) -> bool:
    """The member's role itself, or its rank (array_position(enum_range(...), m.role)), casts aside."""
    side = unwrap(side)
    if not isinstance(side, dict):
        return False
    if "ColumnRef" in side:
        return (strings(side["ColumnRef"].get("fields")) or [""])[-1] == column
    call = side.get("FuncCall")
    args = call.get("args") or [] if isinstance(call, dict) else []
    return isinstance(call, dict) and function_name(call).split(".")[-1] == "array_position" and len(args) == 2 \
        and _is_role_column(args[1], column, enum)


def _names_role(side, column: str, enum: str) -> bool:
    """The operand is the role column or a value cast to the role enum, or its position in the enum's declaration
    order (`array_position(enum_range(null::member_role), m.role)`: a rank by that order, as `>=` compares)."""
    if not isinstance(side, dict):
        return False
    call = side.get("FuncCall")
    if isinstance(call, dict):
        args = call.get("args") or []
        ranged = (args[0].get("FuncCall") if len(args) == 2 and isinstance(args[0], dict) else None) or {}
        return bool(enum) and function_name(call).split(".")[-1] == "array_position" and \
            function_name(ranged).split(".")[-1] == "enum_range" and \
            any(_names_role(x, column, enum) for x in [*(ranged.get("args") or []), args[1]])
    if "ColumnRef" in side:
        return (strings(side["ColumnRef"].get("fields")) or [""])[-1] == column
    if "TypeCast" in side:
        names = strings(((side["TypeCast"].get("typeName") or {}).get("names")))
        return (bool(enum) and names[-1:] == [enum]) or _names_role(side["TypeCast"].get("arg"), column, enum)
    return False


_API_ROLES = ("anon", "authenticated")


def _api_roles(p) -> set[str]:
    """The API roles a policy applies to: both for PUBLIC (or no TO)."""
    return set(_API_ROLES) if not p.roles or "public" in p.roles else set(p.roles) & set(_API_ROLES)


def _reads_row(s: Schema, t, p) -> bool:
    """Whether the policy tests the row (a column of its table outside sub-queries, or a sub-query tied to the row:
    `exists (select 1 from members m where m.organization_id = documents.organization_id ...)`) rather than the
    caller alone (`(select auth.jwt() ->> 'aal') = 'aal2'`, a restriction that means nothing for a role without a
    session)."""
    names = {c.name for c in t.columns}
    for _, tree, _ in trees(p):
        if any(kind == "ColumnRef" and strings(body.get("fields"))[-1:] and strings(body.get("fields"))[-1] in names
               for kind, body in outside_subqueries(tree)):
            return True
        if any(kind == "SubLink" and tied_to_row(s, (body.get("subselect") or {}).get("SelectStmt") or {}, "public")
               for kind, body in nodes(tree)):
            return True
    return False


@rule("BP066", "restrictive_policy_skips_role", Level.WARN, ("SECURITY",),
      summary="A restrictive policy narrows a command's rows for some API roles, and a permissive policy admits "
              "another API role it does not name.",
      why="Restrictive policies only bind the roles they name. `for select to anon, authenticated using (true)` "
          "with `as restrictive for select to authenticated using (is_published or <member>)` keeps signed-in "
          "users to published rows and their organisations' drafts, and gives anon every row: the narrowing "
          "was written for the rows, not for one role.",
      bad="create policy read on documents for select to anon, authenticated using (true);\n"
          "create policy members_only on documents as restrictive for select to authenticated\n"
          "  using (is_published or organization_id = any (array(select \n"
          "    private.organization_ids_with_role('viewer'))));",
      fix="Name every role the permissive policies admit in the restrictive policy (to anon, authenticated), or "
          "give anon its own permissive policy with the narrowed condition (using (is_published)).")
def restrictive_policy_skips_role(r, s: Schema):
    for t in (t for t in s.tables if t.rls_enabled and t.policies):
        client = [p for p in t.policies if applies_to_clients(p)]
        for command in ("select", "insert", "update", "delete"):
            narrowing = [p for p in client if not p.permissive and command in commands(p) and _reads_row(s, t, p)]
            if not narrowing:
                continue
            bound = set.union(*(_api_roles(p) for p in narrowing))
            for p in (p for p in client if p.permissive and command in commands(p)):
                escaped = sorted(_api_roles(p) - bound)
                # One policy for both: the narrowing was written for its rows. A policy of the other role's own
                # (`to anon using (is_published)`) says what that role reads, as the fix below advises.
                if escaped and _api_roles(p) & bound:
                    q = narrowing[0]
                    yield r.finding(f"{policy_label(t, q)} narrows {command} for {', '.join(sorted(bound))} only; "
                                    f"{policy_label(t, p)} admits {', '.join(escaped)} past it.",
                                    f"{t.qualified}.{q.name}", location=q.location or t.location)
                    break


def _mentions_topic(value, names: frozenset[str] = frozenset()) -> bool:
    """realtime.topic(), or inside a helper the parameter it was given the topic in (`names`)."""
    return any(kind == "FuncCall" and function_name(body) in ("realtime.topic", "topic") or
               kind == "ColumnRef" and len(strings(body.get("fields"))) == 1 and strings(body.get("fields"))[0] in names
               for kind, body in nodes(value))


def _reads_membership(value, members: set[str], helpers: set[str]) -> bool:
    return any(kind == "FuncCall" and function_name(body) in helpers for kind, body in nodes(value)) or \
        bool(relation_names(value) & members)


def _topic_passed(s: Schema, call, members: set[str], helpers: set[str], names: frozenset[str]) -> bool:
    """A call of a function of the SQL given the topic, whose body puts that parameter and the caller's memberships
    together as a policy would (one level of helpers)."""
    given = [i for i, a in enumerate(call.get("args") or []) if _mentions_topic(a, names)]
    f = find_function(s, function_name(call)) if given else None
    reading = f._body if f is not None else None
    if reading is None:
        return False
    params = frozenset(reading.params[i][0] for i in given if i < len(reading.params) and reading.params[i][0])
    return bool(params) and any(_topic_tied(s, tree, members, helpers, params, nested=True) for tree in reading.trees)


def _topic_tied(s: Schema, tree, members: set[str], helpers: set[str], names: frozenset[str] = frozenset(),
                nested: bool = False) -> bool:
    """Some test puts the channel's topic and the caller's memberships together: a comparison with the topic on
    one side and a membership read on the other (`split_part(realtime.topic(), ':', 2)::uuid = any (array(select
    private.organization_ids_with_role('member')))`), or a membership sub-query whose filter reads the topic."""
    for kind, body in nodes(tree):
        if kind == "FuncCall" and not nested and _topic_passed(s, body, members, helpers, names):
            return True
        if kind == "A_Expr":
            sides = (body.get("lexpr"), body.get("rexpr"))
            if any(_mentions_topic(a, names) and _reads_membership(b, members, helpers)
                   for a, b in (sides, sides[::-1])):
                return True
        elif kind == "SubLink":
            select = (body.get("subselect") or {}).get("SelectStmt") or {}
            if _topic_rows(s, select, members, helpers, names):
                return True
            if _mentions_topic(body.get("testexpr"), names) and _reads_membership(body.get("subselect"), members,
                                                                                    helpers):
                return True
    return False


def _topic_rows(s: Schema, select: dict, members: set[str], helpers: set[str], names: frozenset[str]) -> bool:
    """The sub-query compares the topic with its own rows of the caller's memberships (a test, in its WHERE or a
    join's ON, with the topic in one operand and a column of such rows in another): rows of a membership table,
    of a membership helper in its FROM (`from private.organization_ids_with_role('viewer') as mine(id) where
    realtime.topic() = 'org:' || mine.id::text`, evasion round 21 fp08), or of a table whose column the filter
    holds to a membership read (`o.id = any (array(select private.organization_ids_with_role(...)))`). A topic
    test beside the membership but not on its rows (`m.user_id = auth.uid() and realtime.topic() like 'org:%'`)
    ties nothing."""
    tables: dict[str, set[str] | None] = {}  # alias -> the columns it is known to have (None: unknown)
    mine: set[str] = set()
    for kind, body in _from_items(select):
        alias = (body.get("alias") or {}).get("aliasname")
        if kind == "RangeVar":
            name = alias or body.get("relname", "")
            t = s.table(body.get("relname", ""), body.get("schemaname") or "public")
            tables[name] = {c.name for c in t.columns} if t is not None else None
            if qualified(body, "public") in members:
                mine.add(name)
        elif kind == "RangeFunction":
            calls = [b for k, b in nodes(body.get("functions")) if k == "FuncCall"]
            fn = function_name(calls[0]) if calls else ""
            name = alias or fn.split(".")[-1]
            tables[name] = set(strings((body.get("alias") or {}).get("colnames"))) or {name}
            if fn in helpers:
                mine.add(name)
    filters = [select.get("whereClause")] + [b.get("quals") for k, b in nodes(select.get("fromClause"))
                                             if k == "JoinExpr"]

    def owner(fields: list[str]) -> str | None:
        if len(fields) != 1:
            return fields[-2] if fields else None
        owners = [a for a, columns in tables.items() if columns is None or fields[0] in columns]
        return owners[0] if len(owners) == 1 else None

    def aliases(value) -> set[str]:
        return {owner(strings(b.get("fields"))) for k, b in nodes(value) if k == "ColumnRef"} - {None}

    tests = [(k, b) for k, b in nodes(filters) if k in ("A_Expr", "FuncCall")]
    held = [(b.get("lexpr"), b.get("rexpr")) for k, b in tests if k == "A_Expr" and strings(b.get("name")) == ["="]
            and b.get("kind") in ("AEXPR_OP", "AEXPR_OP_ANY", "AEXPR_IN")] + \
        [(b.get("testexpr"), b.get("subselect")) for k, b in nodes(filters) if k == "SubLink"
         and b.get("subLinkType") == "ANY_SUBLINK" and strings(b.get("operName")) in ([], ["="])]
    for _ in range(len(tables)):  # held to the caller's memberships, or equal to a column of rows that are
        more = {x for pair in held for a, b in (pair, pair[::-1]) if isinstance(unwrap(a), dict) and "ColumnRef" in
                unwrap(a) and (_reads_membership(b, members, helpers) or aliases(b) & mine) for x in aliases(a)}
        if more <= mine:
            break
        mine |= more
    for kind, body in tests if mine else ():
        operands = [body.get("lexpr"), body.get("rexpr")] if kind == "A_Expr" else body.get("args") or []
        if any(_mentions_topic(a, names) and any(aliases(b) & mine for b in operands if b is not a)
               for a in operands):
            return True
    return False


@rule("BP072", "realtime_channel_not_tied_to_membership", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A policy on realtime.messages checks that the caller is a member of some organisation, never of the "
              "one the channel's topic names.",
      why="Realtime authorization runs these policies for each channel a client joins or sends on; the topic "
          "(`realtime.topic()`, e.g. `org:<id>`) is the only thing that says whose channel it is. `realtime.topic() "
          "like 'org:%' and exists (select 1 from organization_members where user_id = auth.uid())` lets every "
          "member of any organisation read and broadcast on every organisation's channel. Where some policy ties "
          "channels to organisations, one that checks nothing of the kind (`with check (extension in ('broadcast', "
          "'presence'))`) lets every signed-in user send on all of them.",
      bad="create policy org_read on realtime.messages for select to authenticated using (realtime.topic() like "
          "'org:%'\n  and exists (select 1 from public.organization_members m where m.user_id = (select auth.uid())));",
      fix="Compare the topic's organisation with the caller's: using (split_part((select realtime.topic()), ':', 2)"
          "::uuid = any (array(select private.organization_ids_with_role('member')))).")
def realtime_channel_not_tied_to_membership(r, s: Schema):
    t = s.table("messages", "realtime")
    if t is None:
        return
    members, helpers = membership_tables(s), set(membership_functions(s))
    while True:  # and the functions calling one of them, at any depth
        more = {n for f in s.functions if set(f.calls or ()) & helpers for n in (f.qualified, f.name)} - helpers
        if not more:
            break
        helpers |= more
    policies = [(p, [tree for _, tree, _ in trees(p) if tree is not None])
                for p in t.policies if applies_to_clients(p)]
    # Channels of organisations: a policy ties the topic to the caller's memberships somewhere.
    org_channels = any(_topic_tied(s, tree, members, helpers) for _, clauses in policies for tree in clauses)
    for p, clauses in policies:
        # evasion round 16 e14: `starts_with(realtime.topic(), 'org:' || o.slug)` is 'org:acme:board' for slug 'a'
        open_ = [x for tree in clauses for x in open_prefixes(tree, is_topic, TOPIC_SEPARATORS)]
        if open_:
            yield r.finding(f"{policy_label(t, p)} matches realtime.topic() by a prefix that does not end with a "
                            f"separator after what a row holds ({open_[0]}): the topic of an organisation named "
                            "longer matches too.", f"{t.qualified}.{p.name}", location=p.location or t.location)
            continue
        patterns = [x for tree in clauses for x in pattern_columns(s, tree, is_topic)]
        if patterns:
            yield r.finding(f"{policy_label(t, p)} matches realtime.topic() by {pattern_hole(*patterns[0], 'topics')}",
                            f"{t.qualified}.{p.name}", location=p.location or t.location)
            continue
        if any(_reads_membership(tree, members, helpers) for tree in clauses):
            if not any(_topic_tied(s, tree, members, helpers) for tree in clauses):
                yield r.finding(f"{policy_label(t, p)} checks a membership but not the one realtime.topic() names: "
                                "every member of any organisation joins the channel.", f"{t.qualified}.{p.name}",
                                location=p.location or t.location)
        elif p.permissive and (through := _topic_through_table(s, clauses))[1]:
            # audit-evasion round 10, e08: the topic matched against organizations' rows, read with the caller's
            # rights, is their membership while that table's policies ask for one; a directory page's `using
            # (true)` made every channel every signed-in user's.
            yield r.finding(f"{policy_label(t, p)} ties the topic to rows of {through[0]} alone, which {through[1]}: "
                            "every signed-in user joins and sends on every organisation's channel.",
                            f"{t.qualified}.{p.name}", location=p.location or t.location)
        elif org_channels and p.permissive and not through[0] and not any(_names_someone(tree) for tree in clauses):
            # evasion round 8: reads by organisation, sends checked for the extension only
            what = "send on" if commands(p) == ("insert",) else "join or send on"
            yield r.finding(f"{policy_label(t, p)} checks no membership, nor the caller, nor a topic of its own: "
                            f"every signed-in user may {what} every organisation's channel.",
                            f"{t.qualified}.{p.name}", location=p.location or t.location)


def _topic_through_table(s: Schema, clauses) -> tuple[str | None, str | None]:
    """(table, why it is open) when the policy matches the topic against rows of a table (a sub-query whose filter
    reads the topic), read with the caller's rights: tied as that table's policies tie its rows, open (`why`) when
    it has no RLS or a permissive select policy true for every signed-in caller (`using (true)`); (None, None) when
    no such sub-query."""
    found = None
    for tree in clauses:
        for kind, body in nodes(tree):
            select = (body.get("subselect") or {}).get("SelectStmt") or {} if kind == "SubLink" else {}
            if not select or not _mentions_topic(select.get("whereClause")):
                continue
            if any(k == "FuncCall" and function_name(b) in ("auth.uid", "auth.jwt") for k, b in nodes(select)):
                return None, None  # (the rows are kept to the caller's own: a membership table of another shape)
            for name in from_relations(select, "public"):
                u = s.table(*name.split(".", 1)[::-1])
                if u is None:
                    continue
                found = found or name
                if not u.rls_enabled:
                    return name, "has no row level security"
                for q in u.policies:
                    if q.permissive and "select" in commands(q) and applies_to_clients(q) and \
                            {"authenticated", "public"} & set(q.roles or ["public"]) and q.using_tree is not None \
                            and _true_for(s, q.using_tree, frozenset({"authenticated"})):
                        return name, f"every signed-in user reads (policy \"{q.name}\")"
    return found, None


def _names_someone(tree) -> bool:
    """A realtime policy's clause that picks channels or callers itself: it calls a function outside pg_catalog
    other than realtime.topic() (auth.uid(), a helper), or compares the topic with a constant (`realtime.topic()
    = 'lobby'`, a channel for everyone on purpose)."""
    for kind, body in nodes(tree):
        if kind == "FuncCall":
            name = function_name(body)
            if "." in name and name != "realtime.topic":
                return True
        sides = (body.get("lexpr"), body.get("rexpr")) if kind == "A_Expr" else ()
        if any(isinstance(x, dict) and "A_Const" in x for x in sides) and \
                any(k == "FuncCall" and function_name(b) == "realtime.topic" for k, b in nodes(body)):
            return True
    return False


# --- access-token hooks ----------------------------------------------------------------------------------

def _token_hooks(s: Schema) -> list:
    """Functions Supabase Auth runs as a hook: executable by supabase_auth_admin, or named *access_token_hook."""
    return [f for f in s.functions if f._body is not None and
            ("supabase_auth_admin" in (f.execute_roles or []) or f.name.endswith("access_token_hook"))]


def _claims_from_metadata(reading) -> list[str]:
    """The claims a hook's body sets from the user's metadata: jsonb_set(claims, '{org_id}', <value>) and
    jsonb_build_object('org_id', <value>) with a value that names user_metadata (event -> 'claims' ->
    'user_metadata' ->> 'org_id', raw_user_meta_data), directly or through variables set from it."""
    tainted = variables_from(reading.trees, reading.into, names_metadata)
    out: list[str] = []
    for tree in reading.trees:
        for kind, body in nodes(tree):
            if kind != "FuncCall":
                continue
            name, args = function_name(body).split(".")[-1], body.get("args") or []
            pairs = []
            if name in ("jsonb_set", "jsonb_insert") and len(args) >= 3:
                path = [p for p in re.split(r"[{},\s]+", str(const(args[1]) or "")) if p and p != "claims"]
                pairs = [(path[-1] if path else "", args[2])]
            elif name in ("jsonb_build_object", "json_build_object"):
                pairs = [(str(const(k) or ""), v) for k, v in zip(args[::2], args[1::2])]
            for claim, value in pairs:
                if claim and claim not in USER_METADATA and claim not in out and \
                        (names_metadata(value) or mentions_variables(value, tainted)):
                    out.append(claim)
    return out


def _reads_claim(tree, claim: str) -> bool:
    """The expression takes `claim` out of the request's JWT: auth.jwt() ->> 'claim', or the request.jwt.claims
    setting."""
    named = [function_name(b) for k, b in nodes(tree) if k == "FuncCall"]
    if not any(n in ("auth.jwt", "current_setting") for n in named):
        return False
    return any(kind == "A_Expr" and strings(body.get("name")) in (["->>"], ["->"], ["#>>"], ["#>"]) and
               claim in strings_in(body.get("rexpr")) for kind, body in nodes(tree))


@rule("BP076", "token_hook_claim_from_user_metadata", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A custom access-token hook copies the user's own metadata into a claim that a policy, or a function "
              "the database runs, then trusts.",
      why="The platform's lint (0015, BP020) and BP052 read user_metadata where a policy reads it. A hook moves it "
          "one step away: `claims := jsonb_set(claims, '{org_id}', event -> 'claims' -> 'user_metadata' -> "
          "'org_id')` puts whatever the user wrote with supabase.auth.updateUser({ data }) into the next token, and "
          "a policy reading `auth.jwt() ->> 'org_id'` trusts it: the user picks the organisation.",
      bad="create function public.custom_access_token_hook(event jsonb) returns jsonb language plpgsql as $$\n"
          "declare claims jsonb := event -> 'claims';\nbegin\n  claims := jsonb_set(claims, '{org_id}', claims -> "
          "'user_metadata' -> 'org_id');\n  return jsonb_set(event, '{claims}', claims);\nend $$;\n"
          "create policy p on docs for select to authenticated using (organization_id = (auth.jwt() ->> "
          "'org_id')::uuid);",
      fix="Build the claim from what the server decides: look the organisation up in organization_members (as "
          "supabase_auth_admin, with a policy letting it read), or copy it from app_metadata, which only the service "
          "role writes.")
def token_hook_claim_from_user_metadata(r, s: Schema):
    hooks = [(f, claims) for f in _token_hooks(s) if (claims := _claims_from_metadata(f._body))]
    if not hooks:
        return
    hook_ids = {id(f) for f, _ in hooks}  # identity: a model's == compares every field
    readers = [(policy_label(t, p), tree) for t in s.tables for p in t.policies for _, tree, _ in trees(p)
               if tree is not None]
    readers += [(f"function {g.qualified}", tree) for g in s.functions if g._body is not None
                and id(g) not in hook_ids for tree in g._body.trees]
    for f, claims in hooks:
        for claim in claims:
            reader = next((label for label, tree in readers if _reads_claim(tree, claim)), None)
            if reader:
                yield r.finding(f"Access-token hook {f.qualified} copies the user's own metadata into the claim "
                                f"'{claim}', which {reader} trusts.", f.qualified, location=f.location)
                break


def _token_test(node, callers: frozenset[str], definer: bool) -> str | None:
    """A test of the request's token every token of the callers' roles passes, however spelt: `(auth.jwt() ->>
    'is_anonymous')::boolean is false`, `auth.jwt() ? 'sub'`, `auth.role() <> 'anon'`, `length(auth.jwt() ->>
    'sub') = 36` (evasion round 17 e02; `token_claims` holds what GoTrue's tokens carry)."""
    claims = every_caller(node, callers, definer)
    if not claims:
        return None  # (a test of constants alone is BP024's)
    text = test_text(node)
    if text is not None and len(text) <= 160:
        return f"`{text}`"
    return "the test of the token's " + ", ".join(f"'{c}'" for c in claims) + \
        (" claim" if len(claims) == 1 else " claims")


def _negation_of_negation(node: dict):
    """y of `x is true` (y = x), or of `not y` negated again (`not (not y)`, `(not y) is not true`, `(not y) is
    false`): true wherever y is true (evasion round 22 e03); None for anything else."""
    test = node.get("BooleanTest")
    if isinstance(test, dict) and test.get("booltesttype") == "IS_TRUE":
        return test.get("arg")
    negation = node.get("BoolExpr") if isinstance(node.get("BoolExpr"), dict) and \
        node["BoolExpr"].get("boolop") == "NOT_EXPR" else None
    arg = test.get("arg") if isinstance(test, dict) and test.get("booltesttype") in ("IS_NOT_TRUE", "IS_FALSE") \
        else (negation.get("args") or [None])[0] if negation is not None else None
    inner = (arg or {}).get("BoolExpr") if isinstance(arg, dict) else None
    if isinstance(inner, dict) and inner.get("boolop") == "NOT_EXPR" and len(inner.get("args") or []) == 1:
        return inner["args"][0]
    return None


def _refused_unless(node: dict):
    """(c, x) of a PL/pgSQL helper's answer `case when c then <raise> else x end` (plpgsql_answer: an IF that
    raises, then a RETURN): x for every caller for whom c is not true, an error for the others; None otherwise."""
    case = node.get("CaseExpr")
    whens = (case.get("args") or []) if isinstance(case, dict) and not case.get("arg") else []
    when = (whens[0] or {}).get("CaseWhen") if len(whens) == 1 and isinstance(whens[0], dict) else None
    if not isinstance(when, dict) or set(when.get("result") or {}) != {"PLpgSQL_stmt_raise"}:
        return None
    return when.get("expr"), case.get("defresult")


def _true_for(s: Schema, node, callers: frozenset[str], depth: int = 0, definer: bool = False) -> str | None:
    """What makes `node` true for every caller in `callers` (the API roles a policy applies to), or None: a test of
    the request's token every token of those roles passes (`_token_test`: `auth.role() = 'authenticated'`,
    `coalesce(auth.jwt() ->> 'role', 'authenticated') = 'authenticated'`, `current_user in ('anon',
    'authenticated')`, `auth.uid() is not null` for signed-in callers), the caller's own row of auth.users or of a
    table a signup trigger fills for every user (`own_rows`), `true`, an OR with such a branch, or a call of a
    helper whose body answers one such expression (`select p_org = any (...) or auth.role() = 'authenticated'`, a
    PL/pgSQL `return auth.uid() is not null`)."""
    node = unwrapped_value(node)
    if not isinstance(node, dict) or depth > 4:
        return None
    if is_true(node):
        return "true"
    b = node.get("BoolExpr")
    if isinstance(b, dict) and b.get("boolop") in ("OR_EXPR", "AND_EXPR"):
        found = [_true_for(s, a, callers, depth, definer) for a in b.get("args") or []]
        hits = [x for x in found if x]
        hit = (hits[0] if hits else None) if b["boolop"] == "OR_EXPR" else \
            (hits[0] if hits and len(hits) == len(found) else None)
        return hit or _token_test(node, callers, definer)
    inner = _negation_of_negation(node)
    if inner is not None:  # (`(not exists (...)) is not true`, a PL/pgSQL `if not found then return false`)
        return _true_for(s, inner, callers, depth, definer)
    refused = _refused_unless(node)
    if refused is not None:  # (a PL/pgSQL `if not found then raise ...; end if; return true`)
        passed, answer = refused
        never = _true_for(s, {"BoolExpr": {"boolop": "NOT_EXPR", "args": [passed]}}, callers, depth, definer)
        if never and _true_for(s, answer, callers, depth, definer):
            return never
    if callers == {"authenticated"}:
        signed_in = own_row_exists(s, node, definer)
        if signed_in:
            return signed_in
    token_test = _token_test(node, callers, definer)
    if token_test:
        return token_test
    call = node.get("FuncCall")
    f = find_function(s, function_name(call)) if isinstance(call, dict) else None
    answer = function_answer(f)
    found = _true_for(s, answer, callers, depth + 1, definer or f.security_definer) if answer is not None else None
    return found + (f" (in {f.qualified})" if " (in " not in found else "") if found else None


@rule("BP079", "policy_true_for_every_caller", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A policy holds for every caller it applies to: a test of who is asking that everyone asking passes "
              "(auth.role() = 'authenticated' on a policy for authenticated), in the policy or in a helper it "
              "calls, or a membership read a caller in no organisation passes (`not exists (...)`, "
              "`coalesce((select ...), true)`).",
      why="`to authenticated` already limits the policy to signed-in callers, so `auth.role() = 'authenticated'`, "
          "`coalesce(auth.jwt() ->> 'role', 'authenticated') = 'authenticated'` or `auth.uid() is not null` is "
          "true for each of them. OR-ed beside a membership check, it opens every organisation's rows to every "
          "signed-in user, and the membership check decides nothing; hidden in a helper (`select p_org = any (...) "
          "or auth.role() = 'authenticated'`) the policy itself looks tied to the row. `using (true)` on its own is "
          "BP023's (a public read is often deliberate); this rule reads every other form, and every command on an "
          "organisation's rows. A membership read that a caller in no organisation passes is no check either: read "
          "as such a caller reads it (no membership rows), `not exists (... m.role = 'suspended')`, `organization_id "
          "<> all (array(select ...))`, `not in`, `coalesce((select ...), true)`, `(select count(*) ...) >= 0`, a "
          "`case` true either way, `or organization_id is not null` on a NOT NULL column, or an array containing "
          "the caller's memberships (`organization_ids @> array(select ...)`, `array[organization_id] @> ...`: an "
          "empty array is contained in every array; `&&`, overlap, is the test meant) holds for every stranger.",
      bad="create function private.can_read(p_org uuid) returns boolean language sql stable security definer\n"
          "set search_path = '' as $$ select p_org = any (array(select private.organization_ids_with_role("
          "'viewer'))) or auth.role() = 'authenticated' $$;\n"
          "create policy docs_select on docs for select to authenticated using ((select private.can_read("
          "organization_id)));",
      fix="Drop the branch: the policy's `to` clause says who may ask; the test must say which rows (membership "
          "of the row's organisation). For staff who see everything, check a server-written fact (a staff table "
          "only the service role writes, or app_metadata), not the request's role.")
def policy_true_for_every_caller(r, s: Schema):
    members, helpers = membership_tables(s), membership_functions(s)
    for t in s.tables:
        if not t.rls_enabled:
            continue
        organisations = _tenant_data(s, t) or _shared_by_tenants(s, t)
        for p in t.policies:
            if not (p.permissive and applies_to_clients(p)):
                continue
            roles = set(p.roles or ["public"])
            callers = frozenset({"anon", "authenticated"} if roles & {"public"} else roles & {"anon", "authenticated"})
            if not callers or (commands(p) == ("select",) and not organisations):
                continue  # a public table's read for everyone is often the point
            for clause, tree, _ in trees(p):
                if is_true(tree):
                    continue  # BP023's, or a deliberate public read
                found = per_tree(("true for", callers), tree, lambda: _true_for(s, tree, callers))
                if found:
                    who = " and ".join(sorted(callers))
                    yield r.finding(f"{policy_label(t, p)} holds in {clause.upper()} for every {who} caller: "
                                    f"{found} is true for each of them, so it admits every row.",
                                    f"{t.qualified}.{p.name}", location=p.location or t.location)
                    break
                # Red team 20, F1: a membership read under NOT, `<> all`, `coalesce(..., true)`, `count(*) >= 0`
                # or a `case` true either way reads memberships but admits a user who has none.
                stranger = per_tree(("true for a stranger", t.qualified), tree, lambda: true_for_stranger(
                    s, tree, members, helpers, t)) if organisations and t.qualified not in members else None
                if stranger:
                    yield r.finding(f"{policy_label(t, p)} holds in {clause.upper()} for a caller in no "
                                    f"organisation ({stranger}), so it admits every row to non-members.",
                                    f"{t.qualified}.{p.name}", location=p.location or t.location)
                    break
