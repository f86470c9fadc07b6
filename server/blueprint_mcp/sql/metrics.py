"""Daily organisation metrics: a private materialized view served through a checked function."""

from __future__ import annotations

from ..model import Blueprint, Capability
from ..model.meaning import least_role
from ..model.schema import CronJob, Function, Index, View
from .ident import literal
from .rls import HELPER

MATVIEW = "daily_org_metrics"
REFRESH = "refresh_daily_org_metrics"
REFRESH_SCHEDULE = "0 * * * *"  # hourly: the view is a day-grained summary


def metrics_schedule() -> CronJob:
    """The pg_cron job that keeps the metrics view fresh."""
    return CronJob(name=REFRESH, schedule=REFRESH_SCHEDULE, command=f"select private.{REFRESH}()")


def metrics_objects(bp: Blueprint) -> tuple[list[View], list[Function]]:
    """Materialized views cannot have RLS: keep it in private, expose only a membership-checked view."""
    # Who reads the organisation's events (docs: events): an aggregate of them is theirs too. A member who
    # sees only their own events would otherwise read their colleagues' daily activity from the totals.
    read = least_role(bp, Capability.manage_members)
    mv = View(
        schema_name="private", name=MATVIEW, materialized=True,
        query=(
            "select e.organization_id,\n"
            "       (e.occurred_at at time zone 'UTC')::date as day,\n"
            "       count(distinct e.user_id) as active_users,\n"
            "       count(*) as events_count,\n"
            "       count(distinct e.session_id) as sessions_count\n"
            "  from public.events e\n"
            " group by 1, 2"
        ),
        comment="Per-organisation daily activity; refreshed by private.refresh_daily_org_metrics().",
        indexes=[Index(name=f"{MATVIEW}_organization_id_day_idx", columns=["organization_id", "day"], unique=True)],
    )
    reader = Function(
        schema_name="private", name="member_daily_org_metrics", returns=f"setof private.{MATVIEW}",
        language="sql", security_definer=True, volatility="stable",
        body=(f"select m.*\n  from private.{MATVIEW} m\n"
              f" where m.organization_id = any (array(select private.{HELPER}({literal(read)})))"),
        comment="The metrics rows of the organisations whose events the caller reads in full (managers).",
        execute_roles=["authenticated", "service_role"],
    )
    refresh = Function(
        schema_name="private", name=REFRESH, returns="void", language="plpgsql",
        security_definer=True,
        body=("begin\n"
              "  -- concurrently keeps readers unblocked, but needs a populated view and the unique index.\n"
              "  if (select ispopulated from pg_catalog.pg_matviews\n"
              f"       where schemaname = 'private' and matviewname = {literal(MATVIEW)}) then\n"
              f"    refresh materialized view concurrently private.{MATVIEW};\n"
              "  else\n"
              f"    refresh materialized view private.{MATVIEW};\n"
              "  end if;\n"
              "end"),
        comment="Scheduled hourly by Supabase Cron (pg_cron) where it is installed.", execute_roles=["service_role"],
    )
    view = View(
        schema_name="public", name=MATVIEW, security_invoker=True,
        query="select organization_id, day, active_users, events_count, sessions_count\n"
              "  from private.member_daily_org_metrics()",
        comment="Daily metrics of the organisations whose events the caller reads in full (security invoker; "
                "rows filtered by membership role).",
        grants={"authenticated": ["select"], "service_role": ["select"]},
    )
    return [mv, view], [reader, refresh]
