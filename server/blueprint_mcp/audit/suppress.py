"""Inline suppression: `-- blueprint: ignore <rule>[,<rule>...] <reason>`.

The comment silences the named rules (id like BP008 or name like update_without_with_check) for the
statement it sits in, or else the next statement. A reason is required: a suppression without one,
or naming no known rule, is itself a finding and silences nothing.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from .findings import Finding
from .split import Comment, Lines, Statement

_DIRECTIVE = re.compile(r"^\s*blueprint:\s*ignore\b\s*(?P<rules>\S*)\s*(?P<reason>.*?)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Suppression:
    rules: tuple[str, ...]
    reason: str
    file: str
    line: int
    column: int
    first_line: int  # the statement it covers
    last_line: int

    def covers(self, f: Finding) -> bool:
        return (f.file == self.file and f.line is not None and self.first_line <= f.line <= self.last_line
                and (f.rule_id in self.rules or f.name in self.rules))


def suppressions(comments: list[Comment], statements: list[Statement], lines: Lines, file: str) -> list[Suppression]:
    """Every `blueprint: ignore` comment of one file, tied to the statement it covers."""
    out = []
    starts = [s.start for s in statements]
    for c in comments:
        m = _DIRECTIVE.match(c.text)
        if not m:
            continue
        i = bisect_right(starts, c.start) - 1
        target = statements[i] if i >= 0 and statements[i].end > c.start else \
            (statements[i + 1] if i + 1 < len(statements) else None)
        line, column = lines.at(c.start)
        first = lines.at(target.start)[0] if target else line
        last = lines.at(max(target.end - 1, target.start))[0] if target else line
        rules = tuple(r for r in m.group("rules").split(",") if r)
        out.append(Suppression(rules, m.group("reason"), file, line, column, first, last))
    return out


def is_valid(s: Suppression, known: set[str]) -> bool:
    return bool(s.reason) and bool(s.rules) and all(r in known for r in s.rules)


def apply_suppressions(findings: list[Finding], found: list[Suppression], known: set[str]) -> list[Finding]:
    """The findings no valid suppression covers."""
    valid = [s for s in found if is_valid(s, known)]
    if not valid:
        return list(findings)
    return [f for f in findings if not any(s.covers(f) for s in valid)]
