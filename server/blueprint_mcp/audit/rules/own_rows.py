"""Lookups of a row every signed-in user has, keyed by their own id (BP079): `exists (select 1 from auth.users
where id = auth.uid())`, and the same of a table a trigger on auth.users fills for every signup (the usual
`handle_new_user` making `public.profiles (id) values (new.id)`: evasion round 21 e06). Such a test asks "is this a
registered user", which every caller a policy `to authenticated` is: OR-ed beside a membership check it opens every
organisation's rows, as `auth.uid() is not null` does."""

from __future__ import annotations

from typing import Any

from ...model.schema import Schema
from ..tree import const, function_name, qualified, strings
from .common import _once, can_select, commands, find_function, lone_value, only_statement, unwrapped_value

_UID = "auth.uid"


def own_row_exists(s: Schema, node: Any, definer: bool) -> str | None:
    """What makes `node` a lookup of the caller's own row in a table every user has one in: `exists (select 1
    from t where t.<key> = auth.uid())`, `auth.uid() in (select <key> from t)` or `(select count(*) from t where
    t.<key> = auth.uid()) > 0` or `(select <key> from t where t.<key> = auth.uid()) is not null`; None for anything
    else."""
    found = _counted(node) if isinstance(node, dict) and "A_Expr" in node else _not_null(node) \
        if isinstance(node, dict) and "NullTest" in node else _looked_up(node)
    if found is None:
        return None
    table, key = found
    if table == "auth.users":
        return "the caller's own auth.users row exists" if key == "id" else None
    maker = every_user_rows(s).get((table, key))
    if maker is None or not _sees_own_row(s, table, key, definer):
        return None
    return f"the caller's own {table} row exists ({maker} makes one for every new user)"


def _looked_up(node: Any) -> tuple[str, str] | None:
    """(table, key) of `exists (select 1 from t where t.<key> = auth.uid())` or `auth.uid() in (select <key> from
    t)`."""
    link = node.get("SubLink") if isinstance(node, dict) else None
    select = _one_table_select(link)
    if select is None:
        return None
    kind = link.get("subLinkType")
    if kind == "EXISTS_SUBLINK":
        key = _keyed_by_caller(select.get("whereClause"))
    elif kind == "ANY_SUBLINK" and strings(link.get("operName")) in ([], ["="]) and \
            _is_uid(link.get("testexpr")) and not select.get("whereClause"):
        column = lone_value(select, bare=False)
        names = strings((column or {}).get("ColumnRef", {}).get("fields")) if isinstance(column, dict) else []
        key = names[-1] if names else None
    else:
        return None
    return (_only_table(select), key) if key is not None else None


def _not_null(node: dict) -> tuple[str, str] | None:
    """(table, key) of `(select <key> from t where t.<key> = auth.uid()) is not null`: the key read is the caller's
    id, never NULL, wherever the row exists (a PL/pgSQL `select id into v ... ; return v is not null`: evasion
    round 22 e03)."""
    test = node["NullTest"]
    link = (test.get("arg") or {}).get("SubLink") if isinstance(test.get("arg"), dict) else None
    if test.get("nulltesttype") != "IS_NOT_NULL" or not isinstance(link, dict) or \
            link.get("subLinkType") != "EXPR_SUBLINK":
        return None
    select = _one_table_select(link)
    key = _keyed_by_caller(select.get("whereClause")) if select is not None else None
    column = lone_value(select, bare=False) if key is not None else None
    names = strings((column or {}).get("ColumnRef", {}).get("fields")) if isinstance(column, dict) else []
    return (_only_table(select), key) if names[-1:] == [key] else None


_AT_LEAST_ONE = {">": lambda n: n < 1, ">=": lambda n: n <= 1, "<>": lambda n: n == 0, "!=": lambda n: n == 0}
_FLIPPED = {">": "<", ">=": "<=", "<>": "<>", "!=": "!=", "<": ">", "<=": ">="}


def _counted(node: dict) -> tuple[str, str] | None:
    """(table, key) of `(select count(*) from t where t.<key> = auth.uid()) > 0` (or `>= 1`, `<> 0`, either way
    round): true wherever the caller's own row exists."""
    e = node["A_Expr"]
    op = strings(e.get("name"))
    if e.get("kind", "AEXPR_OP") != "AEXPR_OP" or len(op) != 1 or op[0] not in _FLIPPED:
        return None
    left, right, op = e.get("lexpr"), e.get("rexpr"), op[0]
    if isinstance(left, dict) and "A_Const" in left:
        left, right, op = right, left, _FLIPPED[op]
    bound = const(right) if isinstance(right, dict) and "A_Const" in right else None
    link = left.get("SubLink") if isinstance(left, dict) else None
    if type(bound) is not int or op not in _AT_LEAST_ONE or not _AT_LEAST_ONE[op](bound) or \
            not isinstance(link, dict) or link.get("subLinkType") != "EXPR_SUBLINK":
        return None
    select = _one_table_select(link)
    call = (lone_value(select, bare=False) or {}).get("FuncCall") if select is not None else None
    if not isinstance(call, dict) or function_name(call) not in ("count", "pg_catalog.count") or \
            not (call.get("agg_star") or [const(a) for a in call.get("args") or []] == [1]):
        return None
    key = _keyed_by_caller(select.get("whereClause"))
    return (_only_table(select), key) if key is not None else None


def _one_table_select(link: Any) -> dict | None:
    """The SELECT of a sub-query reading one table, without grouping or set operations."""
    select = (link.get("subselect") or {}).get("SelectStmt") if isinstance(link, dict) else None
    if not isinstance(select, dict) or select.get("groupClause") or select.get("havingClause") or \
            select.get("op", "SETOP_NONE") != "SETOP_NONE" or _only_table(select) is None:
        return None
    return select


def every_user_rows(s: Schema) -> dict[tuple[str, str], str]:
    """(table, key column) -> the function of a trigger on auth.users that inserts, on every run, a row of the
    table keyed by the new user's id (`insert into public.profiles (id) values (new.id)`), read once per audit."""
    return _once("every user rows", s, _every_user_rows, s)


def _every_user_rows(s: Schema) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for trg in s.auth_triggers:
        if trg.level != "row" or "insert" not in trg.events or trg.when or not trg.fires:
            continue  # (a WHEN makes the row only for some signups)
        f = find_function(s, trg.function)
        reading = getattr(f, "_body", None) if f is not None else None
        for at in getattr(reading, "always", ()) or ():
            kind, insert = only_statement(reading.trees[at])
            if kind != "InsertStmt" or not isinstance(insert.get("relation"), dict):
                continue
            table = qualified(insert["relation"], reading.default_schema)
            for key in _new_id_columns(s, table, insert):
                out.setdefault((table, key), f.qualified)
    return out


def _new_id_columns(s: Schema, table: str, insert: dict) -> list[str]:
    """The columns an INSERT of one row fills with the new user's id (`new.id`)."""
    select = (insert.get("selectStmt") or {}).get("SelectStmt") or {}
    rows = select.get("valuesLists") or []
    if len(rows) == 1:
        values = (rows[0].get("List") or {}).get("items") or []
    elif not rows and not select.get("fromClause") and not select.get("whereClause"):
        values = [(t.get("ResTarget") or {}).get("val") for t in select.get("targetList") or []]
    else:
        return []
    columns = [(c.get("ResTarget") or {}).get("name") for c in insert.get("cols") or []]
    if not columns:
        schema, _, name = table.partition(".")
        t = s.table(name, schema)
        columns = [c.name for c in t.columns] if t is not None else []
    return [c for c, v in zip(columns, values) if c and isinstance(v, dict) and
            [x.lower() for x in strings((v.get("ColumnRef") or {}).get("fields"))] == ["new", "id"]]


def _sees_own_row(s: Schema, table: str, key: str, definer: bool) -> bool:
    """Whether a signed-in caller's lookup finds their own row: a definer's always does; an invoker's where the
    table is granted and either not under RLS or a permissive SELECT policy for them admits `key = auth.uid()` (and
    each restrictive one does too)."""
    if definer:
        return True
    schema, _, name = table.partition(".")
    t = s.table(name, schema)
    if t is None or not can_select(s, t, "authenticated"):
        return False
    if not t.rls_enabled:
        return True
    applying = [p for p in t.policies if (not p.roles or {"authenticated", "public"} & set(p.roles)) and
                "select" in commands(p)]
    return any(p.permissive and _admits_own(p.using_tree, key) for p in applying) and \
        all(_admits_own(p.using_tree, key) for p in applying if not p.permissive)


def _admits_own(node: Any, key: str) -> bool:
    """`true`, `key = auth.uid()`, or an OR holding one."""
    if not isinstance(node, dict):
        return False
    if "BoolExpr" in node and node["BoolExpr"].get("boolop") == "OR_EXPR":
        return any(_admits_own(a, key) for a in node["BoolExpr"].get("args") or [])
    value = node.get("A_Const") or {}
    if "boolval" in value:
        return bool((value.get("boolval") or {}).get("boolval"))
    return _keyed_by_caller(node) == key


def _keyed_by_caller(where: Any) -> str | None:
    """The column of `<column> = auth.uid()` (either side, the call as it is or in `(select ...)`)."""
    e = where.get("A_Expr") if isinstance(where, dict) else None
    if not isinstance(e, dict) or strings(e.get("name")) != ["="] or e.get("kind", "AEXPR_OP") != "AEXPR_OP":
        return None
    sides = [unwrapped_value(e.get("lexpr")), unwrapped_value(e.get("rexpr"))]
    names = [strings((x.get("ColumnRef") or {}).get("fields")) for x in sides if isinstance(x, dict)]
    uids = [x for x in sides if _is_uid(x)]
    columns = [n[-1] for n in names if n]
    return columns[0] if len(uids) == 1 and len(columns) == 1 else None


def _is_uid(node: Any) -> bool:
    node = unwrapped_value(node)
    call = node.get("FuncCall") if isinstance(node, dict) else None
    return isinstance(call, dict) and function_name(call) == _UID and not call.get("args")


def _only_table(select: dict) -> str | None:
    """schema.table of a SELECT reading exactly one table (public when unqualified)."""
    tables = select.get("fromClause") or []
    rv = tables[0].get("RangeVar") if len(tables) == 1 and isinstance(tables[0], dict) else None
    return qualified(rv, "public") if isinstance(rv, dict) else None
