"""A policy clause as a caller who belongs to no organisation sees it (red team 20, F1).

Counting any read of a membership table as a membership check lets `not exists (... m.role = 'suspended')`,
`organization_id <> all (array(select ...))`, `coalesce((select ...), true)`, `count(*) >= 0`, a `case` that is
true either way or `organization_ids @> array(select ...)` (an empty array is contained in every array) pass as
checks, while each admits a user in no organisation. Here every membership read is
replaced by what such a caller gets from it (no rows), a NOT NULL column of the policy's table by a value that
is not NULL, and the result is folded (`fold.fold_condition`, three-valued): certainly true means the clause
admits callers who are members of nothing. Anything not known for certain stays unknown, so a real condition
(a column compared with something, a sub-query over another table) never folds.
"""

from __future__ import annotations

from typing import Any

from ...model.schema import Schema
from ..fold import fold_condition
from ..tree import const, function_name, nodes, replaced, strings
from .binding import filtering, from_relations
from .common import (calls, find_function, is_membership_name, lone_value, membership_views, relation_names,
                     sql_answer)

TRUE: dict = {"A_Const": {"boolval": {"boolval": True}}}
FALSE: dict = {"A_Const": {"boolval": {}}}
NULL: dict = {"A_Const": {"isnull": True}}
ZERO: dict = {"A_Const": {"ival": {}}}
# Aggregates that answer NULL over no rows (count answers 0): a scalar sub-select of one of them is NULL.
_NULL_AGGREGATES = {"max", "min", "sum", "avg", "bool_or", "bool_and", "every", "array_agg", "string_agg"}
# Evasion round 11 (e01): an empty array is contained in every array and overlaps none. `x @> mine` and
# `mine <@ x` are true for a caller with no memberships (for every x not NULL), `x && mine` false.
_CONTAINS = {"@>": "rexpr", "<@": "lexpr"}  # the operator and the side that must be contained


class _Stranger:
    def __init__(self, s: Schema, members: set[str], helpers: set[str], table: Any):
        self.s, self.members, self.helpers, self.table = s, members, helpers, table
        self.views = membership_views(s)
        self.why: list[str] = []  # what was read as a non-member reads it, for the finding

    def _membership(self, name: str) -> bool:
        return is_membership_name(name, self.members) or name in self.views

    def _helper(self, call: dict) -> Any:
        name = function_name(call)
        return find_function(self.s, name) if name in self.helpers else None

    def empty(self, select: Any, depth: int) -> bool:
        """True when the sub-query returns no row to a caller in no organisation. A UNION is empty only when every
        branch is."""
        if not isinstance(select, dict) or depth > 6:
            return False
        op = select.get("op", "SETOP_NONE")
        if op != "SETOP_NONE":
            left = self.empty((select.get("larg") or {}), depth + 1)
            right = self.empty((select.get("rarg") or {}), depth + 1)
            return {"SETOP_UNION": left and right, "SETOP_INTERSECT": left or right, "SETOP_EXCEPT": left}.get(op,
                                                                                                              False)
        if select.get("groupClause") is None and self._aggregates(select):
            return False  # `select count(*) from ...` returns its one row however many it counts
        return self._no_input(select, depth)

    def _no_input(self, select: dict, depth: int) -> bool:
        """True when the sub-query's FROM and WHERE keep no row for a caller in no organisation: it reads
        memberships in its FROM (no outer join's idle side: `filtering`), selects from a helper that reads them,
        or its WHERE is false for such a caller."""
        if select.get("op", "SETOP_NONE") != "SETOP_NONE" or depth > 6:
            return False
        kept = filtering({"SelectStmt": select}).get("SelectStmt") or {}
        schema = self.table.schema_name if self.table is not None else "public"
        if any(self._membership(name) for name in from_relations(kept, schema)):
            return True
        for item in select.get("fromClause") or []:  # `from private.my_organization_ids() o`
            for call in ((item.get("RangeFunction") or {}).get("functions") or []) if isinstance(item, dict) else []:
                first = call.get("List", {}).get("items", [None])[0] if isinstance(call, dict) else None
                if isinstance(first, dict) and "FuncCall" in first and self._helper(first["FuncCall"]) is not None:
                    return True
        if not select.get("fromClause"):  # `in (select private.my_organization_ids())`: a set-returning helper
            targets = select.get("targetList") or []
            value = (targets[0].get("ResTarget") or {}).get("val") if len(targets) == 1 else None
            f = self._helper(value["FuncCall"]) if isinstance(value, dict) and "FuncCall" in value else None
            if f is not None and (f.returns or "").lower().startswith("setof"):
                return True
        where = select.get("whereClause")
        return where is not None and fold_condition(self.view(where, depth + 1, inside=True)) is False

    @staticmethod
    def _aggregates(select: dict) -> bool:
        for target in select.get("targetList") or []:
            value = (target.get("ResTarget") or {}).get("val")
            call = value.get("FuncCall") if isinstance(value, dict) else None
            if isinstance(call, dict) and (function_name(call).split(".")[-1] in _NULL_AGGREGATES | {"count"}):
                return True
        return False

    def _scalar(self, select: dict) -> Any:
        """The value of a scalar sub-select that returns no row, or one row of aggregates over none."""
        targets = select.get("targetList") or []
        value = (targets[0].get("ResTarget") or {}).get("val") if len(targets) == 1 else None
        call = value.get("FuncCall") if isinstance(value, dict) else None
        if select.get("groupClause") is not None or not self._aggregates(select):
            return NULL  # no row: NULL
        if isinstance(call, dict) and not call.get("over"):
            name = function_name(call).split(".")[-1]
            return ZERO if name == "count" else NULL if name in _NULL_AGGREGATES else None
        return None

    def _boolean_helper(self, call: dict, depth: int) -> Any:
        """A helper that reads memberships and returns boolean, as a non-member gets it: its SQL answer read the
        same way when it has one (`select not exists (...)` is true), false otherwise (`is_member(org)`)."""
        f = self._helper(call)
        if f is None or (f.returns or "").lower() not in ("bool", "boolean") or depth > 4:
            return None
        answer = sql_answer(f)
        if answer is None:
            self.why.append(f"{f.qualified}() is false")
            return FALSE
        value = fold_condition(self.view(answer, depth + 1, inside=True))
        if isinstance(value, bool):
            self.why.append(f"{f.qualified}() is {str(value).lower()}")
            return TRUE if value else FALSE
        return None

    def _empty_array(self, tree: Any, depth: int) -> bool:
        """True when an array is empty for a caller in no organisation: `array(select ...)` over memberships, the
        same as a bare scalar sub-select or cast, an SQL helper answering one, or `coalesce(<null for them>,
        '{}')`."""
        if not isinstance(tree, dict) or len(tree) != 1 or depth > 6:
            return False
        (kind, body), = tree.items()
        if not isinstance(body, dict):
            return False
        if kind == "TypeCast":
            return self._empty_array(body.get("arg"), depth + 1)
        if kind == "SubLink":
            select = (body.get("subselect") or {}).get("SelectStmt")
            if body.get("subLinkType") == "ARRAY_SUBLINK":
                return self.empty(select, depth + 1)
            bare = body.get("subLinkType") == "EXPR_SUBLINK" and isinstance(select, dict) and \
                select.get("op", "SETOP_NONE") == "SETOP_NONE" and not select.get("limitCount")
            return bare and self._empty_array(lone_value(select), depth + 1)
        if kind == "FuncCall":
            f = self._helper(body)
            return f is not None and self._empty_array(sql_answer(f), depth + 1)
        if kind == "CoalesceExpr":
            for arg in body.get("args") or []:
                if self._empty_array(arg, depth + 1) or self._empty_literal(arg):
                    return True
                if not self._null_for_stranger(arg, depth + 1):
                    return False
        return False

    @staticmethod
    def _empty_literal(tree: Any) -> bool:
        """`'{}'`, `'{}'::uuid[]` or `array[]::uuid[]`."""
        while isinstance(tree, dict) and "TypeCast" in tree:
            tree = tree["TypeCast"].get("arg")
        if isinstance(tree, dict) and "A_ArrayExpr" in tree:
            return not (tree["A_ArrayExpr"] or {}).get("elements")
        value = (tree.get("A_Const") or {}).get("sval") if isinstance(tree, dict) else None
        return isinstance(value, dict) and value.get("sval") == "{}"

    def _null_for_stranger(self, tree: Any, depth: int) -> bool:
        """A scalar sub-select over memberships that is NULL for a caller in none (`(select array_agg(...))`)."""
        body = tree.get("SubLink") if isinstance(tree, dict) else None
        select = (body.get("subselect") or {}).get("SelectStmt") if isinstance(body, dict) else None
        return isinstance(select, dict) and body.get("subLinkType") == "EXPR_SUBLINK" and \
            self._no_input(select, depth + 1) and self._scalar(select) is NULL

    def _containment(self, body: dict, depth: int) -> Any:
        """`x @> mine`, `mine <@ x` (true for a caller with no memberships) and `x && mine` (false)."""
        op = strings(body.get("name"))
        if body.get("kind", "AEXPR_OP") != "AEXPR_OP" or len(op) != 1 or op[0] not in ("@>", "<@", "&&"):
            return None
        if op[0] == "&&":
            if any(self._empty_array(body.get(side), depth + 1) for side in ("lexpr", "rexpr")):
                self.why.append("no array overlaps the caller's memberships, which are none")
                return FALSE
            return None
        if self._empty_array(body.get(_CONTAINS[op[0]]), depth + 1):
            self.why.append("every array contains the caller's memberships, which are none")
            return TRUE
        return None

    def view(self, tree: Any, depth: int = 0, inside: bool = False) -> Any:
        """A copy of `tree` with each membership read replaced by what a caller in no organisation gets."""
        def replace(node: dict) -> Any:
            (kind, body), = node.items()
            if not isinstance(body, dict):
                return None
            if kind == "SubLink":
                return self._sublink(body, depth)
            if kind == "A_Expr" and body.get("kind") in ("AEXPR_OP_ANY", "AEXPR_OP_ALL"):
                right = body.get("rexpr") or {}
                call = right.get("FuncCall") if isinstance(right, dict) else None
                empty = self._empty_array(right, depth + 1) or \
                    (isinstance(call, dict) and self._helper(call) is not None)
                if empty:  # an empty array: `= any` is false whatever the value, `<> all` true (even for NULL)
                    everything = body["kind"] == "AEXPR_OP_ALL"
                    self.why.append(f"{'all' if everything else 'any'} of the caller's memberships is "
                                    f"{str(everything).lower()}")
                    return TRUE if everything else FALSE
                return None
            if kind == "A_Expr":
                return self._containment(body, depth) or self._whole_domain([node])
            if kind == "BoolExpr" and body.get("boolop") == "OR_EXPR":
                return self._whole_domain(body.get("args") or [])
            if kind == "FuncCall":
                return self._boolean_helper(body, depth)
            if kind == "NullTest" and not inside:
                return self._null_test(body)
            return None
        return replaced(tree, replace)

    def _sublink(self, body: dict, depth: int) -> Any:
        select = (body.get("subselect") or {}).get("SelectStmt")
        link = body.get("subLinkType")
        if link == "EXPR_SUBLINK" and isinstance(select, dict) and self._no_input(select, depth + 1):
            value = self._scalar(select)
            if value is not None:
                self.why.append(f"a sub-select over memberships is {'0' if value is ZERO else 'null'}")
                return value
        if not self.empty(select, depth + 1):
            if link == "EXPR_SUBLINK" and not (select or {}).get("fromClause"):
                # `(select private.is_member(org))`: a bare value, read as the value is
                return {"SubLink": {**body, "subselect": {"SelectStmt": self.view(select, depth + 1, inside=True)}}}
            return {"SubLink": body}  # kept whole: nothing inside is evaluated here
        if link == "EXISTS_SUBLINK":
            self.why.append("exists (...) over memberships is false")
            return FALSE
        if link == "ANY_SUBLINK":  # `x in (select ...)`, `x = any (select ...)` over no rows
            self.why.append("in (...) over memberships is false")
            return FALSE
        if link == "ALL_SUBLINK":
            self.why.append("<> all (...) over memberships is true")
            return TRUE
        return {"SubLink": body}

    def _whole_domain(self, arms: list) -> Any:
        """True when tests among OR-ed arms (`shared in (true, false)`, `shared = true or shared = false`) hold
        every value a NOT NULL boolean or enum column of the policy's table can: they admit every row, as a
        signed-in-users' grant whose where lists every value does (red team 21 F4). None otherwise."""
        listed: dict[str, set[str]] = {}
        for arm in arms:
            test = self._column_test(arm)
            if test is not None:
                listed.setdefault(test[0], set()).update(test[1])
        for name, values in listed.items():
            domain = self._domain(name)
            if domain and domain <= values:
                self.why.append(f"{name} holds one of {', '.join(sorted(domain))} on every row")
                return TRUE
        return None

    def _column_test(self, tree: Any) -> tuple[str, set[str]] | None:
        """(column, values) of `col = <constant>` or `col in (<constants>)` on a column of the policy's table."""
        body = tree.get("A_Expr") if isinstance(tree, dict) else None
        if not isinstance(body, dict) or strings(body.get("name")) != ["="] or \
                body.get("kind") not in ("AEXPR_OP", "AEXPR_IN"):
            return None
        ref = (body.get("lexpr") or {}).get("ColumnRef") if isinstance(body.get("lexpr"), dict) else None
        names = strings((ref or {}).get("fields"))
        if self.table is None or not names or len(names) > 2 or (len(names) == 2 and names[0] != self.table.name):
            return None
        right = body.get("rexpr")
        listed = right.get("List", {}).get("items") if isinstance(right, dict) and "List" in right else right
        items = (listed if isinstance(listed, list) else []) if body["kind"] == "AEXPR_IN" else [right]
        values = set()
        for item in items:
            while isinstance(item, dict) and "TypeCast" in item:
                item = item["TypeCast"].get("arg")
            value = const(item)
            if value is None:
                return None
            values.add(str(value).lower() if isinstance(value, bool) else str(value))
        return names[-1], values

    def _domain(self, name: str) -> set[str] | None:
        """Every value a NOT NULL boolean or enum column can hold."""
        column = self.table.column(name) if self.table is not None else None
        if column is None or column.nullable:
            return None
        typ = (column.type or "").lower()
        if typ in ("boolean", "bool"):
            return {"true", "false"}
        schema, _, enum = typ.rpartition(".")
        found = [e for e in self.s.enums if e.name == enum and (not schema or e.schema_name == schema)]
        return set(found[0].values) if len(found) == 1 else None

    def _null_test(self, body: dict) -> Any:
        """`organization_id is not null` on a NOT NULL column of the policy's table is true for every row."""
        ref = (body.get("arg") or {}).get("ColumnRef") if isinstance(body.get("arg"), dict) else None
        names = strings((ref or {}).get("fields"))
        if self.table is None or not names or len(names) > 2 or (len(names) == 2 and names[0] != self.table.name):
            return None
        column = self.table.column(names[-1])
        if column is None or column.nullable:
            return None
        self.why.append(f"{names[-1]} is never null")
        return TRUE if body.get("nulltesttype") == "IS_NOT_NULL" else FALSE


def true_for_stranger(s: Schema, tree: Any, members: set[str], helpers: set[str], table: Any) -> str | None:
    """What makes the clause true for a caller in no organisation, or None when it is not certainly true."""
    if not members:
        return None
    # Most clauses read no membership and test no column for NULL: nothing to read as a non-member (a copy and a
    # fold of every policy's clauses cost a tenth of an audit).
    if not any(kind == "NullTest" or kind == "A_Expr" and body.get("kind") == "AEXPR_IN" or
               kind == "BoolExpr" and body.get("boolop") == "OR_EXPR" for kind, body in nodes(tree)) and \
            not any(name in helpers for name, _, _ in calls(tree)) and \
            not any(is_membership_name(n, members) or n in membership_views(s) for n in relation_names(tree)):
        return None
    stranger = _Stranger(s, members, helpers, table)
    if fold_condition(stranger.view(tree)) is not True or not stranger.why:
        return None  # (nothing read as a non-member: a constant clause is BP023's or lint 0024's)
    return ", ".join(dict.fromkeys(stranger.why))


