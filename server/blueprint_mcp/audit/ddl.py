"""Statement handlers, part 1: tables, columns, constraints, indexes, views. `apply` dispatches.

Each handler is `handler(reader, fields, stmt)` and changes `reader.schema` the way PostgreSQL
would change its catalogue. Statements with no effect on what the rules check (most DML, SET of other
settings...) have no handler and are skipped; DO blocks and transaction control are handled in
`ddl_blocks` and `ddl_platform`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson

from ..model.schema import Column, Constraint, ForeignKey, Index, Privilege, RewriteRule, Table, View
from . import ddl_objects as obj
from . import events
from .body import WRITES
from .callers import BodyReading
from .columns import query_columns
from .deparse import expr_text, type_name
from .made import Maker
from .split import paren_group, top_level_words
from .tree import canonical, column_name, dotted, function_name, nodes, rebase, relations, strings

if TYPE_CHECKING:
    from .parse import Reader, Stmt

_column, _constraint, _foreign_key, _index, _table = (Maker(c) for c in (Column, Constraint, ForeignKey, Index, Table))
FK_ACTIONS = {"a": "no action", "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}
_AS = re.compile(r"\bas\b", re.IGNORECASE)


# --- columns and constraints ----------------------------------------------------------------------

def expression(st: Stmt, node: dict, tree: Any) -> tuple[str | None, Any]:
    """(source text, tree rebased onto that text) of the parenthesised expression a node introduces."""
    if tree is None:
        return None, None
    group = paren_group(st.text, st.char(node.get("location", 0)))
    if group is None:
        return None, tree
    rebase(tree, st.byte(group[0]))
    return st.text[group[0]:group[1]], tree


def constraint_name(table: str, columns: list[str], suffix: str) -> str:
    """PostgreSQL's default name: table_col1_col2_suffix."""
    return "_".join([table, *columns, suffix])


def add_constraint(r: Reader, t: Table, node: dict, st: Stmt, column: str | None = None) -> None:
    """A PRIMARY KEY, UNIQUE, CHECK or FOREIGN KEY, declared on a column or on the table."""
    kind = node.get("contype")
    cols = [column] if column else strings(node.get("keys"))
    loc = st.loc(node.get("location"))
    if kind in ("CONSTR_PRIMARY", "CONSTR_UNIQUE"):
        label = "primary key" if kind == "CONSTR_PRIMARY" else "unique"
        # ADD ... USING INDEX: the unique index becomes the key's (and takes its name).
        used = next((i for i in t.indexes if i.name == node.get("indexname")), None)
        if used is not None:
            t.indexes.remove(used)
            cols = used.columns
        name = node.get("conname") or (f"{t.name}_pkey" if label == "primary key"
                                       else constraint_name(t.name, cols, "key"))
        t.constraints.append(_constraint(name=name, kind=label, columns=list(cols), location=loc,
                                        nulls_not_distinct=bool(node.get("nulls_not_distinct")),
                                        shape=used.shape if used is not None else
                                        key_shape(cols, bool(node.get("nulls_not_distinct")))))
        if label == "primary key":
            for c in t.columns:
                if c.name in cols:
                    c.nullable = False
    elif kind == "CONSTR_CHECK":
        text, tree = expression(st, node, node.get("raw_expr"))
        name = node.get("conname") or constraint_name(t.name, [column] if column else [], "check")
        t.constraints.append(_constraint(name=name, kind="check", columns=[column] if column else [],
                                        expression=text, tree=tree, location=loc))
    elif kind == "CONSTR_EXCLUSION":
        elems = [(pair.get("List", {}).get("items") or [{}])[0].get("IndexElem", {})
                 for pair in node.get("exclusions") or []]
        group = paren_group(st.text, st.char(node.get("location", 0)))
        text = f"using {node.get('access_method', 'btree')} ({st.text[group[0]:group[1]]})" if group else None
        name = node.get("conname") or constraint_name(t.name, [_element_name(e) for e in elems], "excl")
        columns = [c for e in elems for c in _element_columns(e)]
        t.constraints.append(Constraint(name=name, kind="exclude", columns=columns, expression=text, location=loc))
    elif kind == "CONSTR_FOREIGN":
        fk_cols = [column] if column else strings(node.get("fk_attrs"))
        ref_schema, ref_table = r.name(node.get("pktable"))
        ref_cols = strings(node.get("pk_attrs")) or primary_key_of(r, ref_schema, ref_table)
        t.foreign_keys.append(_foreign_key(
            name=node.get("conname") or constraint_name(t.name, fk_cols, "fkey"), columns=fk_cols,
            ref_schema=ref_schema, ref_table=ref_table, ref_columns=list(ref_cols),
            on_delete=FK_ACTIONS.get(node.get("fk_del_action", "a"), "no action"),
            set_null_columns=strings(node.get("fk_del_set_cols")), location=loc))


def _element_columns(elem: dict) -> list[str]:
    """Columns an index element reads: its column, or those of its expression (daterange(s, e): s, e)."""
    if elem.get("name"):
        return [elem["name"]]
    refs = sorted((body.get("location", 0), column_name(body)) for kind, body in nodes(elem.get("expr"))
                  if kind == "ColumnRef")
    return [name for _, name in refs]


def _element_name(elem: dict) -> str:
    """PostgreSQL's name for an index element in a default constraint name: the column, a function's name, or expr."""
    expr = elem.get("expr") or {}
    return elem.get("name") or (function_name(expr["FuncCall"]).split(".")[-1] if "FuncCall" in expr else "expr")


def primary_key_of(r: Reader, schema: str, name: str) -> list[str]:
    """The referenced columns when a foreign key names only the table (its primary key; auth.users: id)."""
    t = r.table(schema, name)
    pk = next((c.columns for c in t.constraints if c.kind == "primary key"), None) if t else None
    return pk or ["id"]


def add_column(r: Reader, t: Table, node: dict, st: Stmt) -> None:
    name = node.get("colname", "")
    inherited = None if node.get("typeName") else t.column(name)  # a partition's options on a root column
    col = _column(name=name, type=inherited.type if inherited else type_name(node.get("typeName")),
                 nullable=inherited.nullable if inherited else True, default=inherited.default if inherited else None,
                 location=st.loc(node.get("location")))
    t.columns = [c for c in t.columns if c.name != col.name] + [col]
    for wrapped in node.get("constraints") or []:
        c = wrapped.get("Constraint", {})
        kind = c.get("contype")
        if kind in ("CONSTR_NOTNULL", "CONSTR_IDENTITY"):
            col.nullable = False
        elif kind == "CONSTR_NULL":
            col.nullable = True
        elif kind == "CONSTR_DEFAULT":
            col.default = expr_text(c.get("raw_expr"))
        elif kind == "CONSTR_GENERATED":
            col.default = f"generated always as ({expr_text(c.get('raw_expr'))})"
        else:
            add_constraint(r, t, c, st, column=col.name)


def create_table(r: Reader, n: dict, st: Stmt) -> None:
    rv = n.get("relation") or {}
    if rv.get("relpersistence") == "t":
        return  # a temporary table is not part of the schema
    schema, name = r.name(rv)
    existing = r.table(schema, name)
    if existing is not None and not existing.external and n.get("if_not_exists"):
        return
    t = _table(schema_name=schema, name=name, location=st.loc(rv.get("location")), partitioned="partspec" in n,
               partition_key=[(p.get("PartitionElem") or {}).get("name") or "" for p in
                              (n.get("partspec") or {}).get("partParams") or []])
    if existing is not None:
        # A stand-in created by an earlier policy or ALTER keeps what was done to it.
        t.policies, t.rls_enabled, t.rls_forced, t.grants = (existing.policies, existing.rls_enabled,
                                                              existing.rls_forced, existing.grants)
        r.drop_table(schema, name)
    if n.get("partbound") is not None:
        _inherit_from_root(r, t, n)
    else:  # INHERITS: the parents' columns come first, with their NOT NULL and CHECK constraints (no keys)
        t.inherits = [".".join(r.name(x.get("RangeVar"))) for x in n.get("inhRelations") or []]
        for parent in (r.table(*r.name(x.get("RangeVar"))) for x in n.get("inhRelations") or []):
            if parent is not None:
                t.columns += [c.model_copy(update={"location": st.loc()}) for c in parent.columns
                              if t.column(c.name) is None]
                t.constraints += [c.model_copy() for c in parent.constraints if c.kind == "check"]
    for element in n.get("tableElts") or []:
        kind, body = next(iter(element.items()))
        if kind == "ColumnDef":
            before = t.column(body.get("colname", ""))
            position = t.columns.index(before) if before is not None else None
            add_column(r, t, body, st)
            if position is not None and body.get("typeName"):
                # Re-declaring an inherited column merges the two where the parent put it: NOT NULL if either
                # says so, the child's default if it gives one.
                col = t.columns.pop()
                col.nullable = col.nullable and before.nullable
                col.default = col.default if col.default is not None else before.default
                t.columns.insert(position, col)
        elif kind == "Constraint":
            add_constraint(r, t, body, st)
        elif kind == "TableLikeClause":
            source = r.table(*r.name(body.get("relation")))
            if source is not None:
                _copy_like(t, source, body.get("options", 0), st)
    _merge_repeated_keys(t)
    r.add_table(t)
    events.created(r, t, "CREATE TABLE")


def _merge_repeated_keys(t: Table) -> None:
    """PostgreSQL builds one index for the keys a CREATE TABLE repeats (`id int primary key unique`), the
    primary key if one of them is."""
    kept: dict[str, int] = {}  # shape -> position in out
    out: list[Constraint] = []
    for c in t.constraints:
        at = kept.get(c.shape or "") if c.kind in ("primary key", "unique") else None
        if at is None:
            if c.kind in ("primary key", "unique") and c.shape:
                kept[c.shape] = len(out)
            out.append(c)
        elif c.kind == "primary key":
            out[at] = c
    t.constraints = out


# CREATE TABLE ... (LIKE source INCLUDING ...): PostgreSQL's CREATE_TABLE_LIKE_* option bits.
_LIKE_CONSTRAINTS, _LIKE_DEFAULTS, _LIKE_GENERATED, _LIKE_INDEXES = 1 << 2, 1 << 3, 1 << 4, 1 << 6


def _copy_like(t: Table, source: Table, options: int, st: Stmt) -> None:
    """Columns with their NOT NULL always; defaults, CHECK constraints, and keys and indexes (renamed after
    the new table) only as INCLUDING asks. Foreign keys are never copied."""
    for c in source.columns:
        generated = (c.default or "").startswith("generated always")
        keep = options & (_LIKE_GENERATED if generated else _LIKE_DEFAULTS)
        t.columns.append(c.model_copy(update={"location": st.loc(), **({} if keep else {"default": None})}))
    for c in source.constraints:
        if c.kind == "check" and options & _LIKE_CONSTRAINTS:
            t.constraints.append(c.model_copy(update={"location": st.loc()}))
        elif c.kind != "check" and options & _LIKE_INDEXES:
            suffix = {"primary key": "pkey", "unique": "key", "exclude": "excl"}[c.kind]
            name = f"{t.name}_pkey" if c.kind == "primary key" else constraint_name(t.name, c.columns, suffix)
            t.constraints.append(c.model_copy(update={"name": name, "location": st.loc()}))
    if options & _LIKE_INDEXES:
        t.indexes += [i.model_copy(update={"location": st.loc(), "name": constraint_name(
            t.name, [c for c in i.columns if c.isidentifier()], "idx")}) for i in source.indexes]


def _inherit_from_root(r: Reader, t: Table, n: dict) -> None:
    """A partition (PARTITION OF) gets its root's columns, then its keys and indexes (`attach_partition`)."""
    names = [r.name(x.get("RangeVar")) for x in n.get("inhRelations") or []]
    t.partition_of, t.partition_bound = ".".join(names[0]) if names else None, n.get("partbound")
    root = r.table(*names[0]) if names else None
    if root is not None:
        t.columns = [c.model_copy() for c in root.columns]
        attach_partition(root, t)


def attach_partition(root: Table, t: Table) -> None:
    """Keys, checks, foreign keys and indexes of the root that the partition lacks, as PostgreSQL clones
    them when it attaches a partition (later changes to the root are not followed), and the root itself."""
    def shape(x) -> tuple:
        return getattr(x, "kind", None), tuple(x.columns), getattr(x, "where", None)

    have = {shape(c) for c in t.constraints}
    for c in root.constraints:
        if shape(c) not in have:
            t.constraints.append(c.model_copy(update={"name": f"{t.name}_pkey" if c.kind == "primary key" else c.name}))
    have_fks = {(tuple(fk.columns), fk.ref_schema, fk.ref_table) for fk in t.foreign_keys}
    t.foreign_keys += [fk.model_copy() for fk in root.foreign_keys
                       if (tuple(fk.columns), fk.ref_schema, fk.ref_table) not in have_fks]
    have = {shape(i) for i in t.indexes}
    t.indexes += [i.model_copy() for i in root.indexes if shape(i) not in have]
    t.partition_of = root.qualified


def create_table_as(r: Reader, n: dict, st: Stmt) -> None:
    into = n.get("into") or {}
    rv = into.get("rel") or {}
    schema, name = r.name(rv)
    if n.get("objtype") == "OBJECT_MATVIEW":
        reads = sorted({".".join(r.name(x)) for x in relations(n.get("query"))})
        r.add_view(View(schema_name=schema, name=name, materialized=True, query=_query_text(st, rv),
                        location=st.loc(rv.get("location")), reads=reads))
    else:
        _table_from_query(r, rv, st, (n.get("query") or {}).get("SelectStmt") or {}, strings(into.get("colNames")),
                          "CREATE TABLE AS")


def select_into(r: Reader, n: dict, st: Stmt) -> None:
    """`select ... into public.copy from ...` creates a table exactly as CREATE TABLE AS does (RLS off,
    no policies); in a UNION the INTO sits on the leftmost SELECT."""
    while n.get("intoClause") is None and n.get("op", "SETOP_NONE") != "SETOP_NONE":
        n = n.get("larg") or {}
    into = n.get("intoClause")
    if into is not None:
        _table_from_query(r, into.get("rel") or {}, st, n, strings(into.get("colNames")), "SELECT INTO")


def _table_from_query(r: Reader, rv: dict, st: Stmt, select: dict, names: list[str], tag: str) -> None:
    """A table whose columns come from a query, named as PostgreSQL names them (a temporary one is not part
    of the schema; an existing one makes the statement fail, so it stays as it was)."""
    schema, name = r.name(rv)
    if rv.get("relpersistence") != "t" and r.table(schema, name) is None:
        def lookup(source: dict) -> list[Column] | None:
            t = r.table(*r.name(source))
            return t.columns if t is not None else None

        t = Table(schema_name=schema, name=name, location=st.loc(rv.get("location")),
                  columns=query_columns(select, lookup, names) or [])
        r.add_table(t)
        events.created(r, t, tag)


def _query_text(st: Stmt, rv: dict) -> str:
    m = _AS.search(st.text, st.char(rv.get("location", 0)))
    return st.text[m.end():].strip() if m else ""


def create_view(r: Reader, n: dict, st: Stmt) -> None:
    rv = n.get("view") or {}
    schema, name = r.name(rv)
    options = {d.get("DefElem", {}).get("defname"): d.get("DefElem", {}).get("arg") for d in n.get("options") or []}
    v = View(
        schema_name=schema, name=name, query=_query_text(st, rv), location=st.loc(rv.get("location")),
        security_invoker="security_invoker" in options and obj.truthy(options["security_invoker"]),
        security_barrier="security_barrier" in options and obj.truthy(options["security_barrier"]),
        reads=sorted({".".join(r.name(x)) for x in relations(n.get("query"))}),
        calls=sorted({function_name(body) for kind, body in nodes(n.get("query")) if kind == "FuncCall"}),
        column_names=strings(n.get("aliases")),
    )
    # Its query read as a helper's body is (whom each membership read answers for), where a rule asks.
    v._body = BodyReading(trees=(n.get("query"),), name=name, params=(), variables=frozenset(), column_first=True,
                          default_schema=r.creation_schema)
    r.add_view(v)


def _key(elem: dict) -> list:
    """An index key as PostgreSQL compares it: column or expression, operator class, collation, and order with
    NULLS placement made explicit (DESC puts nulls first unless told otherwise)."""
    desc = elem.get("ordering") == "SORTBY_DESC"
    nulls = {"SORTBY_NULLS_FIRST": True, "SORTBY_NULLS_LAST": False}.get(elem.get("nulls_ordering", ""), desc)
    expr = elem.get("expr")
    plain = strings((expr or {}).get("ColumnRef", {}).get("fields"))  # `((x))` is the column x
    return [elem.get("name") or (plain[0] if len(plain) == 1 else canonical(expr)), dotted(elem.get("opclass")),
            dotted(elem.get("collation")), desc, nulls]


def index_shape(method: str, keys: list[list], include: list[str], nulls_not_distinct: bool, where: Any = None) -> str:
    return orjson.dumps([method, keys, include, nulls_not_distinct, canonical(where)]).decode()


def key_shape(columns: list[str], nulls_not_distinct: bool = False) -> str:
    """The index behind a primary key or unique constraint: btree, default operator classes and order."""
    return index_shape("btree", [[c, "", "", False, False] for c in columns], [], nulls_not_distinct)


def create_index(r: Reader, n: dict, st: Stmt) -> None:
    schema, table = r.name(n.get("relation"))
    target = r.table(schema, table) or r.view(schema, table)
    if target is None:
        return
    columns = [p["IndexElem"].get("name") or expr_text(p["IndexElem"].get("expr")) for p in n.get("indexParams") or []]
    where = next((st.text[at + len("where"):].strip() for word, at in top_level_words(st.text) if word == "where"),
                 None) if n.get("whereClause") else None
    name = n.get("idxname") or constraint_name(table, [c for c in columns if c.isidentifier()], "idx")
    if n.get("if_not_exists") and any(i.name == name for i in target.indexes):
        return
    shape = index_shape(n.get("accessMethod", "btree"), [_key(p["IndexElem"]) for p in n.get("indexParams") or []],
                        [p["IndexElem"].get("name", "") for p in n.get("indexIncludingParams") or []],
                        bool(n.get("nulls_not_distinct")), n.get("whereClause"))
    target.indexes.append(_index(name=name, columns=columns, unique=bool(n.get("unique")), where=where,
                                location=st.loc(), shape=shape))


def _drop_column(t: Table, name: str) -> None:
    """PostgreSQL drops the indexes and constraints that use a dropped column along with it."""
    t.columns = [c for c in t.columns if c.name != name]
    t.indexes = [i for i in t.indexes if name not in i.columns]
    t.constraints = [c for c in t.constraints if name not in c.columns]
    t.foreign_keys = [f for f in t.foreign_keys if name not in f.columns]
    # Its column grants go with it; a privilege left without columns is gone (it never meant the table).
    t.grants = {role: [q for p in ps for q in ([p] if name not in p.columns else [
        Privilege(privilege=p.privilege, columns=[c for c in p.columns if c != name])] if len(p.columns) > 1 else [])]
        for role, ps in t.grants.items()}


_TRIGGER_STATES = {"AT_EnableTrig": "origin", "AT_EnableAlwaysTrig": "always", "AT_EnableReplicaTrig": "replica",
                   "AT_DisableTrig": "disabled", "AT_EnableTrigAll": "origin", "AT_DisableTrigAll": "disabled",
                   "AT_EnableTrigUser": "origin", "AT_DisableTrigUser": "disabled"}


def _alter_table_cmd(r: Reader, t: Table, cmd: dict, st: Stmt) -> None:
    kind, name, definition = cmd.get("subtype"), cmd.get("name", ""), cmd.get("def")
    col = t.column(name) if name else None
    if kind == "AT_AttachPartition" and definition:
        child = r.table(*r.name((definition.get("PartitionCmd") or {}).get("name")))
        if child is not None:
            attach_partition(t, child)
            child.partition_bound = (definition.get("PartitionCmd") or {}).get("bound")
    elif kind == "AT_DetachPartition" and definition:
        child = r.table(*r.name((definition.get("PartitionCmd") or {}).get("name")))
        if child is not None and child.partition_of == t.qualified:
            child.partition_of = child.partition_bound = None
    elif kind in ("AT_AddInherit", "AT_DropInherit") and definition:
        parent = ".".join(r.name(definition.get("RangeVar")))
        t.inherits = [x for x in t.inherits if x != parent] + ([parent] if kind == "AT_AddInherit" else [])
    elif kind == "AT_AddColumn" and definition:
        if not (cmd.get("missing_ok") and t.column(definition["ColumnDef"].get("colname", ""))):
            add_column(r, t, definition["ColumnDef"], st)
    elif kind == "AT_DropColumn":
        _drop_column(t, name)
    elif kind == "AT_AlterColumnType" and col and definition:
        col.type = type_name(definition["ColumnDef"].get("typeName"))
    elif kind in ("AT_SetNotNull", "AT_DropNotNull") and col:
        col.nullable = kind == "AT_DropNotNull"
    elif kind == "AT_ColumnDefault" and col:
        col.default = expr_text(definition) if definition else None
    elif kind == "AT_DropExpression" and col:
        col.default = None  # (a plain column from now on, which clients may write)
    elif kind == "AT_SetExpression" and col and definition:
        col.default = f"generated always as ({expr_text(definition)})"
    elif kind == "AT_AddConstraint" and definition:
        add_constraint(r, t, definition["Constraint"], st)
    elif kind == "AT_DropConstraint":
        t.constraints = [c for c in t.constraints if c.name != name]
        t.foreign_keys = [f for f in t.foreign_keys if f.name != name]
    elif kind in ("AT_EnableRowSecurity", "AT_DisableRowSecurity"):
        t.rls_enabled = kind == "AT_EnableRowSecurity"
    elif kind in ("AT_ForceRowSecurity", "AT_NoForceRowSecurity"):
        t.rls_forced = kind == "AT_ForceRowSecurity"
    elif kind in _TRIGGER_STATES:
        state = _TRIGGER_STATES[kind]
        for trg in t.triggers:  # USER and ALL: every trigger this model holds (none is a constraint's)
            if trg.name == name or kind.endswith(("TrigUser", "TrigAll")):
                trg.enabled = state
    elif kind == "AT_ChangeOwner":
        spec = cmd.get("newowner") or {}
        # CURRENT_USER, SESSION_USER, CURRENT_ROLE: the migration's own role, as a table it creates.
        t.owner = spec.get("rolename") if spec.get("roletype") == "ROLESPEC_CSTRING" else None


def alter_table(r: Reader, n: dict, st: Stmt) -> None:
    schema, name = r.name(n.get("relation"))
    cmds = [c.get("AlterTableCmd", {}) for c in n.get("cmds") or []]
    # ALTER TABLE also takes a view's options (PostgreSQL checks the relation, not the keyword).
    if n.get("objtype") in ("OBJECT_VIEW", "OBJECT_MATVIEW") or \
            (n.get("objtype") == "OBJECT_TABLE" and r.table(schema, name) is None and r.view(schema, name)):
        v = r.view(schema, name)
        for cmd in cmds:
            if v is not None and cmd.get("subtype") in ("AT_SetRelOptions", "AT_ResetRelOptions"):
                for d in (cmd.get("def") or {}).get("List", {}).get("items", []):
                    option = d.get("DefElem", {}).get("defname")
                    if option in ("security_invoker", "security_barrier"):
                        setattr(v, option, cmd["subtype"] == "AT_SetRelOptions" and obj.truthy(d["DefElem"].get("arg")))
        return
    if n.get("objtype") != "OBJECT_TABLE":
        return
    t = r.table_or_external(schema, name, st) if any("RowSecurity" in c.get("subtype", "") for c in cmds) \
        else r.table(schema, name)
    for cmd in cmds if t is not None else []:
        _alter_table_cmd(r, t, cmd, st)


def create_rule(r: Reader, n: dict, st: Stmt) -> None:
    """CREATE [OR REPLACE] RULE on a table or view: the tables its actions write (they run as its owner)."""
    t = r.table(*r.name(n.get("relation"))) or r.view(*r.name(n.get("relation")))
    if t is None or n.get("rulename") == "_RETURN":
        return
    writes = []
    for action in n.get("actions") or []:
        kind, body = next(iter(action.items())) if isinstance(action, dict) and len(action) == 1 else ("", {})
        if kind in WRITES and isinstance(body.get("relation"), dict):
            writes.append(".".join(r.name(body["relation"])))
    name = n.get("rulename", "")
    t.rewrite_rules = [x for x in t.rewrite_rules if x.name != name] + [RewriteRule(
        name=name, event=(n.get("event") or "").removeprefix("CMD_").lower(), instead=bool(n.get("instead")),
        writes=writes, location=st.loc())]


HANDLERS = {
    "CreateStmt": create_table,
    "RuleStmt": create_rule,
    "CreateTableAsStmt": create_table_as,
    "ViewStmt": create_view,
    "IndexStmt": create_index,
    "AlterTableStmt": alter_table,
    "CreatePolicyStmt": obj.create_policy,
    "AlterPolicyStmt": obj.alter_policy,
    "CreateFunctionStmt": obj.create_function,
    "AlterFunctionStmt": obj.alter_function,
    "CreateTrigStmt": obj.create_trigger,
    "GrantStmt": obj.grant,
    "CommentStmt": obj.comment,
    "RenameStmt": obj.rename,
    "AlterObjectSchemaStmt": obj.set_schema,
    "DropStmt": obj.drop,
    "CreateEnumStmt": obj.create_enum,
    "CreateDomainStmt": obj.create_domain,
    "AlterDomainStmt": obj.alter_domain,
    "AlterEnumStmt": obj.alter_enum,
    "CreateSchemaStmt": obj.create_schema,
    "CreatePublicationStmt": obj.create_publication,
    "AlterPublicationStmt": obj.alter_publication,
    "VariableSetStmt": obj.set_variable,
    "AlterDatabaseSetStmt": obj.set_database_option,
    "AlterRoleSetStmt": obj.set_database_option,
    "CreateEventTrigStmt": events.create_event_trigger,
    "AlterEventTrigStmt": events.alter_event_trigger,
}


def apply(r: Reader, node: dict, st: Stmt) -> None:
    """Apply one parsed statement; a shape the handler does not expect becomes a Problem, never a crash."""
    if len(node) != 1:
        return
    kind, body = next(iter(node.items()))
    handler = HANDLERS.get(kind)
    if handler is None:
        return
    try:
        handler(r, body, st)
    except (KeyError, TypeError, IndexError, AttributeError, ValueError) as exc:
        r.problem(f"{kind} could not be interpreted ({type(exc).__name__}: {exc}); the rest is still audited",
                  st.loc())
