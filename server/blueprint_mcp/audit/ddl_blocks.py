"""Statement handlers, part 4: DO blocks, whose statements change the schema as if written outside.

`do $$ begin alter table public.t disable row level security; end $$` turns RLS off as surely as the bare
statement. Every statement of the PL/pgSQL body (and every EXECUTE of a constant string) is applied in
the order written, whichever IF branch, loop or exception handler holds it: the auditor cannot know which
branch runs, and a statement that might run is the one to check. EXECUTE of a string built from literals, and
of one built from a loop's variable over names written in the block, runs its statements (`do_loops`); EXECUTE of
any other computed string stays unknown, but for what it opens on a table it cannot name (RLS or a trigger
disabled, a table granted), which hits every table it may name (round 16 e11). A statement that may not have
run (an exception handler may have rolled it back, or an EXIT, CONTINUE or RETURN whose condition is unknown came
first, or it sits in an IF branch not known to be taken, a loop that may run no round or a handler) is applied
but for what it would protect: it turns no RLS on, revokes nothing, drops no permissive policy and adds no
restrictive one (evasion round 12, e04 and e05; round 16, e04 and e13). Conditions on the model's own objects
are decided (`do_conditions`). An enable run on each row of a catalog loop covers the tables the loop certainly
names (round 17 fp03). A function or procedure of the model that a migration calls (`select f()`, `perform f()`,
`call p()`) runs its body as a DO block would (round 17 e04).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson
import pgparse

from .body import embedded_sql
from .ddl import HANDLERS, apply
from .do_conditions import Facts, LoopRows
from .do_loops import FIELD_MARK, WILD, array_literal, statements
from .parser import parse
from .platform import MANAGED_SCHEMAS
from ..sql.ident import literal
from .deparse import type_name
from .tree import const, replaced, strings

if TYPE_CHECKING:
    from .parse import Reader, Stmt


def do_block(r: Reader, n: dict, st: Stmt) -> None:
    options = {d.get("DefElem", {}).get("defname"): d.get("DefElem", {}).get("arg") for d in n.get("args") or []}
    language = strings([options["language"]]) if options.get("language") else ["plpgsql"]
    if language != ["plpgsql"]:
        return  # another procedural language (plv8...): its body is not SQL the auditor reads
    try:
        _run(r, st)
    except pgparse.PGQueryError as exc:
        r.problem(f"DO block: {exc.args[0] if exc.args else exc} (PL/pgSQL rejects the body: the block fails "
                  "and none of its statements ran)", st.loc())
    except (RecursionError, ValueError):
        # IFs or DO blocks nested thousands deep (of blocks, the innermost with stack left reports it).
        r.problem("DO block cannot be parsed (nested too deeply or not valid text)", st.loc())


def _run(r: Reader, st: Stmt, block: str | None = None, unsure: bool = False) -> None:
    """Apply what a DO block (`block`: a function's body as one, run by `st`) runs; `unsure`: none of it may have
    run."""
    cursor = 0
    facts = Facts(lambda name: _exists(r, name), lambda catalog, equal, flags: _rows(r, catalog, equal, flags))
    for text, uncertain, wild, bound in statements(block or st.text, embedded_sql, facts):
        uncertain = True if unsure else uncertain
        # A statement of a dollar-quoted body is in the file as written: find it, so what it makes has
        # its own position. One that is not (a body in '...' with doubled quotes) takes the block's.
        at = st.text.find(text, cursor)
        if at >= 0:
            cursor = at + len(text)
        try:
            parsed = parse(text)
        except (pgparse.PGQueryError, RecursionError, ValueError):
            continue  # PL/pgSQL accepted it but the grammar does not (a variable where SQL wants a name)
        inner = st.inner(text, at)
        for raw in parsed:
            stmt = raw.get("stmt") or {}
            if bound:  # (a loop's variable over written names: its text in this round; round 21 fp06)
                stmt = with_values(stmt, bound)
            for node, sure in _anywhere(r, stmt, wild, uncertain) if wild is not None else [(stmt, not uncertain)]:
                if not sure:
                    node = _unsure(r, node)
                if node and "TransactionStmt" not in node:  # COMMIT in a block is PL/pgSQL's, never one here
                    r.unsure += not sure  # (a function it calls then may not run either: `replay`)
                    try:
                        apply(r, node, inner)
                    finally:
                        r.unsure -= not sure


# What a statement run on a table the block cannot name may open on any of them (evasion round 16 e11).
_OPENING = ("AT_DisableRowSecurity", "AT_NoForceRowSecurity", "AT_DisableTrig", "AT_DisableTrigAll",
            "AT_DisableTrigUser")


def _anywhere(r: Reader, node: dict, wilds: dict[str, LoopRows], uncertain: bool | str) -> list[tuple[dict, bool]]:
    """An EXECUTE whose table comes from a value the block cannot spell (`for t in select tablename from
    pg_tables ... loop execute format('alter table public.%I disable row level security', t.tablename)`):
    what it opens (RLS or a trigger disabled, a table privilege granted) is applied to every table of the
    model it may name (of the schema written, or of any schema of the user's, and that the loop's query may
    give: `wilds`), as it stands when the block runs; anything else it does stays unknown, as does any statement
    with an unknown name elsewhere. What it protects (RLS enabled or forced) is applied, for certain, only to the
    tables a loop certainly names (`_covered`). Each statement comes with whether it surely ran."""
    alter, grant = node.get("AlterTableStmt"), node.get("GrantStmt")
    if alter is not None and alter.get("objtype", "OBJECT_TABLE") == "OBJECT_TABLE":
        relation = alter.get("relation") or {}
        if WILD in orjson.dumps(alter.get("cmds") or []).decode() or not str(relation.get("relname")).startswith(WILD):
            return []
        out = []
        for kinds, targets in ((_OPENING, _candidates(r, relation, wilds)), (_GUARDING, _covered(r, relation, wilds,
                                                                                               uncertain))):
            cmds = [c for c in alter.get("cmds") or [] if (c.get("AlterTableCmd") or {}).get("subtype") in kinds]
            out += [({"AlterTableStmt": {**alter, "cmds": cmds, "relation": {**relation, **target}}},
                     kinds is _GUARDING or uncertain is False) for target in targets if cmds]
        return out
    if grant is None or not grant.get("is_grant") or grant.get("objtype") != "OBJECT_TABLE" \
            or grant.get("targtype") != "ACL_TARGET_OBJECT" \
            or WILD in orjson.dumps({k: v for k, v in grant.items() if k != "objects"}).decode():
        return []
    objects = []
    for o in grant.get("objects") or []:
        relation = o.get("RangeVar") or {}
        if str(relation.get("relname")).startswith(WILD):
            objects += [{"RangeVar": {**relation, **target}} for target in _candidates(r, relation, wilds)]
        elif WILD not in orjson.dumps(o).decode():
            objects.append(o)
    return [({"GrantStmt": {**grant, "objects": objects}}, uncertain is False)] if objects else []


_GUARDING = ("AT_EnableRowSecurity", "AT_ForceRowSecurity")


def _candidates(r: Reader, relation: dict, wilds: dict[str, LoopRows]) -> list[dict]:
    schema, rows = relation.get("schemaname"), wilds.get(str(relation.get("relname")).split(FIELD_MARK)[0])
    names = rows.may if rows is not None else lambda schema, table: True
    written = schema is not None and not schema.startswith(WILD)
    return [{"schemaname": t.schema_name, "relname": t.name} for t in r.schema.tables
            if (t.schema_name == schema if written else t.schema_name not in MANAGED_SCHEMAS)
            and names(t.schema_name, t.name)]


def _covered(r: Reader, relation: dict, wilds: dict[str, LoopRows], uncertain: bool | str) -> list[dict]:
    """The tables a statement run on each row of a catalog loop certainly reaches (evasion round 17 fp03: `for t in
    select tablename from pg_tables where schemaname = 'public' loop execute format('alter table public.%I enable
    row level security', t.tablename)`): its table is the loop's table-name column under a schema written (or
    pg_class's `oid::regclass`), the loop reads every test of its query, and nothing but that loop's own rows
    guards the statement (no condition, EXIT, RETURN or handler that may roll it back): each table of the model,
    as it stands when the block runs, that the query gives."""
    schema, name = relation.get("schemaname"), str(relation.get("relname"))
    base, _, column = name.partition(FIELD_MARK)
    rows = wilds.get(base)
    columns = dict(rows.columns) if rows is not None else {}
    # (the schema written, or the same row's schema column: `%I.%I` of table_schema, table_name; round 21 fp03)
    row_schema = schema is not None and schema.partition(FIELD_MARK)[0] == base and columns.get(
        schema.partition(FIELD_MARK)[2]) == "schema"
    # (the table-name column under a schema, or pg_class's oid::regclass, which names the relation itself)
    said = columns.get(column)
    named = said == "table" and (schema is not None and not schema.startswith(WILD) or row_schema) or \
        said == "relation" and not schema
    if uncertain != base or rows is None or rows.covers is None or not named:
        return []
    return [{"schemaname": t.schema_name, "relname": t.name} for t in r.schema.tables
            if (row_schema or schema in (None, t.schema_name)) and not t.external and rows.covers(t)]


# (re-enabling a trigger too: a sanitising or guarding trigger is trusted only while it fires, and rules that
# report a bad trigger read every trigger whether it fires or not; evasion round 14, e03)
_PROTECTING = ("AT_EnableRowSecurity", "AT_ForceRowSecurity", "AT_EnableTrig", "AT_EnableAlwaysTrig",
               "AT_EnableReplicaTrig", "AT_EnableTrigAll", "AT_EnableTrigUser")


def _unsure(r: Reader, node: dict) -> dict | None:
    """A statement that may not have run (an exception handler may have rolled it back, an EXIT may have ended
    its loop first, a condition may be false) may still have run, so it is applied, all but what it would
    protect: it does not turn RLS on or force it, re-enables no trigger, revokes nothing, drops no permissive
    policy (dropping a restrictive one opens, so that stays), adds no restrictive policy, drops no view or
    function (but with CASCADE) and makes no function SECURITY INVOKER nor pins its search_path (round 16 e13)."""
    if "GrantStmt" in node and not node["GrantStmt"].get("is_grant"):
        return None
    if "AlterDefaultPrivilegesStmt" in node and not ((node["AlterDefaultPrivilegesStmt"].get("action") or {})
                                                      .get("GrantStmt") or {}).get("is_grant"):
        return None
    if "CreatePolicyStmt" in node and not node["CreatePolicyStmt"].get("permissive"):
        return None
    drop = node.get("DropStmt")
    if drop is not None and drop.get("removeType") == "OBJECT_POLICY":
        kept = [o for o in drop.get("objects") or [] if _restrictive(r, strings((o.get("List") or {}).get("items")))]
        return {"DropStmt": {**drop, "objects": kept}} if kept else None
    if drop is not None and drop.get("removeType") in _SHUTTING_DROPS and drop.get("behavior") != "DROP_CASCADE":
        return None  # (a view or function gone opens nothing; with CASCADE, what depends on it goes too)
    function = node.get("AlterFunctionStmt")
    if function is not None:
        actions = [a for a in function.get("actions") or [] if not _shutting(a.get("DefElem") or {})]
        return {"AlterFunctionStmt": {**function, "actions": actions}} if actions else None
    alter = node.get("AlterTableStmt")
    if alter is None:
        return node
    cmds = [c for c in alter.get("cmds") or [] if (c.get("AlterTableCmd") or {}).get("subtype") not in _PROTECTING]
    return {"AlterTableStmt": {**alter, "cmds": cmds}} if cmds else None


_SHUTTING_DROPS = ("OBJECT_VIEW", "OBJECT_MATVIEW", "OBJECT_FUNCTION", "OBJECT_PROCEDURE", "OBJECT_ROUTINE")


def _shutting(action: dict) -> bool:
    """`security invoker` or `set search_path = ...` of ALTER FUNCTION: what makes a definer function safe."""
    arg = action.get("arg") or {}
    if action.get("defname") == "security":
        return not (arg.get("Boolean") or {}).get("boolval")
    setting = arg.get("VariableSetStmt") or {}
    return action.get("defname") == "set" and setting.get("name") == "search_path" and setting.get("kind") in (
        "VAR_SET_VALUE", "VAR_SET_CURRENT")


def _restrictive(r: Reader, names: list[str]) -> bool:
    """Whether `drop policy <name> on <table>` names a restrictive policy the model holds."""
    if len(names) < 2:
        return False
    t = r.table(*(names[-3:-1] if len(names) > 2 else (r.creation_schema, names[0])))
    return t is not None and any(p.name == names[-1] and not p.permissive for p in t.policies)


def _rows(r: Reader, catalog: str, equal: dict[str, str], flags: dict[str, bool]) -> bool | None:
    """Whether a catalog (do_conditions.Facts) holds a row with those values, read from the model: True when
    the model holds one; False when it holds none and the filter names a schema of the user's (the platform's
    own tables are not all in the model), or no schema but a table or policy name, and, in pg_class, a table or
    view (it also lists indexes, sequences...); None otherwise."""
    schema, table, kind = equal.get("schema"), equal.get("table"), equal.get("kind")
    if catalog == "pg_tables":
        kind = "table"
    tables = [t for t in r.schema.tables if schema in (None, t.schema_name) and table in (None, t.name)]
    if catalog in ("pg_proc", "routines"):
        found = any(schema in (None, f.schema_name) and equal.get("function") in (None, f.name)
                    for f in r.schema.functions)
        table = equal.get("function")
    elif catalog == "pg_policies":
        found = any(equal.get("policy") in (None, p.name) for t in tables for p in t.policies)
    else:
        found = kind != "view" and any(all(getattr(t, f"rls_{'enabled' if f == 'rowsecurity' else 'forced'}") == v
                                           for f, v in flags.items()) for t in tables)
        found = found or kind != "table" and not any(flags.values()) and any(
            schema in (None, v.schema_name) and table in (None, v.name) for v in r.schema.views)
    if found:
        return True
    decided = catalog != "pg_class" or kind is not None or any(flags.values())
    named = schema not in MANAGED_SCHEMAS if schema is not None else table is not None or "policy" in equal
    return False if decided and named else None


def _exists(r: Reader, name: str) -> bool | None:
    """Whether `to_regclass(name)` finds a relation: True when the model has a table or view of that name under the
    schema the name gives, or, for a name without one, under a schema of the search_path (evasion round 21 v3:
    `to_regclass('notes')`). False, as `_rows` decides a catalog's rows, for a name under a schema of the user's
    that the model holds no relation of (no table, view, sequence, composite type or index of that name, and no
    name a table's implicit index or sequence may have: `<table>_..._seq`, `_pkey`...; round 21 v2, an ELSIF after
    a test of a legacy table's name). None otherwise."""
    try:
        parsed = pgparse.parse(f"table {name}")
    except (pgparse.PGQueryError, RecursionError, ValueError):
        return None
    select = parsed[0]["stmt"].get("SelectStmt") or {} if len(parsed) == 1 else {}
    source = select.get("fromClause") or []
    relation = source[0].get("RangeVar") if len(source) == 1 else None
    if not relation or relation.get("catalogname") or relation.get("alias"):
        return None
    schema, table = relation.get("schemaname"), relation.get("relname") or ""
    # (pg_temp and pg_catalog come first along the path: found there or later, the name is not null)
    if any(r.table(s, table) or r.view(s, table) for s in ([schema] if schema else r.search_path)):
        return True
    if schema is None or schema in MANAGED_SCHEMAS or len(table) >= _NAME_ROOM:
        return None
    implicit = _IMPLICIT.fullmatch(table)
    if (schema, table) in r.relations or any(t.schema_name == schema and (
            implicit and table.startswith(t.name + "_") or any(i.name == table for i in t.indexes))
            for t in r.schema.tables):
        return None
    return False


_NAME_ROOM = 60  # (PostgreSQL truncates the table's part of a longer implicit name: not told apart)
# The names PostgreSQL gives a table's implicit indexes and sequences: <table>_<columns>_<suffix>[n].
_IMPLICIT = re.compile(r".+_(pkey|key|idx|excl|seq)[0-9]*")


def other_relation(r: Reader, n: dict, st: Stmt) -> None:
    """CREATE SEQUENCE, CREATE TYPE ... AS (...): a relation the model keeps no object for, but to_regclass finds."""
    relation = n.get("sequence") or n.get("typevar") or {}
    r.relations.add((relation.get("schemaname") or r.creation_schema, relation.get("relname") or ""))


def with_values(tree: Any, values: dict[str, str]) -> Any:
    """The statement with each column reference `values` names (`t`, `r.t`) read as that text."""
    return replaced(tree, lambda node: {"A_Const": {"sval": {"sval": values[key]}}} if "ColumnRef" in node and (
        key := ".".join(strings(node["ColumnRef"].get("fields")))) in values else None)


_TAG = "$blueprint_replay$"
_MAX_DEPTH = 8


def replay(r: Reader, call: dict, st: Stmt, unsure: bool) -> None:
    """A function or procedure of the model that a migration's statement calls (`select f()`, `perform f()` in a
    DO block, `call p()`) runs its body there and then: its statements are applied as a DO block's are (evasion
    round 17 e04: `select private.set_public_rls(false)` over a body that loops `alter table ... disable row level
    security` over pg_tables). A parameter the call gives a constant (or leaves to its constant DEFAULT) is that
    value in the body, so its tests and CASEs of it are decided and its EXECUTEs name what it names (round 18 fp01,
    fp02, fp02b); any other stays a value the body cannot spell. A name without a schema is looked up along the
    search_path in force (round 18 e05). Several overloads, or a call that may not run (`unsure`), make every
    statement one that may not have run."""
    names = strings(call.get("funcname"))
    if not names or len(names) > 2 or len(r.replaying) >= _MAX_DEPTH:
        return
    unsure = unsure or r.unsure > 0
    schemas = names[:1] if len(names) == 2 else list(dict.fromkeys(("pg_catalog", *r.search_path,
                                                                    r.creation_schema, "public")))
    found = _resolve(r, schemas, names[-1], call)
    for f in found:
        language = f.language.lower()
        if f.qualified in r.replaying or language not in ("plpgsql", "sql") or language == "plpgsql" and _TAG in f.body:
            continue
        r.replaying.add(f.qualified)
        try:
            pinned = st.inner(st.text, -1)  # (what it runs is written in the function, not at the call)
            body = _bound(f.body, _arguments(f._parameters, call)) if len(found) == 1 else f.body
            if language == "plpgsql":
                _run(r, pinned, _wrapped(f, body), unsure or len(found) > 1)
            else:
                for raw in parse(body):
                    node = raw.get("stmt") or {}
                    node = _unsure(r, node) if unsure or len(found) > 1 else node
                    if node and "TransactionStmt" not in node:
                        apply(r, node, pinned)
        except (pgparse.PGQueryError, RecursionError, ValueError):
            # CREATE FUNCTION ran PL/pgSQL's validator on the body, so a body the auditor cannot read is not one
            # PostgreSQL rejects: it may have done what it says (evasion round 19 e02-e04b, which read as "changed
            # nothing"). What it may open is applied to every table it may name.
            _opened(r, f.body, pinned)
        finally:
            r.replaying.discard(f.qualified)


def _resolve(r: Reader, schemas: list[str], name: str, call: dict) -> list:
    """The functions a call may run, as PostgreSQL resolves it (evasion round 19 e01): along `schemas` (the
    search_path, pg_catalog first), only those whose input parameters can take the call's arguments (their
    count, with DEFAULTs and VARIADIC, and the names given); one of a later schema with the same argument types
    as an earlier one is hidden by it. Candidates of different types in different schemas are all returned
    (which one the argument types pick is not decided here: each may have run)."""
    given = call.get("args") or []
    count = len(given)
    named = {(a["NamedArgExpr"].get("name") or "").lower() for a in given if "NamedArgExpr" in a}
    out, seen = [], set()
    for schema in schemas:
        for f in r.functions(schema, name, None):
            if f.arg_types in seen:
                continue
            params = [p.get("FunctionParameter") or {} for p in f._parameters or []]
            inputs = [p for p in params if p.get("mode", "FUNC_PARAM_DEFAULT") in _INPUTS]
            variadic = any(p.get("mode") == "FUNC_PARAM_VARIADIC" for p in inputs)
            required = sum(1 for p in inputs if p.get("defexpr") is None and p.get("mode") != "FUNC_PARAM_VARIADIC")
            names = {(p.get("name") or "").lower() for p in inputs}
            fits = required <= count and (count <= len(inputs) or variadic) and named <= names
            if fits or call.get("agg_star") or call.get("func_variadic") or f._parameters is None and not f.args:
                seen.add(f.arg_types)
                out.append(f)
    return out


_INPUTS = ("FUNC_PARAM_DEFAULT", "FUNC_PARAM_IN", "FUNC_PARAM_INOUT", "FUNC_PARAM_VARIADIC")
_MODE_WORDS = {"FUNC_PARAM_OUT": "out", "FUNC_PARAM_TABLE": "out", "FUNC_PARAM_INOUT": "inout",
               "FUNC_PARAM_VARIADIC": "variadic", "FUNC_PARAM_IN": "in"}


def _wrapped(f: Any, body: str) -> str:
    """The body as the function PL/pgSQL compiled (evasion round 19 e02-e04b): its parameters (named, $n, OUT,
    INOUT and TABLE columns) are variables, `alias for $1` names one, a parameter may be a FOR loop's target, and a
    set-returning function may RETURN NEXT and RETURN QUERY, none of which a DO block allows."""
    params = []
    for wrapped in f._parameters or []:
        p = wrapped.get("FunctionParameter") or {}
        mode = _MODE_WORDS.get(p.get("mode", ""), "")
        name = p.get("name")
        params.append(" ".join(x for x in (mode, f'"{name}"' if name else "", _type(p.get("argType"))) if x))
    returns = "" if f.procedure else f" returns {f.returns or 'void'}"
    kind = "procedure" if f.procedure else "function"
    return f"create {kind} pg_temp.f({', '.join(params)}){returns} language plpgsql as {_TAG}{body}{_TAG}"


def _type(node: Any) -> str:
    """A parameter's type as written (a %TYPE reference, whose table the wrapper cannot see, as text)."""
    if not isinstance(node, dict) or node.get("pct_type"):
        return "text"
    return type_name(node) or "text"


_DISABLING = re.compile(r"(?is)\b(disable|no\s+force)\b.*\brow\s+level\s+security\b|\bexecute\b.*\bdisable\b")


def _opened(r: Reader, body: str, st: Stmt) -> None:
    """A called body the auditor cannot read that may turn RLS off (it says so, or EXECUTEs a text naming
    `disable`): RLS may be off on every table of the user's (evasion round 19, conservative)."""
    if not _DISABLING.search(body or ""):
        return
    r.unsure += 1
    try:
        for t in list(r.schema.tables):
            if t.schema_name in MANAGED_SCHEMAS or t.external:
                continue
            apply(r, {"AlterTableStmt": {"relation": {"schemaname": t.schema_name, "relname": t.name, "inh": True},
                                         "cmds": [{"AlterTableCmd": {"subtype": "AT_DisableRowSecurity",
                                                                     "behavior": "DROP_RESTRICT"}}],
                                         "objtype": "OBJECT_TABLE"}}, st)
    finally:
        r.unsure -= 1


def _arguments(parameters: list | None, call: dict) -> dict[str, str]:
    """The SQL literal each input parameter (by name and as $n) holds for this call: a constant argument, given by
    position or by name (`p => v`), or the parameter's constant DEFAULT when the call leaves it out; an array of
    string constants (`array['notes', 'documents']`, `'{notes,documents}'` to a text[] parameter) as `array[...]`,
    the trailing constants a VARIADIC parameter collects too (evasion round 21 fp06: a helper looping over the
    tables it is given). A parameter given anything else, or any parameter of a call with `*`, is left out."""
    if call.get("agg_star"):
        return {}
    params = [p.get("FunctionParameter") or {} for p in parameters or []]
    params = [p for p in params if p.get("mode", "FUNC_PARAM_DEFAULT") in ("FUNC_PARAM_IN", "FUNC_PARAM_DEFAULT",
                                                                             "FUNC_PARAM_INOUT", "FUNC_PARAM_VARIADIC")]
    given = call.get("args") or []
    positional = [a for a in given if "NamedArgExpr" not in a]
    named = {(a["NamedArgExpr"].get("name") or ""): a["NamedArgExpr"].get("arg") for a in given if "NamedArgExpr" in a}
    out: dict[str, str] = {}
    for i, p in enumerate(params):
        name = p.get("name")
        variadic = p.get("mode") == "FUNC_PARAM_VARIADIC"
        if variadic and not call.get("func_variadic") and i < len(positional):
            value = {"A_ArrayExpr": {"elements": positional[i:]}}  # (the arguments from here on make the array)
        else:  # (`variadic array[...]` passes the array itself)
            value = positional[i] if i < len(positional) else named.get(name or "", p.get("defexpr"))
        text = _names(value) if variadic or _type(p.get("argType")).endswith("[]") else _literal(value)
        if text is not None and _type(p.get("argType")).lower() in _BOOLEANS:
            text = _boolean(text)
        if text is None:
            continue
        out[f"${i + 1}"] = text
        if name:
            out[name.lower()] = text
    return out


def _names(node: Any) -> str | None:
    """An array of string constants as `(array['a', 'b'])` (`array[...]`, `'{a,b}'`, cast or not); None otherwise."""
    while isinstance(node, dict) and "TypeCast" in node:
        node = node["TypeCast"].get("arg")
    if isinstance(node, dict) and "A_ArrayExpr" in node:
        values = [_literal(e) for e in node["A_ArrayExpr"].get("elements") or []]
        texts = [v for v in values if v is not None and v.startswith(("'", "E'"))]
    else:
        text = const(node) if isinstance(node, dict) and "A_Const" in node else None
        items = array_literal(text) if isinstance(text, str) else None
        texts = [literal(v) for v in items or []]
        values = texts
    return f"(array[{', '.join(texts)}])" if texts and len(texts) == len(values) else None  # (`p[1]` stays SQL)


def _literal(node: Any) -> str | None:
    """A constant as SQL (under casts, which are kept off: the parameter's type is the body's business)."""
    while isinstance(node, dict) and "TypeCast" in node:
        node = node["TypeCast"].get("arg")
    body = node.get("A_Const") if isinstance(node, dict) else None
    if not isinstance(body, dict):
        return None
    if body.get("isnull"):
        return "null"
    value = const(node)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"({value})"
    return literal(value) if isinstance(value, str) else None


_TOKEN = re.compile(r"""\$[A-Za-z_]?[A-Za-z0-9_]*\$|--[^\n]*|/\*|[Ee]'|'|"|\$\d+|[A-Za-z_][A-Za-z0-9_$]*""")


def _bound(body: str, values: dict[str, str]) -> str:
    """The body with each bound parameter written as its value where PL/pgSQL reads it as the variable: an
    unquoted name (or $n) outside strings, quoted names and comments, not qualified (`x.p`), not a call (`p(`),
    a named argument (`p =>`), a %TYPE, an assignment's target or an object's name (`_NAMING`)."""
    # (a parameter the body assigns, `p := ...` or `... into p`, holds the argument only until then: left unbound)
    # (`p alias for $1` names the parameter: p holds its value, and the declaration stays as written; round 19 e03)
    for alias, number in re.findall(r"(?i)(?<![\w$])([A-Za-z_][\w$]*)\s+alias\s+for\s+(\$\d+)", body):
        if number in values:
            values.setdefault(alias.lower(), values[number])
    # (until then it holds the argument: text before the first assignment runs before it when no loop opens
    # there; round 19 e03b, `if p_table is not null then ... end if; for p_table in select ...`)
    until: dict[str, int] = {}
    for k in list(values):
        assigned = re.search(_ASSIGNED.format(re.escape(k)), body, re.I)
        if assigned is not None and re.search(r"(?i)\bloop\b", body[:assigned.start()]):
            del values[k]
        elif assigned is not None:
            until[k] = assigned.start()
    if not values:
        return body
    out, at = [], 0
    while True:
        m = _TOKEN.search(body, at)
        if m is None:
            break
        token, end = m.group(), m.end()
        if token.startswith("--"):
            pass
        elif token == "/*":
            close = body.find("*/", end)
            end = len(body) if close < 0 else close + 2
        elif token in ("'", "E'", "e'"):
            end = _quote_end(body, end, "'", token != "'")
        elif token == '"':
            end = _quote_end(body, end, '"', False)
        elif token.startswith("$") and token.endswith("$") and len(token) > 1 and not token[1:].isdigit():
            close = body.find(token, end)
            end = len(body) if close < 0 else close + len(token)
        elif token.lower() in values and m.start() < until.get(token.lower(), len(body)):
            before = body[:m.start()].rstrip()
            after = body[end:].lstrip()
            word = re.search(r"[A-Za-z_]+$", before)
            declared = re.match(r"(?i)alias\b", after) or re.search(r"(?i)\balias\s+for$", before)
            if not before.endswith(".") and not after.startswith((".", "(", "=>", "%", ":=")) \
                    and not (word and word.group().lower() in _NAMING) and not declared:
                out.append(body[at:m.start()] + values[token.lower()])
                at = end
                continue
        out.append(body[at:end])
        at = end
    out.append(body[at:])
    return "".join(out)


_ASSIGNED = (r"(?<![\w.$]){0}\s*:=|\bfor\s+{0}\s+in\b|(?:^|;|\bbegin|\bthen|\belse|\bloop)\s*{0}\s*=(?!=)"
             r"|\binto\s+(?:strict\s+)?(?:[\w$.]+\s*,\s*)*{0}(?![\w$])")

# Words after which a name is an object's, never a value PL/pgSQL substitutes (and in a utility statement it
# substitutes none): `alter table p_table ...` names a table called p_table.
_NAMING = frozenset(("table", "on", "into", "update", "from", "join", "column", "function", "procedure", "schema",
                     "index", "policy", "view", "type", "trigger", "sequence", "references", "extension", "role",
                     "only", "to", "constraint", "exists", "domain", "declare", "alias", "cursor"))


_BOOLEANS = ("bool", "boolean", "pg_catalog.bool", "pg_catalog.boolean")


def _boolean(text: str) -> str | None:
    """A constant given to a boolean parameter, as PostgreSQL's boolean input reads it (evasion round 19 fp01:
    `'on'`, `'yes'`, `'t'`, `'TRUE'`, any unique prefix of true/false/yes/no, `on`/`off`, `'1'`/`'0'`, trimmed and
    case-insensitive; an integer cast to boolean is true unless 0), so a CASE of it is decided; None when it is
    none of those (the call fails)."""
    if text in ("true", "false", "null"):
        return text
    if text.startswith("(") and text.endswith(")"):
        try:
            return "false" if float(text[1:-1]) == 0 else "true"
        except ValueError:
            return None
    if not (text.startswith("'") and text.endswith("'")):
        return None
    word = text[1:-1].replace("''", "'").strip().lower()
    for value, spellings in (("true", ("true", "yes")), ("false", ("false", "no"))):
        if word and any(s.startswith(word) for s in spellings):
            return value
    return {"on": "true", "off": "false", "of": "false", "1": "true", "0": "false"}.get(word)


def _quote_end(body: str, at: int, quote: str, escapes: bool) -> int:
    while at < len(body):
        c = body[at]
        if escapes and c == "\\":
            at += 2
            continue
        if c == quote:
            if body[at + 1:at + 2] == quote:
                at += 2
                continue
            return at + 1
        at += 1
    return at


def call_statement(r: Reader, n: dict, st: Stmt) -> None:
    """CALL p(...): the procedure's body runs (evasion round 17 e04)."""
    call = n.get("funccall") or {}
    replay(r, call.get("FuncCall", call), st, False)


HANDLERS["DoStmt"] = do_block
HANDLERS["CreateSeqStmt"] = HANDLERS["CompositeTypeStmt"] = other_relation
HANDLERS["CallStmt"] = call_statement
