"""How the PostgreSQL benchmarks time a query: forms taking turns in rounds, EXPLAIN ANALYZE with TIMING OFF, every
run rolled back, ratios paired by round. Shared by policy_speed.py and access_speed.py."""

from __future__ import annotations

import json
import statistics

import psycopg

WARMUP = 5  # untimed runs first: a pooled connection has run its helpers' queries before (PL/pgSQL plans
# them once per session; the first five executions of a cached plan are planned again for their parameters)


ANON = "anon"  # as_caller's name for a request without a session


def as_caller(conn, user: str | None) -> None:
    """The rest of the transaction runs as `user` through the API role (None: stay the table owner; ANON: the anon
    role, no claims)."""
    if user == ANON:
        conn.execute("set local role anon")
    elif user:
        conn.execute("set local role authenticated")
        conn.execute("select set_config('request.jwt.claims', %s, true)",
                     (json.dumps({"sub": user, "role": "authenticated"}),))


def rounds(conn, forms: list[tuple[str, str | None, str]], repeat: int) -> list[tuple[list[float], dict, list[float]]]:
    """For each (query, caller or None for the table owner, setup run first in the same transaction): the
    execution time (ms) of `repeat` runs after WARMUP untimed ones, the plan of the last run, and the planning time
    (ms) of the same runs.

    The forms take turns in every round, so a slower moment of a shared machine falls on all of them (`paired`
    compares them round by round); each round starts with the next form, as a write leaves dead row versions
    (rolled back) on the pages the next form reads, and a fixed order would charge them to the same form every
    time. EXPLAIN ANALYZE runs with TIMING OFF: per-node timing reads the clock twice per row per node (about
    30 ns each here), which is measurement, not cost, and is larger for plans with more nodes."""
    times: list[list[float]] = [[] for _ in forms]
    planning: list[list[float]] = [[] for _ in forms]
    plans: list[dict] = [{} for _ in forms]
    for i in range(WARMUP + repeat):
        for k in [(i + j) % len(forms) for j in range(len(forms))]:
            sql, user, setup = forms[k]
            with conn.transaction():
                if setup:
                    conn.execute(setup)
                as_caller(conn, user)
                out = conn.execute("explain (analyze, timing off, format json) " + sql).fetchone()[0][0]
                if i >= WARMUP:
                    times[k].append(out["Execution Time"])
                    planning[k].append(out["Planning Time"])
                plans[k] = out["Plan"]
                raise psycopg.Rollback()
    return list(zip(times, plans, planning))


def paired(ours: list[float], base: list[float]) -> tuple[float, float]:
    """(median ratio, median difference in microseconds) of runs taken in the same round: a round's slow
    moment moves both sides, so the ratio of a 0.1 ms read stays put where the ratio of medians would not."""
    return (statistics.median(a / b for a, b in zip(ours, base)),
            statistics.median((a - b) * 1000 for a, b in zip(ours, base)))
