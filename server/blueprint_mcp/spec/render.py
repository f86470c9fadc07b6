"""Render the blueprint spec (or any of its sections) from the model and the physical schema."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ..audit import audit_schema
from ..model import Blueprint, Capability, EventCategory, canonical_taxonomy, edge_functions
from ..model import edge
from ..model.meaning import command_grants, ungrantable
from ..model.privacy import EVENT_PII_KEYS, EVENT_PII_WORDS
from ..model.schema import Command, Schema
from ..model.words import describe_grants
from ..sql import render as sqlr
from ..sql.access import audit_branches
from ..sql.ident import qname
from .er import er_diagram

SectionName = Literal["tenancy", "core", "domain", "analytics", "rls", "edge_functions", "privacy",
                      "migrations", "checklist"]
SECTIONS: tuple[SectionName, ...] = ("tenancy", "core", "domain", "analytics", "rls", "edge_functions", "privacy",
                                     "migrations", "checklist")
TITLES = {
    "tenancy": "1. Tenancy Model", "core": "2. Core Schema (Auth & Tenancy)", "domain": "3. Domain Schema",
    "analytics": "4. Analytics Schema", "rls": "5. RLS Policies", "edge_functions": "6. Edge Functions + Triggers",
    "privacy": "7. Privacy & Personalization", "migrations": "8. Migrations", "checklist": "9. Security Checklist",
}
_TEMPLATES = Path(__file__).with_name("templates")


@cache
def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(_TEMPLATES)), undefined=StrictUndefined, autoescape=False,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["table_sql"] = lambda t: sqlr.table_block(t, t.foreign_keys)
    env.filters["policy_sql"] = lambda p, t: sqlr.policy_sql(t, p)
    env.filters["function_sql"] = sqlr.function_sql
    env.filters["cell"] = lambda v: "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")
    return env


def spec_template() -> str:
    """The blank spec template (the `blueprint://template` resource)."""
    return (_TEMPLATES / "blank.md").read_text(encoding="utf-8")


def render_spec(bp: Blueprint, schema: Schema, sections: list[SectionName] | None = None,
                migration_names: list[str] | None = None) -> str:
    """The spec document; with `sections`, only those sections (the whole header stays)."""
    chosen = [s for s in SECTIONS if s in (sections or SECTIONS)]
    findings = audit_schema(schema)
    ctx = {
        "bp": bp, "schema": schema, "sections": chosen, "titles": TITLES,
        "core": [t for t in schema.tables if t.section == "core"],
        "domain": [t for t in schema.tables if t.section == "domain"],
        "analytics": [t for t in schema.tables if t.section == "analytics"],
        "privacy_tables": [t for t in schema.tables if t.section == "privacy"],
        "edge_functions": edge_functions(bp),
        "log_event": {"pii_keys": EVENT_PII_KEYS, "pii_words": EVENT_PII_WORDS,
                      "bytes": edge.EVENT_PROPERTIES_BYTES, "depth": edge.EVENT_PROPERTIES_DEPTH,
                      # The link columns as markdown code ("" without any): who logs events besides members.
                      "links": ", ".join(f"`{c}`" for c in edge.link_columns(edge.event_links(bp))),
                      # The visible columns whose parent a linked caller must read (A29), as markdown code.
                      "parents": ", ".join(dict.fromkeys(f"`{x.table}.{x.visible}`" for x in edge.event_links(bp)
                                                         if x.parent)),
                      "user_agent": edge.SESSION_USER_AGENT},
        "events": bp.events(), "categories": canonical_taxonomy().categories, "EventCategory": EventCategory,
        "min_role": lambda cap: (bp.tenancy.min_role(Capability(cap)) or bp.tenancy.owner_role).name,
        # Roles a manager ranks at or above but may not give, as words ("" when there are none).
        "withheld": "; ".join(f"{g} never gives {' or '.join(roles)}" for g, roles in ungrantable(bp).items()),
        "helpers": [f for f in schema.functions if f.returns != "trigger"],
        "trigger_rows": _trigger_rows(schema),
        "access_rows": _access_rows(bp),
        "stamps": migration_names or ["<timestamp>", "<timestamp+1>", "<timestamp+2>"],
        "qname": qname, "findings": findings,
        "blocking": [f for f in findings if f.level.value in ("ERROR", "WARN")],
        "audited": {t: [c.name for c in (schema.table(t).columns if schema.table(t) else []) if c.pii]
                    for t in bp.privacy.audit_tables},
        "audit_readers": dict(audit_branches(bp)),
        "pii_columns": [(t.name, c.name) for t in schema.tables for c in t.columns if c.pii],
        "pii_keys": bp.pii_keys(),
        "er": er_diagram(schema),
    }
    return _env().get_template("spec.md.j2").render(**ctx)


def _access_rows(bp: Blueprint) -> list[tuple[str, str, str, str]]:
    """(table, scope, read, write) of every entity, write naming each command when they differ."""
    out = []
    for e in bp.entities:
        read = describe_grants(bp, e, command_grants(bp, e, Command.select))
        writes = {c.value: describe_grants(bp, e, command_grants(bp, e, c), c.value)
                  for c in (Command.insert, Command.update, Command.delete)}
        distinct = set(writes.values())
        write = distinct.pop() if len(distinct) == 1 else ". ".join(f"{c}: {w}" for c, w in writes.items())
        out.append((e.name, e.scope.value, read, write))
    return out


def _trigger_rows(schema: Schema) -> list[tuple[str, str, str, str]]:
    on = [(t.qualified, trg) for t in schema.tables for trg in t.triggers]
    on += [("auth.users", trg) for trg in schema.auth_triggers]
    return [(table, trg.name, f"{trg.timing} {' or '.join(trg.events)}"
             + (f" of {', '.join(trg.columns)}" if trg.columns else ""), trg.function) for table, trg in on]
