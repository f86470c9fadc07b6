"""Run a plan inside one transaction that is always rolled back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .matrix import OUTCOME_FUNCTION, Plan

BATCH = 200


def run_plan(conn: Any, plan: Plan, progress: Callable[[int, int, str], None] | None = None,
             check: Callable[[], None] | None = None) -> None:
    """Build the world, run every case, record `actual`; the caller's transaction is rolled back later."""
    import psycopg

    conn.execute(OUTCOME_FUNCTION)
    failed: set[int] = set()
    check = check or (lambda: None)
    for i, stmt in enumerate(plan.world.statements):
        check()  # a cancelled fixture would otherwise read as one that cannot be built
        try:
            # One round trip, not three: a world is hundreds of statements, and each wait for the server counts.
            conn.execute(_in_savepoint(stmt))
        except psycopg.Error as exc:  # a fixture that cannot be built is reported, its cases dropped
            conn.execute("rollback to savepoint fixture")
            if _fallback(conn, plan, i):
                continue
            failed.add(i)
            plan.fixture_failures.append(f"{str(exc).strip().splitlines()[0]} in `{stmt[:160]}`")
    planned = plan.world.rows
    plan.world.rows = [r for r in planned if r.statement not in failed]
    plan.untested = sorted({r.table for r in planned} - {r.table for r in plan.world.rows})
    plan.planned_cases()
    total = len(plan.cases)
    for start in range(0, total, BATCH):
        check()
        batch = plan.cases[start:start + BATCH]
        calls = ", ".join(f"({i}, {c.outcome_call(plan.world.actors)})" for i, c in enumerate(batch))
        rows = conn.execute(f"select i, r from (values {calls}) as v(i, r) order by i").fetchall()
        for i, result in rows:
            batch[i].actual = result
        if progress:
            progress(min(start + BATCH, total), total, f"{min(start + BATCH, total)} of {total} cases")


def _fallback(conn: Any, plan: Plan, i: int) -> bool:
    """Insert the refused fixture row's fuller form instead; the row then holds the values inserted."""
    import psycopg

    if i not in plan.world.fallbacks:
        return False
    stmt, values = plan.world.fallbacks[i]
    try:
        conn.execute(_in_savepoint(stmt))
    except psycopg.Error:
        conn.execute("rollback to savepoint fixture")
        return False
    for row in plan.world.rows:
        if row.statement == i:
            row.values = values
    return True


def _in_savepoint(stmt: str) -> str:
    """The statement between a savepoint and its release, sent as one simple query (no parameters): when it
    fails, the savepoint exists and the caller rolls back to it."""
    return f"savepoint fixture;\n{stmt}\n;release savepoint fixture"
