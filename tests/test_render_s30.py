"""render never changes what the user did not ask to change (red team 31 F1, F3, F2, F5): a re-render keeps the
migration names it recorded, a migration it did not record is never removed or replaced, nothing is written before
every path is checked (and the manifest matches the folder after a failed write), and no write leaves --out."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from blueprint_mcp import files, tools
from blueprint_mcp.artefacts import parse_stamp
from blueprint_mcp.cli import main
from blueprint_mcp.files import MANIFEST, read_manifest, sha256
from blueprint_mcp.templates import load_template

FIRST, SECOND = "20250101000000", "20250202000000"
KINDS = ["initial_schema", "rls_policies", "triggers"]
USER_MIGRATION = "supabase/migrations/20250601000000_add_colour.sql"
ROOT = Path(__file__).resolve().parent.parent


def _render(out: Path, *extra: str, source: str = "habit-tracker") -> int:
    return main(["render", source, "--out", str(out), *extra])


def _stamped(stamp: str) -> list[str]:
    return [f"{stamp[:-1]}{i}_{kind}.sql" for i, kind in enumerate(KINDS)]


def _migrations(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "supabase" / "migrations").iterdir())


def _files(root: Path) -> dict[str, bytes]:
    """Every file and link under root (a link as its target text), so 'unchanged' means unchanged."""
    found = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            found[rel] = b"-> " + os.readlink(p).encode()
        elif p.is_file():
            found[rel] = p.read_bytes()
    return found


def _fresh(tmp_path: Path, *args: str, source: str = "habit-tracker") -> dict[str, bytes]:
    out = tmp_path / "fresh"
    assert _render(out, *args, source=source) == 0
    return _files(out)


def test_f1_a_rerender_without_timestamp_keeps_the_recorded_migration_names(tmp_path, capsys):
    out = tmp_path / "app"
    assert _render(out, "--timestamp", FIRST) == 0
    (out / USER_MIGRATION).write_text("alter table public.habits add column colour text;\n")
    before = _files(out)
    assert _migrations(out) == [*_stamped(FIRST), "20250601000000_add_colour.sql"]
    capsys.readouterr()

    # The same blueprint again, no --timestamp: the very same files, nothing removed or renamed.
    assert _render(out) == 0
    assert "removed" not in capsys.readouterr().err
    assert _files(out) == before

    # A changed blueprint rewrites the generated migrations in place, under their recorded names.
    changed = tmp_path / "habit-tracker.yaml"
    text = (ROOT / "blueprints/habit-tracker.yaml").read_text()
    assert text.count("max_length: 2000") == 1
    changed.write_text(text.replace("max_length: 2000", "max_length: 3000"))
    assert _render(out, source=str(changed)) == 0
    assert "removed" not in capsys.readouterr().err
    after = _files(out)
    assert sorted(after) == sorted(before)
    initial = f"supabase/migrations/{_stamped(FIRST)[0]}"
    assert after[initial] != before[initial] and b"3000" in after[initial]
    assert after[USER_MIGRATION] == before[USER_MIGRATION]
    fresh = _fresh(tmp_path, "--timestamp", FIRST, source=str(changed))
    assert after == fresh | {USER_MIGRATION: after[USER_MIGRATION]}

    # Only an explicit --timestamp starts a new set (and removes the recorded one).
    assert _render(out, "--timestamp", SECOND, source=str(changed)) == 0
    assert _migrations(out) == [*_stamped(SECOND), "20250601000000_add_colour.sql"]


def test_f3_a_migration_render_did_not_record_is_never_removed_or_replaced(tmp_path, capsys):
    out = tmp_path / "app"
    assert _render(out, "--timestamp", FIRST) == 0
    (out / MANIFEST).unlink()  # a client wrote scaffold_project's files, or the manifest was deleted
    (out / USER_MIGRATION).write_text("alter table public.habits add column colour text;\n")
    before = _files(out)
    capsys.readouterr()

    # Identical migrations under another stamp: refused, with or without --force, naming them and the fix.
    for extra in ([], ["--force"], ["--timestamp", SECOND, "--force"]):
        assert _render(out, *extra) == 2
        err = capsys.readouterr().err
        for name in _stamped(FIRST):
            assert str(out / "supabase/migrations" / name) in err
        assert "identical to ones it writes under another name" in err
        assert f"--timestamp {FIRST}" in err
        assert _files(out) == before

    # The fix offered: render under their stamp takes them over, unchanged, and records them.
    assert _render(out, "--timestamp", FIRST) == 0
    assert {rel: data for rel, data in _files(out).items() if rel != MANIFEST} == before
    assert sorted(rel for rel in read_manifest(out) if "/migrations/" in rel) == \
        [f"supabase/migrations/{name}" for name in _stamped(FIRST)]

    # A migration render did not record at a path it writes is not replaced, even with --force.
    other = tmp_path / "other"
    mine = other / "supabase/migrations" / _stamped(FIRST)[0]
    mine.parent.mkdir(parents=True)
    mine.write_text("-- mine\n")
    assert _render(other, "--timestamp", FIRST, "--force") == 2
    err = capsys.readouterr().err
    assert f"would overwrite migrations render did not create: ['{mine}']" in err
    assert _files(other) == {f"supabase/migrations/{_stamped(FIRST)[0]}": b"-- mine\n"}


def test_f2_a_dangling_link_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "app"
    assert _render(out, "--timestamp", FIRST) == 0
    for name in (out / "supabase/analytics").iterdir():
        name.unlink()
    (out / "supabase/analytics").rmdir()
    (out / "supabase/analytics").symlink_to("../not-checked-out")
    before = _files(out)
    capsys.readouterr()
    assert _render(out, "--timestamp", SECOND) == 2
    err = capsys.readouterr().err
    assert f"{out / 'supabase/analytics'} is a symbolic link to ../not-checked-out, which does not exist" in err
    assert _files(out) == before
    assert _migrations(out) == _stamped(FIRST)

    # A dangling link where render writes a file is not render's: refused without --force, like a user's file.
    other = tmp_path / "other"
    (other / "supabase").mkdir(parents=True)
    (other / "supabase/seed.sql").symlink_to("../../nowhere.sql")
    assert _render(other, "--timestamp", FIRST) == 2
    assert f"would overwrite files render did not create: ['{other / 'supabase/seed.sql'}']" in capsys.readouterr().err
    assert _files(other) == {"supabase/seed.sql": b"-> ../../nowhere.sql"}


@pytest.mark.parametrize("step", ["stage", "replace"])
def test_f2_a_write_failing_midway_leaves_a_manifest_that_matches_the_folder(tmp_path, monkeypatch, step):
    bp = load_template("habit-tracker")
    out = tmp_path / "app"
    assert _render(out, "--timestamp", FIRST) == 0
    before = _files(out)
    real, calls = files.stage if step == "stage" else os.replace, [0]

    def failing(*args):
        calls[0] += 1
        if calls[0] == 4:  # the spec, two migrations, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args)

    monkeypatch.setattr(*(files, "stage") if step == "stage" else (files.os, "replace"), failing)
    second = tools.migration_files(bp, parse_stamp(SECOND))
    with pytest.raises(OSError):
        tools.write_files(second, out)
    monkeypatch.undo()
    assert not [p for p in out.rglob("*.tmp")]
    manifest = read_manifest(out)
    assert all(sha256((out / rel).read_bytes()) == digest for rel, digest in manifest.items())
    if step == "stage":  # nothing was renamed: the folder is as it was
        assert _files(out) == before
    else:  # the spec and two new migrations replaced; the old set still recorded, so the next render removes it
        assert _migrations(out) == sorted([*_stamped(FIRST), *_stamped(SECOND)[:2]])
        assert set(manifest) == {rel for rel in _files(out) if rel != MANIFEST}
    # The next render does not call render's own files edited, and gives what a fresh render gives.
    tools.write_files(second, out)
    assert _files(out) == _fresh(tmp_path, "--timestamp", SECOND)


def test_f5_no_write_through_a_symlinked_folder_that_leaves_out(tmp_path, capsys):
    victim = tmp_path / "victim"
    victim.mkdir()
    repo = tmp_path / "repo"
    (repo / "supabase").mkdir(parents=True)
    (repo / "supabase/functions").symlink_to("../../victim")
    assert _render(repo, "--timestamp", FIRST) == 2
    err = capsys.readouterr().err
    assert f"{repo / 'supabase/functions'} is a symbolic link leading out of the output folder" in err
    assert list(victim.iterdir()) == []
    assert _files(repo) == {"supabase/functions": b"-> ../../victim"}

    # The monorepo layout: app/supabase -> ../shared/supabase.
    (tmp_path / "shared/supabase").mkdir(parents=True)
    app = tmp_path / "app"
    app.mkdir()
    (app / "supabase").symlink_to("../shared/supabase")
    assert _render(app, "--timestamp", FIRST) == 2
    assert f"{app / 'supabase'} is a symbolic link leading out of the output folder" in capsys.readouterr().err
    assert list((tmp_path / "shared/supabase").iterdir()) == []

    # A link that stays inside --out is followed as before.
    inside = tmp_path / "inside"
    (inside / "shared-functions").mkdir(parents=True)
    (inside / "supabase").mkdir()
    (inside / "supabase/functions").symlink_to("../shared-functions")
    assert _render(inside, "--timestamp", FIRST) == 0
    assert (inside / "shared-functions/_shared/http.ts").is_file()
    assert _render(inside) == 0
    assert json.loads((inside / MANIFEST).read_text())["files"]


def test_a_user_migration_holding_a_version_render_writes_is_refused(tmp_path, capsys):
    """Red team 31 F6: the Supabase CLI keys its migration history by the digits before '_'; render wrote
    20250101000000_initial_schema.sql beside the user's 20250101000000_add_colour.sql."""
    out = tmp_path / "app"
    mine = out / "supabase" / "migrations" / "20250101000000_add_colour.sql"
    mine.parent.mkdir(parents=True)
    mine.write_text("alter table public.habits add column colour text;\n")
    assert _render(out, "--timestamp", "20250101000000") == 2
    assert "hold a version it writes" in capsys.readouterr().err
    assert _migrations(out) == ["20250101000000_add_colour.sql"]
    assert _render(out, "--timestamp", "20250101000001") == 0
    assert "20250101000000_add_colour.sql" in _migrations(out)


def test_a_failure_while_staging_leaves_no_empty_folders(tmp_path, monkeypatch):
    # Helper N's leftover: the first render into a new folder failed on the fourth file and left supabase/,
    # supabase/migrations/ and docs/ behind, empty.
    real, calls = files.stage, [0]

    def failing(*args):
        calls[0] += 1
        if calls[0] == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args)

    monkeypatch.setattr(files, "stage", failing)
    out = tmp_path / "new" / "app"
    with pytest.raises(OSError):
        tools.write_files(tools.migration_files(load_template("habit-tracker"), parse_stamp(FIRST)), out)
    assert list(tmp_path.iterdir()) == []
    # Into a folder holding a file of the user's: their folder and file stay, nothing else.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/notes.txt").write_text("mine")
    calls[0] = 0
    with pytest.raises(OSError):
        tools.write_files(tools.migration_files(load_template("habit-tracker"), parse_stamp(FIRST)), tmp_path / "mine")
    assert _files(tmp_path / "mine") == {"notes.txt": b"mine"}


def test_a_symlinked_manifest_is_refused_not_read(tmp_path, capsys):
    outside = tmp_path / "outside.json"
    outside.write_text('{"format": 1, "files": {}}')
    out = tmp_path / "app"
    (out / files.MANIFEST).parent.mkdir(parents=True)
    (out / files.MANIFEST).symlink_to(outside)
    assert _render(out, "--timestamp", FIRST) == 2
    assert f"{out / files.MANIFEST} is a symbolic link (to {outside})" in capsys.readouterr().err
    assert _files(out) == {files.MANIFEST: f"-> {outside}".encode()}
