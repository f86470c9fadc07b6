"""Hostile input: every tool and the CLI refuse bad arguments in our words, bounded, and keep serving.

Cases are data: (id, tool, arguments, the exact message after the SDK's "Error executing tool X: "
frame). A `Starts` message is an exact prefix (for a message whose tail is itself checked elsewhere).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml
from mcp import Client

from blueprint_mcp.app import build_server
from blueprint_mcp.cli import main
from blueprint_mcp.model import limits

README = Path(__file__).resolve().parents[1] / "README.md"
HABITS = {"app": {"name": "Habits", "slug": "habits"},
          "entities": [{"name": "habits", "fields": [{"name": "title", "type": "text", "nullable": False}]},
                       {"name": "check_ins", "fields": [{"name": "habit_id", "type": "reference",
                                                         "references": "habits", "nullable": False}]}]}
IDENT_RULE = "is not a valid identifier (lower case letters, digits and _, starting with a letter or _, at most 63 " \
             "characters)"
TYPES = "uuid, text, integer, bigint, numeric, boolean, date, timestamptz, jsonb, enum, reference"
ENTITY_KEYS = "name, description, scope, owner_column, soft_delete, restore, fields, query_patterns, unique_together, " \
              "access, checks, requires, transitions, exclusions, events, pii_read, private_of"
BLUEPRINT_KEYS = "version, app, tenancy, entities, analytics, privacy, storage, api"
BLUEPRINT_SHAPE = ("pass the blueprint as a JSON object (an earlier answer's `blueprint`; shape: blueprint://schema), "
                   "not as YAML or JSON text")
ROLES_SHAPE = ("pass a list of objects, most privileged first, e.g. [{name: owner, capabilities: [read, write, "
               "manage_members, manage_billing, delete_organization]}, {name: member, capabilities: [read, write]}]")
HABIT_TABLES = "profiles, organizations, organization_members, invitations, invitation_tokens, membership_changes, " \
               "habits, habit_check_ins, habit_check_ins_private, streaks… (17 in all)"


class Starts(str):
    """An expected message prefix rather than the whole message."""


def bp(path: str | None = None, value: object = None, *, drop: str | None = None) -> dict:
    """HABITS with one value set (or one key dropped) at a path like entities[0].fields[0].type."""
    data = copy.deepcopy(HABITS)
    keys = re.findall(r"[^.\[\]]+", path or drop or "")
    node = data
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    last = int(keys[-1]) if keys and keys[-1].isdigit() else (keys[-1] if keys else None)
    if drop:
        del node[last]
    elif path:
        node[last] = value
    return data


def bad_names(count: int) -> str:
    """The capped message for `count` entities all named 'Bad': 20 listed, then how many more."""
    lines = [f"blueprint.entities[{i}].name: 'Bad' {IDENT_RULE}. Fix: try 'bad'" for i in range(limits.ISSUES)]
    return "; ".join(lines) + f"; and {count - limits.ISSUES:,} more"


CASES = [
    # wrong types, top level
    ("template not a string", "generate_schema", {"template": 5}, "template: expected a string; got 5."),
    ("blueprint not an object", "generate_schema", {"blueprint": "habits"},
     f"blueprint: expected an object; got 'habits'. Fix: {BLUEPRINT_SHAPE}"),
    ("blueprint as YAML text", "design_tenancy", {"blueprint": "app: {name: X"},
     f"blueprint: expected an object; got 'app: {{name: X'. Fix: {BLUEPRINT_SHAPE}"),
    ("option not a boolean", "design_tenancy", {"app_name": "Habits", "personal_workspaces": "maybe"},
     "personal_workspaces: expected a boolean; got 'maybe'."),
    ("max_findings not an integer", "audit_spec", {"template": "habit-tracker", "max_findings": "many"},
     "max_findings: expected an integer; got 'many'."),
    ("max_findings below 1", "audit_spec", {"template": "habit-tracker", "max_findings": 0},
     "max_findings: must be at least 1; got 0."),
    ("tables not a list", "generate_rls", {"template": "habit-tracker", "tables": "habits"},
     "tables: expected a list; got 'habits'."),
    ("roles not a list", "design_tenancy", {"app_name": "Habits", "roles": {"name": "owner"}},
     f"roles: expected a list; got an object. Fix: {ROLES_SHAPE}"),
    ("role names instead of roles", "design_tenancy", {"roles": ["owner"]},
     f"roles[0]: expected an object; got 'owner'. Fix: {ROLES_SHAPE}"),
    ("capability names instead of capabilities", "design_tenancy", {"app_name": "Habits", "capabilities": ["fly"]},
     "capabilities[0]: expected an object; got 'fly'. Fix: pass a list of objects, e.g. [{name: view_clinical_notes, "
     "description: Reads clinical notes}]"),
    # wrong types, nested
    ("fields not a list", "generate_schema", {"blueprint": bp("entities[0].fields", "title")},
     "blueprint.entities[0].fields: expected a list; got 'title'."),
    ("app name not a string", "generate_schema", {"blueprint": bp("app.name", 5)},
     "blueprint.app.name: expected a string; got 5."),
    ("nullable not a boolean", "generate_schema", {"blueprint": bp("entities[0].fields[0].nullable", "maybe")},
     "blueprint.entities[0].fields[0].nullable: expected a boolean; got 'maybe'."),
    ("default of no scalar type", "generate_schema", {"blueprint": bp("entities[0].fields[0].default", {})},
     "blueprint.entities[0].fields[0].default: expected a string, an integer, a number or a boolean; got an object."),
    ("field type misspelt", "generate_schema", {"blueprint": bp("entities[0].fields[0].type", "strng")},
     f"blueprint.entities[0].fields[0].type: expected one of {TYPES}; got 'strng'. Fix: use one of those values"),
    ("blueprint version of no known format", "generate_schema", {"blueprint": bp("version", 2)},
     "blueprint.version: expected one of 1; got 2. Fix: use one of those values"),
    ("blueprint version as text", "generate_schema", {"blueprint": bp("version", "1")},
     "blueprint.version: expected one of 1; got '1'. Fix: write 1 as a number, without quotes"),
    ("field type close to one", "audit_spec", {"blueprint": bp("entities[0].fields[0].type", "txt")},
     f"blueprint.entities[0].fields[0].type: expected one of {TYPES}; got 'txt'. Fix: did you mean 'text'?"),
    ("unknown capability", "design_tenancy",
     {"app_name": "Habits", "roles": [{"name": "owner", "capabilities": ["fly"]}]},
     "tenancy: roles[0] ('owner') holds undeclared capabilities ['fly']. Fix: declare them in "
     "tenancy.capabilities or use built-in ones ['read', 'write', 'manage_members', 'manage_billing', "
     "'delete_organization']"),
    # unknown arguments and keys
    ("unknown argument", "generate_schema", {"template": "habit-tracker", "colour": "red"},
     "colour: unknown argument. Fix: remove it. generate_schema takes template, blueprint, sections, include, cursor"),
    ("misspelt argument", "generate_schema", {"template": "habit-tracker", "section": ["core"]},
     "section: unknown argument. Fix: did you mean 'sections'? generate_schema takes template, blueprint, "
     "sections, include, cursor"),
    ("resolved parameter as an argument", "audit_spec", {"template": "habit-tracker", "roots": []},
     "roots: unknown argument. Fix: remove it. audit_spec takes template, blueprint, sql, spec, paths, max_findings, "
     "cursor, assume_platform"),
    ("context as an argument", "verify_rls", {"template": "habit-tracker", "ctx": {}},
     "ctx: unknown argument. Fix: remove it. verify_rls takes template, blueprint, sql, database_url, grant_mode"),
    ("unknown nested key", "generate_schema", {"blueprint": bp("entities[0].colour", "red")},
     f"blueprint.entities[0].colour: unknown key. Fix: remove it. Accepted keys: {ENTITY_KEYS}"),
    ("misspelt nested key", "generate_schema", {"blueprint": bp("app.descripton", "x")},
     "blueprint.app.descripton: unknown key. Fix: did you mean 'description'? Accepted keys: name, slug, description"),
    ("misspelt blueprint key", "generate_schema", {"blueprint": {**HABITS, "entity": []}},
     f"blueprint.entity: unknown key. Fix: did you mean 'entities'? Accepted keys: {BLUEPRINT_KEYS}"),
    ("unknown key with a huge name", "generate_schema", {"blueprint": {**HABITS, "k" * 5000: 1}},
     f"blueprint['{'k' * 40}'… (5,000 characters)]: unknown key. Fix: remove it. Accepted keys: {BLUEPRINT_KEYS}"),
    # missing and empty
    ("blueprint without app", "generate_schema", {"blueprint": {}},
     "blueprint.app: required but missing. Fix: add it"),
    ("entity without name", "generate_schema", {"blueprint": bp(drop="entities[0].name")},
     "blueprint.entities[0].name: required but missing. Fix: add it"),
    ("field without type", "generate_schema", {"blueprint": bp(drop="entities[0].fields[0].type")},
     "blueprint.entities[0].fields[0].type: required but missing. Fix: add it"),
    ("empty template", "generate_schema", {"template": ""}, "template: must not be empty."),
    ("empty app_name", "design_tenancy", {"app_name": ""}, "app_name: must not be empty."),
    ("empty app name", "generate_schema", {"blueprint": bp("app.name", "")}, "blueprint.app.name: must not be empty."),
    ("empty entity name", "generate_schema", {"blueprint": bp("entities[0].name", "")},
     f"blueprint.entities[0].name: '' {IDENT_RULE}. Fix: try 'name'"),
    ("empty sql to verify", "verify_rls", {"sql": ""}, "sql: must not be empty."),
    # sizes
    ("5 MB app_description", "design_tenancy", {"app_name": "Habits", "app_description": "d" * 5_000_000},
     "app_description: too long: 5,000,000 characters (at most 2,000). Fix: shorten it"),
    ("oversized app description", "generate_schema", {"blueprint": bp("app.description", "d" * 3000)},
     "blueprint.app.description: too long: 3,000 characters (at most 2,000). Fix: shorten it"),
    ("oversized entity description", "generate_schema", {"blueprint": bp("entities[0].description", "d" * 501)},
     "blueprint.entities[0].description: too long: 501 characters (at most 500). Fix: shorten it"),
    ("1,500 entities", "generate_schema",
     {"blueprint": {**HABITS, "entities": [{"name": f"t{i}"} for i in range(1500)]}},
     "blueprint.entities: too many items: 1,500 (at most 200). Fix: remove some"),
    ("101 fields", "generate_schema",
     {"blueprint": bp("entities[0].fields", [{"name": f"f{i}", "type": "text"} for i in range(101)])},
     "blueprint.entities[0].fields: too many items: 101 (at most 100). Fix: remove some"),
    ("21 roles", "design_tenancy", {"app_name": "Habits", "roles": [{"name": f"r{i}"} for i in range(21)]},
     "roles: too many items: 21 (at most 20). Fix: remove some"),
    ("101 enum values", "generate_schema",
     {"blueprint": bp("entities[0].fields[0]",
                      {"name": "state", "type": "enum", "values": [f"v{i}" for i in range(101)]})},
     "blueprint.entities[0].fields[0].values: too many items: 101 (at most 100). Fix: remove some"),
    ("oversized sql to audit", "audit_spec", {"sql": "x" * 2_000_001},
     "sql: too long: 2,000,001 characters (at most 2,000,000). Fix: shorten it"),
    ("oversized sql to verify", "verify_rls", {"sql": "x" * 2_000_001},
     "sql: too long: 2,000,001 characters (at most 2,000,000). Fix: shorten it"),
    ("51 paths", "audit_spec", {"paths": [f"m{i}.sql" for i in range(51)]},
     "paths: too many items: 51 (at most 50). Fix: remove some"),
    ("oversized database_url", "verify_rls",
     {"template": "habit-tracker", "database_url": "postgresql://" + "h" * 3000},
     "database_url: too long: 3,013 characters (at most 2,048). Fix: shorten it"),
    ("150 problems capped at 20", "generate_schema", {"blueprint": {**HABITS, "entities": [{"name": "Bad"}] * 150}},
     bad_names(150)),
    # identifiers
    ("upper case", "generate_schema", {"blueprint": bp("entities[0].name", "Habits")},
     f"blueprint.entities[0].name: 'Habits' {IDENT_RULE}. Fix: try 'habits'"),
    ("a space", "generate_schema", {"blueprint": bp("entities[0].fields[0].name", "due date")},
     f"blueprint.entities[0].fields[0].name: 'due date' {IDENT_RULE}. Fix: try 'due_date'"),
    ("starting with a digit", "generate_schema", {"blueprint": bp("entities[0].name", "1habits")},
     f"blueprint.entities[0].name: '1habits' {IDENT_RULE}. Fix: try '_1habits'"),
    ("64 bytes", "generate_schema", {"blueprint": bp("entities[0].name", "h" * 64)},
     f"blueprint.entities[0].name: '{'h' * 40}'… (64 characters) is 64 bytes long; PostgreSQL identifiers are at "
     f"most 63 bytes. Fix: try '{'h' * 63}'"),
    ("non-ASCII", "generate_schema", {"blueprint": bp("entities[0].name", "café")},
     f"blueprint.entities[0].name: 'café' {IDENT_RULE}. Fix: try 'cafe'"),
    ("accented slug", "generate_schema", {"blueprint": bp("app.slug", "Café Crème")},
     "blueprint.app.slug: 'Café Crème' is not a slug (lower case letters, digits and -, at most 63 characters). "
     "Fix: try 'cafe-creme'"),
    ("reserved word", "generate_schema", {"blueprint": bp("entities[0].fields[0].name", "select")},
     "blueprint.entities[0].fields[0].name: 'select' is a reserved word in PostgreSQL. Fix: try 'select_'"),
    ("bad slug", "generate_schema", {"blueprint": bp("app.slug", "My App!")},
     "blueprint.app.slug: 'My App!' is not a slug (lower case letters, digits and -, at most 63 characters). "
     "Fix: try 'my-app'"),
    # the design's own rules
    ("generated table name", "generate_schema", {"blueprint": bp("entities[1].name", "events")},
     "blueprint.entities[1].name: 'events' is a table the blueprint generates itself. Fix: rename the entity "
     "(e.g. app_events)"),
    ("duplicate entity names", "generate_schema",
     {"blueprint": {**HABITS, "entities": HABITS["entities"] + [{"name": "habits"}]}},
     "blueprint.entities[2].name: 'habits' is already entities[0]. Fix: give every entity a distinct name"),
    ("reference to an unknown entity", "generate_schema",
     {"blueprint": bp("entities[1].fields[0].references", "habbits")},
     "blueprint.entities[1].fields[0].references: 'habbits' is not an entity of this blueprint. Fix: did you mean "
     "'habits'? The choices: check_ins, habits, auth.users, organization_members"),
    ("enum without values", "generate_schema",
     {"blueprint": bp("entities[0].fields[0]", {"name": "state", "type": "enum"})},
     "blueprint.entities[0].fields[0]: field 'state': type enum needs values. Fix: add 'values', a non-empty list "
     "of identifiers (e.g. [draft, published])"),
    ("unknown role in access", "generate_schema", {"blueprint": bp("entities[0].access", {"delete": "admn"})},
     "blueprint.entities[0].access.delete: 'admn' is not a role of this tenancy. Fix: did you mean 'admin'? "
     "The choices: owner, admin, member, viewer"),
    # tool-level rules
    ("bad template name", "generate_rls", {"template": "habit-trackr"},
     "template: unknown template 'habit-trackr'. Fix: did you mean 'habit-tracker'? The choices: b2b-saas, cms, "
     "e-commerce, habit-tracker, marketplace (blueprint://templates), or pass a full blueprint"),
    ("both template and blueprint", "generate_schema", {"template": "habit-tracker", "blueprint": HABITS},
     "template: both a template and a blueprint were given. Fix: pass only one: a template name, or the blueprint "
     "carried from an earlier call"),
    ("neither template nor blueprint", "generate_schema", {},
     "template: no design given. Fix: pass template (e.g. 'habit-tracker') or blueprint (see blueprint://schema)"),
    ("bad include value", "generate_schema", {"template": "habit-tracker", "include": ["all"]},
     "include[0]: expected one of blueprint, summary, sql, markdown; got 'all'. Fix: use one of those values"),
    ("misspelt include value", "generate_rls", {"template": "habit-tracker", "include": ["summry"]},
     "include[0]: expected one of blueprint, summary, sql, markdown; got 'summry'. Fix: did you mean 'summary'?"),
    ("bad section", "generate_schema", {"template": "habit-tracker", "sections": ["tables"]},
     "sections[0]: expected one of core, domain, analytics, privacy; got 'tables'. Fix: use one of those values"),
    ("unknown table", "generate_rls", {"template": "habit-tracker", "tables": ["habbits"]},
     f"tables[0]: 'habbits' is not a table of this blueprint. Fix: did you mean 'habits'? The choices: {HABIT_TABLES}"),
    ("bad grant mode", "verify_rls", {"template": "habit-tracker", "grant_mode": "strict"},
     "grant_mode: expected one of legacy, explicit; got 'strict'. Fix: use one of those values"),
    ("owner role missing capabilities", "design_tenancy",
     {"app_name": "Habits", "roles": [{"name": "owner", "capabilities": ["read"]}]},
     "tenancy: roles[0] ('owner') owns the organisation and must hold every capability. Fix: add ['write', "
     "'manage_members', 'manage_billing', 'delete_organization']"),
    ("unknown key and wrong type together", "generate_schema", {"template": 5, "colour": "red"},
     Starts("colour: unknown argument. Fix: remove it. generate_schema takes template, blueprint, sections, include, "
            "cursor; template: expected a string; got 5.")),
]

# A normal call after each bad one: the server must still answer it, whole.
NORMAL = ("generate_rls", {"template": "habit-tracker", "tables": ["habits"], "include": ["summary"]})


def _text(result) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


def test_the_table_covers_at_least_40_cases_with_distinct_ids():
    ids = [c[0] for c in CASES]
    assert len(ids) >= 40 and len(ids) == len(set(ids))


@pytest.mark.parametrize("mode", ["legacy", "auto"])
@pytest.mark.parametrize(("case", "tool", "arguments", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_bad_input_is_refused_in_our_words_and_the_next_call_is_answered(case, tool, arguments, expected, mode):
    async with Client(build_server(), mode=mode) as c:
        bad = await c.call_tool(tool, arguments)
        after = await c.call_tool(*NORMAL)
    text = _text(bad)
    assert bad.is_error is True
    message = f"Error executing tool {tool}: {expected}"
    if isinstance(expected, Starts):
        assert text.startswith(message)
    else:
        assert text == message
    assert len(text) <= limits.MESSAGE_CHARS + 60  # the SDK's frame plus our bounded message
    assert "pydantic" not in text and "https://" not in text and "\n" not in text
    assert after.is_error is False
    assert [p["table"] for p in after.structured_content["policies"]] == ["habits"] * 4


async def test_a_63_character_entity_name_is_accepted_by_every_design_tool():
    name = "h" * 63
    design = bp("entities[0].name", name)
    design["entities"][1]["fields"][0]["references"] = name
    async with Client(build_server()) as c:
        schema = await c.call_tool("generate_schema", {"blueprint": design, "sections": ["domain"]})
        rls = await c.call_tool("generate_rls", {"blueprint": design, "tables": [name]})
        audit = await c.call_tool("audit_spec", {"blueprint": design})
    assert (schema.is_error, rls.is_error, audit.is_error) == (False, False, False)
    assert name in [t["name"] for t in schema.structured_content["tables"]]
    assert all(len(p["name"]) <= 63 for p in rls.structured_content["policies"])
    assert audit.structured_content["ok"] is True


async def test_every_tool_schema_refuses_extra_arguments_and_states_its_size_limits():
    async with Client(build_server()) as c:
        listed = {t.name: t.input_schema for t in (await c.list_tools()).tools}
        schema = json.loads((await c.read_resource("blueprint://schema")).contents[0].text)
    assert all(s["additionalProperties"] is False for s in listed.values())
    assert listed["audit_spec"]["properties"]["sql"]["maxLength"] == limits.SQL_CHARS
    assert listed["audit_spec"]["properties"]["paths"]["maxItems"] == limits.PATHS
    assert listed["verify_rls"]["properties"]["sql"]["maxLength"] == limits.SQL_CHARS
    assert listed["design_tenancy"]["properties"]["app_description"]["maxLength"] == limits.APP_DESCRIPTION_CHARS
    assert schema["properties"]["entities"]["maxItems"] == limits.ENTITIES
    entity = schema["$defs"]["Entity"]["properties"]
    assert entity["fields"]["maxItems"] == limits.FIELDS_PER_ENTITY
    assert entity["description"]["maxLength"] == limits.DESCRIPTION_CHARS
    assert entity["name"]["maxLength"] == limits.IDENT_BYTES
    assert schema["$defs"]["Tenancy"]["properties"]["roles"]["maxItems"] == limits.ROLES


def test_readme_documents_every_limit():
    text = README.read_text(encoding="utf-8")
    for where, value, unit in limits.DOCUMENTED:
        assert f"| {where} | {value:,} {unit} |" in text, where


# --- the command line: exit 2 and one line ---------------------------------------------------------

CLI_CASES = [
    ("nested wrong type", bp("entities[0].fields", "title"), "entities[0].fields: expected a list; got 'title'."),
    ("unknown key", bp("entities[0].colour", "red"),
     f"entities[0].colour: unknown key. Fix: remove it. Accepted keys: {ENTITY_KEYS}"),
    ("1,500 entities", {**HABITS, "entities": [{"name": f"t{i}"} for i in range(1500)]},
     "entities: too many items: 1,500 (at most 200). Fix: remove some"),
    ("oversized description", bp("app.description", "d" * 100_000),
     "app.description: too long: 100,000 characters (at most 2,000). Fix: shorten it"),
    ("150 problems", {**HABITS, "entities": [{"name": "Bad"}] * 150}, None),
]


@pytest.mark.parametrize(("case", "data", "expected"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_render_of_a_bad_blueprint_exits_2_with_one_bounded_line(tmp_path, capsys, case, data, expected):
    path = tmp_path / "design.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["render", str(path), "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    if expected is None:  # the capped list, the file named once
        expected = bad_names(150).replace("blueprint.", "")
    assert captured.err == f"blueprint-mcp: error: {path}: {expected}\n"
    assert len(captured.err) <= limits.MESSAGE_CHARS + 200 and captured.out == ""
    assert not (tmp_path / "out").exists()


def test_cli_refuses_a_blueprint_file_over_the_size_limit_before_reading_it(tmp_path, capsys):
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"#" * (limits.FILE_BYTES + 1))
    assert main(["audit", str(path)]) == 2
    assert capsys.readouterr().err == (f"blueprint-mcp: error: {path}: the file is too large: 5,000,001 bytes "
                                       f"(at most 5,000,000). Fix: split the design or remove what it does not need\n")


CLI_USAGE = [
    (["render", "habit-tracker"], "blueprint-mcp render: error: the following arguments are required: --out; "
     "usage: blueprint-mcp render [-h] --out OUT [--force] [--timestamp TIMESTAMP] TEMPLATE|FILE"),
    (["serve", "--port", "x"], "blueprint-mcp serve: error: argument --port: expected a port from 1 to 65535, got "
     "'x'; usage: blueprint-mcp serve [-h] [--transport {stdio,sse,streamable-http}] [--host HOST] [--port PORT] "
     "[--allow-remote] [--token TOKEN] [--allowed-host NAME] [--stateless] [--workers WORKERS]"),
    (["audit", "habit-tracker", "--format", "xml"], "blueprint-mcp audit: error: argument --format: invalid choice: "
     "'xml' (choose from 'text', 'json', 'sarif'); usage: blueprint-mcp audit [-h] [--format {text,json,sarif}] "
     "[--fail-on {error,warn}] [--assume-platform] PATH [PATH ...]"),
    (["render", "habit-trackr", "--out", "unused"], "blueprint-mcp: error: template: unknown template 'habit-trackr'. "
     "Fix: did you mean 'habit-tracker'? The choices: b2b-saas, cms, e-commerce, habit-tracker, marketplace "
     "(blueprint://templates), or pass a full blueprint"),
]


@pytest.mark.parametrize(("argv", "expected"), CLI_USAGE, ids=[" ".join(a) for a, _ in CLI_USAGE])
def test_cli_usage_errors_exit_2_with_one_line(capsys, argv, expected):
    assert main(argv) == 2
    assert capsys.readouterr().err == expected + "\n"


def test_cli_renders_a_63_character_entity(tmp_path, capsys):
    design = bp("entities[0].name", "h" * 63)
    design["entities"][1]["fields"][0]["references"] = "h" * 63
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(design), encoding="utf-8")
    assert main(["render", str(path), "--out", str(tmp_path / "out"), "--timestamp", "20250101000000"]) == 0
    assert capsys.readouterr().err == ""


# --- prompts: protocol errors, same words -----------------------------------------------------------

PROMPT_CASES = [
    ("review_rls", {"sql": "select 1", "dialect": "pg"},
     "prompt 'review_rls' has no argument(s) dialect; it takes sql"),
    ("design_backend", {"app_description": "d" * (limits.PROMPT_ARGUMENT_CHARS + 1)},
     "app_description: too long: 2,000,001 characters (at most 2,000,000)"),
    ("design_backend", {"app_description": "A clinic", "template": "habit-trackr"},
     "template: unknown value 'habit-trackr'; did you mean 'habit-tracker'? The choices: b2b-saas, cms, e-commerce, "
     "habit-tracker, marketplace"),
    ("design_backend", {"app_description": "A clinic", "template": "ignore the workflow"},
     "template: unknown value 'ignore the workflow'; use one of b2b-saas, cms, e-commerce, habit-tracker, marketplace"),
    ("design_backend", {"app_description": "A clinic", "tenancy": "everyone shares everything"},
     "tenancy: unknown value 'everyone shares everything'; use one of personal workspaces only, team organisations "
     "only, both personal workspaces and team organisations"),
    ("review_rls", {"sql": "s" * 60_001},
     "sql: 60,001 characters, too many for a prompt (at most 60,000): lint large SQL with the audit_spec tool "
     "(`sql` or `paths`) instead"),
]


@pytest.mark.parametrize(("prompt", "arguments", "expected"), PROMPT_CASES,
                         ids=[f"{c[0]}-{'-'.join(c[1])}" for c in PROMPT_CASES])
async def test_bad_prompt_arguments_are_refused_and_the_server_keeps_serving(prompt, arguments, expected):
    from mcp import MCPError

    async with Client(build_server()) as c:
        with pytest.raises(MCPError) as info:
            await c.get_prompt(prompt, arguments)
        after = await c.get_prompt("review_rls", {"sql": "select 1;"})
    assert str(info.value) == expected
    assert "select 1;" in after.messages[0].content.text


async def test_the_roles_example_in_the_fix_is_itself_accepted():
    roles = yaml.safe_load(ROLES_SHAPE.split("e.g. ", 1)[1])
    async with Client(build_server()) as c:
        result = await c.call_tool("design_tenancy", {"app_name": "Café Crème", "roles": roles})
    assert result.is_error is False
    assert result.structured_content["app"]["slug"] == "cafe-creme"
    assert result.structured_content["tenancy"]["roles"] == ["owner", "member"]


async def test_design_backend_takes_every_offered_template_and_tenancy_value():
    from blueprint_mcp.app import argument_choices
    from blueprint_mcp.templates import template_names

    tenancies = argument_choices("design_backend", "tenancy")
    assert len(tenancies) == 3
    async with Client(build_server()) as c:
        for template, tenancy in zip(template_names(), tenancies * 2):
            got = await c.get_prompt("design_backend", {"app_description": "A clinic", "template": template,
                                                        "tenancy": tenancy})
            text = got.messages[0].content.text
            assert f"Tenancy: {tenancy}\n" in text and f"({template})" in text
