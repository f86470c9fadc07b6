"""The response budget: what a client puts into a model's context stays small, whatever the input.

tools/list at most 12,000 bytes; every default answer on habit-tracker at most 8,000 bytes; no answer to
any accepted input above 80,000 bytes (about 20,000 tokens). Sizes are the compact JSON of the result
as the SDK client receives it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from mcp import Client

from blueprint_mcp.app import build_server
from blueprint_mcp.model import limits
from blueprint_mcp.templates import template_names

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
LIST_BYTES, DEFAULT_BYTES, CAP_BYTES = 12_000, 8_000, 80_000
DESIGN_TOOLS = ["design_tenancy", "generate_schema", "generate_rls", "audit_spec"]
PAGED = {"design_tenancy": "access", "generate_schema": "tables", "generate_rls": "policies",
         "audit_spec": "findings"}
DESIGNS = [pytest.param({"template": name}, id=name) for name in template_names()] + [
    pytest.param({"blueprint": yaml.safe_load(p.read_text())}, id=f"examples/{p.stem}") for p in EXAMPLES]


def size(result) -> int:
    return len(result.model_dump_json(by_alias=True, exclude_none=True))


def big_blueprint(entities: int, fields: int = 12) -> dict:
    """As large as the limits allow in the ways that grow answers: entities, fields, long descriptions."""
    words = "x" * (limits.DESCRIPTION_CHARS - 1)
    return {"app": {"name": "Huge", "slug": "huge", "description": "d" * limits.APP_DESCRIPTION_CHARS},
            "entities": [{"name": f"entity_{i:03}", "description": words,
                          "fields": [{"name": f"field_{j:02}", "type": "text", "description": words}
                                     for j in range(fields)]
                          + ([{"name": "parent_id", "type": "reference", "references": f"entity_{i - 1:03}"}]
                             if i else [])}
                         for i in range(entities)]}


async def test_tools_list_fits_its_budget():
    async with Client(build_server()) as c:
        listed = await c.list_tools()
    assert size(listed) <= LIST_BYTES, size(listed)


@pytest.mark.parametrize("design", DESIGNS)
async def test_every_default_answer_on_every_template_and_example_fits_the_default_budget(design):
    async with Client(build_server()) as c:
        for tool in DESIGN_TOOLS:
            result = await c.call_tool(tool, design)
            assert result.is_error is False
            assert size(result) <= DEFAULT_BYTES, (tool, size(result))
            text = result.content[0].text
            # The text block is a short human summary, not a second copy of structuredContent.
            assert len(text) <= 600 and not text.startswith("{"), text


async def test_include_nothing_returns_counts_and_links_only_and_differs_from_the_default():
    async with Client(build_server()) as c:
        default = await c.call_tool("generate_rls", {"template": "habit-tracker"})
        nothing = await c.call_tool("generate_rls", {"template": "habit-tracker", "include": []})
        design = await c.call_tool("design_tenancy", {"template": "habit-tracker", "include": []})
    assert default.structured_content["policies"] != []
    assert nothing.structured_content["policies"] == [] and nothing.structured_content["helpers"] == []
    assert nothing.structured_content["counts"] == default.structured_content["counts"] == {
        "tables": 17, "select": 15, "insert": 4, "update": 5, "delete": 6}
    assert design.structured_content["blueprint"] is None and design.structured_content["access"] == []
    assert [r["uri"] for r in nothing.structured_content["resources"]] == [
        "blueprint://designs/habit-tracker/rls.sql", "blueprint://designs/habit-tracker/spec.md?only=rls",
        "blueprint://designs/habit-tracker/pgtap.sql"]


async def test_large_artefacts_are_links_and_embedded_only_when_asked_for():
    async with Client(build_server()) as c:
        default = await c.call_tool("generate_schema", {"template": "habit-tracker"})
        asked = await c.call_tool("generate_schema", {"template": "habit-tracker", "include": ["sql"]})
        links = [b for b in default.content if b.type == "resource_link"]
        read = {str(b.uri): (await c.read_resource(str(b.uri))).contents[0] for b in links}
    assert [b.type for b in default.content] == ["text"] + ["resource_link"] * 5  # schema, triggers, spec, ER, analytics
    assert all(b.size == len(read[str(b.uri)].text.encode()) for b in links)
    assert "create table" not in default.model_dump_json()
    embedded = [b.resource for b in asked.content if b.type == "resource"]
    # Schema and triggers together pass EMBED_BYTES since change_member_role(): the triggers stay a link, said so.
    assert [str(e.uri) for e in embedded] == ["blueprint://designs/habit-tracker/schema.sql"]
    assert [n.split(" is ")[0] for n in asked.structured_content["notes"] if "too large to embed" in n] == [
        "blueprint://designs/habit-tracker/triggers.sql"]
    assert [e.text for e in embedded] == [read[str(e.uri)].text for e in embedded]
    assert all(e.mime_type == "application/sql" for e in embedded)


async def test_a_template_too_large_for_the_default_answer_links_its_blueprint_unless_asked_for():
    async with Client(build_server()) as c:
        small = (await c.call_tool("design_tenancy", {"template": "habit-tracker"})).structured_content
        default = (await c.call_tool("design_tenancy", {"template": "e-commerce"})).structured_content
        asked = (await c.call_tool("design_tenancy", {"template": "e-commerce",
                                                      "include": ["blueprint", "summary"]})).structured_content
        linked = json.loads((await c.read_resource(default["resources"][0]["uri"])).contents[0].text)
    assert small["blueprint"]["app"]["slug"] == "habit-tracker" and small["notes"] == []
    assert default["blueprint"] is None
    size = len(json.dumps(asked["blueprint"], separators=(",", ":")))
    assert default["notes"] == [f"the blueprint is {size:,} bytes, too large to inline: read "
                                'blueprint://designs/e-commerce/blueprint.json (or include: ["blueprint"])']
    assert asked["blueprint"] == linked and asked["notes"] == []


async def test_a_changed_design_gets_a_stored_id_whose_links_any_later_call_can_read():
    async with Client(build_server()) as c:
        design = await c.call_tool("design_tenancy", {"template": "habit-tracker", "personal_workspaces": False})
        out = design.structured_content
        blueprint = json.loads((await c.read_resource(out["resources"][0]["uri"])).contents[0].text)
        again = await c.call_tool("generate_rls", {"blueprint": out["blueprint"], "include": []})
    assert out["design"].startswith("bp-") and len(out["design"]) == 23
    assert blueprint == out["blueprint"] and blueprint["tenancy"]["personal_workspaces"] is False
    assert again.structured_content["design"] == out["design"]


async def test_a_long_description_is_not_echoed_in_the_summary():
    description = "A" * limits.APP_DESCRIPTION_CHARS
    async with Client(build_server()) as c:
        result = await c.call_tool("design_tenancy", {"app_name": "Long", "app_description": description,
                                                      "include": ["summary"]})
    assert len(result.structured_content["app"]["description"]) == 200
    assert result.model_dump_json().count("A" * 201) == 0


async def test_the_largest_accepted_blueprint_never_answers_above_the_cap_and_pages_cover_every_item():
    bp = big_blueprint(limits.ENTITIES)
    every = ["blueprint", "summary", "sql", "markdown"]
    async with Client(build_server()) as c:
        for tool in DESIGN_TOOLS:
            for include in ([None, every] if tool != "audit_spec" else [None]):
                args = {"blueprint": bp} | ({"include": include} if include else {})
                result = await c.call_tool(tool, args)
                assert result.is_error is False, result.content[0].text
                assert size(result) <= CAP_BYTES, (tool, include, size(result))
        seen, cursor = [], None
        while True:
            page = (await c.call_tool("generate_rls", {"blueprint": bp, "cursor": cursor} if cursor
                                      else {"blueprint": bp})).structured_content
            seen += [(p["table"], p["command"]) for p in page["policies"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    counts = page["counts"]
    assert len(seen) == len(set(seen)) == sum(counts[c] for c in ("select", "insert", "update", "delete"))
    assert counts["tables"] >= limits.ENTITIES


def big_tenancy(entities: int = 3) -> dict:
    """The most roles and capabilities the limits accept, names and descriptions at their longest, every role
    holding every capability (app-defined ones need not follow the ranking), every other role reading."""
    words = "w" * (limits.DESCRIPTION_CHARS - 1)
    caps = [{"name": f"c{i:02}_".ljust(limits.IDENT_BYTES, "c"), "description": words}
            for i in range(limits.CAPABILITIES)]
    held = ["read", "write", "manage_members", "manage_billing", "delete_organization", *(c["name"] for c in caps)]
    roles = [{"name": f"r{i:02}_".ljust(limits.IDENT_BYTES, "r"), "description": words, "capabilities": held}
             for i in range(limits.ROLES)]
    return {"app": {"name": "Roles", "slug": "roles"}, "tenancy": {"roles": roles, "capabilities": caps},
            "entities": [{"name": f"entity_{i:03}", "description": words, "fields": [
                {"name": f"field_{j:02}", "type": "text", "description": words} for j in range(12)],
                "access": {"select": [{"roles": [r["name"] for r in roles[::2]]}]}} for i in range(entities)]}


async def test_the_largest_tenancy_never_answers_above_the_cap_on_any_page():
    bp = big_tenancy()
    async with Client(build_server()) as c:
        for tool in DESIGN_TOOLS:
            for include in ([None, [], ["blueprint", "summary", "sql", "markdown"]] if tool != "audit_spec"
                            else [None]):
                cursor, pages = None, 0
                while True:
                    args = {"blueprint": bp} | ({"include": include} if include is not None else {}) | (
                        {"cursor": cursor} if cursor else {})
                    result = await c.call_tool(tool, args)
                    assert result.is_error is False, result.content[0].text
                    assert size(result) <= CAP_BYTES, (tool, include, pages, size(result))
                    cursor, pages = result.structured_content.get("next_cursor"), pages + 1
                    if cursor is None:
                        break
        tenancy = (await c.call_tool("design_tenancy", {"blueprint": bp})).structured_content
    # The capability map stops where it would grow past its share; a note names the rest.
    assert 0 < len(tenancy["capabilities"]) < 55
    assert any(n.startswith(f"{55 - len(tenancy['capabilities'])} more capabilities") for n in tenancy["notes"])


def test_embedded_artefacts_give_way_to_the_cap_and_say_so():
    # The embeds fit their own budget, but with their JSON escaping and a full page of the list beside them the
    # answer would pass the cap (a blueprint of 20 long role names did: 83,523 bytes): the largest goes to its link.
    from pydantic import BaseModel

    from blueprint_mcp.app import ANSWER_BYTES, answer
    from blueprint_mcp.artefacts import Artefact, Link
    from blueprint_mcp.tools import Answer

    class Page(BaseModel):
        items: list[str]
        resources: list[Link]
        notes: list[str]

    sql = Artefact("blueprint://designs/x/rls.sql", "application/sql", 'select "x";\n' * 2_700)  # 32 KB, 38 escaped
    spec = Artefact("blueprint://designs/x/spec.md", "text/markdown", "| a | b |\n" * 2_300)  # 23 KB
    page = Page(items=["p" * 100] * 240, resources=[Link(uri=a.uri, name=a.uri, mime_type=a.mime_type)
                                                    for a in (sql, spec)], notes=[])
    result = answer(Answer(result=page, text="A page.", embeds=[sql, spec]))
    note = f"{sql.uri} not embedded: the answer would pass {ANSWER_BYTES:,} bytes; read the link"
    assert size(result) <= CAP_BYTES
    assert [e.resource.uri for e in result.content if e.type == "resource"] == [spec.uri]
    assert [x.uri for x in result.content if x.type == "resource_link"] == [sql.uri, spec.uri]
    assert result.structured_content["notes"] == [note]
    assert result.content[0].text == f"A page. Note: {note}."
    small = answer(Answer(result=page.model_copy(update={"items": []}), text="A page.", embeds=[sql, spec]))
    assert len([e for e in small.content if e.type == "resource"]) == 2 and small.structured_content["notes"] == []


async def test_a_300_entity_blueprint_is_refused_in_a_short_answer():
    async with Client(build_server()) as c:
        result = await c.call_tool("generate_rls", {"blueprint": big_blueprint(300, fields=2)})
    assert result.is_error is True
    assert "entities" in result.content[0].text and size(result) <= 5_000


async def test_a_cursor_of_another_list_is_refused_naming_the_argument():
    async with Client(build_server()) as c:
        first = await c.call_tool("design_tenancy", {"template": "habit-tracker"})
        wrong = await c.call_tool("generate_rls", {"template": "habit-tracker",
                                                   "cursor": first.structured_content["next_cursor"]})
    assert wrong.is_error is True
    assert wrong.content[0].text == ("Error executing tool generate_rls: cursor: not a cursor of this tool's "
                                     "policies. Fix: pass the next_cursor of the previous answer (same arguments "
                                     "otherwise), or omit it")


async def test_an_unknown_design_or_artefact_link_is_an_error_naming_the_choices():
    from mcp import MCPError

    async with Client(build_server()) as c:
        with pytest.raises(MCPError, match="unknown template 'habit-trackr'.*did you mean 'habit-tracker'"):
            await c.read_resource("blueprint://designs/habit-trackr/rls.sql")
        with pytest.raises(MCPError, match="bp-0000000000000000dead is no longer stored"):
            await c.read_resource("blueprint://designs/bp-0000000000000000dead/rls.sql")
        with pytest.raises(MCPError, match="'habbits' is not a table of this blueprint"):
            await c.read_resource("blueprint://designs/habit-tracker/rls.sql?only=habbits")
        after = await c.read_resource("blueprint://designs/habit-tracker/rls.sql?only=habits")
    assert after.contents[0].text.count("create policy") == 4


async def test_a_stored_design_whose_content_does_not_match_its_name_is_refused():
    from mcp import MCPError

    from blueprint_mcp.artefacts import cache_dir

    forged = cache_dir() / "bp" / "bp-00000000000000000bad.json"
    forged.parent.mkdir(exist_ok=True)
    forged.write_text('{"app": {"name": "Forged", "slug": "forged"}}')
    try:
        async with Client(build_server()) as c:
            with pytest.raises(MCPError, match="bp-00000000000000000bad is damaged"):
                await c.read_resource("blueprint://designs/bp-00000000000000000bad/schema.sql")
    finally:
        forged.unlink()


@pytest.mark.parametrize("kind", ["bp", "run"])
def test_pruning_the_store_removes_only_its_own_oldest_entries_never_other_files(kind, tmp_path, monkeypatch):
    from blueprint_mcp import artefacts

    monkeypatch.setenv(artefacts.CACHE_ENV, str(tmp_path))
    monkeypatch.setitem(artefacts.KEEP, kind, 2)
    folder = tmp_path / kind
    folder.mkdir()
    theirs = [folder / name for name in ("notes.json", f"{kind}-mine.json", f"{kind}-00000000000000000000.json.bak")]
    for path in theirs:
        path.write_text("{}")
        os.utime(path, (0, 0))  # older than every entry the store writes
    keys = []
    for i in range(3):
        keys.append(artefacts._put(kind, json.dumps({"n": i})))
        os.utime(folder / f"{keys[-1]}.json", (1000 + i, 1000 + i))
    keys.append(artefacts._put(kind, json.dumps({"n": 3})))
    assert sorted(p.name for p in folder.iterdir()) == sorted([p.name for p in theirs] +
                                                              [f"{k}.json" for k in keys[2:]])
