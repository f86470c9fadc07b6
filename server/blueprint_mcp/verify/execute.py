"""Run a plan inside one transaction that is always rolled back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .matrix import OUTCOME_FUNCTION, Plan

BATCH = 200


def run_plan(conn: Any, plan: Plan, progress: Callable[[int, int, str], None] | None = None) -> None:
    """Build the world, run every case, record `actual`; the caller's transaction is rolled back later."""
    conn.execute(OUTCOME_FUNCTION)
    for stmt in plan.world.statements:
        conn.execute("savepoint fixture")
        try:
            conn.execute(stmt)
            conn.execute("release savepoint fixture")
        except Exception as exc:  # noqa: BLE001 - a fixture that cannot be built is reported, not fatal
            conn.execute("rollback to savepoint fixture")
            plan.notes.append(f"fixture failed: {str(exc).strip().splitlines()[0]} in `{stmt[:160]}`")
    total = len(plan.cases)
    for start in range(0, total, BATCH):
        batch = plan.cases[start:start + BATCH]
        calls = ", ".join(f"({i}, {c.outcome_call(plan.world.actors)})" for i, c in enumerate(batch))
        rows = conn.execute(f"select i, r from (values {calls}) as v(i, r) order by i").fetchall()
        for i, result in rows:
            batch[i].actual = result
        if progress:
            progress(min(start + BATCH, total), total, f"{min(start + BATCH, total)} of {total} cases")
