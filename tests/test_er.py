"""The ER diagram: every table and foreign key, parsed by the real Mermaid parser (from the npm registry)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from blueprint_mcp.spec.er import er_diagram
from blueprint_mcp.sql.design import build_schema
from blueprint_mcp.templates import load_blueprint_file
from blueprint_mcp.tools import migration_files

# One worker installs the npm tools (Deno, Mermaid) once (`--dist loadgroup`), not one per worker.
pytestmark = pytest.mark.xdist_group("js")

ROOT = Path(__file__).resolve().parents[1]
APPS = sorted((ROOT / "blueprints").glob("*.yaml")) + sorted((ROOT / "examples").glob("*.yaml"))


def _name(schema_name: str, table: str) -> str:
    return table if schema_name == "public" else f"{schema_name}.{table}"


def _expected(path: Path) -> tuple[set[str], list[list[str]]]:
    schema = build_schema(load_blueprint_file(path))
    tables = {_name(t.schema_name, t.name) for t in schema.tables}
    tables |= {_name(fk.ref_schema, fk.ref_table) for t in schema.tables for fk in t.foreign_keys}
    fks = [[_name(t.schema_name, t.name), _name(fk.ref_schema, fk.ref_table),
            ", ".join(c for c in fk.columns if c != "organization_id") or "organization_id"]
           for t in schema.tables for fk in t.foreign_keys]
    return tables, fks


def test_render_writes_the_diagram_and_the_spec_embeds_it():
    bp = load_blueprint_file(APPS[0])
    files = migration_files(bp)
    diagram = er_diagram(build_schema(bp))
    assert files[f"docs/engineering/ER-{bp.app.slug}.mmd"] == diagram
    assert f"```mermaid\n{diagram}```\n" in files[f"docs/engineering/SUPABASE-{bp.app.slug}.md"]


def test_every_diagram_parses_with_mermaid_and_names_every_table_and_foreign_key(js_tools, tmp_path):
    files = []
    for path in APPS:
        f = tmp_path / path.parent.name / f"{path.stem}.mmd"  # a template and an example may share a name
        f.parent.mkdir(exist_ok=True)
        f.write_text(er_diagram(build_schema(load_blueprint_file(path))))
        files.append(f)
    out = subprocess.run([shutil.which("node") or "node", str(js_tools / "parse_mermaid.mjs"), *map(str, files)],
                         cwd=js_tools, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    results = [json.loads(line) for line in out.stdout.splitlines()]
    for path, got in zip(APPS, results, strict=True):
        tables, fks = _expected(path)
        app = f"{path.parent.name}/{path.stem}"
        assert got.get("type") == "er", (app, got)
        assert set(got["entities"]) == tables, app
        assert sorted(got["relationships"]) == sorted(fks), app


def test_the_mermaid_parser_rejects_a_broken_diagram(js_tools, tmp_path):
    bad = tmp_path / "bad.mmd"
    bad.write_text('erDiagram\n  "a" {{\n')
    out = subprocess.run(["node", str(js_tools / "parse_mermaid.mjs"), str(bad)], cwd=js_tools,
                         capture_output=True, text=True, timeout=120)
    assert "error" in json.loads(out.stdout)
