"""`make test` sets up what the tests need: tests/deps.py decides, as data. And `make` makes its .venv on a
Python without ensurepip (Debian's python3 without python3-venv)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deps import PGTAP, SERVER, Plan, plan

ROOT = Path(__file__).resolve().parents[1]
ADVICE = ("make test: pg_prove and pgTAP missing: install them with `sudo apt-get install -y postgresql-15-pgtap`; "
          "until then the pgTAP checks of rendered projects cannot run and ")

CASES = [
    # (missing, root, apt-get present, CI, expected plan)
    ([], False, False, True, Plan([], [], 0)),
    ([SERVER, PGTAP], True, True, True, Plan(["postgresql-15", "postgresql-15-pgtap"], [], 0)),
    ([PGTAP], True, True, False, Plan(["postgresql-15-pgtap"], [], 0)),
    ([PGTAP], False, True, False, Plan([], [ADVICE + "they are skipped"], 0)),
    ([PGTAP], True, False, False, Plan([], [ADVICE + "they are skipped"], 0)),
    ([PGTAP], False, True, True, Plan([], [ADVICE + "they fail (CI=true)"], 1)),
]


@pytest.mark.parametrize(("absent", "root", "apt", "ci", "expected"), CASES)
def test_root_installs_through_apt_otherwise_one_line_names_the_package_and_ci_fails(absent, root, apt, ci,
                                                                                      expected):
    assert plan(absent, root, apt, ci) == expected


def test_every_missing_requirement_is_one_line_naming_its_package():
    lines = plan([SERVER, PGTAP], root=False, apt=True, ci=False).lines
    assert [line.count("\n") for line in lines] == [0, 0]
    assert ["postgresql-15`" in lines[0], "postgresql-15-pgtap`" in lines[1]] == [True, True]


def test_make_test_runs_the_setup_before_the_tests_and_ci_run_goes_through_make_test():
    dry = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    commands = [line for line in dry.splitlines() if "python" in line]
    assert "tests/deps.py" in commands[-2] and "-m pytest" in commands[-1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "apt-get" not in ci and "make test" in ci


# A python3 as Debian ships it without python3-venv: `-m venv` fails for want of ensurepip, unless told
# --without-pip. NO_PIP: its pip is missing too.
NO_ENSUREPIP = """#!/bin/sh
if [ "$1" = -m ] && [ "$2" = venv ] && [ "$3" != --without-pip ]; then
  echo "The virtual environment was not created successfully because ensurepip is not available." >&2
  exit 1
fi
if [ -n "$NO_PIP" ] && [ "$1" = -m ] && [ "$2" = pip ]; then
  echo "$0: No module named pip" >&2
  exit 1
fi
exec "{python}" "$@"
"""
BASE_PYTHON = Path(sys.base_prefix) / "bin" / "python3"


def _make_install_without_ensurepip(tmp_path: Path, no_pip: bool, timeout: int):
    """`make install` into tmp_path/venv with a python3 lacking ensurepip (and pip, with `no_pip`), no uv on PATH:
    (that python3, the venv, make's result)."""
    python, venv = tmp_path / "python3", tmp_path / "venv"
    python.write_text(NO_ENSUREPIP.replace("{python}", str(BASE_PYTHON)))
    python.chmod(0o755)
    # No uv on PATH, or make would take it instead; make and the shell stay.
    path = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if d and not (Path(d) / "uv").exists())
    if shutil.which("make", path=path) is None or shutil.which("rm", path=path) is None:
        pytest.skip("uv shares a folder with make or the shell's tools: it cannot be hidden from make")
    env = {**os.environ, "PATH": path, **({"NO_PIP": "1"} if no_pip else {})}
    out = subprocess.run(["make", "-s", "install", f"PYTHON={python}", f"VENV={venv}"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=timeout)
    return python, venv, out


def test_make_fills_a_venv_without_pip_through_the_pythons_own_pip_when_ensurepip_is_missing(tmp_path):
    if subprocess.run([BASE_PYTHON, "-m", "pip", "--python", BASE_PYTHON, "--version"],
                      capture_output=True).returncode != 0:
        pytest.skip("this Python's pip cannot install into another environment (pip >= 22.3 can)")
    _, venv, out = _make_install_without_ensurepip(tmp_path, no_pip=False, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "make: a venv without pip, filled by this Python's own pip" in out.stderr
    assert (venv / ".installed-stamp").is_file() and not (venv / "bin" / "pip").exists()
    listed = subprocess.run([venv / "bin" / "blueprint-mcp", "templates"], capture_output=True, text=True,
                            timeout=120)
    assert listed.returncode == 0 and "habit-tracker" in listed.stdout, listed.stderr


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("apt-get") is not None and sys.base_prefix == "/usr",
                    reason="as root with apt-get, make installs python3.X-venv for the system Python instead")
def test_make_says_in_one_line_what_to_install_when_it_cannot_make_a_venv(tmp_path):
    python, venv, out = _make_install_without_ensurepip(tmp_path, no_pip=True, timeout=120)
    pkg = "python%d.%d-venv" % sys.version_info[:2]
    assert out.returncode != 0
    assert (f"make: {python} cannot make {venv} (no ensurepip, no pip): install uv, or {pkg} "
            f"(sudo apt-get install -y {pkg}), then run make again") in out.stderr.splitlines()
    assert not venv.exists()
