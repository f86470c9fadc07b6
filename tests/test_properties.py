"""Three readings agree on every blueprint the model accepts: generator, oracle and auditor.

For random valid blueprints (tests/strategies.py): the rendered SQL applies on PostgreSQL, the
auditor finds no ERROR or WARN in it, and verify (expectations from the oracle, outcomes from
PostgreSQL, fixtures from the world builder) reports no leak, no wrongly blocked case and no
fixture it could not build. Each counterexample found becomes a named test in
tests/test_counterexamples.py.

A fixed seed by default; BLUEPRINT_FUZZ_EXAMPLES raises the example count, BLUEPRINT_FUZZ_RANDOM=1
draws new examples each run and BLUEPRINT_FUZZ_PRINT=1 prints each blueprint's summary (`make fuzz`).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from blueprint_mcp.audit import audit_sql
from blueprint_mcp.model import parse_blueprint
from blueprint_mcp.model.meaning import ungrantable
from blueprint_mcp.tools import blueprint_sql, verify_rls

from strategies import blueprints, summary

pytestmark = pytest.mark.postgres

EXAMPLES = int(os.environ.get("BLUEPRINT_FUZZ_EXAMPLES", "20"))
RANDOM = os.environ.get("BLUEPRINT_FUZZ_RANDOM") == "1"
PROPERTIES = settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM,
                      database=None if not RANDOM else settings.default.database,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def database_url(pg_cluster):
    """One empty database for every example: verify runs in a transaction it always rolls back."""
    pg_cluster.create_database("properties")
    yield f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/properties"
    pg_cluster.drop_database("properties")


def _features(data: dict) -> None:
    """Hypothesis statistics (`--hypothesis-show-statistics`): what the examples covered."""
    t = data["tenancy"]
    event(f"tenancy personal={t['personal_workspaces']} team={t['team_organizations']} "
          f"multiple={t['multiple_memberships']}")
    event(f"roles: {len(t.get('roles', [])) or 'default'}")
    for e in data["entities"]:
        event(f"scope {e['scope']}")
        if e.get("access", {}).get("own_rows_only"):
            event("own_rows_only")
        for f in e["fields"]:
            event(f"field {f['type']}{' unique' if f['unique'] else ''}")
        if e["unique_together"]:
            event("unique_together")
        for cmd, spec in e.get("access", {}).items():
            for g in spec if isinstance(spec, list) else []:
                event(f"grant {next(k for k in g if k in ('min_role', 'roles', 'capability', 'linked', 'signed_in', 'public'))}"
                      + "".join(f" +{k}" for k in ("own", "assigned", "where") if k in g))
        for key in ("checks", "exclusions", "requires", "transitions"):
            if e.get(key):
                event(key)
        if any(f.get("references") == "organization_members" for f in e["fields"]):
            event("member reference")
    if data.get("storage"):
        event("storage")


@PROPERTIES
@given(data=blueprints(), grant_mode=st.sampled_from(["legacy", "explicit"]))
def test_generator_oracle_and_auditor_agree(database_url, data, grant_mode):
    note(summary(data))
    if os.environ.get("BLUEPRINT_FUZZ_PRINT") == "1":
        print(summary(data), flush=True)
    _features(data)
    bp = parse_blueprint(data)
    if ungrantable(bp):  # a lower role holds a right a manager lacks: verify tries the manager giving it
        event("a manager may not give a lower role")
    findings = audit_sql(blueprint_sql(bp, "fuzz"))
    assert [(f.rule_id, f.object, f.message) for f in findings if f.level.value in ("ERROR", "WARN")] == []
    report = verify_rls(blueprint=bp, database_url=database_url, grant_mode=grant_mode)
    assert report.fixture_failures == []
    assert [(c.verdict, c.actor, c.attack or c.command, c.table, c.org, c.actual) for c in report.failures] == []
    assert report.lints == []
    assert report.ok is True
    assert report.leaks == 0
