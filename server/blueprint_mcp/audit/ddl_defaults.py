"""Statement handlers, part 4: default privileges, what a new table, view or function is granted.

A Supabase project starts with PostgreSQL's defaults (PUBLIC executes new functions) and Supabase's for
the role migrations run as (postgres): in schema public, anon and authenticated get every privilege on
new tables and functions. ALTER DEFAULT PRIVILEGES changes that for objects created afterwards, as
PostgreSQL applies it: a global entry (no IN SCHEMA) and a per-schema one add up, and a REVOKE removes
only from the entry it names (a per-schema REVOKE cannot take back a global grant).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..model.schema import Grants, Privilege
from .ddl import HANDLERS
from .ddl_objects import TABLE_PRIVILEGES, role_names
from .tree import strings

if TYPE_CHECKING:
    from .parse import Reader, Stmt

Defaults = dict[tuple[str, str | None], dict[str, set[str]]]  # (kind, schema or None) -> role -> privileges

_API_ROLES = ("anon", "authenticated", "service_role")
_CLIENT_ROLES = ("anon", "authenticated", "public")
# FOR ROLE naming one of these changes what the migrations create; another role's defaults do not.
_MIGRATION_ROLES = frozenset({"postgres", "current_user", "current_role", "session_user"})
_KINDS = {"OBJECT_TABLE": "tables", "OBJECT_FUNCTION": "functions"}  # ROUTINES parse as functions
_ALL = {"tables": frozenset(TABLE_PRIVILEGES), "functions": frozenset({"execute"})}
_LEGACY = {"anon": _ALL["tables"], "authenticated": _ALL["tables"], "public": frozenset()}


def supabase_defaults() -> Defaults:
    return {("tables", "public"): {role: set(_ALL["tables"]) for role in _API_ROLES},
            ("functions", None): {"public": {"execute"}},
            ("functions", "public"): {role: {"execute"} for role in _API_ROLES}}


def _held(r: Reader, kind: str, schema: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for key in ((kind, None), (kind, schema)):
        for role, privileges in r.default_privileges.get(key, {}).items():
            out.setdefault(role, set()).update(privileges)
    return out


def new_grants(r: Reader, schema: str) -> Grants:
    """A new relation's grants to the client roles; {} while they are Supabase's legacy all-to-the-API-roles,
    which is how the rules read a relation no GRANT or REVOKE has touched."""
    held = _held(r, "tables", schema)
    client = {role: held.get(role, set()) for role in _CLIENT_ROLES}
    if client == _LEGACY:
        return {}
    return {role: [Privilege(privilege=p) for p in TABLE_PRIVILEGES if p in privileges]
            for role, privileges in client.items()}


def new_execute_roles(r: Reader, schema: str) -> list[str]:
    """The roles that may execute a new function in `schema`, PUBLIC and the API roles first."""
    held = _held(r, "functions", schema)
    return [role for role in dict.fromkeys(("public", "anon", "authenticated", *sorted(held)))
            if "execute" in held.get(role, ())]


def alter_default_privileges(r: Reader, n: dict, st: Stmt) -> None:
    options = {d["DefElem"].get("defname"): (d["DefElem"].get("arg") or {}).get("List", {}).get("items") or []
               for d in n.get("options") or [] if "DefElem" in d}
    owners = role_names(options.get("roles"))
    action = n.get("action") or {}
    kind = _KINDS.get(action.get("objtype", ""))
    if kind is None or (owners and not _MIGRATION_ROLES & set(owners)):
        return
    named = {p.get("AccessPriv", {}).get("priv_name", "all") for p in action.get("privileges") or []}
    privileges = set(_ALL[kind]) if not named or "all" in named else named & _ALL[kind]
    for schema in strings(options.get("schemas")) or [None]:
        entry = r.default_privileges.setdefault((kind, schema), {})
        for role in role_names(action.get("grantees")):
            if action.get("is_grant"):
                entry.setdefault(role, set()).update(privileges)
            else:
                entry[role] = entry.get(role, set()) - privileges


HANDLERS.update({"AlterDefaultPrivilegesStmt": alter_default_privileges})
