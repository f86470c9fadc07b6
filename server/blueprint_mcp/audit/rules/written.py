"""What a definer's write puts in a role column that the client chose, and which tests are of that very value (BP087,
evasion round 16).

A test bounds a written role only where it tests the same value: `lower(trim(p_role))` tested and written is bounded
(fp01), a test of the raw `p_role` beside a write of `lower(trim(p_role))::member_role` is not ('OWNER' passes the
test and is written as owner: e02). A cast to the enum keeps the value, so expressions are compared without their
casts; whether `>`/`<` follow the enum's order is asked of the tested expression's type (`p_role::text > 'member'`
compares by collation, where 'admin' < 'member': e01). Fields of a FROM item built from an argument
(`jsonb_to_recordset(p_invites) x(email text, role member_role)`) are the client's values too (e09).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from ..tree import boolean_args, nodes, strings


class Written(NamedTuple):
    """One value the client chose in a written role: `node` (an argument, an argument-built row's field, `new.role`,
    or an expression of them), the declared type of each client value in it (by `key`), and the argument-built FROM
    item a field comes from."""
    node: Any
    types: dict[bytes, str | None]
    origin: dict | None = None

    @property
    def fields(self) -> list[str] | None:
        kind, body = _typed(plain(self.node))
        return strings(body.get("fields")) or None if kind == "ColumnRef" else None


def plain(node: Any) -> Any:
    """`node` without its casts and parse positions: `lower(trim(p_role))::public.member_role` and
    `lower(trim(p_role))` name one value (a cast to the enum only refuses what it cannot read)."""
    if isinstance(node, dict):
        if len(node) == 1 and isinstance(node.get("TypeCast"), dict):
            return plain(node["TypeCast"].get("arg"))
        return {k: plain(v) for k, v in node.items() if k != "location"}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def _typed(node: Any) -> tuple[str, dict]:
    """(type name, fields) of a one-key parse node; ("", {}) for anything else."""
    if isinstance(node, dict) and len(node) == 1:
        kind, body = next(iter(node.items()))
        if isinstance(body, dict):
            return kind, body
    return "", {}


def key(node: Any) -> bytes:
    return orjson.dumps(plain(node), option=orjson.OPT_SORT_KEYS)


def same(node: Any, src: Written) -> bool:
    return node is not None and key(node) == key(src.node)


def mentions(atom: Any, src: Written) -> bool:
    """`atom` reads one of the client's values `src` is made of."""
    leaves = set(src.types)
    return any(kind in ("ColumnRef", "ParamRef") and key({kind: body}) in leaves for kind, body in nodes(atom))


def enum_ordered(node: Any, src: Written, enum: str | None) -> bool:
    """`>`/`<` on `node` follow the enum's order: its outer cast, or else its declared type, is the enum. A cast to
    text (or a text argument) compares by collation: `p_role::text > 'member'` holds for 'owner' and 'viewer', not
    'admin' (evasion round 16 e01)."""
    name = _type_of(node, src.types)
    return bool(enum) and name is not None and _bare(name) == _bare(enum)


def _bare(type_name: str) -> str:
    return type_name.rsplit(".", 1)[-1].strip('"').lower()


def _type_of(node: Any, types: dict[bytes, str | None]) -> str | None:
    kind, body = _typed(node)
    if kind == "TypeCast":
        return ".".join(strings((body.get("typeName") or {}).get("names")))
    if key(node) in types:
        return types[key(node)]
    if kind == "CoalesceExpr":  # (the type of its first typed argument: `coalesce(p_role, 'member')`)
        return next((t for a in body.get("args") or [] for t in [_type_of(a, types)] if t), None)
    return None


def client_values(s: Any, w: Any, new: set[str], labels: list[str] | None = None,
                  enum: str | None = None) -> tuple[list[Written], Written | None]:
    """(each client value a definer's write puts in its column for a test to bound, the whole written expression
    where it is more than one of them; `new`: the fields of a trigger's NEW row clients write freely; `labels`,
    `enum`: the column's enum, its labels in order). Casts, COALESCE and NULLIF pass a value through, so their parts
    are bounded one by one; LEAST or GREATEST with a constant below the management roles caps them (`least(p_role,
    'member'::member_role)`: evasion round 17 fp04b); any other expression of a client value (`lower(trim(p_role))`,
    CASE) is bounded only by a test of itself."""
    reading = w.function._body
    params = {name: kind for name, kind in reading.params if name}
    rows = _argument_rows(s, reading, w, params)
    made = _variables_made(s, reading, params)
    types: dict[bytes, str | None] = {}
    origins: dict[bytes, dict] = {}
    for kind, body in nodes(w.value):
        ref = strings(body.get("fields")) if kind == "ColumnRef" else []
        if kind == "ParamRef":
            number = body.get("number", 0)
            types[key({kind: body})] = reading.params[number - 1][1] if 0 < number <= len(reading.params) else None
        elif ref and ref[0] in params:
            types[key({kind: body})] = params[ref[0]] if len(ref) == 1 else None  # (a record argument's field too)
        elif ref and ref[0] in made:
            types[key({kind: body})] = made[ref[0]] if len(ref) == 1 else None
        elif ref and "*" not in ref and not (len(ref) == 1 and ref[0] in reading.variables):
            for item, columns, alias in rows:
                if len(ref) == 2 and ref[0] == alias or len(ref) == 1 and (ref[0] in columns or len(rows) == 1 and
                                                                        not columns):
                    types[key({kind: body})] = columns.get(ref[-1])
                    origins[key({kind: body})] = item
                    break
    if w.source is not None:
        for kind, body in nodes(w.value):
            ref = strings(body.get("fields")) if kind == "ColumnRef" else []
            if len(ref) == 2 and ref[0].lower() == "new" and ref[1] in new:
                c = w.source.column(ref[1])
                types[key({kind: body})] = c.type if c is not None else None
    parts = _parts(w.value, types, labels, enum)
    values = [Written(p, {k: v for k, v in types.items() if k in _leaves(p)}, origins.get(key(p))) for p in parts]
    whole = Written(w.value, types) if len(parts) != 1 or not same(w.value, values[0]) else None
    return values, whole if types else None


def _variables_made(s: Any, reading: Any, params: dict[str, str]) -> dict[str, str | None]:
    """variable -> its type where known, for each variable only ever set to a value made of an argument (`v_role
    member_role := lower(trim(p_role))::member_role`, `r := jsonb_populate_record(null::invitations, p_invite)`): it
    holds the client's value, and only a test of it (or of what it holds, as written) bounds it."""
    from .common import into_select
    from .reach_rules import _argument_values
    out: dict[str, str | None] = {}
    for name in _argument_values(s, reading, {p: p for p in params}):
        sets = [at for at, names in reading.into if name in names]
        select = into_select(reading, sets[0]) if len(sets) == 1 and name not in params else None
        if select is None:
            continue
        targets = [(x.get("ResTarget") or {}).get("val") for x in select.get("targetList") or []]
        value = targets[0] if len(targets) == 1 and not select.get("fromClause") else None
        named = {key({k: b}): params.get(strings(b.get("fields"))[0]) for k, b in nodes(value) if k == "ColumnRef"}
        out[name] = _type_of(value, named) if value is not None else None
    _variables_remade(reading, params, out)
    return out


def _variables_remade(reading: Any, params: dict[str, str], made: dict[str, str | None]) -> None:
    """Add to `made` each variable set more than once, every time to a value made of arguments, variables of
    `made`, itself and constants, one of them at least of an argument or such a variable (`v_role text := p_role`
    and later `v_role := lower(trim(v_role))`: evasion round 17 e03b); its type where every value's known one
    agrees."""
    from .common import into_select
    sets: dict[str, list[Any]] = {}
    for at, names in reading.into:
        select = into_select(reading, at) if len(names) == 1 else None
        targets = [(x.get("ResTarget") or {}).get("val") for x in (select or {}).get("targetList") or []]
        for name in names:
            sets.setdefault(name, []).append(targets[0] if len(targets) == 1 and not select.get("fromClause")
                                             else None)
    grown = True
    while grown:
        grown = False
        for name, values in sets.items():
            if name in made or name in params or len(values) < 2 or any(v is None for v in values):
                continue
            refs = [[strings(b.get("fields")) for k, b in nodes(v) if k == "ColumnRef"] for v in values]
            if any(len(r) != 1 or r[0] not in params and r[0] not in made and r[0] != name for rs in refs for r in rs):
                continue
            if not any(r[0] in params or r[0] in made for rs in refs for r in rs):
                continue
            named = {key({k: b}): params.get(strings(b.get("fields"))[0], made.get(strings(b.get("fields"))[0]))
                     for v in values for k, b in nodes(v) if k == "ColumnRef"}
            known = {t for v in values for t in [_type_of(v, named)] if t}
            made[name] = known.pop() if len(known) == 1 else None
            grown = True


def _leaves(node: Any) -> set[bytes]:
    return {key({kind: body}) for kind, body in nodes(node) if kind in ("ColumnRef", "ParamRef")}


def _parts(node: Any, types: dict[bytes, str | None], labels: list[str] | None = None,
           enum: str | None = None) -> list[Any]:
    kind, body = _typed(node)
    if kind == "TypeCast":
        return _parts(body.get("arg"), types, labels, enum)
    if kind == "CoalesceExpr":
        return [p for a in body.get("args") or [] for p in _parts(a, types, labels, enum)]
    if kind == "A_Expr" and body.get("kind") == "AEXPR_NULLIF":
        return _parts(body.get("lexpr"), types, labels, enum)
    if kind == "MinMaxExpr" and _capped(body, types, labels, enum):
        return []
    if kind == "CaseExpr" and _leaves(node) & set(types):
        branches = _case_branches(body, types, labels, enum)
        if branches is not None:
            return branches
    return [node] if _leaves(node) & set(types) else []


def _case_branches(body: dict, types: dict[bytes, str | None], labels: list[str] | None,
                   enum: str | None) -> list[Any] | None:
    """A CASE's client values branch by branch (evasion round 18 fp03: `case when p_role > 'member' then 'member'
    else p_role end` caps the role like `least(p_role, 'member')`): a constant below the management roles adds none;
    a client value whose branch is taken only where its own tests (this WHEN holding, every earlier one failing)
    admit roles below them adds none either; any other client value is a part of its own, for the refusals before
    the write to bound. None (the whole CASE stands as one value) where a branch gives a constant the ranks do not
    place below admin, or the enum is not known."""
    from ...model.tenant_keys import ROLE_RANKS
    from .inviters import _admitting, _negated
    if not labels or not enum:
        return None
    arg = body.get("arg")
    conditions, results = [], []
    for when in body.get("args") or []:
        clause = (when or {}).get("CaseWhen") if isinstance(when, dict) else None
        if not isinstance(clause, dict):
            return None
        test = clause.get("expr")
        if arg is not None:  # `case p_role when 'owner' then ...`: each WHEN is `p_role = <value>`
            test = {"A_Expr": {"kind": "AEXPR_OP", "name": [{"String": {"sval": "="}}], "lexpr": arg, "rexpr": test}}
        conditions.append(test)
        results.append(clause.get("result"))
    results.append(body.get("defresult"))  # (no ELSE: NULL)
    parts: list[Any] = []
    for i, result in enumerate(results):
        if result is None or not _leaves(result) & set(types):
            value = _constant(result) if result is not None else None
            if result is not None and not (value in labels and ROLE_RANKS.get(value, 0) >= 2) and \
                    not (_typed(plain(result))[0] == "A_Const" and _typed(plain(result))[1].get("isnull")):
                return None
            continue
        src = Written(result, {k: v for k, v in types.items() if k in _leaves(result)})
        allowed = set(labels)
        atoms = [_negated(c) for c in conditions[:i]] + \
            (list(boolean_args(conditions[i], "AND_EXPR")) if i < len(conditions) else [])
        for atom in atoms:
            admitted = _admitting(atom, src, list(labels), labels, enum)
            if admitted is not None:
                allowed &= admitted
        if not all(ROLE_RANKS.get(v, 0) >= 2 for v in allowed):
            parts.extend(_parts(result, types, labels, enum))
    return parts


def _capped(body: dict, types: dict[bytes, str | None], labels: list[str] | None, enum: str | None) -> bool:
    """LEAST (GREATEST) of the enum, one argument a constant role: the result is at or below (above) it in the
    enum's order, whatever the others hold; capped where every such role is below admin. Only on the enum's type:
    on text LEAST compares by collation ('admin' < 'member')."""
    from ...model.tenant_keys import ROLE_RANKS
    args = body.get("args") or []
    if not labels or not enum or not any(_bare(_type_of(a, types) or "") == _bare(enum) for a in args):
        return False
    least = body.get("op") == "IS_LEAST"
    allowed = set(labels)
    for a in args:
        value = _constant(a)
        if value in labels:
            i = labels.index(value)
            allowed &= {v for j, v in enumerate(labels) if (j <= i if least else j >= i)}
    return allowed != set(labels) and all(ROLE_RANKS.get(v, 0) >= 2 for v in allowed)


def _constant(node: Any) -> Any:
    kind, body = _typed(plain(node))
    return ((body.get("sval") or {}).get("sval") if isinstance(body.get("sval"), dict) else None) \
        if kind == "A_Const" else None


Row = tuple[dict, dict, str]  # (FROM item, its columns -> their declared types, its alias)


def _argument_rows(s: Any, reading: Any, w: Any, params: dict[str, str]) -> list[Row]:
    """Each FROM item of the writing statement made of an argument (`jsonb_to_recordset(p_invites) as x(email text,
    role member_role)`, `unnest(p_roles) r`): every field of such a row is the client's (evasion round 16 e09)."""
    from .reach_rules import _argument_sources
    statement = w.statement
    select = (statement.get("selectStmt") or {}).get("SelectStmt") or {} if w.kind == "insert" else statement
    items = [i for i in select.get("fromClause") or [] if isinstance(i, dict)]
    made = _argument_sources(s, reading, "UpdateStmt", {"fromClause": items}, {p: p for p in params})
    out = []
    for item in items:
        kind, body = _typed(item)
        alias = (body.get("alias") or {}).get("aliasname")
        if alias not in made:
            continue
        columns = {(c.get("ColumnDef") or {}).get("colname"): ".".join(strings(
            ((c.get("ColumnDef") or {}).get("typeName") or {}).get("names"))) for c in body.get("coldeflist") or []}
        calls = [f for k, f in nodes(body.get("functions")) if k == "FuncCall"] if kind == "RangeFunction" else []
        if not columns and len(calls) == 1 and strings(calls[0].get("funcname"))[-1:] == ["unnest"]:
            arg = strings(((calls[0].get("args") or [{}])[0].get("ColumnRef") or {}).get("fields"))
            named = strings((body.get("alias") or {}).get("colnames")) or [alias]
            columns = {named[0]: (params.get(arg[0]) or "").removesuffix("[]") or None if len(arg) == 1 else None}
        out.append((item, columns, alias))
    return out


def same_rows(atom: Any, src: Written) -> list[Any]:
    """The tests `exists (select ... from <the FROM item src is a field of> as y where <tests>)` makes of each row,
    with y's fields named as src's row: where it holds for the rows written, it holds for each row whose field
    passes them (e09's fix: `if exists (... jsonb_to_recordset(p_invites) x(...) where x.role >= 'admin') and not
    <owner> then raise`). [atom] for any other test."""
    kind, body = _typed(atom)
    select = (body.get("subselect") or {}).get("SelectStmt") if kind == "SubLink" and \
        body.get("subLinkType") == "EXISTS_SUBLINK" else None
    items = (select or {}).get("fromClause") or []
    if src.origin is None or len(items) != 1 or not isinstance(items[0], dict) or select.get("whereClause") is None \
            or next(iter(items[0])) != next(iter(src.origin)):
        return [atom]
    mine, theirs = _typed(src.origin)[1], _typed(items[0])[1]
    if key({**mine, "alias": None}) != key({**theirs, "alias": None}) or not src.fields:
        return [atom]
    alias = (theirs.get("alias") or {}).get("aliasname")
    columns = {(c.get("ColumnDef") or {}).get("colname") for c in theirs.get("coldeflist") or []}
    return list(boolean_args(_renamed(select["whereClause"], alias, columns, src.fields[:-1]), "AND_EXPR"))


def _renamed(node: Any, alias: str | None, columns: set[str], prefix: list[str]) -> Any:
    if isinstance(node, list):
        return [_renamed(v, alias, columns, prefix) for v in node]
    if not isinstance(node, dict):
        return node
    ref = strings((node.get("ColumnRef") or {}).get("fields")) if len(node) == 1 and "ColumnRef" in node else []
    if len(ref) == 2 and ref[0] == alias or len(ref) == 1 and ref[0] in columns:
        return {"ColumnRef": {"fields": [{"String": {"sval": f}} for f in prefix + ref[-1:]]}}
    return {k: _renamed(v, alias, columns, prefix) for k, v in node.items()}
