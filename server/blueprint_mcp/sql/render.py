"""Physical schema -> SQL text: the three migration files, deterministic to the byte."""

from __future__ import annotations

from ..model.schema import (
    CronJob, EnumType, ForeignKey, Function, Grants, Index, Policy, Privilege, Schema, StorageBucket, Table, Trigger, View,
)
from ..model.blueprint import ROLE_TYPE
from ..model.tenant_keys import READ_ONLY_ROLE_NAMES, rank_inversion
from .ident import column_list, dollar_quoted, ident, literal, qname

API_ROLES = "anon, authenticated"
# pg_graphql's introspection shows each role every relation it may select, even behind RLS; an app that
# does not use GraphQL removes it (the platform's advice for lints 0026/0027). No-op where it is absent.
GRAPHQL_OFF = "-- The app does not use GraphQL: nothing to introspect.\ndrop extension if exists pg_graphql;"


def _qualified(dotted: str) -> str:
    schema, name = dotted.split(".", 1)
    return qname(schema, name)


def enum_sql(e: EnumType) -> str:
    values = ", ".join(literal(v) for v in e.values)
    # The roles run from the least to the most trusted; names that read otherwise, all of them or two (a blueprint's
    # own 'member' above 'admin'), are said where a reader (and audit's BP064) looks.
    out = f"-- blueprint: ignore BP064 the blueprint ranks these roles by this order: {e.values[0]} is the least\n" \
        if e.name == ROLE_TYPE and rank_inversion(e.values) is not None else ""
    out += f"create type {qname(e.schema_name, e.name)} as enum ({values});"
    if e.comment:
        out += f"\ncomment on type {qname(e.schema_name, e.name)} is {literal(e.comment)};"
    return out


def fk_clause(fk: ForeignKey) -> str:
    action = fk.on_delete
    if fk.set_null_columns:
        # PG15: null only the reference column, never the tenant key it shares.
        action = f"{action} ({column_list(fk.set_null_columns)})"
    return (f"constraint {ident(fk.name)} foreign key ({column_list(fk.columns)}) "
            f"references {qname(fk.ref_schema, fk.ref_table)} ({column_list(fk.ref_columns)}) on delete {action}")


def create_table_sql(t: Table, inline_fks: list[ForeignKey]) -> str:
    lines = []
    for c in t.columns:
        line = f"  {ident(c.name)} {c.type}"
        if not c.nullable:
            line += " not null"
        if c.default is not None:
            line += f" default {c.default}"
        lines.append(line)
    for k in t.constraints:
        nnd = " nulls not distinct" if k.nulls_not_distinct else ""
        if k.kind == "check":
            body = f"check ({k.expression})"
        elif k.kind == "exclude":
            body = f"exclude {k.expression}"
        else:
            body = f"{k.kind}{nnd} ({column_list(k.columns)})"
        lines.append(f"  constraint {ident(k.name)} {body}")
    lines += [f"  {fk_clause(fk)}" for fk in inline_fks]
    out = [f"create table {qname(t.schema_name, t.name)} (\n" + ",\n".join(lines) + "\n);"]
    if t.comment:
        out.append(f"comment on table {qname(t.schema_name, t.name)} is {literal(t.comment)};")
    out += [f"comment on column {qname(t.schema_name, t.name)}.{ident(c.name)} is {literal(c.comment)};"
            for c in t.columns if c.comment]
    return "\n".join(out)


def index_sql(schema: str, table: str, ix: Index) -> str:
    kind = "create unique index" if ix.unique else "create index"
    where = f" where {ix.where}" if ix.where else ""
    return f"{kind} {ident(ix.name)} on {qname(schema, table)} ({column_list(ix.columns)}){where};"


def privilege_sql(p: Privilege) -> str:
    return f"{p.privilege} ({column_list(p.columns)})" if p.columns else p.privilege


def grants_sql(target: str, grants: Grants) -> str:
    # Revoke first: legacy projects grant ALL on new public objects to anon and authenticated.
    out = [f"revoke all on table {target} from {API_ROLES};"]
    for role, privileges in grants.items():
        if privileges:
            out.append(f"grant {', '.join(privilege_sql(p) for p in privileges)} on table {target} to {ident(role)};")
    return "\n".join(out)


def table_block(t: Table, inline_fks: list[ForeignKey]) -> str:
    target = qname(t.schema_name, t.name)
    parts = [create_table_sql(t, inline_fks)]
    parts += [index_sql(t.schema_name, t.name, ix) for ix in t.indexes]
    if t.rls_enabled:
        parts.append(f"alter table {target} enable row level security;")
    parts.append(grants_sql(target, t.grants))
    return "\n".join(parts)


def policy_sql(t: Table, p: Policy) -> str:
    target = qname(t.schema_name, t.name)
    command = p.command if isinstance(p.command, str) else p.command.value
    # A role named as read-only that the blueprint lets write: said where a reader (and audit's BP059) looks.
    admitted = [r for r in READ_ONLY_ROLE_NAMES if command != "select"
                and any(f"'{r}'" in (x or "") for x in (p.using, p.check))]
    out = [f"-- blueprint: ignore BP059 the blueprint lets {', '.join(admitted)} {command} here"] if admitted else []
    out += [f"create policy {ident(p.name)} on {target}",
           f"  as {'permissive' if p.permissive else 'restrictive'}",
           f"  for {command}",
           f"  to {', '.join(ident(r) for r in p.roles)}"]
    if p.using is not None:
        out.append(f"  using ({p.using})")
    if p.check is not None:
        out.append(f"  with check ({p.check})")
    text = "\n".join(out) + ";"
    if p.comment:
        text += f"\ncomment on policy {ident(p.name)} on {target} is {literal(p.comment)};"
    return text


STORAGE_OBJECTS = Table(name="objects", schema_name="storage")  # the platform's; only its policies are ours


def bucket_sql(b: StorageBucket) -> str:
    types = "null" if b.allowed_mime_types is None else (
        "array[" + ", ".join(literal(m) for m in b.allowed_mime_types) + "]")
    return ("insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)\n"
            f"values ({literal(b.name)}, {literal(b.name)}, {literal(b.public)}, {literal(b.file_size_limit)}, "
            f"{types})\non conflict (id) do update set public = excluded.public, "
            "file_size_limit = excluded.file_size_limit,\n  allowed_mime_types = excluded.allowed_mime_types;")


def function_sql(f: Function) -> str:
    target = qname(f.schema_name, f.name)
    head = [f"create or replace function {target}({f.args})", f"returns {f.returns}", f"language {f.language}"]
    if f.volatility != "volatile":
        head.append(f.volatility)
    if f.security_definer:
        head.append("security definer")
    if f.search_path is not None:
        schemas = [x.strip() for x in f.search_path.split(",") if x.strip()]
        head.append(f"set search_path = {', '.join(ident(x) for x in schemas) if schemas else literal('')}")
    out = "\n".join([*(f"-- blueprint: ignore {x}" for x in f.ignore), *head]) + f"\nas {dollar_quoted(f.body)};"
    sig = f"{target}({f.arg_types})"
    if f.comment:
        out += f"\ncomment on function {sig} is {literal(f.comment)};"
    # New functions are executable by PUBLIC: take that back, then grant only what is needed.
    out += f"\nrevoke execute on function {sig} from public, {API_ROLES};"
    if f.execute_roles:
        out += f"\ngrant execute on function {sig} to {', '.join(ident(r) for r in f.execute_roles)};"
    return out


def trigger_sql(on: str, trg: Trigger) -> str:
    columns = f" of {', '.join(ident(c) for c in trg.columns)}" if trg.columns else ""
    events = " or ".join(e + columns if e == "update" else e for e in trg.events)
    args = ", ".join(literal(a) for a in trg.args)
    referencing = f"  referencing {' '.join(trg.referencing)}\n" if trg.referencing else ""
    when = f"\n  when ({trg.when})\n " if trg.when else ""
    return (f"create trigger {ident(trg.name)}\n  {trg.timing} {events} on {on}\n{referencing}"
            f"  for each {trg.level}{when} execute function {_qualified(trg.function)}({args});")


def view_sql(v: View) -> str:
    target = qname(v.schema_name, v.name)
    if v.materialized:
        out = f"create materialized view {target} as\n{v.query};"
        out += "".join(f"\n{index_sql(v.schema_name, v.name, ix)}" for ix in v.indexes)
        out += f"\nrevoke all on {target} from public, {API_ROLES};"
    else:
        options = [name for name, on in (("security_invoker", v.security_invoker),
                                         ("security_barrier", v.security_barrier)) if on]
        spelled = f" with ({', '.join(f'{o} = true' for o in options)})" if options else ""
        out = f"create view {target}{spelled} as\n{v.query};"
        out += "\n" + grants_sql(target, v.grants)
    if v.comment:
        kind = "materialized view" if v.materialized else "view"
        out += f"\ncomment on {kind} {target} is {literal(v.comment)};"
    return out


def cron_sql(job: CronJob) -> str:
    # Static SQL in a guarded block: `supabase db reset` and verify run it without pg_cron (a no-op), and
    # verify's guard can read every statement. cron.schedule with a known job name replaces that job.
    block = ("begin\n"
             "  if exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then\n"
             f"    perform cron.schedule({literal(job.name)}, {literal(job.schedule)}, {literal(job.command)});\n"
             "  end if;\nend")
    return ("-- Supabase Cron: scheduled where pg_cron is installed; after enabling it later, run this block again.\n"
            f"do {dollar_quoted(block)};")


def _header(title: str, slug: str) -> str:
    return (f"-- {title}\n-- Generated by blueprint-mcp from the blueprint '{slug}'. "
            "Edit the blueprint, not this file.")


def schema_sql(s: Schema, slug: str) -> str:
    """Migration 1: schemas, types, tables with keys, indexes, RLS enabled and grants."""
    parts = [_header("Initial schema: tenancy, domain, analytics and privacy tables", slug)]
    parts += [f"create extension if not exists {ident(x.name)} with schema {ident(x.schema_name)};"
              for x in s.extensions]
    if s.drop_graphql:
        parts.append(GRAPHQL_OFF)
    for name in s.schemas:
        parts.append(f"create schema if not exists {ident(name)};\n"
                     f"-- Not exposed through the API; policies may call its helpers.\n"
                     f"revoke all on schema {ident(name)} from public;\n"
                     f"grant usage on schema {ident(name)} to authenticated, service_role;")
    parts += [enum_sql(e) for e in s.enums]
    parts += [f"grant usage on type {qname(e.schema_name, e.name)} to authenticated, service_role;" for e in s.enums]
    created: set[str] = set()
    deferred: list[tuple[Table, ForeignKey]] = []
    for t in s.tables:
        inline = []
        for fk in t.foreign_keys:
            ready = fk.ref_schema != "public" or fk.ref_table in created or fk.ref_table == t.name
            (inline.append(fk) if ready else deferred.append((t, fk)))
        parts.append(table_block(t, inline))
        created.add(t.name)
    for t, fk in deferred:
        parts.append(f"alter table {qname(t.schema_name, t.name)} add {fk_clause(fk)};")
    return "\n\n".join(parts) + "\n"


def rls_sql(s: Schema, slug: str) -> str:
    """Migration 2: the membership helper, one policy per command, served views."""
    parts = [_header("Row level security: helpers in private, one policy per command", slug)]
    helpers = [f for f in s.functions if f.returns != "trigger" and not f.returns.startswith("setof private.")
               and f.returns != "void" and f.migration != "triggers"]
    parts += [function_sql(f) for f in helpers]
    for t in s.tables:
        parts += [policy_sql(t, p) for p in t.policies]
    parts += [bucket_sql(b) for b in s.buckets]
    parts += [policy_sql(STORAGE_OBJECTS, p) for p in s.storage_policies]
    for v in s.views:
        parts.append(view_sql(v))
        if v.materialized:
            parts += [function_sql(f) for f in s.functions if f.returns in (f"setof {v.schema_name}.{v.name}", "void")
                      and f.migration != "triggers"]
    parts += [cron_sql(job) for job in s.cron_jobs]
    return "\n\n".join(parts) + "\n"


def triggers_sql(s: Schema, slug: str) -> str:
    """Migration 3: trigger functions and triggers, including signup on auth.users."""
    parts = [_header("Triggers and lifecycle: timestamps, immutable keys, signup and account deletion, "
                     "ownership, invitations, audit", slug)]
    parts += [function_sql(f) for f in s.functions if f.returns == "trigger"]
    for t in s.tables:
        parts += [trigger_sql(qname(t.schema_name, t.name), trg) for trg in t.triggers]
    parts += [trigger_sql("auth.users", trg) for trg in s.auth_triggers]
    parts += [function_sql(f) for f in s.functions if f.migration == "triggers" and f.returns != "trigger"]
    return "\n\n".join(parts) + "\n"
