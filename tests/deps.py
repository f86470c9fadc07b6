"""What the test suite needs beyond Python, set up by `make test` itself.

Run as root (CI, a fresh container) with apt-get available, it installs what is missing; otherwise it
prints one line per missing requirement saying what to install, and the tests that need it skip
(under CI=true they fail, and so does this script). `python tests/deps.py` is what `make test` runs.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Requirement:
    what: str
    package: str  # the Debian/Ubuntu package that provides it
    needed_by: str


SERVER = Requirement("PostgreSQL server binaries", "postgresql-15", "the tests on PostgreSQL")
PGTAP = Requirement("pg_prove and pgTAP", "postgresql-15-pgtap", "the pgTAP checks of rendered projects")


def has_server() -> bool:
    return bool(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or shutil.which("initdb") is not None


def has_pgtap() -> bool:
    controls = glob.glob("/usr/share/postgresql/*/extension/pgtap.control")
    pg_config = shutil.which("pg_config")
    if pg_config:
        share = subprocess.run([pg_config, "--sharedir"], capture_output=True, text=True, check=False).stdout.strip()
        controls += glob.glob(str(Path(share) / "extension" / "pgtap.control")) if share else []
    return shutil.which("pg_prove") is not None and bool(controls)


def missing() -> list[Requirement]:
    return [r for r, present in ((SERVER, has_server()), (PGTAP, has_pgtap())) if not present]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


@dataclass(frozen=True)
class Plan:
    install: list[str]  # apt packages to install now
    lines: list[str]  # what to tell the user, one line per requirement left missing
    exit_code: int


def plan(absent: list[Requirement], root: bool, apt: bool, ci: bool) -> Plan:
    """Install as root through apt; otherwise name the package, and fail only under CI."""
    if not absent:
        return Plan([], [], 0)
    if root and apt:
        return Plan([r.package for r in absent], [], 0)
    outcome = "they fail (CI=true)" if ci else "they are skipped"
    lines = [f"make test: {r.what} missing: install them with `sudo apt-get install -y {r.package}`; until then "
             f"{r.needed_by} cannot run and {outcome}" for r in absent]
    return Plan([], lines, 1 if ci else 0)


def main() -> int:
    absent = missing()
    todo = plan(absent, os.geteuid() == 0, shutil.which("apt-get") is not None, in_ci())
    if todo.install:
        print(f"make test: installing {' '.join(todo.install)} through apt-get (running as root)", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *todo.install], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        todo = plan(missing(), root=False, apt=False, ci=in_ci())
    for line in todo.lines:
        print(line, file=sys.stderr)
    return todo.exit_code


if __name__ == "__main__":
    sys.exit(main())
