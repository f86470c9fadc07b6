"""How long `verify` takes end to end, throwaway cluster included (target: under 10 s per template).

Usage: python bench/verify_speed.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from blueprint_mcp.templates import template_names  # noqa: E402
from blueprint_mcp.tools import verify_rls  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{'template':<16}{'cases':>8}{'leaks':>7}{'median s':>10}{'max s':>8}")
    for name in template_names():
        times, report = [], None
        for _ in range(args.repeat):
            start = time.perf_counter()
            report = verify_rls(template=name)
            times.append(time.perf_counter() - start)
        total = sum(report.counts.values())
        print(f"{name:<16}{total:>8}{report.leaks:>7}{statistics.median(times):>10.2f}{max(times):>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
