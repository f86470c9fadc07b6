"""Golden files: the generated habit-tracker artefacts, byte for byte (update with --update-golden)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from blueprint_mcp.templates import load_template, template_names
from blueprint_mcp.tools import migration_files

from pgutil import FIXED_TS

GOLDEN = Path(__file__).with_name("golden")


def _outputs() -> list[tuple[str, str, str]]:
    out = []
    for name in template_names():
        for rel, text in migration_files(load_template(name), datetime.fromisoformat(FIXED_TS)).items():
            out.append((name, rel, text))
    return out


@pytest.mark.parametrize(("template", "rel", "text"), _outputs(), ids=lambda v: v if "\n" not in str(v) else "")
def test_generated_file_matches_golden(template, rel, text, update_golden):
    path = GOLDEN / template / rel
    if update_golden:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path}; run pytest --update-golden and review the diff"
    assert text == path.read_text(encoding="utf-8"), f"{rel} differs from {path}"
