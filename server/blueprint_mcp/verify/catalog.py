"""Supabase's database-advisor lints (every one SQL decides) as read-only catalogue queries.

Each lint is one declared object with one small query; `catalog_lints` runs them against a live
database (a Supabase project, `supabase start`, or a shimmed vanilla PostgreSQL) and reports
`Finding`s with Supabase's ids, names, levels and categories. The queries only read the system
catalogue, never raise on a database without the API roles or the auth schema (they find nothing
there instead), and so are safe inside a caller's transaction.

"Exposed" means: in a schema listed in `pgrst.db_schemas` (default `public`), not a
Supabase-managed schema, and reachable by `anon` or `authenticated` (any table- or column-level
SELECT/INSERT/UPDATE/DELETE privilege, directly or through PUBLIC).

Policy texts are read deparsed (`pg_policies`), which qualifies `auth.uid()` only while `auth` is
not on the session's search_path: run with the default search_path, as Supabase's linter does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pgparse

from ..audit import platform
from ..audit.findings import Finding, Level, sort_findings
from ..audit.platform import PlatformLint
from ..sql.ident import ident, qname

if TYPE_CHECKING:
    import psycopg

Row = dict[str, Any]

API_ROLES = platform.API_ROLES
_PARAMS = {"system": sorted(platform.MANAGED_SCHEMAS), "api_roles": list(API_ROLES),
           "sensitive": list(platform.SENSITIVE_COLUMNS),
           "initplan_excluded": sorted(platform.INITPLAN_SCHEMAS_EXCLUDED),
           "reg_types": sorted(platform.UNSUPPORTED_REG_TYPES),
           "reg_excluded": sorted(platform.REG_TYPES_SCHEMAS_EXCLUDED),
           "queue_schema": platform.QUEUE_SCHEMA, "queue_prefix": platform.QUEUE_TABLE_PREFIX.replace("_", "\\_") + "%",
           "queue_api": platform.QUEUE_API_SCHEMA,
           "user_metadata": r"auth\.jwt\(\).*user_metadata|current_setting\(.*request\.jwt\.claim.*user_metadata"
                            r"|raw_user_meta_data"}

# --- shared SQL fragments (constants; every value arrives as a bound parameter) -----------------
# Each query names its namespace `n` and, for relations, its pg_class row `c`.

_USER_SCHEMA = "n.nspname::text <> all (%(system)s::text[])"

_EXPOSED_SCHEMA = (
    "n.nspname::text = any (select btrim(s) from pg_catalog.unnest(pg_catalog.string_to_array("
    "coalesce(nullif(pg_catalog.current_setting('pgrst.db_schemas', true), ''), 'public'), ',')) s)"
    " and " + _USER_SCHEMA
)

# By role oid, so a database without the API roles simply matches nothing instead of erroring.
_API_CAN_REACH = (
    "exists (select from pg_catalog.pg_roles r where r.rolname = any (%(api_roles)s::text[])"
    " and (pg_catalog.has_any_column_privilege(r.oid, c.oid, 'SELECT, INSERT, UPDATE')"
    " or pg_catalog.has_table_privilege(r.oid, c.oid, 'DELETE')))"
)

_NOT_FROM_EXTENSION = (
    "not exists (select from pg_catalog.pg_depend e where e.objid = {oid} and e.deptype = 'e')"
)

# Lower-cased as the platform reads it: `security_invoker = 'ON'` is stored as written.
_SECURITY_INVOKER = (
    "pg_catalog.lower(coalesce(c.reloptions, '{}')::text)::text[]"
    " && array['security_invoker=1', 'security_invoker=true', 'security_invoker=yes', 'security_invoker=on']"
)

_POLICIES_OF = (
    "select n.nspname as schema, c.relname as name, p.polname as part, c.relrowsecurity as rls,"
    " p.polpermissive as permissive, p.polroles as roles,"
    " case p.polcmd when 'r' then 'SELECT' when 'a' then 'INSERT' when 'w' then 'UPDATE'"
    " when 'd' then 'DELETE' else 'ALL' end as command, pp.qual, pp.with_check"
    " from pg_catalog.pg_policy p"
    " join pg_catalog.pg_class c on c.oid = p.polrelid"
    " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
    " join pg_catalog.pg_policies pp on pp.schemaname = n.nspname and pp.tablename = c.relname"
    " and pp.policyname = p.polname"
    " where n.nspname::text <> all (%({excluded})s::text[])"
)
_POLICIES = _POLICIES_OF.format(excluded="system")

# A call wrapped as `(select auth.uid())` deparses as `( SELECT auth.uid() AS uid)`, and
# `(select auth.jwt() ->> 'role')` as `( SELECT (auth.jwt() ->> 'role'::text))`: after removing
# those, any call left is evaluated once per row. Unlike a per-function "any wrapped call present"
# test, a bare call next to a wrapped one is still caught.
_AUTH_CALL = r"(\mauth\.(uid|jwt|role|email)|\mcurrent_setting)\("
_WRAPPED_AUTH_CALL = r"\mselect\s+\(*\s*(auth\.(uid|jwt|role|email)|current_setting)\("


def _unwrapped(expr: str) -> str:
    return (f"pg_catalog.regexp_replace(coalesce({expr}, ''), '{_WRAPPED_AUTH_CALL}', '', 'gi')"
            f" ~* '{_AUTH_CALL}'")


def _expression(text: str | None) -> Any:
    """A deparsed policy expression as a parse tree; MISSING when the policy has none."""
    if text is None:
        return platform.MISSING
    try:
        return pgparse.parse(f"select {text}")[0]["stmt"]["SelectStmt"]["targetList"][0]["ResTarget"]["val"]
    except (pgparse.PGQueryError, KeyError, IndexError):
        return None


def _listed_buckets(rows: list[Row]) -> list[Row]:
    """Lint 0025: one row per public bucket with the names of the policies that let clients list it."""
    out: dict[str, Row] = {}
    for row in rows:
        if platform.lists_bucket(_expression(row["qual"]), row["name"]):
            kept = out.setdefault(row["name"], {**row, "policies": []})
            kept["policies"].append(row["policy"])
    for row in out.values():
        row["detail"] = ", ".join(sorted(row["policies"]))
    return [out[k] for k in sorted(out)]


def _always_true(row: Row) -> bool:
    """Lint 0024, decided by the same folding the static rule uses."""
    clauses = platform.always_true_clauses(row["command"], _expression(row["qual"]), _expression(row["with_check"]))
    row["detail"] = " and ".join(clauses)
    return bool(clauses)


# --- fixes: SQL built from quoted identifiers, only where the fix is mechanical ---------------


def _relation(row: Row) -> str:
    return qname(row["schema"], row["name"])


def _routine(row: Row) -> str:
    return f"{row['kind']} {qname(row['schema'], row['name'])}({row['args']})"


def _enable_rls(row: Row) -> str:
    return f"alter table {_relation(row)} enable row level security;"


def _revoke_api(row: Row) -> str:
    return f"revoke all on table {_relation(row)} from public, anon, authenticated;"


def _security_invoker(row: Row) -> str:
    return f"alter view {_relation(row)} set (security_invoker = true);"


def _pin_search_path(row: Row) -> str:
    return f"alter {_routine(row)} set search_path = pg_catalog, pg_temp;"


def _move_extension(row: Row) -> str | None:
    return f"alter extension {ident(row['name'])} set schema extensions;" if row["relocatable"] else None


def _drop_fkey(row: Row) -> str:
    return f"alter table {_relation(row)} drop constraint {ident(row['part'])};"


def _drop_duplicates(row: Row) -> str | None:
    drops = [f"drop index {qname(row['schema'], index)};" for index in row["droppable"]]
    return "\n".join(drops) or None


def _revoke_execute(role: str) -> Callable[[Row], str]:
    def fix(row: Row) -> str:
        return f"revoke execute on {_routine(row)} from public, {role};"
    return fix


# --- the lints -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogLint:
    """One platform lint (identity and prose from `platform.LINTS`), its query, and how a row becomes a Finding.

    The query returns `schema`, `name`, an optional `part` (policy or constraint inside the
    table), `detail` (the specific words for the message) and whatever the fix needs.
    """

    lint: PlatformLint
    message: str  # str.format over the row plus `object`
    query: str
    fix: Callable[[Row], str | None] | None = None
    # A decision the query leaves to code shared with the static rule: the rows that become findings.
    select: Callable[[list[Row]], list[Row]] | None = None
    requires: str | None = None  # a relation the query reads; without it (no storage schema) nothing is found

    @property
    def id(self) -> str:
        return self.lint.number

    @property
    def name(self) -> str:
        return self.lint.name

    @property
    def level(self) -> Level:
        return self.lint.level

    @property
    def categories(self) -> tuple[str, ...]:
        return self.lint.categories

    @property
    def remediation(self) -> str:
        return self.lint.remediation

    def finding(self, row: Row) -> Finding:
        obj = ".".join(p for p in (row["schema"], row["name"], row.get("part")) if p)
        return Finding(
            rule_id=self.id, name=self.name, level=self.level, categories=list(self.categories),
            message=self.message.format(object=obj, **row), object=obj,
            remediation=self.remediation, fix_sql=self.fix(row) if self.fix else None,
        )


LINTS: tuple[CatalogLint, ...] = (  # every lint, in id order; LINTS below keeps ERROR and WARN
    CatalogLint(
        platform.LINTS["0001"],
        "Foreign key {part} on {object} has no index leading with its columns ({detail}).",
        "select n.nspname as schema, c.relname as name, k.conname as part,"
        " (select string_agg(a.attname, ', ' order by x.i) from unnest(k.conkey) with ordinality x(attnum, i)"
        " join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum = x.attnum) as detail"
        " from pg_catalog.pg_constraint k"
        " join pg_catalog.pg_class c on c.oid = k.conrelid"
        " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " where k.contype = 'f' and c.relkind in ('r', 'p') and " + _USER_SCHEMA +
        " and " + _NOT_FROM_EXTENSION.format(oid="c.oid") +
        " and not exists (select from pg_catalog.pg_index i where i.indrelid = k.conrelid and i.indpred is null"
        " and (pg_catalog.string_to_array(i.indkey::text, ' ')::int2[])[1:pg_catalog.cardinality(k.conkey)]"
        " = k.conkey)"
        " order by 1, 2, 3",
    ),
    CatalogLint(
        platform.LINTS["0002"],
        "{detail} {object} reads auth.users and is exposed to the API roles.",
        "select distinct n.nspname as schema, c.relname as name,"
        " case c.relkind when 'm' then 'Materialized view' else 'View' end as detail"
        " from pg_catalog.pg_depend d"
        " join pg_catalog.pg_rewrite w on w.oid = d.objid"
        " join pg_catalog.pg_class c on c.oid = w.ev_class"
        " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " join pg_catalog.pg_class u on u.oid = d.refobjid"
        " where d.classid = 'pg_catalog.pg_rewrite'::regclass"
        " and d.refobjid = pg_catalog.to_regclass('auth.users')"
        " and c.relkind in ('v', 'm') and " + _EXPOSED_SCHEMA + " and " + _API_CAN_REACH +
        # A security-invoker view is safe only while auth.users itself is protected by RLS.
        " and (c.relkind = 'm' or not (" + _SECURITY_INVOKER + ") or not u.relrowsecurity)"
        " order by 1, 2",
        _revoke_api,
    ),
    CatalogLint(
        platform.LINTS["0003"],
        "Policy {part} on {schema}.{name} re-evaluates auth.<function>() or current_setting() for "
        "each row in {detail}; wrap the call as (select ...).",
        "select schema, name, part,"
        " concat_ws(' and ', case when " + _unwrapped("qual") + " then 'USING' end,"
        " case when " + _unwrapped("with_check") + " then 'WITH CHECK' end) as detail"
        " from (" + _POLICIES_OF.format(excluded="initplan_excluded") + ") p"
        " where rls and (" + _unwrapped("qual") + " or " + _unwrapped("with_check") + ")"
        " order by 1, 2, 3",
    ),
    CatalogLint(
        platform.LINTS["0004"],
        "Table {object} has no primary key.",
        "select n.nspname as schema, c.relname as name, '' as detail"
        " from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind in ('r', 'p') and " + _USER_SCHEMA + " and " + _NOT_FROM_EXTENSION.format(oid="c.oid") +
        " and not exists (select from pg_catalog.pg_constraint k where k.conrelid = c.oid and k.contype = 'p')"
        " order by 1, 2",
    ),
    CatalogLint(
        platform.LINTS["0006"],
        "Table {object} has {detail}.",
        "select schema, name, pg_catalog.format('%%s permissive %%s policies for role %%s (%%s)',"
        " count(*), cmd, role, string_agg(part, ', ' order by part)) as detail"
        " from (select p.*, x.cmd, case when r.role = 0 then 'public'"
        " else pg_catalog.pg_get_userbyid(r.role)::text end as role"
        " from (" + _POLICIES + ") p"
        # A PUBLIC policy counts for every role another permissive policy on the table names.
        " cross join lateral unnest(case when 0 = any (p.roles) then p.roles || array("
        "select distinct o.role from (" + _POLICIES + ") q cross join lateral unnest(q.roles) o(role)"
        " where q.schema = p.schema and q.name = p.name and q.permissive and o.role <> 0)"
        " else p.roles end) r(role)"
        " cross join lateral unnest(case p.command when 'ALL' then"
        " array['SELECT', 'INSERT', 'UPDATE', 'DELETE'] else array[p.command] end) x(cmd)"
        # Roles that bypass RLS never evaluate the policies; the platform also skips its own roles.
        " where p.permissive and (r.role = 0 or exists (select from pg_catalog.pg_roles b where b.oid = r.role"
        " and not b.rolbypassrls and b.rolname not like 'pg_%%' and b.rolname not like 'supabase%%admin'))) q"
        " group by schema, name, role, cmd having count(*) > 1"
        " order by schema, name, role, array_position(array['SELECT', 'INSERT', 'UPDATE', 'DELETE'], cmd)",
    ),
    CatalogLint(
        platform.LINTS["0007"],
        "Table {object} has policies ({detail}) but row level security is disabled.",
        "select n.nspname as schema, c.relname as name,"
        " string_agg(p.polname, ', ' order by p.polname) as detail"
        " from pg_catalog.pg_policy p"
        " join pg_catalog.pg_class c on c.oid = p.polrelid"
        " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind in ('r', 'p') and not c.relrowsecurity and " + _USER_SCHEMA +
        " and " + _NOT_FROM_EXTENSION.format(oid="c.oid") +
        " group by 1, 2 order by 1, 2",
        _enable_rls,
    ),
    CatalogLint(
        platform.LINTS["0008"],
        "Table {object} has row level security enabled and no policy.",
        "select n.nspname as schema, c.relname as name, '' as detail"
        " from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind in ('r', 'p') and c.relrowsecurity and " + _USER_SCHEMA +
        " and " + _NOT_FROM_EXTENSION.format(oid="c.oid") +
        " and not exists (select from pg_catalog.pg_policy p where p.polrelid = c.oid)"
        " order by 1, 2",
    ),
    CatalogLint(
        platform.LINTS["0009"],
        "Table {object} has identical indexes {detail}.",
        "select schema, name, string_agg(index, ', ' order by keep) as detail,"
        " coalesce(array_agg(index order by keep) filter (where keep > 1 and not backs_constraint),"
        " '{}') as droppable"
        " from (select n.nspname as schema, c.relname as name, ic.relname as index, x.sig,"
        " x.backs_constraint, row_number() over w as keep,"
        " count(*) over (partition by i.indrelid, x.sig) as copies"
        " from pg_catalog.pg_index i"
        " join pg_catalog.pg_class c on c.oid = i.indrelid"
        " join pg_catalog.pg_class ic on ic.oid = i.indexrelid"
        " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " cross join lateral (select"
        " exists (select from pg_catalog.pg_constraint k where k.conindid = i.indexrelid) as backs_constraint,"
        # Everything that makes two indexes answer the same queries, but the name.
        " concat_ws('|', ic.relam, i.indkey, i.indclass, i.indcollation, i.indoption, i.indisunique,"
        " i.indnullsnotdistinct, coalesce(pg_catalog.pg_get_expr(i.indexprs, i.indrelid), ''),"
        " coalesce(pg_catalog.pg_get_expr(i.indpred, i.indrelid), '')) as sig) x"
        " where c.relkind in ('r', 'm', 'p') and i.indisvalid and " + _USER_SCHEMA +
        " and " + _NOT_FROM_EXTENSION.format(oid="c.oid") +
        # Keep a constraint's index (it cannot be dropped alone), else the first by name.
        " window w as (partition by i.indrelid, x.sig order by x.backs_constraint desc, ic.relname)) d"
        " where copies > 1 group by schema, name, sig order by 1, 2, 3",
        _drop_duplicates,
    ),
    CatalogLint(
        platform.LINTS["0010"],
        "View {object} is exposed and runs as its owner, bypassing row level security.",
        "select n.nspname as schema, c.relname as name, '' as detail"
        " from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind = 'v' and " + _EXPOSED_SCHEMA + " and " + _API_CAN_REACH +
        " and not (" + _SECURITY_INVOKER + ") and " + _NOT_FROM_EXTENSION.format(oid="c.oid") +
        " order by 1, 2",
        _security_invoker,
    ),
    CatalogLint(
        platform.LINTS["0011"],
        "Function {object}({args}) has a role-mutable search_path.",
        "select n.nspname as schema, p.proname as name, '' as detail,"
        " pg_catalog.pg_get_function_identity_arguments(p.oid) as args,"
        " case p.prokind when 'p' then 'procedure' else 'function' end as kind"
        " from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace"
        " where p.prokind in ('f', 'p') and " + _USER_SCHEMA +
        " and " + _NOT_FROM_EXTENSION.format(oid="p.oid") +
        " and not exists (select from unnest(p.proconfig) cfg where cfg ~ '^search_path=')"
        " order by 1, 2, 4",
        _pin_search_path,
    ),
    CatalogLint(
        platform.LINTS["0013"],
        "Table {object} is exposed to the API but row level security is disabled.",
        "select n.nspname as schema, c.relname as name, '' as detail"
        " from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind in ('r', 'p') and not c.relrowsecurity and " + _EXPOSED_SCHEMA +
        " and " + _API_CAN_REACH + " and " + _NOT_FROM_EXTENSION.format(oid="c.oid") +
        " order by 1, 2",
        _enable_rls,
    ),
    CatalogLint(
        platform.LINTS["0014"],
        "Extension {name} is installed in the public schema.",
        "select n.nspname as schema, x.extname as name, '' as detail, x.extrelocatable as relocatable"
        " from pg_catalog.pg_extension x join pg_catalog.pg_namespace n on n.oid = x.extnamespace"
        " where n.nspname = 'public' and x.extname <> 'plpgsql' order by 1, 2",
        _move_extension,
    ),
    CatalogLint(
        platform.LINTS["0015"],
        "Policy {part} on {schema}.{name} reads user_metadata, which users can set themselves.",
        # Each clause on its own and case-sensitively, as the platform matches them: a JSON key is.
        "select schema, name, part, '' as detail from (" + _POLICIES + ") p"
        " where qual ~ %(user_metadata)s or with_check ~ %(user_metadata)s"
        " order by 1, 2, 3",
    ),
    CatalogLint(
        platform.LINTS["0016"],
        "Materialized view {object} is exposed to the API and has no row level security.",
        "select n.nspname as schema, c.relname as name, '' as detail"
        " from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind = 'm' and " + _EXPOSED_SCHEMA + " and " + _API_CAN_REACH +
        " and " + _NOT_FROM_EXTENSION.format(oid="c.oid") + " order by 1, 2",
        _revoke_api,
    ),
    CatalogLint(
        platform.LINTS["0017"],
        "Foreign table {object} is exposed to the API and has no row level security.",
        "select n.nspname as schema, c.relname as name, '' as detail"
        " from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind = 'f' and " + _EXPOSED_SCHEMA + " and " + _API_CAN_REACH +
        " and " + _NOT_FROM_EXTENSION.format(oid="c.oid") + " order by 1, 2",
        _revoke_api,
    ),
    CatalogLint(
        platform.LINTS["0018"],
        "Column {object} has the unsupported reg* type {detail}.",
        "select n.nspname as schema, c.relname as name, a.attname as part, t.typname as detail"
        " from pg_catalog.pg_attribute a"
        " join pg_catalog.pg_class c on c.oid = a.attrelid"
        " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " join pg_catalog.pg_type t on t.oid = a.atttypid"
        " join pg_catalog.pg_namespace tn on tn.oid = t.typnamespace"
        " where tn.nspname = 'pg_catalog' and t.typname = any (%(reg_types)s::text[])"
        " and a.attnum > 0 and not a.attisdropped"
        " and n.nspname <> all (%(reg_excluded)s::text[]) order by 1, 2, 3",
    ),
    CatalogLint(
        platform.LINTS["0019"],
        "Queue table {object} is readable through the API without row level security.",
        "select n.nspname as schema, c.relname as name, '' as detail"
        " from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind in ('r', 'p') and not c.relrowsecurity"
        " and n.nspname = %(queue_schema)s and c.relname like %(queue_prefix)s"
        " and exists (select from pg_catalog.pg_roles r where r.rolname = any (%(api_roles)s::text[])"
        " and pg_catalog.has_table_privilege(r.oid, c.oid, 'SELECT'))"
        " and %(queue_api)s = any (select btrim(s) from pg_catalog.unnest(pg_catalog.string_to_array("
        "coalesce(pg_catalog.current_setting('pgrst.db_schemas', true), ''), ',')) s)"
        " order by 1, 2",
        _enable_rls,
    ),
    CatalogLint(
        platform.LINTS["0021"],
        "Foreign key {part} on {schema}.{name} references the unique column(s) {detail}.",
        "select n.nspname as schema, c.relname as name, k.conname as part,"
        " pg_catalog.format('%%s(%%s)', k.confrelid::regclass, (select string_agg(a.attname, ', '"
        " order by a.attnum) from pg_catalog.pg_attribute a"
        " where a.attrelid = k.confrelid and a.attnum = any (k.confkey))) as detail"
        " from pg_catalog.pg_constraint k"
        " join pg_catalog.pg_class c on c.oid = k.conrelid"
        " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " join pg_catalog.pg_class rc on rc.oid = k.confrelid"
        " join pg_catalog.pg_index i on i.indexrelid = k.conindid"
        " join pg_catalog.pg_namespace rn on rn.oid = rc.relnamespace"
        " where k.contype = 'f' and rn.nspname = 'auth'"
        " and i.indisunique and not i.indisprimary and " + _USER_SCHEMA +
        " order by 1, 2, 3",
        _drop_fkey,
    ),
    CatalogLint(
        platform.LINTS["0023"],
        "Table {object} is exposed without row level security and has sensitive column(s) {detail}.",
        "select n.nspname as schema, c.relname as name,"
        " string_agg(a.attname, ', ' order by a.attnum) as detail"
        " from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped"
        " where c.relkind in ('r', 'p') and not c.relrowsecurity and " + _EXPOSED_SCHEMA +
        " and " + _API_CAN_REACH +
        " and replace(lower(a.attname), '-', '_') = any (%(sensitive)s::text[])"
        # A column the API roles cannot select is not exposed, whatever the table's other grants.
        " and exists (select from pg_catalog.pg_roles r where r.rolname = any (%(api_roles)s::text[])"
        " and pg_catalog.has_column_privilege(r.oid, c.oid, a.attnum, 'SELECT'))"
        " group by 1, 2 order by 1, 2",
        _enable_rls,
    ),
    CatalogLint(
        platform.LINTS["0024"],
        "Policy {part} on {schema}.{name} ({command}) is always true in {detail}.",
        "select schema, name, part, command, qual, with_check, '' as detail from (" + _POLICIES + ") p"
        " join pg_catalog.pg_namespace n on n.nspname = p.schema"
        " join pg_catalog.pg_class c on c.relnamespace = n.oid and c.relname = p.name and c.relkind = 'r'"
        " where rls and permissive and (roles = array[0::oid] or exists (select from pg_catalog.pg_roles r"
        " where r.oid = any (roles) and r.rolname = any (%(api_roles)s::text[])))"
        " order by 1, 2, 3",
        select=lambda rows: [row for row in rows if _always_true(row)],
    ),
    CatalogLint(
        platform.LINTS["0025"],
        "Public bucket {name} can be listed through {detail} on storage.objects.",
        "select 'storage' as schema, b.id as name, p.policyname as policy, p.qual, '' as detail"
        " from storage.buckets b"
        " join pg_catalog.pg_policies p on p.schemaname = 'storage' and p.tablename = 'objects'"
        " and p.cmd in ('SELECT', 'ALL') and p.permissive = 'PERMISSIVE'"
        " and p.roles && array['public', 'anon', 'authenticated']::name[]"
        " where b.public order by 2, 3",
        select=_listed_buckets, requires="storage.buckets",
    ),
    CatalogLint(
        platform.LINTS["0026"],
        "{detail} {object} is visible in the GraphQL schema to anon.",
        "select n.nspname as schema, c.relname as name,"
        " case c.relkind when 'r' then 'Table' when 'v' then 'View' when 'm' then 'Materialized view'"
        " else 'Foreign table' end as detail"
        " from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " join pg_catalog.pg_roles r on r.rolname = 'anon'"
        " where c.relkind in ('r', 'v', 'm', 'f') and " + _USER_SCHEMA +
        " and (%(assume_graphql)s or exists (select from pg_catalog.pg_extension x where x.extname = 'pg_graphql'))"
        # Any selectable column exposes the relation in pg_graphql's introspection.
        " and exists (select from pg_catalog.pg_attribute a where a.attrelid = c.oid and a.attnum > 0"
        " and not a.attisdropped and pg_catalog.has_column_privilege(r.oid, c.oid, a.attnum, 'SELECT'))"
        " order by 1, 2",
    ),
    CatalogLint(
        platform.LINTS["0027"],
        "{detail} {object} is visible in the GraphQL schema to authenticated.",
        "select n.nspname as schema, c.relname as name,"
        " case c.relkind when 'r' then 'Table' when 'v' then 'View' when 'm' then 'Materialized view'"
        " else 'Foreign table' end as detail"
        " from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " join pg_catalog.pg_roles r on r.rolname = 'authenticated'"
        " where c.relkind in ('r', 'v', 'm', 'f') and " + _USER_SCHEMA +
        " and (%(assume_graphql)s or exists (select from pg_catalog.pg_extension x where x.extname = 'pg_graphql'))"
        # Any selectable column exposes the relation in pg_graphql's introspection.
        " and exists (select from pg_catalog.pg_attribute a where a.attrelid = c.oid and a.attnum > 0"
        " and not a.attisdropped and pg_catalog.has_column_privilege(r.oid, c.oid, a.attnum, 'SELECT'))"
        " order by 1, 2",
    ),
    CatalogLint(
        platform.LINTS["0028"],
        "SECURITY DEFINER function {object}({args}) is executable by anon.",
        "select n.nspname as schema, p.proname as name, '' as detail,"
        " pg_catalog.pg_get_function_identity_arguments(p.oid) as args,"
        " case p.prokind when 'p' then 'procedure' else 'function' end as kind"
        " from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace"
        " join pg_catalog.pg_roles r on r.rolname = 'anon'"
        " where p.prosecdef and " + _EXPOSED_SCHEMA +
        " and pg_catalog.has_function_privilege(r.oid, p.oid, 'EXECUTE')"
        " and " + _NOT_FROM_EXTENSION.format(oid="p.oid") + " order by 1, 2, 4",
        _revoke_execute("anon"),
    ),
    CatalogLint(
        platform.LINTS["0029"],
        "SECURITY DEFINER function {object}({args}) is executable by authenticated.",
        "select n.nspname as schema, p.proname as name, '' as detail,"
        " pg_catalog.pg_get_function_identity_arguments(p.oid) as args,"
        " case p.prokind when 'p' then 'procedure' else 'function' end as kind"
        " from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace"
        " join pg_catalog.pg_roles r on r.rolname = 'authenticated'"
        " where p.prosecdef and " + _EXPOSED_SCHEMA +
        " and pg_catalog.has_function_privilege(r.oid, p.oid, 'EXECUTE')"
        " and " + _NOT_FROM_EXTENSION.format(oid="p.oid") + " order by 1, 2, 4",
        _revoke_execute("authenticated"),
    ),
)

# The INFO lints run only on request (`catalog_lints(conn, ALL_LINTS)`): verify reports ERROR and WARN.
ALL_LINTS = LINTS
LINTS = tuple(lint for lint in ALL_LINTS if lint.level is not Level.INFO)
LINTS_BY_ID = {lint.id: lint for lint in ALL_LINTS}


def catalog_lints(conn: psycopg.Connection[Any], lints: tuple[CatalogLint, ...] = LINTS,
                  assume_platform: bool = False) -> list[Finding]:
    """Run the catalogue lints on a live database; findings most severe first, in stable order.

    `assume_platform`: judge as on a Supabase project, where pg_graphql is installed (a vanilla
    PostgreSQL cannot install it, so the GraphQL exposure lints are otherwise decided by pg_extension)."""
    from psycopg.rows import dict_row

    findings: list[Finding] = []
    with conn.cursor(row_factory=dict_row) as cur:
        for lint in lints:
            if lint.requires and cur.execute("select pg_catalog.to_regclass(%s) as r",
                                             (lint.requires,)).fetchone()["r"] is None:
                continue
            cur.execute(lint.query, {**_PARAMS, "assume_graphql": assume_platform})  # type: ignore[arg-type]
            rows = cur.fetchall()
            findings += [lint.finding(row) for row in (lint.select(rows) if lint.select else rows)]
    return sort_findings(findings)
