"""Rules about the audit itself: SQL it could not read, suppressions it will not honour."""

from __future__ import annotations

from ...model.schema import Location, Schema
from ..findings import Level
from ..registry import known_names, rule
from ..suppress import Suppression


@rule("BP037", "parse_error", Level.ERROR, ("CORRECTNESS",),
      summary="A statement PostgreSQL's grammar rejects (or that cannot be read).",
      why="The migration fails when applied, and the statement was not audited; the rest of the file was.",
      bad="create tabel habits (id uuid primary key);",
      fix="Fix the syntax at the reported position (psql variables such as :'x' are not SQL).")
def parse_error(r, s: Schema):
    for p in s.problems:
        yield r.finding(p.message, None, location=p.location)


@rule("BP038", "invalid_suppression", Level.WARN, ("AUDIT",), target="suppressions",
      summary="A `blueprint: ignore` comment without a reason, or naming no known rule.",
      why="A suppression is a decision someone must be able to review: without the rule and the reason it "
          "silently hides findings. It silences nothing until fixed.",
      bad="-- blueprint: ignore BP008",
      fix="-- blueprint: ignore BP008 rows are written by the service role only")
def invalid_suppression(r, found: list[Suppression]):
    known = known_names()
    for s in found:
        unknown = [x for x in s.rules if x not in known]
        problem = ("names no rule" if not s.rules else f"names unknown rule(s) {', '.join(unknown)}" if unknown
                   else "gives no reason" if not s.reason else None)
        if problem:
            yield r.finding(f"Suppression {problem}; it silences nothing.", ",".join(s.rules) or None,
                            location=Location(file=s.file, line=s.line, column=s.column))
