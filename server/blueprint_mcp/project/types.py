"""`supabase/types/database.types.ts` from the model, no database: the shape `supabase gen types typescript` writes."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ..model.schema import Schema, Table, View

ORG = "organization_id"
_TS = {  # PostgreSQL base type -> TypeScript, as supabase gen types maps them
    "uuid": "string", "text": "string", "varchar": "string", "character varying": "string", "citext": "string",
    "character": "string", "date": "string", "timestamptz": "string", "timestamp": "string", "time": "string",
    "timestamp with time zone": "string", "timestamp without time zone": "string", "interval": "string",
    "bytea": "string", "inet": "unknown", "tstzrange": "unknown", "daterange": "unknown",
    "smallint": "number", "integer": "number", "bigint": "number", "numeric": "number", "real": "number",
    "double precision": "number", "boolean": "boolean", "json": "Json", "jsonb": "Json", "void": "undefined",
}


@cache
def _env() -> Environment:
    return Environment(loader=FileSystemLoader(str(Path(__file__).parent / "templates")), undefined=StrictUndefined,
                       autoescape=False, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def ts_type(sql_type: str, enums: set[str]) -> str:
    """The TypeScript type of a column or argument type."""
    t = sql_type.strip().lower()
    if t.endswith("[]"):
        inner = ts_type(t[:-2], enums)
        return f"({inner})[]" if "|" in inner else f"{inner}[]"
    base = re.sub(r"\(.*\)$", "", t).strip()
    name = base.removeprefix("public.")
    if name in enums:
        return f'Database["public"]["Enums"]["{name}"]'
    return _TS.get(base, "unknown")


def _one_to_one(table: Table, columns: list[str]) -> bool:
    own = [c for c in columns if c != ORG] or columns
    return any(k.kind in ("unique", "primary key") and set(k.columns) <= set(columns) and set(own) <= set(k.columns)
               for k in table.constraints)


def _table(t: Table, enums: set[str]) -> dict:
    columns = [{"name": c.name, "ts": ts_type(c.type, enums), "nullable": c.nullable,
                "optional": c.nullable or c.default is not None} for c in t.columns]
    rels = [{"name": fk.name, "columns": ", ".join(json.dumps(c) for c in fk.columns), "one": str(_one_to_one(t, fk.columns)).lower(),
             "target": fk.ref_table, "ref_columns": ", ".join(json.dumps(c) for c in fk.ref_columns)}
            for fk in t.foreign_keys if fk.ref_schema == "public"]
    return {"name": t.name, "columns": columns, "relationships": rels}


def _select_list(query: str) -> list[str]:
    """The output expressions of a plain `select ... from` (top-level commas only)."""
    m = re.match(r"\s*select\s+(.*?)\s+from\s", query, re.S | re.I)
    if not m:
        return []
    out, depth, cur = [], 0, ""
    for ch in m.group(1):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return out + ([cur.strip()] if cur.strip() else [])


def _view_columns(v: View, known: dict[str, str], enums: set[str]) -> list[dict]:
    cols = []
    for expr in _select_list(v.query):
        alias = re.search(r"\bas\s+([a-z_][a-z0-9_]*)\s*$", expr, re.I)
        name = alias.group(1) if alias else expr.split(".")[-1].strip()
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            continue
        cast = re.search(r"::\s*([a-z_]+(?: precision| with(?:out)? time zone)?)\s*(?:as\s+\w+\s*)?$", expr, re.I)
        if re.match(r"count\(", expr, re.I):
            ts = "number"
        elif cast:
            ts = ts_type(cast.group(1), enums)
        else:
            ts = known.get(name, "unknown")
        known.setdefault(name, ts)
        cols.append({"name": name, "ts": ts})
    return cols


def _function_args(args: str, enums: set[str]) -> list[dict]:
    out = []
    for part in filter(None, (a.strip() for a in args.split(","))):
        name, _, typ = part.partition(" ")
        out.append({"name": name, "ts": ts_type(re.sub(r"\s+default\s+.*$", "", typ, flags=re.I), enums)})
    return out


def _returns(returns: str, enums: set[str]) -> str:
    r = returns.strip()
    if r.lower().startswith("setof "):
        inner = ts_type(r[6:], enums)
        return f"{inner}[]" if inner != "unknown" else "Json[]"
    return ts_type(r, enums)


def database_types(schema: Schema) -> str:
    """The text of `supabase/types/database.types.ts`."""
    enums = {e.name for e in schema.enums if e.schema_name == "public"}
    tables = [_table(t, enums) for t in schema.tables if t.schema_name == "public"]
    known = {c["name"]: c["ts"] for t in tables for c in t["columns"]}
    views = []
    for v in schema.views:  # private first: a public view reads its columns through them
        cols = _view_columns(v, known, enums)
        if v.schema_name == "public" and not v.materialized:
            views.append({"name": v.name, "columns": cols})
    functions = [{"name": f.name, "args": _function_args(f.args, enums), "returns": _returns(f.returns, enums)}
                 for f in schema.functions if f.schema_name == "public" and f.returns != "trigger"]
    enum_rows = [{"name": e.name, "union": " | ".join(json.dumps(x) for x in e.values),
                  "list": ", ".join(json.dumps(x) for x in e.values)}
                 for e in schema.enums if e.schema_name == "public"]
    return _env().get_template("database.types.ts.j2").render(tables=tables, views=views, functions=functions,
                                                              enums=enum_rows)
