"""The verify report: table x actor x command with expected, actual and verdict, leaks first."""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..audit.findings import Finding
from .matrix import Case

VERDICT_ORDER = {"LEAK": 0, "blocked": 1, "error": 2, "ok": 3, "observed": 4, "not run": 5}


class CaseResult(BaseModel):
    model_config = ConfigDict(extra="forbid")
    table: str
    command: str
    actor: str
    org: str | None
    expected: str | None
    actual: str | None
    verdict: str
    attack: str | None = None
    sql: str


class VerifyReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str
    mode: Literal["blueprint", "generic"]
    target: str
    grant_mode: str
    ok: bool = Field(description="No leak, no wrongly blocked case, no error, no ERROR-level lint and, with a "
                                 "blueprint, no fixture that could not be built (without one, no table whose "
                                 "every fixture row was refused).")
    counts: dict[str, int] = Field(description="Cases per verdict.")
    leaks: int
    failures: list[CaseResult] = Field(description="Every case whose verdict is not ok/observed, leaks first.")
    attacks: list[CaseResult] = Field(default_factory=list, description="The targeted attacks and their outcome.")
    cases: list[CaseResult] = Field(default_factory=list, description="Every case (only when asked for).")
    lints: list[Finding] = Field(default_factory=list)
    fixture_failures: list[str] = Field(
        default_factory=list, description="Fixture rows PostgreSQL refused (their cases are not run); with a "
                                          "blueprint each one fails the verification.")
    notes: list[str] = Field(default_factory=list)
    markdown: str | None = None


def result(c: Case) -> CaseResult:
    return CaseResult(table=c.table, command=c.command, actor=c.actor, org=c.org, expected=c.expected,
                      actual=c.actual, verdict=c.verdict, attack=c.attack, sql=c.sql)


def ordered(cases: list[Case]) -> list[Case]:
    return sorted(cases, key=lambda c: (VERDICT_ORDER[c.verdict], c.table, c.command, c.actor, c.org or ""))


def build_report(source: str, mode, target: str, grant_mode: str, cases: list[Case], lints: list[Finding],
                 notes: list[str], include_cases: bool = False,
                 fixture_failures: list[str] | None = None, untested: list[str] | None = None) -> VerifyReport:
    counts = Counter(c.verdict for c in cases)
    failing = [c for c in ordered(cases) if c.verdict in ("LEAK", "blocked", "error")]
    errors = [f for f in lints if f.level.value == "ERROR"]
    fixture_failures = fixture_failures or []
    # A generated backend must accept every fixture (the rows its cases need would be missing); a user's own
    # schema may reject some, which is reported but not held against it, unless it rejected every row of a table:
    # then nothing about that table was tried, and a PASS would vouch for what was never tested.
    untested = untested or []
    broken_world = bool(fixture_failures) if mode == "blueprint" else bool(untested)
    if untested and mode != "blueprint":
        notes = [f"nothing was tried on {', '.join(untested)}: PostgreSQL refused every fixture row of "
                 f"{'it' if len(untested) == 1 else 'them'} (see the fixtures that could not be built; one cause: a trigger "
                 "that fills a NOT NULL column from auth.uid() fails when rows are written without a signed-in "
                 "user, as the service role and seed scripts write them)", *notes]
    report = VerifyReport(
        source=source, mode=mode, target=target, grant_mode=grant_mode,
        ok=not failing and not errors and not broken_world,
        counts=dict(sorted(counts.items(), key=lambda kv: VERDICT_ORDER[kv[0]])), leaks=counts.get("LEAK", 0),
        failures=[result(c) for c in failing], attacks=[result(c) for c in cases if c.attack],
        cases=[result(c) for c in ordered(cases)] if include_cases else [], lints=lints,
        fixture_failures=fixture_failures, notes=notes,
    )
    report.markdown = markdown(report)
    return report


def _cell(v: object) -> str:
    return "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")


def markdown(r: VerifyReport) -> str:
    lines = [f"# RLS verification: {r.source}", "",
             f"- mode: {r.mode} ({'expectations from the blueprint' if r.mode == 'blueprint' else 'generic tenant isolation'})",
             f"- target: {r.target}; grant mode: {r.grant_mode}",
             f"- result: {'PASS' if r.ok else 'FAIL'}; " + ", ".join(f"{k}: {v}" for k, v in r.counts.items()), ""]
    if r.failures:
        lines += ["## Failures (leaks first)", "", "| verdict | table | actor | command | org | expected | actual |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {f.verdict} | {_cell(f.table)} | {f.actor} | {_cell(f.attack or f.command)} | {_cell(f.org)} "
                  f"| {_cell(f.expected)} | {_cell(f.actual)} |" for f in r.failures]
        lines.append("")
    if r.attacks:
        lines += ["## Targeted attacks", "", "| attack | actor | outcome | verdict |", "|---|---|---|---|"]
        lines += [f"| {_cell(a.attack)} | {a.actor} | {_cell(a.actual)} | {a.verdict} |" for a in r.attacks]
        lines.append("")
    if r.lints:
        lines += ["## Catalogue lints", "", "| level | lint | object | message |", "|---|---|---|---|"]
        lines += [f"| {f.level.value} | {f.rule_id} {f.name} | {_cell(f.object)} | {_cell(f.message)} |" for f in r.lints]
        lines.append("")
    if r.fixture_failures:
        lines += ["## Fixtures that could not be built", ""] + [f"- {_cell(n)}" for n in r.fixture_failures] + [""]
    if r.notes:
        lines += ["## Notes", ""] + [f"- {_cell(n)}" for n in r.notes] + [""]
    return "\n".join(lines)
