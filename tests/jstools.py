"""The npm packages some tests run (tests/js/package.json): installed once per session, skipped without npm
outside CI, a failure under CI=true."""

from __future__ import annotations

import os
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


# What Deno may need from the environment to reach the npm registry (a proxy, a mirror, a CA bundle).
_DENO_PASSTHROUGH = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
                     "NPM_CONFIG_REGISTRY", "DENO_CERT", "DENO_TLS_CA_STORE", "NODE_EXTRA_CA_CERTS")
# The one npm package the generated edge functions import.
SUPABASE_JS = "npm:@supabase/supabase-js@2"


def deno(tools: Path, *args: str, cwd: Path, timeout: int = 300,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the Deno that tests/js installed, its cache (DENO_DIR) in the session's tmp folder; `env` adds to
    a bare environment."""
    env = {"PATH": "/usr/bin:/bin", "DENO_DIR": str(tools / "deno-cache"), "NO_COLOR": "1",
           **{k: v for k in _DENO_PASSTHROUGH if (v := os.environ.get(k))}, **(env or {})}
    return subprocess.run([str(tools / "node_modules" / ".bin" / "deno"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def cache_supabase_js(tools: Path, empty: Path) -> Path:
    """Fetch supabase-js into Deno's cache once, so a registry problem reads as one (skip, or fail in CI).
    `empty` is a folder outside `tools`, whose package.json would make Deno resolve from node_modules."""
    out = deno(tools, "cache", "--quiet", SUPABASE_JS, cwd=empty)
    if out.returncode != 0:
        unavailable(f"deno could not fetch {SUPABASE_JS} from the npm registry: "
                    + (out.stderr.strip().splitlines() or ["?"])[-1])
    return tools
