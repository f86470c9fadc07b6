"""The first fifteen rules over the physical schema model: tenancy, RLS coverage, definer hygiene, indexes.

Ids are permanent. BP010 was "security_definer_function_executable" for any API role; it now carries
Supabase's name for the anon half (lint 0028) and BP024 the authenticated half (lint 0029).
"""

from __future__ import annotations

from ...model.schema import COMMANDS, Command, Schema
from ...sql.ident import column_list, ident, qname
from ..body import DYNAMIC_NAME
from ..ddl_objects import truthy
from ..findings import Level
from ..platform import bypasses_rls, managed, trigger_function
from ..registry import rule
from .common import client_policies, clients_granted, created, exposed, key_column_lists, user_tables


@rule("BP001", "tenant_key_nullable", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A tenant table whose organization_id is missing or nullable.",
      why="A row without an organisation belongs to no tenant: membership policies never match it, "
          "or a permissive branch exposes it to everyone.",
      bad="create table habits (id uuid primary key, organization_id uuid references organizations);",
      fix="Declare organization_id uuid not null references organizations(id) on delete cascade.")
def tenant_key_nullable(r, s: Schema):
    for t in s.tables:
        if not t.tenant_key:
            continue
        col = t.column(t.tenant_key)
        if col is None or col.nullable:
            yield r.finding(f"{t.qualified}.{t.tenant_key} is {'missing' if col is None else 'nullable'}.",
                            t.qualified, location=t.location,
                            fix_sql=None if col is None else
                            f"alter table {qname(t.schema_name, t.name)} alter column {ident(t.tenant_key)} set not null;")


@rule("BP002", "tenant_key_unindexed", Level.WARN, ("PERFORMANCE", "TENANCY"),
      summary="A tenant table without an index leading with organization_id.",
      why="Every policy filters on the tenant key; without an index each query scans the whole table.",
      bad="create table habits (..., organization_id uuid not null);  -- no index",
      fix="Create an index whose first column is organization_id: "
          "`create index on <schema>.<table> (organization_id);`.")
def tenant_key_unindexed(r, s: Schema):
    for t in created(s):
        if not t.tenant_key or t.column(t.tenant_key) is None:
            continue
        if not any(k and k[0] == t.tenant_key for k in key_column_lists(t)):
            yield r.finding(f"{t.qualified} has no index leading with {t.tenant_key}.", t.qualified,
                            location=t.location,
                            fix_sql=f"create index on {qname(t.schema_name, t.name)} ({ident(t.tenant_key)});")


@rule("BP003", platform="0013",
      why="Anyone holding the anon key can read and write every row through the API. RLS turned on by an "
          "`alter table` in a DO block's loop over listed names, or by a ddl_command_end event trigger (Supabase's "
          "\"RLS on by default\") for tables created after it, counts where the audit reads the loop or the "
          "trigger's function whole; a test it cannot read leaves the table reported. An `alter table` an exception "
          "handler may roll back (beside another statement of its sub-block that may raise), or one after an "
          "EXIT, CONTINUE or RETURN whose condition the audit cannot tell, does not count.",
      bad="create table public.events (...);  -- no enable row level security")
def rls_disabled(r, s: Schema):
    for t in created(s):
        if exposed(s, t) and not t.rls_enabled:
            yield r.finding(f"{t.qualified} does not enable row level security.", t.qualified, location=t.location,
                            fix_sql=f"alter table {qname(t.schema_name, t.name)} enable row level security;")


@rule("BP004", platform="0008",
      why="Nobody but the service role can touch it; usually a forgotten policy.",
      bad="alter table t enable row level security;  -- and nothing else")
def rls_no_policy(r, s: Schema):
    for t in created(s):
        if t.rls_enabled and not t.policies:
            yield r.finding(f"{t.qualified} has RLS enabled and no policy.", t.qualified, location=t.location)


@rule("BP005", "policy_for_all", Level.WARN, ("SECURITY",),
      summary="A policy FOR ALL instead of one policy per command.",
      why="One predicate for reading and writing lets read-only roles write (a viewer edits).",
      bad="create policy p on habits for all using (is_member(organization_id));",
      fix="Write separate select, insert, update and delete policies with the role each needs.")
def policy_for_all(r, s: Schema):
    for t in s.tables:
        for p in t.policies:
            if p.command == "all":
                yield r.finding(f"Policy {p.name} on {t.qualified} applies to all commands.", f"{t.qualified}.{p.name}",
                                location=p.location or t.location)


@rule("BP006", platform="0006",
      why="Permissive policies are OR-ed: each is evaluated per row, and a loose one silently widens access. A "
          "policy for PUBLIC counts for every role another policy names; roles that bypass row level security "
          "(service_role, postgres as migrations run) never evaluate policies and are not counted.",
      bad="create policy a on t for select to authenticated using (...); create policy b on t for select to authenticated using (...);")
def multiple_permissive(r, s: Schema):
    for t in user_tables(s):
        seen: dict[tuple[str, Command], int] = {}  # a dict, not a Counter: no __missing__ call per new key
        permissive = [p for p in t.policies if p.permissive]
        named = {role for p in permissive for role in p.roles} - {"public"}
        for p in permissive:
            commands = COMMANDS if p.command == "all" else (p.command,)
            roles = set(p.roles or ["public"])
            for role in (r for r in (roles | named if "public" in roles else roles) if not bypasses_rls(r)):
                for cmd in commands:
                    seen[(role, cmd)] = seen.get((role, cmd), 0) + 1
        for (role, cmd), n in sorted(seen.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
            if n > 1:
                yield r.finding(f"{t.qualified} has {n} permissive {cmd} policies for {role}.", t.qualified,
                                location=t.location)


@rule("BP007", "policy_without_role", Level.WARN, ("SECURITY", "PERFORMANCE"),
      summary="A policy without TO, or TO public.",
      why="It applies to anon too, and is evaluated for requests it can never allow.",
      bad="create policy p on habits for select using (...);",
      fix="Add `to authenticated` (or the exact roles that need it).")
def policy_without_role(r, s: Schema):
    for t in s.tables:
        for p in t.policies:
            if not p.roles or "public" in p.roles:
                yield r.finding(f"Policy {p.name} on {t.qualified} applies to every role.", f"{t.qualified}.{p.name}",
                                location=p.location or t.location,
                                fix_sql=f"alter policy {ident(p.name)} on {qname(t.schema_name, t.name)} "
                                        "to authenticated;")


@rule("BP008", "update_without_with_check", Level.WARN, ("SECURITY", "TENANCY"),
      summary="An UPDATE policy without WITH CHECK.",
      why="Postgres then checks the new row with USING only: a member of two organisations can move rows "
          "between them, and nothing re-checks what a row becomes.",
      bad="create policy u on habits for update to authenticated using (organization_id = any (...));",
      fix="Repeat the predicate in WITH CHECK and make the tenant key immutable.")
def update_without_check(r, s: Schema):
    for t in s.tables:
        for p in t.policies:
            if p.command in (Command.update, "all") and p.check is None:
                yield r.finding(f"Update policy {p.name} on {t.qualified} has no WITH CHECK.",
                                f"{t.qualified}.{p.name}", location=p.location or t.location,
                                fix_sql=None if p.using is None else
                                f"alter policy {ident(p.name)} on {qname(t.schema_name, t.name)} "
                                f"with check ({p.using});")


@rule("BP009", platform="0011",
      why="A caller can put their own objects first on the search_path and hijack unqualified names "
          "(fatal for SECURITY DEFINER functions).",
      bad="create function f() returns trigger language plpgsql security definer as $$ ... $$;")
def search_path_mutable(r, s: Schema):
    for f in s.functions:
        if f.search_path is None and not managed(f.schema_name):
            yield r.finding(f"Function {f.qualified} has a mutable search_path.", f.qualified, location=f.location,
                            fix_sql=f"alter function {qname(f.schema_name, f.name)}({f.arg_types}) "
                                    "set search_path = pg_catalog, pg_temp;")


@rule("BP010", platform="0028",
      why="Anyone holding the public anon key can call it over HTTP at /rest/v1/rpc/<name>, and it runs with "
          "its owner's rights, past RLS. New functions are executable by PUBLIC, and Supabase's default "
          "privileges grant the API roles on public. Trigger and event-trigger functions are left out: "
          "PostgreSQL refuses to call them except as triggers, so nothing reaches them over RPC (the platform "
          "reports them anyway).",
      bad="create function public.add_member(...) ... security definer ...;  -- executable by PUBLIC")
def definer_executable(r, s: Schema):
    for f in s.functions:
        # Trigger functions cannot be called over RPC (PostgreSQL refuses to call them directly).
        if f.security_definer and not trigger_function(f) and f.schema_name in s.exposed_schemas and \
                not managed(f.schema_name) and {"anon", "public"} & set(f.execute_roles):
            yield r.finding(f"Definer function {f.qualified} is executable by anon through the API.", f.qualified,
                            location=f.location, fix_sql=f"revoke execute on function {qname(f.schema_name, f.name)}"
                                                         f"({f.arg_types}) from public, anon;")


@rule("BP051", "definer_dynamic_sql_from_input", Level.ERROR, ("SECURITY",),
      summary="A SECURITY DEFINER function clients may call pastes a text parameter into dynamic SQL as it is.",
      why="EXECUTE runs whatever text it is given with the function's owner's rights, past RLS: a caller who "
          "sends `x; delete from organizations` or `1 or true` (through `'...' || p`, format('%s', p), or a "
          "variable made from them) runs their own SQL as the owner. Values of types such as uuid or integer "
          "cannot break out of a literal; text can, and so can text taken out of a json, array or record "
          "parameter (`p_filter ->> 'q'`, `p_terms[1]`).",
      bad="create function public.rows_of(tbl text) returns setof record language plpgsql security definer "
          "set search_path = '' as $$\nbegin\n  return query execute 'select * from public.' || tbl;\nend $$;",
      fix="Quote what comes from input: format('select * from %I where name = %L', tbl, name), or pass values "
          "with EXECUTE ... USING; check names against a list of allowed ones; or revoke execute from the API roles.")
def definer_dynamic_sql_from_input(r, s: Schema):
    for f in s.functions:
        if f.security_definer and f.dynamic_inputs and not managed(f.schema_name) and \
                {"anon", "authenticated", "public"} & set(f.execute_roles):
            yield r.finding(f"Definer function {f.qualified} pastes {', '.join(f.dynamic_inputs)} into dynamic SQL "
                            f"as it is: a caller runs their own SQL as its owner.", f.qualified,
                            location=f.location)


@rule("BP011", platform="0010",
      why="Views run with their owner's rights, so the view bypasses the RLS of every table it reads. "
          "security_invoker is read as PostgreSQL reads it (SET by CREATE, ALTER VIEW or ALTER TABLE): the platform "
          "compares the stored text with 1, true, yes and on in any case, so it reports a view spelled "
          "`security_invoker = t` (or y), which PostgreSQL runs as the invoker; spell it `true`.",
      bad="create view public.v as select * from habits;")
def definer_view(r, s: Schema):
    for v in s.views:
        if exposed(s, v) and not v.materialized and not v.security_invoker:
            yield r.finding(f"View {v.schema_name}.{v.name} runs with its owner's rights.", f"{v.schema_name}.{v.name}",
                            location=v.location,
                            fix_sql=f"alter view {qname(v.schema_name, v.name)} set (security_invoker = true);")


@rule("BP012", platform="0016",
      why="Materialized views cannot have RLS: every row is readable by whoever may select it.",
      bad="create materialized view public.daily_org_metrics as ...;")
def matview_in_api(r, s: Schema):
    for v in s.views:
        if v.materialized and exposed(s, v):
            yield r.finding(f"Materialized view {v.schema_name}.{v.name} is exposed.", f"{v.schema_name}.{v.name}",
                            location=v.location,
                            fix_sql=f"revoke all on {qname(v.schema_name, v.name)} from public, anon, authenticated;")


@rule("BP013", platform="0001",
      why="Deletes and updates of the referenced row scan the referencing table; joins are slow.",
      bad="create table check_ins (habit_id uuid references habits);  -- no index on habit_id")
def unindexed_fk(r, s: Schema):
    for t in created(s):
        lists = key_column_lists(t)
        for fk in t.foreign_keys:
            if not any(lst[: len(fk.columns)] == fk.columns for lst in lists):
                yield r.finding(f"{t.qualified} foreign key {fk.name} ({', '.join(fk.columns)}) has no index.",
                                f"{t.qualified}.{fk.name}", location=fk.location or t.location, fix_sql=f"create index on {qname(t.schema_name, t.name)} "
                                                     f"({column_list(fk.columns)});")


@rule("BP014", platform="0004",
      why="Rows cannot be addressed reliably; replication and the API's updates need a key.",
      bad="create table t (a text);")
def no_primary_key(r, s: Schema):
    for t in created(s):
        if not any(c.kind == "primary key" for c in t.constraints):
            yield r.finding(f"{t.qualified} has no primary key.", t.qualified, location=t.location)


@rule("BP015", "cross_tenant_foreign_key", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A single-column foreign key from one tenant table to another.",
      why="FK checks bypass RLS: a row of organisation A can point at (and probe for) a row of organisation B.",
      bad="habit_id uuid references habits(id)  -- in a table that has organization_id",
      fix="Reference (organization_id, x_id) -> target(organization_id, id), with a unique (organization_id, id) "
          "on the target.")
def cross_tenant_fk(r, s: Schema):
    tenant = {(t.schema_name, t.name): t.tenant_key for t in s.tables if t.tenant_key}
    for t in s.tables:
        if not t.tenant_key:
            continue
        for fk in t.foreign_keys:
            target_key = tenant.get((fk.ref_schema, fk.ref_table))
            if target_key and fk.ref_table != "organizations" and t.tenant_key not in fk.columns:
                yield r.finding(f"{t.qualified} references tenant table {fk.ref_schema}.{fk.ref_table} without "
                                f"the tenant key ({fk.name}).", t.qualified, location=fk.location or t.location)


@rule("BP061", "api_role_owns_table", Level.ERROR, ("SECURITY",),
      summary="A table is owned by an API role (anon or authenticated): every request as that role owns it.",
      why="A table's owner is exempt from its row level security unless FORCE ROW LEVEL SECURITY is set, holds every "
          "privilege on it whatever was revoked, and may change its policies: each signed-in (or anonymous) request "
          "reads and writes every organisation's rows.",
      bad="alter table public.projects owner to authenticated;",
      fix="Give the table back to the role that runs migrations (alter table ... owner to postgres) and grant the API "
          "role the privileges it needs.")
def api_role_owns_table(r, s: Schema):
    for t in created(s):
        if t.owner in ("anon", "authenticated"):
            rls = "its policies apply only while FORCE ROW LEVEL SECURITY stays" if t.rls_forced else \
                "its requests bypass the table's row level security"
            yield r.finding(f"{t.qualified} is owned by {t.owner}: {rls}, and they hold every privilege on it.",
                            t.qualified, location=t.location,
                            fix_sql=f"alter table {qname(t.schema_name, t.name)} owner to postgres;")


@rule("BP062", "rule_writes_past_rls", Level.WARN, ("SECURITY",),
      summary="A rewrite rule on a table or view clients write makes their write change another table as the "
              "owner.",
      why="A rule's actions run with the rights of the table's owner, not the client's: the other table's row level "
          "security and grants never see the client. A member inserting into their own organisation's table can "
          "update any organisation's rows through it. The classic DO INSTEAD rules that make a joined view writable "
          "do the same, even on a view with security_invoker: an outsider inserts into any organisation, a viewer "
          "edits and deletes.",
      bad="create rule apply_rename as on insert to public.project_renames\n"
          "  do also update public.projects set name = new.new_name where id = new.project_id;",
      fix="Drop the rule; do the second write in a trigger function that checks the caller, or in an RPC function "
          "that checks membership of the row it changes.")
def rule_writes_past_rls(r, s: Schema):
    for t in created(s):
        for rr in t.rewrite_rules:
            others = [w for w in rr.writes if w != t.qualified]
            if not others or rr.event not in ("insert", "update", "delete") or not _clients_may(s, t, rr.event):
                continue
            yield r.finding(f"Rule {rr.name} on {t.qualified} ({rr.event}) writes {', '.join(others)} as the table's "
                            "owner, past their row level security and grants.", f"{t.qualified}.{rr.name}",
                            location=rr.location or t.location,
                            fix_sql=f"drop rule {ident(rr.name)} on {qname(t.schema_name, t.name)};")
    # A view's rules too (the classic way to make a join writable): a view has no policies of its own, and even one
    # with the caller's rights runs its rules' actions as its owner.
    for v in s.views:
        qualified = f"{v.schema_name}.{v.name}"
        for rr in v.rewrite_rules:
            if not rr.writes or rr.event not in ("insert", "update", "delete") or \
                    not clients_granted(s, v, rr.event):
                continue
            yield r.finding(f"Rule {rr.name} on view {qualified} ({rr.event}) writes {', '.join(rr.writes)} as the "
                            "view's owner, past their row level security and grants.", f"{qualified}.{rr.name}",
                            location=rr.location or v.location,
                            fix_sql=f"drop rule {ident(rr.name)} on {qname(v.schema_name, v.name)};")


def _made_relation(kind: str, n: dict) -> dict:
    """The table a statement creates: CREATE TABLE, CREATE TABLE ... AS, SELECT ... INTO (evasion round 6: a
    snapshot made with CREATE TABLE AS went unread); {} for anything else (a materialized view: _made_matview)."""
    if kind == "CreateStmt":
        return n.get("relation") or {}
    if kind == "CreateTableAsStmt" and n.get("objtype") != "OBJECT_MATVIEW":
        return (n.get("into") or {}).get("rel") or {}
    if kind == "SelectStmt":
        return (n.get("intoClause") or {}).get("rel") or {}
    return {}


def _made_matview(kind: str, n: dict) -> dict:
    """The materialized view a CREATE MATERIALIZED VIEW ... AS makes: it has no row level security to enable, so
    only taking the API roles' privileges away keeps it out of the API (review: enabling RLS on the tables the same
    function made counted for it too)."""
    return (n.get("into") or {}).get("rel") or {} if kind == "CreateTableAsStmt" and \
        n.get("objtype") == "OBJECT_MATVIEW" else {}


def _owners_view(kind: str, n: dict) -> dict:
    """The view a CREATE VIEW makes when it runs with its owner's rights (no security_invoker): it reads past the
    row level security of the tables it selects from, which no ALTER TABLE on the view changes; {} for anything
    else."""
    if kind != "ViewStmt" or any((d.get("DefElem") or {}).get("defname") == "security_invoker" and
                                 truthy((d.get("DefElem") or {}).get("arg")) for d in n.get("options") or []):
        return {}
    return n.get("view") or {}


def _made_at_run_time(s: Schema, shapes, made, home: str | None) -> list[dict]:
    """The relations `made` finds in EXECUTE shapes whose names are made at run time, in an exposed schema (`home`
    for an unqualified name); a temporary one is the session's."""
    return [rv for stmt in shapes for kind, n in (stmt or {}).items() for rv in (made(kind, n),)
            if rv.get("relname") == DYNAMIC_NAME and rv.get("relpersistence") != "t"
            and (rv.get("schemaname") or home) in s.exposed_schemas]


def _views_guarded(shapes) -> bool:
    """Whether the function, after making a view at run time, makes it run with the caller's rights (`alter view
    public.%I set (security_invoker = true)`) or takes the API roles' privileges on it away (`revoke all on
    public.%I from anon, authenticated`; review: both were reported)."""
    for stmt in shapes:
        for kind, n in (stmt or {}).items():
            if kind == "AlterTableStmt" and (n.get("relation") or {}).get("relname") == DYNAMIC_NAME and any(
                    (c.get("AlterTableCmd") or {}).get("subtype") == "AT_SetRelOptions" and any(
                        (d.get("DefElem") or {}).get("defname") == "security_invoker"
                        and truthy((d.get("DefElem") or {}).get("arg"))
                        for d in (((c.get("AlterTableCmd") or {}).get("def") or {}).get("List") or {}).get("items")
                        or [])
                    for c in n.get("cmds") or []):
                return True
    return _api_roles_revoked(shapes)


def _api_roles_revoked(shapes) -> bool:
    """Whether the function takes the API roles' privileges away from a relation it names at run time (`revoke all
    on public.%I from anon, authenticated`; not PUBLIC: Supabase's default privileges grant the API roles by name)."""
    return any(kind == "GrantStmt" and not n.get("is_grant") and any(
                   (o.get("RangeVar") or {}).get("relname") == DYNAMIC_NAME for o in n.get("objects") or []) and
               {"anon", "authenticated"} <= {(g.get("RoleSpec") or {}).get("rolename") for g in n.get("grantees") or []}
               for stmt in shapes for kind, n in (stmt or {}).items())


def _clients_may(s: Schema, t, command: str) -> bool:
    """Whether an API role may run `command` on the table: granted, and let through by a permissive policy or with
    RLS off (the reading BP047 and BP060 make of a column, for the whole table)."""
    return clients_granted(s, t, command) and \
        (not t.rls_enabled or any(p.permissive for p in client_policies(t, command)))


@rule("BP078", "table_made_at_run_time_in_api_schema", Level.WARN, ("SECURITY",),
      summary="A function's EXECUTE creates tables with names made at run time in an exposed schema and never enables "
              "row level security on them, or views there that run with their owner's rights.",
      why="The standard way to keep a partitioned log going, `execute format('create table public.%I partition of "
          "public.activity_log ...', 'activity_log_' || to_char(...))` run by a maintenance function or pg_cron, makes "
          "a new table in the API's schema each month. Row level security is not inherited by partitions, and "
          "Supabase's default privileges grant every new table in public to anon and authenticated: the API serves "
          "`/activity_log_2026_11` with every organisation's rows, writable too. The migrations hold no CREATE TABLE "
          "for the platform's lint or the audit to read. A view made the same way (`execute format('create view "
          "public.%I as select * from public.projects where organization_id = %L', ...)`) runs with its owner's "
          "rights unless made `with (security_invoker = true)`: the API serves it to anon and authenticated, past "
          "the policies of the tables it reads. A materialized view has no row level security at all.",
      bad="execute format('create table if not exists public.%I partition of public.activity_log for values from (%L) "
          "to (%L)', 'activity_log_' || to_char(v_from, 'YYYY_MM'), v_from, v_to);",
      fix="Create the tables in a schema the API does not serve (`create table private.%I partition of "
          "public.activity_log ...`: reads through the parent keep its policies), or run `alter table public.%I enable "
          "row level security` (and revoke the API roles) in the same function; make views `with (security_invoker "
          "= true)`; revoke the API roles' privileges on a materialized view (`revoke all on public.%I from anon, "
          "authenticated`).")
def table_made_at_run_time_in_api_schema(r, s: Schema):
    for f in s.functions:
        reading = f._body
        if reading is None or not reading.shapes:
            continue
        shapes = reading.shapes
        # An unqualified name lands in the first schema of the function's search_path (none: CREATE fails).
        home = None if f.search_path is not None and not f.search_path.strip().strip("'\"") else reading.default_schema
        tables = _made_at_run_time(s, shapes, _made_relation, home)
        views = _made_at_run_time(s, shapes, _owners_view, home)
        guarded = any(kind == "AlterTableStmt" and ((n.get("relation") or {}).get("relname") == DYNAMIC_NAME) and
                      any(((c.get("AlterTableCmd") or {}).get("subtype")) == "AT_EnableRowSecurity"
                          for c in n.get("cmds") or [])
                      for stmt in shapes for kind, n in (stmt or {}).items())
        if views and _views_guarded(shapes):
            views = []
        matviews = _made_at_run_time(s, shapes, _made_matview, home) if not _api_roles_revoked(shapes) else []
        if tables and not guarded:
            schema = tables[0].get("schemaname") or home
            yield r.finding(f"Function {f.qualified} creates tables in {schema} whose names it makes at run time, "
                            "without row level security: each is served by the API with the default privileges of "
                            "new tables.", f.qualified, location=f.location)
        elif views:
            schema = views[0].get("schemaname") or home
            yield r.finding(f"Function {f.qualified} creates views in {schema} whose names it makes at run time, "
                            "running with their owner's rights (no security_invoker): each is served by the API "
                            "with the default privileges of new relations, past the row level security of the "
                            "tables it reads.", f.qualified, location=f.location)
        elif matviews:
            schema = matviews[0].get("schemaname") or home
            yield r.finding(f"Function {f.qualified} creates materialized views in {schema} whose names it makes at "
                            "run time: a materialized view has no row level security, and each is served by the API "
                            "with the default privileges of new relations.", f.qualified, location=f.location)
