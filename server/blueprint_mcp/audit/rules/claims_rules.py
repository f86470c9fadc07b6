"""Who the request says it is: the claims PostgREST hands the database, and app_metadata, where they come from.

Policies ask `auth.uid()`, `auth.jwt()` and the role, all read from settings PostgREST makes from the token, and
trust app_metadata as written by the server alone. A function clients reach that rewrites those settings, or writes
their own values into app_metadata, decides who the caller is for everything that trusts them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ...model.schema import Function, Schema
from ..body import USER_METADATA, mentions_variables, variables_from
from ..findings import Level
from ..platform import managed
from ..registry import rule
from ..tree import const, function_name, nodes, qualified, strings
from ..pins import unwrap
from .common import (_once, client_policies, clients_granted, find_function, names_the_caller, policy_label, tested,
                     trees)
from .reach_rules import _clients_execute, client_definers, invoker_paths


def client_reached(s: Schema) -> list[tuple[Function, str, bool]]:
    """(function, how clients reach it, whether it runs past the caller's rights) for each function clients call
    through the API, the exposed views and functions, or a trigger of a table they write, and each function those
    call in turn (an invoker callee only where clients may execute it, or where a definer calls it)."""
    return _once("client reached", s, _client_reached, s)


def _client_reached(s: Schema) -> list[tuple[Function, str, bool]]:
    roots: list[tuple[Function, str, bool]] = []
    for e in invoker_paths(s):
        path = e.label.split(" -> ")
        f = find_function(s, path[-1][len("function "):]) if path[-1].startswith("function ") else None
        if f is not None and e.invoker:
            roots.append((f, "the API" if len(path) == 1 else " -> ".join(path[:-1]), False))
    roots += [(f, through, True) for f, through in client_definers(s)]
    for t in s.tables:
        if managed(t.schema_name):
            continue
        for trg in t.triggers:
            f = find_function(s, trg.function)
            events = [e for e in trg.events if e in ("insert", "update", "delete") and clients_granted(s, t, e)
                      and (not t.rls_enabled or client_policies(t, e))]
            if f is not None and events:
                roots.append((f, f"trigger {trg.name} on {t.qualified}", f.security_definer))
    out: list[tuple[Function, str, bool]] = []
    seen: set[str] = set()
    while roots:
        f, how, elevated = roots.pop(0)
        if f.qualified in seen or managed(f.schema_name):
            continue
        seen.add(f.qualified)
        out.append((f, how, elevated))
        for name in dict.fromkeys(f.calls or ()):
            g = find_function(s, name)
            # the caller's own rights need EXECUTE on the callee; a definer's owner has it
            if g is not None and g.qualified not in seen and (elevated or _clients_execute(g)):
                roots.append((g, f"{how} -> {f.qualified}" if how != "the API" else f.qualified,
                              elevated or g.security_definer))
    return out


# --- BP096 ---------------------------------------------------------------------------------------------------

def _identity_setting(name: Any) -> bool:
    """A setting that says who the request is: PostgREST's claims (whole, or one claim as older versions and
    auth.uid() read them), or the role the statements run as."""
    name = str(name or "").lower()
    return name in ("request.jwt.claims", "role") or name.startswith("request.jwt.claim.")


def _cleared(value: Any) -> bool:
    """NULL or '': the setting emptied, as after the request (a sign-out, not someone else)."""
    value = unwrap(value)
    body = value.get("A_Const") if isinstance(value, dict) else None
    return isinstance(body, dict) and (bool(body.get("isnull")) or const(value) == "")


def _request_own(value: Any, own: set[str]) -> bool:
    """The request's own claims put back: current_setting of an identity setting, or a variable holding it."""
    value = unwrap(value)
    call = value.get("FuncCall") if isinstance(value, dict) else None
    if isinstance(call, dict):
        args = call.get("args") or []
        return function_name(call).split(".")[-1] == "current_setting" and bool(args) and \
            _identity_setting(const(args[0]))
    ref = strings((value or {}).get("ColumnRef", {}).get("fields")) if isinstance(value, dict) else []
    return len(ref) == 1 and ref[0] in own


def _rewrites(reading) -> list[tuple[int | None, str, bool]]:
    """(position in trees, None for an EXECUTE text; the setting; whether it lasts the transaction only) of each
    set_config() or SET of an identity setting to a value other than empty or the request's own."""
    own = _held_own(reading)
    out: list[tuple[int | None, str, bool]] = []
    for at, tree in enumerate(reading.trees):
        for kind, body in nodes(tree):
            if kind == "FuncCall" and function_name(body).split(".")[-1] == "set_config":
                args = body.get("args") or []
                if len(args) >= 2 and _identity_setting(const(args[0])) and not _cleared(args[1]) and \
                        not _request_own(args[1], own):
                    out.append((at, str(const(args[0])), len(args) > 2 and const(args[2]) is True))
            elif kind == "VariableSetStmt" and _set_to_someone(body):
                out.append((at, body["name"], bool(body.get("is_local"))))
    out += [(None, stmt["VariableSetStmt"]["name"], bool(stmt["VariableSetStmt"].get("is_local")))
            for stmt in reading.shapes if isinstance(stmt, dict) and _set_to_someone(stmt.get("VariableSetStmt"))]
    return out


def _set_to_someone(body: Any) -> bool:
    """SET [LOCAL] of an identity setting to a value (SET ROLE x, SET request.jwt.claims = '...'); RESET and SET
    ... TO DEFAULT put the request's own back."""
    return isinstance(body, dict) and body.get("kind") == "VAR_SET_VALUE" and _identity_setting(body.get("name")) \
        and not all(_cleared(a) for a in body.get("args") or [])


def _held_own(reading) -> set[str]:
    """Variables only ever set to the request's own claims (`saved text := current_setting('request.jwt.claims',
    true)`)."""
    sets: dict[str, set[bool]] = {}
    for at, names in reading.into:
        tree = reading.trees[at] if at < len(reading.trees) else None
        select = next((b for k, b in nodes(tree) if k == "SelectStmt"), None)
        targets = (select or {}).get("targetList") or []
        for name in names:
            value = (targets[0].get("ResTarget") or {}).get("val") if len(targets) == 1 and len(names) == 1 and \
                not (select or {}).get("fromClause") else None
            sets.setdefault(name, set()).add(value is not None and _request_own(value, set()))
    return {name for name, found in sets.items() if found == {True}}


def _limited_after(s: Schema, reading, at: int) -> bool:
    """What follows the rewrite reads only protected rows of organisations the real caller was checked against
    before it (audit-evasion round 10, e03's fix): every later statement calls none of the app's functions, and
    keeps each RLS table it reads to `tenant_key = any (v)` (or `= v`), v set before the rewrite from a statement
    naming the caller and never set again."""
    checked = {name for i, names in reading.into if i < at and any(
        k == "FuncCall" and names_the_caller(function_name(b)) for k, b in nodes(reading.trees[i]))
        for name in names}
    checked -= {name for i, names in reading.into if i >= at for name in names}
    later = reading.trees[at + 1:]
    if not checked or not later:
        return False
    for tree in later:
        if any(k == "FuncCall" and find_function(s, function_name(b)) is not None for k, b in nodes(tree)):
            return False
        for kind, body in nodes(tree):
            if kind != "RangeVar":
                continue
            schema, name = body.get("schemaname") or reading.default_schema, body.get("relname", "")
            t = s.table(name, schema)
            alias = (body.get("alias") or {}).get("aliasname") or name
            if t is None:
                if any(k == "CommonTableExpr" and b.get("ctename") == name for k, b in nodes(tree)):
                    continue
                if any(v.schema_name == schema and v.name == name for v in s.views) or \
                        not _keeps_to(tree, alias, None, checked):
                    return False  # a view shows what it shows as whoever is named; a table made elsewhere, kept
                continue  # to the checked organisations by some column (its tenant key is not known here)
            if t.rls_enabled and (not t.tenant_key or not _keeps_to(tree, alias, t.tenant_key, checked)):
                return False
    return True


def _keeps_to(tree: Any, alias: str, key: str | None, names: set[str]) -> bool:
    """Some WHERE of the statement has, among its top-level ANDs, `alias.key = any (v)` or `alias.key = v`, v one
    of `names` (key None: any column of alias)."""
    for kind, body in nodes(tree):
        where = body.get("whereClause") if kind in ("SelectStmt", "UpdateStmt", "DeleteStmt") else None
        if where is None:
            continue
        parts = (where.get("BoolExpr") or {}).get("args") if (where.get("BoolExpr") or {}).get("boolop") == \
            "AND_EXPR" else [where]
        for part in parts or []:
            e = part.get("A_Expr") if isinstance(part, dict) else None
            if not isinstance(e, dict) or strings(e.get("name")) != ["="] or \
                    e.get("kind") not in ("AEXPR_OP", "AEXPR_OP_ANY"):
                continue
            for a, b in ((e.get("lexpr"), e.get("rexpr")), (e.get("rexpr"), e.get("lexpr"))):
                column = strings((unwrap(a) or {}).get("ColumnRef", {}).get("fields")) if isinstance(unwrap(a), dict) \
                    else []
                if (column in ([key], [alias, key]) or (key is None and column[:-1] in ([], [alias]) and column)) \
                        and isinstance(unwrap(b), dict) and \
                        strings(unwrap(b).get("ColumnRef", {}).get("fields")) in [[n] for n in names]:
                    return True
    return False


def _called_by_others(s: Schema, f: Function) -> bool:
    return any(f.qualified in (g.calls or ()) or f.name in (g.calls or ()) for g in s.functions if g is not f) or \
        any(f.qualified in (v.calls or ()) or f.name in (v.calls or ()) for v in s.views)


@rule("BP096", "function_rewrites_request_claims", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A function clients reach sets request.jwt.claims (or a claim, or the role) to someone else: every "
              "later statement of the request runs as whoever it names.",
      why="auth.uid(), auth.jwt() and the role PostgREST set are read from these settings; `set_config("
          "'request.jwt.claims', jsonb_build_object('sub', p_user, ...)::text, true)` makes every policy after it "
          "answer for p_user. A \"view as teammate\" RPC that checks the caller shares an organisation with the "
          "teammate, then reads as them, shows the teammate's other organisations too (audit-evasion round 10, "
          "e03). A session-wide value (is_local false) outlives the request on a pooled connection, and "
          "`request.jwt.claim.sub` there outranks the next request's own token in auth.uid(); `set role` (or "
          "`set_config('role', ...)`) switches to any role the connecting user may take, service_role included. "
          "Reached through a trigger of a table clients write, or through EXECUTE, it is the same.",
      bad="perform set_config('request.jwt.claims', jsonb_build_object('sub', p_user, 'role', 'authenticated')::text,"
          " true);\nreturn query select * from public.projects;",
      fix="Do not impersonate in the database: answer with the caller's own rights, or compute what the caller may "
          "see first (the organisations they administer that the teammate shares) and keep every later statement "
          "to it (`where p.organization_id = any (shared)`), with is_local true. Clearing the claims (NULL or '') "
          "or putting the request's own back passes.")
def function_rewrites_request_claims(r, s: Schema) -> Iterator:
    for f, how, elevated in client_reached(s):
        reading = f._body
        if reading is None:
            continue
        for at, setting, local in _rewrites(reading):
            if setting.lower() == "role" and f.security_definer:
                continue  # PostgreSQL refuses SET ROLE inside a SECURITY DEFINER function: it never runs
            if at is not None and local and how == "the API" and not _called_by_others(s, f) and \
                    _limited_after(s, reading, at):
                continue
            scope = "for the rest of the transaction" if local else "for the rest of the session"
            yield r.finding(f"{f.qualified} sets {setting} to a value it computes: statements after it answer for "
                            f"whoever that names {scope}; clients reach it through {how}.", f.qualified,
                            location=f.location)
            break


# --- BP097 ---------------------------------------------------------------------------------------------------

_APP_METADATA = ("raw_app_meta_data", "app_metadata")
_SETTERS = ("jsonb_set", "jsonb_set_lax", "jsonb_insert")
_BUILDERS = ("jsonb_build_object", "json_build_object")


def trusted_app_metadata_keys(s: Schema) -> dict[str, str]:
    """key -> who reads it, for each app_metadata key a policy or function reads: `auth.jwt() -> 'app_metadata'
    ->> 'org_role'`, `#>> '{app_metadata,org_role}'`, `raw_app_meta_data ->> 'org_role'`."""
    return _once("app_metadata keys", s, _trusted_keys, s)


def _trusted_keys(s: Schema) -> dict[str, str]:
    readers = [(policy_label(t, p), tree) for t in s.tables for p in t.policies for _, tree, _ in trees(p)]
    readers += [(f"function {f.qualified}", tree) for f in s.functions if f._body is not None
                for tree in f._body.trees]
    out: dict[str, str] = {}
    for label, tree in readers:
        for key in _keys_read(tree):
            out.setdefault(key, label)
    return out


def _keys_read(tree: Any) -> list[str]:
    out = []
    for kind, body in nodes(tree):
        if kind != "A_Expr":
            continue
        op, left, right = strings(body.get("name")), unwrap(body.get("lexpr")), const(body.get("rexpr"))
        if op in (["#>"], ["#>>"]) and isinstance(right, str):
            path = [p.strip().strip('"') for p in right.strip("{}").split(",")]
            if len(path) > 1 and path[0] in _APP_METADATA:
                out.append(path[1])
        elif op in (["->"], ["->>"]) and isinstance(right, str) and isinstance(left, dict):
            inner = left.get("A_Expr") or {}
            column = strings((left.get("ColumnRef") or {}).get("fields"))
            if (strings(inner.get("name")) == ["->"] and const(inner.get("rexpr")) in _APP_METADATA) or \
                    column[-1:] == ["raw_app_meta_data"]:
                out.append(right)
    return out


def _client_value(node: Any, client: set[str]) -> bool:
    """The expression names an argument, a variable made from one, or the user's own metadata."""
    return mentions_variables(node, client) or any(
        kind == "ColumnRef" and strings(body.get("fields"))[-1:] and strings(body.get("fields"))[-1] in USER_METADATA
        for kind, body in nodes(node))


def _written_by_client(node: Any, client: set[str], trusted: dict[str, str],
                       checked: Callable[[Any], bool]) -> str | None:
    """How the client's value lands in app_metadata, if where it lands is the client's choice or a key something
    trusts: merged at the top level (`raw_app_meta_data || p_settings`), under a key the client names, as a key
    the client removes, or under a fixed key a policy or function reads, with a value the body never tests
    (`checked`: an organisation switcher that first checks the caller is a member of p_org passes). None for a
    value under a fixed key nothing reads (`|| jsonb_build_object('ui_settings', p_settings)`), or one the server
    computes."""
    node = unwrap(node)
    if not isinstance(node, dict) or not _client_value(node, client):
        return None
    kind, body = next(iter(node.items()))
    if kind == "A_Expr" and strings(body.get("name")) == ["||"]:
        return _written_by_client(body.get("lexpr"), client, trusted, checked) or \
            _written_by_client(body.get("rexpr"), client, trusted, checked)
    if kind == "A_Expr" and strings(body.get("name")) in (["-"], ["#-"]):
        return _written_by_client(body.get("lexpr"), client, trusted, checked) or (
            "removes keys the client names" if _client_value(body.get("rexpr"), client) else None)
    if kind == "CoalesceExpr":
        return next((w for a in body.get("args") or [] if (w := _written_by_client(a, client, trusted, checked))),
                    None)
    if kind == "CaseExpr":
        results = [(w.get("CaseWhen") or {}).get("result") for w in body.get("args") or []] + [body.get("defresult")]
        return next((w for a in results if (w := _written_by_client(a, client, trusted, checked))), None)
    name = function_name(body).split(".")[-1] if kind == "FuncCall" else ""
    args = body.get("args") or [] if kind == "FuncCall" else []
    if name in _BUILDERS:
        for key, value in zip(args[::2], args[1::2]):
            if _client_value(key, client):
                return "under a key the client names"
            if isinstance(const(key), str) and const(key) in trusted and _client_value(value, client) and \
                    not checked(value):
                return f"as '{const(key)}', which {trusted[const(key)]} trusts"
        return None
    if name in _SETTERS and len(args) >= 3:
        found = _written_by_client(args[0], client, trusted, checked)
        if found or _client_value(args[1], client):
            return found or "under a key the client names"
        path = const(unwrap(args[1]))
        items = (unwrap(args[1]) or {}).get("A_ArrayExpr", {}).get("elements") if isinstance(unwrap(args[1]), dict) \
            else None
        key = path.strip("{}").split(",")[0].strip().strip('"') if isinstance(path, str) else \
            const(items[0]) if items else None
        return f"as '{key}', which {trusted[key]} trusts" if key in trusted and _client_value(args[2], client) \
            and not checked(args[2]) else None
    return "merged at the top level"


def _app_metadata_writes(reading) -> list[tuple[Any, bool]]:
    """(value, whether it is the caller's own row) for each value an UPDATE of auth.users gives raw_app_meta_data
    (`where id = (select auth.uid())`: the caller's own), and each a trigger gives new.raw_app_meta_data (the row
    of the user signing up)."""
    out = []
    for tree in reading.trees:
        for kind, body in nodes(tree):
            if kind == "UpdateStmt" and isinstance(body.get("relation"), dict) and \
                    qualified(body["relation"], reading.default_schema) == "auth.users":
                own = any(k == "FuncCall" and names_the_caller(function_name(b)) for k, b in
                          nodes(body.get("whereClause")))
                out += [((t.get("ResTarget") or {}).get("val"), own) for t in body.get("targetList") or []
                        if (t.get("ResTarget") or {}).get("name") == "raw_app_meta_data"]
    for field, at in reading.stamps:
        tree = reading.trees[at] if at < len(reading.trees) else None
        select = next((b for k, b in nodes(tree) if k == "SelectStmt"), None)
        targets = (select or {}).get("targetList") or []
        if field.lower() == "raw_app_meta_data" and len(targets) == 1:
            out.append(((targets[0].get("ResTarget") or {}).get("val"), True))
    return out


def _auth_user_triggers(s: Schema) -> list[tuple[Function, str]]:
    """Trigger functions on auth.users that run as users sign up or change their metadata: GoTrue writes the row,
    but raw_user_meta_data is what the user sent."""
    return [(f, f"trigger {trg.name} on auth.users (sign-up, updateUser)") for trg in s.auth_triggers
            if {"insert", "update"} & set(trg.events) and (f := find_function(s, trg.function)) is not None]


@rule("BP097", "client_value_written_to_app_metadata", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A function clients reach writes their own values into auth.users' app_metadata: at the top level, "
              "under a key they name, or under a key a policy or function trusts.",
      why="app_metadata is the part of the token only the server writes, so policies trust its claims (an "
          "organisation's role, a plan, an admin flag). A SECURITY DEFINER RPC that merges the client's JSON into "
          "raw_app_meta_data (`raw_app_meta_data || p_settings`, \"the theme rides in the token\") lets a plain "
          "member write `org_roles.{A}: owner` into their own next token, and a policy reading it lets them delete "
          "A's projects (audit-evasion round 10, e07). The same holds for a key the client names (`jsonb_set(..., "
          "array[p_key], p_value)`), a fixed key a policy reads set from an argument, and a sign-up trigger copying "
          "raw_user_meta_data (what the user sends) into app_metadata. BP070 reads role writes to the membership "
          "table, BP076 a token hook's claims from user_metadata.",
      bad="update auth.users set raw_app_meta_data = coalesce(raw_app_meta_data, '{}'::jsonb) || p_settings\n"
          " where id = (select auth.uid());",
      fix="Keep client preferences out of app_metadata (user_metadata or a profiles table), or put them under a key "
          "of their own that nothing trusts (`|| jsonb_build_object('ui_settings', p_settings)`); write trusted keys "
          "only with values the server computes (from the memberships), or test the argument first (a switcher that "
          "checks the caller is a member of p_org passes). Another user's row written behind a refusal that asks who "
          "calls (an admin's tool) passes.")
def client_value_written_to_app_metadata(r, s: Schema) -> Iterator:
    reached = [(f, how) for f, how, elevated in client_reached(s) if elevated] + _auth_user_triggers(s)
    for f, how in reached:
        reading = f._body
        if reading is None or ("auth.users" not in (f.writes or ()) and
                               not any(field.lower() == "raw_app_meta_data" for field, _ in reading.stamps)):
            continue
        trusted = trusted_app_metadata_keys(s)
        params = {name for name, _ in reading.params if name}
        client = params | variables_from(reading.trees, reading.into, lambda tree: mentions_variables(tree, params))

        def checked(value: Any) -> bool:  # every argument in the value tested by the body first
            names = {strings(b.get("fields"))[0] for k, b in nodes(value) if k == "ColumnRef"} & client
            return bool(names) and all(tested(reading, lambda n, x=x: mentions_variables(n, {x})) for x in names)
        # another user's row, behind a refusal that asks who calls: an admin's tool (set_user_admin after is_admin())
        guarded = bool(reading.guards) and reading.asks_caller
        found = next((w for value, own in _app_metadata_writes(reading) if own or not guarded
                      if (w := _written_by_client(value, client, trusted, checked))), None)
        if found:
            yield r.finding(f"{f.qualified} writes the client's own value into app_metadata, {found}; clients reach "
                            f"it through {how}.", f.qualified, location=f.location)
