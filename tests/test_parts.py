"""A resource too large for one message is read in parts, on every transport.

The Python SDK client takes at most 1 MiB in one server-sent event (the SSE transport, and streamable HTTP at
protocol 2025-11-25): habit-tracker's pgTAP file (1.1 MB) could be read over stdio but not there, and the failed
read closed the SSE session. Now no read answers more than PART_BYTES of text: a larger one is refused naming
its parts, and each part is read with `part`.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp import Client, MCPError
from mcp.client.sse import sse_client
from mcp.types import INVALID_PARAMS

from blueprint_mcp.app import build_server
from blueprint_mcp.artefacts import PART_BYTES, split_parts
from blueprint_mcp.templates import load_template
from blueprint_mcp.verify.pgtap import pgtap_file
from serving import serving

PGTAP = "blueprint://designs/habit-tracker/pgtap.sql"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30), max_size=20),
       st.integers(min_value=4, max_value=40))
def test_parts_join_to_the_text_each_within_the_limit_cut_at_line_ends_where_lines_fit(lines, limit):
    text = "\n".join(lines)
    parts = split_parts(text, limit)
    assert "".join(parts) == text
    assert all(len(p.encode()) <= limit for p in parts)
    assert all(parts) or parts == [""]
    lines_kept = text.splitlines(keepends=True)
    if all(len(line.encode()) <= limit for line in lines_kept):  # no line is cut
        ends = {sum(len(x) for x in lines_kept[:i]) for i in range(1, len(lines_kept) + 1)}
        cuts = {sum(len(x) for x in parts[:i]) for i in range(1, len(parts))}
        assert cuts <= ends


@pytest.fixture(scope="module")
def pgtap() -> str:
    return pgtap_file(load_template("habit-tracker"))


async def test_a_large_artefact_is_refused_whole_naming_its_parts_which_join_to_it(pgtap):
    assert len(pgtap.encode()) > PART_BYTES  # the case this is about
    count = len(split_parts(pgtap))
    async with Client(build_server()) as c:
        with pytest.raises(MCPError) as whole:
            await c.read_resource(PGTAP)
        parts = [(await c.read_resource(f"{PGTAP}?part={n}")).contents[0] for n in range(1, count + 1)]
        with pytest.raises(MCPError, match=f"has no part '{count + 1}'. Fix: use a part from 1 to {count}"):
            await c.read_resource(f"{PGTAP}?part={count + 1}")
        with pytest.raises(MCPError, match="pgtap.sql takes no only"):
            await c.read_resource(f"{PGTAP}?only=habits")
        small = (await c.read_resource("blueprint://designs/habit-tracker/er.mmd?part=1")).contents[0].text
        small_whole = (await c.read_resource("blueprint://designs/habit-tracker/er.mmd")).contents[0].text
    assert whole.value.error.code == INVALID_PARAMS
    assert whole.value.error.message == (
        f"part: {PGTAP} is {len(pgtap.encode()):,} bytes, more than one answer carries ({PART_BYTES:,}). Fix: read its "
        f"{count} parts in order, {PGTAP}?part=1 to {PGTAP}?part={count}, and join them")
    assert "".join(p.text for p in parts) == pgtap
    assert all(p.mime_type == "application/sql" and len(p.text.encode()) <= PART_BYTES for p in parts)
    assert small == small_whole


async def test_the_sse_transport_reads_every_part_of_a_file_it_could_not_read_whole(pgtap):
    count = len(split_parts(pgtap))
    uri = "blueprint://designs/habit-tracker/project/20250101000000/supabase/tests/database/habit-tracker_rls.test.sql"
    with serving("sse") as port:
        async with Client(sse_client(f"http://127.0.0.1:{port}/sse"), mode="legacy") as c:
            with pytest.raises(MCPError, match=f"read its {count} parts in order"):
                await c.read_resource(uri)
            text = "".join([(await c.read_resource(f"{uri}?part={n}")).contents[0].text
                            for n in range(1, count + 1)])
            after = await c.call_tool("scaffold_project", {"template": "habit-tracker",  # the session is still up
                                                           "timestamp": "20250101000000"})
    assert text == pgtap
    assert after.is_error is False
    assert f"supabase/tests/database/habit-tracker_rls.test.sql is {len(pgtap.encode()):,} bytes, read in {count} " \
        f"parts: {uri}?part=1 to {uri}?part={count}, joined in order" in after.structured_content["notes"]
