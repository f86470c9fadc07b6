"""The spec document's access table says what the policies implement (found by an independent check: it
printed the model's Python reprs, and for personal-data tables the entity's default readers, not its own)."""

from __future__ import annotations

from pathlib import Path

import pytest

from blueprint_mcp.sql.design import build_schema
from blueprint_mcp.spec.render import render_spec
from blueprint_mcp.templates import load_blueprint_file, load_template, template_names

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [*template_names(), *sorted(str(p) for p in (ROOT / "examples").glob("*.yaml"))]


def spec_of(source: str) -> str:
    bp = load_blueprint_file(source) if source.endswith(".yaml") else load_template(source)
    return render_spec(bp, build_schema(bp), sections=["tenancy", "checklist"])


def access_row(spec: str, table: str) -> list[str]:
    line = next(x for x in spec.splitlines() if x.startswith(f"| `{table}` |"))
    return [c.strip() for c in line.strip("|").split("|")]


@pytest.mark.parametrize("source", SOURCES)
def test_the_access_table_is_words_and_every_checklist_item_its_own_line(source):
    spec = spec_of(source)
    assert "Grant(" not in spec and "Match(" not in spec
    assert all(line.count("- [") <= 1 for line in spec.splitlines())


def test_personal_data_tables_name_their_own_readers():
    shop = spec_of("e-commerce")
    assert access_row(shop, "customers_private")[2] == (
        "holders of fulfil_orders (owner, manager, fulfilment); or the user customer_id -> user_id leads to")
    assert access_row(shop, "orders")[2:] == ["analyst+; or the user customer_id -> user_id leads to",
                                              "service role only"]
    cms = spec_of("cms")
    assert access_row(cms, "entries")[3].startswith(
        "insert: holders of publish (owner, admin, editor); or author+, where status = 'draft'. update: ")
    clinic = spec_of(str(ROOT / "examples" / "clinic.yaml"))
    assert access_row(clinic, "treatment_notes_private")[2] == (
        "dentist, own rows (created_by); or holders of view_clinical_notes (owner)")
