"""The analytics pack: per-blueprint queries over `public.events`, written for PostgreSQL.

Every query is scoped to one organisation and a date window, with three named parameters:
`organization_id` (uuid), `from_date` and `to_date` (dates, both inclusive). Days are UTC days.
The SQL is portable on purpose (no generate_series, no LEFT JOIN whose unmatched rows ClickHouse
would fill with defaults instead of nulls, no date subtraction) so sqlglot can carry it to other
engines (dialects.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Blueprint, EventSource
from ..sql.ident import ident, literal

PARAMS = {"organization_id": "uuid", "from_date": "date", "to_date": "date"}
RETENTION_DAYS = (1, 7, 14, 30)  # N of the N-day retention columns: active exactly N days after the first day
WINDOWS = (("dau", 1), ("wau", 7), ("mau", 30))  # trailing windows in days, ending on the row's day
# Default funnels: (name, steps). Steps the blueprint's taxonomy lacks are dropped; "{first_entity}"
# stands for the creation event of the first entity with events (the product's core action).
FUNNELS = (
    ("activation", ("user_signed_up", "onboarding_started", "onboarding_completed", "{first_entity}")),
    ("team_growth", ("organization_created", "member_invited", "invitation_accepted")),
    ("conversion", ("user_signed_up", "plan_selected", "checkout_completed")),
)

ORG = "e.organization_id = cast(:organization_id as uuid)"
DAY = "cast(e.occurred_at at time zone 'UTC' as date)"
FROM = "cast(:from_date as date)"
TO = "cast(:to_date as date)"


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    title: str
    sql: str  # PostgreSQL, with :name placeholders


class UnknownEvent(ValueError):
    """A funnel step names an event the blueprint's taxonomy does not have."""


def _days(back: int) -> str:
    return f"interval '{back} day'"


def _utc(param: str, shift: int = 0) -> str:
    """Midnight UTC of a date parameter, shifted by whole days before the zone is applied (no DST drift)."""
    stamp = f"cast(:{param} as timestamp)"
    if shift:
        stamp = f"({stamp} {'+' if shift > 0 else '-'} {_days(abs(shift))})"
    return f"{stamp} at time zone 'UTC'"


def active_users() -> Query:
    """DAU, WAU and MAU for every day of the window, zeros included."""
    widest = max(n for _, n in WINDOWS)
    counts = ",\n".join(
        f"         count(distinct case when a.day > d.day - {_days(n)} then a.user_id end) as {name}"
        for name, n in WINDOWS)
    sql = (
        "with recursive days as (\n"
        f"  select {FROM} as day\n"
        "  union all\n"
        f"  select cast(day + {_days(1)} as date) from days where day < {TO}\n"
        "), activity as (\n"
        f"  select distinct e.user_id, {DAY} as day\n"
        "    from public.events e\n"
        f"   where {ORG} and e.user_id is not null\n"
        f"     and e.occurred_at >= {_utc('from_date', -(widest - 1))}\n"
        f"     and e.occurred_at < {_utc('to_date', 1)}\n"
        "), counts as (\n"
        "  select d.day,\n"
        f"{counts}\n"
        "    from days d\n"
        "    cross join activity a\n"
        f"   where a.day <= d.day and a.day > d.day - {_days(widest)}\n"
        "   group by d.day\n"
        ")\n"
        "select d.day,\n"
        + ",\n".join(f"       coalesce(c.{name}, 0) as {name}" for name, _ in WINDOWS) + "\n"
        "  from days d\n"
        "  left join counts c on c.day = d.day\n"
        " order by d.day"
    )
    return Query("active_users", "DAU, WAU and MAU per day (trailing 1, 7 and 30 days)", sql)


def retention() -> Query:
    """Cohorts by first active day in the organisation; retained = active exactly N days later."""
    cols = ",\n".join(
        f"       count(distinct case when a.day = c.cohort_day + {_days(n)} then a.user_id end) as day_{n}"
        for n in RETENTION_DAYS)
    sql = (
        "with activity as (\n"
        f"  select distinct e.user_id, {DAY} as day\n"
        "    from public.events e\n"
        f"   where {ORG} and e.user_id is not null\n"
        f"     and e.occurred_at < {_utc('to_date', max(RETENTION_DAYS) + 1)}\n"
        "), cohorts as (\n"
        "  select user_id, min(day) as cohort_day\n"
        "    from activity\n"
        "   group by user_id\n"
        ")\n"
        "select c.cohort_day,\n"
        "       count(distinct c.user_id) as cohort_size,\n"
        f"{cols}\n"
        "  from cohorts c\n"
        "  join activity a on a.user_id = c.user_id\n"
        f" where c.cohort_day >= {FROM} and c.cohort_day <= {TO}\n"
        " group by c.cohort_day\n"
        " order by c.cohort_day"
    )
    return Query("retention", f"N-day retention by first-activity cohort (N = {', '.join(map(str, RETENTION_DAYS))})",
                 sql)


def funnel(name: str, steps: list[str] | tuple[str, ...], bp: Blueprint) -> Query:
    """Users who did the steps in order inside the window; each step's earliest time after the previous."""
    known = {e.name for e in bp.events()}
    unknown = [s for s in steps if s not in known]
    if unknown:
        raise UnknownEvent(f"funnel {name}: {', '.join(unknown)} not in the blueprint's event taxonomy")
    if len(steps) < 2:
        raise UnknownEvent(f"funnel {name}: needs at least two steps")
    ctes = [
        "windowed as (\n"
        "  select e.user_id, e.event_name, e.occurred_at\n"
        "    from public.events e\n"
        f"   where {ORG} and e.user_id is not null\n"
        f"     and e.occurred_at >= {_utc('from_date')}\n"
        f"     and e.occurred_at < {_utc('to_date', 1)}\n"
        ")",
        "step_1 as (\n"
        "  select w.user_id as user_id, min(w.occurred_at) as at\n"
        "    from windowed w\n"
        f"   where w.event_name = {literal(steps[0])}\n"
        "   group by w.user_id\n"
        ")",
    ]
    for i, step in enumerate(steps[1:], 2):
        # The time order stays in WHERE (an inner join; not every ClickHouse takes an inequality in JOIN ON),
        # and columns are aliased: ClickHouse would name an unaliased w.user_id "w.user_id".
        ctes.append(
            f"step_{i} as (\n"
            "  select w.user_id as user_id, min(w.occurred_at) as at\n"
            f"    from step_{i - 1} p\n"
            "    join windowed w on w.user_id = p.user_id\n"
            f"   where w.event_name = {literal(step)} and w.occurred_at > p.at\n"
            "   group by w.user_id\n"
            ")")
    selects = "\nunion all\n".join(
        f"select {i} as step, {literal(step)} as event_name, count(*) as users from step_{i}"
        for i, step in enumerate(steps, 1))
    sql = "with " + ",\n".join(ctes) + f"\nselect step, event_name, users\n  from (\n{selects}\n) f\n order by step"
    return Query(f"funnel_{name}", f"Funnel {name}: {' -> '.join(steps)}", sql)


def default_funnels(bp: Blueprint) -> list[Query]:
    """FUNNELS resolved against the blueprint's taxonomy; a funnel left with fewer than two steps is skipped."""
    known = {e.name for e in bp.events()}
    first = next((e.name for e in bp.events() if e.source is EventSource.entity and e.name.endswith("_created")), None)
    out = []
    for name, steps in FUNNELS:
        resolved = [first if s == "{first_entity}" else s for s in steps]
        kept = [s for s in resolved if s and s in known]
        if len(kept) >= 2:
            out.append(funnel(name, kept, bp))
    return out


def entity_activity(bp: Blueprint) -> Query | None:
    """Per entity and day: rows created, updated and deleted (entity-derived events) and distinct users."""
    derived = [e for e in bp.events() if e.source is EventSource.entity and e.entity]
    if not derived:
        return None
    verbs = ("created", "updated", "deleted")
    entity_of = "\n".join(f"           when {literal(e.name)} then {literal(e.entity)}" for e in derived)
    verb_of = "\n".join(f"           when {literal(e.name)} then {literal(e.name.rsplit('_', 1)[1])}"
                        for e in derived)
    names = ", ".join(literal(e.name) for e in derived)
    counts = ",\n".join(f"       count(case when x.verb = {literal(v)} then 1 end) as {ident(v)}" for v in verbs)
    sql = (
        "with entity_events as (\n"
        "  select case e.event_name\n"
        f"{entity_of}\n"
        "         end as entity,\n"
        "         case e.event_name\n"
        f"{verb_of}\n"
        "         end as verb,\n"
        f"         {DAY} as day, e.user_id\n"
        "    from public.events e\n"
        f"   where {ORG} and e.event_name in ({names})\n"
        f"     and e.occurred_at >= {_utc('from_date')}\n"
        f"     and e.occurred_at < {_utc('to_date', 1)}\n"
        ")\n"
        "select x.entity, x.day,\n"
        f"{counts},\n"
        "       count(distinct x.user_id) as users\n"
        "  from entity_events x\n"
        " group by x.entity, x.day\n"
        " order by x.entity, x.day"
    )
    return Query("entity_activity", "Rows created, updated and deleted per entity and day", sql)


def analytics_queries(bp: Blueprint) -> list[Query]:
    """The pack for one blueprint, in a fixed order; empty when analytics is off."""
    if not bp.analytics.enabled:
        return []
    out = [active_users(), retention(), *default_funnels(bp)]
    activity = entity_activity(bp)
    return out + ([activity] if activity else [])
