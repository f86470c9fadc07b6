"""Which `name` a storage policy reads: the file's path, or a column of a sub-query's own relation.

PostgreSQL gives an unqualified column to the innermost query whose FROM has one of that name: in `exists (select 1
from public.organizations o where ... and (storage.foldername(name))[1] = o.id::text)`, `name` is the organisation's
name, not the object's path, and the test asks nothing of the file (evasion round 21 e08; Supabase's own examples
write `objects.name` for this reason). A bare `name` a path test reads (storage.foldername(), starts_with(), LIKE,
split_part()...) that a sub-query's relation owns is such a capture; one no relation there is known to have is the
object's, and one a relation of unknown columns may own is left alone (benefit of the doubt).
"""

from __future__ import annotations

from typing import Any

import pgparse

from ...model.schema import Policy, Schema
from ..pins import unwrap
from ..tree import function_name, qualified, strings
from .binding import _children, _from_items, _typed
from .common import find_function

# Functions that read a path (their first argument, or any argument given the bare `name`).
_PATH_CALLS = frozenset((
    "foldername", "filename", "extension", "starts_with", "split_part", "left", "right", "substr", "substring",
    "strpos", "position", "string_to_array", "regexp_split_to_array", "regexp_like", "regexp_match",
    "regexp_matches", "regexp_substr", "regexp_count", "regexp_instr", "regexp_replace", "like_escape"))
_PATH_KINDS = ("AEXPR_LIKE", "AEXPR_ILIKE", "AEXPR_SIMILAR")
_PATH_OPS = ("~", "~*", "!~", "!~*", "^@", "~~", "~~*", "!~~", "!~~*")
_UNKNOWN = "?"


def object_policies(s: Schema) -> list[Policy]:
    """The policies on storage.objects: those the SQL creates, and the model's own."""
    objects = next((t for t in s.tables if t.qualified == "storage.objects"), None)
    return [*(objects.policies if objects else []), *s.storage_policies]


def captured_paths(s: Schema, tree: Any) -> list[str]:
    """schema.table of each sub-query relation whose `name` column a path test in the policy reads as a bare
    `name` (in document order, once each)."""
    out: list[str] = []
    stack: list[tuple[Any, tuple[dict[str, str], ...], dict[str, list[str] | None]]] = [(tree, (), {})]
    while stack:
        value, scopes, ctes = stack.pop()
        typed = _typed(value)
        if typed is not None:
            kind, body = typed
            if kind == "SelectStmt":
                ctes = {**ctes, **_ctes(body)}
                scopes = scopes + (_owners(s, body, ctes),)
            for operand in _path_operands(kind, body) if scopes else ():
                ref = unwrap(operand)
                if isinstance(ref, dict) and strings((ref.get("ColumnRef") or {}).get("fields")) == ["name"]:
                    owner = next((scope["name"] for scope in reversed(scopes) if "name" in scope), None)
                    if owner not in (None, _UNKNOWN) and owner not in out:
                        out.append(owner)
        stack.extend((child, scopes, ctes) for child in reversed(_children(value)))
    return out


def _ctes(select: dict) -> dict[str, list[str] | None]:
    """The columns of each common table expression of the SELECT's WITH (its column list, or its query's names;
    None where not known): `with o as (select id, name from public.organizations) select 1 from o ...` (evasion
    round 23 e02)."""
    out: dict[str, list[str] | None] = {}
    for item in ((select.get("withClause") or {}).get("ctes") or []):
        cte = item.get("CommonTableExpr") or {} if isinstance(item, dict) else {}
        inner = (cte.get("ctequery") or {}).get("SelectStmt")
        named, columns = strings(cte.get("aliascolnames")), _output_names(inner)
        if cte.get("ctename"):
            out[cte["ctename"]] = None if columns is None and not named else \
                named + (columns or [])[len(named):]
    return out


def _owners(s: Schema, select: dict, ctes: dict[str, list[str] | None] | None = None) -> dict[str, str]:
    """{'name': what owns it} when a relation of the SELECT's own FROM has a `name` column ('?' when one whose
    columns are not known may), {} when none has. A relation is a table, a view, a function's rows (`from
    private.my_organizations() o`, returning organisations or a TABLE with a name: evasion round 22 e01) or a
    sub-select, its columns renamed by an alias's column list (`o(id, org_name)`) as far as that goes."""
    found: dict[str, str] = {}
    for kind, body in _from_items(select):
        renamed = strings((body.get("alias") or {}).get("colnames"))
        cte = body.get("relname") if kind == "RangeVar" and not body.get("schemaname") else None
        label, columns = (cte, (ctes or {})[cte]) if cte in (ctes or {}) else \
            _columns(s, kind, body)
        if columns is None and renamed and kind != "RangeVar":
            columns = []  # (the alias names the columns the reader knows of; round 21's reading)
        if columns is None:
            found = {"name": _UNKNOWN}
            continue
        if "name" in renamed + columns[len(renamed):]:
            return {"name": label}
    return found


def _columns(s: Schema, kind: str, body: dict) -> tuple[str, list[str] | None]:
    """(what to call a FROM item, its columns' names in order); None for columns not known."""
    if kind == "RangeVar":
        name, schema = body.get("relname", ""), body.get("schemaname") or "public"
        t = s.table(name, schema)
        if t is not None:
            return qualified(body, "public"), [c.name for c in t.columns]
        view = next((v for v in s.views if v.name == name and v.schema_name == schema), None)
        names = (view.column_names or _output_names(_parsed_select(view.query))) if view is not None else None
        return qualified(body, "public"), names
    if kind == "RangeSubselect":
        inner = ((body.get("subquery") or {}).get("SelectStmt")) or {}
        return "a sub-select", _output_names(inner)
    if kind == "RangeFunction":
        functions = body.get("functions") or []
        items = (functions[0].get("List") or {}).get("items") or [] if len(functions) == 1 else []
        call = (items[0] or {}).get("FuncCall") if items and isinstance(items[0], dict) else None
        f = find_function(s, function_name(call)) if isinstance(call, dict) and not body.get("ordinality") else None
        return (f"{f.qualified}()", _function_columns(s, f)) if f is not None else ("?", None)
    return "?", None


def _function_columns(s: Schema, f: Any) -> list[str] | None:
    """The columns of a function's rows: its table's (`returns setof public.organizations`), its OUT or TABLE
    parameters (`returns table (id uuid, name text)`), or one named after the function for another type."""
    returned = f.returns.strip().lower()
    returned = returned[len("setof "):].strip() if returned.startswith("setof ") else returned
    if returned in ("record", "trigger", "void"):
        outs = [(p.get("FunctionParameter") or {}) for p in f._parameters or [] if isinstance(p, dict)]
        names = [p.get("name") for p in outs if p.get("mode") in ("FUNC_PARAM_OUT", "FUNC_PARAM_INOUT",
                                                                    "FUNC_PARAM_TABLE")]
        return names if names and all(names) else None
    schema, _, name = returned.rpartition(".")
    t = s.table(name.strip('"'), (schema or "public").strip('"'))
    return [c.name for c in t.columns] if t is not None else [f.name]


def _output_names(select: Any) -> list[str] | None:
    """The names of a SELECT's columns (an alias, or the column's own name); None where one is `*` or a
    set operation's."""
    if not isinstance(select, dict) or select.get("op", "SETOP_NONE") != "SETOP_NONE":
        return None
    out = []
    for target in select.get("targetList") or []:
        res = target.get("ResTarget") or {}
        fields = strings((unwrap(res.get("val")) or {}).get("ColumnRef", {}).get("fields")) \
            if isinstance(unwrap(res.get("val")), dict) else []
        if any(isinstance(x, dict) and "A_Star" in x for x in
               ((unwrap(res.get("val")) or {}).get("ColumnRef") or {}).get("fields") or []):
            return None
        out.append(res.get("name") or (fields[-1] if fields else "?column?"))
    return out


def _parsed_select(query: str) -> Any:
    try:
        parsed = pgparse.parse(query)
    except (pgparse.PGQueryError, RecursionError, ValueError):
        return None
    return (parsed[0].get("stmt") or {}).get("SelectStmt") if len(parsed) == 1 else None


def _path_operands(kind: str, body: dict) -> list[Any]:
    """The operands of a node that read a text as a path."""
    if kind == "FuncCall" and function_name(body).split(".")[-1] in _PATH_CALLS:
        return list(body.get("args") or [])
    if kind == "A_Expr" and (body.get("kind") in _PATH_KINDS or "".join(strings(body.get("name"))) in _PATH_OPS):
        return [body.get("lexpr")]
    return []
