"""The command line: the MCP server, and the same tool functions for a terminal or CI."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import NoReturn

from . import __version__, tools
from .artefacts import FIRST_STAMP, LAST_STAMP, parse_stamp
from .files import recorded_stamps
from .audit.findings import LEVEL_ORDER, Level, sort_findings
from .audit.output import sarif_report, text_report
from .http_security import TOKEN_ENV, HttpPolicy, is_loopback, is_wildcard, policy_for, url_host
from .model import Blueprint, BlueprintError
from .templates import load_blueprint_file, load_template, summaries

PROG = "blueprint-mcp"
TRANSPORTS = ("stdio", "sse", "streamable-http")
BLUEPRINT_SUFFIXES = (".yaml", ".yml", ".json")
FAIL_ON = {"error": Level.ERROR, "warn": Level.WARN}
AUDIT_SUFFIXES = (".sql", ".md", ".markdown", *BLUEPRINT_SUFFIXES)


class UsageError(Exception):
    """A command line the user must change (exit 2, one line, no traceback)."""


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line like every other user error (argparse prints the usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; {' '.join(self.format_usage().split())}\n")


# --- helpers --------------------------------------------------------------------------------------

def load_source(source: str) -> Blueprint:
    """A blueprint file when the argument is an existing path or ends in .yaml/.yml/.json, else a template."""
    if Path(source).is_file() or source.lower().endswith(BLUEPRINT_SUFFIXES):
        return load_blueprint_file(source)
    return load_template(source)


def _timestamp(text: str) -> datetime:
    try:
        return parse_stamp(text)
    except BlueprintError:
        raise argparse.ArgumentTypeError(f"expected YYYYMMDDHHMMSS (UTC) from {FIRST_STAMP} to {LAST_STAMP}, "
                                         f"got {text!r}") from None


def _err(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


# --- commands -------------------------------------------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int:
    policy = http_policy(args) if args.transport != "stdio" else None
    if policy is None and (args.token is not None or args.allowed_host):
        raise UsageError("--token and --allowed-host apply to the HTTP transports; stdio is reached only by "
                         "the editor that launched it: add --transport streamable-http, or drop them")
    if (args.stateless or args.workers > 1) and args.transport != "streamable-http":
        raise UsageError("--stateless and --workers apply to --transport streamable-http only")
    if args.workers > 1 and not args.stateless:
        raise UsageError("--workers above 1 needs --stateless: a session kept by one worker is unknown to the others")
    from . import app  # the MCP SDK is only needed to serve

    if policy is not None:
        mode = args.transport + (", stateless" if args.stateless else "") + \
            (f", {args.workers} workers" if args.workers > 1 else "")
        print(connect_text(mode, args.host, args.port, app.HTTP_PATHS[args.transport], policy,
                           sse=args.transport == "sse"), file=sys.stderr)
    try:
        app.run(args.transport, host=args.host, port=args.port, policy=policy, stateless=args.stateless,
                workers=args.workers)
    except KeyboardInterrupt:
        return 130
    return 0


def http_policy(args: argparse.Namespace) -> HttpPolicy:
    """What the HTTP server accepts; a non-loopback bind needs --allow-remote and a token."""
    token = args.token if args.token is not None else (os.environ.get(TOKEN_ENV) or None)
    if not is_loopback(args.host):
        missing = [need for need, given in (("--allow-remote", args.allow_remote),
                                            (f"a bearer token (--token TOKEN or {TOKEN_ENV})", token is not None))
                   if not given]
        if missing:
            raise UsageError(f"--host {args.host} is not a loopback address: serving it needs "
                             f"{' and '.join(missing)}; or use --host 127.0.0.1")
    return policy_for(args.host, args.port, token=token, extra_hosts=args.allowed_host)


def connect_text(transport: str, host: str, port: int, path: str, policy: HttpPolicy, sse: bool = False) -> str:
    """How to reach the server: its URL, what it accepts, and the editor configuration (with the header).

    `sse`: the legacy SSE transport, which editors must be told by name (they assume streamable HTTP for a URL).
    """
    kind = "sse" if sse else "http"
    url = f"http://{url_host(host) if not is_wildcard(host) else '127.0.0.1'}:{port}{path}"
    entry: dict = {"url": url}
    if policy.token is not None:
        entry["headers"] = {"Authorization": "Bearer <token>"}
    lines = [f"Blueprint MCP ({transport}) listening on {url}",
             f"Accepts Host: {', '.join(sorted(policy.hosts))} (Origin: none, or http:// + one of them)"]
    if policy.token is not None:
        # The token itself is not printed: stderr often ends up in logs.
        lines.append(f"Every request needs the header Authorization: Bearer <token>, with the token of "
                     f"--token or {TOKEN_ENV}")
    header = ' --header "Authorization: Bearer <token>"' if policy.token is not None else ""
    lines += ["Connect an editor (Cursor .cursor/mcp.json, Claude Desktop claude_desktop_config.json):",
              json.dumps({"mcpServers": {"blueprint": entry}}, indent=2),
              "VS Code (.vscode/mcp.json): " + json.dumps({"servers": {"blueprint": {"type": kind, **entry}}}),
              f"Claude Code: claude mcp add --transport {kind} blueprint {url}{header}"]
    return "\n".join(lines)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 1 to 65535, got {text!r}")
    return port


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"expected a number of workers from 1 to 64, got {text!r}")
    return int(text)


def cmd_templates(args: argparse.Namespace) -> int:
    rows = summaries()
    if args.format == "json":
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    width = max((len(r["name"]) for r in rows), default=0)
    app_width = max((len(r["app"]) for r in rows), default=0)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['app']:<{app_width}}  {r['description']}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    bp = load_source(args.source)
    # Without --timestamp, the migrations keep the names the last render recorded: they may be applied.
    stamps = None if args.timestamp else recorded_stamps(Path(args.out))
    files = tools.migration_files(bp, timestamp=args.timestamp, stamps=stamps)
    result = tools.write_files(files, args.out, force=args.force)
    for path in result.written:
        print(path)
    for path in result.removed:
        print(f"{PROG}: removed {path} (generated by an earlier render)", file=sys.stderr)
    for path in result.kept:
        print(f"{PROG}: warning: kept {path}: render did not create it, and applied with the new migrations it "
              "clashes", file=sys.stderr)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """Each PATH: an existing file or folder (SQL, migrations, .md spec, blueprint), else a template name."""
    templates, paths = [], []
    for source in args.paths:
        if Path(source).exists():
            paths.append(Path(source))
        elif source.lower().endswith(AUDIT_SUFFIXES) or "/" in source or os.sep in source:
            raise UsageError(f"{source}: no such file or folder")
        else:
            templates.append(source)
    platform = args.assume_platform
    findings = [f for name in templates for f in tools.audit_findings(template=name, assume_platform=platform)]
    findings = sort_findings(findings + (tools.audit_findings(paths=paths, assume_platform=platform) if paths else []))
    result = tools.summarize(findings, max_findings=len(findings))
    if args.format == "json":
        print(result.model_dump_json(indent=2, exclude={"next_cursor"}))  # the CLI prints every finding
    elif args.format == "sarif":
        print(json.dumps(sarif_report(findings, __version__), indent=2, ensure_ascii=False))
    else:
        print(text_report(findings))
    return 1 if failing(result.counts, FAIL_ON[args.fail_on]) else 0


def cmd_verify(args: argparse.Namespace) -> int:
    source = args.source
    p = Path(source)
    kwargs = {"path": source} if p.exists() and (p.is_dir() or p.suffix == ".sql" or p.suffix in BLUEPRINT_SUFFIXES) \
        else {"template": source}
    if "path" not in kwargs and source.lower().endswith((".sql", *BLUEPRINT_SUFFIXES)):
        raise UsageError(f"{source}: no such file")
    if "path" not in kwargs and not p.exists() and ("/" in source or os.sep in source):
        raise UsageError(f"{source}: no such file or folder")  # a mistyped folder, as audit says, not a template
    if args.blueprint is not None:
        if "path" not in kwargs or p.suffix in BLUEPRINT_SUFFIXES:
            raise UsageError(f"--blueprint judges migrations against a design: {source} is not a .sql file or a "
                             "migrations folder")
        kwargs["blueprint"] = load_source(args.blueprint)

    def progress(done: int, total: int, message: str) -> None:
        if args.format == "text" and sys.stderr.isatty():
            print(f"\r{message}", end="", file=sys.stderr, flush=True)

    report = tools.verify_rls(**kwargs, database_url=args.database_url, allow_remote=args.allow_remote,
                              grant_mode=args.grant_mode, include_cases=args.format == "json" and args.all_cases,
                              progress=progress, engine=args.postgres)
    if args.format == "json":
        print(report.model_dump_json(indent=2, exclude={"markdown"}))
    elif args.format == "markdown":
        print(report.markdown)
    else:
        if sys.stderr.isatty():
            print(file=sys.stderr)
        for f in report.failures:
            what = f.attack or f"{f.command} {f.table}" + (f" in {f.org}" if f.org else "")
            print(f"{f.verdict} {f.actor}: {what}: expected {f.expected}, got {f.actual}")
        for lint in report.lints:
            print(f"{lint.level.value} {lint.rule_id} {lint.name} {lint.object}: {lint.message}")
        for failure in report.fixture_failures:
            print(f"fixture failed: {failure}")
        for note in report.notes:
            print(f"note: {note}")
        counts = ", ".join(f"{k} {v}" for k, v in report.counts.items())
        print(f"{'PASS' if report.ok else 'FAIL'} {report.source} ({report.mode}): {report.leaks} leak(s); "
              f"{counts}; {len(report.lints)} lint(s); {report.target}")
    return 0 if report.ok else 1


def failing(counts: dict[str, int], threshold: Level) -> bool:
    """True when any finding is at or above the threshold level (counts cover every finding)."""
    return any(counts.get(lvl.value, 0) for lvl in Level if LEVEL_ORDER[lvl] <= LEVEL_ORDER[threshold])


# --- parser ---------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG, description="Design Supabase backends: an MCP server (default: stdio) and the same tools "
                               "on the command line.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the MCP server (stdio by default)")
    serve.add_argument("--transport", choices=TRANSPORTS, default="stdio")
    serve.add_argument("--host", default="127.0.0.1", help="bind address for HTTP transports (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8000)
    serve.add_argument("--allow-remote", action="store_true",
                       help="allow a non-loopback --host (also needs a token)")
    serve.add_argument("--token", help=f"require Authorization: Bearer TOKEN on every HTTP request (default: "
                                       f"${TOKEN_ENV}; the variable keeps it out of the process list)")
    serve.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                       help="also accept requests addressed to NAME:PORT (a name or address clients use, e.g. "
                            "with --host 0.0.0.0 or behind a proxy); repeatable")
    serve.add_argument("--stateless", action="store_true",
                       help="streamable-http without sessions: any worker or replica answers any request")
    serve.add_argument("--workers", type=_workers, default=1,
                       help="uvicorn worker processes (above 1 needs --stateless; default 1)")
    serve.set_defaults(func=cmd_serve)

    templates = sub.add_parser("templates", help="list the template library")
    templates.add_argument("--format", choices=("text", "json"), default="text")
    templates.set_defaults(func=cmd_templates)

    render = sub.add_parser("render", help="write the spec and the migrations of a blueprint")
    render.add_argument("source", metavar="TEMPLATE|FILE", help="a template name or a .yaml/.json blueprint")
    render.add_argument("--out", required=True, help="folder to write docs/ and supabase/migrations/ into")
    render.add_argument("--force", action="store_true",
                        help="also replace files render did not create, and generated files edited since")
    render.add_argument("--timestamp", type=_timestamp, help="first migration timestamp, YYYYMMDDHHMMSS (UTC)")
    render.set_defaults(func=cmd_render)

    audit = sub.add_parser("audit", help="lint Supabase SQL, migration folders, blueprints and spec documents")
    audit.add_argument("paths", metavar="PATH", nargs="+",
                       help="a template name, a .yaml/.json blueprint, a .sql file, a folder of migrations "
                            "(applied in file-name order, all paths as one history) or a .md spec")
    audit.add_argument("--format", choices=("text", "json", "sarif"), default="text",
                       help="sarif: SARIF 2.1.0 for GitHub code scanning")
    audit.add_argument("--fail-on", choices=tuple(FAIL_ON), default="error",
                       help="exit 1 when a finding at or above this level exists (default error)")
    audit.add_argument("--assume-platform", action="store_true",
                       help="judge as on a Supabase project, where pg_graphql is installed unless the SQL drops it")
    audit.set_defaults(func=cmd_audit)

    verify = sub.add_parser("verify", help="prove tenant isolation on a real PostgreSQL (exit 1 on any leak)")
    verify.add_argument("source", metavar="TEMPLATE|FILE|DIR",
                        help="a template, a .yaml/.json blueprint, a .sql file or a migrations folder")
    verify.add_argument("--blueprint", metavar="TEMPLATE|FILE",
                        help="judge the .sql file or migrations folder against this design (e.g. a project render "
                             "wrote, edited or not) instead of the generic matrix")
    verify.add_argument("--database-url", help="verify there instead of a throwaway cluster (default: "
                        "$DATABASE_URL); everything is rolled back")
    verify.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --database-url")
    verify.add_argument("--postgres", choices=("auto", "system", "embedded"), default=None,
                        help="throwaway server without --database-url: the installed binaries (system), the bundled "
                             "one (embedded), or auto (system first; default, or $BLUEPRINT_MCP_POSTGRES)")
    verify.add_argument("--grant-mode", choices=("legacy", "explicit"), default="legacy",
                        help="Supabase default privileges of the shim (default legacy: the stricter test)")
    verify.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    verify.add_argument("--all-cases", action="store_true", help="with --format json, list every case")
    verify.set_defaults(func=cmd_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors; main returns a code
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if args.command is None:
        args = parser.parse_args(["serve"])
    try:
        return args.func(args)
    except (BlueprintError, UsageError) as exc:
        _err(str(exc))
        return 2
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: stop quietly, and keep Python's final flush quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        _err(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        return 2


if __name__ == "__main__":
    sys.exit(main())
