"""Findings as text (terminals), and as SARIF 2.1.0 (GitHub code scanning and other CI viewers)."""

from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import quote

from .findings import Finding, Level
from .registry import RULES

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVELS = {Level.ERROR: "error", Level.WARN: "warning", Level.INFO: "note"}


def counts(findings: list[Finding]) -> dict[str, int]:
    return {lvl.value: sum(1 for f in findings if f.level is lvl) for lvl in Level}


def summary_line(c: dict[str, int]) -> str:
    return f"{sum(c.values())} finding(s): {c['ERROR']} error(s), {c['WARN']} warning(s), {c['INFO']} info"


def text_report(findings: list[Finding], total: dict[str, int] | None = None) -> str:
    """`file:line:col: LEVEL id name object: message`, the remediation and fix indented below."""
    lines = []
    for f in findings:
        where = ":".join(str(x) for x in (f.file, f.line, f.column) if x is not None)
        lines.append(f"{where + ': ' if where else ''}{f.level.value} {f.rule_id} {f.name} {f.object or '-'}: "
                     f"{f.message}")
        lines.append(f"    fix: {f.remediation}")
        if f.fix_sql:
            lines += [f"    sql: {line}" for line in f.fix_sql.splitlines()]
    lines.append(summary_line(total or counts(findings)))
    return "\n".join(lines)


def _uri(file: str) -> tuple[str, str | None]:
    """A URI reference for an artifact: relative paths stay relative to the source root."""
    if PureWindowsPath(file).drive or file.startswith("/"):
        path = PurePosixPath(PureWindowsPath(file).as_posix())
        return "file://" + quote(str(path) if str(path).startswith("/") else "/" + str(path)), None
    return quote(PurePosixPath(PureWindowsPath(file).as_posix()).as_posix()), "%SRCROOT%"


def _rule_descriptor(rule_id: str) -> dict[str, Any]:
    r = RULES[rule_id]
    text = f"{r.summary}\n\nWhy: {r.why}\n\nBad:\n{r.bad}\n\nFix: {r.fix}"
    markdown = (f"{r.summary}\n\n**Why.** {r.why}\n\n**Bad**\n\n```sql\n{r.bad}\n```\n\n**Fix.** {r.fix}")
    out: dict[str, Any] = {
        "id": r.id, "name": r.name,
        "shortDescription": {"text": r.summary}, "fullDescription": {"text": r.why},
        "help": {"text": text, "markdown": markdown},
        "defaultConfiguration": {"level": SARIF_LEVELS[r.level]},
        "properties": {"tags": [c.lower() for c in r.categories]},
    }
    if r.platform:
        out["properties"]["supabaseLint"] = r.platform
    return out


def sarif_report(findings: list[Finding], version: str) -> dict[str, Any]:
    """One SARIF 2.1.0 run: every rule of the registry, one result per finding."""
    ids = sorted(RULES)
    index = {rule_id: i for i, rule_id in enumerate(ids)}
    results = []
    for f in findings:
        result: dict[str, Any] = {
            "ruleId": f.rule_id, "ruleIndex": index[f.rule_id], "level": SARIF_LEVELS[f.level],
            "message": {"text": f.message + (f" Fix: {f.remediation}" if f.remediation else "")},
        }
        if f.file:
            uri, base = _uri(f.file)
            artifact = {"uri": uri} | ({"uriBaseId": base} if base else {})
            result["locations"] = [{"physicalLocation": {
                "artifactLocation": artifact,
                "region": {"startLine": f.line or 1, "startColumn": f.column or 1},
            }}]
        if f.object:
            result["partialFingerprints"] = {"blueprintObject/v1": f"{f.rule_id}:{f.object}"}
        if f.fix_sql:
            result["properties"] = {"fixSql": f.fix_sql}
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA, "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "blueprint-mcp", "version": version,
                                "rules": [_rule_descriptor(i) for i in ids]}},
            "results": results,
        }],
    }
