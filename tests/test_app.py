"""The MCP server through the real SDK client: in memory (both protocol modes), stdio and HTTP."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.types import INVALID_PARAMS
from mcp.types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from blueprint_mcp import tools
from blueprint_mcp.app import PromptFile, build_server, fill, load_prompt
from histories import long_history
from serving import serving

SERVER_DIR = Path(__file__).resolve().parents[1] / "server"
MODES = ["legacy", "auto"]
# What each client mode negotiates with this server: the handshake era, or the sessionless 2026-07-28.
PROTOCOLS = {"legacy": HANDSHAKE_PROTOCOL_VERSIONS, "auto": MODERN_PROTOCOL_VERSIONS}
TOOLS = ["design_tenancy", "generate_schema", "generate_rls", "audit_spec"]
WORKFLOW = TOOLS + ["verify_rls", "scaffold_project"]
ARTICLE_SQL = (Path(__file__).with_name("fixtures") / "article.sql").read_text(encoding="utf-8")
RESULT_KEYS = {
    "design_tenancy": {"design", "app", "tenancy", "capabilities", "tables", "access", "next_cursor", "blueprint",
                       "resources", "notes"},
    "generate_schema": {"design", "counts", "tables", "next_cursor", "resources", "notes"},
    "generate_rls": {"design", "counts", "policies", "next_cursor", "helpers", "resources", "notes"},
    "audit_spec": {"ok", "counts", "findings", "next_cursor"},
    "scaffold_project": {"design", "timestamp", "counts", "files", "next_cursor", "notes"},
}
BAD_BLUEPRINT = {"app": {"name": "Bad", "slug": "bad"}, "entities": [{"name": "Bad Name", "scope": "organization"}]}
RESOURCES = {
    "blueprint://template": "text/markdown",
    "blueprint://event-taxonomy": "application/json",
    "blueprint://templates": "application/json",
    "blueprint://schema": "application/json",
    "blueprint://access": "text/markdown",
}

both_modes = pytest.mark.parametrize("mode", MODES)


def _text(result) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


# --- tools ----------------------------------------------------------------------------------------

@both_modes
async def test_server_negotiates_the_mode_and_explains_the_workflow_in_its_instructions(mode):
    async with Client(build_server(), mode=mode) as c:
        version, instructions = c.protocol_version, c.instructions
    assert version in PROTOCOLS[mode]
    order = [instructions.index(f"{i}. {tool}") for i, tool in enumerate(WORKFLOW, start=1)]
    assert order == sorted(order)
    assert instructions.index("6. scaffold_project") < instructions.index("`blueprint-mcp render`")
    assert "Always carry the\nlatest `blueprint` forward" in instructions
    assert "Nothing is executed" not in instructions


@both_modes
async def test_instructions_titles_descriptions_and_the_prompt_tell_one_numbered_workflow(mode):
    async with Client(build_server(), mode=mode) as c:
        listed = (await c.list_tools()).tools
        prompt = (await c.get_prompt("design_backend", {"app_description": "A clinic"})).messages[0].content.text
    workflow = WORKFLOW
    for step, tool in enumerate(listed, start=1):
        assert tool.name == workflow[step - 1]
        assert tool.title.startswith(f"{step}. ")
        assert tool.description.startswith(f"Step {step} of 6: ")
        assert "\n    " not in tool.description  # no docstring indentation on the wire
    steps = [prompt.index(f"{step}. **") for step in range(1, 7)]
    assert steps == sorted(steps)
    for step, tool in enumerate(workflow, start=1):
        assert steps[step - 1] < prompt.index(f"`{tool}`", steps[step - 1]) < (steps + [len(prompt)])[step]
    assert "blueprint-mcp render" in prompt[steps[5]:]


@both_modes
async def test_lists_the_read_only_design_tools_verify_and_scaffold_with_output_schema(mode):
    async with Client(build_server(), mode=mode) as c:
        listed = (await c.list_tools()).tools
    assert [t.name for t in listed] == WORKFLOW
    verify = listed.pop(4)
    # It runs statements on a database (so not read-only) but changes nothing there (so not destructive).
    assert (verify.annotations.read_only_hint, verify.annotations.destructive_hint) == (False, False)
    assert {"ok", "leaks", "failures", "attacks", "lints"} <= set(verify.output_schema["properties"])
    for t in listed:
        a = t.annotations
        assert (a.read_only_hint, a.idempotent_hint, a.open_world_hint, a.destructive_hint) == (True, True, False, False)
        assert t.title and t.description
        assert set(RESULT_KEYS[t.name]) <= set(t.output_schema["properties"])
        assert "blueprint://schema" in t.input_schema["properties"]["blueprint"]["description"]


@both_modes
@pytest.mark.parametrize("tool", TOOLS)
async def test_each_tool_on_habit_tracker_returns_its_structured_result(mode, tool):
    async with Client(build_server(), mode=mode) as c:
        result = await c.call_tool(tool, {"template": "habit-tracker"})
    assert result.is_error is False
    assert set(result.structured_content) == RESULT_KEYS[tool]


@both_modes
async def test_generate_rls_policies_are_all_to_authenticated(mode):
    async with Client(build_server(), mode=mode) as c:
        result = await c.call_tool("generate_rls", {"template": "habit-tracker"})
    policies = result.structured_content["policies"]
    assert policies and result.structured_content["counts"]["tables"] == 17
    assert all(p["roles"] == ["authenticated"] for p in policies)


@both_modes
async def test_blueprint_returned_by_design_tenancy_carries_into_generate_schema(mode):
    async with Client(build_server(), mode=mode) as c:
        design = await c.call_tool("design_tenancy", {"app_name": "Book Club", "team_organizations": False})
        carried = design.structured_content["blueprint"]
        schema = await c.call_tool("generate_schema", {"blueprint": carried, "sections": ["core"]})
    assert carried["app"]["slug"] == "book-club"
    assert carried["tenancy"]["team_organizations"] is False
    assert schema.is_error is False
    assert "organizations" in [t["name"] for t in schema.structured_content["tables"]]


@both_modes
async def test_bad_blueprint_is_a_tool_error_naming_the_field_path_and_server_keeps_serving(mode):
    async with Client(build_server(), mode=mode) as c:
        bad = await c.call_tool("generate_schema", {"blueprint": BAD_BLUEPRINT})
        after = await c.call_tool("audit_spec", {"template": "habit-tracker"})
    assert bad.is_error is True
    assert "entities[0].name" in _text(bad)
    assert "Fix:" in _text(bad)
    assert after.is_error is False


@both_modes
async def test_unknown_template_is_a_tool_error_naming_template_and_server_keeps_serving(mode):
    async with Client(build_server(), mode=mode) as c:
        bad = await c.call_tool("generate_rls", {"template": "no-such-template"})
        after = await c.call_tool("generate_rls", {"template": "b2b-saas"})
    assert bad.is_error is True
    assert "template: unknown template 'no-such-template'" in _text(bad)
    assert after.is_error is False


@both_modes
async def test_argument_outside_the_input_schema_is_a_tool_error(mode):
    async with Client(build_server(), mode=mode) as c:
        result = await c.call_tool("audit_spec", {"template": "habit-tracker", "max_findings": 0})
    assert result.is_error is True
    assert "max_findings" in _text(result)


@both_modes
async def test_unexpected_exception_reaches_the_client_only_as_a_generic_error(mode, monkeypatch):
    # Fault injection: a crash inside the tool functions must not leak its text to the model.
    def crash(**_):
        raise RuntimeError("internal detail")

    monkeypatch.setattr(tools, "generate_schema", crash)
    async with Client(build_server(), mode=mode) as c:
        result = await c.call_tool("generate_schema", {"template": "habit-tracker"})
        after = await c.call_tool("generate_rls", {"template": "habit-tracker"})
    assert result.is_error is True
    assert _text(result) == "Error executing tool generate_schema"
    assert after.is_error is False


# --- resources ------------------------------------------------------------------------------------

@both_modes
async def test_lists_the_static_resources_and_the_template_resource(mode):
    async with Client(build_server(), mode=mode) as c:
        resources = (await c.list_resources()).resources
        templates = (await c.list_resource_templates()).resource_templates
    assert {str(r.uri): r.mime_type for r in resources} == RESOURCES
    assert [(t.uri_template, t.mime_type) for t in templates] == [
        ("blueprint://templates/{name}", "application/yaml"),
        ("blueprint://designs/{design}/blueprint.json{?only,part}", "application/json"),
        ("blueprint://designs/{design}/spec.md{?only,part}", "text/markdown"),
        ("blueprint://designs/{design}/schema.sql{?only,part}", "application/sql"),
        ("blueprint://designs/{design}/triggers.sql{?only,part}", "application/sql"),
        ("blueprint://designs/{design}/rls.sql{?only,part}", "application/sql"),
        ("blueprint://designs/{design}/pgtap.sql{?only,part}", "application/sql"),
        ("blueprint://designs/{design}/er.mmd{?only,part}", "text/vnd.mermaid"),
        ("blueprint://designs/{design}/analytics.sql{?dialect,part}", "application/sql"),
        ("blueprint://designs/{design}/project/{stamp}/{+path}{?part}", "text/plain"),
        ("blueprint://verify/{run}/report.md{?part}", "text/markdown"),
        ("blueprint://verify/{run}/failures.json{?part}", "application/json"),
        ("blueprint://verify/{run}/cases.json{?part}", "application/json")]
    assert all(r.title for r in resources) and all(t.title for t in templates)


@both_modes
async def test_spec_template_resource_is_the_nine_section_markdown(mode):
    async with Client(build_server(), mode=mode) as c:
        content = (await c.read_resource("blueprint://template")).contents[0]
    assert content.mime_type == "text/markdown"
    assert "## 1. Tenancy Model" in content.text and "## 9. Security Checklist" in content.text


@both_modes
async def test_schema_resource_is_the_blueprint_json_schema(mode):
    async with Client(build_server(), mode=mode) as c:
        content = (await c.read_resource("blueprint://schema")).contents[0]
    schema = json.loads(content.text)
    assert {"app", "tenancy", "entities", "analytics", "privacy"} <= set(schema["properties"])


@both_modes
async def test_access_resource_is_the_semantics_table_every_construct_row(mode):
    async with Client(build_server(), mode=mode) as c:
        content = (await c.read_resource("blueprint://access")).contents[0]
    assert content.mime_type == "text/markdown"
    assert "| A04 | `{roles: [R1, R2]}` |" in content.text and "| A22 |" in content.text


@both_modes
async def test_design_tenancy_takes_custom_roles_with_app_defined_capabilities(mode):
    roles = [{"name": "owner", "capabilities": ["read", "write", "manage_members", "manage_billing",
                                                "delete_organization", "view_clinical_notes"]},
             {"name": "dentist", "capabilities": ["read", "write", "view_clinical_notes"]},
             {"name": "receptionist", "capabilities": ["read", "write"]}]
    async with Client(build_server(), mode=mode) as c:
        result = await c.call_tool("design_tenancy", {
            "app_name": "Clinic", "roles": roles, "capabilities": [{"name": "view_clinical_notes"}],
            "include": ["blueprint"]})
    assert result.is_error is False
    out = result.structured_content
    assert out["capabilities"]["view_clinical_notes"] == ["owner", "dentist"]
    assert out["capabilities"]["manage_members"] == ["owner"]
    assert [r["name"] for r in out["blueprint"]["tenancy"]["roles"]] == ["owner", "dentist", "receptionist"]



@both_modes
async def test_design_tenancy_renames_a_template_or_blueprint_with_app_name_like_it_sets_its_description(mode):
    async with Client(build_server(), mode=mode) as c:
        renamed = await c.call_tool("design_tenancy", {"template": "b2b-saas", "app_name": "Renamed",
                                                       "app_description": "A renamed SaaS.", "include": ["blueprint"]})
        carried = renamed.structured_content["blueprint"]
        again = await c.call_tool("design_tenancy", {"blueprint": carried, "app_name": "Renamed Again",
                                                     "include": ["blueprint"]})
    out = renamed.structured_content
    assert out["design"].startswith("bp-")  # no longer the template unchanged
    assert out["app"] == {"name": "Renamed", "slug": "renamed", "description": "A renamed SaaS."}
    assert carried["app"] == out["app"]
    assert again.structured_content["app"] == {"name": "Renamed Again", "slug": "renamed-again",
                                               "description": "A renamed SaaS."}
    assert again.structured_content["blueprint"]["app"]["name"] == "Renamed Again"


@both_modes
async def test_event_taxonomy_resource_has_categories_and_canonical_events(mode):
    async with Client(build_server(), mode=mode) as c:
        content = (await c.read_resource("blueprint://event-taxonomy")).contents[0]
    taxonomy = json.loads(content.text)
    assert "core_feature" in taxonomy["categories"]
    assert "user_signed_up" in [e["name"] for e in taxonomy["events"]]


@both_modes
async def test_templates_resource_lists_every_template(mode):
    async with Client(build_server(), mode=mode) as c:
        content = (await c.read_resource("blueprint://templates")).contents[0]
    assert [t["name"] for t in json.loads(content.text)] == ["b2b-saas", "cms", "e-commerce", "habit-tracker", "marketplace"]


@both_modes
async def test_template_resource_returns_the_yaml_of_that_template(mode):
    async with Client(build_server(), mode=mode) as c:
        content = (await c.read_resource("blueprint://templates/habit-tracker")).contents[0]
    assert content.mime_type == "application/yaml"
    assert yaml.safe_load(content.text)["app"]["slug"] == "habit-tracker"


@both_modes
async def test_unknown_template_resource_is_an_error_listing_the_templates(mode):
    from mcp import MCPError

    async with Client(build_server(), mode=mode) as c:
        with pytest.raises(MCPError, match="unknown template 'nope'.*habit-tracker"):
            await c.read_resource("blueprint://templates/nope")
        after = await c.read_resource("blueprint://templates/b2b-saas")
    assert "b2b-saas" in after.contents[0].text


# --- prompts --------------------------------------------------------------------------------------

@both_modes
async def test_lists_the_prompts_with_their_declared_arguments(mode):
    async with Client(build_server(), mode=mode) as c:
        prompts = (await c.list_prompts()).prompts
    args = {p.name: [(a.name, a.required) for a in p.arguments] for p in prompts}
    assert args == {"design_backend": [("app_description", True), ("tenancy", False), ("template", False)],
                    "review_rls": [("sql", True)]}


@both_modes
async def test_design_backend_prompt_includes_the_app_description_and_names_the_tools(mode):
    async with Client(build_server(), mode=mode) as c:
        got = await c.get_prompt("design_backend", {"app_description": "A recipe sharing app for families"})
    text = got.messages[0].content.text
    assert "App: A recipe sharing app for families" in text
    assert "Tenancy: Not decided yet." in text
    assert all(tool in text for tool in TOOLS)


@both_modes
async def test_review_rls_prompt_keeps_braces_in_user_sql_verbatim(mode):
    sql = "create policy p on t using (x = '{sql}' and y = '{0}' and z = '{}');"
    async with Client(build_server(), mode=mode) as c:
        got = await c.get_prompt("review_rls", {"sql": sql})
    text = got.messages[0].content.text
    assert f"```sql\n{sql}\n```" in text
    assert "security_invoker" in text and "WITH CHECK" in text


@both_modes
async def test_prompt_without_a_required_argument_is_an_error(mode):
    from mcp import MCPError

    async with Client(build_server(), mode=mode) as c:
        with pytest.raises(MCPError, match="app_description"):
            await c.get_prompt("design_backend", {})


# --- prompt files (no client) ---------------------------------------------------------------------

def test_prompt_file_with_an_undeclared_placeholder_is_rejected(tmp_path):
    path = tmp_path / "p.md"
    path.write_text("---\nname: p\ndescription: d\narguments: [{name: a, required: true}]\n---\nuse {a} and {b}\n")
    with pytest.raises(ValueError, match=r"\['b'\] are not declared"):
        load_prompt(path)


def test_fill_substitutes_once_so_placeholders_in_values_stay_literal():
    prompt = PromptFile(name="p", description="d", text="{a}|{b}",
                        arguments=[{"name": "a"}, {"name": "b", "default": "none"}])
    assert fill(prompt, {"a": "{b}"}) == "{b}|none"


# --- real transports ------------------------------------------------------------------------------

def _env() -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(SERVER_DIR), os.environ.get("PYTHONPATH")]))}


# The relay takes the SDK's private context streams; a later 2.x without them must still serve (plain streams).
WITHOUT_PRIVATE_STREAMS = ("import runpy, blueprint_mcp.app as a; a.create_context_streams = None; "
                           "runpy.run_module('blueprint_mcp', run_name='__main__')")


@pytest.mark.parametrize("launch", [["-m", "blueprint_mcp"], ["-c", WITHOUT_PRIVATE_STREAMS]],
                         ids=["sdk-streams", "plain-streams"])
def test_stdio_answers_a_line_that_is_no_message_with_an_error_and_keeps_serving(launch):
    """The SDK dropped such a line silently (the client waited for ever): JSON nested past the parser's depth,
    malformed JSON, or JSON that is no JSON-RPC message. Now each gets its error, id null, as over HTTP."""
    import select
    import subprocess

    proc = subprocess.Popen([sys.executable, *launch], env=_env(), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def ask(line: str) -> dict:
        proc.stdin.write(line.encode() + b"\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, f"no answer to {line[:60]!r}"
        return json.loads(proc.stdout.readline())

    try:
        hello = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}
        assert ask(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello}))["id"] == 1
        proc.stdin.write(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
        deep = ask('{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "design_tenancy", '
                   '"arguments": {"blueprint": {"app": ' + "[" * 300 + "]" * 300 + "}}}}")
        malformed = ask("{not json")
        no_message = ask('{"foo": 1}')
        tools_ = ask(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdin.close()
        proc.stdout.close()
    assert deep == {"jsonrpc": "2.0", "id": None, "error": {
        "code": -32700, "message": "Parse error: recursion limit exceeded at line 1 column 322"}}
    assert malformed == {"jsonrpc": "2.0", "id": None, "error": {
        "code": -32700, "message": "Parse error: key must be a string at line 1 column 2"}}
    assert no_message == {"jsonrpc": "2.0", "id": None, "error": {
        "code": -32600, "message": "Invalid request: not a JSON-RPC 2.0 request, notification or response"}}
    assert [t["name"] for t in tools_["result"]["tools"]] == WORKFLOW


async def test_stdio_subprocess_lists_tools_and_generates_the_schema():
    params = StdioServerParameters(command=sys.executable, args=["-m", "blueprint_mcp"], env=_env())
    async with Client(params) as c:
        names = [t.name for t in (await c.list_tools()).tools]
        result = await c.call_tool("generate_schema", {"template": "habit-tracker", "sections": ["domain"]})
    assert names == WORKFLOW
    assert result.is_error is False
    assert "habits" in [t["name"] for t in result.structured_content["tables"]]


async def test_stdio_server_audits_a_long_history_through_its_parse_worker_and_keeps_its_channel_clean():
    """SQL long enough for the parse worker (a child of the server): the answer is what one process finds,
    and nothing the worker does reaches the stdio channel (a stray byte there would break the session)."""
    from blueprint_mcp.audit import audit_parsed, read_sql

    sql, _ = long_history()
    expected = audit_parsed(read_sql([("input.sql", sql)], worker=False))
    params = StdioServerParameters(command=sys.executable, args=["-m", "blueprint_mcp"], env=_env())
    async with Client(params) as c:
        result = await c.call_tool("audit_spec", {"sql": sql, "max_findings": 5})
        again = await c.call_tool("generate_schema", {"template": "habit-tracker", "sections": ["domain"]})
    assert result.is_error is False and again.is_error is False
    counts = {level: sum(1 for f in expected if f.level == level) for level in ("ERROR", "WARN", "INFO")}
    assert result.structured_content["counts"] == counts
    assert result.structured_content["findings"] == [f.model_dump(mode="json") for f in expected[:5]]


@both_modes
async def test_streamable_http_subprocess_serves_tool_calls(mode):
    with serving("streamable-http") as port:
        async with Client(f"http://127.0.0.1:{port}/mcp", mode=mode) as c:
            version = c.protocol_version
            names = [t.name for t in (await c.list_tools()).tools]
            result = await c.call_tool("audit_spec", {"template": "habit-tracker"})
    assert version in PROTOCOLS[mode]
    assert names == WORKFLOW
    assert result.is_error is False
    assert result.structured_content["ok"] is True


async def test_sse_subprocess_serves_tool_calls():
    with serving("sse") as port:
        async with Client(sse_client(f"http://127.0.0.1:{port}/sse"), mode="legacy") as c:
            result = await c.call_tool("generate_rls", {"template": "habit-tracker", "tables": ["habits"]})
    assert result.is_error is False
    assert {p["table"] for p in result.structured_content["policies"]} == {"habits"}


@both_modes
async def test_verify_rls_proves_habit_tracker_and_reports_progress(mode):
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, total, message))

    async with Client(build_server(), mode=mode) as c:
        result = await c.call_tool("verify_rls", {"template": "habit-tracker"}, progress_callback=on_progress)
    assert result.is_error is False
    assert result.structured_content["ok"] is True
    assert result.structured_content["leaks"] == 0
    assert result.structured_content["failures"] == []
    assert seen and seen[0][2] == "applying migrations"
    # The default answer fits the response budget (tests/test_budget.py covers the design tools).
    assert len(result.model_dump_json(by_alias=True, exclude_none=True)) <= 8_000


@both_modes
async def test_verify_rls_finds_the_leak_in_a_viewer_writable_table(mode):
    async with Client(build_server(), mode=mode) as c:
        result = await c.call_tool("verify_rls", {"sql": ARTICLE_SQL})
        out = result.structured_content
        link = next(r["uri"] for r in out["resources"] if r["uri"].endswith("/failures.json"))
        failures = json.loads((await c.read_resource(link)).contents[0].text)
    assert result.is_error is False
    assert out["ok"] is False
    assert out["failures"] == failures[:len(out["failures"])] and len(failures) == sum(
        n for verdict, n in out["counts"].items() if verdict in ("LEAK", "blocked", "error"))
    leaks = {(f["table"], f["actor"], f["command"]) for f in failures}
    assert ("habits", "viewer", "insert") in leaks
    assert len(result.model_dump_json(by_alias=True, exclude_none=True)) <= 8_000  # 403 leaks, 115 KB of them


async def test_verify_rls_refuses_a_remote_database_naming_the_field():
    async with Client(build_server()) as c:
        result = await c.call_tool("verify_rls", {"template": "habit-tracker",
                                                  "database_url": "postgresql://u@203.0.113.9/db"})
    assert result.is_error is True
    assert result.content[0].text == (
        "Error executing tool verify_rls: database_url: 203.0.113.9 is not a loopback address. Fix: pass a loopback "
        "database_url (e.g. supabase start's) or none (a throwaway server); to verify a remote database, run "
        "`blueprint-mcp verify <source> --database-url URL --allow-remote` in a terminal (nothing is committed, but "
        "statements do run there)")


# --- client-native: completions and titles ----------------------------------------------------------

@both_modes
async def test_completions_offer_template_names_artefact_sections_and_prompt_choices(mode):
    from mcp.types import PromptReference, ResourceTemplateReference

    def template(uri):
        return ResourceTemplateReference(type="ref/resource", uri=uri)

    async with Client(build_server(), mode=mode) as c:
        assert c.server_capabilities.completions is not None
        names = await c.complete(template("blueprint://templates/{name}"), {"name": "name", "value": "h"})
        design = await c.complete(template("blueprint://designs/{design}/rls.sql{?only,part}"),
                                  {"name": "design", "value": ""})
        only = await c.complete(template("blueprint://designs/{design}/schema.sql{?only,part}"),
                                {"name": "only", "value": "a"})
        prompt_template = await c.complete(PromptReference(type="ref/prompt", name="design_backend"),
                                           {"name": "template", "value": "B2"})
        tenancy = await c.complete(PromptReference(type="ref/prompt", name="design_backend"),
                                   {"name": "tenancy", "value": "team"})
        nothing = await c.complete(PromptReference(type="ref/prompt", name="review_rls"),
                                   {"name": "sql", "value": "create"})
    assert names.completion.values == ["habit-tracker"]
    assert design.completion.values == ["b2b-saas", "cms", "e-commerce", "habit-tracker", "marketplace"]
    assert only.completion.values == ["analytics"]
    assert prompt_template.completion.values == ["b2b-saas"]
    assert tenancy.completion.values == ["team organisations only"]
    assert nothing.completion.values == []


@both_modes
async def test_completions_offer_dialects_a_designs_tables_and_nothing_for_an_unknown_prompt(mode):
    from mcp.types import PromptReference, ResourceTemplateReference

    def template(uri):
        return ResourceTemplateReference(type="ref/resource", uri=uri)

    async with Client(build_server(), mode=mode) as c:
        dialects = await c.complete(template("blueprint://designs/{design}/analytics.sql{?dialect,part}"),
                                    {"name": "dialect", "value": ""})
        tables = await c.complete(template("blueprint://designs/{design}/rls.sql{?only,part}"),
                                  {"name": "only", "value": "habit"}, {"design": "habit-tracker"})
        no_design = await c.complete(template("blueprint://designs/{design}/rls.sql{?only,part}"),
                                     {"name": "only", "value": ""})
        unknown_design = await c.complete(template("blueprint://designs/{design}/rls.sql{?only,part}"),
                                          {"name": "only", "value": ""}, {"design": "nope"})
        unknown_prompt = await c.complete(PromptReference(type="ref/prompt", name="nope"),
                                          {"name": "template", "value": ""})
    assert dialects.completion.values == ["postgres", "duckdb", "clickhouse", "bigquery"]
    assert tables.completion.values == ["habits", "habit_check_ins", "habit_check_ins_private"]
    assert no_design.completion.values == unknown_design.completion.values == unknown_prompt.completion.values == []


@both_modes
async def test_an_unknown_prompt_is_invalid_params_naming_the_prompts(mode):
    async with Client(build_server(), mode=mode) as c:
        with pytest.raises(MCPError) as err:
            await c.get_prompt("design_backnd", {})
        after = await c.get_prompt("review_rls", {"sql": "select 1;"})
    assert err.value.error.code == INVALID_PARAMS
    assert err.value.error.message == ("unknown prompt 'design_backnd': did you mean 'design_backend'? "
                                       "The choices: design_backend, review_rls")
    assert after.messages


@both_modes
async def test_a_project_file_is_read_with_the_mime_type_its_link_gives(mode):
    async with Client(build_server(), mode=mode) as c:
        result = await c.call_tool("scaffold_project", {"template": "habit-tracker", "timestamp": "20250101000000"})
        first = {}  # a file of each type (each read renders the project again)
        for f in result.structured_content["files"]:
            first.setdefault(f["mime_type"], f["uri"])
        links = {uri: mime for mime, uri in first.items()}
        read = {uri: (await c.read_resource(uri)).contents[0].mime_type for uri in links}
    assert {m for m in links.values()} >= {"application/sql", "text/markdown", "application/typescript"}
    assert read == links


@both_modes
async def test_every_tool_resource_template_and_prompt_has_a_title(mode):
    async with Client(build_server(), mode=mode) as c:
        tools_ = (await c.list_tools()).tools
        resources = (await c.list_resources()).resources
        templates = (await c.list_resource_templates()).resource_templates
        prompts = (await c.list_prompts()).prompts
    titled = [*tools_, *resources, *templates, *prompts]
    assert len(titled) == 6 + 5 + 13 + 2
    assert all(x.title and x.title != x.name for x in titled), [x.name for x in titled if not x.title]
