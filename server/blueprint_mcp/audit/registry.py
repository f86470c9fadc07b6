"""The rule registry: one declared object and one pure check per rule, with a permanent id."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..model.schema import Schema
from .findings import Finding, Level

Check = Callable[[Schema], Iterator[Finding]]


@dataclass(frozen=True)
class Rule:
    """What a rule is: id, name, level, categories, and a docstring (what / why / example / fix)."""

    id: str
    name: str
    level: Level
    categories: tuple[str, ...]
    summary: str
    why: str
    bad: str
    fix: str
    check: Check = field(compare=False, repr=False)

    def finding(self, message: str, obj: str | None, remediation: str | None = None,
                fix_sql: str | None = None, location=None) -> Finding:
        return Finding(
            rule_id=self.id, name=self.name, level=self.level, categories=list(self.categories), message=message,
            object=obj, remediation=remediation or self.fix, fix_sql=fix_sql,
            file=getattr(location, "file", None), line=getattr(location, "line", None),
            column=getattr(location, "column", None),
        )


RULES: dict[str, Rule] = {}


def rule(id: str, name: str, level: Level, categories: tuple[str, ...], *, summary: str, why: str, bad: str,
         fix: str) -> Callable[[Callable[[Rule, Schema], Iterator[Finding]]], Rule]:
    """Declare a rule; the decorated generator receives the rule and the schema."""

    def register(fn: Callable[[Rule, Schema], Iterator[Finding]]) -> Rule:
        if id in RULES:
            raise ValueError(f"rule id {id} declared twice")
        r = Rule(id=id, name=name, level=level, categories=categories, summary=summary, why=why, bad=bad, fix=fix,
                 check=lambda schema: fn(RULES[id], schema))
        RULES[id] = r
        return r

    return register
