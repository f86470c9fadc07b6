"""The npm packages some tests run (tests/js/package.json): installed once per session, skipped without npm
outside CI, a failure under CI=true."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from deps import in_ci

JS = Path(__file__).resolve().parent / "js"


def unavailable(reason: str) -> None:
    """One line: skip on a laptop without the registry, fail in CI where it is a requirement."""
    if in_ci():
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def install(dest: Path) -> Path:
    """Copy tests/js into dest and `npm install` it there (npm's own cache makes later sessions fast)."""
    npm = shutil.which("npm")
    if npm is None:
        unavailable("npm is not installed (node 20 and npm are needed for the Mermaid and Deno checks)")
    for f in JS.iterdir():
        if f.is_file():
            shutil.copy(f, dest / f.name)
    out = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=dest,
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        unavailable("npm registry unreachable: npm install failed: " + (out.stderr.strip().splitlines() or ["?"])[-1])
    return dest
