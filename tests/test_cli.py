"""The command line, in process through main() and as `python -m blueprint_mcp`."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from blueprint_mcp.audit import Level
from blueprint_mcp.cli import failing, is_loopback, main
from serving import env as serving_env
from serving import free_port
from blueprint_mcp.templates import load_template, template_text

SERVER_DIR = Path(__file__).resolve().parents[1] / "server"
STAMP = "20250101000000"
RENDERED = [
    "docs/engineering/SUPABASE-habit-tracker.md",
    "supabase/migrations/20250101000000_initial_schema.sql",
    "supabase/migrations/20250101000001_rls_policies.sql",
    "supabase/migrations/20250101000002_triggers.sql",
    "supabase/tests/database/habit-tracker_rls.test.sql",
    "supabase/seed.sql",
    "docs/engineering/ER-habit-tracker.mmd",
    "supabase/types/database.types.ts",
    "supabase/config.toml",
    "supabase/functions/_shared/http.ts",
    "supabase/functions/_shared/organisation.ts",
    "supabase/functions/invite-member/index.ts",
    "supabase/functions/accept-invitation/index.ts",
    "supabase/functions/change-member-role/index.ts",
    "supabase/functions/log-event/index.ts",
    "supabase/functions/log-event/validate.ts",
    "supabase/functions/track-session/index.ts",
    "supabase/analytics/queries.sql",
    "supabase/analytics/queries.duckdb.sql",
    "supabase/analytics/queries.clickhouse.sql",
    "supabase/analytics/queries.bigquery.sql",
]
MANIFEST = "supabase/.blueprint-manifest.json"
BAD_BLUEPRINT = "app: {name: Bad, slug: bad}\nentities:\n  - {name: Bad Name, scope: organization}\n"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SERVER_DIR), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "blueprint_mcp", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


# --- templates ------------------------------------------------------------------------------------

def test_templates_lists_every_template_with_app_name_and_description(capsys):
    assert main(["templates"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["b2b-saas", "cms", "e-commerce", "habit-tracker", "marketplace"]
    assert "Habit Tracker" in lines[3] and "daily check-ins" in lines[3]


def test_templates_json_gives_name_app_and_description(capsys):
    assert main(["templates", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["app"]) for r in rows] == [("b2b-saas", "B2B SaaS"), ("cms", "Headless CMS"), ("e-commerce", "Storefront"),
                                                     ("habit-tracker", "Habit Tracker"), ("marketplace", "Marketplace")]
    assert all(r["description"] for r in rows)


# --- render ---------------------------------------------------------------------------------------

def test_render_writes_exactly_the_spec_migrations_tests_seed_diagram_types_config_functions_analytics(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["render", "habit-tracker", "--out", str(out), "--timestamp", STAMP]) == 0
    assert sorted(_files(out)) == sorted(RENDERED + [MANIFEST])
    assert capsys.readouterr().out.splitlines() == [str(out / rel) for rel in RENDERED]


def test_render_twice_with_the_same_timestamp_gives_the_same_bytes(tmp_path):
    for name in ("a", "b"):
        assert main(["render", "habit-tracker", "--out", str(tmp_path / name), "--timestamp", STAMP]) == 0
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_render_again_without_force_exits_2_when_a_generated_file_was_edited_and_says_pass_force(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["render", "habit-tracker", "--out", str(out), "--timestamp", STAMP]) == 0
    (out / RENDERED[1]).write_text("-- edited by hand\n")
    before = _files(out)
    capsys.readouterr()
    assert main(["render", "habit-tracker", "--out", str(out), "--timestamp", STAMP]) == 2
    err = capsys.readouterr().err
    assert err.startswith("blueprint-mcp: error: ") and err.count("\n") == 1
    assert f"generated files were edited since the last render: ['{out / RENDERED[1]}']" in err
    assert "pass --force" in err
    assert _files(out) == before


def test_render_with_force_overwrites_the_existing_files(tmp_path):
    out = tmp_path / "out"
    assert main(["render", "habit-tracker", "--out", str(out), "--timestamp", STAMP]) == 0
    expected = _files(out)
    (out / RENDERED[1]).write_text("-- edited by hand\n")
    assert main(["render", "habit-tracker", "--out", str(out), "--timestamp", STAMP, "--force"]) == 0
    assert _files(out) == expected


def test_render_of_a_blueprint_file_matches_render_of_the_template(tmp_path):
    path = tmp_path / "habit.yaml"
    path.write_text(template_text("habit-tracker"))
    assert main(["render", str(path), "--out", str(tmp_path / "file"), "--timestamp", STAMP]) == 0
    assert main(["render", "habit-tracker", "--out", str(tmp_path / "tpl"), "--timestamp", STAMP]) == 0
    assert _files(tmp_path / "file") == _files(tmp_path / "tpl")


def test_render_with_a_malformed_timestamp_exits_2_and_writes_nothing(tmp_path, capsys):
    assert main(["render", "habit-tracker", "--out", str(tmp_path / "out"), "--timestamp", "2025-01-01"]) == 2
    assert "expected YYYYMMDDHHMMSS" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()



def test_render_with_a_timestamp_whose_later_migrations_pass_the_year_9999_exits_2_with_the_range(tmp_path, capsys):
    assert main(["render", "habit-tracker", "--out", str(tmp_path / "out"), "--timestamp", "99991231235959"]) == 2
    assert capsys.readouterr().err.startswith(
        "blueprint-mcp render: error: argument --timestamp: expected YYYYMMDDHHMMSS (UTC) from 00010101000000 to "
        "99991231235957, got '99991231235959'; usage: ")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("stamp", "names"), [
    ("99991231235957", ["99991231235957", "99991231235958", "99991231235959"]),
    ("00010101000000", ["00010101000000", "00010101000001", "00010101000002"]),
])
def test_the_first_and_last_accepted_timestamps_name_every_migration_with_14_digits(stamp, names):
    from blueprint_mcp.cli import _timestamp
    from blueprint_mcp.tools import migration_files

    files = migration_files(load_template("habit-tracker"), _timestamp(stamp))
    assert sorted(p.split("/")[-1].split("_")[0] for p in files if p.startswith("supabase/migrations/")) == names



@pytest.mark.parametrize(("out", "problem"), [
    ("afile", "afile is a file, not a folder. Fix: choose a folder for --out (render creates it when missing), or "
              "move the file away"),
    ("afile/sub", "afile is a file where render needs a folder. Fix: move the file away, or choose another --out"),
    ("project", "project/docs is a file where render needs a folder. Fix: move the file away, or choose another --out"),
    ("seeded", "seeded/supabase/seed.sql is a folder where render writes a file. Fix: move the folder away, or choose "
               "another --out"),
])
def test_render_where_a_file_stands_for_a_folder_exits_2_naming_it_and_writes_nothing(tmp_path, capsys, monkeypatch,
                                                                                   out, problem):
    monkeypatch.chdir(tmp_path)
    Path("afile").write_text("mine")
    Path("project").mkdir()
    Path("project/docs").write_text("mine")
    Path("seeded/supabase/seed.sql").mkdir(parents=True)
    before = _files(tmp_path)
    assert main(["render", "habit-tracker", "--out", out]) == 2
    assert capsys.readouterr().err == f"blueprint-mcp: error: out: {problem}\n"
    assert _files(tmp_path) == before


# --- audit ----------------------------------------------------------------------------------------

def test_audit_of_habit_tracker_exits_0_with_a_summary_line(capsys):
    assert main(["audit", "habit-tracker"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "0 finding(s): 0 error(s), 0 warning(s), 0 info"


def test_audit_json_reports_ok_counts_and_findings(capsys):
    assert main(["audit", "b2b-saas", "--format", "json", "--fail-on", "warn"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {"ok": True, "counts": {"ERROR": 0, "WARN": 0, "INFO": 0}, "findings": []}


def test_audit_of_a_bad_blueprint_file_exits_2_with_one_line_naming_the_field(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_BLUEPRINT)
    assert main(["audit", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"blueprint-mcp: error: {path}: entities[0].name: 'Bad Name'")


def test_audit_of_an_unknown_template_exits_2_listing_the_templates(capsys):
    assert main(["audit", "no-such-template"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("blueprint-mcp: error: template: unknown template 'no-such-template'")
    assert "habit-tracker" in err



@pytest.mark.parametrize("command", [["render", "--out", "out"], ["audit"], ["verify"]], ids=lambda c: c[0])
def test_a_blueprint_that_is_not_utf8_exits_2_with_one_line_naming_the_file_and_the_fix(tmp_path, capsys,
                                                                                        monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    Path("binary.yaml").write_bytes(b'app: {name: "\xff\xfe"}\n')
    assert main([command[0], "binary.yaml", *command[1:]]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "blueprint-mcp: error: binary.yaml: not UTF-8 text (byte 0xff at "
                                                "offset 13). Fix: save the blueprint as UTF-8, or pass the right file\n")
    assert not Path("out").exists()



def test_verify_of_sql_that_does_not_parse_exits_2_with_one_fix(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("bad.sql").write_text("create tabl x;\n")
    assert main(["verify", "bad.sql"]) == 2
    assert capsys.readouterr().err == ('blueprint-mcp: error: migrations: migration 1 of 1 does not parse: line 1, '
                                       'column 8: syntax error at or near "tabl" in `create tabl x;`. Fix: fix the SQL\n')


@pytest.mark.parametrize(("counts", "fail_on", "fails"), [
    ({"ERROR": 1, "WARN": 0, "INFO": 0}, Level.ERROR, True),
    ({"ERROR": 0, "WARN": 1, "INFO": 0}, Level.ERROR, False),
    ({"ERROR": 0, "WARN": 1, "INFO": 0}, Level.WARN, True),
    ({"ERROR": 1, "WARN": 0, "INFO": 0}, Level.WARN, True),
    ({"ERROR": 0, "WARN": 0, "INFO": 3}, Level.WARN, False),
])
def test_audit_fails_only_on_findings_at_or_above_the_threshold(counts, fail_on, fails):
    assert failing(counts, fail_on) is fails


# --- serve ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("192.168.1.10", False), ("::", False), ("example.com", False),
])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_serve_on_a_non_loopback_host_without_allow_remote_exits_2(capsys):
    assert main(["serve", "--transport", "streamable-http", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("blueprint-mcp: error: --host 0.0.0.0 is not a loopback address")
    assert "--allow-remote" in err and err.count("\n") == 1


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::"])
def test_serve_on_a_non_loopback_host_without_a_token_exits_2_naming_the_token(host, capsys, monkeypatch):
    monkeypatch.delenv("BLUEPRINT_MCP_TOKEN", raising=False)
    assert main(["serve", "--transport", "streamable-http", "--host", host, "--allow-remote"]) == 2
    err = capsys.readouterr().err
    assert err == (f"blueprint-mcp: error: --host {host} is not a loopback address: serving it needs a bearer token "
                   "(--token TOKEN or BLUEPRINT_MCP_TOKEN); or use --host 127.0.0.1\n")


def test_serve_on_a_non_loopback_host_with_a_token_still_needs_allow_remote(capsys):
    assert main(["serve", "--transport", "sse", "--host", "0.0.0.0", "--token", "t" * 32]) == 2
    err = capsys.readouterr().err
    assert "needs --allow-remote;" in err and err.count("\n") == 1


@pytest.mark.parametrize("args", [["--token", "short"], ["--allowed-host", "http://x.example"]])
def test_serve_with_a_malformed_token_or_allowed_host_exits_2_in_one_line(args, capsys):
    assert main(["serve", "--transport", "streamable-http", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("blueprint-mcp: error: --") and err.count("\n") == 1


def test_serve_stdio_refuses_http_only_options(capsys):
    assert main(["serve", "--token", "t" * 32]) == 2
    assert "apply to the HTTP transports" in capsys.readouterr().err


def test_serve_with_port_0_exits_2():
    assert main(["serve", "--transport", "sse", "--port", "0"]) == 2


def _startup(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Start `serve` on a free port until it listens, stop it: (port, stdout, stderr)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "blueprint_mcp", "serve", "--port", str(port), *args],
                            env=serving_env(**(env or {})), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    return port, out, err


def _snippet(err: str) -> dict:
    return json.loads(err[err.index("{"):err.index("\n}\n") + 2])


def test_serve_streamable_http_prints_the_url_and_editor_config_to_stderr_only():
    port, out, err = _startup("--transport", "streamable-http")
    url = f"http://127.0.0.1:{port}/mcp"
    assert out == ""
    assert f"listening on {url}" in err
    assert f"Accepts Host: 127.0.0.1:{port}, [::1]:{port}, localhost:{port}" in err
    assert _snippet(err) == {"mcpServers": {"blueprint": {"url": url}}}
    assert f'VS Code (.vscode/mcp.json): {{"servers": {{"blueprint": {{"type": "http", "url": "{url}"}}}}}}' in err
    assert f"Claude Code: claude mcp add --transport http blueprint {url}\n" in err


def test_serve_with_a_token_prints_the_header_to_send_but_never_the_token():
    token = "never-printed-token-0123456789"
    port, out, err = _startup("--transport", "sse", env={"BLUEPRINT_MCP_TOKEN": token})
    assert out == ""
    assert "Every request needs the header Authorization: Bearer <token>" in err
    assert _snippet(err) == {"mcpServers": {"blueprint": {"url": f"http://127.0.0.1:{port}/sse",
                                                          "headers": {"Authorization": "Bearer <token>"}}}}
    assert token not in err


def test_serve_sse_prints_editor_configurations_for_sse_not_streamable_http():
    port, out, err = _startup("--transport", "sse")
    url = f"http://127.0.0.1:{port}/sse"
    assert out == "" and f"listening on {url}" in err
    assert f'VS Code (.vscode/mcp.json): {{"servers": {{"blueprint": {{"type": "sse", "url": "{url}"}}}}}}' in err
    assert f"Claude Code: claude mcp add --transport sse blueprint {url}\n" in err
    assert '"type": "http"' not in err and "--transport http " not in err


# --- entry points ---------------------------------------------------------------------------------

def test_python_dash_m_runs_the_cli():
    result = _cli("templates")
    assert result.returncode == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["b2b-saas", "cms", "e-commerce", "habit-tracker", "marketplace"]


def test_user_error_in_a_subprocess_is_one_line_without_traceback(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"app": {"name": "Bad", "slug": "Not A Slug"}}))
    result = _cli("audit", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"blueprint-mcp: error: {path}: app.slug") and result.stderr.count("\n") == 1


def test_every_cli_command_is_documented_in_the_readme():
    from pathlib import Path

    from blueprint_mcp.cli import build_parser

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, command in sub.choices.items():
        assert f"blueprint-mcp {name}" in readme, name
        for action in command._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert flag in readme, f"{name} {flag}"


def test_the_readme_lists_every_template_and_counts_them_right():
    import re
    from pathlib import Path

    from blueprint_mcp.templates import template_names

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("Templates live in `blueprints/`", 1)[1].split("\n\n", 2)[:2]
    listed = re.findall(r"^\| `([a-z0-9-]+)` \|", section[1], flags=re.MULTILINE)
    assert sorted(listed) == template_names()
    words = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    assert section[0].startswith(f", {words[len(template_names())]} of them.")


def test_the_readme_client_example_says_how_many_tool_names_it_prints():
    from blueprint_mcp.app import TOOLS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    words = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    assert f"It prints the {words[len(TOOLS)]} tool names," in readme


def test_the_readme_says_the_model_refuses_a_public_select_grant_on_a_public_bucket_and_it_does():
    from blueprint_mcp.model import InvalidBlueprint, parse_blueprint

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "the model refuses a `{public: true}` select grant on it" in readme
    assert "The examples carry one each" not in readme
    design = {"app": {"name": "Photos", "slug": "photos"},
              "storage": [{"name": "photos", "public": True, "access": {"select": [{"public": True}]}}]}
    with pytest.raises(InvalidBlueprint, match=r"^storage\[0\]: bucket 'photos': a public bucket serves every file by "
                                               r"URL already.*public_bucket_allows_listing"):
        parse_blueprint(design)


@pytest.mark.parametrize("mime_types, refused", [
    (None, "a public bucket with no mime_types serves any file by URL"),
    (["image/png", "image/svg+xml"], "may not accept image/svg+xml"),
    (["image/*"], "may not accept image/*"),
    (["*/*"], "may not accept */*"),
    (["text/html;charset=utf-8"], "may not accept text/html;charset=utf-8"),
    (["application/rss+xml", "image/png"], "may not accept application/rss+xml"),
    (["text/xsl"], "may not accept text/xsl"),
    (["image/png", "image/jpeg", "application/pdf"], None),
])
def test_a_public_bucket_serves_only_inert_content_types(mime_types, refused):
    """Found by an independent attack: the clinic's public bucket took any type, and a new user's own
    organisation uploaded an SVG with a script, served by public URL from the project's storage origin."""
    from blueprint_mcp.model import InvalidBlueprint, parse_blueprint

    bucket = {"name": "photos", "public": True, **({"mime_types": mime_types} if mime_types else {})}
    design = {"app": {"name": "Photos", "slug": "photos"}, "storage": [bucket]}
    if refused is None:
        assert parse_blueprint(design).storage[0].mime_types == mime_types
        return
    with pytest.raises(InvalidBlueprint, match=rf"^storage\[0\]: bucket 'photos': .*{re.escape(refused)}"):
        parse_blueprint(design)
    assert parse_blueprint({**design, "storage": [{**bucket, "public": False}]}).storage[0].public is False
