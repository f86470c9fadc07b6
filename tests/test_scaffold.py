"""scaffold_project: the files `render` writes, listed in pages and each readable as a resource, through the
real SDK client."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from mcp import Client

from blueprint_mcp.app import build_server
from blueprint_mcp.artefacts import PART_BYTES, split_parts
from blueprint_mcp.templates import load_template
from blueprint_mcp.tools import migration_files

STAMP = "20250301120000"


def rendered(template: str) -> dict[str, str]:
    return migration_files(load_template(template), datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc))


async def listing(c: Client, args: dict) -> tuple[dict, list[dict]]:
    """The first answer's structured result and every file entry, following next_cursor to the end."""
    first = (await c.call_tool("scaffold_project", args)).structured_content
    files, result = list(first["files"]), first
    while result["next_cursor"]:
        result = (await c.call_tool("scaffold_project", {**args, "cursor": result["next_cursor"]})).structured_content
        files += result["files"]
    return first, files


async def test_every_file_render_writes_is_listed_and_reads_back_byte_for_byte():
    expected = rendered("b2b-saas")
    async with Client(build_server()) as c:
        first, files = await listing(c, {"template": "b2b-saas", "timestamp": STAMP})
        assert [f["path"] for f in files] == list(expected)
        for f in files:  # a file over one read's size in its parts, joined (tests/test_parts.py)
            parts = len(split_parts(expected[f["path"]])) if f["size"] > PART_BYTES else 0
            uris = [f"{f['uri']}?part={n}" for n in range(1, parts + 1)] if parts else [f["uri"]]
            text = "".join([(await c.read_resource(uri)).contents[0].text for uri in uris])
            assert text == expected[f["path"]], f["path"]
            assert f["size"] == len(expected[f["path"]].encode())
    assert first["timestamp"] == STAMP and first["design"] == "b2b-saas"
    assert first["counts"]["files"] == len(expected) and first["counts"]["migrations"] == 3
    assert first["counts"]["bytes"] == sum(len(t.encode()) for t in expected.values())
    assert "supabase/migrations/20250301120000_initial_schema.sql" in expected


async def test_an_edited_blueprint_is_stored_and_its_files_readable_by_a_later_client():
    bp = load_template("habit-tracker").model_dump(mode="json", by_alias=True, exclude_none=True)
    bp["app"]["name"], bp["app"]["slug"] = "Streaks", "streaks"
    async with Client(build_server()) as c:
        first, files = await listing(c, {"blueprint": bp, "timestamp": STAMP})
    assert first["design"].startswith("bp-")
    seed = next(f for f in files if f["path"] == "supabase/seed.sql")
    async with Client(build_server()) as later:
        text = (await later.read_resource(seed["uri"])).contents[0].text
    assert text.startswith("-- ") and "streaks" in next(f["path"] for f in files if f["path"].endswith(".test.sql"))


async def test_files_are_embedded_only_when_asked_and_only_while_small():
    async with Client(build_server()) as c:
        plain = await c.call_tool("scaffold_project", {"template": "habit-tracker", "timestamp": STAMP})
        embedded = await c.call_tool("scaffold_project", {"template": "habit-tracker", "timestamp": STAMP,
                                                          "include": ["summary", "files"]})
        counts_only = await c.call_tool("scaffold_project", {"template": "habit-tracker", "include": []})
    assert [b.type for b in plain.content] == ["text"]
    kinds = [b.type for b in embedded.content]
    assert kinds[0] == "text" and set(kinds[1:]) == {"resource"}
    texts = {b.resource.uri: b.resource.text for b in embedded.content[1:]}
    files = rendered("habit-tracker")
    assert all(files[str(uri).split(f"/{STAMP}/", 1)[1]] == text for uri, text in texts.items())
    assert sum(len(t.encode()) for t in texts.values()) <= 56_000
    # Every file of the page is either embedded or named in a note, never both.
    shown = [f["path"] for f in embedded.structured_content["files"]]
    noted = [n.split(" ")[0] for n in embedded.structured_content["notes"]]
    inline = [str(uri).split(f"/{STAMP}/", 1)[1] for uri in texts]
    assert sorted(noted + inline) == sorted(shown) and inline and noted
    assert counts_only.structured_content["files"] == [] and counts_only.structured_content["counts"]["files"] > 10


async def test_a_bad_timestamp_or_unknown_file_is_an_error_naming_the_field():
    async with Client(build_server()) as c:
        bad = await c.call_tool("scaffold_project", {"template": "habit-tracker", "timestamp": "2025-03-01"})
        _, files = await listing(c, {"template": "habit-tracker", "timestamp": STAMP})
        wrong = files[0]["uri"].replace("docs/engineering/", "docs/enginering/")
        with pytest.raises(Exception, match="is not a file of this project"):
            await c.read_resource(wrong)
        with pytest.raises(Exception, match="not a migration timestamp"):
            await c.read_resource(files[0]["uri"].replace(STAMP, "20251399000000"))
    assert bad.is_error is True and "timestamp" in bad.content[0].text


TIMESTAMP_FIX = "Fix: use 14 digits, YYYYMMDDHHMMSS in UTC, from 00010101000000 to 99991231235957, e.g. 20250101000000"


@pytest.mark.parametrize(("stamp", "problem"), [
    ("99991231235959", "99991231235959 is too late: the last of the 3 migrations, one second apart, would be stamped "
                       "after the year 9999."),
    ("notatime", "'notatime' is not a migration timestamp."),
    ("", "'' is not a migration timestamp."),
])
async def test_a_timestamp_out_of_range_or_malformed_is_refused_with_the_range(stamp, problem):
    async with Client(build_server()) as c:
        bad = await c.call_tool("scaffold_project", {"template": "habit-tracker", "timestamp": stamp})
        after = await c.call_tool("scaffold_project", {"template": "habit-tracker", "timestamp": STAMP})
    assert bad.is_error is True
    assert bad.content[0].text == f"Error executing tool scaffold_project: timestamp: {problem} {TIMESTAMP_FIX}"
    assert after.is_error is False


async def test_a_project_file_stamped_too_late_is_refused_with_the_range():
    from mcp import MCPError

    async with Client(build_server()) as c:
        with pytest.raises(MCPError) as info:
            await c.read_resource("blueprint://designs/habit-tracker/project/99991231235959/supabase/seed.sql")
    assert str(info.value) == ("timestamp: 99991231235959 is too late: the last of the 3 migrations, one second apart, "
                               f"would be stamped after the year 9999. {TIMESTAMP_FIX}")
