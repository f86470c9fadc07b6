"""What a real-app fit check asks of a blueprint it ends with (tests/test_fit_s30.py, tests/test_fit_s31.py)."""

from __future__ import annotations

from blueprint_mcp.audit import audit_sql
from blueprint_mcp.model import parse_blueprint
from blueprint_mcp.tools import blueprint_sql, verify_rls


def verified(data: dict, url: str) -> None:
    """verify passes with no leak, no fixture left unbuilt and no lint, and the audit finds nothing to warn of."""
    report = verify_rls(blueprint=data, database_url=url)
    assert [(f.verdict, f.actor, f.attack or f.command, f.table, f.org, f.actual) for f in report.failures] == []
    assert report.fixture_failures == []
    assert report.lints == []
    assert report.ok is True
    findings = audit_sql(blueprint_sql(parse_blueprint(data), "x"))
    assert [(f.rule_id, f.object) for f in findings if f.level.value in ("ERROR", "WARN")] == []
