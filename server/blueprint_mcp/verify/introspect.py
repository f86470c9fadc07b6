"""Read a migrated database back into the physical schema model: its own schemas' tables (not the platform's
nor verify's), enums and functions, and the public views that carry the tenant key.

Tables outside public are read too: a starter may keep its tenant and membership tables in a schema of its own
(Basejump's basejump.accounts and basejump.account_user), and the tenant key is read off them.
"""

from __future__ import annotations

from typing import Any

from ..audit.body import plpgsql_body, sql_body
from ..audit.platform import MANAGED_SCHEMAS
from ..model.schema import Column, Constraint, EnumType, ForeignKey, Function, Schema, Table, View
from ..model.tenant_keys import assign_tenant_keys
from ..sql.ident import literal

# Not the app's: the platform's schemas (and the `_realtime`, `_analytics` style ones of a local stack), verify's
# own, PostgreSQL's.
_OWN = ("n.nspname <> all (array[" + ", ".join(literal(n) for n in sorted(MANAGED_SCHEMAS | {"blueprint_tests"}))
        + "]) and n.nspname not like 'pg\\_%' and n.nspname not like '\\_%'")

_COLUMNS = f"""
select n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), not a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity <> '' or a.attgenerated <> ''
  from pg_class c
  join pg_namespace n on n.oid = c.relnamespace
  join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
  left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
 where {_OWN} and c.relkind in ('r', 'p')
 order by n.nspname, c.relname, a.attnum"""

_CONSTRAINTS = f"""
select n.nspname, c.relname, k.conname, k.contype,
       array(select a.attname from unnest(k.conkey) with ordinality u(n, o)
             join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n order by u.o)::text[],
       pg_get_constraintdef(k.oid), fn.nspname, f.relname,
       array(select a.attname from unnest(k.confkey) with ordinality u(n, o)
             join pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.n order by u.o)::text[]
  from pg_constraint k
  join pg_class c on c.oid = k.conrelid
  join pg_namespace n on n.oid = c.relnamespace
  left join pg_class f on f.oid = k.confrelid
  left join pg_namespace fn on fn.oid = f.relnamespace
 where {_OWN} and k.contype in ('p', 'u', 'c', 'f')
 order by n.nspname, c.relname, k.conname"""

_ENUMS = f"""
select n.nspname, t.typname, array_agg(e.enumlabel order by e.enumsortorder)::text[]
  from pg_type t join pg_enum e on e.enumtypid = t.oid join pg_namespace n on n.oid = t.typnamespace
 where {_OWN} group by 1, 2 order by 1, 2"""

_VIEWS = """
select c.relname, c.relkind = 'm',
       array(select a.attname from pg_attribute a where a.attrelid = c.oid and a.attnum > 0
                and not a.attisdropped)::text[]
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'public' and c.relkind in ('v', 'm') order by 1"""

_FUNCTIONS = """
select n.nspname, p.proname,
       array_to_string(array(select quote_ident(tn.nspname) || '.' || quote_ident(t.typname)
                               from unnest(p.proargtypes::oid[]) with ordinality a(oid, o)
                               join pg_type t on t.oid = a.oid join pg_namespace tn on tn.oid = t.typnamespace
                              order by a.o), ', '),
       p.provolatile = 'v',
       format_type(p.prorettype, null),
       l.lanname,
       case when l.lanname in ('sql', 'plpgsql') then p.prosrc end,
       case when l.lanname = 'plpgsql' then pg_get_functiondef(p.oid) end
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace join pg_language l on l.oid = p.prolang
 where n.nspname in ('public', 'private') and p.prokind = 'f'
   and format_type(p.prorettype, null) <> 'trigger'
   and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
 order by 1, 2"""


def introspect(conn: Any) -> Schema:
    """The app's tables, constraints, enums, views and functions. Read with an empty search_path, so that types
    and the casts in defaults and checks come back schema-qualified (`'review'::public.reviews_kind_enum`): the
    literals fixtures copy from them must mean the same type whatever search_path the cases run under."""
    previous = conn.execute("select current_setting('search_path')").fetchone()[0]
    conn.execute("select set_config('search_path', '', false)")
    try:
        return _introspect(conn)
    finally:
        conn.execute("select set_config('search_path', %s, false)", (previous,))


def _introspect(conn: Any) -> Schema:
    tables: dict[tuple[str, str], Table] = {}
    for schema, rel, name, typ, nullable, default, generated in conn.execute(_COLUMNS):
        t = tables.setdefault((schema, rel), Table(schema_name=schema, name=rel))
        t.columns.append(Column(name=name, type=typ, nullable=nullable,
                                default=default if default is not None or not generated else "generated"))
    for schema, rel, name, kind, cols, definition, fschema, ftable, fcols in conn.execute(_CONSTRAINTS):
        t = tables.get((schema, rel))
        if t is None:
            continue
        if kind == "f":
            t.foreign_keys.append(ForeignKey(name=name, columns=list(cols), ref_schema=fschema, ref_table=ftable,
                                             ref_columns=list(fcols)))
        else:
            t.constraints.append(Constraint(name=name, kind={"p": "primary key", "u": "unique", "c": "check"}[kind],
                                            columns=list(cols), expression=definition if kind == "c" else None))
    key = assign_tenant_keys(list(tables.values()))
    enums = [EnumType(schema_name=s, name=n, values=list(v)) for s, n, v in conn.execute(_ENUMS)]
    # Enum types keep their schema (fixture literals are cast to them); others are read by their own name, as
    # the value readers know them (`extensions.citext` is a citext column).
    qualified = {f"{e.schema_name}.{e.name}" for e in enums}
    for t in tables.values():
        for c in t.columns:
            base = c.type.split("(")[0].strip()
            if "." in base and base.rstrip("[]") not in qualified and not base.startswith('"'):
                c.type = c.type.split(".", 1)[1]
    # The views a tenant's rows show through: those that carry the tenant key.
    views = [View(schema_name="public", name=n, query="", materialized=m)
             for n, m, columns in conn.execute(_VIEWS) if key is not None and key in columns]
    rows = list(conn.execute(_FUNCTIONS))
    own = {n for _, n, *_ in rows} | {f"{s}.{n}" for s, n, *_ in rows}
    functions = [Function(schema_name=s, name=n, arg_types=args, returns=ret, language="sql",
                          volatility="volatile" if vol else "stable", body="",
                          writes=_writes(language, source, definition, own))
                 for s, n, args, vol, ret, language, source, definition in rows]
    return Schema(tables=list(tables.values()), enums=enums, views=views, functions=functions)


def _writes(language: str, source: str | None, definition: str | None, own: set[str]) -> list[str] | None:
    """The tables a function's body writes ([] for none), or None when it may write what cannot be read off it:
    another language, SQL made at run time, a body that does not parse, or a call of another function of the
    app (`own`: its functions' names, bare and qualified), which may write in its turn. Other calls (PostgreSQL's
    built-ins, auth.uid()) write no table."""
    if source is None:
        return None
    facts = sql_body(source, "public") if language == "sql" else plpgsql_body(definition or "", "public")
    if facts is None or facts.dynamic:
        return None
    if any(call in own or ("." in call and call.split(".")[0] not in ("pg_catalog", "auth")) for call in facts.calls):
        return None
    return sorted(facts.writes)
