"""The auditor: rules over the physical schema model, findings shaped like Supabase's advisors.

SQL (a snippet, a migration, a folder of migrations) is read back into the same model the
generator builds (`parse`), so a blueprint is audited through the SQL it renders.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from ..model.schema import Schema
from . import rules as _rules  # noqa: F401  (registers every rule)
from .findings import Finding, Level, sort_findings
from .parse import ParsedSql, read_sql
from .registry import RULES, Rule, known_names, rules_for
from .rules.common import clear_facts
from .tree import forget_indexes
from .spec import parse_spec
from .suppress import apply_suppressions


def audit_schema(schema: Schema) -> list[Finding]:
    """Every finding of every schema rule, most severe first."""
    clear_facts()
    try:
        found = [f for r in rules_for("schema") for f in r.check(schema)]
    finally:
        clear_facts()
        forget_indexes()
    return sort_findings(found)


def audit_parsed(parsed: ParsedSql) -> list[Finding]:
    """Schema rules over parsed SQL, minus what valid `blueprint: ignore` comments silence, plus bad comments.
    What is kept of the schema rules' findings stays in their order: only bad comments need sorting in."""
    known = known_names()
    kept = apply_suppressions(audit_schema(parsed.schema), parsed.suppressions, known)
    bad = [f for r in rules_for("suppressions") for f in r.check(parsed.suppressions)]
    return sort_findings(kept + bad) if bad else kept


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Parse trees are millions of acyclic dicts that reference counting frees; the cyclic collector
    would walk them again and again as they pile up (a third of the time on 20,000 statements). What the
    audit leaves alive (its findings) is handed to the oldest generation as it stands: counted as new, it
    would be walked by the next young collection, the first allocation after the audit (a twentieth of
    the time on 100,000 statements), and by the next after that."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def audit_sql(sources: list[tuple[str, str]], assume_platform: bool = False,
              exposed: list[str] | None = None, skipped: list[str] | None = None) -> list[Finding]:
    """(file name, SQL) pairs applied in order as one migration history, then audited; `assume_platform`:
    as on a Supabase project, where pg_graphql is installed until the SQL drops it; `exposed`: the schemas
    the API serves (the project's config.toml), when the SQL does not set them; `skipped`: migration files the
    Supabase CLI does not apply, reported (BP037)."""
    with _no_cycle_collection():
        return audit_parsed(read_sql(sources, assume_platform, exposed=exposed, skipped=skipped))


def audit_spec_document(text: str, file: str) -> list[Finding]:
    """The spec rules over one markdown document."""
    doc = parse_spec(text, file)
    return sort_findings([f for r in rules_for("spec") for f in r.check(doc)])


__all__ = ["RULES", "Finding", "Level", "Rule", "audit_parsed", "audit_schema", "audit_spec_document", "audit_sql",
           "read_sql", "sort_findings"]
