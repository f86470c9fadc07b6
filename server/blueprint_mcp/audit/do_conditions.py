"""The conditions a DO block tests that the model can decide (evasion round 12 e05, round 16 e04).

An IF body, or what follows an EXIT WHEN, runs only when its condition holds. The auditor decides the tests
migrations write to be idempotent: `to_regclass('s.t') is [not] null`, and `[not] exists (select 1 from <catalog>
where <column> = '<text>' and ... [and [not] rowsecurity])` over pg_tables, pg_class, pg_policies, pg_proc and
their information_schema views, by looking the object up in the model as it stands when the block runs.
Anything else is unknown (None).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pgparse

from .tree import const, function_name, strings

# catalog -> (its schema, its columns a condition may test -> what they say). A column says a text ("schema",
# "table", "policy", "kind") or a flag ("rowsecurity", "forcerowsecurity"); "namespace" is pg_class's schema oid.
CATALOGS = {
    "pg_tables": ("pg_catalog", {"schemaname": "schema", "tablename": "table", "rowsecurity": "rowsecurity"}),
    "pg_policies": ("pg_catalog", {"schemaname": "schema", "tablename": "table", "policyname": "policy"}),
    "tables": ("information_schema", {"table_schema": "schema", "table_name": "table", "table_type": "kind"}),
    "pg_class": ("pg_catalog", {"relname": "table", "relkind": "kind", "relnamespace": "namespace",
                                "relrowsecurity": "rowsecurity", "relforcerowsecurity": "forcerowsecurity"}),
    "pg_proc": ("pg_catalog", {"proname": "function", "pronamespace": "namespace"}),
    "routines": ("information_schema", {"routine_schema": "schema", "routine_name": "function"}),
    "pg_namespace": ("pg_catalog", {"nspname": "schema", "oid": "namespace"}),
}
FLAGS = ("rowsecurity", "forcerowsecurity")
# what a kind's value says: a table or a view (anything else: not decided)
KINDS = {"BASE TABLE": "table", "VIEW": "view", "r": "table", "p": "table", "v": "view"}


@dataclass(frozen=True)
class Facts:
    """What the model says when the block runs: `relation(name)` for to_regclass (True, or None when unknown);
    `rows(catalog, equal, flags)` whether a catalog holds a row with those values (None: unknown). The catalog
    is "pg_policies", a function catalog ("pg_proc", "routines") or a relation catalog ("pg_tables", "tables",
    "pg_class"); `equal` maps "schema", "table", "policy", "function" and "kind" ("table" or "view") to a
    value, `flags` "rowsecurity" and "forcerowsecurity"."""

    relation: Callable[[str], bool | None] = lambda name: None
    rows: Callable[[str, dict[str, str], dict[str, bool]], bool | None] = lambda catalog, equal, flags: None


def condition(node: Any, env: dict[str, str], facts: Facts, text: Callable[[Any, dict[str, str]], str | None]) \
        -> bool | None:
    """The value of a condition the model decides (also under NOT, AND and OR); None for anything else. `text`
    computes a known text (literals and loop variables)."""
    if not isinstance(node, dict):
        return None
    known = constant_truth(node)  # (a replayed function's bound parameter: `null is not null`; round 19 e03b)
    if known is not None:
        return known
    if "BoolExpr" in node:
        b = node["BoolExpr"]
        args = b.get("args") or []
        if b.get("boolop") == "NOT_EXPR" and len(args) == 1:
            inner = condition(args[0], env, facts, text)
            return None if inner is None else not inner
        if b.get("boolop") not in ("AND_EXPR", "OR_EXPR") or not args:
            return None
        # Three-valued, as PostgreSQL evaluates it: one known false decides an AND, one known true an OR,
        # whatever the others are (evasion round 17 fp02: `if exists (...) and not exists (... rowsecurity)`).
        values = [condition(a, env, facts, text) for a in args]
        decisive = b["boolop"] == "OR_EXPR"
        if decisive in values:
            return decisive
        return None if None in values else not decisive
    if "SubLink" in node:
        return _exists(node["SubLink"], facts)
    test = node.get("NullTest")
    call = ((test or {}).get("arg") or {}).get("FuncCall")
    if not isinstance(call, dict) or function_name(call).removeprefix("pg_catalog.") != "to_regclass":
        return None
    args = call.get("args") or []
    name = text(args[0], env) if len(args) == 1 else None
    found = facts.relation(name) if name is not None else None
    if found is None:
        return None
    return (not found) if test.get("nulltesttype") == "IS_NULL" else found


def _exists(link: dict, facts: Facts) -> bool | None:
    """`exists (select ... from <catalog> where <column> = '<text>' and [not] <flag> and ...)`, pg_class joined
    to pg_namespace on its oid too."""
    select = (link.get("subselect") or {}).get("SelectStmt")
    if link.get("subLinkType") != "EXISTS_SUBLINK" or not isinstance(select, dict) \
            or select.get("op", "SETOP_NONE") != "SETOP_NONE" or select.get("groupClause") \
            or select.get("havingClause") or select.get("limitCount") or select.get("withClause"):
        return None
    aliases: dict[str, str] = {}
    terms = _conjuncts(select.get("whereClause"))
    for item in select.get("fromClause") or []:
        if not _source(item, aliases, terms):
            return None
    catalogs = set(aliases.values())
    if not catalogs or len(aliases) > 2 or (len(aliases) == 2 and catalogs not in ({"pg_class", "pg_namespace"},
                                                                                  {"pg_proc", "pg_namespace"})):
        return None
    said: dict[str, Any] = {}
    for term in terms:
        if not _term(term, aliases, said):
            return None
    if said.pop("namespace", None) != ("joined" if len(aliases) == 2 else None):
        return None  # (pg_namespace not joined to pg_class's schema: not read)
    if "kind" in said:
        said["kind"] = KINDS.get(said["kind"])
        if said["kind"] is None:
            return None
    flags = {k: said.pop(k) for k in FLAGS if k in said}
    catalog = next(iter(catalogs - {"pg_namespace"}), "pg_namespace")
    return None if catalog == "pg_namespace" else facts.rows(catalog, said, flags)


def _source(item: dict, aliases: dict[str, str], terms: list[Any]) -> bool:
    """Record a FROM item (a catalog, or an inner join of two whose ON condition joins them as a term)."""
    join = item.get("JoinExpr")
    if join is not None:
        if join.get("jointype") != "JOIN_INNER" or join.get("usingClause") or join.get("isNatural"):
            return False
        terms.extend(_conjuncts(join.get("quals")))
        return _source(join.get("larg") or {}, aliases, terms) and _source(join.get("rarg") or {}, aliases, terms)
    relation = item.get("RangeVar")
    if not isinstance(relation, dict) or relation.get("relname") not in CATALOGS:
        return False
    schema = CATALOGS[relation["relname"]][0]
    if relation.get("schemaname") not in (None, schema) or (schema != "pg_catalog" and not relation.get("schemaname")):
        return False
    alias = (relation.get("alias") or {}).get("aliasname") or relation["relname"]
    if alias in aliases:
        return False
    aliases[alias] = relation["relname"]
    return True


def _conjuncts(node: Any) -> list[Any]:
    if node is None:
        return []
    b = node.get("BoolExpr") if isinstance(node, dict) else None
    if b and b.get("boolop") == "AND_EXPR":
        return [x for a in b.get("args") or [] for x in _conjuncts(a)]
    # A test of constants alone (a replayed function's parameter bound to its argument or default: `p_table is
    # null or tablename = p_table` called with no argument; evasion round 18 fp02b) is decided: a true one tests
    # nothing, and a disjunct decided false is no alternative.
    if constant_truth(node) is True:
        return []
    if b and b.get("boolop") == "OR_EXPR":
        if any(constant_truth(a) is True for a in b.get("args") or []):
            return []
        kept = [a for a in b.get("args") or [] if constant_truth(a) is not False]
        if len(kept) == 1:
            return _conjuncts(kept[0])
    return [node]


_NULL = object()


def _constant(node: Any) -> Any:
    """The value of a constant (under casts): True/False, a text or number, _NULL for NULL; None otherwise."""
    while isinstance(node, dict) and "TypeCast" in node:
        node = node["TypeCast"].get("arg")
    body = node.get("A_Const") if isinstance(node, dict) else None
    if not isinstance(body, dict):
        return None
    return _NULL if body.get("isnull") else const(node)


def constant_truth(node: Any) -> bool | None:
    """The value of a condition made of constants alone (`true`, `not false`, `null is null`, `'a' = 'b'`, AND,
    OR, NOT of those); None for anything else, or a NULL result. A replayed function's parameters are bound to
    the call's constant arguments, so its tests of them are these (evasion round 18 fp01, fp02b)."""
    if not isinstance(node, dict):
        return None
    value = _constant(node)
    if isinstance(value, bool):
        return value
    b = node.get("BoolExpr")
    if isinstance(b, dict):
        values = [constant_truth(a) for a in b.get("args") or []]
        if b.get("boolop") == "NOT_EXPR":
            return None if len(values) != 1 or values[0] is None else not values[0]
        decisive = b.get("boolop") == "OR_EXPR"
        if decisive in values:
            return decisive
        return None if None in values or not values else not decisive
    test = node.get("NullTest")
    if isinstance(test, dict):
        inner = _constant(test.get("arg"))
        if inner is None:
            return None
        return (inner is _NULL) == (test.get("nulltesttype") != "IS_NOT_NULL")
    expr = node.get("A_Expr")
    if isinstance(expr, dict) and expr.get("kind") == "AEXPR_OP" and strings(expr.get("name")) in (["="], ["<>"]):
        left, right = _constant(expr.get("lexpr")), _constant(expr.get("rexpr"))
        if left is None or right is None or _NULL in (left, right) or type(left) is not type(right):
            return None
        return (left == right) == (strings(expr.get("name")) == ["="])
    return None


def _column(node: Any, aliases: dict[str, str]) -> str | None:
    """What a column of the catalogs read says (CATALOGS), qualified by its alias or named alone (cast to a text
    type or not: `table_schema::text`)."""
    node = _uncast(node)
    names = strings((node.get("ColumnRef") or {}).get("fields")) if isinstance(node, dict) else []
    if len(names) == 2 and names[0] in aliases:
        return CATALOGS[aliases[names[0]]][1].get(names[1])
    if len(names) == 1:
        said = {CATALOGS[c][1][names[0]] for c in aliases.values() if names[0] in CATALOGS[c][1]}
        return said.pop() if len(said) == 1 else None
    return None


def _value(node: Any) -> Any:
    """A literal (text or boolean, as it is or cast to a text type: `'public'::text`, as pg_dump and the dashboard
    write it), the text of `'public'::regnamespace`, or 'public' for current_schema() (evasion round 23 fp01)."""
    node = _uncast(node)
    cast = node.get("TypeCast") if isinstance(node, dict) else None
    if isinstance(cast, dict):
        names = strings((cast.get("typeName") or {}).get("names"))
        value = const(cast.get("arg")) if not _current_schema(cast.get("arg")) else "public"
        return ("namespace", value) if names[-1:] == ["regnamespace"] and isinstance(value, str) else None
    if _current_schema(node):
        return "public"  # (the first schema of a migration's search_path, as unqualified names are read: round 23)
    return const(node) if isinstance(node, dict) and "A_Const" in node else None


def _current_schema(node: Any) -> bool:
    """`current_schema` or `current_schema()`, casts to text types aside."""
    node = _uncast(node)
    return isinstance(node, dict) and ((node.get("SQLValueFunction") or {}).get("op") == "SVFOP_CURRENT_SCHEMA" or
                                       "FuncCall" in node and not node["FuncCall"].get("args") and
                                       function_name(node["FuncCall"]).removeprefix("pg_catalog.") == "current_schema")


# Types a catalog's name or text compares the same under (information_schema's columns are sql_identifier and
# character_data, domains over name and varchar; relkind is "char"): a cast to one changes no test of a name.
_TEXT_TYPES = frozenset(("text", "name", "varchar", "char", "bpchar", "sql_identifier", "character_data"))


def _uncast(node: Any) -> Any:
    """The node under casts to text types (`'public'::text`, `table_name::name`; evasion round 22 fp03)."""
    while isinstance(node, dict) and "TypeCast" in node and \
            strings((node["TypeCast"].get("typeName") or {}).get("names"))[-1:] and \
            strings((node["TypeCast"].get("typeName") or {}).get("names"))[-1] in _TEXT_TYPES:
        node = node["TypeCast"].get("arg")
    return node


def _term(node: Any, aliases: dict[str, str], said: dict[str, Any]) -> bool:
    """Record one `column = 'text'`, `flag`, `not flag`, `flag = true|false`, `relnamespace = 's'::regnamespace`
    or `n.oid = c.relnamespace`; False for anything else (or a second value for the same thing)."""
    if not isinstance(node, dict):
        return False
    b = node.get("BoolExpr")
    if b and b.get("boolop") == "NOT_EXPR" and len(b.get("args") or []) == 1:
        name = _column(b["args"][0], aliases)
        return name in FLAGS and _say(said, name, False)
    name = _column(node, aliases)
    if name is not None:
        return name in FLAGS and _say(said, name, True)
    e = node.get("A_Expr")
    if not e or e.get("kind", "AEXPR_OP") != "AEXPR_OP" or strings(e.get("name")) != ["="]:
        return False
    left, right = _column(e.get("lexpr"), aliases), _column(e.get("rexpr"), aliases)
    if left == right == "namespace":
        return _say(said, "namespace", "joined")
    for name, other in ((left, e.get("rexpr")), (right, e.get("lexpr"))):
        value = _value(other)
        if name == "namespace" and isinstance(value, tuple):
            return _say(said, "schema", value[1])
        if name in FLAGS and isinstance(value, bool) or name not in (None, *FLAGS) and isinstance(value, str):
            return _say(said, name, value)
    return False


def _say(said: dict[str, Any], key: str, value: Any) -> bool:
    if key in said and said[key] != value:
        return False
    said[key] = value
    return True


Names = Callable[[str, str], bool]  # (schema, table) -> whether a loop's query may give that table


@dataclass(frozen=True)
class LoopRows:
    """What a loop over a catalog query (or a SELECT INTO over one) gives: `may`, which tables it may name (every
    test not read passes); `covers`, when every test is read, exactly which tables of the model it names (a
    Table: its schema, name, RLS flags and kind), else None; `columns`, its output columns -> what they say
    ("table", "schema"...; None but for a plain column of the catalogs), in order."""

    may: Names
    covers: Callable[[Any], bool] | None = None
    columns: tuple[tuple[str, str | None], ...] = ()


_ANY = LoopRows(lambda schema, table: True)


def loop_names(query: str) -> LoopRows:
    """Which tables a loop over a catalog query may name (`for t in select tablename from pg_tables where
    schemaname = 'public' and tablename like 'import_%'`): its tests of the schema and table names (=, <>, IN,
    NOT IN, LIKE, NOT LIKE) are kept, any other test is passed over (so the set only widens); any table for a
    query that is not one plain SELECT of the catalogs (evasion round 16 e11). When it reads every test (names,
    the RLS flags, relkind), also exactly which tables it names (round 17 fp03)."""
    try:
        parsed = pgparse.parse(query)
    except (pgparse.PGQueryError, RecursionError, ValueError):
        return _ANY
    return select_rows(parsed[0]["stmt"].get("SelectStmt") if len(parsed) == 1 else None)


def select_rows(select: Any) -> LoopRows:
    """`loop_names` of a parsed SELECT (a scalar sub-select of an EXECUTE's text: evasion round 18 e04b)."""
    if not isinstance(select, dict) or select.get("op", "SETOP_NONE") != "SETOP_NONE" or select.get("withClause") \
            or not select.get("fromClause"):
        return _ANY
    aliases: dict[str, str] = {}
    terms = _conjuncts(select.get("whereClause"))
    if not all(_source(item, aliases, terms) for item in select["fromClause"]):
        return _ANY
    tests = [t for t in (_name_test(term, aliases) for term in terms) if t is not None]
    may = lambda schema, table: all(test({"schema": schema, "table": table}) for test in tests)  # noqa: E731
    exact = [_name_test(term, aliases) or _table_test(term, aliases) for term in terms]
    catalogs = set(aliases.values())
    # (information_schema.tables lists what the migration role has a privilege on: all it made; round 21 fp03)
    plain = not any(select.get(k) for k in ("limitCount", "limitOffset", "groupClause", "havingClause",
                                            "distinctClause")) and catalogs in ({"pg_tables"}, {"pg_class"},
                                                                               {"pg_class", "pg_namespace"},
                                                                               {"tables"})
    covers = None
    if plain and None not in exact:
        tests_all = [t for t in exact if t is not None]
        if catalogs == {"pg_tables"}:  # (it lists tables and partitioned tables, no foreign table)
            tests_all.append(lambda row: row["table_obj"].kind == "table")
        covers = lambda t: all(test({"schema": t.schema_name, "table": t.name, "table_obj": t})  # noqa: E731
                               for test in tests_all)
    columns = []
    for target in select.get("targetList") or []:
        res = target.get("ResTarget") or {}
        fields = strings((_uncast(res.get("val")) or {}).get("ColumnRef", {}).get("fields"))  # (`name::text` too)
        said = _column(res.get("val"), aliases) or _relation(res.get("val"), aliases)
        columns.append((res.get("name") or (fields[-1] if fields else ""), said))
    return LoopRows(may, covers, tuple(columns))


def _relation(node: Any, aliases: dict[str, str]) -> str | None:
    """"relation" for pg_class's `oid::regclass`: the relation's name, qualified as its schema needs."""
    cast = node.get("TypeCast") if isinstance(node, dict) else None
    if not isinstance(cast, dict) or strings((cast.get("typeName") or {}).get("names"))[-1:] != ["regclass"]:
        return None
    names = strings(((cast.get("arg") or {}).get("ColumnRef") or {}).get("fields"))
    alias = names[0] if len(names) == 2 else next(iter(aliases), None) if len(aliases) == 1 else None
    return "relation" if names[-1:] == ["oid"] and aliases.get(alias or "") == "pg_class" else None


def _table_test(node: Any, aliases: dict[str, str]) -> Callable[[dict[str, Any]], bool] | None:
    """A test of a relation's RLS flag or kind (`not rowsecurity`, `relkind = 'r'`, `relkind in ('r', 'p')`), or
    the join of pg_class to pg_namespace; None for any other."""
    said: dict[str, Any] = {}
    if _term(node, aliases, said) and said:
        (key, value), = said.items()
        if key == "namespace":
            return lambda row: True
        if key in FLAGS:
            attribute = "rls_enabled" if key == "rowsecurity" else "rls_forced"
            return lambda row: getattr(row["table_obj"], attribute) == value
        if key == "kind":
            return lambda row: value in _relkinds(row["table_obj"])
        return None
    e = node.get("A_Expr") if isinstance(node, dict) else None
    if e and e.get("kind") == "AEXPR_IN" and strings(e.get("name")) == ["="] \
            and _column(e.get("lexpr"), aliases) == "kind":
        values = [_value(x) for x in (e.get("rexpr") or {}).get("List", {}).get("items") or []]
        if values and all(isinstance(v, str) for v in values):
            return lambda row: bool(_relkinds(row["table_obj"]) & set(values))
    return None


def _relkinds(table: Any) -> set[str]:
    """A table's pg_class.relkind and information_schema.tables.table_type."""
    if table.kind == "foreign table":
        return {"f", "FOREIGN"}
    return {"p" if table.partitioned else "r", "BASE TABLE"}


def _name_test(node: Any, aliases: dict[str, str]) -> Callable[[dict[str, str]], bool] | None:
    """A test of the schema's or the table's name (None for any other)."""
    e = node.get("A_Expr") if isinstance(node, dict) else None
    if not e:
        return None
    name, op, kind = _column(e.get("lexpr"), aliases), strings(e.get("name")), e.get("kind", "AEXPR_OP")
    right = e.get("rexpr")
    if name == "namespace" and isinstance(_value(right), tuple) and kind == "AEXPR_OP" and op == ["="]:
        schema = _value(right)[1]
        return lambda row: row["schema"] == schema  # (`relnamespace = 'public'::regnamespace`)
    if name not in ("schema", "table"):
        return None
    if kind == "AEXPR_IN":
        values = [_value(x) for x in (right or {}).get("List", {}).get("items") or []]
        if not values or not all(isinstance(v, str) for v in values) or op not in (["="], ["<>"]):
            return None
        return lambda row: (row[name] in values) == (op == ["="])
    value = _value(right)
    if not isinstance(value, str):
        return None
    if kind == "AEXPR_OP" and op in (["="], ["<>"], ["!="]):
        return lambda row: (row[name] == value) == (op == ["="])
    if kind == "AEXPR_LIKE" and op in (["~~"], ["!~~"]):
        pattern = re.compile(_like(value), re.DOTALL)
        return lambda row: bool(pattern.fullmatch(row[name])) == (op == ["~~"])
    return None


def _like(pattern: str) -> str:
    """A LIKE pattern (backslash escapes) as a regular expression."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return "".join(out)
