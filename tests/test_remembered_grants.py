"""build_schema works out each entity's command grants once (model.meaning.remembered_grants): the design it
builds must be the one it built working them out at every call."""

from __future__ import annotations

from pathlib import Path

import pytest

from blueprint_mcp.model import meaning
from blueprint_mcp.model.meaning import command_grants, remembered_grants
from blueprint_mcp.sql import design
from blueprint_mcp.templates import load_blueprint_file, load_template, template_names

ROOT = Path(__file__).resolve().parents[1]
DESIGNS = [*template_names(), *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").glob("*.yaml")),
           "tests/fixtures/blueprints/access-lab.yaml"]
COMMANDS = ("select", "insert", "update", "delete")


def _load(name: str):
    return load_blueprint_file(ROOT / name) if name.endswith(".yaml") else load_template(name)


@pytest.mark.parametrize("name", DESIGNS)
def test_the_schema_is_the_same_with_each_commands_grants_worked_out_once(name):
    bp = _load(name)
    assert design.build_schema(bp).model_dump() == design._build_schema(bp).model_dump()


@pytest.mark.parametrize("name", DESIGNS)
def test_remembered_grants_are_the_grants_and_each_answer_is_the_callers_own_copy(name):
    bp = _load(name)
    fresh = {(e.name, c): command_grants(bp, e, c) for e in bp.entities for c in COMMANDS}
    with remembered_grants():
        for e in bp.entities:
            for c in COMMANDS:
                first = command_grants(bp, e, c)
                first.append("changed by a caller")  # a caller's list, not the remembered one
                assert command_grants(bp, e, c) == fresh[(e.name, c)]
    assert meaning._REMEMBERED.get() is None


def test_remembering_is_on_only_inside_and_a_nested_one_keeps_the_outer_memory():
    bp = load_template("habit-tracker")
    entity = bp.entities[0]
    with remembered_grants():
        outer = meaning._REMEMBERED.get()
        command_grants(bp, entity, "select")
        with remembered_grants():
            assert meaning._REMEMBERED.get() is outer
        assert meaning._REMEMBERED.get() is outer and len(outer) >= 1
    assert meaning._REMEMBERED.get() is None
