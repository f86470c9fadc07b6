"""The README's client code and editor configurations work as written, with the pinned SDK."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from mcp import Client, StdioServerParameters

from blueprint_mcp.app import HTTP_PATHS
from serving import env, free_port

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README[README.index("## Connect an editor"):README.index("## Development")]
# The placeholders the configurations use for this checkout.
PLACEHOLDERS = ("/path/to/repo", "/absolute/path/to/blueprint-mcp", "${workspaceFolder}")
MAKE_RUN_URL = f"http://127.0.0.1:8000{HTTP_PATHS['streamable-http']}"


def configurations() -> list[tuple[str, dict]]:
    """(where, one server entry) for every JSON configuration the README shows or the repository ships."""
    found = []
    blocks = re.findall(r"```json\n(.*?)```", SECTION, re.S) + re.findall(r"`(\{\"(?:mcpServers|servers)\".*?\})`",
                                                                         SECTION)
    sources = [("README", json.loads(b)) for b in blocks]
    sources += [(name, json.loads((ROOT / name).read_text())) for name in ("mcp.json.example", ".vscode/mcp.json")]
    for where, config in sources:
        servers = config.get("mcpServers") or config["servers"]
        found += [(where, entry) for entry in servers.values()]
    return found


def local(command: str) -> str:
    """A configured command with this checkout's path: the console script of the running environment."""
    for placeholder in PLACEHOLDERS:
        if command.startswith(placeholder + "/.venv/bin/"):
            return str(Path(sys.executable).parent / command.rsplit("/", 1)[1])
    return command


def test_the_readme_shows_claude_desktop_cursor_vs_code_and_claude_code():
    for client in ("Claude Desktop", "Cursor", "VS Code", "Claude Code", "`.vscode/mcp.json`", "claude mcp add"):
        assert client in SECTION


def test_every_http_configuration_points_at_make_runs_address():
    urls = [entry["url"] for _, entry in configurations() if "url" in entry]
    assert len(urls) >= 4 and set(urls) == {MAKE_RUN_URL}
    vscode = [entry for where, entry in configurations() if where == ".vscode/mcp.json"]
    assert [e["type"] for e in vscode] == ["stdio", "http"]


async def test_every_stdio_configuration_starts_the_server():
    commands = {(local(e["command"]), tuple(e.get("args", []))) for _, e in configurations() if "command" in e}
    assert len([e for _, e in configurations() if "command" in e]) >= 4
    for command, args in sorted(commands):
        assert Path(command).is_file(), command
        async with Client(StdioServerParameters(command=command, args=list(args), env=env())) as c:
            names = [t.name for t in (await c.list_tools()).tools]
        assert names == ["design_tenancy", "generate_schema", "generate_rls", "audit_spec", "verify_rls", "scaffold_project"]


def test_the_readme_client_code_runs_and_prints_what_the_readme_says(tmp_path):
    code = re.search(r"```python\n(import asyncio\n.*?)```", SECTION, re.S).group(1)
    (tmp_path / "client.py").write_text(code)
    out = subprocess.run([sys.executable, "client.py"], cwd=tmp_path, env=env(), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == str(["design_tenancy", "generate_schema", "generate_rls", "audit_spec", "verify_rls", "scaffold_project"])
    assert lines[1].startswith("Habit Tracker (habit-tracker): 4 policies on 1 table, ")
    assert lines[2] == "blueprint://designs/habit-tracker/rls.sql?only=habits 4 policies"
    assert "blueprint://designs/habit-tracker/rls.sql?only=habits 4\npolicies" in SECTION


def test_make_run_prints_how_to_connect_every_editor_within_seconds():
    port = free_port()
    started = time.monotonic()
    # The venv running the tests is installed already: `-o` keeps make from installing again (in a checkout
    # whose own .venv is missing, that would install this checkout into the running venv).
    proc = subprocess.Popen(["make", "-s", "-o", ".venv/.installed-stamp", "run", f"PORT={port}",
                             f"BIN={Path(sys.executable).parent}"], cwd=ROOT,
                            env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Claude Code:"):
                break
        elapsed = time.monotonic() - started
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    url = f"http://127.0.0.1:{port}/mcp"
    assert elapsed < 5, elapsed
    assert lines[0] == f"Blueprint MCP (streamable-http) listening on {url}"
    assert f'      "url": "{url}"' in lines
    assert lines[-2] == 'VS Code (.vscode/mcp.json): {"servers": {"blueprint": {"type": "http", "url": "' + url + '"}}}'
    assert lines[-1] == f"Claude Code: claude mcp add --transport http blueprint {url}"
