"""audit_spec over MCP (in memory, both protocol modes): SQL, specs, and files inside the client's roots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mcp import Client
from mcp.types import ListRootsResult, Root

from blueprint_mcp.app import build_server, confine

MODES = ["legacy", "auto"]
both_modes = pytest.mark.parametrize("mode", MODES)
ARTICLE = Path(__file__).with_name("fixtures") / "article.sql"


def _text(result) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


def roots_of(*folders: Path):
    async def list_roots(context) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=f.as_uri()) for f in folders])
    return list_roots


@both_modes
async def test_sql_text_is_audited_and_findings_come_most_severe_first_and_bounded(mode):
    async with Client(build_server(), mode=mode) as c:
        full = await c.call_tool("audit_spec", {"sql": ARTICLE.read_text()})
        few = await c.call_tool("audit_spec", {"sql": ARTICLE.read_text(), "max_findings": 5})
    assert full.is_error is False and few.is_error is False
    report = full.structured_content
    assert report["ok"] is False and report["counts"] == {"ERROR": 18, "WARN": 36, "INFO": 11}
    levels = [f["level"] for f in report["findings"]]
    assert levels == sorted(levels, key=["ERROR", "WARN", "INFO"].index)
    assert few.structured_content["counts"] == report["counts"]
    assert few.structured_content["findings"] == report["findings"][:5]
    assert report["findings"][0]["file"] == "input.sql"


@both_modes
async def test_paths_inside_the_roots_are_read_relative_to_the_first_root(mode, tmp_path):
    mig = tmp_path / "supabase" / "migrations"
    mig.mkdir(parents=True)
    (mig / "001_init.sql").write_text("create table public.notes (id uuid primary key);\n")
    (tmp_path / "SPEC.md").write_text("## 9. Security Checklist\n- [ ] Audit logging for writes\n")
    async with Client(build_server(), mode=mode, list_roots_callback=roots_of(tmp_path)) as c:
        result = await c.call_tool("audit_spec", {"paths": [".", "SPEC.md"]})
        found, page, pages = [], result.structured_content, 1
        while True:
            found += page["findings"]
            if page["next_cursor"] is None:
                break
            nxt = await c.call_tool("audit_spec", {"paths": [".", "SPEC.md"], "cursor": page["next_cursor"]})
            page, pages = nxt.structured_content, pages + 1
    assert result.is_error is False
    assert pages > 1  # ten findings with their remediations are more than one page
    assert [(f["rule_id"], Path(f["file"]).name) for f in found] == \
        [("BP003", "001_init.sql")] + [("BP039", "SPEC.md")] * 8 + [("BP040", "SPEC.md")]


@both_modes
async def test_paths_outside_the_roots_are_refused_and_the_server_keeps_serving(mode, tmp_path):
    inside, outside = tmp_path / "work", tmp_path / "secret"
    inside.mkdir()
    outside.mkdir()
    (outside / "x.sql").write_text("select 1;")
    (inside / "link.sql").symlink_to(outside / "x.sql")
    async with Client(build_server(), mode=mode, list_roots_callback=roots_of(inside)) as c:
        escaped = await c.call_tool("audit_spec", {"paths": ["../secret/x.sql"]})
        linked = await c.call_tool("audit_spec", {"paths": ["link.sql"]})
        absolute = await c.call_tool("audit_spec", {"paths": [str(outside / "x.sql")]})
        after = await c.call_tool("audit_spec", {"template": "habit-tracker"})
    for refused in (escaped, linked, absolute):
        assert refused.is_error is True
        assert "paths: " in _text(refused) and "outside the workspace roots" in _text(refused)
    assert after.is_error is False and after.structured_content["ok"] is True


@both_modes
async def test_files_a_folder_links_to_outside_the_roots_are_refused(mode, tmp_path):
    """Found by an independent attack: only the path given was confined, not the files of the folder."""
    inside, outside = tmp_path / "work", tmp_path / "secret"
    (outside / "migrations").mkdir(parents=True)
    (outside / "migrations" / "0001_keys.sql").write_text("create table api_keys (api_key text);")
    (inside / "proj" / "migrations").mkdir(parents=True)
    (inside / "proj" / "migrations" / "0001_a.sql").symlink_to(outside / "migrations" / "0001_keys.sql")
    (inside / "p2").mkdir()
    (inside / "p2" / "migrations").symlink_to(outside / "migrations")
    async with Client(build_server(), mode=mode, list_roots_callback=roots_of(inside)) as c:
        file_link = await c.call_tool("audit_spec", {"paths": ["proj"]})
        folder_link = await c.call_tool("audit_spec", {"paths": ["p2"]})
    for refused in (file_link, folder_link):
        assert refused.is_error is True
        assert "paths: " in _text(refused) and "links outside the workspace roots" in _text(refused)
        assert "api_key" not in _text(refused)


@both_modes
async def test_paths_without_client_roots_are_refused_with_the_alternative(mode, tmp_path):
    (tmp_path / "m.sql").write_text("select 1;")
    async with Client(build_server(), mode=mode) as c:
        result = await c.call_tool("audit_spec", {"paths": [str(tmp_path / "m.sql")]})
        spec = await c.call_tool("audit_spec", {"spec": "## 9. Security Checklist\n- [x] done\n"})
    assert result.is_error is True
    assert "paths: this client offers no workspace roots" in _text(result) and "`sql`" in _text(result)
    assert spec.is_error is False
    assert {f["rule_id"] for f in spec.structured_content["findings"]} == {"BP039"}


@both_modes
async def test_bad_input_names_the_field_and_the_fix(mode, tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    os.mkfifo(tmp_path / "pipe.sql")  # reading it would wait for a writer
    async with Client(build_server(), mode=mode, list_roots_callback=roots_of(tmp_path)) as c:
        nothing = await c.call_tool("audit_spec", {})
        wrong_type = await c.call_tool("audit_spec", {"paths": ["notes.txt"]})
        missing = await c.call_tool("audit_spec", {"paths": ["nope.sql"]})
        pipe = await c.call_tool("audit_spec", {"paths": ["pipe.sql"]})
        too_many = await c.call_tool("audit_spec", {"paths": ["a.sql"] * 51})
        after = await c.call_tool("audit_spec", {"sql": "create tabel x;"})
    assert "nothing to audit" in _text(nothing) and "Fix:" in _text(nothing)
    assert "paths: " in _text(wrong_type) and "neither SQL" in _text(wrong_type)
    assert "does not exist" in _text(missing)
    assert pipe.is_error is True and _text(pipe) == (
        f"Error executing tool audit_spec: paths: {tmp_path / 'pipe.sql'} is not a regular file. Fix: pass a "
        "regular file or a folder")
    assert too_many.is_error is True and "paths" in _text(too_many)
    assert [f["rule_id"] for f in after.structured_content["findings"]] == ["BP037"]



@both_modes
async def test_a_blueprint_file_that_is_not_utf8_is_refused_naming_the_file_and_the_fix(mode, tmp_path):
    (tmp_path / "binary.yaml").write_bytes(b'app: {name: "\xff\xfe"}\n')
    async with Client(build_server(), mode=mode, list_roots_callback=roots_of(tmp_path)) as c:
        result = await c.call_tool("audit_spec", {"paths": ["binary.yaml"]})
    assert result.is_error is True
    assert _text(result) == (f"Error executing tool audit_spec: {(tmp_path / 'binary.yaml').resolve()}: not UTF-8 text "
                             "(byte 0xff at offset 13). Fix: save the blueprint as UTF-8, or pass the right file")


def test_confine_resolves_relative_paths_against_the_first_root(tmp_path):
    (tmp_path / "a").mkdir()
    assert confine(["a", str(tmp_path / "a" / "b.sql")], [tmp_path.resolve()]) == \
        [(tmp_path / "a").resolve(), (tmp_path / "a" / "b.sql").resolve()]


@both_modes
async def test_assume_platform_reports_what_pg_graphql_would_show(mode):
    sql = ("create table public.notes (id int primary key);\n"
           "alter table public.notes enable row level security;\n"
           "create policy notes_select on public.notes for select to authenticated using (true);\n")
    async with Client(build_server(), mode=mode) as c:
        plain = await c.call_tool("audit_spec", {"sql": sql})
        platform = await c.call_tool("audit_spec", {"sql": sql, "assume_platform": True})
    assert plain.structured_content["ok"] is True
    assert [(f["name"], f["object"]) for f in platform.structured_content["findings"]] == [
        ("pg_graphql_anon_table_exposed", "public.notes"), ("pg_graphql_authenticated_table_exposed", "public.notes")]
