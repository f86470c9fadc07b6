"""The four blueprint tools as plain functions: the MCP adapter and the CLI are thin shells over these."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .audit import Finding, Level, audit_spec_document, audit_sql, sort_findings
from .audit.sources import collect
from .files import Written, write_generated
from .model import (
    App,
    Blueprint,
    BlueprintError,
    InvalidBlueprint,
    Role,
    Tenancy,
    parse_blueprint,
)
from .model.base import suggest_slug
from .model.errors import choose, preview
from .model.limits import FILE_BYTES
from .model.meaning import command_grants
from .model.schema import Schema
from .spec.render import SECTIONS, SectionName, render_spec
from .sql.design import build_schema
from .sql.render import rls_sql, schema_sql, triggers_sql
from .templates import load_blueprint_file, load_template
from .verify.pgtap import pgtap_file
from .verify.report import VerifyReport

Include = Literal["blueprint", "summary", "sql", "markdown"]
SchemaSection = Literal["core", "domain", "analytics", "privacy"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


def resolve_blueprint(template: str | None = None, blueprint: Blueprint | dict[str, Any] | None = None) -> Blueprint:
    """Exactly one of a template name or a full blueprint."""
    if template and blueprint is not None:
        raise InvalidBlueprint([("template", "both a template and a blueprint were given.",
                                 "pass only one: a template name, or the blueprint carried from an earlier call")])
    if template:
        return load_template(template)
    if blueprint is not None:
        return parse_blueprint(blueprint, root="blueprint")
    raise InvalidBlueprint([("template", "no design given.",
                             "pass template (e.g. 'habit-tracker') or blueprint (see blueprint://schema)")])


# --- design_tenancy -------------------------------------------------------------------------------

class TableAccess(_Out):
    table: str
    scope: str
    tenant_key: str | None
    owner_column: str | None = None
    select: str
    insert: str
    update: str
    delete: str


class TenancyDesign(_Out):
    app: App
    tenancy: Tenancy
    capabilities: dict[str, list[str]] = Field(
        description="Capability -> the roles holding it, most privileged first (built-in and app-defined).")
    access: list[TableAccess] = Field(default_factory=list, description="Who may do what, per table.")
    blueprint: Blueprint | None = Field(None, description="Carry this into the next tool call.")
    markdown: str | None = None
    sql: str | None = Field(None, description="The core tenancy tables (profiles, organizations, memberships...).")


def design_tenancy(*, template: str | None = None, blueprint: Blueprint | dict | None = None,
                   app_name: str | None = None, app_description: str | None = None,
                   personal_workspaces: bool | None = None, team_organizations: bool | None = None,
                   roles: list[Role | dict] | None = None, capabilities: list[dict] | None = None,
                   include: list[Include] | None = None) -> TenancyDesign:
    """Tenancy model: from a template, a blueprint, or plain options (a chat starting from nothing)."""
    include = include or ["blueprint", "summary", "markdown"]
    if template or blueprint is not None:
        bp = resolve_blueprint(template, blueprint)
    elif app_name:
        bp = _from_options({"app": {"name": app_name, "slug": suggest_slug(app_name),
                                    "description": app_description or ""}})
    else:
        raise InvalidBlueprint([("app_name", "nothing to design from.",
                                 "pass app_name (and options), a template name, or a blueprint")])
    data = bp.model_dump(mode="json", exclude_unset=False)
    changes = {"personal_workspaces": personal_workspaces, "team_organizations": team_organizations,
               "roles": [r.model_dump(mode="json") if isinstance(r, Role) else r for r in roles] if roles else None,
               "capabilities": capabilities}
    data["tenancy"].update({k: v for k, v in changes.items() if v is not None})
    if app_description is not None and (template or blueprint is not None):
        data["app"]["description"] = app_description
    bp = _from_options(data, "blueprint" if blueprint is not None else "")
    schema = build_schema(bp)
    return TenancyDesign(
        app=bp.app, tenancy=bp.tenancy,
        capabilities={c: bp.tenancy.holders(c) for c in bp.tenancy.capability_names()},
        access=table_access(bp, schema) if "summary" in include else [],
        blueprint=bp if "blueprint" in include else None,
        markdown=render_spec(bp, schema, ["tenancy", "core"]) if "markdown" in include else None,
        sql=_core_sql(schema, bp) if "sql" in include else None,
    )


# design_tenancy's options land in these blueprint fields: errors there name the argument instead.
OPTION_FIELDS = (("app.name", "app_name"), ("app.slug", "app_name"), ("app.description", "app_description"),
                 ("tenancy.roles", "roles"), ("tenancy.capabilities", "capabilities"))


def _from_options(data: dict[str, Any], root: str = "") -> Blueprint:
    """The blueprint with design_tenancy's options applied; `root` prefixes paths that no option explains."""
    try:
        return parse_blueprint(data)
    except InvalidBlueprint as exc:
        raise InvalidBlueprint([(_option_path(path, root), msg, fix) for path, msg, fix in exc.problems]) from None


def _option_path(path: str, root: str) -> str:
    for field, argument in OPTION_FIELDS:
        if path == field or path.startswith((field + ".", field + "[")):
            return argument + path[len(field):]
    return f"{root}.{path}" if root else path


def table_access(bp: Blueprint, schema: Schema) -> list[TableAccess]:
    out = []
    for t in schema.tables:
        entity = bp.entity(t.name)
        if entity is not None:
            who = {cmd: describe_grants(bp, entity, command_grants(bp, entity, cmd))
                   for cmd in ("select", "insert", "update", "delete")}
        else:
            by_cmd = {str(getattr(p.command, "value", p.command)): p for p in t.policies}
            who = {cmd: (_describe(by_cmd[cmd].check if cmd == "insert" else by_cmd[cmd].using)
                         if cmd in by_cmd else "service role only") for cmd in ("select", "insert", "update", "delete")}
        out.append(TableAccess(table=t.name, scope=entity.scope.value if entity else t.section,
                               tenant_key=t.tenant_key, owner_column=entity.owner_column if entity else None, **who))
    return out


def describe_grants(bp: Blueprint, entity, grants: list) -> str:
    """A short human reading of a command's grants (from the model, not the SQL)."""
    if not grants:
        return "service role only"
    return "; or ".join(_describe_grant(bp, entity, g) for g in grants)


def _describe_grant(bp: Blueprint, entity, g) -> str:
    if g.public:
        who = "everyone (anon too)"
    elif g.signed_in:
        who = "every signed-in user"
    elif g.linked:
        who = "the user linked through " + " -> ".join(g.linked)
    elif g.min_role:
        who = f"{g.min_role}+"
    elif g.roles:
        who = " or ".join(g.roles)
    else:
        who = f"holders of {g.capability} ({', '.join(bp.tenancy.holders(g.capability))})"
    rows = []
    if g.own:
        rows.append(f"own rows ({entity.owner_column})")
    if g.assigned:
        rows.append(f"rows assigned to them ({g.assigned})")
    if g.where is not None:
        rows.append(f"where {g.where.column} in {g.where.values}")
    return who + (", " + ", ".join(rows) if rows else "")


def _describe(predicate: str | None) -> str:
    """A short human reading of a generated predicate (roles named by the helper calls)."""
    if predicate in (None, "true"):
        return "every signed-in user"
    roles = re.findall(r"organization_ids_with_role\('([a-z0-9_]+)'\)", predicate)
    own = re.findall(r"([a-z_]+) = \(select auth\.uid\(\)\)", predicate)
    parts = []
    if roles:
        parts.append(" or ".join(f"{r}+" for r in dict.fromkeys(roles)) + " of the organisation")
    if own:
        parts.append("own rows (" + ", ".join(dict.fromkeys(own)) + ")")
    return "; ".join(parts) or predicate


def _core_sql(schema: Schema, bp: Blueprint) -> str:
    core = schema.model_copy(update={"tables": [t for t in schema.tables if t.section == "core"], "views": []})
    return schema_sql(core, bp.app.slug)


# --- generate_schema ------------------------------------------------------------------------------

class TableSummary(_Out):
    name: str
    section: str
    tenant_key: str | None
    columns: list[str]
    indexes: list[str]
    foreign_keys: list[str]
    triggers: list[str]


class SchemaResult(_Out):
    tables: list[TableSummary] = Field(default_factory=list)
    sql: str | None = Field(None, description="Migration: tables, keys, indexes, RLS enabled, grants.")
    triggers_sql: str | None = Field(None, description="Migration: trigger functions and triggers.")
    markdown: str | None = None


def generate_schema(*, template: str | None = None, blueprint: Blueprint | dict | None = None,
                    sections: list[SchemaSection] | None = None,
                    include: list[Include] | None = None) -> SchemaResult:
    """Core, domain, analytics and privacy tables with indexes, triggers and grants."""
    include = include or ["summary", "sql"]
    bp = resolve_blueprint(template, blueprint)
    full = build_schema(bp)
    wanted = set(sections or ["core", "domain", "analytics", "privacy"])
    part = full.model_copy(update={
        "tables": [t for t in full.tables if t.section in wanted],
        "views": full.views if "analytics" in wanted else [],
    })
    spec_sections: list[SectionName] = [s for s in ("core", "domain", "analytics", "privacy") if s in wanted]
    return SchemaResult(
        tables=[_summary(t) for t in part.tables] if "summary" in include else [],
        sql=schema_sql(part, bp.app.slug) if "sql" in include else None,
        triggers_sql=triggers_sql(part, bp.app.slug) if "sql" in include else None,
        markdown=render_spec(bp, full, spec_sections) if "markdown" in include else None,
    )


def _summary(t) -> TableSummary:
    return TableSummary(
        name=t.name, section=t.section, tenant_key=t.tenant_key,
        columns=[f"{c.name} {c.type}{'' if c.nullable else ' not null'}" for c in t.columns],
        indexes=[f"{i.name} ({', '.join(i.columns)})" for i in t.indexes],
        foreign_keys=[f"({', '.join(fk.columns)}) -> {fk.ref_schema}.{fk.ref_table} ({', '.join(fk.ref_columns)})"
                      for fk in t.foreign_keys],
        triggers=[tr.name for tr in t.triggers],
    )


# --- generate_rls ---------------------------------------------------------------------------------

class PolicySummary(_Out):
    table: str
    name: str
    command: str
    roles: list[str]
    using: str | None
    check: str | None
    comment: str


class RlsResult(_Out):
    policies: list[PolicySummary] = Field(default_factory=list)
    helpers: list[str] = Field(default_factory=list, description="Private helper functions the policies call.")
    sql: str | None = Field(None, description="Migration: helpers, policies and served views.")
    markdown: str | None = None


def generate_rls(*, template: str | None = None, blueprint: Blueprint | dict | None = None,
                 tables: list[str] | None = None, include: list[Include] | None = None) -> RlsResult:
    """Policies and helper functions that isolate tenants and enforce roles."""
    include = include or ["summary", "sql"]
    bp = resolve_blueprint(template, blueprint)
    schema = build_schema(bp)
    if tables:
        known = [t.name for t in schema.tables]
        unknown = [(i, t) for i, t in enumerate(tables) if t not in known]
        if unknown:
            raise InvalidBlueprint([(f"tables[{i}]", f"{preview(t)} is not a table of this blueprint.",
                                     choose(t, known)) for i, t in unknown])
    chosen = [t for t in schema.tables if not tables or t.name in tables]
    part = schema.model_copy(update={"tables": chosen, "views": schema.views if not tables else []})
    return RlsResult(
        policies=[PolicySummary(table=t.name, name=p.name, command=str(p.command.value if hasattr(p.command, "value")
                                                                          else p.command),
                                roles=p.roles, using=p.using, check=p.check, comment=p.comment)
                  for t in chosen for p in t.policies] if "summary" in include else [],
        helpers=[f"{f.qualified}({f.args}) returns {f.returns}" for f in schema.functions
                 if f.returns != "trigger"],
        sql=rls_sql(part, bp.app.slug) if "sql" in include else None,
        markdown=render_spec(bp, schema, ["rls"]) if "markdown" in include else None,
    )


# --- audit_spec -----------------------------------------------------------------------------------

class AuditResult(_Out):
    ok: bool = Field(description="True when there is no ERROR or WARN finding.")
    counts: dict[str, int]
    findings: list[Finding]


def audit_spec(*, template: str | None = None, blueprint: Blueprint | dict | None = None, sql: str | None = None,
               spec: str | None = None, paths: list[str | Path] | None = None, max_findings: int = 200,
               max_bytes: int | None = FILE_BYTES, assume_platform: bool = False) -> AuditResult:
    """Lint Supabase SQL, migration folders, blueprints (through the SQL they render) and spec documents."""
    return summarize(audit_findings(template=template, blueprint=blueprint, sql=sql, spec=spec, paths=paths,
                                    max_bytes=max_bytes, assume_platform=assume_platform), max_findings)


def audit_findings(*, template: str | None = None, blueprint: Blueprint | dict | None = None, sql: str | None = None,
                   spec: str | None = None, paths: list[str | Path] | None = None,
                   max_bytes: int | None = FILE_BYTES, assume_platform: bool = False) -> list[Finding]:
    """Every finding, most severe first. `sql` is applied after the SQL files of `paths` (one history).
    `assume_platform`: the SQL runs on a Supabase project, where pg_graphql is installed."""
    if template is None and blueprint is None and sql is None and spec is None and not paths:
        raise InvalidBlueprint([("template", "nothing to audit.",
                                 "pass template, blueprint, sql (SQL text), spec (markdown) or paths")])
    findings: list[Finding] = []
    if template or blueprint is not None:
        bp = resolve_blueprint(template, blueprint)
        findings += audit_sql(blueprint_sql(bp, template or bp.app.slug), assume_platform)
    sources = collect([Path(p) for p in paths or []], max_bytes)
    for path in sources.blueprints:
        findings += audit_sql(blueprint_sql(load_blueprint_file(path), str(path)), assume_platform)
    history = sources.sql + ([("input.sql", sql)] if sql is not None else [])
    if history:
        findings += audit_sql(history, assume_platform)
    for name, text in sources.specs + ([("input.md", spec)] if spec is not None else []):
        findings += audit_spec_document(text, name)
    return sort_findings(findings)


def blueprint_sql(bp: Blueprint, label: str) -> list[tuple[str, str]]:
    """The three migrations a blueprint renders, named under `label`: the audit reads the artefacts back."""
    schema, slug = build_schema(bp), bp.app.slug
    return [(f"{label}/initial_schema.sql", schema_sql(schema, slug)),
            (f"{label}/rls_policies.sql", rls_sql(schema, slug)),
            (f"{label}/triggers.sql", triggers_sql(schema, slug))]


def summarize(findings: list[Finding], max_findings: int = 200) -> AuditResult:
    counts = {lvl.value: sum(1 for f in findings if f.level is lvl) for lvl in Level}
    ok = counts["ERROR"] == 0 and counts["WARN"] == 0
    return AuditResult(ok=ok, counts=counts, findings=findings[:max_findings])


# --- spec and files -------------------------------------------------------------------------------

def spec_markdown(bp: Blueprint, sections: list[SectionName] | None = None) -> str:
    return render_spec(bp, build_schema(bp), sections or list(SECTIONS))


def migration_files(bp: Blueprint, timestamp: datetime | None = None) -> dict[str, str]:
    """Relative path -> content of every file `render` writes (timestamps one second apart)."""
    ts = (timestamp or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    schema = build_schema(bp)
    stamp = [(ts + timedelta(seconds=i)).strftime("%Y%m%d%H%M%S") for i in range(3)]
    slug = bp.app.slug
    return {
        f"docs/engineering/SUPABASE-{slug}.md": render_spec(bp, schema, list(SECTIONS), migration_names=stamp),
        f"supabase/migrations/{stamp[0]}_initial_schema.sql": schema_sql(schema, slug),
        f"supabase/migrations/{stamp[1]}_rls_policies.sql": rls_sql(schema, slug),
        f"supabase/migrations/{stamp[2]}_triggers.sql": triggers_sql(schema, slug),
        f"supabase/tests/database/{slug}_rls.test.sql": pgtap_file(bp),
    }


def write_files(files: dict[str, str], out_dir: str | Path, force: bool = False) -> Written:
    """Write render's files under out_dir, replacing exactly what an earlier render generated (files.py)."""
    return write_generated(files, out_dir, force=force)


# --- verify_rls -----------------------------------------------------------------------------------

def verify_rls(*, template: str | None = None, blueprint: Blueprint | dict | None = None, sql: str | None = None,
               path: str | Path | None = None, database_url: str | None = None, allow_remote: bool = False,
               grant_mode: Literal["legacy", "explicit"] = "legacy", include_cases: bool = False,
               progress: Any = None, engine: Literal["auto", "system", "embedded"] | None = None) -> "VerifyReport":
    """Apply the migrations to a real PostgreSQL, attack them, roll everything back, report.

    A template or blueprint judges every table x command x actor against the design; with a
    blueprint *and* sql, the given SQL is judged against the blueprint. SQL or a path alone runs
    the generic matrix (no cross-organisation access, read-only roles write nothing, anon nothing).
    """
    from .verify.run import blueprint_migrations, migrations_from_path, verify

    sources = [x for x in (template, blueprint, path) if x is not None]
    if len(sources) > 1 or (sql is not None and path is not None):
        raise InvalidBlueprint([("source", "more than one design or SQL source was given.",
                                 "pass one of template, blueprint or path (sql may accompany a blueprint)")])
    bp: Blueprint | None = None
    if template or blueprint is not None:
        bp = resolve_blueprint(template, blueprint)
    elif path is not None and Path(path).suffix in (".yaml", ".yml", ".json"):
        from .templates import load_blueprint_file

        bp = load_blueprint_file(path)
    if sql is not None:
        migrations, source = [sql], (bp.app.slug + " (given SQL)" if bp else "SQL")
    elif bp is not None:
        migrations, source = blueprint_migrations(bp), bp.app.slug
    elif path is not None:
        migrations, source = migrations_from_path(path), str(path)
    else:
        raise InvalidBlueprint([("source", "nothing to verify.",
                                 "pass template, blueprint, sql, or a path to migrations")])
    return verify(source=source, migrations=migrations, blueprint=bp, database_url=database_url,
                  allow_remote=allow_remote, grant_mode=grant_mode, include_cases=include_cases, progress=progress,
                  engine=engine)


__all__ = [
    "AuditResult", "BlueprintError", "RlsResult", "SchemaResult", "TenancyDesign", "audit_findings", "audit_spec",
    "blueprint_sql",
    "design_tenancy", "generate_rls", "generate_schema", "migration_files", "resolve_blueprint",
    "spec_markdown", "verify_rls", "write_files",
]
