"""Exclusions over bounded numbers (session 31, helper a): verify gave every row past its check's bound the same
range (the row number times ten, clamped onto the bound), so a job moved onto another technician's key met that
technician's job on the same range and the exclusion refused it: 120 false 23P01 errors, no leak among them. Each
row now takes the world's next place in the span; a span too narrow for the world's rows is refused by name."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from blueprint_mcp.model import BlueprintError, parse_blueprint
from blueprint_mcp.sql.design import build_schema
from blueprint_mcp.tools import verify_rls
from blueprint_mcp.verify.matrix import blueprint_plan
from blueprint_mcp.verify.oracle import from_literal
from blueprint_mcp.verify.run import blueprint_migrations, verify

FIT = {  # /tmp/s30/fit/repro-bounded-exclusion.yaml, the fit check's blueprint
    "app": {"name": "Fit", "slug": "fit"},
    "tenancy": {"personal_workspaces": False},
    "entities": [{
        "name": "jobs",
        "fields": [
            {"name": "technician_id", "type": "reference", "references": "organization_members"},
            {"name": "slot", "type": "integer", "nullable": False, "check": {"min": 0, "max": 95}},
            {"name": "slot_end", "type": "integer", "nullable": False, "check": {"min": 1, "max": 96}},
            {"name": "status", "type": "enum", "values": ["scheduled", "on_site", "done"], "nullable": False,
             "default": "scheduled"}],
        "soft_delete": True,
        "checks": [{"column": "slot_end", "op": "gt", "other": "slot"}],
        "exclusions": [{"keys": ["technician_id"], "range": ["slot", "slot_end"]}],
        "access": {
            "select": [{"min_role": "admin"}, {"min_role": "viewer", "assigned": "technician_id"}],
            "update": [{"min_role": "admin"}, {"min_role": "member", "assigned": "technician_id",
                                                "where": {"column": "status", "in": ["on_site", "done"]}}]},
    }],
}


def fit(change=None) -> dict:
    """The fit blueprint, its jobs entity changed by `change(entity)`."""
    data = copy.deepcopy(FIT)
    if change is not None:
        change(data["entities"][0])
    return data


def field(entity: dict, name: str) -> dict:
    return next(f for f in entity["fields"] if f["name"] == name)


def bounds(entity: dict, name: str, low, high, kind: str = "integer") -> None:
    f = field(entity, name)
    f["type"] = kind
    f["check"] = {k: v for k, v in (("min", low), ("max", high)) if v is not None}


def planned_ranges(data: dict, start: str = "slot", end: str = "slot_end"):
    """[start, end) of every fixture row of jobs, and of every row a case inserts, as numbers."""
    bp = parse_blueprint(data)
    plan = blueprint_plan(bp, build_schema(bp))
    fixtures = [(Decimal(from_literal(r.values[start])), Decimal(from_literal(r.values[end])))
                for r in plan.world.rows if r.table == "jobs"]
    inserted = []
    for case in plan.build(None):
        if case.table == "jobs" and case.sql.startswith("insert into public.jobs ("):
            columns, values = case.sql.split(" (", 1)[1].split(") values (")
            row = dict(zip([c.strip().strip('"') for c in columns.split(",")],
                           [v.strip() for v in values.rstrip(")").split(",")]))
            if start in row:
                inserted.append((Decimal(row[start]), Decimal(row[end])))
    return plan, fixtures, inserted


def overlapping(ranges) -> list:
    return [(a, b) for i, a in enumerate(ranges) for b in ranges[i + 1:] if a[0] < b[1] and b[0] < a[1]]


def test_every_fixture_row_holds_its_own_range_inside_the_bounds():
    """The fit blueprint's 17 fixture rows had [95, 96) from the tenth on; now each its own, none past 0..96."""
    _, fixtures, inserted = planned_ranges(fit())
    assert len(fixtures) == 17
    assert overlapping(fixtures) == []
    assert all(0 <= s and e <= 96 and s < e for s, e in fixtures + inserted)
    # A case's row meets no fixture row's range (the cases roll back, so they may share one among themselves).
    assert inserted and [c for c in inserted if any(c[0] < f[1] and f[0] < c[1] for f in fixtures)] == []


@pytest.mark.parametrize("change, low, high", [
    (lambda e: (bounds(e, "slot", 1000, None), bounds(e, "slot_end", 1000, None)), 1000, None),
    (lambda e: (bounds(e, "slot", None, 50), bounds(e, "slot_end", None, 50)), None, 50),
    (lambda e: (bounds(e, "slot", 0, 1, "numeric"), bounds(e, "slot_end", 0, 1, "numeric")), 0, 1),
], ids=["lower-bound-only", "upper-bound-only", "numeric-0..1"])
def test_one_sided_and_decimal_bounds_give_each_row_its_own_range(change, low, high):
    """A lower bound above the row numbers clamped every row onto it; an upper bound below them the same; a
    numeric pair held to 0..1 took whole steps and had room for one row."""
    _, fixtures, inserted = planned_ranges(fit(change))
    assert overlapping(fixtures) == []
    assert all((low is None or s >= low) and (high is None or e <= high) and s < e for s, e in fixtures + inserted)


def test_two_exclusions_each_take_places_inside_their_own_bounds():
    """Two ranges of one table, bounded far apart: one shared start fitted neither."""
    def change(e):
        e["fields"] += [{"name": "bay_id", "type": "reference", "references": "organization_members"},
                        {"name": "bay_from", "type": "integer", "nullable": False, "check": {"min": 500, "max": 599}},
                        {"name": "bay_to", "type": "integer", "nullable": False, "check": {"min": 501, "max": 600}}]
        e["checks"].append({"column": "bay_to", "op": "gt", "other": "bay_from"})
        e["exclusions"].append({"keys": ["bay_id"], "range": ["bay_from", "bay_to"]})
    _, slots, _ = planned_ranges(fit(change))
    _, bays, _ = planned_ranges(fit(change), "bay_from", "bay_to")
    assert overlapping(slots) == [] and overlapping(bays) == []
    assert all(0 <= s and e <= 96 for s, e in slots) and all(500 <= s and e <= 600 for s, e in bays)


def test_the_world_places_rows_the_same_way_every_time():
    """The pgTAP file render writes and verify's run build the same world: places follow the plan's order."""
    first, second = planned_ranges(fit()), planned_ranges(fit())
    assert first[1:] == second[1:]


@pytest.fixture(scope="module")
def url(pg_cluster):
    """One empty database: verify installs the shim itself and rolls everything back."""
    pg_cluster.create_database("bounded_s31")
    yield f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/bounded_s31"
    pg_cluster.drop_database("bounded_s31")


def passes(data: dict, url: str) -> None:
    report = verify_rls(blueprint=data, database_url=url)
    assert [(f.verdict, f.actor, f.attack or f.command, f.table, f.actual) for f in report.failures] == []
    assert report.fixture_failures == []
    assert report.ok is True


@pytest.mark.postgres
@pytest.mark.parametrize("change", [
    None,
    lambda e: field(e, "technician_id").update(nullable=False),
    lambda e: (bounds(e, "slot", 0, 1, "numeric"), bounds(e, "slot_end", 0, 1, "numeric")),
    lambda e: (bounds(e, "slot", 1000, None), bounds(e, "slot_end", 1000, None)),
    lambda e: e["exclusions"].append({"keys": [], "range": ["slot", "slot_end"]}),
], ids=["fit", "required-key", "numeric", "lower-bound-only", "second-exclusion-without-keys"])
def test_bounded_exclusions_verify(url, change):
    """The fit blueprint FAILed with 120 23P01 errors (every job past the tenth on [95, 96)); it and its variants
    pass: a key every row holds, decimal bounds, a bound on one side, a second exclusion over every row."""
    passes(fit(change), url)


@pytest.mark.postgres
def test_a_span_too_narrow_for_the_world_is_refused_naming_the_bound_and_its_fix(url):
    """Ten slots cannot hold the world's 17 jobs apart: verify says so (field, fix) instead of FAILing with the
    exclusion's refusals of its own rows; widened as the fix says, the blueprint passes."""
    narrow = fit(lambda e: (bounds(e, "slot", 0, 9), bounds(e, "slot_end", 1, 10)))
    with pytest.raises(BlueprintError) as refused:
        verify_rls(blueprint=narrow, database_url=url)
    error = refused.value
    assert error.field == "entities[0].fields[2].check.max"
    assert error.message == ("verify cannot give each of its 17 jobs rows its own [slot, slot_end) range: the check "
                             "bounds hold 10, and rows sharing one would be refused by the exclusion (23P01 errors "
                             "from verify's own rows, not from access control)")
    assert error.fix == "widen the bounds to hold 34 ranges (e.g. slot max 33, slot_end max 34)"
    passes(fit(lambda e: (bounds(e, "slot", 0, 33), bounds(e, "slot_end", 1, 34))), url)


@pytest.mark.postgres
def test_a_leaky_update_policy_is_still_caught(url):
    """The fix hides nothing: a backend letting members update their assigned jobs in any status leaks, and the
    leak shows (before, such moves were errors at best)."""
    bp = parse_blueprint(fit())
    schema, rls, triggers = blueprint_migrations(bp)
    leaky = rls.replace("(technician_id = (select auth.uid()) and status in ('on_site', 'done') and ",
                        "(technician_id = (select auth.uid()) and ")
    assert leaky != rls
    report = verify(source="leaky", migrations=[schema, leaky, triggers], blueprint=bp, database_url=url)
    verdicts = {(f.verdict, f.actor, f.command) for f in report.failures}
    assert report.ok is False and report.fixture_failures == []
    assert {v for v, _, _ in verdicts} == {"LEAK"}
    assert ("LEAK", "member", "update") in verdicts
