"""The rule registry: one declared object and one pure check per rule, with a permanent id."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from .findings import Finding, Level
from .platform import LINTS

# What a rule's check reads: the schema model, a markdown spec, or the suppression comments.
Target = Literal["schema", "spec", "suppressions"]
Check = Callable[[Any], Iterator[Finding]]


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
    target: Target = "schema"
    platform: str | None = None  # Supabase's lint number when the rule is one of its advisors' lints

    def finding(self, message: str, obj: str | None, remediation: str | None = None,
                fix_sql: str | None = None, location=None) -> Finding:
        file, line, column = (location.file, location.line, location.column) if location is not None else (None,) * 3
        return Finding.of_rule({  # in field order, as validation would store them
            "rule_id": self.id, "name": self.name, "level": self.level, "categories": list(self.categories),
            "message": message, "object": obj, "file": file, "line": line, "column": column,
            "remediation": remediation or self.fix, "fix_sql": fix_sql,
        })


RULES: dict[str, Rule] = {}


def rule(id: str, name: str | None = None, level: Level | None = None, categories: tuple[str, ...] | None = None,
         *, why: str, bad: str, summary: str | None = None, fix: str | None = None, target: Target = "schema",
         platform: str | None = None) -> Callable[[Callable[[Rule, Any], Iterator[Finding]]], Rule]:
    """Declare a rule; the decorated generator receives the rule and what it checks (see `Target`).

    A platform lint (`platform="0003"`) takes its name, level, categories, summary and remediation from
    `platform.LINTS`, the facts the catalogue queries report too; the rule adds only why and an example.
    """
    if platform is not None:
        lint = LINTS[platform]
        given = (name, level, categories, summary, fix)
        if any(v is not None for v in given):
            raise ValueError(f"rule {id}: lint {platform}'s identity and prose come from platform.LINTS")
        name, level, categories, summary, fix = (lint.name, lint.level, lint.categories, lint.description,
                                                 lint.remediation)
    if name is None or level is None or categories is None or summary is None or fix is None:
        raise ValueError(f"rule {id} needs a name, level, categories, summary and fix")

    def register(fn: Callable[[Rule, Any], Iterator[Finding]]) -> Rule:
        if id in RULES:
            raise ValueError(f"rule id {id} declared twice")
        r = Rule(id=id, name=name, level=level, categories=categories, summary=summary, why=why, bad=bad, fix=fix,
                 check=lambda subject: fn(RULES[id], subject), target=target, platform=platform)
        RULES[id] = r
        return r

    return register


def rules_for(target: Target) -> list[Rule]:
    return [r for r in RULES.values() if r.target == target]


def known_names() -> set[str]:
    """Every id and every name: what a suppression may refer to."""
    return {r.id for r in RULES.values()} | {r.name for r in RULES.values()}
