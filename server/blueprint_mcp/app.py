"""The MCP adapter: typed tools over tools.py, read-only resources and data-driven prompts.

The only module that imports `mcp`; everything it exposes is a plain function elsewhere, so the
CLI and the tests reach the same behaviour without the SDK.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import unquote, urlparse

import yaml
from mcp.server.mcpserver import Context, ListRoots, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.server.mcpserver.prompts.base import Prompt, PromptArgument
from mcp.server.mcpserver.tools import Tool
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, ListRootsResult, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import __version__, tools
from .http_security import HttpGuard, HttpPolicy, bind_address, policy_for
from .model import Blueprint, BlueprintError, TemplateNotFound, canonical_taxonomy, limits
from .model.errors import InvalidArguments, InvalidBlueprint, closest, one_of
from .model.validation import field_path, problems_from
from .spec.render import spec_template
from .templates import data_dir, summaries, template_names, template_text

Transport = Literal["stdio", "sse", "streamable-http"]
# Where each HTTP transport listens; the CLI prints the same paths it passes to the SDK.
HTTP_PATHS: dict[str, str] = {"sse": "/sse", "streamable-http": "/mcp"}

# Every tool only computes text from its input: no files, no network, same input -> same output.
READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False,
                            destructive_hint=False)

INSTRUCTIONS = """\
Blueprint designs a production-grade Supabase backend (multi-tenant schema, row level security,
triggers, analytics) from one design document called a blueprint, and returns SQL migrations and a
markdown spec. Tools 1-4 only compute text. verify_rls runs SQL on PostgreSQL (a throwaway server, or
the loopback `database_url` you pass) inside one transaction it always rolls back, after refusing any
statement that could end that transaction or act beyond the database.

Workflow, one step per section of the spec:
1. design_tenancy: start from a template ({templates}) or from app_name plus options
   (personal_workspaces, team_organizations, roles). It returns `blueprint`.
2. generate_schema: pass that `blueprint` (add or edit `entities` first; the shape is in the
   blueprint://schema resource). Returns tables, SQL and optional markdown.
3. generate_rls: same `blueprint`; returns one policy per table and command, helpers and SQL.
4. audit_spec: same `blueprint` (or a user's own `sql`, migration `paths` or `spec` markdown); returns
   findings (ERROR/WARN/INFO) with positions and fixes.
5. verify_rls: same `blueprint`; proves tenant isolation on a real PostgreSQL (attack matrix).
Always carry the latest `blueprint` forward instead of re-describing the app. When a call fails,
the error names the field path (e.g. entities[0].name) and the fix; correct that field and retry.
Resources: blueprint://template (blank spec), blueprint://schema (blueprint JSON Schema),
blueprint://templates and blueprint://templates/{{name}}, blueprint://event-taxonomy.
"""

# --- parameter types ------------------------------------------------------------------------------

Template = Annotated[str | None, Field(
    min_length=1, max_length=limits.TEMPLATE_CHARS,
    description="Name of a template from the library, e.g. 'habit-tracker' (list: blueprint://templates). "
                "Pass either this or `blueprint`, not both.")]
BlueprintArg = Annotated[dict[str, Any] | None, Field(
    description="A full blueprint object, usually the `blueprint` returned by an earlier call, possibly edited. "
                "Its JSON Schema is the blueprint://schema resource. Pass either this or `template`.")]
IncludeArg = Annotated[list[tools.Include] | None, Field(
    max_length=len(get_args(tools.Include)),
    description="Parts to return: 'blueprint' (the design to carry forward), 'summary' (structured tables "
                "or policies), 'sql' (migration text), 'markdown' (spec section). Default depends on the tool.")]


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
        problems += problems_from(exc)
    if problems:
        raise InvalidArguments(problems)


class CheckedTool(Tool):
    """A tool whose arguments go through check_arguments; its input schema says extra keys are refused."""

    @classmethod
    def from_function(cls, fn: Callable[..., Any], **kwargs: Any) -> Tool:
        tool = super().from_function(fn, **kwargs)
        tool.parameters["additionalProperties"] = False
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
        description="Name of a new app when starting from nothing (no template, no blueprint).")] = None,
    app_description: Annotated[str | None, Field(
        max_length=limits.APP_DESCRIPTION_CHARS,
        description="One or two sentences on what the app does; replaces the description of a template.")] = None,
    personal_workspaces: Annotated[bool | None, Field(
        description="Give every user a personal organisation at signup. Omit to keep the current value.")] = None,
    team_organizations: Annotated[bool | None, Field(
        description="Let users create team organisations and invite others. Omit to keep the current value.")] = None,
    roles: Annotated[list[dict[str, Any]] | None, Field(
        max_length=limits.ROLES,
        description="Membership roles, most privileged first: [{name, description, capabilities}] with "
                    "capabilities from read, write, manage_members, manage_billing, delete_organization "
                    "(ranked: a role holds what every role below it holds) and any declared in `capabilities`. "
                    "Omit to keep owner/admin/member/viewer.")] = None,
    capabilities: Annotated[list[dict[str, Any]] | None, Field(
        max_length=limits.CAPABILITIES,
        description="App-defined capabilities [{name, description}], e.g. [{name: view_clinical_notes}]: any "
                    "set of roles may hold one, and grants may name it ({capability: view_clinical_notes}).")] = None,
    include: IncludeArg = None,
) -> tools.TenancyDesign:
    """Step 1 of 4: decide who owns data (personal workspaces, team organisations, roles).

    Call first, with a `template` name, an existing `blueprint`, or `app_name` (plus options) to
    start a new design. Returns the tenancy, which role holds each capability, who may
    select/insert/update/delete each table, and `blueprint`: pass that blueprint to
    generate_schema, generate_rls and audit_spec. Default include: blueprint, summary, markdown.
    """
    with _as_tool_error():
        return tools.design_tenancy(template=template, blueprint=blueprint, app_name=app_name,
                                    app_description=app_description, personal_workspaces=personal_workspaces,
                                    team_organizations=team_organizations, roles=roles, capabilities=capabilities,
                                    include=include)


def generate_schema(
    template: Template = None,
    blueprint: BlueprintArg = None,
    sections: Annotated[list[tools.SchemaSection] | None, Field(
        max_length=len(get_args(tools.SchemaSection)),
        description="Which tables: 'core' (profiles, organisations, memberships), 'domain' (the blueprint's "
                    "entities), 'analytics', 'privacy'. Default: all.")] = None,
    include: IncludeArg = None,
) -> tools.SchemaResult:
    """Step 2 of 4: the tables, keys, indexes, grants and triggers of the design.

    Call after design_tenancy, passing its `blueprint` (add entities to it first if the app
    needs more tables). Returns a summary per table and two migrations: `sql` (tables, RLS
    enabled, grants) and `triggers_sql`. Default include: summary, sql. Entities may declare
    member references ({type: reference, references: organization_members, member_roles: [dentist]}),
    checks ([{column: ends_at, op: gt, other: starts_at}]), exclusions ([{keys: [dentist_id],
    range: [starts_at, ends_at]}]); the blueprint may declare storage buckets ([{name: xrays}]).
    """
    with _as_tool_error():
        return tools.generate_schema(template=template, blueprint=blueprint, sections=sections, include=include)


def generate_rls(
    template: Template = None,
    blueprint: BlueprintArg = None,
    tables: Annotated[list[Annotated[str, Field(max_length=limits.IDENT_BYTES)]] | None, Field(
        max_length=limits.TABLE_NAMES,
        description="Only these tables (names as in generate_schema). Default: every table.")] = None,
    include: IncludeArg = None,
) -> tools.RlsResult:
    """Step 3 of 4: row level security policies that isolate tenants and enforce roles.

    Call with the same `blueprint` as generate_schema. Returns one policy per table and command
    (`to authenticated`; public reads also `to anon`), the private helper functions they call,
    and the policies migration in `sql`. Default include: summary, sql. Per command an entity's
    `access` takes a role name or grants OR-ed together, e.g. select: [{roles: [dentist], own: true},
    {capability: view_notes}, {linked: [patient_id, user_id]}, {public: true, where: {column:
    published, equals: true}}] (meanings: the blueprint://access resource).
    """
    with _as_tool_error():
        return tools.generate_rls(template=template, blueprint=blueprint, tables=tables, include=include)


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
    template: Template = None,
    blueprint: BlueprintArg = None,
    sql: Annotated[str | None, Field(max_length=limits.SQL_CHARS, description=(
        "SQL to lint: a snippet, a migration or several concatenated (psql meta-commands and DO blocks "
        "are tolerated). Applied after the SQL files of `paths`, as one migration history."))] = None,
    spec: Annotated[str | None, Field(max_length=limits.SQL_CHARS, description=(
        "A markdown spec document to check: the nine template sections and the security checklist."))] = None,
    paths: Annotated[list[Annotated[str, Field(max_length=limits.PATH_CHARS)]] | None, Field(
        max_length=limits.PATHS, description=(
        "Files or folders inside the client's workspace roots: .sql files, migration folders (applied in "
        "file-name order), .md specs, .yaml/.json blueprints. Relative paths start at the first root. "
        "Needs a client that offers roots; otherwise pass `sql` or `spec`."))] = None,
    max_findings: Annotated[int, Field(ge=1, le=1000, description="Return at most this many findings.")] = 200,
    assume_platform: Annotated[bool, Field(description=(
        "Judge as on a Supabase project, where pg_graphql is installed (unless the SQL drops it): "
        "tables the API roles may select are then reported as visible in the GraphQL schema."))] = False,
    roots: Annotated[ListRootsResult | None, Resolve(_workspace_roots)] = None,
) -> tools.AuditResult:
    """Step 4 of 4: lint the backend for tenancy, RLS, performance and function-security mistakes.

    Call last, with the final `blueprint` (its SQL is rendered and read back), or with a user's
    own `sql`, migration `paths` or `spec` markdown; inputs can be combined. Rules carry Supabase's
    advisor names where they are its lints (auth_rls_initplan, rls_disabled_in_public...). Returns
    `ok` (no ERROR or WARN), counts per level and the findings, most severe first, each with a rule
    id, the object, file/line/column, a remediation and, where mechanical, fix SQL.
    """
    with _as_tool_error():
        files = confine(paths, root_paths(roots)) if paths else None
        return tools.audit_spec(template=template, blueprint=blueprint, sql=sql, spec=spec, paths=files,
                                max_findings=max_findings, assume_platform=assume_platform)


async def verify_rls(
    ctx: Context,
    template: Template = None,
    blueprint: BlueprintArg = None,
    sql: Annotated[str | None, Field(
        min_length=1, max_length=limits.SQL_CHARS,
        description="Migration SQL to verify: alone, the generic matrix runs (no cross-organisation access, "
                    "read-only roles write nothing, anon nothing); with a blueprint, it is judged against "
                    "the blueprint.")] = None,
    database_url: Annotated[str | None, Field(
        max_length=limits.URL_CHARS,
        description="A loopback PostgreSQL to verify in (e.g. the `supabase start` stack, "
                    "postgresql://postgres:postgres@127.0.0.1:54322/postgres). Default: a throwaway server. "
                    "Statements run there inside one transaction that is always rolled back; SQL that could end "
                    "the transaction or act beyond the database (COMMIT, roles, files...) is refused first.")] = None,
    grant_mode: Annotated[Literal["legacy", "explicit"], Field(
        description="Supabase's default privileges to emulate: legacy (new tables granted to the API roles: "
                    "the stricter test) or explicit (the 2026 default).")] = "legacy",
) -> tools.VerifyReport:
    """Prove tenant isolation on a real PostgreSQL: the attack matrix plus the platform's lints.

    Call after generate_rls (same `template` or `blueprint`), or with `sql` to check a user's own
    migrations. Applies the migrations, signs up users in every role of two organisations, then
    tries every select/insert/update/delete on every table as each of them and as anon, plus
    targeted attacks (org hopping, cross-tenant references, self-promotion, joining by insert,
    last owner leaving, calling private helpers). Nothing is kept. Returns `ok`, `leaks`, the
    failing cases (leaks first), the attacks, the lints and a markdown report. Takes a few seconds.
    """
    import anyio

    def progress(done: int, total: int, message: str) -> None:
        anyio.from_thread.run(ctx.report_progress, done, total, message)

    def run() -> tools.VerifyReport:
        with _as_tool_error():
            return tools.verify_rls(template=template, blueprint=blueprint, sql=sql, database_url=database_url,
                                    grant_mode=grant_mode, progress=progress)

    return await anyio.to_thread.run_sync(run)


# Runs statements on a database (a throwaway one, or the caller's with database_url), so it is not
# read-only; a guard and a forced rollback keep it from changing anything, hence not destructive.
VERIFY = ToolAnnotations(read_only_hint=False, idempotent_hint=True, open_world_hint=True, destructive_hint=False)

TOOLS = (
    (design_tenancy, "Design tenancy (step 1)", READ_ONLY),
    (generate_schema, "Generate schema (step 2)", READ_ONLY),
    (generate_rls, "Generate RLS policies (step 3)", READ_ONLY),
    (audit_spec, "Audit the design (step 4)", READ_ONLY),
    (verify_rls, "Verify tenant isolation (prove it)", VERIFY),
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


# --- prompts --------------------------------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n(.*)\Z", re.S)
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


class PromptArg(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    required: bool = False
    default: str = Field("", description="Text used when an optional argument is omitted.")


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

def build_server() -> MCPServer:
    server = MCPServer("blueprint-mcp", title="Blueprint", version=__version__,
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


def http_app(server: MCPServer, transport: Transport, policy: HttpPolicy) -> HttpGuard:
    """The Starlette app of an HTTP transport at its path in HTTP_PATHS, behind the Host/Origin/token guard."""
    # The SDK checks Host and Origin itself only for some bind addresses and with any port; give it
    # the guard's exact lists, so both layers accept the same requests.
    security = TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=sorted(policy.hosts),
                                         allowed_origins=sorted(policy.origins))
    if transport == "sse":
        inner = server.sse_app(sse_path=HTTP_PATHS["sse"], transport_security=security)
    elif transport == "streamable-http":
        inner = server.streamable_http_app(streamable_http_path=HTTP_PATHS["streamable-http"],
                                           transport_security=security)
    else:
        raise ValueError(f"unknown HTTP transport {transport!r}; use sse or streamable-http")
    return HttpGuard(inner, policy)


def run(transport: Transport = "stdio", host: str = "127.0.0.1", port: int = 8000,
        policy: HttpPolicy | None = None) -> None:
    """Serve until interrupted; every log line goes to stderr, stdout carries only the protocol."""
    server = build_server()
    if transport == "stdio":
        server.run("stdio")
        return
    import uvicorn

    # Not server.run(): the SDK's uvicorn config sends the access log to stdout.
    uvicorn.run(http_app(server, transport, policy or policy_for(host, port)), host=bind_address(host), port=port,
                log_config=_stderr_log_config())
