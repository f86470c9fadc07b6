"""The blueprint tools as plain functions: the MCP adapter and the CLI are thin shells over these.

Answers are built for a model's context: counts, a page of each list, links to large artefacts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from . import artefacts
from .analytics import analytics_files
from .artefacts import Artefact, Link
from .audit import Finding, Level, audit_spec_document, audit_sql, sort_findings
from .audit.sources import BLUEPRINT_SUFFIXES, collect
from .files import Written, write_generated
from .model import Blueprint, BlueprintError, InvalidBlueprint, Role, parse_blueprint
from .model.base import suggest_slug
from .model.errors import choose, clip, preview
from .model.limits import FILE_BYTES
from .model.meaning import command_grants, remembered_grants, restore_grants, stamped_references
from .model.names import verb_name
from .model.words import describe_grants
from .model.schema import Schema
from .pages import page
from .project import config_toml, database_types, function_files
from .seed import seed_sql
from .spec.er import er_diagram
from .spec.render import SECTIONS, SectionName, render_spec
from .sql.design import build_schema
from .sql.render import rls_sql, schema_sql, triggers_sql
from .templates import load_blueprint_file, load_template
from .verify.pgtap import pgtap_file
from .verify.report import CaseResult, VerifyReport

Include = Literal["blueprint", "summary", "sql", "markdown"]
SchemaSection = Literal["core", "domain", "analytics", "privacy"]


# An answer stays small: lists come in pages (pages.py), artefacts as links; embedding one is asked for
# with include, and an embedded artefact larger than this is left as a link.
EMBED_BYTES = 56_000
BLUEPRINT_INLINE_BYTES = 24_000
CAPABILITY_MAP_BYTES = 12_000  # design_tenancy's capability -> roles map
# Unasked (include omitted), design_tenancy inlines a blueprint only this large, so its default answer stays
# under 8 KB (tests/test_budget.py); a larger one (a full template) is a link, or inlined when asked for.
DEFAULT_INLINE_BYTES = 4_500
DESCRIPTION_CHARS = 200  # a description read back in a summary (the blueprint carries it whole)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class Answer:
    """A tool's structured result, a short human summary for the text block and the artefacts to embed."""

    result: BaseModel
    text: str
    embeds: list[Artefact] = field(default_factory=list)


def _links(design: str, loaded: tuple[Blueprint, Schema], wanted: list[tuple[str, str, list[str] | None]],
           include: list[str], embed_when: dict[str, str]) -> tuple[list[Link], list[Artefact], list[str]]:
    """Links to a design's artefacts; those whose include value was asked for are embedded too (when small)."""
    links, embeds, notes = [], [], []
    for name, label, only in wanted:
        if name in artefacts.UNSIZED and embed_when.get(name) not in include:
            links.append(artefacts.unsized_link(design, name, label))
            continue
        art = artefacts.design_artefact(design, name, ",".join(only) if only else None, loaded)
        links.append(artefacts.link(art, label))
        if embed_when.get(name) in include:
            size = len(art.text.encode())
            if size + sum(len(e.text.encode()) for e in embeds) <= EMBED_BYTES:
                embeds.append(art)
            else:
                notes.append(f"{art.uri} is {size:,} bytes, too large to embed: read the resource")
    return links, embeds, notes


def _include(include: list[str] | None, default: list[str]) -> list[str]:
    """None means the tool's default; an empty list means nothing beyond the counts and links."""
    return list(default) if include is None else list(include)


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


class AppSummary(_Out):
    name: str
    slug: str
    description: str = Field(description=f"At most {DESCRIPTION_CHARS} characters (whole in the blueprint).")


class TenancySummary(_Out):
    personal_workspaces: bool
    team_organizations: bool
    roles: list[str] = Field(description="Most privileged first.")


class TenancyDesign(_Out):
    design: str
    app: AppSummary
    tenancy: TenancySummary
    capabilities: dict[str, list[str]] = Field(description="Capability -> the roles holding it.")
    tables: int
    access: list[TableAccess] = Field(default_factory=list, description="Who may do what, per table.")
    next_cursor: str | None = None
    blueprint: dict[str, Any] | None = Field(None, description="Carry this into the next tool call.")
    resources: list[Link]
    notes: list[str] = Field(default_factory=list)


def design_tenancy(*, template: str | None = None, blueprint: Blueprint | dict | None = None,
                   app_name: str | None = None, app_description: str | None = None,
                   personal_workspaces: bool | None = None, team_organizations: bool | None = None,
                   roles: list[Role | dict] | None = None, capabilities: list[dict] | None = None,
                   include: list[Include] | None = None, cursor: str | None = None) -> Answer:
    """Tenancy model: from a template, a blueprint, or plain options (a chat starting from nothing).

    By default a blueprint the caller passed is not echoed back unless an option changed it.
    """
    include_default = include is None
    include = _include(include, ["blueprint", "summary"])
    unchanged = template and blueprint is None and all(
        v is None for v in (app_name, app_description, personal_workspaces, team_organizations, roles, capabilities))
    given = None
    if template or blueprint is not None:
        bp = given = resolve_blueprint(template, blueprint)
    elif app_name:
        bp = _from_options({"app": {"name": app_name, "slug": suggest_slug(app_name),
                                    "description": app_description or ""}})
    else:
        raise InvalidBlueprint([("app_name", "nothing to design from.",
                                 "pass app_name (and options), a template name, or a blueprint")])
    options = (app_name, app_description, personal_workspaces, team_organizations, roles, capabilities)
    # With no option to apply, the resolved blueprint is the design: validating its dump again would cost as much
    # as the first parse (a third of this call on a large blueprint).
    if given is None or any(v is not None for v in options):
        bp = _with_options(bp, given is not None, blueprint is not None, app_name, app_description,
                           {"personal_workspaces": personal_workspaces, "team_organizations": team_organizations,
                            "roles": [r.model_dump(mode="json") if isinstance(r, Role) else r for r in roles]
                            if roles else None, "capabilities": capabilities})
    # build_schema, the spec and the access table ask for the same commands' grants: each worked out once
    with remembered_grants():
        schema = build_schema(bp)
        design = artefacts.design_id(bp, template if unchanged else None)
        links, embeds, notes = _links(design, (bp, schema), [("blueprint.json", "blueprint", None),
                                               ("spec.md", "spec: tenancy and core", ["tenancy", "core"]),
                                               ("schema.sql", "core tables migration", ["core"])],
                                      include, {"spec.md": "markdown", "schema.sql": "sql"})
        access, cursor_out = (page(table_access(bp, schema), cursor, "access") if "summary" in include
                              else ([], None))
    carried = None
    if "blueprint" in include and blueprint is not None and given == bp and include_default:
        notes.append("the blueprint is unchanged: carry yours forward")
    elif "blueprint" in include:
        carried = artefacts.compact_blueprint(bp)
        size = len(json.dumps(carried, separators=(",", ":")))
        if size > (DEFAULT_INLINE_BYTES if include_default else BLUEPRINT_INLINE_BYTES):
            carried = None
            ask = ' (or include: ["blueprint"])' if include_default and size <= BLUEPRINT_INLINE_BYTES else ""
            notes.append(f"the blueprint is {size:,} bytes, too large to inline: read {links[0].uri}{ask}")
    result = TenancyDesign(
        design=design,
        app=AppSummary(name=bp.app.name, slug=bp.app.slug, description=clip(bp.app.description, DESCRIPTION_CHARS)),
        tenancy=TenancySummary(personal_workspaces=bp.tenancy.personal_workspaces,
                               team_organizations=bp.tenancy.team_organizations,
                               roles=[r.name for r in bp.tenancy.roles]),
        capabilities=_capability_map(bp, notes),
        tables=len(schema.tables), access=access, next_cursor=cursor_out, blueprint=carried,
        resources=links, notes=notes)
    text = (f"{bp.app.name} ({design}): roles {', '.join(result.tenancy.roles)}; {len(schema.tables)} tables; "
            f"personal workspaces {'on' if bp.tenancy.personal_workspaces else 'off'}, team organisations "
            f"{'on' if bp.tenancy.team_organizations else 'off'}." + _more(cursor_out, "access") + _notes(notes))
    return Answer(result=result, embeds=embeds, text=text)


def _capability_map(bp: Blueprint, notes: list[str]) -> dict[str, list[str]]:
    """Capability -> the roles holding it, while it stays within CAPABILITY_MAP_BYTES (20 roles and 50 capabilities
    of 63-byte names would be 68 KB); the rest are named in a note, and blueprint.json has every role's."""
    out: dict[str, list[str]] = {}
    size = 2
    names = bp.tenancy.capability_names()
    for i, c in enumerate(names):
        entry = {c: bp.tenancy.holders(c)}
        size += len(json.dumps(entry, separators=(",", ":"))) - 1
        if size > CAPABILITY_MAP_BYTES:
            notes.append(f"{len(names) - i} more capabilities ({clip(', '.join(names[i:]), 200)}): each role's are "
                         "in blueprint.json (tenancy.roles)")
            break
        out.update(entry)
    return out


def _with_options(bp: Blueprint, resolved: bool, passed: bool, app_name: str | None, app_description: str | None,
                  changes: dict[str, Any]) -> Blueprint:
    """`bp` with design_tenancy's options applied, validated again (errors name the option)."""
    data = bp.model_dump(mode="json", exclude_unset=False)
    data["tenancy"].update({k: v for k, v in changes.items() if v is not None})
    if resolved:
        # A rename carries the slug along: it names the spec and the test files, and should match the app.
        if app_name is not None:
            data["app"].update(name=app_name, slug=suggest_slug(app_name))
        if app_description is not None:
            data["app"]["description"] = app_description
    return _from_options(data, "blueprint" if passed else "")


def _more(cursor: str | None, what: str) -> str:
    return f" More {what}: call again with cursor={cursor}." if cursor else ""


def _stamped_note(bp: Blueprint, tables: set[str], shown: int = 5) -> list[str]:
    """The references clients set on insert only because their rows hold server_set fields (L13): a client's
    update moving such a row is refused at run time, which surprises an author who never asked for it."""
    cols = [f"{e}.{c}" for e, refs in stamped_references(bp).items() if e in tables for c in sorted(refs)]
    if not cols:
        return []
    more = f" and {len(cols) - shown} more" if len(cols) > shown else ""
    return [f"clients set {', '.join(cols[:shown])}{more} on insert only: the rows hold server_set fields, stamped "
            "for the parent they name (docs/lifecycle.md L13); `movable: true` on a reference lets clients move rows"]


def _notes(notes: list[str]) -> str:
    return "".join(f" Note: {n}." for n in notes)


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
        if t.schema_name != "public":
            continue  # outside the API (private.invitation_tokens): only definer functions reach it
        entity = bp.entity(t.name)
        if entity is not None:
            who = {cmd: describe_grants(bp, entity, command_grants(bp, entity, cmd), cmd)
                   for cmd in ("select", "insert", "update", "delete")}
            if entity.soft_delete and entity.client_writable and command_grants(bp, entity, "delete"):
                who["delete"] += (f" (archives the row; {verb_name('restore', entity.singular)}(): "
                                  f"{describe_grants(bp, entity, restore_grants(bp, entity))})")
        else:
            by_cmd = {str(getattr(p.command, "value", p.command)): p for p in t.policies}
            who = {cmd: (_describe(by_cmd[cmd].check if cmd == "insert" else by_cmd[cmd].using)
                         if cmd in by_cmd else "service role only") for cmd in ("select", "insert", "update", "delete")}
        out.append(TableAccess(table=t.name, scope=entity.scope.value if entity else t.section,
                               tenant_key=t.tenant_key, owner_column=entity.owner_column if entity else None, **who))
    return out


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
    design: str
    counts: dict[str, int]
    tables: list[TableSummary] = Field(default_factory=list)
    next_cursor: str | None = None
    resources: list[Link]
    notes: list[str] = Field(default_factory=list)


def generate_schema(*, template: str | None = None, blueprint: Blueprint | dict | None = None,
                    sections: list[SchemaSection] | None = None,
                    include: list[Include] | None = None, cursor: str | None = None) -> Answer:
    """Core, domain, analytics and privacy tables with indexes, triggers and grants."""
    include = _include(include, ["summary"])
    bp = resolve_blueprint(template, blueprint)
    full = build_schema(bp)
    chosen = [s for s in ("core", "domain", "analytics", "privacy") if s in (sections or ["core", "domain",
                                                                                          "analytics", "privacy"])]
    only = chosen if sections and len(chosen) < 4 else None
    tables = [t for t in full.tables if t.section in chosen]
    design = artefacts.design_id(bp, template)
    links, embeds, notes = _links(design, (bp, full), [("schema.sql", "schema migration", only),
                                           ("triggers.sql", "triggers migration", only),
                                           ("spec.md", "spec: tables", chosen),
                                           ("er.mmd", "ER diagram (Mermaid)", None)],
                                  include, {"schema.sql": "sql", "triggers.sql": "sql", "spec.md": "markdown",
                                            "er.mmd": "markdown"})
    if bp.analytics.enabled and "analytics" in chosen:  # the pack; other engines through ?dialect=
        pack = artefacts.analytics_artefact(design, None, bp)
        links.append(artefacts.link(pack, "analytics queries (?dialect=duckdb|clickhouse|bigquery)"))
    counts = {s: sum(1 for t in tables if t.section == s) for s in chosen}
    counts |= {"indexes": sum(len(t.indexes) for t in tables), "foreign_keys": sum(len(t.foreign_keys) for t in tables),
               "triggers": sum(len(t.triggers) for t in tables)}
    summaries, cursor_out = page([_summary(t) for t in tables], cursor, "tables") if "summary" in include \
        else ([], None)
    notes += _stamped_note(bp, {t.name for t in tables})
    result = SchemaResult(design=design, counts=counts, tables=summaries, next_cursor=cursor_out, resources=links,
                          notes=notes)
    text = (f"{bp.app.name} ({design}): {len(tables)} tables (" + ", ".join(f"{k} {v}" for k, v in counts.items())
            + f"); the migrations are {links[0].uri} and {links[1].uri}." + _more(cursor_out, "tables")
            + _notes(notes))
    return Answer(result=result, embeds=embeds, text=text)


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
    design: str
    counts: dict[str, int]
    policies: list[PolicySummary] = Field(default_factory=list)
    next_cursor: str | None = None
    helpers: list[str] = Field(default_factory=list)
    resources: list[Link]
    notes: list[str] = Field(default_factory=list)


def generate_rls(*, template: str | None = None, blueprint: Blueprint | dict | None = None,
                 tables: list[str] | None = None, include: list[Include] | None = None,
                 cursor: str | None = None) -> Answer:
    """Policies and helper functions that isolate tenants and enforce roles."""
    include = _include(include, ["summary"])
    bp = resolve_blueprint(template, blueprint)
    schema = build_schema(bp)
    if tables:
        known = [t.name for t in schema.tables]
        unknown = [(i, t) for i, t in enumerate(tables) if t not in known]
        if unknown:
            raise InvalidBlueprint([(f"tables[{i}]", f"{preview(t)} is not a table of this blueprint.",
                                     choose(t, known)) for i, t in unknown])
    chosen = [t for t in schema.tables if not tables or t.name in tables]
    design = artefacts.design_id(bp, template)
    only = [t.name for t in chosen] if tables else None
    links, embeds, notes = _links(design, (bp, schema), [("rls.sql", "policies migration", only),
                                                         ("spec.md", "spec: row level security", ["rls"]),
                                                         ("pgtap.sql", "pgTAP attack matrix", None)],
                                  include, {"rls.sql": "sql", "spec.md": "markdown"})
    policies = [PolicySummary(table=t.name, name=p.name, command=str(getattr(p.command, "value", p.command)),
                              roles=p.roles, using=p.using, check=p.check, comment=p.comment)
                for t in chosen for p in t.policies]
    counts = {"tables": len(chosen)} | {cmd: sum(1 for p in policies if p.command == cmd)
                                        for cmd in ("select", "insert", "update", "delete")}
    shown, cursor_out = page(policies, cursor, "policies") if "summary" in include else ([], None)
    result = RlsResult(design=design, counts=counts, policies=shown, next_cursor=cursor_out,
                       helpers=[f"{f.qualified}({f.args}) returns {f.returns}" for f in schema.functions
                                if f.returns != "trigger"] if "summary" in include else [],
                       resources=links, notes=notes)
    text = (f"{bp.app.name} ({design}): {len(policies)} policies on {len(chosen)} "
            f"table{'s' if len(chosen) != 1 else ''}, every one to "
            f"authenticated; the migration is {links[0].uri}." + _more(cursor_out, "policies") + _notes(notes))
    return Answer(result=result, embeds=embeds, text=text)


# --- audit_spec -----------------------------------------------------------------------------------

class AuditResult(_Out):
    ok: bool = Field(description="True when there is no ERROR or WARN finding.")
    counts: dict[str, int]
    findings: list[Finding] = Field(description="Most severe first (a page of them).")
    next_cursor: str | None = None


def audit_spec(*, template: str | None = None, blueprint: Blueprint | dict | None = None, sql: str | None = None,
               spec: str | None = None, paths: list[str | Path] | None = None, max_findings: int = 200,
               max_bytes: int | None = FILE_BYTES, cursor: str | None = None,
               assume_platform: bool = False, within: list[Path] | None = None) -> AuditResult:
    """Lint Supabase SQL, migration folders, blueprints (through the SQL they render) and spec documents.

    The first `max_findings` findings are returned a page at a time (next_cursor continues). `within`: the
    client's workspace roots, which every file read must stay inside (links followed).
    """
    full = summarize(audit_findings(template=template, blueprint=blueprint, sql=sql, spec=spec, paths=paths,
                                    max_bytes=max_bytes, assume_platform=assume_platform, within=within),
                     max_findings)
    shown, next_cursor = page(full.findings, cursor, "findings")
    return full.model_copy(update={"findings": shown, "next_cursor": next_cursor})


def audit_text(result: AuditResult) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in result.counts.items())
    return (f"{'clean' if result.ok else 'not clean'}: {counts}; {len(result.findings)} finding(s) in this answer."
            + _more(result.next_cursor, "findings"))


def audit_findings(*, template: str | None = None, blueprint: Blueprint | dict | None = None, sql: str | None = None,
                   spec: str | None = None, paths: list[str | Path] | None = None,
                   max_bytes: int | None = FILE_BYTES, assume_platform: bool = False,
                   within: list[Path] | None = None) -> list[Finding]:
    """Every finding, most severe first. `sql` is applied after the SQL files of `paths` (one history).
    `assume_platform`: the SQL runs on a Supabase project, where pg_graphql is installed."""
    if template is None and blueprint is None and sql is None and spec is None and not paths:
        raise InvalidBlueprint([("template", "nothing to audit.",
                                 "pass template, blueprint, sql (SQL text), spec (markdown) or paths")])
    parts: list[list[Finding]] = []  # each sorted already
    if template or blueprint is not None:
        bp = resolve_blueprint(template, blueprint)
        parts.append(audit_sql(blueprint_sql(bp, template or bp.app.slug), assume_platform))
    sources = collect([Path(p) for p in paths or []], max_bytes, within)
    for path in sources.blueprints:
        parts.append(audit_sql(blueprint_sql(load_blueprint_file(path), str(path)), assume_platform))
    history = sources.sql + ([("input.sql", sql)] if sql is not None else [])
    if history or sources.skipped:
        parts.append(audit_sql(history, assume_platform, exposed=sources.exposed, skipped=sources.skipped))
    for name, text in sources.specs + ([("input.md", spec)] if spec is not None else []):
        parts.append(audit_spec_document(text, name))
    return parts[0] if len(parts) == 1 else sort_findings([f for part in parts for f in part])


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


def _stamp_base(timestamp: datetime | None) -> datetime:
    return (timestamp or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)


def _stamps(timestamp: datetime | None, stamps: list[str] | None) -> list[str]:
    """The migrations' stamps: given (a re-render keeps the names it recorded), else one second apart."""
    if stamps:
        return list(stamps)
    ts = _stamp_base(timestamp)
    return [artefacts.stamp_of(ts + timedelta(seconds=i)) for i in range(artefacts.MIGRATIONS)]


def migrations(bp: Blueprint, timestamp: datetime | None = None, schema: Schema | None = None,
               stamps: list[str] | None = None) -> dict[str, str]:
    """Relative path -> content of the migrations alone, as `migration_files` names them: what `supabase db reset`
    applies, without the tests, seed and documents (the pgTAP file alone runs the whole attack-matrix plan)."""
    stamp = _stamps(timestamp, stamps)
    schema = schema or build_schema(bp)
    slug = bp.app.slug
    return {f"supabase/migrations/{stamp[0]}_initial_schema.sql": schema_sql(schema, slug),
            f"supabase/migrations/{stamp[1]}_rls_policies.sql": rls_sql(schema, slug),
            f"supabase/migrations/{stamp[2]}_triggers.sql": triggers_sql(schema, slug)}


def migration_files(bp: Blueprint, timestamp: datetime | None = None,
                    stamps: list[str] | None = None) -> dict[str, str]:
    """Relative path -> content of every file `render` writes (timestamps one second apart, or `stamps`)."""
    stamp = _stamps(timestamp, stamps)
    schema = build_schema(bp)
    slug = bp.app.slug
    return {
        f"docs/engineering/SUPABASE-{slug}.md": render_spec(bp, schema, list(SECTIONS), migration_names=stamp),
        **migrations(bp, schema=schema, stamps=stamp),
        f"supabase/tests/database/{slug}_rls.test.sql": pgtap_file(bp),
        "supabase/seed.sql": seed_sql(bp, schema),
        f"docs/engineering/ER-{slug}.mmd": er_diagram(schema),
        "supabase/types/database.types.ts": database_types(schema),
        "supabase/config.toml": config_toml(bp),
    } | function_files(bp) | analytics_files(bp)


# --- scaffold_project -----------------------------------------------------------------------------

ScaffoldInclude = Literal["summary", "files"]


class ProjectFile(_Out):
    path: str
    uri: str
    mime_type: str
    size: int


class ScaffoldResult(_Out):
    design: str
    timestamp: str
    counts: dict[str, int]
    files: list[ProjectFile] = Field(default_factory=list)
    next_cursor: str | None = None
    notes: list[str] = Field(default_factory=list)


def _file_kind(path: str) -> str:
    parts = path.split("/")
    if parts[:2] == ["supabase", "migrations"]:
        return "migrations"
    if parts[:2] == ["supabase", "functions"]:
        return "functions"
    if parts[:2] == ["supabase", "tests"]:
        return "tests"
    if parts[:2] == ["supabase", "analytics"]:
        return "analytics"
    return "docs" if parts[0] == "docs" else "other"


def scaffold_project(*, template: str | None = None, blueprint: Blueprint | dict | None = None,
                     timestamp: str | None = None, include: list[ScaffoldInclude] | None = None,
                     cursor: str | None = None) -> Answer:
    """Every file `render` writes, each a resource to write at its path under the project root."""
    include = _include(include, ["summary"])
    bp = resolve_blueprint(template, blueprint)
    stamp = timestamp if timestamp is not None else artefacts.stamp_of(datetime.now(timezone.utc))
    files = artefacts.project_files(bp, stamp)
    design = artefacts.design_id(bp, template)
    entries = [ProjectFile(path=path, uri=artefacts.project_uri(design, stamp, path),
                           mime_type=artefacts.file_mime(path), size=len(text.encode()))
               for path, text in files.items()]
    counts = {"files": len(entries), "bytes": sum(e.size for e in entries)}
    for e in entries:
        kind = _file_kind(e.path)
        counts[kind] = counts.get(kind, 0) + 1
    shown, cursor_out = page(entries, cursor, "files") if include else ([], None)
    embeds, notes = [], []
    for e in shown:
        if "files" in include and e.size + sum(len(a.text.encode()) for a in embeds) <= EMBED_BYTES:
            embeds.append(Artefact(e.uri, e.mime_type, files[e.path]))
        elif e.size > artefacts.PART_BYTES:  # larger than one read answers: its parts, joined, are the file
            count = len(artefacts.split_parts(files[e.path]))
            notes.append(f"{e.path} is {e.size:,} bytes, read in {count} parts: {artefacts.part_uri(e.uri, 1)} to "
                         f"{artefacts.part_uri(e.uri, count)}, joined in order")
        elif "files" in include:
            notes.append(f"{e.path} is {e.size:,} bytes, too large to embed: read {e.uri}")
    if "summary" not in include:
        shown = []
    result = ScaffoldResult(design=design, timestamp=stamp, counts=counts, files=shown, next_cursor=cursor_out,
                            notes=notes)
    text = (f"{bp.app.name} ({design}): {len(entries)} files, {counts['bytes']:,} bytes, migrations stamped from "
            f"{stamp}. Write each file at its path under the project root (read its uri). Or run "
            "`blueprint-mcp render <blueprint file> --out <dir>`." + _more(cursor_out, "files") + _notes(notes))
    return Answer(result=result, embeds=embeds, text=text)


def write_files(files: dict[str, str], out_dir: str | Path, force: bool = False) -> Written:
    """Write render's files under out_dir, replacing exactly what an earlier render generated (files.py)."""
    return write_generated(files, out_dir, force=force)


# --- verify_rls -----------------------------------------------------------------------------------

def verify_rls(*, template: str | None = None, blueprint: Blueprint | dict | None = None, sql: str | None = None,
               path: str | Path | None = None, database_url: str | None = None, allow_remote: bool = False,
               grant_mode: Literal["legacy", "explicit"] = "legacy", include_cases: bool = False,
               progress: Any = None, engine: Literal["auto", "system", "embedded"] | None = None,
               stop: Any = None) -> "VerifyReport":
    """Apply the migrations to a real PostgreSQL, attack them, roll everything back, report.

    A template or blueprint judges every table x command x actor against the design; with a
    blueprint *and* sql (or a path to migrations), that SQL is judged against the blueprint: a rendered
    project, edited or not. SQL or a path alone runs the generic matrix (no cross-organisation access,
    read-only roles write nothing, anon nothing).
    """
    from .verify.run import blueprint_migrations, migrations_from_path, verify

    designs = [x for x in (template, blueprint) if x is not None]
    design_file = path is not None and Path(path).suffix in BLUEPRINT_SUFFIXES
    if len(designs) > 1 or (designs and design_file) or (sql is not None and path is not None):
        raise InvalidBlueprint([("source", "more than one design or SQL source was given.",
                                 "pass one of template, blueprint or a blueprint file, and at most one of sql "
                                 "or a path to migrations")])
    bp: Blueprint | None = None
    if designs:
        bp = resolve_blueprint(template, blueprint)
    elif design_file:
        from .templates import load_blueprint_file

        bp = load_blueprint_file(path)
    if sql is not None:
        migrations, source = [sql], (bp.app.slug + " (given SQL)" if bp else "SQL")
    elif path is not None and not design_file:
        migrations, source = migrations_from_path(path), str(path) + (f" against {bp.app.slug}" if bp else "")
    elif bp is not None:
        migrations, source = blueprint_migrations(bp), bp.app.slug
    else:
        raise InvalidBlueprint([("source", "nothing to verify.",
                                 "pass template, blueprint, sql, or a path to migrations")])
    notes = ["render wrote this project: judge it against its design, not the generic matrix (CLI: --blueprint "
             "TEMPLATE|FILE; MCP: the blueprint with its migrations as sql)"] \
        if bp is None and path is not None and _rendered(Path(path)) else []
    return verify(source=source, migrations=migrations, blueprint=bp, database_url=database_url,
                  allow_remote=allow_remote, grant_mode=grant_mode, include_cases=include_cases, progress=progress,
                  engine=engine, stop=stop, notes=notes)


def _rendered(path: Path) -> bool:
    """Whether `path` (a project root, its supabase/ or supabase/migrations folder) holds render's manifest."""
    from .files import MANIFEST

    return path.is_dir() and any((root / MANIFEST).is_file() for root in (path, path.parent, path.parent.parent))


class VerifySummary(_Out):
    # verify_rls over MCP: the verdict, the counts and the first failures; the rest behind links (no
    # docstring: it would travel in every tools/list as the output schema's description).

    source: str
    mode: Literal["blueprint", "generic"]
    target: str
    grant_mode: str
    ok: bool = Field(description="No leak, wrongly blocked case, error, ERROR lint or unbuilt fixture.")
    counts: dict[str, int]
    leaks: int
    failures: list[CaseResult] = Field(description="The first, leaks first.")
    attacks: dict[str, int]
    lints: list[Finding]
    lints_total: int
    fixture_failures: list[str]
    notes: list[str]
    resources: list[Link]


LIST_ITEMS = 20  # lints, fixture failures and notes shown inline


def verify_summary(report: VerifyReport) -> Answer:
    """The report stored for the verify resources, and what the answer carries inline."""
    cases = report.cases or report.failures
    run = artefacts.store_run({"markdown": report.markdown or "",
                               "failures": [c.model_dump(mode="json") for c in report.failures],
                               "cases": [c.model_dump(mode="json") for c in cases]})
    links = [artefacts.link(artefacts.run_artefact(run, name), label)
             for name, label in (("report.md", "verification report"), ("failures.json", "every failing case"),
                                 ("cases.json", "every case"))]
    failures, _ = page(report.failures, None, "failures")
    attacks: dict[str, int] = {}
    for a in report.attacks:
        attacks[a.verdict] = attacks.get(a.verdict, 0) + 1
    lints, _ = page(report.lints[:LIST_ITEMS], None, "lints")
    result = VerifySummary(
        source=clip(report.source, DESCRIPTION_CHARS), mode=report.mode, target=report.target,
        grant_mode=report.grant_mode, ok=report.ok, counts=report.counts, leaks=report.leaks, failures=failures,
        attacks=attacks, lints=lints, lints_total=len(report.lints),
        fixture_failures=[clip(f, DESCRIPTION_CHARS) for f in report.fixture_failures[:LIST_ITEMS]],
        notes=[clip(n, DESCRIPTION_CHARS) for n in report.notes[:LIST_ITEMS]], resources=links)
    counts = ", ".join(f"{k} {v}" for k, v in report.counts.items())
    text = (f"{'PASS' if report.ok else 'FAIL'} {result.source} ({report.mode}): {report.leaks} leak(s); {counts}; "
            f"{len(report.failures)} failure(s), {len(failures)} shown; {len(report.lints)} lint(s). "
            f"Full report: {links[0].uri}.")
    return Answer(result=result, text=text)


__all__ = [
    "Answer", "AuditResult", "BlueprintError", "RlsResult", "SchemaResult", "TenancyDesign", "VerifySummary",
    "audit_findings", "audit_spec", "audit_text", "blueprint_sql", "design_tenancy", "generate_rls", "generate_schema", "migration_files", "resolve_blueprint",
    "spec_markdown", "verify_rls", "verify_summary", "write_files",
]
