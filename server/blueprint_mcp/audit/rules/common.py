"""Facts several rules share, derived from the schema model (never from SQL text)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pgparse

from ...model import is_analytics_name
from ...model.schema import COMMANDS, EnumType, Function, Policy, Schema, Table, View
from ...model.tenant_keys import ROLE_RANKS, is_role_column, key_sets, member_column
from ...model.tenant_keys import user_tables as per_user_tables
from ..body import mentions_variables
from ..callers import BodyReading, CallerFacts, caller_facts
from ..parser import parse
from ..pins import names_the_caller  # noqa: F401 (the rules import it from here)
from ..platform import API_ROLES, MANAGED_SCHEMAS, POLICY_LINT_ROLES
from ..tree import Node, boolean_args, function_name, indexed, leading, nodes, qualified, strings

CLIENT_ROLES = ("anon", "authenticated", "public")
AUTH_FUNCTIONS = ("auth.uid", "auth.jwt", "auth.role", "auth.email", "current_setting")
MEMBERSHIP_SUFFIXES = ("members", "memberships")
SENSITIVE_MARK = re.compile(r"\bsensitive\b", re.IGNORECASE)

# Facts several rules derive from one schema, computed once per audit (`audit_schema` clears them before
# and after the rules run; nothing mutates the schema in between). Keys hold the object's id. The two most
# asked, a policy's trees and a rule's answer about a tree, have dicts of their own: a flat key is cheaper
# to build and hash, on every policy of every rule.
_FACTS: dict[tuple[str, int], Any] = {}
_TREES: dict[int, tuple[Policy, list[tuple[str, Any, str]]]] = {}
_PER_TREE: dict[tuple[Any, int], tuple[Any, Any]] = {}


def clear_facts() -> None:
    _FACTS.clear()
    _TREES.clear()
    _PER_TREE.clear()


def _once(kind: Any, obj: Any, compute: Callable[..., Any], *args: Any) -> Any:
    """`compute(*args)`, once per audit for `obj` (args spare the hottest callers a closure)."""
    key = (kind, id(obj))
    hit = _FACTS.get(key)
    if hit is None:
        hit = _FACTS[key] = (obj, compute(*args))  # holding obj keeps its id from being reused meanwhile
    return hit[1]


def per_tree(fact: str, tree: Any, compute: Callable[[], Any]) -> Any:
    """A rule's answer about one parse tree, computed once per audit: identical clauses share a tree, and
    what a rule concludes from a tree alone (given the schema, fixed during an audit) holds for each."""
    key = (fact, id(tree))
    hit = _PER_TREE.get(key)
    if hit is None:
        hit = _PER_TREE[key] = (tree, compute())
    return hit[1]


def created(s: Schema) -> tuple[Table, ...]:
    """Tables the audited SQL creates in the user's schemas (stand-ins, foreign tables and managed
    schemas left out)."""
    return _once("created", s, lambda: tuple(t for t in s.tables if not t.external and t.kind == "table"
                                             and t.schema_name not in MANAGED_SCHEMAS))


def can_select(s: Schema, obj: Table | View, role: str, whole: bool = False) -> bool:
    """Whether `role` (directly or through PUBLIC) may select the relation, or with `whole=False` at least
    one of its columns. No grant information: Supabase's legacy default privileges (what a relation created
    in public holds), or for a stand-in for a relation the SQL did not create, exposure."""
    if not obj.grants:
        return not getattr(obj, "external", False) or obj.schema_name in s.exposed_schemas
    held = [p for r in (role, "public") for p in obj.grants.get(r, []) if p.privilege == "select"]
    return any(not p.columns for p in held) if whole else bool(held)


def user_tables(s: Schema, excluded: frozenset[str] = MANAGED_SCHEMAS) -> list[Table]:
    """Every table outside the platform's schemas, stand-ins included (policies on them are the user's)."""
    return [t for t in s.tables if t.schema_name not in excluded]


def linted_policies(s: Schema, excluded: frozenset[str] = MANAGED_SCHEMAS,
                    roles: frozenset[str] | None = POLICY_LINT_ROLES) -> Iterator[tuple[Table, Policy]]:
    """What the platform's policy lints look at: RLS-enabled tables, policies for PUBLIC, anon or authenticated
    (`roles=None`: for any role)."""
    for t in user_tables(s, excluded):
        if t.rls_enabled:
            for p in t.policies:
                if roles is None or not p.roles or roles & set(p.roles):
                    yield t, p


def api_access(grants, columns: list[str] | None = None) -> bool:
    """Whether anon or authenticated (or PUBLIC) holds any privilege; no grant information means
    Supabase's legacy defaults. With `columns`, whether one of those columns is reachable."""
    if not grants:
        return True
    held = [p for role in CLIENT_ROLES for p in grants.get(role, [])]
    if columns is None:
        return bool(held)
    return any(not p.columns or set(p.columns) & set(columns) for p in held)


def client_update_columns(t: Table, roles: tuple[str, ...] | list[str] = CLIENT_ROLES) -> list[str] | None:
    """Columns clients (or `roles` of them, and PUBLIC) may update when every grant of UPDATE to them lists them;
    None = any column."""
    return client_write_columns(t, "update", roles)


def client_write_columns(t: Table, privilege: str,
                         roles: tuple[str, ...] | list[str] = CLIENT_ROLES) -> list[str] | None:
    """Columns clients (or `roles` of them, and PUBLIC) may write with `privilege` (insert, update) when every grant
    of it to them lists them ([]: none granted); None = any column, or no grant information."""
    cols: list[str] = []
    for role in {*roles, "public"} & set(CLIENT_ROLES):
        for p in t.grants.get(role, []):
            if p.privilege == privilege:
                if not p.columns:
                    return None
                cols += p.columns
    return cols if t.grants else None


def clients_granted(s: Schema, t: Table, command: str, column: str | None = None,
                    roles: tuple[str, ...] | list[str] = CLIENT_ROLES) -> bool:
    """Whether an API role (of `roles`, or PUBLIC) holds `command` on the table (on `column`, when given): the SQL's
    grants, or Supabase's legacy default privileges in an exposed schema where the SQL grants nothing."""
    if not t.grants:
        return t.schema_name in s.exposed_schemas
    listed = client_write_columns(t, command, roles)
    return listed is None or (column in listed if column is not None else bool(listed))


def client_policies(t: Table, command: str) -> list[Policy]:
    """The table's policies that apply to an API role for `command` (once per audit: a dozen rules ask)."""
    return _once(("client policies", command), t,
                 lambda: [p for p in t.policies if applies_to_clients(p) and command in commands(p)])


def selectable_columns(obj: Table | View, role: str, columns: list[str]) -> list[str]:
    """The columns `role` (directly or through PUBLIC) may select; no grant information = legacy defaults."""
    if not obj.grants:
        return list(columns)
    held = [p for r in (role, "public") for p in obj.grants.get(r, []) if p.privilege == "select"]
    if any(not p.columns for p in held):
        return list(columns)
    granted = {c for p in held for c in p.columns}
    return [c for c in columns if c in granted]


def exposed(s: Schema, obj: Table | View) -> bool:
    """In a schema PostgREST serves and reachable by an API role: what Supabase calls exposed."""
    return obj.schema_name in s.exposed_schemas and obj.schema_name not in MANAGED_SCHEMAS and \
        api_access(obj.grants)


def api_selectable(obj: Table | View, columns: list[str]) -> list[str]:
    """The columns anon or authenticated may select."""
    return [c for c in columns if any(c in selectable_columns(obj, role, [c]) for role in API_ROLES)]


def is_tenant(t: Table) -> bool:
    return _once("tenant", t, lambda: bool(t.tenant_key) and t.column(t.tenant_key) is not None)


def tenant_relation(s: Schema, name: str, schema: str) -> Table | None:
    """The tenant table a statement on `schema.name` reads or writes rows of: the table, or the one tenant table a
    plain view selects from, when the view keeps its tenant key under the same name (`create view
    private.live_projects as select id, organization_id, ... from public.projects where archived_at is null`)."""
    t = s.table(name, schema)
    if t is not None:
        return t if is_tenant(t) else None
    v = next((v for v in s.views if v.schema_name == schema and v.name == name and not v.materialized), None)
    return _once("view's tenant table", v, _view_tenant_table, s, v) if v is not None else None


def _view_tenant_table(s: Schema, v: View) -> Table | None:
    bases = [t for n in v.reads or () if (t := s.table(*n.split(".", 1)[::-1]) if "." in n else None) is not None]
    if len(v.reads or ()) != 1 or len(bases) != 1 or not is_tenant(bases[0]):
        return None
    select = (view_statement(v) or {}).get("SelectStmt")
    if select is None:
        return None
    names = set()
    for position, target in enumerate(select.get("targetList") or []):
        res = target.get("ResTarget") or {}
        ref = strings(((res.get("val") or {}).get("ColumnRef") or {}).get("fields"))
        # `create view v (id, org, ...)` names its columns itself
        names.add(v.column_names[position] if position < len(v.column_names) else
                  res.get("name") or (ref[-1] if ref else ""))
    if v.column_names and any(k == "A_Star" for k, _ in nodes(select.get("targetList"))):
        return None  # a star under a column list: which name the tenant key takes is not read here
    t = bases[0]
    if any(k == "ColumnRef" and strings(b.get("fields"))[-1:] == [t.tenant_key]
           for k, b in nodes(select.get("whereClause"))):
        return None  # the view keeps to some organisations itself (the caller's): its own filter decides
    return t if t.tenant_key in names or any(k == "A_Star" for k, _ in nodes(select.get("targetList"))) else None


def tenant_roots(s: Schema) -> set[tuple[str, str]]:
    """The tables tenant keys reference (organizations)."""
    return _once("tenant roots", s, _tenant_roots, s)


def _tenant_roots(s: Schema) -> set[tuple[str, str]]:
    roots = {(fk.ref_schema, fk.ref_table) for t in s.tables if is_tenant(t)
             for fk in t.foreign_keys if fk.columns == [t.tenant_key]}
    return roots or {("public", "organizations")}


def is_analytics(t: Table) -> bool:
    return is_analytics_name(t.name)


def membership_tables(s: Schema) -> set[str]:
    return _once("members", s, lambda: _membership_tables(s))


def _membership_tables(s: Schema) -> set[str]:
    """schema.table of every membership table.

    Candidates are shaped like one: tenant key and user_id unique together with a role column, or
    named *members. When policies show where access is decided (they read a candidate, directly or
    through a function they call), only those candidates count: a domain table that happens to have
    that shape (project_members, a per-user settings row) grants nobody anything, and a per-user
    record without a role (a shop's buyers) links a user to data rather than granting access.
    """
    candidates, roled = set(), set()
    users = per_user_tables(s.tables)
    for t in created(s):
        user = member_column(t, t.tenant_key, users) if is_tenant(t) else None
        if user is None:
            continue
        keys = key_sets(t)
        role = any(_holds_roles(s, t, c) for c in t.columns)
        if ({t.tenant_key, user} in keys and role) or t.name.endswith(MEMBERSHIP_SUFFIXES):
            candidates.add(t.qualified)
            if role:
                roled.add(t.qualified)
    # A table only named like memberships, without a role, beside one holding roles: an app's own rows (a
    # blueprint entity called memberships, whose rows policies read as a parent) rather than who may do what.
    candidates = roled or candidates
    consulted = candidates & _membership_reads(s)
    if len(consulted) > 1:
        # Several read: those whose role a function or policy reads decide who may do what; a table read only by
        # who is linked to a row (a chain's helper: `select t1.id from data t1 where t1.member_id = auth.uid()`)
        # links users to rows (random fuzz: a `data` table with a unique member column and a text min_role).
        judged = {name for name in consulted if _role_read(s, name)}
        consulted = judged or consulted
    return consulted or candidates


def _role_read(s: Schema, qualified_name: str) -> bool:
    """Some function body or policy that names the table also names one of its role columns."""
    schema, _, name = qualified_name.partition(".")
    t = s.table(name, schema)
    roles = [c.name for c in t.columns if is_role_column(c.name)] if t is not None else []
    if not roles:
        return False
    said = re.compile(r"\b(" + "|".join(map(re.escape, roles)) + r")\b", re.IGNORECASE)
    texts = [f.body for f in s.functions if f.body and qualified_name in (f.reads or ())]
    texts += [text for other in s.tables for p in other.policies for _, tree, text in trees(p)
              if qualified_name in relation_names(tree, other.schema_name)]
    return any(said.search(x) for x in texts)


_NOT_ROLES = frozenset(("uuid", "integer", "int", "int4", "bigint", "int8", "smallint", "numeric", "decimal", "real",
                        "double precision", "boolean", "bool", "jsonb", "json", "date", "timestamptz", "timestamp",
                        "timestamp with time zone", "timestamp without time zone", "time", "interval", "bytea"))


def base_type(s: Schema, type_name: str) -> str:
    """The type a domain stands for, through domains over domains (`public.project_role` -> `text`); any other
    type as named. A domain compares, orders and casts as its base type."""
    for _ in range(8):  # PostgreSQL refuses a cycle; the bound only keeps odd input finite
        schema, _, name = type_name.rpartition(".")
        domain = next((d for d in s.domains if d.name == name.strip('"') and (not schema or d.schema_name == schema)),
                      None)
        if domain is None:
            break
        type_name = domain.base_type
    return type_name


def domain_checks(s: Schema, type_name: str) -> list[Any]:
    """The CHECK trees (on VALUE) of the domain a type names and of the domains under it: a value of the type
    passes them all (evasion round 17 fp05: `create domain slug as text check (value ~ '^[a-z0-9-]+$')`)."""
    out: list[Any] = []
    for _ in range(8):  # (as base_type: PostgreSQL refuses a cycle)
        schema, _, name = type_name.rpartition(".")
        domain = next((d for d in s.domains if d.name == name.strip('"') and (not schema or d.schema_name == schema)),
                      None)
        if domain is None:
            break
        out += [k.tree for k in domain.checks if k.tree is not None]
        type_name = domain.base_type
    return out


def enum_of(s: Schema, type_name: str) -> EnumType | None:
    """The enum type a column's type names (`public.member_role`, or unqualified), or a domain over it; None for any
    other type."""
    schema, _, name = base_type(s, type_name).rpartition(".")
    return next((e for e in s.enums if e.name == name.strip('"') and (not schema or e.schema_name == schema)), None)


def _holds_roles(s: Schema, t: Table, c) -> bool:
    """A role column: named for one, of a type that may hold a role name (not a uuid or a number) and, where its
    type is an enum the SQL makes, with a role among its labels or on a table named for memberships (random fuzz:
    a task's `min_role` enum of states, draft to done, beside a unique member column, made tasks the membership
    table)."""
    if not is_role_column(c.name) or base_type(s, c.type).split("(")[0].strip().lower() in _NOT_ROLES:
        return False  # (a uuid or a number named min_role holds no role either)
    enum = enum_of(s, c.type)
    return enum is None or t.name.endswith(MEMBERSHIP_SUFFIXES) or any(v in ROLE_RANKS for v in enum.values)


def _membership_reads(s: Schema) -> set[str]:
    """What policies read to decide who the caller is (as `policy_reads`), leaving out reads that only find the
    policy row's parent by its key (`exists (select 1 from tasks p where p.id = comments.task_id)`): a parent
    check asks whether the caller sees that row, not which organisations the caller belongs to. A clause shared
    by many tables' policies is read once per schema: only its parent lookups depend on the table's name."""
    out: set[str] = set()
    for t in s.tables:
        for p in t.policies:
            for _, tree, _ in trees(p):
                read, parents, helpers = _once(("membership reads", t.schema_name), tree, _reads_of, s, tree,
                                               t.schema_name)
                lookups = Counter(rel for tables, rel in parents if t.name in tables) if parents else None
                out.update({name for name, n in read.items() if n > lookups[name]} if lookups else read)
                out |= helpers
    return out


def _reads_of(s: Schema, tree: Any, default_schema: str) -> tuple[Counter, list[tuple[set[str], str]], set[str]]:
    """(how often the tree reads each schema.table, its `_parent_lookups`, what the functions it calls read)."""
    read = Counter(qualified(body, default_schema)
                   for kind, body, _ in _index(tree) if kind == "RangeVar")
    views = _once("views", s, lambda: {f"{v.schema_name}.{v.name}": v for v in s.views})
    # what a view it reads reads (the caller's memberships), as what a function it calls reads
    helpers: set[str] = {r for name in read if name in views for r in views[name].reads or []}
    for name, _, _ in calls(tree):
        f = find_function(s, name)
        helpers |= set(f.reads or []) if f is not None else set()
    return read, _parent_lookups(tree, default_schema), helpers


def _parent_lookups(tree: Any, default_schema: str) -> list[tuple[set[str], str]]:
    """(the tables whose policies it looks up a parent for, schema.table) of each `exists (select ... from T a
    where a.id = <table>.<column>)`."""
    out = []
    for kind, body, _ in _index(tree):
        if kind != "SubLink" or body.get("subLinkType") != "EXISTS_SUBLINK":
            continue
        select = body.get("subselect", {}).get("SelectStmt", {})
        sources = select.get("fromClause") or []
        rel = sources[0].get("RangeVar") if len(sources) == 1 and isinstance(sources[0], dict) else None
        if rel is None or select.get("whereClause") is None:
            continue
        names = {(rel.get("alias") or {}).get("aliasname") or rel.get("relname")}
        tables: set[str] = set()
        # the key's equality, alone or beside the parent's own tests (`p.id = c.task_id and p.status = 'draft'`:
        # the generator's restated update grant of a pii side row's parent): still a lookup of that one row
        for part in boolean_args(select["whereClause"], "AND_EXPR"):
            cond = part.get("A_Expr") if isinstance(part, dict) else None
            if not cond or strings(cond.get("name")) != ["="]:
                continue
            sides = [strings((cond.get(k) or {}).get("ColumnRef", {}).get("fields")) for k in ("lexpr", "rexpr")]
            tables |= {b[0] for a, b in (sides, sides[::-1])
                       if len(a) == 2 and a[0] in names and a[1] == "id" and len(b) == 2}
        if tables:
            out.append((tables, qualified(rel, default_schema)))
    return out


def policy_reads(s: Schema) -> set[str]:
    """schema.table of every relation a policy reads, directly or through a function it calls."""
    return _once("policy_reads", s, lambda: _policy_reads(s))


def _policy_reads(s: Schema) -> set[str]:
    out: set[str] = set()
    seen: set[tuple[int, str]] = set()  # identical clauses share a tree: read each once per schema
    for t in s.tables:
        for p in t.policies:
            for _, tree, _ in trees(p):
                if (id(tree), t.schema_name) in seen:
                    continue
                seen.add((id(tree), t.schema_name))
                out |= relation_names(tree, t.schema_name)
                for name, _, _ in calls(tree):
                    f = find_function(s, name)
                    out |= set(f.reads or []) if f is not None else set()
    return out


def is_membership_name(qualified: str, members: set[str]) -> bool:
    return qualified in members or qualified.rsplit(".", 1)[-1].endswith(MEMBERSHIP_SUFFIXES)


def find_function(s: Schema, name: str) -> Function | None:
    """A function by the name a policy calls it (qualified, or bare = any schema): the first declared."""
    qualified, bare = _once("functions", s, lambda: _function_names(s))
    return qualified.get(name) if "." in name else bare.get(name)


def _function_names(s: Schema) -> tuple[dict[str, Function], dict[str, Function]]:
    qualified: dict[str, Function] = {}
    bare: dict[str, Function] = {}
    for f in s.functions:
        qualified.setdefault(f.qualified, f)
        bare.setdefault(f.name, f)
    return qualified, bare


def body_facts(s: Schema, f: Function) -> tuple[BodyReading, CallerFacts] | None:
    """Whom `f`'s body answers for (`callers`), read once per audit, with the columns of the tables as the schema
    ends (what a bare name in a body is, PostgreSQL decides when it runs); None when the parser kept no body."""
    reading = f._body
    return None if reading is None else _once("caller facts", f, _body_facts, s, reading)


def _body_facts(s: Schema, reading: BodyReading) -> tuple[BodyReading, CallerFacts]:
    def columns_of(qualified: str, not_null: bool = False) -> set[str] | None:
        schema, _, name = qualified.partition(".")
        t = s.table(name, schema)
        return {c.name for c in t.columns if not (not_null and c.nullable)} if t is not None else None

    return reading, caller_facts(reading, columns_of, lambda qualified: columns_of(qualified, True))


def untied_membership_reads(s: Schema, facts: CallerFacts, past_rls: bool) -> list[tuple[str, str]]:
    """(membership table, its user column) for each membership table a body (a helper's, a view's query) reads
    without keeping every read to the caller: the user column pinned to the caller in every branch, or the
    organisation (or user) kept to a set the caller decides (the caller's co-members: where organization_id in
    (<the caller's>)). `past_rls`: whether the reads bypass RLS (a definer's, an owner's-rights view's); where they
    do not, a table with RLS shows the caller what its own policies allow."""
    members = membership_tables(s)
    protected = {t.qualified for t in s.tables if t.rls_enabled}
    out = []
    for rel, reads in facts.pins.items():
        table = s.table(*rel.split(".", 1)[::-1]) if rel in members else None
        user = member_column(table, table.tenant_key, _once("user tables", s, per_user_tables, s.tables)) \
            if table is not None else None
        if user is None or (not past_rls and rel in protected):
            continue
        tied = {user, f"{user} in", f"{table.tenant_key} in"}
        if not all(tied & set(columns) for columns in reads):
            out.append((rel, user))
    return out


def membership_views(s: Schema) -> dict[str, bool]:
    """Views that read a membership table, by qualified name: whether each shows the caller only their own
    memberships. An owner's-rights view reads past the table's RLS, so it must filter by the caller itself, in
    every branch as a helper function must (`where m.user_id = (select auth.uid())`; `m.user_id = (select
    auth.uid()) and m.role = 'admin' or m.role = 'owner'` lets every owner's membership through: evasion round 9,
    e04); an invoker's view also passes on the table's own RLS. A view not analysed (no query read) gets the
    benefit of the doubt."""
    return _once("member_views", s, lambda: _membership_views(s))


def _membership_views(s: Schema) -> dict[str, bool]:
    members = membership_tables(s)
    protected = {t.qualified for t in s.tables if t.rls_enabled}
    out: dict[str, bool] = {}
    for v in s.views:
        read = [r for r in v.reads or [] if is_membership_name(r, members)]
        if read:  # a materialized view has no RLS and was filled by whoever refreshed it: everyone's
            out[f"{v.schema_name}.{v.name}"] = not v.materialized and (
                v.calls is None or (v.security_invoker and all(r in protected for r in read))
                or (any(map(names_the_caller, v.calls)) and not _untied_view(s, v)))
    return out


def _untied_view(s: Schema, v: View) -> bool:
    """The view's query reads a membership table without keeping it to the caller in every branch."""
    reading = v._body
    if reading is None:
        return False
    facts = _once("caller facts", v, _body_facts, s, reading)[1]
    return bool(untied_membership_reads(s, facts, not v.security_invoker))


def membership_functions(s: Schema) -> set[str]:
    """Functions whose body reads a membership table, by qualified and bare name."""
    return _once("member_functions", s, lambda: _membership_functions(s))


def _membership_functions(s: Schema) -> set[str]:
    members = membership_tables(s)
    out = set()
    for f in s.functions:
        if f.reads and any(is_membership_name(r, members) for r in f.reads):
            out.update((f.qualified, f.name))
    return out


def trees(p: Policy) -> list[tuple[str, Any, str]]:
    """(clause, parse tree, source text) of USING and WITH CHECK where the parser kept a tree."""
    hit = _TREES.get(id(p))
    if hit is None:
        hit = _TREES[id(p)] = (p, [(label, tree, text or "") for label, tree, text in (
            ("using", p.using_tree, p.using), ("with check", p.check_tree, p.check)) if tree is not None])
    return hit[1]


_CLIENT_ROLES = frozenset(CLIENT_ROLES)
_EVERY_COMMAND = tuple(c.value for c in COMMANDS)


def applies_to_clients(p: Policy) -> bool:
    return not p.roles or not _CLIENT_ROLES.isdisjoint(p.roles)


def commands(p: Policy) -> tuple[str, ...]:
    # str() of a Command is its value, without the enum's descriptor that `.value` goes through
    return _EVERY_COMMAND if p.command == "all" else (str(p.command),)


def policy_label(t: Table, p: Policy) -> str:
    return f"policy \"{p.name}\" on {t.qualified}"


def select_leads(tree: Any) -> frozenset[int]:
    """ids of the calls a sub-select's output starts with: `(select auth.uid())`, `(select auth.jwt() ->> 'sub')`.

    What the platform counts as wrapped: it reads a policy deparsed and looks for `select` followed by the
    call, so a call deeper in the sub-select (`(select owner_id = auth.uid())`, `(select coalesce(auth.uid(),
    x))`, `array(select ... where user_id = auth.uid())`) runs again for every row it is compared with."""
    return _once("select leads", tree, lambda: frozenset(
        id(lead[1]) for kind, body, _ in _index(tree) if kind == "SelectStmt" and not body.get("distinctClause")
        for lead in [leading((body.get("targetList") or [{}])[0].get("ResTarget", {}).get("val"))]
        if lead is not None and lead[0] == "FuncCall"))


def calls(tree: Any) -> list[tuple[str, Node, tuple[str, ...]]]:
    """(function name, FuncCall fields, enclosing sub-query labels) of every call in `tree`."""
    return _once("calls", tree, lambda: [(function_name(body), body, ctx) for kind, body, ctx
                                         in _index(tree) if kind == "FuncCall"])


def _index(tree: Any) -> list[tuple[str, Node, tuple[str, ...]]]:
    return indexed(tree)


def only_statement(tree: Any) -> tuple[str, Node]:
    """(kind, fields) of a parse that holds exactly one statement (a body's tree: a PL/pgSQL test is kept as
    `select <test>`, a lookup as its query); ("", {}) otherwise."""
    statements = tree if isinstance(tree, list) else [tree]
    stmt = (statements[0] or {}).get("stmt") if len(statements) == 1 and isinstance(statements[0], dict) else None
    if isinstance(stmt, dict) and len(stmt) == 1:
        kind, body = next(iter(stmt.items()))
        if isinstance(body, dict):
            return kind, body
    return "", {}


def lone_value(select: Node | None, bare: bool = True) -> Any:
    """The one expression a SELECT returns (`select <expression>`); None for several. `bare`: only a SELECT without
    FROM and WHERE (a value, not a lookup: `(select auth.uid())`, an SQL helper's answer)."""
    select = select or {}
    targets = select.get("targetList") or []
    if len(targets) != 1 or (bare and (select.get("fromClause") or select.get("whereClause"))):
        return None
    return (targets[0].get("ResTarget") or {}).get("val")


def unwrapped_value(node: Any) -> Any:
    """The value inside casts and a one-column sub-select: `(select auth.uid())::uuid` -> the call."""
    while isinstance(node, dict) and len(node) == 1:
        if "TypeCast" in node:
            node = node["TypeCast"].get("arg")
            continue
        link = node.get("SubLink")
        value = lone_value((link.get("subselect") or {}).get("SelectStmt")) \
            if isinstance(link, dict) and link.get("subLinkType") == "EXPR_SUBLINK" else None
        if value is None:
            return node
        node = value
    return node


def sql_answer(f: Function | None) -> Any:
    """The expression an SQL function answers when its body is one bare `select <expression>`; None otherwise."""
    reading = f._body if f is not None and f.language == "sql" else None
    if reading is None or len(reading.trees) != 1:
        return None
    kind, body = only_statement(reading.trees[0])
    return lone_value(body) if kind == "SelectStmt" else None


def function_answer(f: Function | None) -> Any:
    """The expression a function answers: an SQL body's one bare `select <expression>` (`sql_answer`; also as the
    SQL-standard `return <expression>` or `begin atomic ... end`), or what a PL/pgSQL body of IFs, assignments and
    RETURNs returns (`begin return auth.uid() is not null; end`, read as `plpgsql_answer` reads it); None
    otherwise."""
    if f is not None and f.language == "plpgsql":
        return getattr(f._body, "answer", None)
    reading = f._body if f is not None and f.language == "sql" else None
    tree = reading.trees[0] if reading is not None and len(reading.trees) == 1 else None
    if isinstance(tree, dict) and "ReturnStmt" in tree:  # the SQL-standard `return <expression>` body
        return (tree["ReturnStmt"] or {}).get("returnval")
    if isinstance(tree, dict) and "List" in tree:  # `begin atomic select <expression>; end`
        blocks = (tree["List"] or {}).get("items") or []
        items = ((blocks[0] or {}).get("List") or {}).get("items") or [] if len(blocks) == 1 else []
        select = items[0].get("SelectStmt") if len(items) == 1 and isinstance(items[0], dict) else None
        return lone_value(select) if isinstance(select, dict) else None
    return sql_answer(f)


def outside_subqueries(tree: Any) -> list[tuple[str, Node]]:
    """Typed nodes evaluated per row of the policy's own table (not inside any sub-query)."""
    return _once("outside", tree, lambda: [(kind, body) for kind, body, ctx in _index(tree) if "select" not in ctx])


def relation_names(tree: Any, default_schema: str = "public") -> frozenset[str]:
    """schema.table of every relation a tree reads directly (sub-queries included, function bodies not)."""
    return _once(("relations", default_schema), tree, lambda: frozenset(
        qualified(body, default_schema)
        for kind, body, _ in _index(tree) if kind == "RangeVar"))


def read_tables(tree: Any, default_schema: str = "public") -> tuple[frozenset[str], bool]:
    """`relation_names` less the names of the tree's own CTEs (`with t as (...) select from t` reads no table t),
    and whether the tree holds a sub-query: (tables, has_sublink), read once per tree."""
    def compute() -> tuple[frozenset[str], bool]:
        index = _index(tree)
        ctes = {body["ctename"] for kind, body, _ in index if kind == "CommonTableExpr" and body.get("ctename")}
        names = relation_names(tree, default_schema)
        return (frozenset(n for n in names if n.split(".", 1)[1] not in ctes) if ctes else names,
                any(kind == "SubLink" for kind, _, _ in index))
    return _once(("read tables", default_schema), tree, compute)


def strings_in(tree: Any) -> list[str]:
    """Every string literal and name part in a tree (String nodes and string constants)."""
    return _once("strings", tree, lambda: [
        v for kind, body, _ in _index(tree)
        for v in ([body.get("sval", "")] if kind == "String" else
                  [body["sval"].get("sval", "")] if kind == "A_Const" and isinstance(body.get("sval"), dict) else [])])


def key_column_lists(t: Table | View) -> list[list[str]]:
    """Column lists of keys and full (non-partial) indexes: what can serve a lookup."""
    lists = [c.columns for c in getattr(t, "constraints", []) if c.kind in ("primary key", "unique")]
    return lists + [i.columns for i in t.indexes if i.where is None]


def into_select(reading, index: int) -> dict | None:
    """The SELECT of the statement at `index` that sets variables (BodyReading.into: select ... into, a FOR loop's
    query, `x := (select ...)`): the first one in its tree; None for a statement with none."""
    return next((b for k, b in nodes(reading.trees[index]) if k == "SelectStmt"), None)


def view_statement(v: View) -> dict | None:
    """The parsed query of a view ({"SelectStmt": ...}), once per audit; None where it does not parse again."""
    def parsed() -> dict | None:
        try:
            return parse(v.query)[0]["stmt"] if v.query else None
        except (pgparse.PGQueryError, RecursionError, ValueError, LookupError):
            return None
    return _once("view statement", v, parsed)


def taken_columns(select, count: int) -> list[str | None] | None:
    """The column each INTO target receives (`select organization_id, name into v_org, v_name`), None for an
    expression; None when the targets take whole rows (`select * into v`)."""
    targets = [(t.get("ResTarget") or {}).get("val") or {} for t in select.get("targetList") or []]
    if len(targets) != count or any(k == "A_Star" for k, _ in nodes(targets)):
        return None
    return [strings(v["ColumnRef"].get("fields"))[-1] if "ColumnRef" in v else None for v in targets]


def compared_later(reading, index: int, name: str, tenant_key: str, holds_key: bool) -> bool:
    """Another statement of the body tests the variable's organisation (`v.organization_id <> new.organization_id`
    for a row, the variable itself when it took the tenant key): see `tested`. A value computed from it is no test
    (`case when v.organization_id = ... then ... end` in the copy's name: evasion round 6, e10)."""
    def names_it(node) -> bool:
        return any(kind == "ColumnRef" and (fields := strings(ref.get("fields"))) and
                   (fields == [name, tenant_key] or (holds_key and fields == [name])) for kind, ref in nodes(node))
    return tested(reading, names_it, index)


def tested(reading, names_it: Callable[[Any], bool], skip: int | None = None) -> bool:
    """Whether a statement of the body (but the one at `skip`) tests what `names_it` finds: in a condition (IF,
    ASSERT, EXIT/CONTINUE WHEN, WHILE, a CASE statement's WHEN), a statement's WHERE, or a call standing alone
    (`perform private.assert_member(v.organization_id)`). A variable set from it (`v_same := v.organization_id =
    job.organization_id`), or looked up by it (`select ... into v_label from organizations where id =
    v.organization_id`), tests it only where a condition then names that variable (or FOUND)."""
    tests = set(reading.conditions)
    sets = dict(reading.into)
    flags: set[str] = set()
    for i, tree in enumerate(reading.trees):
        if i == skip:
            continue
        if i in tests:
            if names_it(tree):
                return True
            continue
        statement = tree[0].get("stmt") if isinstance(tree, list) and len(tree) == 1 else None
        select = (statement or {}).get("SelectStmt") if isinstance(statement, dict) else None
        if i in sets:
            if select is not None and not select.get("fromClause"):
                found = names_it(select.get("targetList"))  # an assignment's value
            else:
                found = any(k in ("SelectStmt", "UpdateStmt", "DeleteStmt") and b.get("whereClause") is not None
                            and names_it(b["whereClause"]) for k, b in nodes(tree))
            if found:
                flags |= set(sets[i]) | {"found"}
            continue
        if any(k in ("SelectStmt", "UpdateStmt", "DeleteStmt") and b.get("whereClause") is not None and
               names_it(b["whereClause"]) for k, b in nodes(tree)):
            return True
        if select is not None and not select.get("fromClause") and any(
                k == "FuncCall" and names_it(b) for k, b in nodes(select.get("targetList"))):
            return True  # perform f(v.organization_id): a call standing alone
    return bool(flags) and any(i != skip and mentions_variables(reading.trees[i], flags) for i in tests
                               if i < len(reading.trees))
