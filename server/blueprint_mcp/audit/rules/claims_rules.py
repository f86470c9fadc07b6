"""Who the request says it is: the claims PostgREST hands the database, and app_metadata, where they come from.

Policies ask `auth.uid()`, `auth.jwt()` and the role, all read from settings PostgREST makes from the token, and
trust app_metadata as written by the server alone. A function clients reach that rewrites those settings, or writes
their own values into app_metadata, decides who the caller is for everything that trusts them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ...model.schema import Function, Schema
from ..findings import Level
from ..platform import managed
from ..registry import rule
from ..tree import const, function_name, nodes, strings
from ..pins import unwrap
from .common import _once, client_policies, clients_granted, find_function, names_the_caller
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
