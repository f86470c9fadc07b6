"""Tool speed and answer size, and stdio cold start beside a bare SDK server: written to BENCHMARKS.md.

Usage: python bench/tools_speed.py [--runs 30] [--out BENCHMARKS.md]
Each tool runs in process through the SDK's in-memory client (argument checks, the tool, serialisation)
on habit-tracker and on a generated 200-entity blueprint (the most the limits accept); verify_rls runs on
habit-tracker only (it starts PostgreSQL). Cold start is the time from launching the stdio server to the
first tools/list answer, against a server with one tool built on the same SDK.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "server"))

from mcp import Client, StdioServerParameters  # noqa: E402

from blueprint_mcp.app import build_server  # noqa: E402
from blueprint_mcp.audit.body import forget_bodies  # noqa: E402
from blueprint_mcp.audit.parser import forget_parses  # noqa: E402

DESIGN_TOOLS = ["design_tenancy", "generate_schema", "generate_rls", "audit_spec"]
# audit_spec again, with no statement or function body remembered from an earlier call (a process's first audit)
UNREAD = "audit_spec, nothing read before"
BARE_SERVER = """\
from mcp.server.mcpserver import MCPServer

server = MCPServer("bare")


@server.tool()
def echo(text: str) -> str:
    \"\"\"Return the text.\"\"\"
    return text


server.run("stdio")
"""


def big_blueprint(entities: int = 200, fields: int = 12) -> dict:
    """A blueprint as large as the limits allow in entities: each with fields and a reference to the previous."""
    return {"app": {"name": "Big", "slug": "big", "description": "A generated benchmark design."},
            "entities": [{"name": f"entity_{i:03}", "description": "A generated entity.",
                          "fields": [{"name": f"field_{j:02}", "type": "text"} for j in range(fields)]
                          + ([{"name": "parent_id", "type": "reference", "references": f"entity_{i - 1:03}"}]
                             if i else [])}
                         for i in range(entities)]}


def stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


async def time_tools(design: dict, runs: int, tools: list[str]) -> dict[str, tuple[float, float, int]]:
    """tool -> (median ms, p95 ms, answer bytes) for the default call."""
    out = {}
    async with Client(build_server()) as c:
        for tool in tools:
            samples, size = [], 0
            for _ in range(runs + 1):  # the first call warms caches (templates, imports) and is not counted
                if tool == UNREAD:
                    forget_bodies()
                    forget_parses()
                start = time.perf_counter()
                result = await c.call_tool("audit_spec" if tool == UNREAD else tool, design)
                samples.append((time.perf_counter() - start) * 1000)
                size = len(result.model_dump_json(by_alias=True, exclude_none=True))
                if result.is_error:
                    raise SystemExit(f"{tool} failed: {result.content[0].text}")
            out[tool] = (*stats(samples[1:]), size)
        listed = await c.list_tools()
        out["tools/list"] = (0.0, 0.0, len(listed.model_dump_json(by_alias=True, exclude_none=True)))
    return out


async def launch(params: StdioServerParameters) -> float:
    """Milliseconds from launching the stdio server to its first tools/list answer."""
    start = time.perf_counter()
    async with Client(params) as c:
        await c.list_tools()
        return (time.perf_counter() - start) * 1000


async def cold_starts(servers: list[StdioServerParameters], runs: int) -> list[list[float]]:
    """Each server launched once untimed (Python writes its bytecode caches then, as an installed wheel has
    them), then `runs` rounds launching each in turn, so a slow spell of the machine falls on both."""
    for params in servers:
        await launch(params)
    samples: list[list[float]] = [[] for _ in servers]
    for _ in range(runs):
        for i, params in enumerate(servers):
            samples[i].append(await launch(params))
    return samples


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return (f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores; Python "
            f"{platform.python_version()}, mcp {version('mcp')}")


def tokens(size: int) -> int:
    return round(size / 4)  # about four bytes of JSON per token


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--cold-runs", type=int, default=7)
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = ap.parse_args()

    habit = await time_tools({"template": "habit-tracker"}, args.runs, [*DESIGN_TOOLS, UNREAD])
    big = await time_tools({"blueprint": big_blueprint()}, max(3, args.runs // 6), [*DESIGN_TOOLS, UNREAD])
    verify = await time_tools({"template": "habit-tracker"}, 3, ["verify_rls"])
    # Bytecode is written and read alike for both servers, whatever this shell says (PYTHONDONTWRITEBYTECODE
    # would make each launch compile every module again, which no installed wheel does).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT / "server")
    with tempfile.TemporaryDirectory() as tmp:
        bare_py = Path(tmp) / "bare.py"
        bare_py.write_text(BARE_SERVER)
        ours_ms, bare_ms = await cold_starts(
            [StdioServerParameters(command=sys.executable, args=["-m", "blueprint_mcp"], env=env),
             StdioServerParameters(command=sys.executable, args=[str(bare_py)], env=env)], args.cold_runs)
    ours, bare = stats(ours_ms), stats(bare_ms)
    cold_ratio = statistics.median(a / b for a, b in zip(ours_ms, bare_ms))

    lines = ["# Benchmarks", "",
             f"`make bench` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Machine: {machine()}.", "",
             "## Tools, in process (SDK in-memory client, default arguments)", "",
             f"habit-tracker: {args.runs} calls each after one warm-up; the generated 200-entity blueprint: "
             f"{max(3, args.runs // 6)}; verify_rls: 3 (it builds a PostgreSQL database each time). "
             "Targets: under 50 ms median on habit-tracker (the design tools), under 1 s on 200 entities. "
             "audit_spec remembers the statements and function bodies it has parsed, by their text (every "
             "blueprint renders the same core; an agent audits a folder again after changing one file): the last "
             "line is audit_spec with nothing remembered, as the first call in a process runs.", "",
             "| tool | habit-tracker median ms | p95 ms | 200 entities median ms | p95 ms |", "|---|---:|---:|---:|---:|"]
    for tool in [*DESIGN_TOOLS, UNREAD]:
        h, b = habit[tool], big[tool]
        lines.append(f"| {tool} | {h[0]:.1f} | {h[1]:.1f} | {b[0]:.1f} | {b[1]:.1f} |")
    v = verify["verify_rls"]
    lines += [f"| verify_rls | {v[0]:.0f} | {v[1]:.0f} | | |", "",
              "## Answer sizes (default call; compact JSON of the result as the client receives it)", "",
              "Budget: tools/list 12,000 bytes; a default answer on habit-tracker 8,000; any answer 80,000.", "",
              "| answer | habit-tracker bytes | ~tokens | 200 entities bytes | ~tokens |", "|---|---:|---:|---:|---:|"]
    for tool in ["tools/list", *DESIGN_TOOLS]:
        h, b = habit[tool][2], big[tool][2]
        lines.append(f"| {tool} | {h:,} | {tokens(h):,} | {b:,} | {tokens(b):,} |")
    lines += [f"| verify_rls | {v[2]:,} | {tokens(v[2]):,} | | |", "",
              "## Cold start over stdio (launch to the first tools/list answer)", "",
              f"One untimed launch of each (bytecode caches written), then {args.cold_runs} rounds launching each in "
              "turn. Target: within 1.5x of a bare SDK server with one tool.", "",
              "| server | median ms | p95 ms |", "|---|---:|---:|",
              f"| blueprint-mcp | {ours[0]:.0f} | {ours[1]:.0f} |",
              f"| bare SDK server, one tool | {bare[0]:.0f} | {bare[1]:.0f} |", "",
              f"Ratio: {cold_ratio:.2f}x (median of the rounds' ratios).", ""]
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    print(json.dumps({"written": args.out}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
