"""Golden files: the generated artefacts of every template, byte for byte (update with --update-golden).

Each template is rendered when its test runs, not while pytest collects: collection runs in every worker, and
rendering five projects there cost each worker seconds before its first test."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from blueprint_mcp.templates import load_template, template_names
from blueprint_mcp.tools import migration_files

from pgutil import FIXED_TS

GOLDEN = Path(__file__).with_name("golden")


@pytest.mark.parametrize("template", template_names())
def test_generated_files_match_golden(template, update_golden):
    files = migration_files(load_template(template), datetime.fromisoformat(FIXED_TS))
    root = GOLDEN / template
    if update_golden:
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        for path in root.rglob("*"):
            if path.is_file() and path.relative_to(root).as_posix() not in files:
                path.unlink()
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert not set(files) - on_disk, (f"no golden file for {sorted(set(files) - on_disk)} under {root}; "
                                      "run pytest --update-golden and review the diff")
    assert not on_disk - set(files), (f"golden files {sorted(on_disk - set(files))} under {root} are no longer "
                                      "generated; run pytest --update-golden and review the diff")
    differing = [rel for rel in sorted(files) if files[rel] != (root / rel).read_text(encoding="utf-8")]
    assert not differing, f"{differing} differ from the golden files under {root}"
