"""The command line: the MCP server, and the same tool functions for a terminal or CI."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from . import __version__, tools
from .audit.findings import LEVEL_ORDER, Level
from .model import Blueprint, BlueprintError
from .templates import load_blueprint_file, load_template, summaries

PROG = "blueprint-mcp"
TRANSPORTS = ("stdio", "sse", "streamable-http")
BLUEPRINT_SUFFIXES = (".yaml", ".yml", ".json")
FAIL_ON = {"error": Level.ERROR, "warn": Level.WARN}


class UsageError(Exception):
    """A command line the user must change (exit 2, one line, no traceback)."""


# --- helpers --------------------------------------------------------------------------------------

def load_source(source: str) -> Blueprint:
    """A blueprint file when the argument is an existing path or ends in .yaml/.yml/.json, else a template."""
    if Path(source).is_file() or source.lower().endswith(BLUEPRINT_SUFFIXES):
        return load_blueprint_file(source)
    return load_template(source)


def _timestamp(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYYMMDDHHMMSS (UTC), got {text!r}") from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _err(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


# --- commands -------------------------------------------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int:
    if not is_loopback(args.host) and not args.allow_remote:
        raise UsageError(f"--host {args.host} is not a loopback address and the server has no authentication; "
                         "pass --allow-remote to expose it anyway, or use --host 127.0.0.1")
    from . import app  # the MCP SDK is only needed to serve

    if args.transport != "stdio":
        host = f"[{args.host}]" if ":" in args.host else args.host
        url = f"http://{host}:{args.port}{app.HTTP_PATHS[args.transport]}"
        snippet = json.dumps({"mcpServers": {"blueprint": {"url": url}}}, indent=2)
        print(f"Blueprint MCP ({args.transport}) listening on {url}\n"
              f"Connect an editor (Cursor .cursor/mcp.json, Claude Desktop claude_desktop_config.json):\n"
              f"{snippet}", file=sys.stderr)
        if not is_loopback(args.host):
            print(f"{PROG}: warning: serving on {args.host} without authentication or DNS-rebinding protection",
                  file=sys.stderr)
    try:
        app.run(args.transport, host=args.host, port=args.port)
    except KeyboardInterrupt:
        return 130
    return 0


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
    for path in tools.write_files(tools.migration_files(bp, timestamp=args.timestamp), args.out, force=args.force):
        print(path)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    result = tools.audit_spec(blueprint=load_source(args.source))
    if args.format == "json":
        print(result.model_dump_json(indent=2))
    else:
        for f in result.findings:
            print(f"{f.level.value} {f.rule_id} {f.name} {f.object or '-'}: {f.message}")
        c = result.counts
        print(f"{sum(c.values())} finding(s): {c['ERROR']} error(s), {c['WARN']} warning(s), {c['INFO']} info")
    return 1 if failing(result.counts, FAIL_ON[args.fail_on]) else 0


def failing(counts: dict[str, int], threshold: Level) -> bool:
    """True when any finding is at or above the threshold level (counts cover every finding)."""
    return any(counts.get(lvl.value, 0) for lvl in Level if LEVEL_ORDER[lvl] <= LEVEL_ORDER[threshold])


# --- parser ---------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Design Supabase backends: an MCP server (default: stdio) and the same tools "
                               "on the command line.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the MCP server (stdio by default)")
    serve.add_argument("--transport", choices=TRANSPORTS, default="stdio")
    serve.add_argument("--host", default="127.0.0.1", help="bind address for HTTP transports (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    serve.set_defaults(func=cmd_serve)

    templates = sub.add_parser("templates", help="list the template library")
    templates.add_argument("--format", choices=("text", "json"), default="text")
    templates.set_defaults(func=cmd_templates)

    render = sub.add_parser("render", help="write the spec and the migrations of a blueprint")
    render.add_argument("source", metavar="TEMPLATE|FILE", help="a template name or a .yaml/.json blueprint")
    render.add_argument("--out", required=True, help="folder to write docs/ and supabase/migrations/ into")
    render.add_argument("--force", action="store_true", help="overwrite existing files")
    render.add_argument("--timestamp", type=_timestamp, help="first migration timestamp, YYYYMMDDHHMMSS (UTC)")
    render.set_defaults(func=cmd_render)

    audit = sub.add_parser("audit", help="lint a blueprint's generated backend")
    audit.add_argument("source", metavar="TEMPLATE|FILE", help="a template name or a .yaml/.json blueprint")
    audit.add_argument("--format", choices=("text", "json"), default="text")
    audit.add_argument("--fail-on", choices=tuple(FAIL_ON), default="error",
                       help="exit 1 when a finding at or above this level exists (default error)")
    audit.set_defaults(func=cmd_audit)
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
