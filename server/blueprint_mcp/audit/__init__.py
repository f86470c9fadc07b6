"""The auditor: rules over the physical schema model, findings shaped like Supabase's advisors."""

from __future__ import annotations

from ..model.schema import Schema
from . import rules as _rules  # noqa: F401  (registers every rule)
from .findings import Finding, Level, sort_findings
from .registry import RULES, Rule


def audit_schema(schema: Schema) -> list[Finding]:
    """Every finding of every rule, most severe first."""
    found = [f for r in RULES.values() for f in r.check(schema)]
    return sort_findings(found)


__all__ = ["RULES", "Finding", "Level", "Rule", "audit_schema", "sort_findings"]
