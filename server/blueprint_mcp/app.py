"""The MCP adapter: typed tools over tools.py, read-only resources and data-driven prompts.

The only module that imports `mcp`; everything it exposes is a plain function elsewhere, so the
CLI and the tests reach the same behaviour without the SDK.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import unquote, urlparse

import anyio
import yaml
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context, ListRoots, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.server.mcpserver.prompts.base import Prompt, PromptArgument
from mcp.server.mcpserver.tools import Tool
from mcp.server.stdio import stdio_server
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError

try:  # private to the SDK: the stream pair its own stdio server uses, carrying each sender's contextvars
    from mcp.shared._context_streams import create_context_streams
except ImportError:  # a later 2.x without it: anyio's plain streams, which the SDK's readers also take
    create_context_streams = None
from mcp.shared.message import SessionMessage
from mcp.types import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    CallToolResult,
    Completion,
    EmbeddedResource,
    ErrorData,
    JSONRPCError,
    ListRootsResult,
    PromptReference,
    ResourceLink,
    ResourceTemplateReference,
    TextContent,
    TextResourceContents,
    ToolAnnotations,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import __version__, artefacts, tools
from .analytics import DIALECTS
from .http_security import TOKEN_ENV, HttpGuard, HttpPolicy, bind_address, policy_for
from .model import Blueprint, BlueprintError, TemplateNotFound, canonical_taxonomy, limits
from .model.errors import InvalidArguments, InvalidBlueprint, choose, clip, closest, one_of, preview
from .model.validation import field_path, problems_from
from .spec.render import SECTIONS, spec_template
from .sql.design import build_schema
from .templates import data_dir, summaries, template_names, template_text
from .verify.target import RemoteDatabase

Transport = Literal["stdio", "sse", "streamable-http"]
# Where each HTTP transport listens; the CLI prints the same paths it passes to the SDK.
HTTP_PATHS: dict[str, str] = {"sse": "/sse", "streamable-http": "/mcp"}

# Design tools compute text from their input (audit_spec may also read files inside the client's roots):
# nothing in the environment changes, the same input gives the same answer, nothing outside is reached.
# Large artefacts are kept in the server's own cache to serve their links; that is not the environment.
READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False,
                            destructive_hint=False)

# One workflow, numbered the same way in the instructions, the tool titles and descriptions, and the
# design_backend prompt (tests check all four agree).
WORKFLOW = ("design_tenancy", "generate_schema", "generate_rls", "audit_spec", "verify_rls", "scaffold_project")
STEPS = len(WORKFLOW)

INSTRUCTIONS = """\
Blueprint designs a production-grade Supabase backend (multi-tenant schema, row level security,
triggers, analytics) from one design document, the blueprint, and returns SQL migrations and a
markdown spec. The design tools compute text; verify_rls runs the SQL on PostgreSQL (a throwaway
server, or the loopback `database_url` you pass) inside one transaction it always rolls back.

Workflow:
1. design_tenancy: from a template ({templates}) or app_name plus options. Returns `blueprint`.
2. generate_schema: pass that `blueprint` (add `entities` first; shape: blueprint://schema).
3. generate_rls: same `blueprint`; one policy per table and command.
4. audit_spec: same `blueprint` (or the user's `sql`, `paths`, `spec`); fix ERROR/WARN in the blueprint.
5. verify_rls: same `blueprint`; proves tenant isolation on PostgreSQL. `leaks` must be 0.
6. scaffold_project: same `blueprint`; every file of the Supabase project (migrations, seed, tests,
   functions, types, config, spec) as links to write at their paths; or `blueprint-mcp render`.
Answers are small: counts, a page of each list (`next_cursor` gives the next), and links to
blueprint:// resources for SQL, spec and reports (`include: ["sql"]` embeds them). Always carry the
latest `blueprint` forward. An error names the field path and the fix: correct it and retry.
"""

# --- parameter types ------------------------------------------------------------------------------

Template = Annotated[str | None, Field(
    min_length=1, max_length=limits.TEMPLATE_CHARS,
    description="A template (blueprint://templates), e.g. habit-tracker.")]
BlueprintArg = Annotated[dict[str, Any] | None, Field(
    description="An earlier answer's blueprint, edited or not (blueprint://schema).")]
IncludeArg = Annotated[list[tools.Include] | None, Field(
    max_length=len(get_args(tools.Include)),
    description="Inline the blueprint, a summary page, sql or markdown. []: counts and links only.")]
CursorArg = Annotated[str | None, Field(
    max_length=100, description="The previous answer's next_cursor.")]


# No answer passes this, as the client receives it (compact JSON; the SDK adds its server info, under 200 bytes).
ANSWER_BYTES = 79_000


def answer(out: tools.Answer) -> CallToolResult:
    """Structured result plus a short text and resource links: never a second copy of the data as text.

    Embedded artefacts (include: sql, markdown) go last: when the answer with them would pass ANSWER_BYTES
    (their JSON escaping, a full page of the list), the largest are left to their links, and a note says so."""
    links = [ResourceLink(uri=r.uri, name=r.name, mime_type=r.mime_type, size=r.size)
             for r in getattr(out.result, "resources", [])]
    embeds = [EmbeddedResource(type="resource", resource=TextResourceContents(uri=e.uri, mime_type=e.mime_type,
                                                                            text=e.text)) for e in out.embeds]
    structured, text = out.result.model_dump(mode="json"), out.text
    while True:
        result = CallToolResult(content=[TextContent(type="text", text=text), *links, *embeds],
                                structured_content=structured)
        if not embeds or len(result.model_dump_json(by_alias=True, exclude_none=True)) <= ANSWER_BYTES:
            return result
        dropped = max(embeds, key=lambda e: len(e.resource.text))
        embeds.remove(dropped)
        note = f"{dropped.resource.uri} not embedded: the answer would pass {ANSWER_BYTES:,} bytes; read the link"
        text += f" Note: {note}."
        if isinstance(structured.get("notes"), list):
            structured["notes"] = [*structured["notes"], note]


@contextmanager
def _as_tool_error() -> Iterator[None]:
    """Turn our domain errors into ToolError so the model reads the field path and the fix."""
    try:
        yield
    except BlueprintError as exc:
        raise ToolError(str(exc)) from exc
    except ValidationError as exc:
        raise ToolError(str(InvalidBlueprint(problems_from(exc)))) from exc


def check_arguments(tool: Tool, arguments: dict[str, Any]) -> None:
    """Refuse unknown arguments and wrong types in our words, before the SDK validates them its way.

    The SDK drops unknown arguments silently and reports a wrong type with pydantic's own text and a
    link to pydantic's documentation; neither helps a model correct its call.
    """
    accepted = list(tool.parameters.get("properties", {}))
    problems = []
    for key in arguments:
        if key not in accepted:
            near = closest(key, accepted)
            problems.append((field_path((key,), keep_last=True), "unknown argument.",
                             (f"did you mean '{near}'? " if near else "remove it. ")
                             + f"{tool.name} takes {one_of(accepted)}"))
    try:
        tool.fn_metadata.validate_arguments(arguments)
    except ValidationError as exc:
        problems += [_with_shape(problem) for problem in problems_from(exc)]
    if problems:
        raise InvalidArguments(problems)


# A value of the wrong type at these arguments, or at one of their items, gets the expected shape as its fix.
SHAPES = {
    "blueprint": "pass the blueprint as a JSON object (an earlier answer's `blueprint`; shape: blueprint://schema), "
                 "not as YAML or JSON text",
    "roles": "pass a list of objects, most privileged first, e.g. [{name: owner, capabilities: [read, write, "
             "manage_members, manage_billing, delete_organization]}, {name: member, capabilities: [read, write]}]",
    "capabilities": "pass a list of objects, e.g. [{name: view_clinical_notes, description: Reads clinical notes}]",
}
_ITEM = re.compile(r"^([a-z_]+)(?:\[\d+\])?$")


def _with_shape(problem: tuple[str, str, str]) -> tuple[str, str, str]:
    path, message, fix = problem
    argument = _ITEM.match(path)
    if fix or not message.startswith("expected ") or argument is None or argument.group(1) not in SHAPES:
        return problem
    return path, message, SHAPES[argument.group(1)]


def compact(schema: Any, output: bool = False, nested: bool = False) -> Any:
    """A JSON Schema as small as it can be and mean the same to a client.

    Drops pydantic's generated `title`s and `default: null`; an optional input is its type alone (omitting
    it is how a client says "none"); an optional output is `type: [t, "null"]`. Output schemas also drop
    `additionalProperties: false` and `required`, and a list item (`$defs`) is an object whose description
    names its fields: the top-level fields say what the answer means, the items are read, not validated.
    """
    if isinstance(schema, list):
        return [compact(x, output, nested) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str) or key == "default" and value is None:
            continue
        if (key, value) == ("additionalProperties", True) or output and (key, value) == ("additionalProperties", False):
            continue
        if output and key == "required":
            continue  # every answer carries these anyway; the list only costs the client's context
        inner = nested or key == "$defs"
        out[key] = ({n: compact(p, output, inner) for n, p in value.items()} if key in ("properties", "$defs")
                    else compact(value, output, inner))
    if output and nested and isinstance(out.get("properties"), dict):
        return {"type": "object", "description": "{" + ", ".join(out["properties"]) + "}"}
    variants = out.get("anyOf")
    if isinstance(variants, list) and len(variants) == 2 and {"type": "null"} in variants:
        other = next(v for v in variants if v != {"type": "null"})
        rest = {k: v for k, v in out.items() if k != "anyOf"}
        if not output:
            return {**other, **rest}
        if set(other) == {"type"} and isinstance(other["type"], str):
            return {"type": [other["type"], "null"], **rest}
    return out


def inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """An output schema whose `$ref`s are replaced by their (compacted, one-line) definitions, and no `$defs`:
    each item type is named once where it is used instead of twice."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(x) for x in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs:
            return walk({**defs[ref[8:]], **{k: v for k, v in node.items() if k != "$ref"}})
        return {k: walk(v) for k, v in node.items() if k != "$defs"}

    return walk(schema)


class CheckedTool(Tool):
    """A tool whose arguments go through check_arguments; its input schema says extra keys are refused."""

    @classmethod
    def from_function(cls, fn: Callable[..., Any], **kwargs: Any) -> Tool:
        tool = super().from_function(fn, **kwargs)
        tool.parameters = compact(tool.parameters)
        tool.parameters["additionalProperties"] = False
        if tool.output_schema is not None:
            tool.output_schema = inline_defs(compact(tool.output_schema, output=True))
        tool.description = inspect.cleandoc(tool.description or "")
        return tool

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        try:
            check_arguments(self, arguments)
        except InvalidArguments as exc:
            # Worded like the SDK's own frame around a tool's ToolError, so every error reads alike.
            raise ToolError(f"Error executing tool {self.name}: {exc}") from exc
        return await super().run(arguments, context, convert_result=convert_result)


# --- tools ----------------------------------------------------------------------------------------

def design_tenancy(
    template: Template = None,
    blueprint: BlueprintArg = None,
    app_name: Annotated[str | None, Field(
        min_length=1, max_length=limits.APP_NAME_CHARS,
        description="A new app's name, or a new name (and slug) for the template or blueprint.")] = None,
    app_description: Annotated[str | None, Field(
        max_length=limits.APP_DESCRIPTION_CHARS, description="What the app does, in a sentence or two.")] = None,
    personal_workspaces: Annotated[bool | None, Field(
        description="A personal organisation for every user at signup.")] = None,
    team_organizations: Annotated[bool | None, Field(
        description="Users create team organisations and invite others.")] = None,
    roles: Annotated[list[dict[str, Any]] | None, Field(
        max_length=limits.ROLES,
        description="[{name, capabilities}], most privileged first; capabilities: read, write, manage_members, "
                    "manage_billing, delete_organization, your own. Default: owner/admin/member/viewer.")] = None,
    capabilities: Annotated[list[dict[str, Any]] | None, Field(
        max_length=limits.CAPABILITIES,
        description="Your own capabilities [{name, description}], for roles and grants.")] = None,
    include: IncludeArg = None,
    cursor: CursorArg = None,
) -> Annotated[CallToolResult, tools.TenancyDesign]:
    """Step 1 of 6: who owns data: personal workspaces, team organisations, roles, capabilities.

    From a `template`, a `blueprint` or `app_name` plus options. Returns who may do what per table
    and the `blueprint` to pass on.
    """
    with _as_tool_error():
        return answer(tools.design_tenancy(
            template=template, blueprint=blueprint, app_name=app_name, app_description=app_description,
            personal_workspaces=personal_workspaces, team_organizations=team_organizations, roles=roles,
            capabilities=capabilities, include=include, cursor=cursor))


def generate_schema(
    template: Template = None,
    blueprint: BlueprintArg = None,
    sections: Annotated[list[tools.SchemaSection] | None, Field(
        max_length=len(get_args(tools.SchemaSection)),
        description="Which tables: core, domain, analytics, privacy. Default: all.")] = None,
    include: IncludeArg = None,
    cursor: CursorArg = None,
) -> Annotated[CallToolResult, tools.SchemaResult]:
    """Step 2 of 6: tables, keys, indexes, grants and triggers.

    Counts, a page of tables, links to the migrations.
    """
    with _as_tool_error():
        return answer(tools.generate_schema(template=template, blueprint=blueprint, sections=sections,
                                            include=include, cursor=cursor))


def generate_rls(
    template: Template = None,
    blueprint: BlueprintArg = None,
    tables: Annotated[list[Annotated[str, Field(max_length=limits.IDENT_BYTES)]] | None, Field(
        max_length=limits.TABLE_NAMES, description="Only these tables. Default: all.")] = None,
    include: IncludeArg = None,
    cursor: CursorArg = None,
) -> Annotated[CallToolResult, tools.RlsResult]:
    """Step 3 of 6: row level security policies that isolate tenants and enforce roles.

    Counts, a page of policies, the helpers, links to the migration and pgTAP tests. What `access`
    means: blueprint://access.
    """
    with _as_tool_error():
        return answer(tools.generate_rls(template=template, blueprint=blueprint, tables=tables, include=include,
                                         cursor=cursor))


def confine(paths: list[str], roots: list[Path]) -> list[Path]:
    """Each path resolved (symlinks followed) and inside one of the workspace roots; relative = first root."""
    if not roots:
        raise BlueprintError("this client offers no workspace roots, so no file may be read", field="paths",
                             fix="pass the SQL text in `sql` or the markdown in `spec` instead")
    out = []
    for raw in paths:
        path = (Path(raw) if Path(raw).is_absolute() else roots[0] / raw).resolve()
        if not any(path.is_relative_to(root) for root in roots):
            raise BlueprintError(f"{raw} is outside the workspace roots {[str(r) for r in roots]}", field="paths",
                                 fix="pass a path inside the workspace, or the file's text in `sql` / `spec`")
        out.append(path)
    return out


def root_paths(result: ListRootsResult | None) -> list[Path]:
    """The client's file:// roots as resolved local paths (other schemes are ignored)."""
    out = []
    for root in result.roots if result else []:
        uri = urlparse(str(root.uri))
        if uri.scheme == "file":
            out.append(Path(unquote(uri.path)).resolve())
    return out


def _workspace_roots(paths: list[str] | None, ctx: Context) -> ListRoots | None:
    """Ask the client for its roots only when the call names files and the client offers roots."""
    caps = ctx.client_capabilities
    return ListRoots() if paths and caps is not None and caps.roots is not None else None


def audit_spec(
    ctx: Context,
    template: Template = None,
    blueprint: BlueprintArg = None,
    sql: Annotated[str | None, Field(max_length=limits.SQL_CHARS, description=(
        "SQL to lint (migrations), applied after those of `paths`."))] = None,
    spec: Annotated[str | None, Field(max_length=limits.SQL_CHARS, description=(
        "A markdown spec to check."))] = None,
    paths: Annotated[list[Annotated[str, Field(max_length=limits.PATH_CHARS)]] | None, Field(
        max_length=limits.PATHS, description=(
        "Files or folders in the client's roots (.sql, migrations, .md, blueprints), relative to the first."))] = None,
    max_findings: Annotated[int, Field(ge=1, le=1000, description="At most this many findings in all.")] = 200,
    cursor: CursorArg = None,
    assume_platform: Annotated[bool, Field(description="Judge as a Supabase project (pg_graphql installed).")] = False,
    roots: Annotated[ListRootsResult | None, Resolve(_workspace_roots)] = None,
) -> Annotated[CallToolResult, tools.AuditResult]:
    """Step 4 of 6: lint for tenancy, RLS, performance and function-security mistakes.

    The `blueprint`'s SQL, or the user's `sql`, `paths`, `spec`. Returns `ok` (no ERROR/WARN),
    counts and a page of findings, most severe first, with fixes.
    """
    with _as_tool_error():
        if paths and roots is None and ctx.client_capabilities is None:
            # Stateless HTTP with a 2025-11-25 client: no session, so no request back to the client for its roots
            # (it may well offer some): say so rather than blame the client.
            raise BlueprintError("this server cannot ask the client for its workspace roots: it serves stateless "
                                 "HTTP, where a client of protocol 2025-11-25 or older gets no requests back",
                                 field="paths", fix="pass the SQL text in `sql` or the markdown in `spec`; or serve "
                                 "without --stateless, or connect with protocol 2026-07-28")
        workspace = root_paths(roots) if paths else None
        files = confine(paths, workspace) if paths else None
        result = tools.audit_spec(template=template, blueprint=blueprint, sql=sql, spec=spec, paths=files,
                                  max_findings=max_findings, cursor=cursor, assume_platform=assume_platform,
                                  within=workspace)
        return answer(tools.Answer(result=result, text=tools.audit_text(result)))


async def verify_rls(
    ctx: Context,
    template: Template = None,
    blueprint: BlueprintArg = None,
    sql: Annotated[str | None, Field(
        min_length=1, max_length=limits.SQL_CHARS,
        description="Migrations to verify: alone, against generic isolation; with a blueprint, against it.")] = None,
    database_url: Annotated[str | None, Field(
        max_length=limits.URL_CHARS,
        description="A loopback PostgreSQL (e.g. supabase start's). Default: a throwaway server.")] = None,
    grant_mode: Annotated[Literal["legacy", "explicit"], Field(
        description="Default privileges: legacy (stricter) or explicit (2026).")] = "legacy",
) -> Annotated[CallToolResult, tools.VerifySummary]:
    """Step 5 of 6: prove tenant isolation on PostgreSQL: the attack matrix and platform lints.

    Every command on every table as every role of two organisations, an outsider and anon, in one
    transaction rolled back. Returns `ok`, `leaks`, the first failures, links to the report.
    """
    import threading

    import anyio

    stop = threading.Event()  # the client cancelled: verify cancels its statement and rolls back

    def progress(done: int, total: int, message: str) -> None:
        if not stop.is_set():
            anyio.from_thread.run(ctx.report_progress, done, total, message)

    def run() -> CallToolResult:
        with _as_tool_error():
            try:
                report = tools.verify_rls(template=template, blueprint=blueprint, sql=sql, database_url=database_url,
                                          grant_mode=grant_mode, include_cases=True, progress=progress, stop=stop)
            except RemoteDatabase as exc:
                # The tool has no --allow-remote: a remote database is the terminal's choice, never the model's.
                raise BlueprintError(exc.message, field=exc.field, fix=REMOTE_FIX) from None
            return answer(tools.verify_summary(report))

    try:
        return await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        stop.set()
        raise


REMOTE_FIX = ("pass a loopback database_url (e.g. supabase start's) or none (a throwaway server); to verify a "
              "remote database, run `blueprint-mcp verify <source> --database-url URL --allow-remote` in a terminal "
              "(nothing is committed, but statements do run there)")


def scaffold_project(
    template: Template = None,
    blueprint: BlueprintArg = None,
    timestamp: Annotated[str | None, Field(
        # Checked by parse_stamp, whose refusal says the valid range; the schema still shows the shape.
        json_schema_extra={"pattern": r"^\d{14}$"},
        description="UTC YYYYMMDDHHMMSS naming the migrations. Default: now.")] = None,
    include: Annotated[list[tools.ScaffoldInclude] | None, Field(
        max_length=len(get_args(tools.ScaffoldInclude)),
        description="A page of the file list; files: also embed them. []: counts only.")] = None,
    cursor: CursorArg = None,
) -> Annotated[CallToolResult, tools.ScaffoldResult]:
    """Step 6 of 6: the whole Supabase project (what `blueprint-mcp render` writes), file by file.

    Migrations, seed, tests, edge functions, types, config, spec, ER diagram: links to write at their paths.
    """
    with _as_tool_error():
        return answer(tools.scaffold_project(template=template, blueprint=blueprint, timestamp=timestamp,
                                             include=include, cursor=cursor))


# Runs statements on a database (a throwaway one, or the caller's with database_url), so it is not
# read-only; a guard and a forced rollback keep it from changing anything, hence not destructive.
VERIFY = ToolAnnotations(read_only_hint=False, idempotent_hint=True, open_world_hint=True, destructive_hint=False)

TOOLS = (
    (design_tenancy, "1. Design tenancy", READ_ONLY),
    (generate_schema, "2. Generate schema", READ_ONLY),
    (generate_rls, "3. Generate RLS policies", READ_ONLY),
    (audit_spec, "4. Audit the design", READ_ONLY),
    (verify_rls, "5. Verify tenant isolation", VERIFY),
    (scaffold_project, "6. Scaffold the project", READ_ONLY),
)

# --- resources ------------------------------------------------------------------------------------

def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _register_resources(server: MCPServer) -> None:
    @server.resource("blueprint://template", name="spec-template", title="Blank spec template",
                     description="The nine-section Supabase backend spec, unfilled.", mime_type="text/markdown")
    def spec_template_resource() -> str:
        return spec_template()

    @server.resource("blueprint://event-taxonomy", name="event-taxonomy", title="Event taxonomy",
                     description="Analytics event categories and the canonical events every blueprint gets.",
                     mime_type="application/json")
    def event_taxonomy() -> str:
        return _json(canonical_taxonomy().model_dump(mode="json"))

    @server.resource("blueprint://templates", name="templates", title="Template library",
                     description="Every template: name, app, description, entities.", mime_type="application/json")
    def templates_list() -> str:
        return _json(summaries())

    @server.resource("blueprint://templates/{name}", name="template", title="One template",
                     description="A template's blueprint as YAML (a starting point to edit).",
                     mime_type="application/yaml")
    def template_yaml(name: str) -> str:
        try:
            return template_text(name)
        except TemplateNotFound as exc:
            raise ResourceNotFoundError(str(exc)) from exc

    @server.resource("blueprint://access", name="access-semantics", title="Access semantics",
                     description="What every access construct (grants, rows, public, linked, storage) allows per "
                                 "command: the table behind entities[].access.", mime_type="text/markdown")
    def access_semantics() -> str:
        return (data_dir("docs") / "access.md").read_text(encoding="utf-8")

    @server.resource("blueprint://schema", name="blueprint-schema", title="Blueprint JSON Schema",
                     description="The JSON Schema of the `blueprint` argument every tool accepts.",
                     mime_type="application/json")
    def blueprint_schema() -> str:
        return _json(Blueprint.model_json_schema())

    parts = f" Over {artefacts.PART_BYTES:,} bytes it is read in parts: `part` 1, 2, ... joined in order."
    for artefact, (mime, what) in artefacts.DESIGN_ARTEFACTS.items():
        narrowed = artefact in artefacts.NARROWED
        # Every one declares `only`, so a client's `only` where it narrows nothing is refused, not ignored.
        server.resource(f"blueprint://designs/{{design}}/{artefact}{{?only,part}}",
                        name=f"design-{artefact}", title=f"A design's {artefact}", mime_type=mime,
                        description=f"{what[0].upper()}{what[1:]} of a design (a template name or a bp- id from an "
                                    "answer)" + ("; `only` narrows it to some sections or tables (comma-separated)."
                                                 if narrowed else ".") + parts)(_design_reader(artefact))
    @server.resource("blueprint://designs/{design}/analytics.sql{?dialect,part}", name="design-analytics.sql",
                     title="A design's analytics queries", mime_type="application/sql",
                     description="DAU/WAU/MAU, retention, funnels and entity activity for a design; `dialect`: "
                                 "postgres (default), duckdb, clickhouse or bigquery (transpiled with sqlglot)."
                                 + parts)
    def analytics_sql(design: str, dialect: str = "", part: str = "") -> str:
        return _text_of(lambda: artefacts.analytics_artefact(design, dialect or None), part)

    @server.resource("blueprint://designs/{design}/project/{stamp}/{+path}{?part}", name="design-project-file",
                     title="A file of a design's project", mime_type="text/plain",
                     description="One file scaffold_project lists (path under the project root; migrations named "
                                 "from stamp, YYYYMMDDHHMMSS), read with the MIME type its link gives." + parts)
    def project_file(design: str, stamp: str, path: str, part: str = "") -> str:
        return _text_of(lambda: artefacts.project_artefact(design, stamp, path), part)

    for artefact, (mime, what) in artefacts.RUN_ARTEFACTS.items():
        server.resource(f"blueprint://verify/{{run}}/{artefact}{{?part}}", name=f"verify-{artefact}",
                        title=f"A verification's {artefact}", mime_type=mime,
                        description=f"{what[0].upper()}{what[1:]} of a verify_rls run (the run- id of its answer)."
                                    + parts)(_run_reader(artefact))

    @server.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> Completion | None:
        known = dict(getattr(context, "arguments", None) or {})
        return Completion(values=completions(ref, argument.name, argument.value, known)[:100])


def _text_of(make: Callable[[], artefacts.Artefact], part: str = "") -> str:
    """The text of an artefact, or of the part asked for; a text too large to read whole is invalid params
    (the message names its parts), a design, run, artefact or part that does not exist is not found."""
    try:
        return artefacts.read_part(make(), part or None)
    except artefacts.ArtefactTooLarge as exc:
        raise MCPError(code=INVALID_PARAMS, message=str(exc)) from exc
    except (BlueprintError, ValidationError) as exc:
        raise ResourceNotFoundError(str(exc)) from exc


def _design_reader(artefact: str) -> Callable[..., str]:
    def read(design: str, only: str = "", part: str = "") -> str:
        return _text_of(lambda: artefacts.read_design_artefact(design, artefact, only or None), part)
    return read


def _run_reader(artefact: str) -> Callable[..., str]:
    def read(run: str, part: str = "") -> str:
        return _text_of(lambda: artefacts.run_artefact(run, artefact), part)
    return read


def _prompt_choices() -> dict[tuple[str, str], list[str]]:
    """Prompt arguments with a known set of useful values (from the prompt files' `choices`)."""
    return {(p.name, a.name): a.choices for p in (load_prompt(f) for f in sorted(data_dir("prompts").glob("*.md")))
            for a in p.arguments if a.choices}


def argument_choices(prompt: str, name: str) -> list[str]:
    """The values a prompt argument takes: template names for `template`, else the prompt file's `choices`
    (an argument without choices takes any text)."""
    return template_names() if name == "template" else _prompt_choices().get((prompt, name), [])


def completions(ref: Any, name: str, value: str, known: dict[str, str] | None = None) -> list[str]:
    """Values starting with what the user typed: template names, sections, a design's tables (`known`: the
    arguments the client resolved already, e.g. the design), dialects, prompt argument choices."""
    options: list[str] = []
    if isinstance(ref, ResourceTemplateReference):
        if name in ("name", "design"):
            options = template_names()
        elif name == "only":
            artefact = ref.uri.split("{?")[0].rsplit("/", 1)[-1]
            options = list(artefacts.SCHEMA_SECTIONS if artefact in ("schema.sql", "triggers.sql")
                           else SECTIONS if artefact == "spec.md"
                           else _table_names((known or {}).get("design")) if artefact == "rls.sql"
                           else [])
        elif name == "dialect":
            options = list(DIALECTS)
    elif isinstance(ref, PromptReference) and ref.name in _prompt_names():
        options = argument_choices(ref.name, name)
    return [o for o in options if o.lower().startswith((value or "").lower())]


def _table_names(design: str | None) -> list[str]:
    """The tables of a design (rls.sql's `only`); none when the design is not given or not known."""
    if not design:
        return []
    try:
        return [t.name for t in build_schema(artefacts.load_design(design)).tables]
    except BlueprintError:
        return []


def _prompt_names() -> list[str]:
    return [load_prompt(f).name for f in sorted(data_dir("prompts").glob("*.md"))]


# --- prompts --------------------------------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n(.*)\Z", re.S)
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


class PromptArg(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    required: bool = False
    default: str = Field("", description="Text used when an optional argument is omitted.")
    choices: list[str] = Field(default_factory=list, description="Values offered as completions.")


class PromptFile(BaseModel):
    """A prompt file: YAML front matter (these fields) then the text with `{argument}` placeholders."""

    model_config = ConfigDict(extra="forbid")
    name: str
    title: str | None = None
    description: str
    arguments: list[PromptArg] = Field(default_factory=list)
    text: str


def load_prompt(path: Path) -> PromptFile:
    """Parse one prompt file; every placeholder must be a declared argument."""
    match = _FRONT_MATTER.match(path.read_text(encoding="utf-8"))
    if not match:
        raise ValueError(f"{path}: expected YAML front matter between '---' lines")
    try:
        prompt = PromptFile.model_validate({**(yaml.safe_load(match.group(1)) or {}), "text": match.group(2)})
    except (yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"{path}: invalid front matter: {exc}") from exc
    undeclared = set(_PLACEHOLDER.findall(prompt.text)) - {a.name for a in prompt.arguments}
    if undeclared:
        raise ValueError(f"{path}: placeholders {sorted(undeclared)} are not declared in arguments")
    return prompt


def fill(prompt: PromptFile, values: dict[str, Any]) -> str:
    """Substitute declared placeholders in one pass: braces inside the values are never re-read."""
    given = {a.name: str(values[a.name]) if values.get(a.name) not in (None, "") else a.default
             for a in prompt.arguments}
    return _PLACEHOLDER.sub(lambda m: given[m.group(1)], prompt.text)


PROMPT_TEXT_CHARS = 60_000  # the arguments a prompt echoes, so that it stays under the 80 KB answer cap


class FilePrompt(Prompt):
    """A prompt read from a data file."""

    async def render(self, arguments: dict[str, Any] | None, context: Any) -> Any:
        # The SDK reports its own missing-argument ValueError as a bare "Internal server error" on
        # 2026-07-28 connections; an MCPError keeps the message in every protocol mode.
        given = arguments or {}
        names = [a.name for a in self.arguments or []]
        missing = [a.name for a in self.arguments or [] if a.required and not given.get(a.name)]
        if missing:
            raise MCPError(code=INVALID_PARAMS, message=f"prompt {self.name!r} needs the argument(s) {missing}")
        unknown = [field_path((k,), keep_last=True) for k in given if k not in names]
        if unknown:
            raise MCPError(code=INVALID_PARAMS, message=f"prompt {self.name!r} has no argument(s) {one_of(unknown)}; "
                                                        f"it takes {one_of(names)}")
        for name, value in given.items():
            if len(str(value)) > limits.PROMPT_ARGUMENT_CHARS:
                raise MCPError(code=INVALID_PARAMS, message=f"{name}: too long: {len(str(value)):,} characters "
                                                            f"(at most {limits.PROMPT_ARGUMENT_CHARS:,})")
            # The text is written into the prompt as a decision taken: an unknown one would mislead the model.
            choices = argument_choices(self.name, name)
            if choices and value not in (None, "") and value not in choices:
                raise MCPError(code=INVALID_PARAMS, message=f"{name}: unknown value {preview(str(value))}; "
                                                            f"{choose(str(value), choices)}")
        # A prompt lands whole in the model's context: keep it within the answer budget.
        size = sum(len(str(v)) for v in given.values())
        if size > PROMPT_TEXT_CHARS:
            raise MCPError(code=INVALID_PARAMS, message=(
                f"{', '.join(given)}: {size:,} characters, too many for a prompt (at most {PROMPT_TEXT_CHARS:,}): "
                "lint large SQL with the audit_spec tool (`sql` or `paths`) instead"))
        return await super().render(arguments, context)


def _renderer(spec: PromptFile) -> Callable[..., str]:
    def render(**values: Any) -> str:
        return fill(spec, values)
    return render


def _register_prompts(server: MCPServer) -> None:
    for path in sorted(data_dir("prompts").glob("*.md")):
        spec = load_prompt(path)
        server.add_prompt(FilePrompt(
            name=spec.name, title=spec.title, description=spec.description, fn=_renderer(spec),
            arguments=[PromptArgument(name=a.name, description=a.description, required=a.required)
                       for a in spec.arguments],
        ))


# --- server ---------------------------------------------------------------------------------------

class BlueprintServer(MCPServer):
    """The SDK's server, with three answers put right: an unknown prompt is the caller's mistake (invalid params
    naming the prompts), not an internal error; a project file is read with the MIME type its link gives; a stdio
    line that is no message gets an error instead of silence."""

    async def get_prompt(self, name: str, arguments: dict[str, Any] | None = None, context: Any = None) -> Any:
        names = [p.name for p in await self.list_prompts()]
        if name not in names:
            raise MCPError(code=INVALID_PARAMS, message=f"unknown prompt {preview(name)}: "
                                                        f"{choose(name, names)}")
        return await super().get_prompt(name, arguments, context)

    async def read_resource(self, uri: Any, context: Any = None) -> Any:
        try:
            contents = await super().read_resource(uri, context)
        except ResourceNotFoundError as exc:
            # The SDK's answer echoes the URI whole, in its message and again in its data: a 1 MB URI came back
            # twice, past the 4,000 characters an error may hold. Quote it as every rejected value is.
            raise MCPError(code=INVALID_PARAMS, message=clip(str(exc).replace(str(uri), preview(str(uri))),
                                                             limits.MESSAGE_CHARS)) from None
        path = _project_path(str(uri))
        if path is None or not isinstance(contents, list):
            return contents
        return [ReadResourceContents(content=c.content, mime_type=artefacts.file_mime(path), meta=c.meta)
                for c in contents]

    async def run_stdio_async(self) -> None:
        """stdio, where a line that is no JSON-RPC message gets an error (id null) as over HTTP: -32700 when it
        is not JSON the parser takes (malformed, or nested past its depth), -32600 when it is JSON but no
        message. The SDK drops such a line without a word, and the client waits for an answer that never comes."""
        async with stdio_server() as (read_stream, write_stream):
            send, receive = (create_context_streams or anyio.create_memory_object_stream)[
                SessionMessage | Exception](0)

            async def relay() -> None:
                async with send:
                    async for item in read_stream:
                        if isinstance(item, Exception):
                            await write_stream.send(SessionMessage(_unreadable(item)))
                        else:
                            await send.send(item)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(relay)
                await self._lowlevel_server.run(receive, write_stream,
                                                self._lowlevel_server.create_initialization_options())
                tasks.cancel_scope.cancel()


def _unreadable(exc: Exception) -> JSONRPCError:
    """The answer to a line the transport could not read as a message."""
    kinds = [e.get("type") for e in exc.errors()] if isinstance(exc, ValidationError) else []
    if "json_invalid" in kinds or not kinds:
        detail = next((e.get("ctx", {}).get("error") for e in exc.errors() if e.get("type") == "json_invalid"),
                      None) if kinds else None
        return JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(
            code=PARSE_ERROR, message=f"Parse error: {clip(str(detail or exc), 200)}"))
    return JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(
        code=INVALID_REQUEST, message="Invalid request: not a JSON-RPC 2.0 request, notification or response"))


def _project_path(uri: str) -> str | None:
    """The file path of a project file's URI (blueprint://designs/<design>/project/<stamp>/<path>)."""
    match = re.match(r"^blueprint://designs/[^/]+/project/[^/]+/(.+)$", uri)
    return unquote(match.group(1)) if match else None


def build_server() -> MCPServer:
    server = BlueprintServer("blueprint-mcp", title="Blueprint", version=__version__,
                       instructions=INSTRUCTIONS.format(templates=", ".join(template_names())),
                       tools=[CheckedTool.from_function(fn, title=title, annotations=annotations)
                              for fn, title, annotations in TOOLS])
    _register_resources(server)
    _register_prompts(server)
    return server


def _stderr_log_config() -> dict[str, Any]:
    """Uvicorn's logging config with the access log moved from stdout to stderr."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    return config


def http_app(server: MCPServer, transport: Transport, policy: HttpPolicy, stateless: bool = False) -> HttpGuard:
    """The Starlette app of an HTTP transport at its path in HTTP_PATHS, behind the Host/Origin/token guard.

    `stateless` (streamable HTTP only): no session is kept between requests, so any process serving the
    same code may answer any request of a client: run several workers, behind any load balancer.
    """
    # The SDK checks Host and Origin itself only for some bind addresses and with any port; give it
    # the guard's exact lists, so both layers accept the same requests.
    security = TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=sorted(policy.hosts),
                                         allowed_origins=sorted(policy.origins))
    if transport == "sse" and not stateless:
        inner = server.sse_app(sse_path=HTTP_PATHS["sse"], transport_security=security)
    elif transport == "streamable-http":
        inner = server.streamable_http_app(streamable_http_path=HTTP_PATHS["streamable-http"],
                                           transport_security=security, stateless_http=stateless)
    else:
        raise ValueError(f"no {'stateless ' if stateless else ''}HTTP transport {transport!r}; use "
                         f"{'streamable-http' if stateless else 'sse or streamable-http'}")
    return HttpGuard(inner, policy)


WORKER_ENV = "BLUEPRINT_MCP_WORKER"


def worker_app() -> HttpGuard:
    """The app each uvicorn worker builds (serve --workers N): what to accept comes from the parent's environment.

    The token travels in BLUEPRINT_MCP_TOKEN, never on a command line.
    """
    spec = json.loads(os.environ[WORKER_ENV])
    policy = HttpPolicy(hosts=frozenset(spec["hosts"]), origins=frozenset(spec["origins"]),
                        token=os.environ.get(TOKEN_ENV) or None)
    return http_app(build_server(), spec["transport"], policy, stateless=spec["stateless"])


def run(transport: Transport = "stdio", host: str = "127.0.0.1", port: int = 8000,
        policy: HttpPolicy | None = None, stateless: bool = False, workers: int = 1) -> None:
    """Serve until interrupted; every log line goes to stderr, stdout carries only the protocol."""
    if transport == "stdio":
        build_server().run("stdio")
        return
    import uvicorn

    policy = policy or policy_for(host, port)
    # Not server.run(): the SDK's uvicorn config sends the access log to stdout.
    common = {"host": bind_address(host), "port": port, "log_config": _stderr_log_config()}
    if workers == 1:
        uvicorn.run(http_app(build_server(), transport, policy, stateless=stateless), **common)
        return
    os.environ[WORKER_ENV] = json.dumps({"transport": transport, "stateless": stateless,
                                         "hosts": sorted(policy.hosts), "origins": sorted(policy.origins)})
    if policy.token is not None:
        os.environ[TOKEN_ENV] = policy.token
    uvicorn.run("blueprint_mcp.app:worker_app", factory=True, workers=workers, **common)
