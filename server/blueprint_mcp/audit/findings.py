"""The finding every check reports, shaped like Supabase's advisors so the two line up."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from ..model.schema import trusted


class Level(StrEnum):
    ERROR = "ERROR"
    WARN = "WARN"
    INFO = "INFO"


LEVEL_ORDER = {Level.ERROR: 0, Level.WARN: 1, Level.INFO: 2}


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule_id: str = Field(description="Permanent id, e.g. BP001.")
    name: str = Field(description="Rule name; Supabase's lint name where the rule is one of its lints.")
    level: Level
    categories: list[str] = Field(default_factory=list)
    message: str
    object: str | None = Field(None, description="The table, policy or function concerned.")
    file: str | None = None
    line: int | None = None
    column: int | None = None
    remediation: str = ""
    fix_sql: str | None = Field(None, description="SQL that fixes it, where the fix is mechanical.")

    @classmethod
    def of_rule(cls, values: dict) -> Finding:
        """A finding from a rule: `values` holds every field in order, already of its type (`Rule.finding`
        builds them from the rule's declared identity and its check's strings), so it is not validated
        again: an audit reports tens of thousands, and validating each was a tenth of a large audit."""
        return trusted(cls, values)


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Most severe first, then by file and position, then rule and object, so output is stable."""
    return sorted(findings, key=lambda f: (LEVEL_ORDER[f.level], f.file or "", f.line or 0, f.column or 0,
                                           f.rule_id, f.object or "", f.message))
