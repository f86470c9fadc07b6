"""Rules over tables whose rows another table's queries return: partitions and inheritance children.

PostgreSQL applies the policies of the table a query names, and no other: rows of a partition (or of an
inheritance child) read or written through its parent are checked against the parent's policies alone.
"""

from __future__ import annotations

from typing import Any

from ...model.schema import Policy, Schema, Table
from ..findings import Level
from ..fold import fold, fold_condition
from ..platform import API_ROLES
from ..registry import rule
from ..tree import Node, canonical, strings
from .common import client_policies, client_write_columns

# Each command's clauses, as PostgreSQL picks them for a policy (WITH CHECK missing: USING stands in).
_CLAUSES = {"select": ("using",), "insert": ("check",), "update": ("using", "check"), "delete": ("using",)}
_TRUE, _FALSE, _NULL = {"A_Const": {"boolval": {"boolval": True}}}, {"A_Const": {"boolval": {}}}, \
    {"A_Const": {"isnull": True}}
_MOST_COMBINATIONS = 16  # of partition key values a clause is read under, before it is read as written

Pins = dict[str, Any]  # column -> the A_Const it holds in every row of the partition
# PostgreSQL's own types: a string literal cast to one may change what it compares with. Any other type is the
# SQL's (an enum, a domain), which an untyped literal becomes where that type is wanted.
_BUILTIN_TYPES = frozenset((
    "text", "varchar", "bpchar", "char", "name", "int2", "int4", "int8", "smallint", "integer", "int", "bigint",
    "numeric", "decimal", "float4", "float8", "real", "bool", "boolean", "date", "time", "timetz", "timestamp",
    "timestamptz", "interval", "uuid", "json", "jsonb", "bytea", "regclass", "regrole", "regproc", "oid", "inet",
    "cidr", "money"))


def _truth(tree: Any) -> bool | None:
    """True or False when the constant folding decides whether the condition holds (NULL does not), else None."""
    return fold_condition({"BooleanTest": {"arg": tree, "booltesttype": "IS_TRUE"}})


def _specialised(tree: Any, own: Table, pins: Pins) -> Any:
    """The clause as it reads for the partition's rows: its key columns replaced by the value the partition holds
    them to, the CASE branches and AND/OR terms that value settles dropped; columns qualified by the policy's own table
    unqualified, and casts of string literals to the SQL's types removed (`'admin'::member_role` is what the
    function's parameter makes of `'admin'`; any type PostgreSQL does not define, as a snippet may use one it does
    not declare). Two policies that read the same after this admit the same rows."""
    mine = ([own.name], [own.schema_name, own.name])

    def column(body: Node, outer: bool) -> Any:
        fields = body.get("fields") or []
        names = strings(fields)
        if len(names) != len(fields):  # t.*
            return None
        if names[:-1] in mine or (outer and len(names) == 1):
            return pins.get(names[-1]) or {"ColumnRef": {**body, "fields": fields[-1:]}}
        return None

    def simplified(kind: str, body: Node) -> Any:
        if kind == "TypeCast" and "sval" in ((body.get("arg") or {}).get("A_Const") or {}):
            type_name = body.get("typeName") or {}
            names = strings(type_name.get("names"))
            return body["arg"] if names and names[-1] not in _BUILTIN_TYPES and not type_name.get("arrayBounds") \
                else None
        if kind == "CaseExpr":
            for when in (w.get("CaseWhen") or {} for w in body.get("args") or []):
                test = when.get("expr") if body.get("arg") is None else {"A_Expr": {
                    "kind": "AEXPR_OP", "name": [{"String": {"sval": "="}}], "lexpr": body["arg"],
                    "rexpr": when.get("expr")}}
                taken = _truth(test)
                if taken is None:
                    return None
                if taken:
                    return when.get("result")
            return body.get("defresult") or _NULL
        if kind == "BoolExpr" and body.get("boolop") in ("AND_EXPR", "OR_EXPR"):
            deciding = body["boolop"] == "OR_EXPR"  # the value one term decides the whole by: true for OR
            values = [(a, fold_condition(a)) for a in body.get("args") or []]
            if any(v is deciding for _, v in values):
                return _TRUE if deciding else _FALSE
            rest = [a for a, v in values if v is not (not deciding)]
            return (_FALSE if deciding else _TRUE) if not rest else rest[0] if len(rest) == 1 else \
                {"BoolExpr": {**body, "args": rest}}
        if kind == "A_Expr" and body.get("kind") == "AEXPR_IN":
            value, items = fold(body.get("lexpr")), ((body.get("rexpr") or {}).get("List") or {}).get("items") or []
            listed = [fold(i) for i in items]
            if value is None or None in listed or not listed:
                return None
            return _TRUE if (value in listed) == (strings(body.get("name")) == ["="]) else _FALSE
        return None

    def walk(value: Any, outer: bool) -> Any:
        if isinstance(value, list):
            return [walk(v, outer) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (kind, body), = value.items()
            if kind == "ColumnRef" and isinstance(body, dict):
                return column(body, outer) or value
            if kind == "SelectStmt" and isinstance(body, dict) and body.get("fromClause"):
                outer = False  # a bare name there may be a column of its own tables
            new = {kind: walk(body, outer)}
            if isinstance(new[kind], dict):
                return simplified(kind, new[kind]) or new
            return new
        return {k: walk(v, outer) for k, v in value.items()}

    return walk(tree, True)


def _clause(p: Policy, which: str, own: Table, pins: Pins) -> str | None:
    """The clause as `_specialised` reads it, as its parse tree without locations, or its text where the parser kept
    no tree; None when it holds for no row of the partition."""
    tree, text = (p.check_tree, p.check) if which == "check" and p.check is not None else (p.using_tree, p.using)
    if tree is None:
        return text
    tree = _specialised(tree, own, pins)
    return None if _truth(tree) is False else canonical(tree)


def _roles(p: Policy) -> tuple[str, ...]:
    """The API roles a policy applies to: both for PUBLIC (or no TO)."""
    return API_ROLES if not p.roles or "public" in p.roles else tuple(r for r in API_ROLES if r in p.roles)


def _admits(t: Table, command: str, pins: Pins) -> dict[str, tuple[set, set]]:
    """role -> (its permissive clauses, its restrictive clauses) for `command` on the table's rows that hold `pins`;
    a permissive policy that admits none of them is left out, a restrictive one that admits none leaves no clause."""
    out: dict[str, tuple[set, set]] = {role: (set(), set()) for role in API_ROLES}
    shut: set[str] = set()
    for p in client_policies(t, command):
        key = tuple(_clause(p, which, t, pins) for which in _CLAUSES[command])
        if all(k is None for k in key):
            if not p.permissive:
                shut.update(_roles(p))
            continue
        for role in _roles(p):
            out[role][0 if p.permissive else 1].add(key)
    for role in shut:
        out[role][0].clear()
    return out


def _granted(s: Schema, t: Table, command: str, role: str) -> bool:
    """Whether `role` (directly or through PUBLIC) holds `command` on the table: the SQL's grants, or Supabase's
    legacy default privileges in an exposed schema where the SQL grants nothing."""
    if not t.grants:
        return t.schema_name in s.exposed_schemas
    columns = client_write_columns(t, command, (role,))
    return columns is None or bool(columns)


def _pins(child: Table, parent: Table) -> list[tuple[str, list[Any]]]:
    """(key column, the values it may hold) a list partition's bound gives its rows: `for values in ('payroll')`
    of a table partitioned by list (kind). Nothing for a range or default partition, or a key expression."""
    bound = child.partition_bound or {}
    datums = bound.get("listdatums") or []
    if len(parent.partition_key) != 1 or not parent.partition_key[0] or bound.get("strategy") != "l" or \
            bound.get("is_default") or not datums or any("A_Const" not in d or d["A_Const"].get("isnull")
                                                        for d in datums):
        return []
    return [(parent.partition_key[0], datums)]


def _ancestors(s: Schema, t: Table) -> list[tuple[Table, bool, list[Pins]]]:
    """(table, whether every link up to it is a partition's, the key values t's rows hold under it) for each table
    whose queries return t's rows: its parents, theirs, and so on. An INSERT into an inheritance parent stays in the
    parent; one into a partitioned table is routed down to the partition, under the partitioned table's WITH CHECK."""
    out: list[tuple[Table, bool, list[Pins]]] = []
    seen, todo = {t.qualified}, [(t, True, [])]
    while todo:
        child, partitions, pinned = todo.pop(0)
        for name in child.parents:
            schema, _, table = name.partition(".")
            parent = s.table(table, schema)
            if parent is None or name in seen:
                continue
            seen.add(name)
            via = partitions and child.partition_of is not None
            links = pinned + (_pins(child, parent) if via else [])
            out.append((parent, via, _combinations(links)))
            todo.append((parent, via, links))
    return out


def _combinations(links: list[tuple[str, list[Any]]]) -> list[Pins]:
    """Every assignment of values to the pinned key columns ([{}]: none, or too many to read each)."""
    combos: list[Pins] = [{}]
    for column, values in links:
        # A column pinned at two levels holds values both allow (none: the partition holds no rows).
        combos = [{**c, column: v} for c in combos for v in values
                  if column not in c or canonical(c[column]) == canonical(v)]
        if len(combos) > _MOST_COMBINATIONS:
            return [{}]
    return combos


def _looser(s: Schema, child: Table, parent: Table, command: str, combos: list[Pins]) -> list[str]:
    """The API roles the parent lets run `command` on the child's rows by other rules than the child's own: granted
    on the parent, and admitted by the child's policies (a partition closed by RLS without policies is no one's
    route) while the parent admits them without RLS, or by permissive policies the child lacks, or past restrictive
    policies the child has. Policies of the parent that the child repeats, or adds to, admit no one the child
    refuses."""
    out = []
    for role in API_ROLES:
        if not _granted(s, parent, command, role):
            continue
        for pins in combos:
            (own, own_narrowing) = _admits(child, command, pins)[role]
            (through, narrowing) = _admits(parent, command, pins)[role]
            if own and (not parent.rls_enabled or (through and not (through <= own and own_narrowing <= narrowing))):
                out.append(role)
                break
    return out


@rule("BP094", "partition_policies_bypassed_through_parent", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A partition or inheritance child has policies of its own that its parent's do not repeat, and clients "
              "may use the parent: a query through the parent checks only the parent's policies.",
      why="PostgreSQL applies the policies of the table a query names. Rows of a partition read, updated or deleted "
          "through the partitioned table, and rows inserted through it and routed to the partition, are checked "
          "against the partitioned table's policies; the partition's own are never consulted. The same holds for an "
          "inheritance child (INHERITS) read, updated or deleted through its parent. A payroll partition kept to "
          "admins by its own policies is read and written by every member through the parent's member policies "
          "(evasion round 9: a member read the CEO's salary and inserted a bonus for themselves).",
      bad="create policy ledger_select on public.ledger_entries for select to authenticated\n"
          "  using (organization_id = any (array(select private.organization_ids_with_role('viewer'))));\n"
          "create table public.ledger_payroll partition of public.ledger_entries for values in ('payroll');\n"
          "alter table public.ledger_payroll enable row level security;\n"
          "create policy ledger_payroll_select on public.ledger_payroll for select to authenticated\n"
          "  using (organization_id = any (array(select private.organization_ids_with_role('admin'))));",
      fix="Put the stricter rule on the parent, chosen by the partition key (`using (organization_id = any (array("
          "select private.organization_ids_with_role(case when kind = 'payroll' then 'admin' else 'viewer' end))))`), "
          "and close the partitions to direct access (row level security on, no policy); or revoke the command on "
          "the parent from anon and authenticated so that clients reach the rows only through the partitions.")
def partition_policies_bypassed_through_parent(r, s: Schema):
    for child in s.tables:
        if not child.parents or not child.rls_enabled or not child.policies:
            continue
        for parent, partitions, combos in _ancestors(s, child):
            looser = {command: roles for command in _CLAUSES if partitions or command != "insert"
                      for roles in (_looser(s, child, parent, command, combos),) if roles}
            if not looser:
                continue
            kind = f"{'a partition' if partitions else 'an inheritance child'} of {parent.qualified}"
            if parent.qualified not in child.parents:
                kind += f" through {child.parents[0]}"
            listed = ", ".join(looser)
            roles = ", ".join(sorted({role for roles in looser.values() for role in roles}))
            how = "unchecked: the parent has row level security off" if not parent.rls_enabled else \
                "under the parent's policies alone"
            rule_there = "a role chosen by the partition key, e.g. organization_ids_with_role(case when kind = " \
                "'payroll' then 'admin' else 'viewer' end), and close the partitions (row level security on, no " \
                "policy)" if partitions else "e.g. a role chosen by a column that marks the child's rows"
            first = client_policies(child, next(iter(looser)))[0]
            yield r.finding(f"{child.qualified} is {kind}, and its own {listed} policies are not "
                            f"the parent's: a {' or '.join(looser)} through {parent.qualified} (granted to {roles}) "
                            f"reaches its rows {how}.", child.qualified,
                            remediation=f"Put the rule {child.qualified} keeps on {parent.qualified} itself "
                                        f"({rule_there}), or revoke {listed} on {parent.qualified} from anon and "
                                        "authenticated.",
                            location=first.location or child.location)
