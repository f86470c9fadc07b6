"""`make test` sets up what the tests need: tests/deps.py decides, as data."""

from __future__ import annotations

import subprocess
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
