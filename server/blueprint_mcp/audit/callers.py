"""Whom a function body answers for: the columns its reads pin to the caller, and the parameters it never reads.

Facts for the rules on the helpers policies call (BP054, BP055, BP057). A helper that reads memberships answers
for the caller only when every read pins the membership's user column to the caller (`auth.uid()`, a parameter
the policy passes, a variable such as `caller uuid := auth.uid()`) or its organisation to a set the caller
decides (`in (select ... where user_id = auth.uid())`: the caller's co-members). A parameter the body never reads decides nothing,
however the policy calls it, and in an SQL function a column of the query hides a parameter of the same name
(`where m.organization_id = organization_id` compares the column with itself).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .pins import CALLER, CALLERS_SET, filters_of, names_the_caller, outer_aliases, pinned, unwrap
from .tree import function_name, nodes, qualified, strings

# The columns of schema.table (all of them, or its NOT NULL ones), None = not known.
ColumnsOf = Callable[[str], "set[str] | None"]
_AGGREGATES = ("count", "sum", "avg", "min", "max")


@dataclass(frozen=True)
class BodyReading:
    """What the parser keeps of a body for these readings, made only where a rule asks: its parsed statements (a
    PL/pgSQL body's embedded queries and expressions as `select <expression>`), the function's name, its input
    parameters (name, type), its variables, and whether a column wins over a parameter or variable of the same
    name (SQL functions; PL/pgSQL under #variable_conflict use_column)."""

    trees: tuple[Any, ...]
    name: str
    params: tuple[tuple[str, str], ...]
    variables: frozenset[str]
    column_first: bool
    default_schema: str
    # (position in trees, the variables it sets): each SELECT ... INTO and assignment (BodyFacts.into)
    into: tuple[tuple[int, tuple[str, ...]], ...] = ()
    raises: bool = False  # a RAISE EXCEPTION or ASSERT (BodyFacts.raises)
    guards: tuple[int, ...] = ()  # positions in trees of IF conditions whose branches raise (BodyFacts.guards)
    conditions: tuple[int, ...] = ()  # positions in trees of every test of the body (BodyFacts.conditions)
    shapes: tuple[Any, ...] = ()  # EXECUTE statements with names made at run time (BodyFacts.shapes)
    refuses_when: tuple[int, ...] = ()  # positions of conditions whose own branch refuses (BodyFacts.refuses_when)
    leaves_when: tuple[int, ...] = ()  # ... only leaves the function (BodyFacts.leaves_when)
    leaves_unless: tuple[int, ...] = ()  # ... whose ELSE only leaves or raises (BodyFacts.leaves_unless)
    within: tuple[tuple[int, tuple[tuple[int, bool], ...]], ...] = ()  # the IFs around a condition (BodyFacts.within)
    enclosed: tuple[tuple[int, tuple[tuple[int, bool], ...]], ...] = ()  # ... around a statement (BodyFacts.enclosed)
    caught: tuple[tuple[int, int], ...] = ()  # refusals a handler swallows -> where its block ends (BodyFacts.caught)
    lookups: tuple[int, ...] = ()  # positions of SELECT ... INTO without STRICT (BodyFacts.lookups)
    unguarded: tuple[int, ...] = ()  # positions of statements nothing guards on their path (BodyFacts.unguarded)
    asks_caller: bool = False  # a test asks who calls somewhere (BodyFacts.asks_caller)
    stamps: tuple[tuple[str, int], ...] = ()  # (NEW field, position of its value) a trigger sets (BodyFacts.stamps)
    discarded: tuple[int, ...] = ()  # positions of expressions whose value decides nothing (BodyFacts.discarded)
    declared: tuple[int, ...] = ()  # positions of DECLARE defaults (BodyFacts.declared)
    performs: tuple[int, ...] = ()  # positions of the PERFORMs every run reaches (BodyFacts.performs)
    answer: Any = None  # the expression a PL/pgSQL body returns (BodyFacts.answer)
    always: tuple[int, ...] = ()  # positions of the SQL statements every run reaches (BodyFacts.always)


@dataclass
class CallerFacts:
    # schema.table -> for each read of it (outside derived tables and CTEs), the columns it pins to the caller, and
    # as "<column> in" those it keeps to a set the caller decides (in (select ... where user_id = auth.uid()))
    pins: dict[str, list[set[str]]] = field(default_factory=dict)
    read: set[int] = field(default_factory=set)  # positions of the parameters the body reads
    shadowed: dict[int, str] = field(default_factory=dict)  # position -> schema.table.column that hides it


@dataclass
class _Scope:
    relations: list[tuple[str, str, set[str] | None]]  # (alias, schema.table, its columns or None)
    never_null: dict[str, set[str]] = field(default_factory=dict)  # alias -> NOT NULL columns (not an outer side's)


class _Body:
    def __init__(self, reading: BodyReading, columns_of: ColumnsOf, not_null_of: ColumnsOf) -> None:
        self.name = reading.name
        self.params = {p: i for i, (p, _) in enumerate(reading.params, start=1) if p}
        self.variables = reading.variables - set(self.params)
        self.column_first = reading.column_first
        self.default_schema = reading.default_schema
        self.columns_of = columns_of
        self.not_null_of = not_null_of
        self.facts = CallerFacts()

    def walk(self, value: Any, scopes: tuple[_Scope, ...], judged: bool, given: frozenset = frozenset()) -> None:
        stack: list[tuple[Any, tuple[_Scope, ...], bool, frozenset]] = [(value, scopes, judged, given)]
        while stack:
            value, scopes, judged, given = stack.pop()
            if isinstance(value, list):
                stack += [(v, scopes, judged, given) for v in reversed(value)]
                continue
            if not isinstance(value, dict):
                continue
            if len(value) != 1 or not next(iter(value))[:1].isupper():
                stack += [(v, scopes, judged, given) for v in value.values() if isinstance(v, dict | list)]
                continue
            kind, body = next(iter(value.items()))
            if not isinstance(body, dict):
                continue
            if kind == "SelectStmt":
                stack += self._select(body, scopes, judged, given)
            elif kind in ("UpdateStmt", "DeleteStmt"):
                # The written relation (and an UPDATE's FROM, a DELETE's USING) name the bare columns of its WHERE
                # and SET, as a SELECT's FROM does: `where organization_id = organization_id` is the column twice.
                scope = _Scope([])
                for rv in [body.get("relation") or {}] + [(item or {}).get("RangeVar") or {} for item in
                                                          (body.get("fromClause") or body.get("usingClause") or [])]:
                    if rv.get("relname"):
                        rel = qualified(rv, self.default_schema)
                        alias = (rv.get("alias") or {}).get("aliasname") or rv["relname"]
                        scope.relations.append((alias, rel, self.columns_of(rel)))
                stack += [(v, scopes + (scope,), judged, given) for k, v in body.items()
                          if k != "relation" and isinstance(v, dict | list)]
            elif kind == "ColumnRef":
                self._resolve(body, scopes)
            elif kind == "ParamRef":
                self.facts.read.add(body.get("number", 0))
            else:
                stack += [(v, scopes, judged, given) for v in body.values() if isinstance(v, dict | list)]

    def _select(self, select: dict, scopes: tuple[_Scope, ...], judged: bool, given: frozenset) -> list:
        scope = _Scope([])
        later: list = []
        items = list(select.get("fromClause") or [])
        outer = outer_aliases(select)
        while items:
            item = items.pop()
            kind, body = next(iter(item.items())) if isinstance(item, dict) and len(item) == 1 else ("", {})
            if kind == "RangeVar":
                rel = qualified(body, self.default_schema)
                alias = (body.get("alias") or {}).get("aliasname") or body.get("relname", "")
                scope.relations.append((alias, rel, self.columns_of(rel)))
                if alias not in outer:
                    scope.never_null[alias] = self.not_null_of(rel) or set()
            elif kind == "JoinExpr":
                items += [body.get("larg"), body.get("rarg")]
            elif kind == "RangeSubselect":  # a derived table: what its rows answer for is decided outside it
                alias = (body.get("alias") or {}).get("aliasname") or ""
                scope.relations.append((alias, "", None))
                later.append((body.get("subquery"), scopes, False, frozenset()))
            else:
                alias = ((body.get("alias") or {}).get("aliasname") or "") if isinstance(body, dict) else ""
                scope.relations.append((alias, "", None))
                later.append((body, scopes, judged, given))
        inner = scopes + (scope,)
        classify = lambda op: self._classify(op, inner)  # noqa: E731

        def never_null(key: Any) -> bool:  # (scope id, alias, column) of a NOT NULL column
            return isinstance(key, tuple) and len(key) == 3 and \
                any(id(sc) == key[0] and key[2] in sc.never_null.get(key[1], ()) for sc in inner)
        keys = pinned(filters_of(select), classify, given, never_null=never_null)
        # A relation pinned to the caller (m1.user_id = auth.uid()) makes its other columns values the caller
        # decides: a column equated with one (m2.organization_id = m1.organization_id) is kept to the caller's set,
        # as `in (select organization_id ... where user_id = auth.uid())` keeps it (evasion round 8: co-members
        # through a self-join were read as everyone's memberships).
        mine_rows = {k[:2] for k in keys if isinstance(k, tuple) and len(k) == 3}

        def caller_decides(op: Any) -> Any:
            k = classify(op)
            return CALLERS_SET if isinstance(k, tuple) and len(k) == 3 and k[:2] in mine_rows and k not in keys \
                else k
        sets = pinned(filters_of(select), caller_decides if mine_rows else classify, anchor=CALLERS_SET,
                      never_null=never_null)
        if judged and not _aggregates_only(select):
            for alias, rel, _ in scope.relations:
                if rel:
                    mine = {k[2] for k in keys if k[0] == id(scope) and k[1] == alias}
                    mine |= {f"{k[2]} in" for k in sets if k[0] == id(scope) and k[1] == alias}
                    self.facts.pins.setdefault(rel, []).append(mine)
        quals = [f for f in filters_of(select) if f is not select.get("whereClause")]
        for key, child in select.items():
            if key == "withClause":
                later.append((child, scopes, False, frozenset()))
            elif key != "fromClause" and isinstance(child, dict | list):
                later.append((child, inner, judged, frozenset(keys)))
        later += [(q, inner, judged, frozenset(keys)) for q in quals]
        return later[::-1]

    def _resolve(self, ref: dict, scopes: tuple[_Scope, ...]) -> tuple | None:
        """What a column reference names: ("column", scope id, alias, column), ("input",) for a parameter or a
        variable, or None (a relation or record the reading does not know)."""
        names = strings(ref.get("fields"))
        if not names or names[-1] == "*":
            return None
        if len(names) >= 2:
            for scope in reversed(scopes):
                if any(alias == names[-2] for alias, _, _ in scope.relations):
                    return ("column", id(scope), names[-2], names[-1])
            if names[-2] == self.name and names[-1] in self.params:  # is_member.organization_id
                self.facts.read.add(self.params[names[-1]])
                return ("input",)
            return None
        name = names[0]
        for scope in reversed(scopes):
            holder = next(((alias, rel) for alias, rel, columns in scope.relations
                           if columns is not None and name in columns), None)
            if holder is not None:
                if name in self.params and self.column_first:
                    self.facts.shadowed.setdefault(self.params[name], f"{holder[1]}.{name}")
                if (name in self.params or name in self.variables) and not self.column_first:
                    break  # PL/pgSQL takes the variable (or raises: the name is ambiguous)
                return ("column", id(scope), holder[0], name)
            if any(columns is None for _, _, columns in scope.relations):
                if name in self.params or name in self.variables:
                    break  # a relation of unknown columns: the benefit of the doubt
                return None
        if name in self.params:
            self.facts.read.add(self.params[name])
            return ("input",)
        return ("input",) if name in self.variables else None

    def _classify(self, operand: Any, scopes: tuple[_Scope, ...]) -> Any:
        operand = unwrap(operand)
        kind, body = next(iter(operand.items())) if isinstance(operand, dict) and len(operand) == 1 else ("", {})
        if kind == "ColumnRef":
            found = self._resolve(body, scopes)
            if found is None:
                return ("unknown", id(body))
            return CALLER if found == ("input",) else found[1:]
        if kind == "ParamRef":
            return CALLER
        if kind == "SubLink":  # (select auth.uid()) is the caller; in (select ...), array(select ...) a set
            if not self._mentions_caller(body.get("subselect")):
                return None
            return CALLER if body.get("subLinkType") == "EXPR_SUBLINK" else CALLERS_SET
        caller = False
        stack = [operand]
        while stack:
            value = stack.pop()
            if isinstance(value, list):
                stack += value
            elif isinstance(value, dict):
                if len(value) == 1 and "ColumnRef" in value:
                    found = self._resolve(value["ColumnRef"], scopes)
                    if found is None or found[0] == "column":
                        return None
                    caller = True
                elif len(value) == 1 and "FuncCall" in value:
                    caller = caller or names_the_caller(function_name(value["FuncCall"]))
                    stack += [v for v in value["FuncCall"].values() if isinstance(v, dict | list)]
                else:
                    stack += [v for v in value.values() if isinstance(v, dict | list)]
        return CALLER if caller else None

    def _mentions_caller(self, value: Any) -> bool:
        """A sub-query that calls auth.uid() (or a helper), or reads a parameter or variable of the body."""
        for kind, body in nodes(value):
            if kind == "FuncCall" and names_the_caller(function_name(body)) or kind == "ParamRef":
                return True
            if kind == "ColumnRef":
                names = strings(body.get("fields"))
                if len(names) == 1 and (names[0] in self.params or names[0] in self.variables):
                    return True
        return False


def _aggregates_only(select: dict) -> bool:
    """A SELECT that answers with counts or sums (a fact about a group, not whose rows they are)."""
    targets = [(t.get("ResTarget") or {}).get("val") or {} for t in select.get("targetList") or []]
    return bool(targets) and all("FuncCall" in v and function_name(v["FuncCall"]).split(".")[-1] in _AGGREGATES
                                 for v in targets)


def caller_facts(reading: BodyReading, columns_of: ColumnsOf, not_null_of: ColumnsOf) -> CallerFacts:
    """The facts of one body. `columns_of` gives the tables' columns as they stand when the function runs (what a
    bare name in its queries is, PostgreSQL decides then), `not_null_of` those of them declared NOT NULL (where IS
    NOT DISTINCT FROM ties as = does)."""
    body = _Body(reading, columns_of, not_null_of)
    for tree in reading.trees:
        body.walk(tree, (), True)
    return body.facts


def unread_parameters(reading: BodyReading, facts: CallerFacts) -> list[str]:
    """The input parameters the body never reads: `name`, `$n` for a nameless one, with the column that hides a
    name (`organization_id (hidden by public.organization_members.organization_id)`)."""
    return [(name or f"${i}") + (f" (hidden by {facts.shadowed[i]})" if i in facts.shadowed else "")
            for i, (name, _) in enumerate(reading.params, start=1) if i not in facts.read]
