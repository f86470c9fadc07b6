"""What clients reach through the views and functions of the exposed schemas, past the tables' own protection.

The platform's lints look at what the API serves directly (tables without RLS in `public`, definer functions in
`public`). A view or function there reads other schemas too: one with the caller's rights reads a private table
as the caller (its privileges, its RLS), one with its owner's rights reads past both. These rules follow one
step: an entry point of the API to the tables, and the functions, it reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ...model.schema import Function, Schema, Table
from ..findings import Level
from ..platform import managed, trigger_function
from ..body import WRITES, mentions_variables
from ..pins import outer_aliases, unwrap
from ..registry import rule
from ..tree import (boolean_args, const, equated_columns, function_name, nodes, qualified,
                    statement_relations, strings)
from ...model.tenant_keys import ROLE_RANKS, ranks_reversed, role_column
from . import wildcards
from .inviters import definer_writes, role_bounded, writers_outrank
from .binding import calls_out, filters_of, from_relations, pins_caller, unbound_memberships
from .common import (_once, api_access, body_facts, client_policies, compared_later, exposed, find_function,
                     into_select, is_tenant, enum_of, lone_value, membership_tables, names_the_caller, only_statement,
                     outside_subqueries, policy_reads, relation_names, taken_columns, tenant_relation, tenant_roots,
                     tested)

_CLIENTS = frozenset({"anon", "authenticated", "public"})


@dataclass(frozen=True)
class _Entry:
    label: str  # "view public.secrets", "function public.org_projects"
    invoker: bool  # runs with the caller's rights
    reads: tuple[str, ...]
    calls: tuple[str, ...]


def _clients_execute(f: Function) -> bool:
    return bool(_CLIENTS & set(f.execute_roles))


def entries(s: Schema) -> list[_Entry]:
    """The views and functions of the exposed schemas that the API roles may select or call."""
    return _once("api entries", s, _entries, s)


def _entries(s: Schema) -> list[_Entry]:
    out = [_Entry(f"view {v.schema_name}.{v.name}", v.security_invoker, tuple(v.reads or ()), tuple(v.calls or ()))
           for v in s.views if not v.materialized and exposed(s, v)]
    out += [_Entry(f"function {f.qualified}", not f.security_definer, tuple(f.reads or ()), tuple(f.calls or ()))
            for f in s.functions if f.schema_name in s.exposed_schemas and not managed(f.schema_name)
            and not trigger_function(f) and not f.procedure and _clients_execute(f)]
    return out


@rule("BP056", "unprotected_table_behind_api", Level.ERROR, ("SECURITY",),
      summary="A table without RLS (or a view running as its owner, or a materialized view) outside the exposed "
              "schemas that clients read through a view or function.",
      why="A private schema keeps a table out of the API only while nothing exposed reads it. A view with "
          "security_invoker, or a function without SECURITY DEFINER, in an exposed schema reads the table with the "
          "caller's rights: the API roles' USAGE on the schema and their privileges on the table let the read "
          "through, and without RLS nothing filters the rows. The same holds for a view there that runs with its "
          "owner's rights over protected tables, and for a materialized view (which has no RLS). The platform's "
          "rls_disabled_in_public, security_definer_view and materialized_view_in_api look at the exposed schemas "
          "only.",
      bad="create table private.project_secrets (id uuid primary key, organization_id uuid, api_key text);\n"
          "grant usage on schema private to authenticated;\n"
          "grant select on private.project_secrets to authenticated;\n"
          "create view public.secrets with (security_invoker = true) as select * from private.project_secrets;",
      fix="Enable RLS on the table, with policies that check membership as on the exposed tables, or revoke the "
          "API roles' privileges on it and serve it through a function that checks the caller.")
def unprotected_table_behind_api(r, s: Schema) -> Iterator:
    for t in s.tables:
        if t.external or t.kind != "table" or t.rls_enabled or managed(t.schema_name) or \
                t.schema_name in s.exposed_schemas:
            continue
        roles, via = _read_through_invoker(s, t.schema_name, t.grants, t.qualified)
        if via:
            yield r.finding(f"{t.qualified} has no RLS, and {', '.join(via)} reads it with the caller's rights: "
                            f"every row reaches the API ({', '.join(roles)} may use {t.schema_name}).", t.qualified,
                            location=t.location)
    # A view there over protected tables is no better: one with its owner's rights reads past their RLS, and a
    # materialized one has none (BP011 and BP012 look at the exposed schemas only).
    for v in s.views:
        if managed(v.schema_name) or v.schema_name in s.exposed_schemas or \
                not (v.materialized or not v.security_invoker) or not any(_guarded(s, n) for n in v.reads or ()):
            continue
        qualified = f"{v.schema_name}.{v.name}"
        roles, via = _read_through_invoker(s, v.schema_name, v.grants, qualified)
        if via:
            what = "is materialized (no RLS)" if v.materialized else "runs with its owner's rights, past RLS"
            yield r.finding(f"View {qualified} {what}, and {', '.join(via)} reads it with the caller's rights: "
                            f"every row reaches the API ({', '.join(roles)} may use {v.schema_name}).", qualified,
                            location=v.location)


def _read_through_invoker(s: Schema, schema: str, grants, qualified: str) -> tuple[list[str], list[str]]:
    """(the API roles with USAGE on the schema, the exposed invoker entries reading the relation), for a relation
    outside the exposed schemas that its grants open to those roles; ([], []) for one they do not."""
    roles = sorted(_CLIENTS & set(s.schema_usage.get(schema, [])))
    if not (roles and grants and api_access(grants)):
        return [], []
    return roles, [e.label for e in invoker_paths(s) if e.invoker and qualified in e.reads]


def _asks_who_calls(s: Schema, f: Function) -> bool:
    """The body asks who calls: auth.uid(), auth.jwt(), current_setting(...), or a function of its own (a
    helper decides for itself), other than only to learn that someone is signed in (`auth.uid() is not null`,
    `auth.role() = 'authenticated'`) or to call a helper that decides nothing (`perform private.log_access(...)`).
    Where the answer is thrown away (`perform private.has_org_role(...)`, the test of `if ... then raise warning`,
    a RAISE's message: BodyFacts.discarded) only a call that may raise decides (evasion round 11, e05 and e06)."""
    if not any(_may_ask(s, name) for name in f.calls or ()):
        return False
    reading = f._body
    if reading is None:
        return True
    discarded = set(reading.discarded)
    return any(_raises_in(tree, s) if at in discarded else _uses_caller(tree, s)
               for at, tree in enumerate(reading.trees))


def _raises_in(tree: Any, s: Schema) -> bool:
    """A call in the tree of a function that may raise (_may_raise)."""
    return any(kind == "FuncCall" and _may_raise(s, function_name(body)) for kind, body in nodes(tree))


def _may_raise(s: Schema, name: str, seen: frozenset[str] = frozenset()) -> bool:
    """A function that may raise: a PL/pgSQL one with a RAISE EXCEPTION (or ASSERT), one in another language, one
    calling such a function, or one of a schema the audit does not see (the benefit of the doubt); auth.uid() and
    the built-in functions never refuse anyone."""
    f = find_function(s, name)
    if f is None:
        return "." in name and name.split(".")[0] not in ("auth", "pg_catalog", "extensions")
    if f.language not in ("sql", "plpgsql"):
        return True
    if f.language == "plpgsql" and (f._body.raises if f._body is not None else _RAISE.search(f.body or "")):
        return True
    return any(inner not in seen and _may_raise(s, inner, seen | {name}) for inner in f.calls or ())


# Functions saying only whether someone is signed in (the request's role), not who.
_SESSION_ONLY = ("auth.role", "current_user", "session_user")


def _uses_caller(value: Any, s: Schema, tested: bool = False) -> bool:
    """A call naming the caller (or a helper of the app's) outside a mere IS [NOT] NULL test."""
    if isinstance(value, list):
        return any(_uses_caller(v, s, tested) for v in value)
    if not isinstance(value, dict):
        return False
    if len(value) == 1:
        kind, body = next(iter(value.items()))
        if kind == "NullTest":
            return _uses_caller(body, s, True)
        if kind == "FuncCall" and not tested and isinstance(body, dict):
            name = function_name(body)
            if name not in _SESSION_ONLY and _may_ask(s, name):
                return True
    return any(_uses_caller(v, s, tested) for v in value.values() if isinstance(v, dict | list))


_RAISE = re.compile(r"\braise\b", re.IGNORECASE)  # a body the reader could not parse: its text


def _may_ask(s: Schema, name: str, seen: frozenset[str] = frozenset()) -> bool:
    """A call that may decide about the caller: auth.uid() and the like, or a function of the app's that returns
    something to test or may raise (a PL/pgSQL assertion returning void, or one calling such an assertion). A void
    SQL function, or a PL/pgSQL one that neither raises nor calls anything that may, only does something (records
    an access, touches a timestamp)."""
    f = find_function(s, name)
    if f is None:
        return names_the_caller(name)
    if (f.returns or "").strip().lower() != "void" or f.language not in ("sql", "plpgsql"):
        return True
    if f.language == "plpgsql" and (f._body.raises if f._body is not None else _RAISE.search(f.body or "")):
        return True
    return any(find_function(s, inner) is not None and inner not in seen and _may_ask(s, inner, seen | {name})
               for inner in f.calls or ())


def client_definers(s: Schema) -> list[tuple[Function, str]]:
    """SECURITY DEFINER functions (not triggers) clients reach, each with how: the API, or the exposed views and
    functions that call it."""
    return _once("client definers", s, _client_definers, s)


def invoker_paths(s: Schema) -> list[_Entry]:
    """The entries, and each invoker function outside them that clients may execute and an invoker entry calls,
    directly or through other such functions: it runs with the caller's rights too, so what it calls a client
    reaches (`public.dashboard` -> `private.section` -> a definer). Labelled by the path."""
    return _once("invoker paths", s, _invoker_paths, s)


def _invoker_paths(s: Schema) -> list[_Entry]:
    out = list(entries(s))
    seen = {e.label for e in out}
    frontier = [e for e in out if e.invoker]
    while frontier:
        e = frontier.pop(0)
        for name in dict.fromkeys(e.calls):
            g = find_function(s, name)
            label = f"function {g.qualified}" if g is not None else ""
            if g is None or g.security_definer or managed(g.schema_name) or trigger_function(g) or \
                    not _clients_execute(g) or label in seen:
                continue
            seen.add(label)
            inner = _Entry(f"{e.label} -> {label}", True, tuple(g.reads or ()), tuple(g.calls or ()))
            out.append(inner)
            frontier.append(inner)
    return out


def _client_definers(s: Schema) -> list[tuple[Function, str]]:
    out = []
    callers: dict[str, list[_Entry]] = {}  # a name as calls are written (qualified or bare) -> the entries calling it
    for e in invoker_paths(s):
        for name in dict.fromkeys(e.calls):
            callers.setdefault(name, []).append(e)
    for f in s.functions:
        if not f.security_definer or managed(f.schema_name) or trigger_function(f):
            continue
        # the API calls functions, never procedures (PostgREST has no CALL): one is reached through a caller
        direct = f.schema_name in s.exposed_schemas and _clients_execute(f) and not f.procedure
        calling = dict.fromkeys([*callers.get(f.qualified, ()), *callers.get(f.name, ())])
        via = [e.label for e in calling
               if e.label != f"function {f.qualified}" and (not e.invoker or _clients_execute(f))]
        if direct or via:
            out.append((f, "the API" if direct else ", ".join(via)))
    return out


# A column holding a secret the caller must know (an invitation's token): a lookup by it is a capability check.
# A token, secret or hash by its name alone, and a key or code named for a secret's use (api_key, invite_code).
_SECRET = re.compile(r"(^|_)(token|secret|password|nonce|hash|digest)(_hash|_digest)?$|"
                     r"(^|_)(api|access|secret|private|signing|invite|invitation|join|share|sharing|magic|reset|"
                     r"recovery|verification|verify|confirmation|confirm|activation|otp|redeem|redemption|claim|"
                     r"license|licence|pairing)_(key|code)(_hash|_digest)?$")
# Any other key or code (`key`, `issue_key`, `country_code`) is one only where its default is unguessable, or in
# a table kept for such secrets (invites.code, gym_invite_codes.code, api_keys.key).
_KEY = re.compile(r"(^|_)(key|code)$")
_SECRET_TABLE = re.compile(r"invit|pairing|share_link|magic_link|password_reset|verification|api_key|access_key|"
                           r"redemption|activation")
_RANDOM = re.compile(r"\b(gen_random_bytes|gen_random_uuid|uuid_generate_v4|random|gen_salt)\s*\(", re.IGNORECASE)


def _secret_column(t: Table | None, column: str) -> bool:
    """A column whose value the caller must be given: a name saying so (token, secret, *_hash, api_key,
    invite_code), or a key or code filled with random bytes by its default (or of bytea type), or of a table of
    invitations, pairings, share links or API keys (invites.code). A key or code by its
    name alone is as often a public identifier (a Jira-style issue key, ACME-2, shown in titles and commit messages:
    evasion round 12, e07)."""
    if _SECRET.search(column):
        return True
    c = t.column(column) if t is not None and _KEY.search(column) else None
    return c is not None and (bool(_RANDOM.search(c.default or "")) or c.type.lower() == "bytea" or
                              bool(_SECRET_TABLE.search(t.name)))


def _by_secret(s: Schema, f: Function, table: str) -> bool:
    """Every read of `table` in the body is pinned to an argument by a secret column (`where token = p_token`), or
    each SELECT naming it in its FROM is, or joins it to a row so pinned by a column that singles out what the
    secret grants (`from share_links l join documents d on d.project_id = l.project_id where l.token = p_token`:
    evasion round 13, fp01). A join on the tenant key (`d.organization_id = l.organization_id`) reads every
    project's documents of the organisation, and does not count."""
    found = body_facts(s, f)
    reads = found[1].pins.get(table, []) if found is not None else []
    t = s.table(*table.split(".", 1)[::-1]) if "." in table else None
    if not reads or all(any(_secret_column(t, column) for column in columns) for columns in reads):
        return bool(reads)
    if t is None:
        return False
    reading = f._body
    selects = [body for tree in reading.trees for kind, body in nodes(tree)
               if kind == "SelectStmt" and table in from_relations(body, reading.default_schema)]
    return bool(selects) and all(_joined_to_secret(s, select, t, reading.default_schema) for select in selects)


def _joined_to_secret(s: Schema, select: dict, t: Table, default_schema: str) -> bool:
    """A SELECT reading `t` only where it meets a row found by a secret: another relation of its FROM has a secret
    column equated with a value in its WHERE (in an ON too, without outer joins: an ON keeps the rows of the other
    side), and for each time its FROM names `t`, a column of it that singles out rows (_singles_out) is equated with
    a column of that relation, the one referencing `t` where it has one (_grants), or its own secret column is
    pinned."""
    aliases: dict[str, Table] = {}
    stack = list(select.get("fromClause") or [])
    while stack:
        item = stack.pop()
        kind, body = next(iter(item.items())) if isinstance(item, dict) and len(item) == 1 else ("", {})
        if kind == "JoinExpr":
            stack += [body.get("larg"), body.get("rarg")]
        elif kind == "RangeVar":
            u = s.table(*qualified(body, default_schema).split(".", 1)[::-1])
            if u is not None:
                aliases[(body.get("alias") or {}).get("aliasname") or body.get("relname", "")] = u
    pins = [select.get("whereClause")] if outer_aliases(select) else filters_of(select)  # NULL = x is no row
    conjuncts = [equated_columns(c["A_Expr"]) for f in filters_of(select)
                 for c in boolean_args(f, "AND_EXPR") if isinstance(c, dict) and "A_Expr" in c]
    pinning = [equated_columns(c["A_Expr"]) for f in pins if f is not None
               for c in boolean_args(f, "AND_EXPR") if isinstance(c, dict) and "A_Expr" in c]
    secret = set()
    for sides in pinning:
        for col, other in ((sides[0], sides[1]), (sides[1], sides[0])) if sides else ():
            if len(col) == 2 and col[0] in aliases and \
                    _secret_column(aliases[col[0]], col[1]) and not (len(other) == 2 and other[0] in aliases):
                secret.add(col[0])
    mine = {alias for alias, u in aliases.items() if u is t}
    tied = {col[0] for sides in conjuncts if sides
            for col, other in ((sides[0], sides[1]), (sides[1], sides[0]))
            if len(col) == 2 and len(other) == 2 and col[0] in mine and other[0] in secret and
            _grants(s, t, col[1], (aliases[other[0]], other[1]))}
    return bool(mine) and mine <= secret | tied  # each time the FROM names it (a second, unjoined copy reads all)


def _singles_out(s: Schema, t: Table, column: str) -> bool:
    """A column of `t` that picks out the rows a capability grants: a key of the row itself (`id`, its primary key
    or a unique column) or a reference to one parent (`project_id`), not a tenant key (the organisation holds every
    project's rows: evasion round 13, e02), a user column (whoever made the link) or a plain attribute (a status)."""
    from ...model.tenant_keys import key_sets, user_columns, user_tables
    if t.column(column) is None or column in {u.tenant_key for u in s.tables if u.tenant_key} or \
            column in user_columns(t, user_tables(s.tables)):
        return False
    return column == "id" or column.endswith("_id") or any(column in keys for keys in key_sets(t)) or \
        any(column in fk.columns for fk in t.foreign_keys)


def _references(u: Table, t: Table) -> dict[str, str]:
    """The columns of `u` that point at one row of `t`, each with the column of `t` it holds: those of its foreign
    keys to `t` (a composite key's tenant column aside), or else one named for `t` (`document_id` for documents,
    holding its `id`)."""
    tenant = {t.tenant_key, u.tenant_key} - {None}
    out = {}
    for fk in u.foreign_keys:
        if (fk.ref_schema, fk.ref_table) != (t.schema_name, t.name) or u is t:
            continue
        held = fk.ref_columns or next((c.columns for c in t.constraints if c.kind == "primary key"), [])
        out.update({mine: theirs for mine, theirs in zip(fk.columns, held) if theirs not in tenant})
    if out or u is t or t.column("id") is None:
        return out
    stems = {t.name, t.name[:-1] if t.name.endswith("s") else t.name, t.name[:-2] if t.name.endswith("es") else
             t.name, t.name[:-3] + "y" if t.name.endswith("ies") else t.name}
    return {f"{stem}_id": "id" for stem in stems if u.column(f"{stem}_id") is not None}


def _grants(s: Schema, t: Table, column: str, origin: tuple[Table, str | None] | None) -> bool:
    """`t.column = <what a secret lookup found>` keeps to what the capability grants: a column that singles out rows
    (_singles_out), and where the lookup's table `u` (origin: the table and the column the value comes from, None
    where unknown) points at rows of `t` itself (`share_links.document_id` -> documents), the key of `t` equated
    with that column (`documents.id = l.document_id`). A link to one document grants that document, not its
    project's others: `documents.project_id = l.project_id` reaches them all (evasion round 14, e01, e02). A link
    that names no row of `t` (a whole project's) is tied by the parent key it holds, unless it holds an id nothing
    explains (_loose_ids: a polymorphic `resource_id`), which may name one row of `t`: then only `t`'s own key ties."""
    if not _singles_out(s, t, column):
        return False
    refs = _references(origin[0], t) if origin is not None else {}
    if refs:
        return origin[1] in refs and refs[origin[1]] == column
    return origin is None or not _loose_ids(s, origin[0], {origin[1], column}) or _own_key(t, column)


_ID_TYPE = re.compile(r"^(uuid|bigint|integer|int|int4|int8|smallint)\b", re.IGNORECASE)


def _loose_ids(s: Schema, u: Table, tie: set[str | None]) -> list[str]:
    """The columns of a lookup's table `u` that may name single rows of any table: uuid or integer ids
    (`resource_id`, `target_id`, `object_id`) that are neither its own key, nor a foreign key (to a known table or
    to auth.users), nor the tenant key, a user column, a secret, or the parent key of the tie (`tie`: the column
    found and the one it is equated with). A polymorphic link (`resource_type`, `resource_id`) names one document
    without a `document_id` (evasion round 15, e02)."""
    from ...model.tenant_keys import user_columns, user_tables
    own = next((c.columns for c in u.constraints if c.kind == "primary key"), ["id"])
    skip = set(own) | {"id"} | {c for fk in u.foreign_keys for c in fk.columns} | \
        {x.tenant_key for x in s.tables if x.tenant_key} | set(user_columns(u, user_tables(s.tables))) | tie
    return [c.name for c in u.columns if c.name not in skip and not _secret_column(u, c.name) and
            (c.type.lower().startswith("uuid") or c.name.endswith("_id") and bool(_ID_TYPE.match(c.type)))]


def _own_key(t: Table, column: str) -> bool:
    """`id`, or a one-column primary or unique key of `t`: a tie by it names one row."""
    from ...model.tenant_keys import key_sets
    return column == "id" or {column} in key_sets(t)


def _found_origin(s: Schema, reading, value: Any, found: set[str], seen: frozenset[str] = frozenset()) \
        -> tuple[Table, str | None] | None:
    """The table a found value comes from and its column (_found_value): `v_link.document_id` after `select * into
    v_link from share_links ...`, `v_doc` after `select l.document_id into v_doc ...` or `v_doc :=
    v_link.document_id`, `(select l.project_id from share_links l where ...)`; None where it cannot be told (a
    column None where the table is known but not which of its columns)."""
    value = unwrap(value)
    if not isinstance(value, dict):
        return None
    link = value.get("SubLink")
    if isinstance(link, dict):
        select = (link.get("subselect") or {}).get("SelectStmt") or {}
        return _target_origin(s, reading, select, lone_value(select, bare=False), None)
    ref = strings((value.get("ColumnRef") or {}).get("fields"))
    if not ref or ref[0] not in found or ref[0] in seen:
        return None
    field = ref[1] if len(ref) == 2 else None
    origins = []
    for at, names in reading.into:
        if ref[0] not in names or at >= len(reading.trees):
            continue
        select = into_select(reading, at)
        if _secret_lookup(s, select, reading.default_schema):
            targets = [(target.get("ResTarget") or {}) for target in select.get("targetList") or []]
            if field is None:
                target = targets[names.index(ref[0])] if len(names) == len(targets) else {}
            else:  # a record: the target named `field`, or `*`
                target = next((x for x in targets if x.get("name") == field or x.get("name") is None and
                               _column_name(x.get("val")) in (field, "*")), {}) if len(names) == 1 else {}
            origins.append(_target_origin(s, reading, select, target.get("val"), field))
        else:
            copied = _found_origin(s, reading, _copied_value(reading.trees[at]), found, seen | {ref[0]})
            origins.append(copied if field is None else None)
    return origins[0] if origins and all(o == origins[0] for o in origins) else None


def _column_name(value: Any) -> str | None:
    """The last part of a column reference (`l.document_id` -> document_id), `*` for a star; None otherwise."""
    value = unwrap(value)
    fields = ((value.get("ColumnRef") or {}).get("fields") or []) if isinstance(value, dict) else []
    if fields and isinstance(fields[-1], dict) and "A_Star" in fields[-1]:
        return "*"
    return (strings(fields) or [None])[-1] if fields else None


def _target_origin(s: Schema, reading, select: dict, value: Any, field: str | None) \
        -> tuple[Table, str | None] | None:
    """The table and column of a lookup's SELECT a target (`l.document_id`, or `*` read by `field`) comes from:
    the relation its alias names, or the one table pinned by its secret (for `*` and a bare column)."""
    value = unwrap(value)
    ref = strings(((value or {}).get("ColumnRef") or {}).get("fields")) if isinstance(value, dict) else []
    star = _column_name(value) == "*"
    aliases: dict[str, Table] = {}
    for kind, body in nodes({"List": {"items": select.get("fromClause") or []}}):
        if kind == "RangeVar":
            u = s.table(*qualified(body, reading.default_schema).split(".", 1)[::-1])
            if u is not None:
                aliases[(body.get("alias") or {}).get("aliasname") or body.get("relname", "")] = u
    pinned = [u for u in aliases.values() if _pinned_by_secret(u, select.get("whereClause"))]
    if star and len(aliases) == 1:
        return next(iter(aliases.values())), field
    if len(ref) == 2 and ref[0] in aliases:
        return aliases[ref[0]], ref[1]
    if len(ref) == 1 and len(pinned) == 1 and pinned[0].column(ref[0]) is not None:
        return pinned[0], ref[0]
    return (pinned[0], None) if len(pinned) == 1 else None


def _guarded(s: Schema, name: str) -> Table | None:
    t = s.table(*name.split(".", 1)[::-1]) if "." in name else None
    return t if t is not None and (t.rls_enabled or is_tenant(t)) else None


@rule("BP057", "definer_function_ignores_caller", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A SECURITY DEFINER function clients reach reads or writes protected tables without asking who "
              "calls.",
      why="A definer function reads with its owner's rights, past RLS: the body alone decides whose rows it returns. "
          "One that never asks who calls (no auth.uid(), no helper) answers any client alike, whatever the "
          "organisation they pass: through the API when it is in an exposed schema, or through a view or an invoker "
          "function there that calls it, directly or through other invoker functions clients may execute (with "
          "execute granted to the API roles, or from an owner's-rights view). "
          "A read pinned to an argument by a secret column (`where token = p_token`: a token, secret or hash, a key "
          "or code named for one, api_key or invite_code, or filled with random bytes by its default; not a public "
          "`key` such as ACME-2) is a capability check and passes, and so is a write of the row that lookup found "
          "(`where project_id = v_link.project_id`), not one of a row another argument picks (evasion round 12) "
          "nor one tied only by the tenant key (`organization_id = v_link.organization_id`: any project of the "
          "organisation), and a read joining the read table to the found row by such a column (`join documents d "
          "on d.project_id = l.project_id where l.token = p_token`) is the lookup's own (evasion round 13). "
          "Where the lookup's table points at rows of the written or read table itself (a link's `document_id`), "
          "only that key ties (`id = v_link.document_id`): the link's project (`project_id = v_link.project_id`) "
          "reaches the project's other documents (evasion round 14). So does a link holding an id no foreign key "
          "explains (a polymorphic `resource_type`, `resource_id`): it may name one row of any table, and only the "
          "written or read table's own key ties (`id = v_link.resource_id`, evasion round 15). "
          "`auth.uid() is not null` only asks whether someone is signed "
          "in: any user then reads any organisation's rows. A helper that returns nothing and never raises (`perform "
          "private.log_access(p_org, ...)`) decides nothing either, nor does a boolean helper whose answer is "
          "thrown away (`perform private.has_org_role(p_org, 'viewer')`) or a test whose branch only logs (`raise "
          "warning`: the function goes on). The same holds for the rows it changes: an UPDATE, DELETE or MERGE of a "
          "table with RLS (or of a tenant table), and an INSERT into a tenant table, run past RLS for any client "
          "(evasion round 11: a stranger renamed and deleted another organisation's project). An INSERT of "
          "arguments alone into an inbox (a contact form's leads: no membership, nothing a policy or another "
          "function reads or other tables reference, no invitation or token, no client insert policy) by a body "
          "that changes nothing else passes; an invitation another definer turns into a membership is no inbox "
          "(evasion round 13).",
      bad="create function private.projects_of(org uuid) returns setof public.projects language sql stable\n"
          "security definer set search_path = '' as $$ select * from public.projects where organization_id = org $$;\n"
          "grant execute on function private.projects_of(uuid) to authenticated;\n"
          "create function public.org_projects(org uuid) returns setof public.projects language sql stable\n"
          "as $$ select * from private.projects_of(org) $$;",
      fix="Check the caller in the body (where organization_id = org and org = any (array(select "
          "private.organization_ids_with_role('viewer')))), or make it SECURITY INVOKER so RLS applies, or revoke "
          "execute from the API roles.")
def definer_function_ignores_caller(r, s: Schema) -> Iterator:
    for f, through in client_definers(s):
        if f.reads is None or _asks_who_calls(s, f):
            continue
        tables = [name for name in f.reads if _guarded(s, name) is not None and not _by_secret(s, f, name)]
        written = _unasked_writes(s, f)
        if tables or written:
            asks = "asks who calls only where the answer is thrown away (a PERFORM, a test whose branch only " \
                "logs)" if _asks_idly(s, f) else "only asks whether someone is signed in" \
                if any(names_the_caller(n) for n in f.calls or ()) else "never asks who calls"
            what = " and ".join(([f"reads {', '.join(tables)}"] if tables else []) +
                                ([f"writes {', '.join(written)}"] if written else []))
            if set(written) - set(_unasked_writes(s, f, permissions=False)):
                untested = sorted(f"{t.qualified}.{c}" for name in f.reads if "." in name and
                                  (t := s.table(*name.split(".", 1)[::-1])) is not None and
                                  any(_secret_column(t, c.name) for c in t.columns)
                                  for c in _permission_columns(t) - _tested_columns(f._body))
                what += f" (with a secret whose lookup never tests what it allows: {', '.join(untested)})"
            yield r.finding(f"Definer function {f.qualified} {what} past RLS and {asks}; "
                            f"clients reach it through {through}.", f.qualified, location=f.location)


def _asks_idly(s: Schema, f: Function) -> bool:
    """The body asks who calls in an expression whose answer it throws away (BodyFacts.discarded)."""
    reading = f._body
    return reading is not None and any(_uses_caller(reading.trees[at], s) for at in reading.discarded
                                       if at < len(reading.trees))


def _unasked_writes(s: Schema, f: Function, permissions: bool = True) -> list[str]:
    """The tables a body changes past RLS: the targets of its UPDATE, DELETE and MERGE statements with RLS (or a
    tenant key), and of its INSERTs into tenant tables (one into a locked table of no organisation, a contact form's,
    is what such a function is for). A change pinned by a secret column (`where token = p_token`), or tied to the row
    a lookup by one found (`where id = v_invitation.id`, `project_id = v_link.project_id`, a new row's tenant key
    taken from it), is a capability's: what the token grants. Any other write after that lookup (`where id =
    p_document`: a row the token did not pick) still needs a check (evasion round 12, e06). With `permissions`, a
    lookup in a table saying what its secret allows must test that before another table's rows change (evasion round
    16 e07); the secret's own row (a use counter, last_used_at) changes with any of them."""
    reading = f._body
    if reading is None:
        return []
    tested = _tested_columns(reading) if permissions else None
    found = _found_by_secret(s, reading, tested)
    found_any = _found_by_secret(s, reading) if permissions else found
    inserts_only = not any(kind in ("UpdateStmt", "DeleteStmt", "MergeStmt") or
                           (kind == "OnConflictClause" and body.get("action") == "ONCONFLICT_UPDATE")
                           for tree in reading.trees for kind, body in nodes(tree))
    out: list[str] = []
    for tree in reading.trees:
        for kind, body in nodes(tree):
            if kind not in ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt") or \
                    not isinstance(body.get("relation"), dict):
                continue
            name = qualified(body["relation"], reading.default_schema)
            t = _guarded(s, name)
            own = t is not None and any(_secret_column(t, c.name) for c in t.columns)
            if t is None or name in out or (kind == "InsertStmt" and not is_tenant(t)) or \
                    _pinned_by_secret(t, body.get("whereClause")) or \
                    _tied_to_found(s, reading, t, kind, body, *((found_any, None) if own else (found, tested))) \
                    or (kind == "InsertStmt" and inserts_only and _inbox_insert(s, f, t, body)):
                continue
            out.append(name)
    return out


def _inbox_insert(s: Schema, f: Function, t: Table, insert: dict) -> bool:
    """An INSERT of a body that changes nothing else, adding a row made only of its arguments (and constants, now(),
    functions of them) to a tenant table that works as an inbox: nothing decides access by its rows (no membership
    table, no table a policy reads, none other tables reference, no user or role column set, no trigger on it that
    writes), and no client insert policy says who may add rows (the function is the only way in). A
    per-organisation contact form (`insert into
    leads (organization_id, email, message) values (p_org, p_email, p_message)`) lets anyone leave a message in any
    organisation's inbox, which is what it is for; it reads and changes nothing of anyone's (evasion round 12,
    fp04). A row a policy or any other function reads (a membership, a grant, a share: accept_invitation turns an
    invitation into a membership), a table of invitations, links or keys (by its name, or a secret column such as
    a token), and any UPDATE or DELETE, stay reported (evasion round 13, e01: an unchecked invite_member(p_org,
    p_email) let carol invite herself into A and join)."""
    from ...model.tenant_keys import user_columns, user_tables
    reading = f._body
    if t.qualified in membership_tables(s) or t.qualified in policy_reads(s) or client_policies(t, "insert") or \
            any((fk.ref_schema, fk.ref_table) == (t.schema_name, t.name) for u in s.tables for fk in u.foreign_keys):
        return False  # a row something decides by, or a parent others hang rows on (a project), is no inbox's
    if _SECRET_TABLE.search(t.name) or any(_secret_column(t, c.name) for c in t.columns) or \
            any(g is not f and t.qualified in (g.reads or ()) for g in s.functions):
        return False  # a capability, or a row another function may decide by, is no inbox's either
    columns = {(target.get("ResTarget") or {}).get("name") for target in insert.get("cols") or []}
    if not columns or None in columns or columns & ({role_column(t)} | set(user_columns(t, user_tables(s.tables)))):
        return False
    for trigger in (g for g in t.triggers if g.fires):
        g = find_function(s, trigger.function)
        if "insert" in trigger.events and (g is None or g.writes is None or g.writes):
            return False
    select = (insert.get("selectStmt") or {}).get("SelectStmt") or {}
    rows = select.get("valuesLists") or []
    params = set(_arguments(reading))
    return bool(rows) and not any(k in ("SubLink", "SelectStmt", "RangeVar") or (k == "ColumnRef" and (
        strings(b.get("fields"))[:1] or [""])[0] not in params) for row in rows for k, b in nodes(row))


def _column_of_row(value: Any, params: set[str]) -> bool:
    ref = strings((unwrap(value) or {}).get("ColumnRef", {}).get("fields")) if isinstance(unwrap(value), dict) else []
    return bool(ref) and ref[0] not in params


def _secret_lookup(s: Schema, select: Any, default_schema: str, tested: frozenset[str] | None = None) -> bool:
    """A SELECT whose filter pins a secret column of a table its FROM names (`from share_links l where l.token =
    p_token`). With `tested` (the columns the body tests, `_tested_columns`: a lookup feeding a write), a table whose
    rows say what the secret allows (`can_edit`, a `permission`) counts only where the body tests one of those: a
    view-only link's token is no licence to save (evasion round 16 e07)."""
    where = select.get("whereClause") if isinstance(select, dict) else None
    if where is None:
        return False
    tables = [s.table(*name.split(".", 1)[::-1]) for name in from_relations(select, default_schema)]
    return any(t is not None and _pinned_by_secret(t, where) and
               (tested is None or not (allows := _permission_columns(t)) or bool(allows & tested)) for t in tables)


# Columns of a capability's table that say what its holder may do: a flag (can_edit, allow_upload, read_only,
# editable) or a level (permission, access_level, a link's role). A lookup that feeds a write must test one.
_PERMISSION_FLAG = re.compile(r"(^|_)(can|may|allow|allows)_|edit|writ|read_?only|modif|manage|upload|delet|"
                              r"publish|comment")
_PERMISSION_LEVEL = re.compile(r"^((link|share|access|permission)_)?(permission|permissions|access|access_level|"
                               r"access_mode|access_type|level|mode|role|scope)$")


def _permission_columns(t: Table) -> frozenset[str]:
    """The columns of `t` that qualify what a secret of it grants (`_PERMISSION_FLAG` booleans, `_PERMISSION_LEVEL`
    of any type)."""
    def flag(c) -> bool:
        return c.type.lower() in ("boolean", "bool", "pg_catalog.bool") and bool(_PERMISSION_FLAG.search(c.name))
    return _once("permission columns", t, lambda: frozenset(
        c.name for c in t.columns if flag(c) or _PERMISSION_LEVEL.match(c.name)))


def _tested_columns(reading) -> frozenset[str]:
    """Column names the body tests or passes on: named in a query's filter or join (`and l.can_edit`), in a test
    that decides something (`if not v_link.can_edit then raise`, not one whose branches only log), or in a write
    (`values (..., v_invitation.role)`: the level the secret grants, carried over), and the columns a SELECT ... INTO
    copies into variables named there (`select can_edit into v_can_edit ...; if not v_can_edit`)."""
    def names(tree) -> set[str]:
        return {ref[-1] for k, b in nodes(tree) if k == "ColumnRef" and (ref := strings(b.get("fields")))}

    used: set[str] = set()
    idle = set(reading.discarded)  # a test whose every branch only logs (raise notice) decides nothing
    for at in reading.conditions:
        if at < len(reading.trees) and at not in idle:
            used |= names(reading.trees[at])
    for tree in reading.trees:
        for kind, body in nodes(tree):
            if kind == "SelectStmt":
                used |= names(body.get("whereClause")) | names([b.get("quals") for k, b in
                                                                 nodes(body.get("fromClause")) if k == "JoinExpr"])
            elif kind in ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"):
                used |= names(body)
    for at, targets in reading.into:
        select = into_select(reading, at) if at < len(reading.trees) else None
        values = [(x.get("ResTarget") or {}).get("val") for x in (select or {}).get("targetList") or []]
        if len(values) == len(targets):
            used |= {col for value, target in zip(values, targets) if target in used for col in names(value)}
    return frozenset(used)


def _found_by_secret(s: Schema, reading, tested: frozenset[str] | None = None) -> set[str]:
    """Variables holding what a lookup by a secret column found: each set only by such a SELECT ... INTO (`select *
    into v_link from share_links where token = p_token`), or only copied from one of those (`v_doc :=
    v_link.document_id`)."""
    sources: dict[str, list[int]] = {}
    for at, names in reading.into:
        for name in names:
            sources.setdefault(name, []).append(at)
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, ats in sources.items():
            if name in found:
                continue
            if all(at < len(reading.trees) and (
                    _secret_lookup(s, into_select(reading, at), reading.default_schema, tested) or
                    _found_value(s, reading, _copied_value(reading.trees[at]), found, tested)) for at in ats):
                found.add(name)
                changed = True
    return found


def _copied_value(tree: Any) -> Any:
    kind, select = only_statement(tree)
    return lone_value(select) if kind == "SelectStmt" else None


def _found_value(s: Schema, reading, value: Any, found: set[str], tested: frozenset[str] | None = None) -> bool:
    """A value the secret lookup found: a variable holding it (or a field of one), or a sub-query that is such a
    lookup itself (`(select project_id from share_links where token = p_token)`)."""
    value = unwrap(value)
    if not isinstance(value, dict):
        return False
    ref = strings((value.get("ColumnRef") or {}).get("fields"))
    if ref:
        return ref[0] in found and len(ref) <= 2
    link = value.get("SubLink")
    return isinstance(link, dict) and link.get("subLinkType") in ("EXPR_SUBLINK", "ANY_SUBLINK") and \
        _secret_lookup(s, (link.get("subselect") or {}).get("SelectStmt"), reading.default_schema, tested)


def _tied_to_found(s: Schema, reading, t: Table, kind: str, body: dict, found: set[str],
                   tested: frozenset[str] | None = None) -> bool:
    """A write of the row(s) a lookup by a secret column found: an UPDATE or DELETE with a conjunct equating a column
    of its table with a found value (`where id = v_link.document_id`, `project_id = v_project`, `id in (select
    ... where token = p_token)`), or an INSERT whose tenant key comes from one."""
    if kind == "InsertStmt":
        columns = [(target.get("ResTarget") or {}).get("name") for target in body.get("cols") or []]
        if t.tenant_key not in columns:
            return False
        at = columns.index(t.tenant_key)
        select = (body.get("selectStmt") or {}).get("SelectStmt") or {}
        rows = [((row or {}).get("List") or {}).get("items") or [] for row in select.get("valuesLists") or []] or \
            [[(target.get("ResTarget") or {}).get("val") for target in select.get("targetList") or []]]
        params = set(_arguments(reading))
        # insert ... select l.organization_id from share_links l where l.token = p_token
        looked_up = _secret_lookup(s, select, reading.default_schema, tested)
        return all(len(row) > at and (_found_value(s, reading, row[at], found, tested) or looked_up and
                                      _column_of_row(row[at], params)) for row in rows)
    if kind not in ("UpdateStmt", "DeleteStmt") or body.get("whereClause") is None:
        return False
    for conjunct in boolean_args(body["whereClause"], "AND_EXPR"):
        e = conjunct.get("A_Expr") if isinstance(conjunct, dict) else None
        link = conjunct.get("SubLink") if isinstance(conjunct, dict) else None
        if isinstance(link, dict) and link.get("subLinkType") == "ANY_SUBLINK":
            test = strings((unwrap(link.get("testexpr")) or {}).get("ColumnRef", {}).get("fields")) \
                if isinstance(unwrap(link.get("testexpr")), dict) else []
            if test and _found_value(s, reading, conjunct, found, tested) and \
                    _grants(s, t, test[-1], _found_origin(s, reading, conjunct, found)):
                return True
        sides = equated_columns(e) if isinstance(e, dict) else None
        for col, other in ((sides[0], e.get("rexpr")), (sides[1], e.get("lexpr"))) if sides else ():
            if col and col[0] not in found and _found_value(s, reading, other, found, tested) and \
                    _grants(s, t, col[-1], _found_origin(s, reading, other, found)):
                return True
    return False


def _pinned_by_secret(t: Table, where: Any) -> bool:
    """A filter with a conjunct `<secret column of t> = <value>` (token, secret, code, key, hash)."""
    for conjunct in boolean_args(where, "AND_EXPR") if where is not None else []:
        sides = equated_columns(conjunct["A_Expr"]) if isinstance(conjunct, dict) and "A_Expr" in conjunct else None
        if sides and any(col and t.column(col[-1]) is not None and _secret_column(t, col[-1]) for col in sides):
            return True
    return False


def _loose_checks(s: Schema, f: Function, members: set[str]) -> list[str]:
    """The membership tables a body's membership checks read without keeping the membership to the caller in
    every branch: a query over one whose filter names the caller (`m.user_id = auth.uid() or m.role = 'owner'`)
    but does not pin it throughout. Lookups that never name the caller (a member the caller picked) are not
    checks and are left to the other rules."""
    reading = f._body
    out: list[str] = []
    for tree in reading.trees if reading is not None else ():
        for kind, body in nodes(tree):
            if kind != "SelectStmt":
                continue
            read = [n for n in from_relations(body, reading.default_schema) if n in members]
            if read and calls_out(body.get("whereClause")) and \
                    not pins_caller(s, body, reading.default_schema, members):
                out += [n for n in read if n not in out]
    return out


def _unbound_gates(s: Schema, f: Function, members: set[str]) -> list[tuple[str, str]]:
    """(membership table, tenant table) for each statement on a tenant table's rows that a membership read gates,
    joined in its FROM or in a sub-query of its filter, kept to the caller but to no organisation
    (`unbound_memberships`)."""
    reading = f._body
    out: list[tuple[str, str]] = []
    for tree in reading.trees if reading is not None else ():
        for kind, body in nodes(tree):
            # a SELECT's joined tables too (statement_relations leaves joins aside)
            read = from_relations(body, reading.default_schema) if kind == "SelectStmt" else \
                [qualified(rv, reading.default_schema) for rv in statement_relations(kind, body) or [] if rv]
            gated = [t.qualified for name in read if (t := tenant_relation(s, *name.split(".", 1)[::-1]))
                     is not None and t.qualified not in members]
            if not gated:
                continue
            selects = [body] if kind == "SelectStmt" else []
            filters = filters_of(body) if kind == "SelectStmt" else [body.get("whereClause")]
            selects += [b["subselect"]["SelectStmt"] for k, b in nodes(filters) if k == "SubLink"
                        and b.get("subLinkType") in ("EXISTS_SUBLINK", "ANY_SUBLINK")
                        and "SelectStmt" in (b.get("subselect") or {})]
            for select in selects:
                out += [(name, gated[0]) for name in unbound_memberships(s, select, reading.default_schema, members)
                        if (name, gated[0]) not in out]
    return out


@rule("BP068", "definer_membership_check_not_tied_to_caller", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A SECURITY DEFINER function clients call checks membership with a branch that does not keep the "
              "membership to the caller, or gates an organisation's rows by the caller's membership of any "
              "organisation.",
      why="The function reads past RLS and trusts its own check: `exists (select 1 from organization_members m "
          "where m.organization_id = p_org and (m.user_id = auth.uid() or m.role = 'owner'))` holds for every "
          "organisation that has an owner, so any signed-in user passes it for any organisation. BP054 reads the "
          "same shape in the helpers policies call. A membership read that is kept to the caller but to no "
          "organisation, joined to the rows (`from projects p join organization_members m on m.user_id = "
          "auth.uid() where p.organization_id = p_org`) or in a sub-query of their filter (`and exists (select 1 "
          "from organization_members m where m.user_id = auth.uid())`), holds for a member of any organisation: "
          "they read p_org's rows too.",
      bad="if not exists (select 1 from public.organization_members m where m.organization_id = p_org\n"
          "                and (m.user_id = auth.uid() or m.role = 'owner')) then raise exception 'no'; end if;",
      fix="Pin the membership to the caller in every branch: m.user_id = (select auth.uid()) and (m.role = "
          "'owner' or ...), and to the row's organisation (m.organization_id = p.organization_id), or call the "
          "helper the policies use (p_org = any (array(select private.organization_ids_with_role('viewer')))).")
def definer_membership_check_not_tied_to_caller(r, s: Schema) -> Iterator:
    members = membership_tables(s)
    if not members:
        return
    for f, through in client_definers(s):
        if not set(f.reads or ()) & members:
            continue
        loose = _loose_checks(s, f, members)
        if loose:
            yield r.finding(f"Definer function {f.qualified} checks {', '.join(loose)} with a branch that does not "
                            f"keep the membership to the caller; clients reach it through {through}.", f.qualified,
                            location=f.location)
            continue
        unbound = _unbound_gates(s, f, members)
        if unbound:
            table, gated = unbound[0]
            yield r.finding(f"Definer function {f.qualified} reads {gated} rows behind the caller's {table} row of any "
                            f"organisation: nothing ties that membership to the rows' organisation; clients reach it "
                            f"through {through}.", f.qualified, location=f.location)


def _compared_with_itself(reading, name: str) -> bool:
    """`x = x` or `t.x = x` in the body, where the bare x was meant as the parameter."""
    for tree in reading.trees:
        for kind, body in nodes(tree):
            sides = equated_columns(body) if kind == "A_Expr" else None
            if sides and all(side[-1:] == [name] for side in sides) and any(len(side) == 1 for side in sides):
                return True
    return False


@rule("BP069", "definer_parameter_hidden_by_column", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A SECURITY DEFINER function clients call names a parameter like a column of a table its query reads, "
              "and compares the column with the bare name: PostgreSQL takes the column, so the test always holds.",
      why="In an SQL function (and in PL/pgSQL under #variable_conflict use_column) a bare name that is both a "
          "column of the query's table and a parameter is the column. `project_names(organization_id uuid)` that "
          "checks `project_names.organization_id` against the caller's organisations, then returns `where "
          "p.organization_id = organization_id`, compares the column with itself: the caller passes the check "
          "with their own organisation and gets every organisation's rows.",
      bad="create function private.project_names(organization_id uuid) returns setof text language sql "
          "security definer set search_path = '' as $$\n  select p.name from public.projects p where "
          "p.organization_id = organization_id\n  and project_names.organization_id = any (array(select "
          "private.organization_ids_with_role('viewer'))) $$;",
      fix="Name parameters apart from columns (p_organization_id), or qualify every use (project_names."
          "organization_id) or write $1.")
def definer_parameter_hidden_by_column(r, s: Schema) -> Iterator:
    for f, through in client_definers(s):
        found = body_facts(s, f) if f._body is not None and f._body.params else None
        if found is None or not found[1].shadowed:
            continue
        reading, facts = found
        # Hidden where it was meant: compared with its own column (`p.organization_id = organization_id`), a test
        # that always holds. A column named like a parameter the body reads as $1 is the column on purpose.
        hidden = [f"{reading.params[i - 1][0]} (hidden by {column})" for i, column in sorted(facts.shadowed.items())
                  if _compared_with_itself(reading, reading.params[i - 1][0])]
        if not hidden:
            continue
        yield r.finding(f"Definer function {f.qualified} uses {', '.join(hidden)} bare: the column is read, not "
                        f"the argument; clients reach it through {through}.", f.qualified, location=f.location)


def _role_inputs(reading, members: dict[str, str]) -> list[tuple[str, str]]:
    """(membership table, parameter) for each write of the column `members` names for the table (its role, or its
    organisation) with a parameter as it is: insert ... values (..., p_role), insert ... select ..., p_role,
    update ... set role = p_role."""
    params = {name for name, _ in reading.params if name} | {f"${i}" for i in range(1, len(reading.params) + 1)}
    out: list[tuple[str, str]] = []

    def named(value) -> str | None:
        while isinstance(value, dict) and "TypeCast" in value:
            value = value["TypeCast"].get("arg")
        if isinstance(value, dict) and ("CoalesceExpr" in value or "CaseExpr" in value):
            # coalesce(p_role, 'member'), case when ... then p_role end: the argument passes through
            body = value.get("CoalesceExpr") or value.get("CaseExpr") or {}
            arms = body.get("args") or []
            results = [(a.get("CaseWhen") or {}).get("result", a) for a in arms] + [body.get("defresult")]
            return next((n for a in results if (n := named(a))), None)
        if isinstance(value, dict) and "ColumnRef" in value:
            names = strings(value["ColumnRef"].get("fields"))
            name = names[-1] if names and (len(names) == 1 or names[0] == reading.name) else None
            return name if name in params else None
        if isinstance(value, dict) and "ParamRef" in value:
            return f"${value['ParamRef'].get('number', 0)}"
        return None

    for tree in reading.trees:
        for kind, body in nodes(tree):
            if kind not in ("InsertStmt", "UpdateStmt"):
                continue
            rv = body.get("relation") or {}
            rel = qualified(rv, reading.default_schema)
            role = members.get(rel)
            if role is None:
                continue
            if kind == "UpdateStmt":
                hits = [named(t["ResTarget"].get("val")) for t in body.get("targetList") or []
                        if (t.get("ResTarget") or {}).get("name") == role]
            else:
                cols = [(c.get("ResTarget") or {}).get("name") for c in body.get("cols") or []]
                if role not in cols:
                    continue
                at = cols.index(role)
                select = (body.get("selectStmt") or {}).get("SelectStmt") or {}
                rows = [(r.get("List") or {}).get("items") or [] for r in select.get("valuesLists") or []]
                rows += [[(t.get("ResTarget") or {}).get("val") for t in select.get("targetList") or []]]
                hits = [named(row[at]) for row in rows if len(row) > at]
            out += [(rel, p) for p in hits if p and (rel, p) not in out]
    return out


def _compared(reading, param: str) -> bool:
    """The body tests the parameter (a comparison, IN, a function it is passed to) before trusting it."""
    for tree in reading.trees:
        for kind, body in nodes(tree):
            if kind == "A_Expr" and strings(body.get("name")) != ["||"]:
                sides = (body.get("lexpr"), body.get("rexpr"))
            elif kind == "FuncCall":
                sides = tuple(body.get("args") or ())
            else:
                continue
            for side in sides:
                for k, b in nodes(side):
                    if k == "ColumnRef" and strings(b.get("fields"))[-1:] == [param] or \
                            k == "ParamRef" and f"${b.get('number', 0)}" == param:
                        return True
    return False


def _asks_for_owner(reading) -> bool:
    """The body names the owner role ('owner', as has_role_on_account(id, 'owner') or m.role = 'owner' does)."""
    return any(k == "A_Const" and (b.get("sval") or {}).get("sval") in ("owner", "owners", "primary_owner")
               for tree in reading.trees for k, b in nodes(tree))


@rule("BP070", "definer_writes_role_unchecked", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A SECURITY DEFINER function clients call writes a member's role from its argument without comparing "
              "it with anything.",
      why="The function writes memberships past RLS, so its body alone keeps roles in check. `add_teammate(p_org, "
          "p_user, p_role)` that only checks the caller is a member, then inserts (or upserts) `p_role`, lets a "
          "plain member make themselves, or anyone, the owner. BP029 reads the clients' own writes of the table.",
      bad="insert into public.organization_members (organization_id, user_id, role) values (p_org, p_user, p_role)\n"
          "on conflict (organization_id, user_id) do update set role = excluded.role;  -- p_role never compared",
      fix="Compare the role with the caller's before writing it (refuse p_role above the caller's own role, and "
          "owner unless the caller is the owner), or take no role argument and write the default role. A body "
          "that names the owner role (an owners-only function) is given the benefit of the doubt.")
def definer_writes_role_unchecked(r, s: Schema) -> Iterator:
    # A body naming the owner role lets only owners through: every role is within their rank.
    for f, through, rel, column, p in _unchecked_membership_writes(s, role_column, _asks_for_owner):
        yield r.finding(f"Definer function {f.qualified} writes {rel}.{column} from {p} without comparing it with "
                        f"the caller's role; clients reach it through {through}.", f.qualified, location=f.location)


def _unchecked_membership_writes(s: Schema, column_of, passes=lambda reading: False) -> Iterator:
    """(function, how clients reach it, membership table, column, parameter): the first write of the membership
    column `column_of(table)` names from a parameter the body never compares, in each definer function clients
    reach whose body `passes` does not excuse."""
    members = {}
    for name in membership_tables(s):
        t = s.table(*name.split(".", 1)[::-1])
        column = column_of(t) if t is not None else None
        if column:
            members[name] = column
    if not members:
        return
    for f, through in client_definers(s):
        reading = f._body
        if reading is None or not reading.params or not set(f.writes or ()) & set(members) or passes(reading):
            continue
        loose = [(rel, p) for rel, p in _role_inputs(reading, members) if not _compared(reading, p)]
        if loose:
            rel, p = loose[0]
            yield f, through, rel, members[rel], p


def _picked_by_argument(s: Schema, f: Function) -> list[tuple[str, str | None, str]]:
    """(table, parameter, how) for each statement of the body on a tenant table that picks rows by a parameter
    (`where id = p_project`, `= any (p_ids)`, an upsert's conflict key, a MERGE's join) and never tests the table's
    tenant key ("picks": whatever organisation those rows belong to), whose filter names none of the table's columns
    ("unfiltered", no parameter: `where p_org = any (<the caller's>)`, every row), or whose test of the tenant key
    a null parameter opens ("null": `p_org is null or organization_id = p_org`). A pick by a secret column (`where
    token = p_token`) is a capability and passes, and so is a pick whose row's organisation the body reads and
    compares first (`select organization_id into v_org ... where id = p_project; if not v_org = any (...)`)."""
    reading = f._body
    if reading is None:
        return []
    params = _arguments(reading)
    made = {**_argument_values(s, reading, params), **params}
    authorised = authorised_picks(s, reading, params)
    fresh = _inserted_keys(s, reading)
    out: list[tuple[str, str | None, str]] = list(_row_argument_picks(s, reading))
    for tree in reading.trees:
        for kind, body in nodes(tree):
            for t, alias, where, extra in _statement_filters(s, reading, kind, body, params):
                if kind == "SelectStmt" and _callers_own_memberships(s, t, where, reading):
                    continue  # reading the caller's own memberships, whichever organisation the argument names
                if t.qualified not in membership_tables(s) and \
                        _addressed_to_caller(s, t, alias, where, reading, tree, kind, body):
                    continue  # a row addressed to the caller (an invitation to their e-mail), whichever organisation
                columns = {c.name for c in t.columns}
                top = outside_subqueries(where) if where is not None else []
                own = [strings(b.get("fields")) for k, b in top if k == "ColumnRef"]
                own = [c for c in own if c and c[-1] in columns and (len(c) == 1 or c[0] == alias)]
                unchecked = _unchecked_ties(s, where, t.tenant_key, params, reading, tree)
                if any(c[-1] == t.tenant_key for c in own) and not unchecked:
                    escape = _null_escape(where, top, t.tenant_key, params, reading, tree)
                    if escape is not None and (t.qualified, escape, "null") not in out:
                        out.append((t.qualified, escape, "null"))
                    elif escape is None and _unkeyed_branch(s, t, where, alias) and \
                            (t.qualified, None, "branch") not in out:
                        out.append((t.qualified, None, "branch"))
                    continue
                picks = list(extra)
                given = {name: p for name, p in {**made, **_argument_sources(s, reading, kind, body, made)}.items()
                         if fresh.get(name) != t.qualified}
                for k, b in top:
                    for col, param in _picked_pairs(s, reading, k, b, given):
                        if col[-1] in columns and (len(col) == 1 or col[0] == alias) and col[-1] != t.tenant_key:
                            picks.append((col[-1], param))
                for col, param in picks:
                    if not _secret_column(t, col) and (t.qualified, param) not in authorised and \
                            (t.qualified, param, "picks") not in out:
                        out.append((t.qualified, param, "picks"))
                if where is not None and not own and not picks and (t.qualified, None, "unfiltered") not in out:
                    out.append((t.qualified, None, "unfiltered"))
    return out


def _inserted_keys(s: Schema, reading) -> dict[str, str]:
    """variable -> table, for each variable set only by `insert into <table> ... returning <one column> into v`
    (no ON CONFLICT, whose RETURNING may name a row already there): it names the row the body has just made, in the
    organisation the insert wrote, so a later pick by it (`update invitations set role = ... where id = v_id`)
    reaches no row of another organisation. Such a variable was once excused only by chance (its statement calls
    auth.uid(), which made it "the caller's"), until evasion round 18 e03 narrowed what addresses a row to the
    caller."""
    out: dict[str, str] = {}
    other: set[str] = set()
    for at, names in reading.into:
        kind, body = only_statement(reading.trees[at]) if at < len(reading.trees) else ("", {})
        relation = body.get("relation") if kind == "InsertStmt" else None
        if isinstance(relation, dict) and len(names) == 1 and len(body.get("returningList") or []) == 1 and \
                not body.get("onConflictClause") and names[0] not in other and _made_key(s, reading, body) and \
                out.get(names[0], qualified(relation, reading.default_schema)) == \
                qualified(relation, reading.default_schema):
            out[names[0]] = qualified(relation, reading.default_schema)
        else:
            other |= set(names)
    return {name: table for name, table in out.items() if name not in other}


def _made_key(s: Schema, reading, insert: dict) -> bool:
    """The one column an INSERT returns identifies the row it made: a single-column key of the table (its primary
    key, a unique constraint or a unique index without a predicate). The insert succeeded, so no other row holds the
    value it wrote there (a NULL picks no row), whether a default or the caller chose it. Any other column holds
    whatever the insert wrote, an argument echoed back that may name any row (evasion round 19 e06: `returning
    parent_id into v_parent; update tasks ... where id = v_parent`)."""
    target = (insert.get("returningList") or [{}])[0].get("ResTarget") or {}
    ref = strings(((target.get("val") or {}).get("ColumnRef") or {}).get("fields")) \
        if isinstance(target.get("val"), dict) else []
    relation = insert.get("relation") or {}
    schema, _, name = qualified(relation, reading.default_schema).partition(".")
    t = s.table(name, schema)
    column = t.column(ref[-1]) if t is not None and ref and (len(ref) == 1 or ref[0] in (
        relation.get("relname"), (relation.get("alias") or {}).get("aliasname"))) else None
    return column is not None and (
        any(c.kind in ("primary key", "unique") and c.columns == [column.name] for c in t.constraints) or
        any(i.unique and not i.where and i.columns == [column.name] for i in t.indexes))


def _addressed_to_caller(s: Schema, t: Table, alias: str, where, reading, tree=None, kind: str = "",
                         body: dict | None = None) -> bool:
    """The filter keeps the rows to ones addressed to the caller, whichever organisation they name, as the same pick
    by a secret token is: a conjunct equating a column of the row with the caller's verified e-mail (`lower(i.email)
    = lower(auth.jwt() ->> 'email')`, auth.email(): evasion round 16 fp07, accept_invitation by the invitation's id
    and the caller's e-mail), or, on a table without a tenant key (the caller's own profile), with their id
    (`user_id = auth.uid()`, a variable holding it). Not read for a membership table, whose rows are the caller's
    powers in the organisation they name. On a tenant table a column naming a user (assignee_id, reviewer_id,
    user_id, updated_by, created_by) is no organisation test: it keeps naming them after their membership ends, so
    the pin lets an assignee removed from the organisation read and overwrite its task (evasion round 18 e03; round
    17 e01 for authors). An invitation addressed to an e-mail is for someone outside the organisation by purpose,
    and is gone once accepted."""
    callers = _caller_variables(reading, ("auth.uid",)) if not t.tenant_key else set()

    def own(node) -> bool:
        node = _unwrap_text(node)
        ref = strings(((node or {}).get("ColumnRef") or {}).get("fields")) if isinstance(node, dict) else []
        return bool(ref) and t.column(ref[-1]) is not None and (len(ref) == 1 or ref[0] == alias)

    def callers_value(node) -> bool:
        node = _unwrap_text(node)
        if not isinstance(node, dict):
            return False
        ref = strings((node.get("ColumnRef") or {}).get("fields"))
        if ref:
            return len(ref) == 1 and ref[0] in callers
        call = node.get("FuncCall")
        if isinstance(call, dict) and not call.get("args"):
            return function_name(call) == "auth.email" or function_name(call) == "auth.uid" and not t.tenant_key
        e = node.get("A_Expr")
        if isinstance(e, dict) and strings(e.get("name")) == ["->>"] and const(e.get("rexpr")) == "email":
            claims = _unwrap_text(e.get("lexpr"))
            call = claims.get("FuncCall") if isinstance(claims, dict) else None
            return isinstance(call, dict) and function_name(call) == "auth.jwt" and not call.get("args")
        return False

    if t.tenant_key and not _consumed(s, t, reading, tree, kind, body or {}, where):
        return False  # an assignee's e-mail outlives their membership as assignee_id does (evasion round 19 e05)
    for conjunct in boolean_args(where, "AND_EXPR") if where is not None else []:
        e = conjunct.get("A_Expr") if isinstance(conjunct, dict) else None
        sides = (e.get("lexpr"), e.get("rexpr")) if isinstance(e, dict) and e.get("kind") == "AEXPR_OP" and \
            strings(e.get("name")) == ["="] else ()
        if sides and any(own(a) and callers_value(b) for a, b in (sides, sides[::-1])):
            return True
    return False


_SPENT = re.compile(r"accept|(^|_)used|consum|redeem|claimed", re.IGNORECASE)


def _consumed(s: Schema, t: Table, reading, tree, kind: str, body: dict, where) -> bool:
    """The body uses up the very row it picks by the caller's e-mail, as an invitation is used up: the pick deletes
    it, a later DELETE of the table names the same row (its key equated with the variable the pick read the row into,
    or with the argument the pick tied that key to), a membership is inserted from the variable the pick filled, or
    an UPDATE of that same row marks it spent (`set accepted_at = now()`) while the pick refuses rows already marked
    (`and accepted_at is null`). Only such a row is addressed to someone outside the organisation by purpose and
    cannot outlive it; a task or ticket kept by its assignee's e-mail goes on naming them after their membership ends
    (evasion round 19 e05). Any DELETE, membership INSERT or "spent"-named column anywhere once passed, so a task
    whose `claimed_at = coalesce(claimed_at, now())` stayed the removed assignee's (evasion round 20 e03): a mark
    the pick does not test, or a coalesce keeping the old value, lets the same row be picked again."""
    if kind == "DeleteStmt":
        return True
    at = next((i for i, x in enumerate(reading.trees) if x is tree), None)
    held = {name for i, names in reading.into if i == at for name in names}
    names = {t.name, (body.get("relation") or {}).get("relname"),
             ((body.get("relation") or {}).get("alias") or {}).get("aliasname")}

    def column_of(node, names=names) -> str | None:
        ref = strings(((unwrap(node) or {}).get("ColumnRef") or {}).get("fields")) if isinstance(
            unwrap(node), dict) else []
        return ref[-1] if ref and t.column(ref[-1]) is not None and (len(ref) == 1 or ref[0] in names) else None

    def equalities(w, names=names) -> list[tuple[str, list[str]]]:
        out = []
        for conjunct in boolean_args(w, "AND_EXPR") if w is not None else []:
            e = conjunct.get("A_Expr") if isinstance(conjunct, dict) else None
            if isinstance(e, dict) and e.get("kind") == "AEXPR_OP" and strings(e.get("name")) == ["="]:
                for a, b in ((e.get("lexpr"), e.get("rexpr")), (e.get("rexpr"), e.get("lexpr"))):
                    col = column_of(a, names)
                    value = unwrap(b)
                    ref = strings((value.get("ColumnRef") or {}).get("fields")) if isinstance(value, dict) else []
                    if col and ref and column_of(b, names) is None:
                        out.append((col, ref))
        return out

    tied = {(col, ref[0]) for col, ref in equalities(where) if len(ref) == 1}

    def same_row(statement: dict) -> bool:
        relation = statement.get("relation") or {}
        here = {t.name, relation.get("relname"), (relation.get("alias") or {}).get("aliasname")}
        return any(ref[0] in held or len(ref) == 1 and (col, ref[0]) in tied
                   for col, ref in equalities(statement.get("whereClause"), here))

    def refuses(column: str) -> bool:
        for conjunct in boolean_args(where, "AND_EXPR") if where is not None else []:
            test = conjunct.get("NullTest") if isinstance(conjunct, dict) else None
            if isinstance(test, dict) and test.get("nulltesttype") == "IS_NULL" and column_of(test.get("arg")) == column:
                return True
            b = conjunct.get("BooleanTest") if isinstance(conjunct, dict) else None
            if isinstance(b, dict) and b.get("booltesttype") in ("IS_FALSE", "IS_NOT_TRUE") and \
                    column_of(b.get("arg")) == column:
                return True
            n = conjunct.get("BoolExpr") if isinstance(conjunct, dict) else None
            if isinstance(n, dict) and n.get("boolop") == "NOT_EXPR" and len(n.get("args") or []) == 1 and \
                    column_of(n["args"][0]) == column:
                return True
        return False

    def marks(update: dict) -> bool:
        for target in update.get("targetList") or []:
            res = target.get("ResTarget") or {}
            column = res.get("name") or ""
            value = unwrap(res.get("val"))
            kept = isinstance(value, dict) and isinstance(value.get("CoalesceExpr"), dict) and \
                column_of((value["CoalesceExpr"].get("args") or [None])[0]) == column
            if _SPENT.search(column) and not kept and refuses(column):
                return True
        return False

    if kind == "UpdateStmt" and marks(body):
        return True
    members = membership_tables(s)
    for other in reading.trees:
        for k, statement in nodes(other):
            relation = statement.get("relation") if k in ("InsertStmt", "UpdateStmt", "DeleteStmt") else None
            if not isinstance(relation, dict):
                continue
            table = qualified(relation, reading.default_schema)
            if k == "InsertStmt" and table in members and held and any(
                    strings(ref.get("fields"))[:1] and strings(ref.get("fields"))[0] in held
                    for key, ref in nodes(statement) if key == "ColumnRef"):
                return True
            if table == t.qualified and k == "DeleteStmt" and same_row(statement):
                return True
            if table == t.qualified and k == "UpdateStmt" and same_row(statement) and marks(statement):
                return True
    return False


def _unwrap_text(node: Any) -> Any:
    """The value inside casts, one-value sub-selects and case folding (`lower((select auth.jwt()) ->> 'email')`)."""
    while True:
        node = unwrap(node)
        link = node.get("SubLink") if isinstance(node, dict) else None
        value = lone_value((link.get("subselect") or {}).get("SelectStmt")) \
            if isinstance(link, dict) and link.get("subLinkType") == "EXPR_SUBLINK" else None
        call = node.get("FuncCall") if isinstance(node, dict) else None
        args = (call or {}).get("args") or [] if isinstance(call, dict) else []
        if value is not None:
            node = value
        elif isinstance(call, dict) and function_name(call).split(".")[-1] in ("lower", "upper", "btrim", "trim") \
                and len(args) == 1:
            node = args[0]
        else:
            return node


def _row_argument_picks(s: Schema, reading) -> Iterator[tuple[str, str, str]]:
    """(table, `p.<field>`, "row") where a parameter has a tenant table's row type (`p public.projects`, a
    PostgREST computed column), the body tests the row's tenant key (`p.organization_id = any (<the caller's>)`)
    and equates it with no stored row's column, and a statement picks rows by another of its fields (`where
    s.project_id = p.id`). Every field of a row argument is the client's: PostgREST calls the function as an RPC
    with whatever row the client builds (evasion round 11, e02: `{"id": <A's project>, "organization_id": <B>}`)."""
    names = {name for name, _ in reading.params if name}
    for name, typ in reading.params:
        schema, _, table = typ.rpartition(".")
        t = s.table(table, schema or reading.default_schema) if name else None
        if t is None or not is_tenant(t):
            continue
        key, tested, tied, picks = t.tenant_key, False, False, []
        for tree in reading.trees:
            relations = {(b.get("alias") or {}).get("aliasname") or b.get("relname", ""):
                         qualified(b, reading.default_schema) for k, b in nodes(tree) if k == "RangeVar"}
            if name in relations:
                continue  # `p` is a relation's alias here
            for kind, body in nodes(tree):
                if kind == "ColumnRef" and strings(body.get("fields")) == [name, key]:
                    tested = True
                sides = equated_columns(body) if kind == "A_Expr" else None
                for mine, other in (sides, sides[::-1]) if sides else ():
                    if len(mine) != 2 or mine[0] != name or not other or other[0] == name or \
                            (len(other) == 1 and (other[0] in names or other[0] in reading.variables)):
                        continue
                    if mine[1] == key:
                        tied = True
                    elif len(other) == 2 and other[0] in relations:
                        picks.append((relations[other[0]], f"{name}.{mine[1]}"))
                    elif len(relations) == 1:
                        picks.append((next(iter(relations.values())), f"{name}.{mine[1]}"))
        if tested and not tied and picks:
            yield picks[0][0], picks[0][1], "row"


def _unkeyed_branch(s: Schema, t: Table, where, alias: str) -> bool:
    """The filter has an OR branch that picks rows by other columns of the table and tests its tenant key nowhere:
    `organization_id = p_org and name ilike q or notes ilike q` (AND binds before OR) reads every organisation's
    rows whose notes match (evasion round 10 e02). A branch testing no column of the table (`p_org is null`: the
    null escape's), reading a sub-query or calling a function of the app's (either may tie it), or picking the rows
    of a user (`ms.user_id = _viewer or public.is_gym_staff(ms.gym_id, _viewer)`: a member's own subscription, the
    fphunt's kruxt) is left alone."""
    from ...model.tenant_keys import user_columns, user_tables
    key, columns = t.tenant_key, {c.name for c in t.columns}
    users = set(_once("user columns", t, lambda: user_columns(t, user_tables(s.tables))))

    def mine(b) -> list[str] | None:
        ref = strings(b.get("fields"))
        return ref if ref and ref[-1] in columns and (len(ref) == 1 or ref[0] == alias) else None

    def unkeyed(value) -> bool:
        op = (value.get("BoolExpr") or {}).get("boolop") if isinstance(value, dict) else None
        if op == "AND_EXPR":
            return all(unkeyed(a) for a in value["BoolExpr"].get("args") or [])
        if op == "OR_EXPR":
            return any(unkeyed(a) for a in value["BoolExpr"].get("args") or [])
        found = list(nodes(value))
        refs = [ref for k, b in found if k == "ColumnRef" and (ref := mine(b))]
        return bool(refs) and all(ref[-1] != key and ref[-1] not in users for ref in refs) and \
            not any(k == "SubLink" or (k == "FuncCall" and find_function(s, function_name(b)) is not None)
                    for k, b in found)

    return isinstance(where, dict) and unkeyed(where)


def _callers_own_memberships(s: Schema, t: Table, where, reading) -> bool:
    """A filter of the membership table that keeps its user column to the caller (`m.user_id = (select
    auth.uid())`, or a variable holding it): has_role(p_org, p_role) reads the caller's own role there, which
    no argument turns into another user's (fphunt: BP073 said it never tests the organisation)."""
    if where is None or t.qualified not in membership_tables(s):
        return False
    from ...model.tenant_keys import member_column, user_tables
    user = member_column(t, t.tenant_key, user_tables(s.tables))
    callers = _caller_variables(reading, ("auth.uid",))
    for x in boolean_args(where, "AND_EXPR"):
        e = x.get("A_Expr") if isinstance(x, dict) else None
        if not isinstance(e, dict) or strings(e.get("name")) != ["="]:
            continue
        sides = (unwrap(e.get("lexpr")), unwrap(e.get("rexpr")))
        for a, b in (sides, sides[::-1]):
            if strings(((a or {}).get("ColumnRef") or {}).get("fields"))[-1:] == [user] and (
                    any(k == "FuncCall" and function_name(v) == "auth.uid" for k, v in nodes(b)) or
                    strings(((b or {}).get("ColumnRef") or {}).get("fields")) in ([c] for c in callers)):
                return True
    return False


def _unchecked_ties(s: Schema, where, key: str, params: dict[str, str], reading, tree) -> list[str]:
    """The arguments the filter's every test of the tenant key compares it with (`organization_id = p_from_org`)
    when nothing tests them: not another conjunct of the same filter (`and p_org in (select <the caller's>)`), nor
    another statement (a check, a WHERE, a call standing alone; a log line is no test). Such a tie names an
    organisation the caller chose and nobody checked (evasion round 6, e02: a move checked the destination only,
    and `where id = p_project and organization_id = p_from_org` took any organisation's project). A comparison of
    the key with a value that cannot know who calls (`organization_id = private.project_org(p_project)`, a
    sub-query keyed by the argument: the row's own organisation, evasion round 16 e08) tests nothing; when every
    test of the key is such, the arguments it is made of are returned. [] when some test of the key is anything
    else (the caller's organisations, a checked argument)."""
    found: list[str] = []
    ties: list[Any] = []
    blind: list[str] | None = None  # the arguments of tests that cannot know who calls, when there are some
    conjuncts = boolean_args(where, "AND_EXPR") if where is not None else []
    for c in conjuncts:
        if not any(k == "ColumnRef" and strings(b.get("fields"))[-1:] == [key] for k, b in nodes(c)):
            continue
        sides = equated_columns(c["A_Expr"]) if isinstance(c, dict) and "A_Expr" in c else None
        pair = next(((col, arg) for col, arg in ((sides, sides[::-1]) if sides else ())
                     if col and col[-1] == key and arg and len(arg) == 1 and arg[0] in params), None)
        if pair is None:
            made_of = _row_own_value(s, c, key, params, reading, tree)
            if made_of is None:
                return []
            blind = (blind or []) + [params[n] for n in made_of if params[n] not in (blind or [])]
            continue
        found.append(pair[1][0])
        ties.append(c)
    if not found:
        return [] if blind is None else blind or [key]
    names = {n for f in found for n in (f, params[f])}

    def names_one(node) -> bool:  # the argument, a copy's parameter, or `fname.param`
        return mentions_variables(node, names) or any(
            k == "ColumnRef" and strings(b.get("fields"))[:1] == [reading.name] and
            strings(b.get("fields"))[1:2] and strings(b.get("fields"))[1] in names for k, b in nodes(node))
    if any(names_one(c) for c in conjuncts if not any(c is t for t in ties)):
        return []
    index = next((i for i, t in enumerate(reading.trees) if t is tree), None)
    return [] if tested(reading, names_one, index) else [params[n] for n in found]


def _row_own_value(s: Schema, conjunct, key: str, params: dict[str, str], reading, tree) -> list[str] | None:
    """The arguments (maybe none) a comparison of the tenant key is made of when its other side cannot know who
    calls: built of functions and sub-queries that never ask (`private.project_org(p_project)`, `(select
    organization_id from projects where id = p_project)`), arguments and columns appearing only inside them. None
    for anything else: a bare argument, variable or column (a tie, a value a check tested, another row's value), a
    constant, a call that may ask who calls (a membership helper, auth.uid()), a test that is no comparison. A
    variable set only from such values and tested nowhere else (`v_org := private.project_org(p_project)`) is one
    too: `tree` is the statement holding the comparison."""
    e = conjunct.get("A_Expr") if isinstance(conjunct, dict) else None
    link = conjunct.get("SubLink") if isinstance(conjunct, dict) else None
    if isinstance(link, dict) and link.get("subLinkType") == "ANY_SUBLINK" and \
            strings(link.get("operName")) in ([], ["="]):
        sides = (unwrap(link.get("testexpr")), link.get("subselect"))  # organization_id in (select ...)
    elif isinstance(e, dict) and e.get("kind") in ("AEXPR_OP", "AEXPR_OP_ANY", "AEXPR_IN") and \
            strings(e.get("name")) == ["="]:
        sides = (unwrap(e.get("lexpr")), unwrap(e.get("rexpr")))
    else:
        return None
    for mine, other in (sides, sides[::-1]):
        if strings(((mine or {}).get("ColumnRef") or {}).get("fields"))[-1:] != [key]:
            continue
        found = list(nodes(other))
        if not any(k in ("FuncCall", "SubLink", "ColumnRef") for k, _ in found):
            return None  # a constant: one organisation named, not the row's own
        made_of: list[str] = []
        # the rows of an IN sub-query are read inside it, as a scalar sub-query's are
        at = next((i for i, t in enumerate(reading.trees) if t is tree), None)
        if _blind(s, other, params, reading, isinstance(link, dict), made_of, at):
            return made_of
    return None


def _blind(s: Schema, value: Any, params: dict[str, str], reading, inside: bool, made_of: list[str],
           at: int | None = None, visiting: frozenset[str] = frozenset()) -> bool:
    """`value` cannot know who calls (`_row_own_value`); `inside`: within a call's arguments or a sub-query, where
    an argument is what the value is made of, not the value itself. Collects those arguments into `made_of`. A
    variable is blind where each value set into it is, and no statement but the one at `at` tests it."""
    if isinstance(value, list):
        return all(_blind(s, v, params, reading, inside, made_of, at, visiting) for v in value)
    if not isinstance(value, dict):
        return True
    if len(value) == 1:
        kind, body = next(iter(value.items()))
        if kind == "SQLValueFunction":
            return False  # current_user, session_user: the request's role
        if kind == "ParamRef":
            return inside
        if kind == "ColumnRef":
            ref = strings(body.get("fields"))
            name = ref[1] if len(ref) > 1 and ref[0] == reading.name else ref[0] if ref else ""
            if name in params:
                made_of.append(name)
                return inside
            if name in reading.variables:
                return _blind_variable(s, name, params, reading, made_of, at, visiting)
            # a column standing alone may be another row's (`excluded.organization_id`, a MERGE source's): a value
            # the statement brings, not read here
            return inside
        if kind == "FuncCall":
            name = function_name(body)
            if _knows_caller(s, name):
                return False
            inside = True
        elif kind == "SubLink":
            inside = True
    return all(_blind(s, v, params, reading, inside, made_of, at, visiting) for v in value.values()
               if isinstance(v, dict | list))


def _blind_variable(s: Schema, name: str, params: dict[str, str], reading, made_of: list[str], at: int | None,
                    visiting: frozenset[str]) -> bool:
    """Every value the body sets into the variable cannot know who calls (`select organization_id into v_org from
    projects where id = p_project`, `v_org := private.project_org(p_project)`), and no statement but the one at `at`
    tests it (`if not v_org = any (<the caller's>)` makes it a checked value)."""
    sets = [i for i, names in reading.into if name in names]
    if name in visiting or not sets or any(i >= len(reading.trees) for i in sets):
        return False
    for i in sets:
        select = into_select(reading, i)
        if select is None or any(k in WRITES for k, _ in nodes(reading.trees[i])) or \
                not _blind(s, {"SelectStmt": select}, params, reading, True, made_of, at, visiting | {name}):
            return False
    return not tested(reading, lambda node: mentions_variables(node, {name}), at)


def _knows_caller(s: Schema, name: str, seen: frozenset[str] = frozenset()) -> bool:
    """A function whose answer may depend on who calls: auth.uid() and the like, the session's settings, one the
    audit cannot read, or one calling such a function, however deep. A helper of the app's that reads rows by its
    arguments only (`select organization_id from projects where id = p_project`) does not."""
    f = find_function(s, name)
    if f is None:
        return names_the_caller(name) and name.split(".")[0] not in ("pg_catalog", "extensions")
    if f.language not in ("sql", "plpgsql") or f.calls is None or f.qualified in seen:
        return f.qualified not in seen
    return any(_knows_caller(s, inner, seen | {f.qualified}) for inner in f.calls)


def _null_escape(where, top: list, key: str, params: dict[str, str], reading, tree) -> str | None:
    """The argument whose NULL lets every row through a filter that otherwise keeps the rows to it: `(p_org is null
    or organization_id = p_org)` or `organization_id = coalesce(p_org, organization_id)`. A membership check
    `if not (p_org = any (...))` passes a NULL too (NULL = any (...) is NULL, and IF takes it for false). None when
    the body tests the argument for NULL elsewhere (`if p_org is null or not (...) then raise`), or when another
    conjunct of the filter keeps the rows to some organisations as well (`and organization_id = any (<the
    caller's>)`)."""
    if sum(any(k == "ColumnRef" and strings(b.get("fields"))[-1:] == [key] for k, b in nodes(c))
           for c in boolean_args(where, "AND_EXPR")) > 1:
        return None

    def null_tested(value) -> set[str]:
        return {params[r[0]] for k, b in nodes(value) if k == "NullTest" and b.get("nulltesttype") == "IS_NULL"
                for r in [strings(((b.get("arg") or {}).get("ColumnRef") or {}).get("fields"))]
                if len(r) == 1 and r[0] in params}

    found = None
    for k, b in top:
        if k == "BoolExpr" and b.get("boolop") == "OR_EXPR":
            keyed_to = {params[a[-1]] for kk, bb in nodes(b.get("args")) if kk == "A_Expr"
                        for sides in [equated_columns(bb)] if sides for c, a in (sides, sides[::-1])
                        if c and a and c[-1] == key and len(a) == 1 and a[0] in params}
            found = found or next(iter(keyed_to & null_tested(b.get("args"))), None)
        elif k == "A_Expr":
            for side in (b.get("lexpr"), b.get("rexpr")):
                args = ((side or {}).get("CoalesceExpr") or {}).get("args") or [] if isinstance(side, dict) else []
                refs = [strings(((a or {}).get("ColumnRef") or {}).get("fields")) for a in args]
                if any(len(r) == 1 and r[0] in params for r in refs) and any(r[-1:] == [key] for r in refs):
                    found = found or next(params[r[0]] for r in refs if len(r) == 1 and r[0] in params)
    if found is None:
        return None
    elsewhere = [t for t in reading.trees if t is not tree]
    return None if any(found in null_tested(t) for t in elsewhere) else found


def _picked_pairs(s: Schema, reading, kind: str, body: dict, params: dict[str, str]) -> list[tuple[list[str], str]]:
    """(column parts, argument) of `column = <made of an argument>`, `column = any (...)` and `column in (select
    ...)`: `id = p_id`, `id = p_id::uuid`, `id = (p_doc ->> 'id')::uuid`, `id = r.id` of a record filled from an
    argument, `id in (select unnest(p_ids))` (evasion round 7, e03)."""
    if kind == "SubLink" and body.get("subLinkType") == "ANY_SUBLINK":
        col = strings(((body.get("testexpr") or {}).get("ColumnRef") or {}).get("fields"))
        param = _argument_made(s, reading, body.get("subselect"), params) if col else None
        return [(col, param)] if param else []
    if kind != "A_Expr" or strings(body.get("name")) != ["="] or body.get("kind") not in ("AEXPR_OP", "AEXPR_OP_ANY"):
        return []
    out = []
    for side, other in ((body.get("lexpr"), body.get("rexpr")), (body.get("rexpr"), body.get("lexpr"))):
        col = strings(((unwrap(side) or {}).get("ColumnRef") or {}).get("fields")) if isinstance(side, dict) else []
        if col and _argument_made(s, reading, side, params) is None:
            param = _argument_made(s, reading, other, params)
            if param:
                out.append((col, param))
    return out


# Sets of rows a FROM item makes of its arguments, not of a table: unnest(p_ids), jsonb_array_elements(p_rows),
# jsonb_to_recordset(p_rows) as x(id uuid, ...), jsonb_populate_record(null::t, p_doc).
_ROW_SOURCES = ("RangeFunction",)


def _argument_made(s: Schema, reading, value: Any, params: dict[str, str], scope: dict | None = None) -> str | None:
    """The argument an expression (or a sub-select) is made of, with no table read and no function of the schema's
    called: p_id, p_id::uuid, (p_doc ->> 'id')::uuid, r.id where r was filled from p_doc, (select unnest(p_ids)),
    (select (x ->> 'id')::uuid from jsonb_array_elements(p_rows) x). `scope`: the SELECT whose FROM items the
    expression's names may come from (an INSERT ... SELECT's). None when it reads anything else."""
    if not isinstance(value, dict):
        return None
    from_items = [item for k, b in nodes([value, (scope or {}).get("fromClause")]) if k == "SelectStmt"
                  for item in b.get("fromClause") or []] + list((scope or {}).get("fromClause") or [])
    if any(not isinstance(item, dict) or next(iter(item), None) not in _ROW_SOURCES for item in from_items):
        return None
    rows = {((item.get("RangeFunction") or {}).get("alias") or {}).get("aliasname") for item in from_items}
    found = None
    for kind, body in nodes([value, from_items]):
        if kind in ("RangeVar", "ParamRef"):
            return None
        if kind == "FuncCall" and find_function(s, function_name(body)) is not None:
            return None  # a function of the schema's may check what it is given
        if kind != "ColumnRef":
            continue
        ref = strings(body.get("fields"))
        if not ref:  # *
            continue
        if len(ref) == 2 and ref[0] == reading.name and ref[1] in params:
            found = found or params[ref[1]]
        elif ref and ref[0] in params:  # p_id, or a field of a record argument (or of a record filled from one)
            found = found or params[ref[0]]
        elif not (ref and ref[0] in rows) and not (from_items and len(ref) == 1):
            return None
    return found


def _argument_sources(s: Schema, reading, kind: str, body: dict, params: dict[str, str]) -> dict[str, str]:
    """alias -> argument for each FROM item of an UPDATE (USING item of a DELETE) made of an argument, not of a
    table: `update projects p set ... from jsonb_to_recordset(p_rows) as x(id uuid, name text) where p.id = x.id`,
    `from (select p_id as id) x`."""
    items = body.get("fromClause") if kind == "UpdateStmt" else body.get("usingClause") if kind == "DeleteStmt" \
        else None
    out: dict[str, str] = {}
    for item in items or ():
        inner = next(iter(item.values()), None) if isinstance(item, dict) else None
        name = ((inner or {}).get("alias") or {}).get("aliasname") if isinstance(inner, dict) else None
        made = _argument_made(s, reading, {"SelectStmt": {"fromClause": [item]}}, params) \
            if "RangeFunction" in item else _argument_made(s, reading, inner.get("subquery"), params) \
            if "RangeSubselect" in item else None
        if name and made:
            out[name] = made
    return out


def _statement_filters(s: Schema, reading, kind: str, body: dict, params: dict[str, str]):
    """(tenant table, its alias, the filter that picks its rows, (column, parameter) picks the filter does not show)
    of the rows a statement reads or writes: a SELECT's tables, an UPDATE's or DELETE's relation (filter: the WHERE,
    None when there is none), an upsert's (its conflict key with the values inserted for it; filter: DO UPDATE's
    WHERE), a MERGE's (its join condition, through the source's columns)."""
    def table(rv):
        t = tenant_relation(s, rv.get("relname", ""), rv.get("schemaname") or reading.default_schema)
        alias = (rv.get("alias") or {}).get("aliasname") or rv.get("relname", "")
        return (t, alias) if t is not None and t.tenant_key else (None, alias)

    rvs = statement_relations(kind, body)
    for rv in rvs or ():
        t, alias = table(rv)
        if t is not None and body.get("whereClause") is not None:
            yield t, alias, body["whereClause"], ()
    if kind == "InsertStmt" and (body.get("onConflictClause") or {}).get("action") == "ONCONFLICT_UPDATE":
        t, alias = table(body.get("relation") or {})
        conflict = [(e.get("IndexElem") or {}).get("name") for e in
                    ((body["onConflictClause"].get("infer") or {}).get("indexElems") or [])]
        select = (body.get("selectStmt") or {}).get("SelectStmt") or {}
        values = select.get("valuesLists") or []
        columns = [(c.get("ResTarget") or {}).get("name") for c in body.get("cols") or []]
        if t is not None and t.tenant_key not in conflict:
            # each VALUES row, or the SELECT's output (insert ... select (x ->> 'id')::uuid, ... from
            # jsonb_array_elements(p_rows) x: evasion round 7, e04)
            rows = [((v.get("List") or {}).get("items") or [], None) for v in values] or \
                [([(r.get("ResTarget") or {}).get("val") for r in select.get("targetList") or []], select)]
            extra = [(col, param) for row, scope in rows for col, value in zip(columns, row) if col in conflict
                     for param in [_argument_made(s, reading, value, params, scope)] if param]
            yield t, alias, body["onConflictClause"].get("whereClause"), extra
    if kind == "MergeStmt":
        t, alias = table(body.get("relation") or {})
        source = body.get("sourceRelation") or {}
        named = {}  # the source's column -> the parameter it passes on
        sub = ((source.get("RangeSubselect") or {}).get("subquery") or {}).get("SelectStmt") or {}
        for target in sub.get("targetList") or []:
            res = target.get("ResTarget") or {}
            found = _parameters_in(res.get("val"), params)
            if res.get("name") and found:
                named[res["name"]] = params[found[0]]
        if t is not None:
            conditions = [body.get("joinCondition")] + [(w.get("MergeWhenClause") or {}).get("condition")
                                                        for w in body.get("mergeWhenClauses") or []]
            extra = []
            for k, b in nodes(body.get("joinCondition")):
                sides = equated_columns(b) if k == "A_Expr" else None
                for col, arg in (sides, sides[::-1]) if sides else ():
                    if len(arg) == 2 and arg[1] in named and col and (len(col) == 1 or col[0] == alias):
                        extra.append((col[-1], named[arg[1]]))
            yield t, alias, [c for c in conditions if c], extra


def _parameters_in(value: Any, params: dict[str, str]) -> list[str]:
    """Parameters a value is made of as they are: p_id, p_id::uuid, coalesce(p_id, gen_random_uuid())."""
    value = unwrap(value)
    if isinstance(value, dict) and "ColumnRef" in value:
        ref = strings(value["ColumnRef"].get("fields"))
        return [ref[0]] if len(ref) == 1 and ref[0] in params else []
    if isinstance(value, dict) and "CoalesceExpr" in value:
        return [p for arg in value["CoalesceExpr"].get("args") or [] for p in _parameters_in(arg, params)]
    return []


def authorised_picks(s: Schema, reading, params: dict[str, str]) -> set[tuple[str, str]]:
    """(table, parameter) where the body reads the organisation of the rows the parameter picks into a variable
    and compares it (select organization_id into v_org from projects where id = p_project; if not v_org = any
    (...)), or refuses unless the row it picks is one of the caller's organisations (`_refused_unless_held`): the
    rows it then picks by the same parameter are ones it checked."""
    out: set[tuple[str, str]] = _refused_unless_held(s, reading, params) | _run_only_if_held(s, reading, params)
    for index, names in reading.into:
        kind, select = "SelectStmt", into_select(reading, index)
        write = next(((k, b) for k, b in nodes(reading.trees[index]) if k in ("UpdateStmt", "DeleteStmt")), None)
        if write is not None:
            # update ... where id = p_project returning organization_id into v_org, then a RAISE unless v_org is
            # the caller's (an IF whose branch raises tests it): the exception rolls the write back
            if not any(mentions_variables(reading.trees[i], {names[0]}) for i in reading.guards if i != index):
                continue
            kind, select = write[0], {**write[1], "targetList": write[1].get("returningList")}
        rvs = [rv for rv in statement_relations(kind, select) or [] if rv] if select else []
        if len(rvs) != 1 or len(names) != 1:
            continue
        t = tenant_relation(s, rvs[0].get("relname", ""), rvs[0].get("schemaname") or reading.default_schema)
        if t is None or not t.tenant_key or taken_columns(select, 1) != [t.tenant_key] or \
                not compared_later(reading, index, names[0], t.tenant_key, True):
            continue
        for k, b in nodes(select.get("whereClause")):
            sides = equated_columns(b) if k == "A_Expr" else None
            for col, arg in (sides, sides[::-1]) if sides else ():
                if col and len(arg) == 1 and arg[0] in params:
                    out.add((t.qualified, params[arg[0]]))
    return out


def _refused_unless_held(s: Schema, reading, params: dict[str, str]) -> set[tuple[str, str]]:
    """(table, parameter) for each refusal (an IF whose own branch raises, at the top of the body, no handler
    swallowing it) that fires unless the row the parameter picks by a key lies in an organisation of the caller's
    (`_held_pick`): `if not exists (select 1 from projects where id = p_project and organization_id = any (<the
    caller's>)) then raise`, `perform 1 from projects p where p.id = p_project and private.has_role(p.organization_id,
    'admin'); if not found then raise`, or the caller's role read through a join of the row with the caller's
    membership, refused when NULL (`select m.role into v_role from projects p join organization_members m on
    m.organization_id = p.organization_id and m.user_id = auth.uid() where p.id = p_project; if v_role is null or
    ...`). Evasion round 16 fp03, fp03c: each is read as `select organization_id into v_org ...` is."""
    out: set[tuple[str, str]] = set()
    skipped = {at for at, _ in reading.caught} | {at for at, _ in reading.within}
    sets: dict[str, list[int]] = {}
    for at, names in reading.into:
        for name in names:
            sets.setdefault(name, []).append(at)
    for j in reading.refuses_when:
        kind, select = only_statement(reading.trees[j]) if j < len(reading.trees) and j not in skipped else ("", None)
        condition = lone_value(select) if kind == "SelectStmt" else None
        for atom in boolean_args(condition, "OR_EXPR") if condition is not None else []:
            atom = unwrap(atom)
            negated = (atom.get("BoolExpr") or {}).get("args") or [None] \
                if (atom.get("BoolExpr") or {}).get("boolop") == "NOT_EXPR" else [None]
            inner = unwrap(negated[0]) if len(negated) == 1 else None
            link = (inner or {}).get("SubLink") if isinstance(inner, dict) else None
            if isinstance(link, dict) and link.get("subLinkType") == "EXISTS_SUBLINK":
                out |= _held_pick(s, reading, (link.get("subselect") or {}).get("SelectStmt"), params)
            elif strings(((inner or {}).get("ColumnRef") or {}).get("fields")) == ["found"] and j > 0:
                # FOUND as the statement just before the test left it (a PERFORM or SELECT ... INTO reading rows)
                before, previous = only_statement(reading.trees[j - 1])
                if before == "SelectStmt" and (previous or {}).get("fromClause"):
                    out |= _held_pick(s, reading, previous, params)
            test = atom.get("NullTest") or {}
            ref = strings(((test.get("arg") or {}).get("ColumnRef") or {}).get("fields"))
            if test.get("nulltesttype") == "IS_NULL" and len(ref) == 1 and len(sets.get(ref[0], [])) == 1 and \
                    sets[ref[0]][0] < j:
                out |= _held_pick(s, reading, into_select(reading, sets[ref[0]][0]), params)
    return out


def _run_only_if_held(s: Schema, reading, params: dict[str, str]) -> set[tuple[str, str]]:
    """(table, parameter) for each IF whose test holds only where the row the parameter picks lies in an
    organisation of the caller's (an EXISTS `_held_pick` reads, alone or AND-ed with other tests), where every other
    statement and test of the body that names the parameter runs inside that IF's THEN (evasion round 25 fp02: `if
    exists (select 1 from projects p join organization_members m on m.organization_id = p.organization_id where p.id
    = p_id and m.user_id = auth.uid() and m.role >= 'admin') then delete from projects where id = p_id; end if;`):
    the guard-clause form `_refused_unless_held` reads, written the other way round."""
    out: set[tuple[str, str]] = set()
    around = {**dict(reading.within), **dict(reading.enclosed)}
    caught = {at for at, _ in reading.caught}
    for j in reading.conditions:
        kind, select = only_statement(reading.trees[j]) if j < len(reading.trees) and j not in caught else ("", None)
        condition = lone_value(select) if kind == "SelectStmt" else None
        for atom in boolean_args(condition, "AND_EXPR") if condition is not None else []:
            link = unwrap(atom).get("SubLink") if isinstance(unwrap(atom), dict) else None
            if not isinstance(link, dict) or link.get("subLinkType") != "EXISTS_SUBLINK":
                continue
            for table, param in _held_pick(s, reading, (link.get("subselect") or {}).get("SelectStmt"), params):
                names = {name for name, label in params.items() if label == param}
                users = [i for i, tree in enumerate(reading.trees) if i != j and mentions_variables(tree, names)]
                if users and all((j, True) in around.get(i, ()) for i in users):
                    out.add((table, param))
    return out


def _scalar_picks_joined(s: Schema, reading, quals: list, aliases: dict[str, Table]) -> list:
    """The conjuncts with each `<x> = (select p.organization_id from projects p where p.id = p_id)` read as a join
    (evasion round 25 fp02b: `exists (select 1 from organization_members m where m.organization_id = (select
    organization_id from projects where id = p_id) and m.user_id = auth.uid() ...)`): the sub-query's one table joins
    `aliases` (unless its name is taken), `<x>` equals its column, and its WHERE's conjuncts join `quals`. A scalar
    sub-query yields at most one row, as the pick `_held_pick` then asks for does."""
    out = []
    # bare names of the statement's own conjuncts are its one table's, once another table joins (PostgreSQL resolves
    # a sub-query's bare names in its own FROM first, then outside)
    outer = next(iter(aliases.items())) if len(aliases) == 1 else None
    for q in quals:
        e = unwrap(q).get("A_Expr") if isinstance(unwrap(q), dict) else None
        joined = None
        if isinstance(e, dict) and e.get("kind") == "AEXPR_OP" and strings(e.get("name")) == ["="]:
            for side in ("lexpr", "rexpr"):
                link = unwrap(e.get(side)).get("SubLink") if isinstance(unwrap(e.get(side)), dict) else None
                sub = ((link or {}).get("subselect") or {}).get("SelectStmt") or {} \
                    if (link or {}).get("subLinkType") == "EXPR_SUBLINK" else {}
                froms, targets = sub.get("fromClause") or [], sub.get("targetList") or []
                if len(froms) != 1 or "RangeVar" not in froms[0] or len(targets) != 1 or sub.get("groupClause") \
                        or sub.get("havingClause") or sub.get("op", "SETOP_NONE") != "SETOP_NONE":
                    continue
                rv = froms[0]["RangeVar"]
                alias = (rv.get("alias") or {}).get("aliasname") or rv.get("relname", "")
                t = s.table(rv.get("relname", ""), rv.get("schemaname") or reading.default_schema)
                ref = strings(((targets[0].get("ResTarget") or {}).get("val") or {}).get("ColumnRef", {}).get(
                    "fields"))
                if t is None or alias in aliases or not ref or len(ref) == 2 and ref[0] != alias or len(ref) > 2:
                    continue
                aliases[alias] = t
                column = {"ColumnRef": {"fields": [{"String": {"sval": alias}}, {"String": {"sval": ref[-1]}}]}}
                joined = [{"A_Expr": {**e, side: column}}]
                joined += [_qualified_bare(x, alias, t) for x in boolean_args(sub["whereClause"], "AND_EXPR")] \
                    if sub.get("whereClause") else []
                break
        out += joined if joined is not None else [q]
    return [_qualified_bare(q, *outer) for q in out] if outer is not None and len(aliases) > 1 else out


def _qualified_bare(node: Any, alias: str, t: Table) -> Any:
    """A copy of the expression with each bare column of `t` named `alias.column` (not inside sub-queries, whose own
    FROM comes first)."""
    if isinstance(node, list):
        return [_qualified_bare(x, alias, t) for x in node]
    if not isinstance(node, dict):
        return node
    if "SubLink" in node and len(node) == 1:
        return node
    ref = node.get("ColumnRef") if len(node) == 1 else None
    if isinstance(ref, dict):
        names = strings(ref.get("fields"))
        if len(names) == 1 and t.column(names[0]) is not None:
            return {"ColumnRef": {**ref, "fields": [{"String": {"sval": alias}}, *ref.get("fields")]}}
        return node
    return {k: _qualified_bare(v, alias, t) for k, v in node.items()}


def _held_pick(s: Schema, reading, select: dict | None, params: dict[str, str]) -> set[tuple[str, str]]:
    """(table, parameter) where the SELECT picks one row of a tenant table by a key (its primary key or a unique
    column) equated with the parameter, and its filter (WHERE and inner joins' ON) keeps that row to the caller's
    organisations: a conjunct on the row's tenant key calling what asks who calls (`organization_id = any (array(
    select private.organization_ids_with_role('admin')))`, `private.has_role(p.organization_id, 'admin')`), or a join
    with a membership table on the tenant key whose user column is the caller's (`m.organization_id =
    p.organization_id and m.user_id = auth.uid()`). Found nothing means the caller holds no such row."""
    from ...model.tenant_keys import member_column, user_tables
    if not isinstance(select, dict) or select.get("groupClause") or select.get("havingClause"):
        return set()
    aliases: dict[str, Table] = {}
    quals = list(boolean_args(select["whereClause"], "AND_EXPR")) if select.get("whereClause") else []
    pending = list(select.get("fromClause") or [])
    while pending:
        item = pending.pop()
        if not isinstance(item, dict):
            continue
        if "JoinExpr" in item:
            join = item["JoinExpr"]
            if join.get("jointype", "JOIN_INNER") != "JOIN_INNER":
                return set()  # an outer join's ON keeps nothing out
            pending += [join.get("larg"), join.get("rarg")]
            quals += boolean_args(join["quals"], "AND_EXPR") if join.get("quals") else []
        elif "RangeVar" in item:
            rv = item["RangeVar"]
            t = s.table(rv.get("relname", ""), rv.get("schemaname") or reading.default_schema)
            if t is not None:
                aliases[(rv.get("alias") or {}).get("aliasname") or rv.get("relname", "")] = t
    quals = _scalar_picks_joined(s, reading, quals, aliases)
    members = membership_tables(s)
    callers = _caller_variables(reading, ("auth.uid",))

    def column(node, alias: str, t: Table) -> str | None:  # the column of `t` (as `alias`) the node names
        ref = strings(((unwrap(node) or {}).get("ColumnRef") or {}).get("fields")) if isinstance(unwrap(node),
                                                                                                dict) else []
        # a bare name: of the only table, or of the one table that has such a column (as PostgreSQL resolves it)
        if len(ref) == 2 and ref[0] == alias or len(ref) == 1 and (len(aliases) == 1 or [
                a for a, other in aliases.items() if other.column(ref[0]) is not None] == [alias]):
            return ref[-1] if t.column(ref[-1]) is not None else None
        return None

    def argument(node) -> str | None:
        ref = strings(((unwrap(node) or {}).get("ColumnRef") or {}).get("fields")) if isinstance(unwrap(node),
                                                                                                dict) else []
        name = ref[0] if len(ref) == 1 else ref[1] if len(ref) == 2 and ref[0] == reading.name else None
        return params.get(name) if name else None

    def the_caller(node) -> bool:
        ref = strings(((unwrap(node) or {}).get("ColumnRef") or {}).get("fields")) if isinstance(unwrap(node),
                                                                                                dict) else []
        return ref in ([c] for c in callers) or (not ref and any(
            k == "FuncCall" and function_name(b) == "auth.uid" for k, b in nodes(node)) and
            not any(k == "ColumnRef" for k, _ in nodes(node)))

    out: set[tuple[str, str]] = set()
    for alias, t in aliases.items():
        if not is_tenant(t) or t.qualified in members:
            continue
        keys = [c.columns for c in t.constraints if c.kind in ("primary key", "unique")] + \
            [i.columns for i in t.indexes if i.unique and i.where is None]
        picks, held = [], False
        for q in quals:
            e = unwrap(q).get("A_Expr") if isinstance(unwrap(q), dict) else None
            sides = (e.get("lexpr"), e.get("rexpr")) if isinstance(e, dict) and equated_columns(e) is not None \
                else ()
            for mine, other in (sides, sides[::-1]) if sides else ():
                col, arg = column(mine, alias, t), argument(other)
                if col and arg and [col] in keys:
                    picks.append(arg)
                for m_alias, m in aliases.items():
                    if m.qualified in members and col == t.tenant_key and column(other, m_alias, m) == m.tenant_key:
                        user = member_column(m, m.tenant_key, user_tables(s.tables))
                        held = held or any(
                            column(a, m_alias, m) == user and the_caller(b)
                            for x in quals if isinstance(unwrap(x), dict) and "A_Expr" in unwrap(x)
                            and equated_columns(unwrap(x)["A_Expr"]) is not None
                            for a, b in [(unwrap(x)["A_Expr"].get("lexpr"), unwrap(x)["A_Expr"].get("rexpr")),
                                         (unwrap(x)["A_Expr"].get("rexpr"), unwrap(x)["A_Expr"].get("lexpr"))])
            found = list(nodes(q))
            if "BoolExpr" not in unwrap(q) and any(k == "ColumnRef" and column({"ColumnRef": b}, alias, t) ==
                                                   t.tenant_key for k, b in found) and \
                    any(k == "FuncCall" and _knows_caller(s, function_name(b)) for k, b in found):
                held = True  # organization_id = any (<the caller's>), private.has_role(p.organization_id, ...)
        if held:
            out |= {(t.qualified, p) for p in picks}
    return out


def _arguments(reading) -> dict[str, str]:
    """Each name that stands for an argument in the body -> the argument: the parameters, and the variables only
    ever set to one (_parameter_copies)."""
    return {name: name for name, _ in reading.params if name} | _parameter_copies(reading)


def _parameter_copies(reading) -> dict[str, str]:
    """variable -> parameter for each variable only ever set to a parameter as it is (`v_id := p_project`, `declare
    v_id uuid := p_project`, `select p_project into v_id`): a pick by the variable is a pick by the argument."""
    params = {name for name, _ in reading.params if name}
    sources: dict[str, set[str | None]] = {}
    for index, names in reading.into:
        select = into_select(reading, index)
        targets = (select or {}).get("targetList") or []
        copies = select is not None and not select.get("fromClause") and len(targets) == len(names)
        for position, name in enumerate(names):
            value = unwrap((targets[position].get("ResTarget") or {}).get("val")) if copies else None
            ref = strings(value["ColumnRef"].get("fields")) if isinstance(value, dict) and "ColumnRef" in value else []
            sources.setdefault(name, set()).add(ref[0] if len(ref) == 1 and ref[0] in params else None)
    return {name: next(iter(found)) for name, found in sources.items() if len(found) == 1 and None not in found}


def _argument_values(s: Schema, reading, params: dict[str, str]) -> dict[str, str]:
    """variable -> argument for each variable only ever set to a value made of an argument (`v_id uuid := (p_doc ->>
    'id')::uuid`, `r := jsonb_populate_record(null::public.projects, p_doc)`, `select * into r from
    jsonb_populate_record(...)`): a pick by it (`where id = r.id`) is a pick by the argument."""
    sources: dict[str, set[str | None]] = {}
    for index, names in reading.into:
        select = into_select(reading, index)
        targets = (select or {}).get("targetList") or []
        whole = _argument_made(s, reading, {"SelectStmt": select}, params) if select is not None else None
        for position, name in enumerate(names):
            value = (targets[position].get("ResTarget") or {}).get("val") if len(targets) == len(names) else None
            made = whole or (_argument_made(s, reading, value, params) if value is not None and select is not None
                             and not select.get("fromClause") else None)
            sources.setdefault(name, set()).add(made)
    return {name: next(iter(found)) for name, found in sources.items() if len(found) == 1 and None not in found}


@rule("BP073", "definer_rows_picked_by_argument", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A SECURITY DEFINER function clients call reads or writes tenant rows picked by its argument, and the "
              "statement never tests their organisation.",
      why="The function may check the caller well (a member of p_org, an admin somewhere), then `update projects "
          "set name = p_name where id = p_project` touches that project past RLS in whichever organisation it "
          "lives: the check and the rows are about different things. Any caller who passes the check reads or "
          "changes another organisation's rows by their id, or by a value made of an argument (`(p_doc ->> "
          "'id')::uuid`, `r.id` of a record filled by jsonb_populate_record, `id in (select unnest(p_ids))`, a row "
          "of `jsonb_to_recordset(p_rows)` in an UPDATE's FROM). The same holds for an upsert by the client's id (`on "
          "conflict (id) do update`, from VALUES or from an INSERT ... SELECT over a json argument), a MERGE joined "
          "on the argument, each id of an array argument, a test of another table's organisation in a sub-query "
          "(`exists (select 1 from organization_members m where m.organization_id = p_org ...)`), a filter that "
          "tests only the argument (`where p_org = any (...)`: every row), an optional filter (`p_org is null or "
          "organization_id = p_org`: a null passes the membership check too, and then every row), an OR with a "
          "branch that tests the organisation nowhere (`organization_id = p_org and name ilike q or notes ilike q`: "
          "AND binds first, so the notes of every organisation match), a statement on a plain view over the table "
          "(`update private.live_projects ...`), and a statement run by EXECUTE whose "
          "text the body spells out (`execute format('select ... from public.%I t where t.id = $1', p_table) using "
          "p_id`, for each table name the body admits).",
      bad="if not (p_org = any (array(select private.organization_ids_with_role('admin')))) then raise ...; end if;\n"
          "update public.projects set name = p_name where id = p_project;",
      fix="Tie the statement to the organisation checked: `where id = p_project and organization_id = p_org` (and "
          "check p_org), or test the row's own organisation: `and organization_id = any (array(select "
          "private.organization_ids_with_role('admin')))`.")
def definer_rows_picked_by_argument(r, s: Schema) -> Iterator:
    for f, through in client_definers(s):
        if not _asks_who_calls(s, f):
            continue  # BP057's: a function that never asks who calls
        picked = _picked_by_argument(s, f)
        if picked:
            table, param, how = picked[0]
            what = {"picks": f"picks {table} rows by {param} and never tests their organisation",
                    "unfiltered": f"filters {table} rows by none of their columns and never tests their organisation",
                    "branch": f"tests the organisation of {table} rows in some branches of an OR only (AND binds "
                              "before OR): another branch picks them by other columns, in every organisation",
                    "null": f"keeps {table} rows to {param} unless it is null, when every organisation's rows pass (a "
                            f"membership check of a null {param} passes too: NULL = any (...) is NULL)",
                    "row": f"picks {table} rows by {param} but tests the organisation of its row argument, whose "
                           "every field the client fills (an RPC call passes any row)"}[how]
            yield r.finding(f"Definer function {f.qualified} {what}; clients reach it through {through}.",
                            f.qualified, location=f.location)


def _overlap_checks(s: Schema, f: Function, members: set[str]) -> list[str]:
    """Parameters a body compares with the caller's memberships by overlap (`p_orgs && array(select
    private.organization_ids_with_role(...))`): true when one organisation passed is the caller's."""
    reading = f._body
    if reading is None:
        return []
    params = _arguments(reading)
    out: list[str] = []
    for tree in reading.trees:
        for kind, body in nodes(tree):
            if kind != "A_Expr" or body.get("kind") != "AEXPR_OP" or strings(body.get("name")) != ["&&"]:
                continue
            for mine, other in ((body.get("lexpr"), body.get("rexpr")), (body.get("rexpr"), body.get("lexpr"))):
                found = _parameters_in(mine, params)
                if found and _reads_memberships(s, other, reading.default_schema, members) and \
                        params[found[0]] not in out:
                    out.append(params[found[0]])
    return out


def _reads_memberships(s: Schema, value: Any, schema: str, members: set[str]) -> bool:
    """The expression reads a membership table: in a sub-query, or through a function of the app's that does."""
    if relation_names(value, schema) & members:
        return True
    for kind, body in nodes(value):
        g = find_function(s, function_name(body)) if kind == "FuncCall" else None
        if g is not None and set(g.reads or ()) & members:
            return True
    return False


@rule("BP074", "definer_checks_one_of_many_organisations", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A SECURITY DEFINER function clients call takes several organisations and checks that the caller "
              "belongs to one of them (`&&`), not to each.",
      why="`p_orgs && array(select private.organization_ids_with_role('viewer'))` holds as soon as one organisation "
          "passed is the caller's: a caller lists their own next to another organisation's and the function, "
          "reading past RLS, returns or changes the rows of both.",
      bad="if not (p_orgs && array(select private.organization_ids_with_role('viewer'))) then raise ...; end if;\n"
          "return query select * from public.projects where organization_id = any (p_orgs);",
      fix="Check containment: `p_orgs <@ array(select private.organization_ids_with_role('viewer'))`, or filter "
          "the rows by the caller's organisations themselves: `organization_id = any (p_orgs) and organization_id "
          "= any (array(select private.organization_ids_with_role('viewer')))`.")
def definer_checks_one_of_many_organisations(r, s: Schema) -> Iterator:
    members = membership_tables(s)
    if not members:
        return
    for f, through in client_definers(s):
        loose = _overlap_checks(s, f, members)
        if loose:
            yield r.finding(f"Definer function {f.qualified} checks that the caller belongs to one of {loose[0]} "
                            f"(&&), not to each; clients reach it through {through}.", f.qualified,
                            location=f.location)


@rule("BP075", "definer_writes_membership_organisation_unchecked", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A SECURITY DEFINER function clients call writes a membership into the organisation its argument "
              "names, and never compares that argument with anything.",
      why="accept_invitation(p_org, p_token) may check the token well, then insert (p_org, auth.uid(), inv.role): "
          "the membership lands in whichever organisation the caller names, not the one the invitation is for. "
          "Anyone who can invite themselves somewhere (every owner of a personal or new organisation) accepts "
          "their own invitation into another organisation, in the role they chose. A lookup that matches a code "
          "against a pattern the caller writes (`where join_code ilike p_code`, SIMILAR TO, `~*`) is no capability "
          "either: `%` finds an organisation whatever its code, and `a%`, `b%`... each of the others (evasion round "
          "11).",
      bad="select * into inv from public.invitations where token = p_token;\n"
          "insert into public.organization_members (organization_id, user_id, role)\n"
          "  values (p_org, (select auth.uid()), inv.role);",
      fix="Write the organisation of the row that authorises the membership (`values (inv.organization_id, ...)`), "
          "or compare the argument with it (`if inv.organization_id <> p_org then raise ...`), or with the "
          "organisations the caller administers. Compare a code with `=` (after a case fold if need be: "
          "`upper(join_code) = upper(p_code)`), never as a pattern, or refuse first any code but an anchored format "
          "without wildcards (`if p_code !~ '^[A-Za-z0-9]{8}$' then raise ...`).")
def definer_writes_membership_organisation_unchecked(r, s: Schema) -> Iterator:
    reported = set()
    for f, through, rel, column, p in _unchecked_membership_writes(s, lambda t: t.tenant_key):
        reported.add(f.qualified)
        yield r.finding(f"Definer function {f.qualified} writes {rel}.{column} from {p} without comparing it with "
                        f"anything; clients reach it through {through}.", f.qualified, location=f.location)
    for f, through in client_definers(s):
        found = _organisation_by_pattern(s, f._body) if f.qualified not in reported and f._body is not None \
            and f._body.params else None
        if found:
            rel, column, test = found
            yield r.finding(f"Definer function {f.qualified} writes {rel}.{column} from the row {test} finds: a "
                            "pattern the caller writes ('%') matches any organisation's code, so it is no "
                            f"capability; clients reach it through {through}.", f.qualified, location=f.location)


# LIKE, ILIKE, SIMILAR TO and the regular-expression matches (not their negations).
_PATTERN_OPS = ("~~", "~~*", "~", "~*")
_ESCAPES = ("replace", "regexp_replace", "translate")  # `replace(p_code, '%', '\\%')`: the wildcards escaped


def _organisation_by_pattern(s: Schema, reading) -> tuple[str, str, str] | None:
    """(membership table, its tenant column, the test) where the body writes a membership of the organisation a
    lookup found by matching a column against a pattern built from an argument (evasion round 11, e08: `select
    o.id into v_org from organizations o where o.join_code ilike p_code`, then `insert into organization_members
    values (v_org, auth.uid(), 'member')`): `%` finds an organisation whatever its code."""
    members = {name: t.tenant_key for name in membership_tables(s)
               if (t := s.table(*name.split(".", 1)[::-1])) is not None and t.tenant_key}
    params = {name for name, _ in reading.params if name} | {f"${i}" for i in range(1, len(reading.params) + 1)}
    found: dict[str, str] = {}  # variable -> the pattern test of the lookup that filled it
    checked = _validated(reading, params)
    for at, names in reading.into:
        kind, select = only_statement(reading.trees[at]) if at < len(reading.trees) else ("", {})
        safe = {name for name, where in checked.items() if where < at}
        test = _pattern_test(select.get("whereClause"), params, reading.name, safe) if kind == "SelectStmt" else None
        if test:
            found.update((name, test) for name in names)
    for at, tree in enumerate(reading.trees):
        safe = {name for name, where in checked.items() if where < at}
        for kind, body in nodes(tree):
            rel = qualified(body.get("relation") or {}, reading.default_schema) if kind == "InsertStmt" else None
            column = members.get(rel) if rel else None
            cols = [(c.get("ResTarget") or {}).get("name") for c in body.get("cols") or []] if column else []
            if column not in cols:
                continue
            select = (body.get("selectStmt") or {}).get("SelectStmt") or {}
            test = _pattern_test(select.get("whereClause"), params, reading.name, safe)  # insert ... select ...
            for row in select.get("valuesLists") or []:
                items = (row.get("List") or {}).get("items") or []
                value = unwrap(items[cols.index(column)]) if len(items) > cols.index(column) else None
                fields = strings(((value or {}).get("ColumnRef") or {}).get("fields"))
                test = test or (found.get(fields[0]) if len(fields) == 1 else None)
            if test:
                return rel, column, test
    return None


def _validated(reading, params: set[str]) -> dict[str, int]:
    """Argument -> the position of the first refusal that holds it to an anchored regular expression no wildcard or
    pattern character matches (`if p_code is null or p_code !~ '^[A-Za-z0-9]{8}$' then raise`: evasion round 12
    fp03), where the body never sets the argument (`into` holds its assignments and SELECT ... INTO)."""
    out: dict[str, int] = {}
    assigned = {n for _, names in reading.into for n in names}
    for at in sorted(reading.refuses_when):
        for atom in boolean_args(_test_at(reading, at), "OR_EXPR"):
            body = (unwrap(atom) or {}).get("A_Expr") if isinstance(unwrap(atom), dict) else None
            negated = (unwrap(atom) or {}).get("BoolExpr") if isinstance(unwrap(atom), dict) else None
            if isinstance(negated, dict) and negated.get("boolop") == "NOT_EXPR" and len(negated.get("args")) == 1:
                inner = unwrap(negated["args"][0])
                body = inner.get("A_Expr") if isinstance(inner, dict) and strings(
                    (inner.get("A_Expr") or {}).get("name")) in (["~"], ["~*"]) else None
            elif not isinstance(body, dict) or strings(body.get("name")) not in (["!~"], ["!~*"]):
                continue
            if not isinstance(body, dict):
                continue
            fields = strings(((unwrap(body.get("lexpr")) or {}).get("ColumnRef") or {}).get("fields"))
            pattern = const(unwrap(body.get("rexpr")))
            if len(fields) == 1 and fields[0] in params and fields[0] not in assigned and \
                    isinstance(pattern, str) and _plain_anchored(pattern):
                out.setdefault(fields[0], at)
    return out


_PATTERN_CHARS = frozenset("%_\\.^$*+?()[]{}|")  # LIKE's, SIMILAR TO's and regular expressions' own


def _plain_anchored(pattern: str) -> bool:
    """^...$ whose matches hold no `%`, `_` or other pattern character (`^[A-Za-z0-9]{8}$`, `^[[:alnum:]]{8}$`),
    its classes read by wildcards.regex_admits: `[A-z]` holds `_` and `\\` (evasion round 13 e03)."""
    admits = wildcards.regex_admits(pattern)
    return admits is not None and not admits & _PATTERN_CHARS


def _pattern_test(where: Any, params: set[str], function: str, safe: set[str] = frozenset()) -> str | None:
    """`column like <expression of an argument>` (ILIKE, SIMILAR TO, ~, ~*) in a filter, as text; None without, or
    where the pattern is an argument (or its lower/upper) an earlier refusal holds to a plain format (`safe`)."""
    def argument(tree: Any) -> str | None:
        for k, b in nodes(tree):
            fields = strings(b.get("fields")) if k == "ColumnRef" else []
            if fields and (len(fields) == 1 or fields[0] == function) and fields[-1] in params:
                return fields[-1]
            if k == "ParamRef" and f"${b.get('number', 0)}" in params:
                return f"${b.get('number', 0)}"
        return None
    for kind, body in nodes(where):
        op = strings(body.get("name")) if kind == "A_Expr" else []
        if not op or op[-1] not in _PATTERN_OPS:
            continue
        column = strings(((unwrap(body.get("lexpr")) or {}).get("ColumnRef") or {}).get("fields"))
        pattern = body.get("rexpr")
        # LIKE and ILIKE: escaped only when `\`, `%` and `_` all are (wildcards.escaped; evasion round 12 showed
        # BP083's `replace(x, '%', '\%')`, which leaves `_`); a regular expression by any of _ESCAPES, as before
        like = op[-1] in ("~~", "~~*")
        escaped = any(k == "FuncCall" and (wildcards.escaped({"FuncCall": b}) if like else
                                           function_name(b).split(".")[-1] in _ESCAPES) for k, b in nodes(pattern))
        name = argument(pattern) if column and not escaped else None
        bare = unwrap(pattern)
        call = (bare or {}).get("FuncCall") if isinstance(bare, dict) else None
        if isinstance(call, dict) and function_name(call).split(".")[-1] in ("lower", "upper") and \
                len(call.get("args") or []) == 1:
            bare = unwrap(call["args"][0])
        if name in safe and strings(((bare or {}).get("ColumnRef") or {}).get("fields"))[-1:] == [name]:
            continue
        if name:
            word = {"AEXPR_LIKE": "like", "AEXPR_ILIKE": "ilike", "AEXPR_SIMILAR": "similar to"}.get(
                body.get("kind", ""), op[-1])
            return f"`{column[-1]} {word} {name}`"
    return None


_ORDERS = ("=", "<>", "!=", "<", "<=", ">", ">=")
_NULL_SAFE = ("NullTest", "CoalesceExpr", "BooleanTest")


def _lookup_variables(reading) -> tuple[set[str], set[str]]:
    """Variables a SELECT ... INTO without STRICT sets from rows it reads (FROM): NULL when no row matches. A query
    with aggregates and no GROUP BY always answers one row (count(*) is never NULL): left out. (all of them, those
    whose lookup asks about the caller: `where m.user_id = auth.uid()`, a caller's membership or role)."""
    out: set[str] = set()
    callers = _caller_variables(reading, ("auth.uid", "auth.jwt"))
    mine: set[str] = set()
    lookups = set(reading.lookups)
    for at, names in reading.into:
        kind, select = only_statement(reading.trees[at]) if at in lookups and at < len(reading.trees) else ("", {})
        if kind == "SelectStmt" and _may_find_nothing(select):
            out |= set(names)
            where = select.get("whereClause")
            if any((kind == "FuncCall" and function_name(b) in ("auth.uid", "auth.jwt")) or
                   (kind == "ColumnRef" and strings(b.get("fields"))[:1] and strings(b.get("fields"))[0] in callers)
                   for kind, b in nodes(where)):
                mine |= set(names)
    return out, mine


def _caller_variables(reading, functions: tuple[str, ...]) -> set[str]:
    """Variables the body sets from an expression calling one of `functions` (caller uuid := auth.uid())."""
    return {name for at, names in reading.into if at < len(reading.trees)
            and any(kind == "FuncCall" and function_name(b) in functions for kind, b in nodes(reading.trees[at]))
            for name in names}


def _may_find_nothing(select) -> bool:
    """A SELECT reading rows (FROM) whose answer is NULL when none matches: not one of aggregates alone without
    GROUP BY (count(*) answers 0, a row always)."""
    if not isinstance(select, dict) or not select.get("fromClause"):
        return False
    targets = [(t.get("ResTarget") or {}).get("val") for t in select.get("targetList") or []]
    return not (not select.get("groupClause") and targets and all(
        isinstance(v, dict) and "FuncCall" in v and function_name(v["FuncCall"]).split(".")[-1] in (
            "count", "bool_or", "bool_and", "every") for v in targets))


def _null_tested(reading, names: set[str]) -> set[str]:
    """Of `names`, the variables the body tests for NULL anywhere (is null, is distinct from, coalesce, FOUND read
    after the lookup counts for every one of them)."""
    out: set[str] = set()
    for tree in reading.trees:
        for kind, body in nodes(tree):
            if kind == "ColumnRef" and strings(body.get("fields")) == ["found"]:
                return set(names)
            guarded = body.get("arg") if kind in ("NullTest", "BooleanTest") else \
                body if kind == "CoalesceExpr" or (kind == "A_Expr" and body.get("kind") in (
                    "AEXPR_DISTINCT", "AEXPR_NOT_DISTINCT")) else None
            if guarded is not None:
                out |= {f[0] for k, b in nodes(guarded) if k == "ColumnRef"
                        for f in [strings(b.get("fields"))] if f and f[0] in names}
    return out


def _null_operand(s: Schema, node, names: set[str], mine: set[str] | None = None,
                  params: frozenset[str] = frozenset()) -> str | None:
    """What in a refusing test can be NULL and make the test NULL: a looked-up variable compared (v_role < 'admin',
    inv.organization_id <> p_org) or negated (not v_ok), a scalar sub-query compared, or a call of an SQL helper
    whose answer is such a comparison (not private.has_role(...) over `select (select m.role ...) >= p_min`).
    coalesce, IS [NOT] NULL and IS [NOT] DISTINCT FROM around it make it safe."""
    stack = [node]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack += value
            continue
        if not isinstance(value, dict) or len(value) != 1:
            continue
        kind, body = next(iter(value.items()))
        if not isinstance(body, dict) or kind in _NULL_SAFE:
            continue
        if kind == "A_Expr" and body.get("kind") in ("AEXPR_DISTINCT", "AEXPR_NOT_DISTINCT"):
            continue
        if kind == "A_Expr" and (body.get("kind") in ("AEXPR_IN", "AEXPR_OP_ANY") or
                                 (body.get("kind") == "AEXPR_OP" and strings(body.get("name"))[-1:] and
                                  strings(body.get("name"))[-1] in _ORDERS)):
            sides = (body.get("lexpr"), body.get("rexpr"))
            for side, other in (sides, sides[::-1]):
                found = _nullable(s, side, names)
                # a looked-up value counts where its lookup asks about the caller, or where the test compares it
                # with an argument (inv.organization_id <> p_org); against a constant after a lookup by argument
                # (Basejump's `is_account_primary_owner = false`) an earlier check decides whether the row exists
                if found and (mine is None or found not in names or found in mine or _argument(other, params)):
                    return found
        if kind == "BoolExpr" and body.get("boolop") == "NOT_EXPR":
            found = _nullable(s, (body.get("args") or [None])[0], names, booleans=True)
            if found and (mine is None or found not in names or found in mine):
                return found
        if kind == "SubLink":
            continue  # a sub-query's own tests decide its rows, not the refusal
        stack += [v for v in body.values() if isinstance(v, dict | list)]
    return None


def _argument(node, params: frozenset[str]) -> bool:
    """A parameter of the function: p_org, $1."""
    node = unwrap(node)
    if isinstance(node, dict) and "ParamRef" in node:
        return True
    fields = strings((node or {}).get("ColumnRef", {}).get("fields")) if isinstance(node, dict) else []
    return bool(fields) and fields[-1] in params


# The settings PostgREST before version 9 set for each claim of the JWT (request.jwt.claim.role, .sub, .email):
# PostgREST 9 on PostgreSQL 14+ sets only request.jwt.claims (JSON), later versions none of these, so
# current_setting(..., true) answers NULL (Supabase moved in November 2021; auth.uid() and auth.role() read both).
_LEGACY_CLAIM = "request.jwt.claim."


def _nullable(s: Schema, side, names: set[str], booleans: bool = False) -> str | None:
    side = unwrap(side)
    if not isinstance(side, dict):
        return None
    setting = side.get("FuncCall")
    args = setting.get("args") or [] if isinstance(setting, dict) else []
    if function_name(setting or {}).split(".")[-1] == "current_setting" and len(args) == 2 and \
            isinstance(const(args[0]), str) and const(args[0]).lower().startswith(_LEGACY_CLAIM):
        return f"current_setting('{const(args[0])}', true)"
    ref = side.get("ColumnRef")
    if isinstance(ref, dict):
        fields = strings(ref.get("fields"))
        return fields[0] if fields and fields[0] in names else None
    link = side.get("SubLink")
    if isinstance(link, dict) and link.get("subLinkType") == "EXPR_SUBLINK" and not booleans and \
            _may_find_nothing((link.get("subselect") or {}).get("SelectStmt")):
        return "a sub-query's answer"
    call = side.get("FuncCall")
    if isinstance(link, dict) and link.get("subLinkType") == "EXPR_SUBLINK":
        value = lone_value((link.get("subselect") or {}).get("SelectStmt"), bare=False)
        call = value.get("FuncCall") if isinstance(value, dict) else None
    f = find_function(s, function_name(call)) if isinstance(call, dict) else None
    reading = f._body if f is not None and f.language == "sql" and f.returns == "boolean" else None
    kind, select = only_statement(reading.trees[0]) if reading is not None and len(reading.trees) == 1 else ("", {})
    answer = lone_value(select, bare=False) if kind == "SelectStmt" and not select.get("fromClause") else None
    return f"{f.qualified}'s answer" if answer is not None and _null_operand(s, answer, set()) else None


@rule("BP080", "refusal_skipped_by_null", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A definer function or trigger refuses when a test holds, and the test is NULL when the row it looked "
              "up is missing: the refusal is skipped for exactly the callers it is for.",
      why="`select m.role into v_role from organization_members m where ... user_id = auth.uid()` finds no row for "
          "a caller who is no member, so v_role is NULL; `if v_role < 'admin' then raise` is then NULL, IF takes "
          "the other way, and the outsider goes on as an admin would. The same for `if inv.organization_id <> "
          "p_org` after an invitation lookup with a wrong token, for `if not private.has_role(...)` where the "
          "helper answers `(select m.role ...) >= p_min`, and for a scalar sub-query compared in the test.",
      bad="select m.role into v_role from public.organization_members m\n"
          "  where m.organization_id = p_org and m.user_id = (select auth.uid());\n"
          "if v_role < 'admin' then raise exception 'only admins'; end if;",
      fix="Test the lookup first (`if not found then raise ...`, `if v_role is null or ...`), select INTO STRICT, "
          "or compare NULL-safely: `v_role is distinct from ...`, `coalesce(<helper>(...), false)`, "
          "`if not exists (select 1 ... where role >= 'admin')`.")
def refusal_skipped_by_null(r, s: Schema) -> Iterator:
    for f in s.functions:
        reading = f._body
        if reading is None or not (reading.refuses_when or reading.leaves_when) or managed(f.schema_name) or \
                not (f.security_definer or f.returns == "trigger"):
            continue
        names, mine = _lookup_variables(reading)
        tested = _null_tested(reading, names)
        # a NULL test of one target of a lookup tests them all: no row leaves every one NULL (review of the
        # fphunt: `if v_business is null or ... then raise` before `v_role` from the same SELECT ... INTO)
        names -= {n for _, targets in reading.into if tested & set(targets) for n in targets} | tested
        params = frozenset(name for name, _ in reading.params if name)
        for at in sorted(reading.refuses_when + reading.leaves_when):  # (`then return;` refuses too)
            test = _test_at(reading, at)
            found = _null_operand(s, test, names, mine, params) if test is not None else None
            if found:
                what = f"{found} is NULL when no row matches" if "answer" in found else \
                    f"{found} is NULL: PostgREST 9+ sets only request.jwt.claims (read auth.role() or auth.jwt())" \
                    if found.startswith("current_setting") else f"{found} is NULL when its SELECT ... INTO finds no row"
                yield r.finding(f"{f.qualified} refuses when a test holds, but {what}: the test is NULL and the "
                                "refusal is skipped.", f.qualified, location=f.location)
                break


def _test_at(reading, at: int):
    """The expression of the test at `at` in a body's trees (kept as `select <test>`)."""
    kind, select = only_statement(reading.trees[at]) if at < len(reading.trees) else ("", {})
    return lone_value(select, bare=False) if kind == "SelectStmt" else None


def _caller_roles(s: Schema, reading, before: int | None = None) -> frozenset[str] | None:
    """The roles a caller may hold past the body's refusals, where one reads plainly: `if not (p_org = any (array(
    select private.organization_ids_with_role('admin')))) then raise` admits admin and above (role_sets). With
    `before` (the position of a statement), an early RETURN before it refuses too (BodyReading.leaves_when)."""
    from ..role_sets import admitted_roles
    out = None
    leaving = [at for at in reading.leaves_when if before is not None and at < before]
    for at in list(reading.refuses_when) + leaving:
        test = _test_at(reading, at)
        negated = (test or {}).get("BoolExpr") if isinstance(test, dict) else None
        if isinstance(negated, dict) and negated.get("boolop") == "NOT_EXPR":
            found = admitted_roles(s, (negated.get("args") or [None])[0])
            if found is not None:
                out = found[1] if out is None else out & found[1]
    # The IFs around the statement: `if <admin> then <it> end if`, or it in the ELSE of `if not <admin> then ...`
    # (evasion round 22 e04, e05).
    for at, holds in dict(reading.enclosed).get(before, ()) if before is not None else ():
        test = _test_at(reading, at)
        negated = (test or {}).get("BoolExpr") if isinstance(test, dict) else None
        if not holds and not (isinstance(negated, dict) and negated.get("boolop") == "NOT_EXPR"):
            continue
        for x in boolean_args(test if holds else (negated.get("args") or [None])[0], "AND_EXPR"):
            found = admitted_roles(s, x)
            if found is not None:
                out = found[1] if out is None else out & found[1]
    return out


def _role_constant(node) -> str | None:
    value = const(unwrap(node))
    return value if isinstance(value, str) else None


def _targets_by_role(where, role: str, labels: list[str]) -> set[str]:
    """The roles an UPDATE's (or a DELETE's) WHERE lets it reach, by its conjuncts on the role column with constants
    (role = 'owner', role <> 'owner', role < 'admin', role in (...), role = any (array[...])); every role where it
    says nothing."""
    roles = set(labels)
    for x in boolean_args(where, "AND_EXPR") if where is not None else []:
        e = x.get("A_Expr") if isinstance(x, dict) else None
        if not isinstance(e, dict):
            continue
        left = unwrap(e.get("lexpr"))
        if strings(((left or {}).get("ColumnRef") or {}).get("fields"))[-1:] != [role]:
            continue
        op, kind = (strings(e.get("name")) or [""])[-1], e.get("kind")
        array = (unwrap(e.get("rexpr")) or {}).get("A_ArrayExpr") if kind == "AEXPR_OP_ANY" and op == "=" else None
        if kind == "AEXPR_IN" or isinstance(array, dict):  # (role = any (array['member', 'admin']) too)
            items = array.get("elements") if isinstance(array, dict) else \
                (e.get("rexpr") or {}).get("List", {}).get("items")
            named = {v for v in (_role_constant(i) for i in items or []) if v}
            roles &= (set(labels) - named) if op == "<>" else named
            continue
        value = _role_constant(e.get("rexpr"))
        if value not in labels:
            continue
        at = labels.index(value)
        keep = {"=": labels[at:at + 1], "<>": labels[:at] + labels[at + 1:], "!=": labels[:at] + labels[at + 1:],
                "<": labels[:at], "<=": labels[:at + 1], ">": labels[at + 1:], ">=": labels[at:]}.get(op)
        if keep is not None:
            roles &= set(keep)
    return roles


@rule("BP084", "definer_role_write_outranks_check", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A SECURITY DEFINER function clients call changes memberships beyond the rank its own check asks of "
              "the caller: it hands out a higher role, or changes the role of members ranked above.",
      why="The function checks that the caller is an admin (`organization_ids_with_role('admin')`), then writes "
          "`role = 'owner'`, or updates the role of any member of the organisation, the owner's included: an admin "
          "makes themselves owner, or demotes the owner and takes the organisation. BP070 reads a role taken from "
          "an argument; this one reads what the check itself admits.",
      bad="if not (p_org = any (array(select private.organization_ids_with_role('admin')))) then raise ...;\n"
          "update public.organization_members set role = 'owner' where organization_id = p_org and user_id = p_new;",
      fix="Ask for the rank the write needs (`organization_ids_with_role('owner')` to hand ownership over), and keep "
          "the rows it changes below the caller's rank (`and role <> 'owner'`, `and role < 'admin'`).")
def definer_role_write_outranks_check(r, s: Schema) -> Iterator:
    members = membership_tables(s)
    for f, through in client_definers(s):
        reading = f._body
        # (an early RETURN refuses as a RAISE does: `if not <admin> then return; end if;`; an IF around the write
        # admits as the refusal of its negation does)
        found = _outranking_write(s, reading, members) if reading is not None and (
            reading.refuses_when or reading.leaves_when or reading.enclosed) else None
        if found:
            yield r.finding(f"{f.qualified} {found}; clients reach it through {through}.", f.qualified,
                            location=f.location)


def _outranking_write(s: Schema, reading, members: set[str]) -> str | None:
    """What the first write of a membership role beyond the least of the roles the checks on its path admit
    (`_caller_roles`) does (a role written above it, or rows up to a role above it changed), as a phrase; None
    where every write keeps below."""
    from ..role_sets import role_labels
    for at, tree in enumerate(reading.trees):
        admitted: frozenset[str] | None = None
        for kind, body in nodes(tree):
            if kind not in ("UpdateStmt", "InsertStmt") or not isinstance(body.get("relation"), dict):
                continue
            rel = qualified(body["relation"], reading.default_schema)
            t = s.table(*rel.split(".", 1)[::-1]) if rel in members else None
            role = role_column(t) if t is not None else None
            labels = role_labels(s, t) if role else None
            if labels and admitted is None:  # (read only for a membership write, once per statement)
                admitted = _caller_roles(s, reading, at) or frozenset()
            if not labels or not admitted or not admitted <= set(labels):
                continue
            least = min(labels.index(x) for x in admitted)
            written = _written_role(body, role)
            if written in labels and labels.index(written) > least:
                return (f"writes role '{written}' to {rel}, but its check lets in '{labels[least]}' callers: one "
                        f"makes someone '{written}'")
            if kind == "UpdateStmt" and written is not False:
                reach = _targets_by_role(body.get("whereClause"), role, labels)
                above = sorted((x for x in reach if labels.index(x) > least), key=labels.index)
                if above:
                    return (f"changes the role of {rel} rows up to '{above[-1]}', but its check lets in "
                            f"'{labels[least]}' callers: one demotes a member ranked above them")
    return None


def definer_removals(s: Schema) -> list[tuple[Function, str, str, str]]:
    """(function, how clients reach it, the membership table, the least role its check admits) for each SECURITY
    DEFINER function clients call that deletes memberships of any role, the top role's too, past a check that
    admits callers ranked below the top (`if not p_org = any (array(select private.organization_ids_with_role(
    'admin'))) then raise ...; delete from organization_members where organization_id = p_org and user_id =
    p_user`: evasion round 21 e07). The definer form of BP081's DELETE policy."""
    return _once("definer removals", s, _definer_removals, s)


def _definer_removals(s: Schema) -> list[tuple[Function, str, str, str]]:
    from ..role_sets import admitted_roles, role_labels
    members = membership_tables(s)
    out = []
    for f, through in client_definers(s) if members else []:
        reading = f._body
        for at, tree in enumerate(reading.trees if reading is not None else ()):
            delete = next((b for k, b in nodes(tree) if k == "DeleteStmt" and isinstance(b.get("relation"), dict)),
                          None)
            rel = qualified(delete["relation"], reading.default_schema) if delete is not None else None
            t = s.table(*rel.split(".", 1)[::-1]) if rel in members else None
            role = role_column(t) if t is not None else None
            labels = (role_labels(s, t) or []) if role else []
            if len(labels) < 2:
                continue
            where = delete.get("whereClause")
            conjuncts = list(boolean_args(where, "AND_EXPR")) if where is not None else []
            admitted = _caller_roles(s, reading, at)
            for x in conjuncts:  # (the check in the DELETE's own filter: `and organization_id = any (...)`)
                found = admitted_roles(s, unwrap(x))
                if found is not None and found[0] == t.tenant_key:
                    admitted = found[1] if admitted is None else admitted & found[1]
            if not admitted or not admitted <= set(labels):
                continue
            least = min(labels.index(x) for x in admitted)
            if least < len(labels) - 1 and not _removal_bounded(s, reading, at, t, role, labels, conjuncts):
                out.append((f, through, rel, labels[least]))
                break
    return out


def _removal_bounded(s: Schema, reading, at: int, t: Table, role: str, labels: list[str], conjuncts: list) -> bool:
    """A definer's DELETE of memberships (at `at`, its filter's `conjuncts`) that cannot reach the top role's: its
    filter keeps the top role out (`role <> 'owner'`, `role < 'admin'`; a role compared with anything but a
    constant is given the benefit of the doubt), keeps to the caller's own membership (`user_id = auth.uid()`, or a
    variable only ever set to it), leaves a user out (`user_id <> (select o.owner_id ...)`), asks an app function
    about the row (`not private.is_owner(organization_id, user_id)`) or a sub-query about the organisation's owner
    or a membership's role; or a test or PERFORM before it asks about the member removed (`_about_member`)."""
    from ..role_sets import admitted_roles
    from ...model.tenant_keys import member_column, user_tables
    if not conjuncts:
        return False  # every membership of every organisation
    if labels[-1] not in _targets_by_role({"BoolExpr": {"boolop": "AND_EXPR", "args": conjuncts}}, role, labels):
        return True
    user = member_column(t, t.tenant_key, user_tables(s.tables))
    callers = _certain_callers(reading)
    columns = {c.name for c in t.columns}
    asked = (t.qualified, {f"{schema}.{name}" for schema, name in tenant_roots(s)})
    targets: set[str] = set()  # the names the removed member goes by (p_user, $2, p_member_id)
    for x in map(unwrap, conjuncts):
        if admitted_roles(s, x) is not None:
            continue  # (the caller's check)
        if any(k == "SelectStmt" and _reads_rank(b, asked, role, reading.default_schema) for k, b in nodes(x)) or any(
                k == "FuncCall" and function_name(b).split(".")[0] not in ("auth", "pg_catalog") and any(
                    kind == "ColumnRef" and strings(c.get("fields"))[-1:] in ([user], [role]) for kind, c in
                    nodes(b.get("args"))) for k, b in nodes(x)):
            return True
        e = x.get("A_Expr") if isinstance(x, dict) else None
        sides = [unwrap(e.get("lexpr")), unwrap(e.get("rexpr"))] if isinstance(e, dict) else []
        refs = [strings((v.get("ColumnRef") or {}).get("fields")) if isinstance(v, dict) else [] for v in sides]
        op = (strings((e or {}).get("name")) or [""])[-1]
        for ref, other, theirs in zip(refs, sides[::-1], refs[::-1]):
            if ref[-1:] == [role] and isinstance(other, dict) and {"ColumnRef", "SubLink", "FuncCall"} & set(other):
                return True  # the removed member's role compared with another's (`role < v_my_role`)
            if user and ref[-1:] == [user] and (op in ("<>", "!=") or e.get("kind") == "AEXPR_DISTINCT" or op == "="
                                                and (_is_uid(other) or len(theirs) == 1 and theirs[0] in callers)):
                return True  # the caller's own membership, or one user left out
            if ref[-1:] and ref[-1] != t.tenant_key and len(theirs) == 1 and theirs[0] not in columns:
                targets.add(theirs[0])
        targets |= {f"${b.get('number')}" for k, b in nodes(x) if k == "ParamRef"}
    looked: set[str] = set()  # variables a lookup about the member fills (select m.role into v_role ...)
    for i, names in reading.into:
        if i < at and _about_member(reading.trees[i], targets, asked, role, reading.default_schema):
            looked |= set(names)
    return any(i < at and (_about_member(reading.trees[i], targets, asked, role, reading.default_schema) or
                           looked and _compares(reading.trees[i], looked))
               for i in set(reading.conditions) | set(reading.performs))


def _names(node: Any, names: set[str]) -> bool:
    return mentions_variables(node, names) or any(k == "ParamRef" and f"${b.get('number')}" in names
                                                  for k, b in nodes(node))


def _about_member(tree: Any, targets: set[str], asked: tuple[str, set[str]], role: str, schema: str) -> bool:
    """The expression asks about the member a DELETE removes (named by `targets`): a function given them
    (`private.is_owner(p_org, p_user)`), a sub-query of their membership's role or of the organisation (`asked`)
    naming them (`select m.role ... where m.user_id = p_user`, `exists (select 1 from organizations o where o.owner_id
    = p_user)`), or them compared with such a sub-query (`p_user = (select o.owner_id from organizations o ...)`).
    Whether they are a member at all (`exists (select 1 ... where m.user_id = p_user)`) says nothing of their rank."""
    if not targets or not _names(tree, targets):
        return False
    for kind, b in nodes(tree):
        if kind == "FuncCall" and function_name(b).split(".")[0] not in ("auth", "pg_catalog") and \
                _names(b.get("args"), targets):
            return True
        if kind == "SelectStmt" and _names(b, targets) and _reads_rank(b, asked, role, schema):
            return True
        if kind == "A_Expr":
            sides = [b.get("lexpr"), b.get("rexpr")]
            if any(_names(x, targets) and any(k == "SelectStmt" and _reads_rank(y, asked, role, schema)
                                              for k, y in nodes(z)) for x, z in (sides, sides[::-1])):
                return True
    return False


def _reads_rank(select: dict, asked: tuple[str, set[str]], role: str, schema: str) -> bool:
    """A SELECT of an organisation (`asked`: the membership table, the organisations tables), or of a membership's
    role."""
    members, roots = asked
    rels = set(relation_names(select, schema))
    return bool(rels & roots) or members in rels and any(
        k == "ColumnRef" and strings(b.get("fields"))[-1:] == [role] for k, b in nodes(select))


def _compares(tree: Any, names: set[str]) -> bool:
    """A comparison (or a function) given one of the variables: `v_role = 'owner'`, not `v_role is null`."""
    return any(kind in ("A_Expr", "FuncCall") and _names(b, names) for kind, b in nodes(tree))


def _written_role(stmt: dict, role: str) -> str | None | bool:
    """The role an UPDATE's SET or an INSERT's single VALUES row writes: a constant, None for anything else, False
    where the statement does not write the role column at all."""
    if "targetList" in stmt and "cols" not in stmt:  # UPDATE ... SET
        for t in stmt.get("targetList") or []:
            target = t.get("ResTarget") or {}
            if target.get("name") == role:
                return _role_constant(target.get("val"))
        return False
    columns = [(c.get("ResTarget") or {}).get("name") for c in stmt.get("cols") or []]
    if role not in columns:
        return False
    rows = (((stmt.get("selectStmt") or {}).get("SelectStmt") or {}).get("valuesLists") or [])
    values = [(row.get("List") or {}).get("items") or [] for row in rows]
    found = {_role_constant(v[columns.index(role)]) for v in values if len(v) > columns.index(role)}
    return found.pop() if len(found) == 1 else None


def _always_inserts(tree) -> bool:
    """An INSERT ... VALUES without ON CONFLICT: it writes its rows or fails, so FOUND is true after it."""
    kind, insert = only_statement(tree)
    select = (insert.get("selectStmt") or {}).get("SelectStmt") or {}
    return kind == "InsertStmt" and bool(select.get("valuesLists")) and not insert.get("onConflictClause")


@rule("BP085", "found_after_insert", Level.ERROR, ("SECURITY",),
      summary="A PL/pgSQL function refuses on `not found` right after an INSERT ... VALUES: FOUND is then always "
              "true, and the refusal meant for the lookup before it never runs.",
      why="FOUND tells about the last SQL statement that ran. `perform 1 from organization_members where ... "
          "role in ('admin', 'owner'); insert into audit_log values (...); if not found then raise ...` tests the "
          "audit insert, which always writes its row: everyone passes as an admin (evasion round 8).",
      bad="perform 1 from public.organization_members m where m.organization_id = p_org and m.user_id = "
          "(select auth.uid()) and m.role in ('admin', 'owner');\ninsert into public.audit_log (organization_id, "
          "action) values (p_org, 'delete');\nif not found then raise exception 'admins only'; end if;",
      fix="Test FOUND right after the lookup (or use `if not exists (select 1 ...) then raise`), and write the "
          "log after the check.")
def found_after_insert(r, s: Schema) -> Iterator:
    for f in s.functions:
        reading = f._body
        if reading is None or not (reading.refuses_when or reading.leaves_when) or managed(f.schema_name):
            continue
        for at in sorted(reading.refuses_when + reading.leaves_when):  # (`if not found then return;` too)
            test = _test_at(reading, at)
            if test is None or not any(kind == "ColumnRef" and strings(b.get("fields")) == ["found"]
                                       for kind, b in nodes(test)):
                continue
            if at > 0 and _always_inserts(reading.trees[at - 1]):
                yield r.finding(f"{f.qualified} refuses on FOUND right after an INSERT ... VALUES, which always "
                                "sets it: the lookup before it decides nothing.", f.qualified, location=f.location)
                break


def _row_sources(s: Schema, reading) -> dict[str, tuple[Table, str | None]]:
    """Variables a SELECT ... INTO fills from one table: var -> (the table, the column for a single-column select,
    None for a whole row: `select * into inv from invitations`)."""
    out: dict[str, tuple[Table, str | None]] = {}
    for at, names in reading.into:
        kind, select = only_statement(reading.trees[at]) if at < len(reading.trees) else ("", {})
        sources = [x.get("RangeVar") for x in select.get("fromClause") or []] if kind == "SelectStmt" else []
        if len(sources) != 1 or not isinstance(sources[0], dict):
            continue
        t = s.table(sources[0].get("relname", ""), sources[0].get("schemaname") or reading.default_schema)
        targets = [(x.get("ResTarget") or {}).get("val") for x in select.get("targetList") or []]
        if t is None:
            continue
        if len(targets) == 1 and len(names) == 1 and "ColumnRef" in (targets[0] or {}):
            fields = strings(targets[0]["ColumnRef"].get("fields"))
            out[names[0]] = (t, None if not fields or fields[-1] == "*" else fields[-1])
    return out


def _client_choice_unbounded(s: Schema, t: Table, column: str) -> str | None:
    """How clients write `column` of `t` freely: the first permissive client insert or update policy whose check
    tests nothing of the column (outside sub-queries), where they are granted it and no BEFORE trigger of that
    command refuses by new.<column>; None where every way bounds it."""
    from .common import client_policies, clients_granted
    for command in ("insert", "update"):
        if not clients_granted(s, t, command, column):
            continue
        if any(trg.timing == "before" and command in trg.events and _trigger_tests(s, trg.function, column)
               for trg in t.triggers if trg.fires):
            continue
        for p in client_policies(t, command) if t.rls_enabled else []:
            tree = p.check_tree if p.check is not None else p.using_tree
            if p.permissive and (tree is None or not any(
                    kind == "ColumnRef" and strings(b.get("fields"))[-1:] == [column]
                    for kind, b in outside_subqueries(tree))):
                return f"{command} (policy {p.name})"
    c = t.column(column)
    own = enum_of(s, c.type) if c is not None else None
    for w in definer_writes(s, t, column):  # (evasion round 13 e06b: `invite_member(p_org, p_email, p_role)`)
        if _argument_unchecked(s, w, t, column, own.values if own is not None else None):
            return f"{w.kind} (function {w.function.qualified}, reached through {w.through})"
    return None


_FOLLOWING: set[tuple[str, tuple[str, ...]]] = set()


def _argument_unchecked(s: Schema, w, t: Table, column: str, labels: list[str] | None) -> bool:
    """A definer's write puts an argument (or an expression of one, or a field of a row built from one: evasion round
    16 e09) in the column, or a trigger's write a field of NEW clients write freely (evasion round 14 e05), and the
    refusals before it on its path do not bound it (`role_bounded`: a test of it is no bound, evasion round 14 e04;
    nor is a test of another expression of the argument, round 16 e02)."""
    from .written import client_values
    reading = w.function._body
    fields: set[str] = set()
    if w.source is not None:
        fields = {strings(b.get("fields"))[1] for k, b in nodes(w.value) if k == "ColumnRef" and
                  [x.lower() for x in strings(b.get("fields"))[:1]] == ["new"] and len(strings(b.get("fields"))) == 2}
        key = (w.source.qualified, tuple(sorted(fields)))
        if key in _FOLLOWING:  # (triggers writing each other's tables: once round is enough)
            return False
        _FOLLOWING.add(key)
        try:
            fields = {f for f in fields if w.source.column(f) is not None and not _holds_only_lesser_roles(
                s, w.source, f, t, column) and _client_choice_unbounded(s, w.source, f)}
        finally:
            _FOLLOWING.discard(key)
    c = t.column(column)
    values, whole = client_values(s, w, fields, labels, c.type if c is not None else None)
    if not values or w.at in reading.unguarded:
        return bool(values)
    if whole is not None and role_bounded(s, w, t, whole, labels, c.type if c is not None else None):
        return False  # (the whole expression tested as written: `coalesce(p_role, 'member') > 'member'`, fp01b)
    return not all(role_bounded(s, w, t, v, labels, c.type if c is not None else None) for v in values)


def _trigger_tests(s: Schema, function: str, column: str) -> bool:
    f = find_function(s, function)
    reading = f._body if f is not None else None
    return reading is not None and any(
        kind == "ColumnRef" and [x.lower() for x in strings(b.get("fields"))] == ["new", column]
        for at in reading.refuses_when for kind, b in nodes(_test_at(reading, at)))


@rule("BP087", "membership_role_from_client_row", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A SECURITY DEFINER function makes memberships with a role read from a table row that clients write "
              "with any role they like (an invitation's role).",
      why="`accept_invitation` copies `invitations.role` into organization_members; the invitations insert policy "
          "checks that the inviter is an admin, not which role they invite to. An admin invites their other "
          "address as owner and accepts: the role came from a row, not an argument, so a check on the function's "
          "arguments (BP070) never sees it. A SECURITY DEFINER function clients call that writes the row is a writer "
          "too (`invite_member(p_org, p_email, p_role)` letting any member invite: evasion round 13), and a "
          "membership sub-query bounds the role only within the row's organisation (`m.organization_id = "
          "invitations.organization_id`).",
      bad="create policy invitations_insert on invitations for insert to authenticated with check (organization_id "
          "= any (array(select private.organization_ids_with_role('admin'))));\n-- accept_invitation: insert into "
          "organization_members (organization_id, user_id, role) values (inv.organization_id, auth.uid(), inv.role);",
      fix="Bound the role where the row is written: `and (role in ('viewer', 'member') or organization_id = any "
          "(array(select private.organization_ids_with_role('owner'))))` in the insert policy, a CHECK constraint "
          "holding the column to roles below admin (`check (role in ('viewer', 'member'))`) where only members "
          "holding those roles may write the row (`and m.role >= invitations.role`), or a BEFORE INSERT "
          "trigger refusing a role above the inviter's; or create invitations through a function that checks it.")
def membership_role_from_client_row(r, s: Schema) -> Iterator:
    members = membership_tables(s)
    for f in s.functions:
        reading = f._body
        if reading is None or not f.security_definer or managed(f.schema_name) or not reading.into:
            continue
        found = _role_from_client_row(s, reading, members)
        if found:
            rel, table, column, how = found
            yield r.finding(f"{f.qualified} makes {rel} rows with the role read from {table.qualified}.{column}, "
                            f"which clients {how} write with any value.", f.qualified, location=f.location)


def _role_from_client_row(s: Schema, reading, members: set[str]) -> tuple[str, Table, str, str] | None:
    """(membership table, source table, its column, how clients write it freely) of the first INSERT into a
    membership table whose role value is a variable a SELECT ... INTO filled from a row clients write freely."""
    sources = None
    for tree in reading.trees:
        for kind, body in nodes(tree):
            if kind != "InsertStmt" or not isinstance(body.get("relation"), dict):
                continue
            rel = qualified(body["relation"], reading.default_schema)
            t = s.table(*rel.split(".", 1)[::-1]) if rel in members else None
            role = role_column(t) if t is not None else None
            columns = [(c.get("ResTarget") or {}).get("name") for c in body.get("cols") or []]
            if role not in columns:
                continue
            sources = _row_sources(s, reading) if sources is None else sources
            for row in ((body.get("selectStmt") or {}).get("SelectStmt") or {}).get("valuesLists") or []:
                items = (row.get("List") or {}).get("items") or []
                value = unwrap(items[columns.index(role)]) if len(items) > columns.index(role) else None
                fields = strings(((value or {}).get("ColumnRef") or {}).get("fields"))
                source = sources.get(fields[0]) if fields else None
                if source is None:
                    continue
                table, column = source[0], source[1] if len(fields) == 1 else fields[-1]
                if column and _holds_only_lesser_roles(s, table, column, t, role):
                    continue  # `check (role in ('viewer', 'member'))`: no value clients write is a rank to fear
                how = _client_choice_unbounded(s, table, column) if column else None
                if how:
                    return rel, table, column, how
    return None


def _holds_only_lesser_roles(s: Schema, t: Table, column: str, members: Table, role: str) -> bool:
    """Every value `t.column` can hold is a role below admin (evasion round 11, fp02): a CHECK constraint limits it
    to such names (`check (role in ('viewer', 'member'))`, `role = 'member'`, `role = any (array[...])`), or its
    type is an enum of only such labels. Only names ranked below admin count, and never the top label of the
    membership role's enum: a name the ranks do not know may be anything. And whoever may write the row holds
    each of those roles at least (`inviters`): a viewer allowed to invite as member is not bounded (round 12 e09)."""
    member_role = members.column(role)
    labels = (enum_of(s, member_role.type) if member_role is not None else None)
    top = ({labels.values[0] if ranks_reversed(labels.values) else labels.values[-1]}
           if labels is not None and labels.values else set())

    def lesser(values: list[Any] | None) -> bool:
        return bool(values) and all(isinstance(v, str) and ROLE_RANKS.get(v, 0) >= 2 and v not in top
                                    for v in values) and writers_outrank(s, t, column, values, labels and labels.values)
    c = t.column(column)
    own = enum_of(s, c.type) if c is not None else None
    if own is not None and lesser(own.values):
        return True
    return any(lesser(_admitted(atom, column)) for k in t.constraints if k.kind == "check" and k.tree is not None
               for atom in boolean_args(k.tree, "AND_EXPR"))


def _admitted(atom: Any, column: str) -> list[Any] | None:
    """The constants a CHECK's conjunct holds `column` to: `c in (...)`, `c = 'x'`, `c = any (array[...])` (the
    column possibly cast); None for any other test."""
    body = atom.get("A_Expr") if isinstance(atom, dict) else None
    if not isinstance(body, dict) or strings(body.get("name")) != ["="]:
        return None
    ref = unwrap(body.get("lexpr"))
    if strings(((ref or {}).get("ColumnRef") or {}).get("fields"))[-1:] != [column]:
        return None
    right, kind = unwrap(body.get("rexpr")), body.get("kind", "AEXPR_OP")
    if kind == "AEXPR_IN":
        items = ((body.get("rexpr") or {}).get("List") or {}).get("items") or []
    elif kind == "AEXPR_OP_ANY":
        items = ((right or {}).get("A_ArrayExpr") or {}).get("elements") or []
    elif kind == "AEXPR_OP":
        items = [right]
    else:
        return None
    values = [const(unwrap(i)) for i in items]
    return values if values and all(isinstance(v, str) for v in values) else None


@rule("BP089", "definer_write_outside_check", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A SECURITY DEFINER function clients call asks who calls on some paths, and writes an organisation's "
              "rows on another path that no check guards.",
      why="A dispatcher (`manage_project(p_org, p_project, p_action)`) checks that the caller is an admin in its "
          "'delete' branch and renames in its 'rename' branch without any check: past RLS, anyone renames any "
          "organisation's project. BP057 reads a body that never asks who calls; here it asks, in the wrong place. "
          "An UPDATE of the caller's own membership or profile row (`user_id = auth.uid()`, or a variable only "
          "ever set to it; not `coalesce(p_user, auth.uid())`, the row of whoever p_user names) that sets nothing "
          "anything decides by passes.",
      bad="if p_action = 'delete' then\n  if not (p_org = any (array(select private.organization_ids_with_role("
          "'admin')))) then raise exception 'admins only'; end if;\n  delete from public.projects where ...;\n"
          "elsif p_action = 'rename' then\n  update public.projects set name = p_name where ...;\nend if;",
      fix="Check the caller before the branches (the least rank any action needs), or in every branch that writes.")
def definer_write_outside_check(r, s: Schema) -> Iterator:
    for f, through in client_definers(s):
        reading = f._body
        if reading is None or not reading.asks_caller or not reading.unguarded:
            continue
        for at in reading.unguarded:
            kind, body = only_statement(reading.trees[at]) if at < len(reading.trees) else ("", {})
            if kind not in ("InsertStmt", "UpdateStmt", "DeleteStmt") or not isinstance(body.get("relation"), dict):
                continue
            rel = qualified(body["relation"], reading.default_schema)
            t = _guarded(s, rel)
            if t is not None and not (kind == "UpdateStmt" and _own_row_update(s, reading, t, body)):
                yield r.finding(f"{f.qualified} asks who calls on some paths but writes {rel} on one no check "
                                f"guards; clients reach it through {through}.", f.qualified, location=f.location)
                break


def _own_row_update(s: Schema, reading, t: Table, update: dict) -> bool:
    """An UPDATE of the caller's own membership (or profile) row that sets nothing anything decides by: its filter
    pins the user column to the caller (`user_id = (select auth.uid())`), and it sets no key, user or role column,
    nor a column a policy or a function's body reads (a membership's status). Stamping `last_seen_at` on one's own
    membership needs no check (evasion round 11, fp03)."""
    from ...model.tenant_keys import user_columns, user_tables
    tables = user_tables(s.tables)
    if t.qualified not in membership_tables(s) and (t.schema_name, t.name) not in tables:
        return False
    users = set(user_columns(t, tables))
    alias = ((update.get("relation") or {}).get("alias") or {}).get("aliasname") or t.name
    callers = _certain_callers(reading)

    def caller(value) -> bool:  # auth.uid(), (select auth.uid()), or a variable only ever set to it
        value = unwrap(value)
        ref = strings((value.get("ColumnRef") or {}).get("fields")) if isinstance(value, dict) else []
        return _is_uid(value) or (len(ref) == 1 and ref[0] in callers)

    pinned = False
    for x in boolean_args(update.get("whereClause"), "AND_EXPR") if update.get("whereClause") else []:
        e = x.get("A_Expr") if isinstance(x, dict) else None
        sides = equated_columns(e) if isinstance(e, dict) else None
        for col, other in ((sides[0], e.get("rexpr")), (sides[1], e.get("lexpr"))) if sides else ():
            pinned = pinned or (bool(col) and col[-1] in users and (len(col) == 1 or col[0] == alias) and caller(other))
    if not pinned:
        return False
    kept = users | {t.tenant_key, role_column(t)} | {c for k in t.constraints if k.kind == "primary key"
                                                      for c in k.columns}
    written = {(target.get("ResTarget") or {}).get("name") for target in update.get("targetList") or []}
    if written & kept or None in written:
        return False
    trees = [g._body.trees for g in s.functions if g._body is not None] + \
        [[p.using_tree, p.check_tree] for p in [*s.storage_policies, *(p for t2 in s.tables for p in t2.policies)]]
    return not any(k == "ColumnRef" and strings(b.get("fields"))[-1:] and strings(b.get("fields"))[-1] in written
                   for tree in trees for k, b in nodes(tree))


def _is_uid(value) -> bool:
    """`auth.uid()` or `(select auth.uid())`, nothing around it (not coalesce(p_user, auth.uid()))."""
    value = unwrap(value)
    link = value.get("SubLink") if isinstance(value, dict) else None
    if isinstance(link, dict) and link.get("subLinkType") == "EXPR_SUBLINK":
        value = unwrap(lone_value((link.get("subselect") or {}).get("SelectStmt")))
    return isinstance(value, dict) and function_name(value.get("FuncCall") or {}) == "auth.uid"


def _certain_callers(reading) -> set[str]:
    """Variables equal to the caller on every path: each assignment of them (`v := auth.uid()`, `select auth.uid()
    into v`, a DECLARE default) is auth.uid() alone, and none is a parameter (its value is the client's until
    set). `v_user := coalesce(p_user, auth.uid())` is the argument whenever one is given (evasion round 12,
    e11)."""
    values: dict[str, list[Any]] = {}
    for at, names in reading.into:
        kind, select = only_statement(reading.trees[at]) if at < len(reading.trees) else ("", {})
        value = lone_value(select) if kind == "SelectStmt" and len(names) == 1 else None
        for name in names:
            values.setdefault(name, []).append(value)
    params = set(_arguments(reading))
    return {name for name, found in values.items() if name not in params and all(_is_uid(v) for v in found)}


# SQL value functions naming the role a statement runs as: in a SECURITY DEFINER body, the function's owner.
_EXECUTING_ROLE = ("SVFOP_CURRENT_USER", "SVFOP_CURRENT_ROLE", "SVFOP_USER")
_ROLE_TESTS = ("pg_has_role", "has_table_privilege", "has_function_privilege", "has_schema_privilege")


@rule("BP093", "definer_tests_current_user", Level.ERROR, ("SECURITY",),
      summary="A SECURITY DEFINER function or trigger compares current_user (or current_role, user) with a role: in "
              "its body that is always the function's owner, so the test answers the same for every caller.",
      why="A definer body runs as its owner: `if current_user in ('postgres', 'service_role') then return new; end "
          "if;` (a bypass meant for server jobs) holds for every client when the owner is postgres, so the guard or "
          "membership check after it never runs; `current_user = 'authenticated'` never holds. Audit-evasion round "
          "9: a stranger read any project's notes through an RPC, and a guard trigger that kept tasks in their "
          "organisation let a member move another's task away and delete it. Rules that accept the check or the "
          "guard cannot tell it is dead code.",
      bad="create function private.guard_tasks() returns trigger language plpgsql security definer\n"
          "set search_path = '' as $$ begin\n"
          "  if current_user in ('postgres', 'service_role') then return new; end if;\n"
          "  ...",
      fix="Ask the request, not the executing role: `(select auth.role()) = 'service_role'`, or "
          "`current_setting('role', true)` (the role PostgREST set, which a definer body does not change); or make "
          "a trigger that needs no owner's rights SECURITY INVOKER, where current_user is the caller.")
def definer_tests_current_user(r, s: Schema) -> Iterator:
    for f in s.functions:
        reading = f._body
        if reading is None or not f.security_definer or managed(f.schema_name):
            continue
        if any(_tests_executing_role(tree) for tree in reading.trees):
            yield r.finding(f"{f.qualified} is SECURITY DEFINER and compares current_user, which in its body is "
                            "always its owner: the test answers the same for every caller.", f.qualified,
                            location=f.location)


def _tests_executing_role(tree: Any) -> bool:
    """A comparison (or a role-privilege test) with current_user, current_role or user as an operand."""
    def executing(value: Any) -> bool:
        value = unwrap(value)
        return isinstance(value, dict) and (value.get("SQLValueFunction") or {}).get("op") in _EXECUTING_ROLE
    for kind, body in nodes(tree):
        if kind == "A_Expr" and (executing(body.get("lexpr")) or executing(body.get("rexpr"))):
            return True
        if kind == "FuncCall" and function_name(body).split(".")[-1] in _ROLE_TESTS and \
                any(executing(a) for a in body.get("args") or []):
            return True
    return False
