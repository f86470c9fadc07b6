"""What a function body touches: the tables it reads and writes, the NEW columns a trigger sets.

SQL bodies go through the PostgreSQL grammar, PL/pgSQL bodies through libpg_query's PL/pgSQL
parser and then each embedded query through the grammar again. Dynamic SQL (EXECUTE) stays unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pgparse

from .tree import nodes, relations

_WRITES = ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt")
_ASSIGN = re.compile(r":=|=")
# PL/pgSQL expression parse modes (libpg_query RawParseMode): 0 = a statement, 2 = an expression,
# 3-5 = an assignment "target := expression".
_STATEMENT, _EXPRESSION = 0, 2


@dataclass
class BodyFacts:
    reads: set[str] = field(default_factory=set)
    writes: set[str] = field(default_factory=set)
    assigns: list[str] = field(default_factory=list)


def _qualified(rv: dict, default_schema: str) -> str:
    return f"{rv.get('schemaname') or default_schema}.{rv.get('relname', '')}"


def add_statements(facts: BodyFacts, tree: Any, default_schema: str) -> None:
    """Record the relations `tree` (parsed statements) reads and writes."""
    for kind, body in nodes(tree):
        # A write's target is a bare RangeVar field, so `relations` (typed nodes only) never counts it as read.
        if kind in _WRITES and isinstance(body.get("relation"), dict):
            facts.writes.add(_qualified(body["relation"], default_schema))
    facts.reads.update(_qualified(rv, default_schema) for rv in relations(tree))


def sql_body(text: str, default_schema: str) -> BodyFacts | None:
    try:
        parsed = pgparse.parse(text)
    except (pgparse.PGQueryError, RecursionError, ValueError):
        return None
    facts = BodyFacts()
    add_statements(facts, parsed, default_schema)
    return facts


def plpgsql_body(create_statement: str, default_schema: str) -> BodyFacts | None:
    """Facts of a CREATE FUNCTION ... LANGUAGE plpgsql statement (the whole statement text)."""
    try:
        tree = pgparse.parse_pgsql(create_statement)
    except (pgparse.PGQueryError, RecursionError, ValueError):
        return None
    facts = BodyFacts()
    for kind, fn in nodes(tree):
        if kind != "PLpgSQL_function":
            continue
        datums = fn.get("datums") or []
        new_varno = fn.get("new_varno")
        for inner_kind, body in nodes(fn.get("action")):
            if inner_kind == "PLpgSQL_stmt_assign":
                datum = datums[body["varno"]] if 0 <= body.get("varno", -1) < len(datums) else {}
                rec = datum.get("PLpgSQL_recfield") if isinstance(datum, dict) else None
                if rec and rec.get("recparentno") == new_varno and rec.get("fieldname"):
                    facts.assigns.append(rec["fieldname"])
            elif inner_kind == "PLpgSQL_expr":
                _embedded(facts, body.get("query", ""), body.get("parseMode", _STATEMENT), default_schema)
    return facts


def embedded_sql(query: str, mode: int) -> str:
    """A PL/pgSQL expression (libpg_query's query text and parse mode) as plain SQL; "" for none."""
    if mode == _STATEMENT:
        return query
    if mode == _EXPRESSION:
        return f"select {query}"
    parts = _ASSIGN.split(query, maxsplit=1)
    return f"select {parts[1]}" if len(parts) == 2 else ""


def _embedded(facts: BodyFacts, query: str, mode: int, default_schema: str) -> None:
    text = embedded_sql(query, mode)
    if not text:
        return
    try:
        add_statements(facts, pgparse.parse(text), default_schema)
    except (pgparse.PGQueryError, RecursionError, ValueError):
        pass  # an expression PL/pgSQL accepts but plain SQL does not (e.g. a bare variable list)
