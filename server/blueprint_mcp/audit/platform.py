"""The platform's lints as facts, defined once: the static rules and the catalogue queries both read them.

Supabase's database advisors (the splinter project) decide each lint from the catalogue; the
auditor decides the same lints from SQL text. Name, level, categories, description and
remediation of every lint, the schemas the platform manages and the sensitive column names live
here, so the two readings cannot drift apart (tests/test_platform_parity.py runs both on one corpus).
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterable
from typing import Any

from .findings import Level
from .fold import fold, fold_condition
from .tree import function_name

# Schemas the platform manages: never the user's objects, never reported (splinter's list, as is).
MANAGED_SCHEMAS = frozenset({
    "_timescaledb_cache", "_timescaledb_catalog", "_timescaledb_config", "_timescaledb_internal", "auth",
    "cron", "extensions", "graphql", "graphql_public", "information_schema", "net", "pgmq", "pgroonga",
    "pgsodium", "pgsodium_masks", "pgtle", "pgbouncer", "pg_catalog", "realtime", "repack", "storage",
    "supabase_functions", "supabase_migrations", "tiger", "topology", "vault",
})
# auth_rls_initplan keeps realtime: policies on realtime.messages are the user's.
INITPLAN_SCHEMAS_EXCLUDED = MANAGED_SCHEMAS - {"realtime"}
# unsupported_reg_types looks everywhere but these.
REG_TYPES_SCHEMAS_EXCLUDED = frozenset({"pg_catalog", "information_schema", "pgsodium"})

API_ROLES = ("anon", "authenticated")
# Roles whose policies never run, which multiple_permissive_policies leaves out: those with BYPASSRLS on a
# Supabase project (the catalogue asks pg_roles), the migration role included however a policy names it.
RLS_BYPASSING_ROLES = frozenset({"service_role", "postgres", "supabase_admin", "current_user", "current_role",
                                 "session_user"})


def bypasses_rls(role: str) -> bool:
    """A role the lint leaves out: RLS_BYPASSING_ROLES, pg_* roles and supabase*admin roles (as the
    catalogue's query excludes them by name: supabase_storage_admin, supabase_auth_admin...)."""
    return role in RLS_BYPASSING_ROLES or role.startswith("pg_") or (role.startswith("supabase")
                                                                     and role.endswith("admin"))
# Roles a policy lint considers: PUBLIC (no TO, or TO public) and the two API roles.
POLICY_LINT_ROLES = frozenset({"public", "anon", "authenticated"})

# Column names the platform treats as sensitive (matched whole, case-insensitive, '-' read as '_').
SENSITIVE_COLUMNS = (
    "password", "passwd", "pwd", "passphrase", "secret", "secret_key", "private_key", "api_key",
    "apikey", "auth_key", "token", "jwt", "access_token", "refresh_token", "oauth_token",
    "session_token", "bearer_token", "auth_code", "session_id", "session_key", "session_secret",
    "recovery_code", "backup_code", "verification_code", "otp", "two_factor", "2fa_secret",
    "2fa_code", "ssn", "social_security", "social_security_number", "driver_license",
    "drivers_license", "license_number", "passport_number", "passport_id", "national_id", "tax_id",
    "credit_card", "card_number", "cvv", "cvc", "cvn", "bank_account", "account_number",
    "routing_number", "iban", "swift_code", "bic", "health_record", "medical_record", "patient_id",
    "insurance_number", "health_insurance", "medical_insurance", "treatment", "mac_address",
    "macaddr", "imei", "device_uuid", "pgp_key", "gpg_key", "ssh_key", "certificate",
    "license_key", "activation_key", "facial_recognition",
)

# Column types pg_upgrade cannot carry over (reg* types holding OIDs that change).
UNSUPPORTED_REG_TYPES = frozenset({
    "regcollation", "regconfig", "regdictionary", "regnamespace", "regoper", "regoperator", "regproc",
    "regprocedure",
})

# The queue lint applies only when the platform's queue API schema is served.
QUEUE_API_SCHEMA = "pgmq_public"
QUEUE_SCHEMA, QUEUE_TABLE_PREFIX = "pgmq", "q_"


_SENSITIVE = frozenset(SENSITIVE_COLUMNS)


def sensitive(column: str) -> bool:
    return column.lower().replace("-", "_") in _SENSITIVE


@dataclass(frozen=True)
class PlatformLint:
    """One of the platform's lints: what both the static rule and the catalogue query report."""

    number: str
    name: str
    level: Level
    categories: tuple[str, ...]
    description: str
    remediation: str


_S, _P = ("SECURITY",), ("PERFORMANCE",)

LINTS: dict[str, PlatformLint] = {lint.number: lint for lint in (
    PlatformLint("0001", "unindexed_foreign_keys", Level.INFO, _P,
                 "A foreign key whose columns do not lead any index: deletes of the referenced row and joins "
                 "scan the referencing table.",
                 "Create an index on the foreign key's columns."),
    PlatformLint("0002", "auth_users_exposed", Level.ERROR, _S,
                 "A view or materialized view in an exposed schema reads auth.users and is reachable by anon "
                 "or authenticated.",
                 "Move it to a private schema, or revoke it from the API roles; serve user data through "
                 "profiles with RLS."),
    PlatformLint("0003", "auth_rls_initplan", Level.WARN, _P,
                 "A policy calls auth.uid()/jwt()/role()/email() or current_setting() directly, so it is "
                 "evaluated once per row instead of once per query.",
                 "Wrap each call in a sub-select: `(select auth.uid())`."),
    PlatformLint("0004", "no_primary_key", Level.INFO, _P,
                 "A table without a primary key: rows cannot be addressed reliably, and replication and "
                 "the API's updates need one.",
                 "Add a primary key, e.g. `id uuid primary key default gen_random_uuid()`."),
    PlatformLint("0006", "multiple_permissive_policies", Level.WARN, _P,
                 "More than one permissive policy for the same role and command: all are evaluated, OR-ed, "
                 "for every row.",
                 "Merge them into one policy per role and command (or make the extra ones restrictive)."),
    PlatformLint("0007", "policy_exists_rls_disabled", Level.ERROR, _S,
                 "Policies exist but row level security is off, so none of them applies.",
                 "Enable row level security on the table."),
    PlatformLint("0008", "rls_enabled_no_policy", Level.INFO, _S,
                 "Row level security is on but the table has no policy: only the service role can use it.",
                 "Add a policy for each command clients need, each `to authenticated`."),
    PlatformLint("0009", "duplicate_index", Level.WARN, _P,
                 "Two or more identical indexes: every write maintains each of them for nothing.",
                 "Drop all but one of them."),
    PlatformLint("0010", "security_definer_view", Level.ERROR, _S,
                 "An exposed view runs with its owner's rights (no security_invoker), bypassing the row "
                 "level security of the tables it reads.",
                 "Recreate or alter it `with (security_invoker = true)` (PostgreSQL 15+)."),
    PlatformLint("0011", "function_search_path_mutable", Level.WARN, _S,
                 "A function without a fixed search_path resolves names through the caller's search_path, "
                 "which a caller can point at objects of their own.",
                 "Add `set search_path = pg_catalog, pg_temp` and schema-qualify every name in the body "
                 "(with `''` PostgreSQL still looks in the caller's temporary schema first for tables and "
                 "types; naming pg_temp last puts it last)."),
    PlatformLint("0013", "rls_disabled_in_public", Level.ERROR, _S,
                 "A table in an exposed schema, reachable by the API roles, without row level security: "
                 "anyone with the anon key reads and writes every row.",
                 "Enable row level security, then add policies for the access clients need."),
    PlatformLint("0014", "extension_in_public", Level.WARN, _S,
                 "An extension installed in public puts its functions and types into the exposed schema.",
                 "Install extensions in the `extensions` schema (`alter extension ... set schema extensions`)."),
    PlatformLint("0015", "rls_references_user_metadata", Level.ERROR, _S,
                 "A policy reads user_metadata, which every user can edit about themselves through the "
                 "client API.",
                 "Authorise from app_metadata (server-controlled) or from your own tables, never user_metadata."),
    PlatformLint("0016", "materialized_view_in_api", Level.WARN, _S,
                 "A materialized view in an exposed schema is reachable by the API roles; materialized views "
                 "cannot have row level security.",
                 "Keep it in a private schema and serve it through a security-invoker view or a function "
                 "that checks membership; revoke it from anon and authenticated."),
    PlatformLint("0017", "foreign_table_in_api", Level.WARN, _S,
                 "A foreign table in an exposed schema is reachable by the API roles; foreign tables "
                 "cannot have row level security.",
                 "Move it to a private schema or revoke it from anon and authenticated."),
    PlatformLint("0018", "unsupported_reg_types", Level.WARN, _S,
                 "A column of a reg* type (regproc, regnamespace...) stores OIDs, which pg_upgrade cannot "
                 "carry over: the project cannot be upgraded.",
                 "Store the name as text (or use regclass/regtype, which pg_upgrade supports)."),
    PlatformLint("0019", "insecure_queue_exposed_in_api", Level.ERROR, _S,
                 "A queue table (pgmq.q_*) without row level security is readable by the API roles while "
                 "the queue API schema pgmq_public is exposed.",
                 "Enable row level security on the queue table and add policies, or revoke it from anon "
                 "and authenticated."),
    PlatformLint("0021", "fkey_to_auth_unique", Level.ERROR, _S,
                 "A foreign key references a unique, non-primary-key column of an auth table (such as "
                 "email); Supabase may change those constraints, breaking or blocking auth.",
                 "Reference auth.users(id) instead, and drop the foreign key to the unique column."),
    PlatformLint("0023", "sensitive_columns_exposed", Level.ERROR, _S,
                 "An exposed table without row level security has columns named like credentials or "
                 "personal identifiers (password, token, api_key, ssn...) that the API roles may read.",
                 "Enable row level security (and move secrets out of exposed tables)."),
    PlatformLint("0024", "rls_policy_always_true", Level.WARN, _S,
                 "A permissive INSERT/UPDATE/DELETE/ALL policy for PUBLIC, anon or authenticated whose USING "
                 "or WITH CHECK is missing or always true lets every caller write any row (SELECT using "
                 "(true) is allowed: public reads are often deliberate).",
                 "Write a real predicate, e.g. the generated one: `organization_id = any (array(select "
                 "private.organization_ids_with_role('member')))`."),
    PlatformLint("0025", "public_bucket_allows_listing", Level.WARN, _S,
                 "A public storage bucket with a broad SELECT policy on storage.objects: clients can list "
                 "every file, which public object URLs do not need.",
                 "Drop the broad SELECT policy; public buckets serve object URLs without one."),
    PlatformLint("0026", "pg_graphql_anon_table_exposed", Level.WARN, _S,
                 "A table, view, materialized view or foreign table anon may select is visible in the "
                 "GraphQL schema (pg_graphql) to anyone holding the public anon key, even with RLS on.",
                 "Revoke select from anon, or drop the pg_graphql extension when the app does not use GraphQL."),
    PlatformLint("0027", "pg_graphql_authenticated_table_exposed", Level.WARN, _S,
                 "A table, view, materialized view or foreign table authenticated may select is visible in "
                 "the GraphQL schema (pg_graphql) to every signed-in user, even with RLS on.",
                 "Revoke select from authenticated, or drop the pg_graphql extension when the app does not "
                 "use GraphQL."),
    PlatformLint("0028", "anon_security_definer_function_executable", Level.WARN, _S,
                 "A SECURITY DEFINER function in an exposed schema is executable by anon: anyone with the "
                 "public key calls it over /rest/v1/rpc with its owner's rights, past row level security.",
                 "Move it to a private schema, or `revoke execute ... from public, anon` and grant only the "
                 "roles that need it."),
    PlatformLint("0029", "authenticated_security_definer_function_executable", Level.WARN, _S,
                 "A SECURITY DEFINER function in an exposed schema is executable by authenticated: every "
                 "signed-in user calls it over /rest/v1/rpc with its owner's rights, past row level security.",
                 "Move it to a private schema (policies may still call it), or revoke execute from "
                 "authenticated if clients do not need it."),
)}


def managed(schema: str) -> bool:
    return schema in MANAGED_SCHEMAS


def trigger_function(f: Any) -> bool:
    """A trigger or event-trigger function: PostgreSQL refuses to call it except as a trigger (`trigger functions
    can only be called as triggers`), so nothing reaches it over RPC (evasion round 21 fp04: an RLS-on event
    trigger's definer function in public was reported as executable by anon and authenticated)."""
    return f.returns.lower() in ("trigger", "event_trigger")


MISSING: Any = object()  # a policy without that clause (distinct from a clause the parser could not read)


def always_true_clauses(command: str, using: Any = MISSING, check: Any = MISSING) -> list[str]:
    """Which clauses of a permissive policy let every row through (lint 0024), from the parse trees of
    USING and WITH CHECK (`MISSING` when the policy has none). A missing USING lets every row through
    where the command has one; a missing WITH CHECK on INSERT accepts every row, on UPDATE/ALL it
    repeats USING. SELECT `using (true)` is a deliberate public read and is never reported."""
    command = command.lower()

    def true(tree: Any) -> bool:
        return tree is not MISSING and fold_condition(tree) is True

    out = []
    if command in ("update", "delete", "all") and (using is MISSING or true(using)):
        out.append("USING")
    if true(check) or (check is MISSING and (command == "insert" or (command in ("update", "all") and true(using)))):
        out.append("WITH CHECK")
    return out



def lists_bucket(qual: Any, bucket_id: str) -> bool:
    """Whether a permissive SELECT policy on storage.objects lets clients list a bucket's files (lint 0025):
    no USING, an always-true one, or exactly `bucket_id = '<the bucket>'`."""
    if qual is MISSING or fold_condition(qual) is True:
        return True
    body = qual.get("A_Expr") if isinstance(qual, dict) else None
    if not body or [n.get("String", {}).get("sval") for n in body.get("name") or []] != ["="]:
        return False
    left = body.get("lexpr") or {}
    names = [n.get("String", {}).get("sval") for n in (left.get("ColumnRef") or {}).get("fields") or []]
    return names[-1:] == ["bucket_id"] and fold(body.get("rexpr")) == bucket_id


def mentions_user_metadata(typed_nodes: Iterable[tuple[str, dict]],
                           claim_variables: frozenset[str] = frozenset()) -> bool:
    """Whether an expression's nodes (in document order) read user_metadata, as lint 0015 matches a deparsed
    clause: `user_metadata` (a key, a name) after an auth.jwt() call or after current_setting() and a
    `request.jwt.claim...` string, or `raw_user_meta_data` anywhere. `claim_variables`: PL/pgSQL variables holding
    the claims (`claims jsonb := auth.jwt()`), which stand for the call (evasion round 16 e06b)."""
    jwt = setting = claims = False
    for kind, body in typed_nodes:
        if kind == "ColumnRef" and claim_variables:
            first = (body.get("fields") or [{}])[0].get("String", {}).get("sval")
            jwt = jwt or first in claim_variables
            continue
        if kind == "FuncCall":
            name = function_name(body)
            jwt, setting = jwt or name == "auth.jwt", setting or name == "current_setting"
            continue
        value = body.get("sval", "") if kind == "String" else \
            body["sval"].get("sval", "") if kind == "A_Const" and isinstance(body.get("sval"), dict) else None
        if value is None:
            continue
        after_claim = value.split("request.jwt.claim", 1)[1] if setting and "request.jwt.claim" in value else None
        if "raw_user_meta_data" in value or ("user_metadata" in value and (jwt or claims)) or \
                "user_metadata" in (after_claim or ""):
            return True
        claims = claims or after_claim is not None
    return False
