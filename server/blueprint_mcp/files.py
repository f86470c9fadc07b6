"""The files `render` writes: atomic writes, and a manifest so a re-render replaces exactly what it made.

`supabase/.blueprint-manifest.json` lists every generated file (path relative to the output folder,
sha256 of the bytes written). A re-render replaces those files, deletes the ones it no longer
produces (an earlier timestamp's migrations, which would otherwise apply first and clash), and never
touches a file it did not create. A generated file edited since (its hash no longer matches) is
only replaced with force.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .model import BlueprintError, OutputExists
from .model.limits import FILE_BYTES

MANIFEST = "supabase/.blueprint-manifest.json"
MANIFEST_FORMAT = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Migrations an earlier render (before manifests, or another tool) would have named: they apply by
# name, before this render's, and clash ("type ... already exists").
_GENERATED_MIGRATION = re.compile(r"\d{14}_(initial_schema|rls_policies|triggers)\.sql")


# Every path render writes has one of these shapes. A stale manifest entry of another shape is left in place:
# a manifest is a file in the user's folder (a cloned repository may bring a crafted one), never a licence to
# delete the user's own files.
_GENERATED_SHAPES = re.compile(
    r"supabase/migrations/" + _GENERATED_MIGRATION.pattern +
    r"|supabase/tests/database/[a-z0-9-]+_rls\.test\.sql"
    r"|docs/engineering/(?:SUPABASE-[a-z0-9-]+\.md|ER-[a-z0-9-]+\.mmd)"
    r"|supabase/functions/(?:_shared/http|[a-z0-9-]+/[a-z_]+)\.ts"
    r"|supabase/analytics/queries(?:\.[a-z]+)?\.sql"
    r"|supabase/(?:seed\.sql|config\.toml|types/database\.types\.ts)")


def _kind(rel: str) -> str | None:
    """initial_schema, rls_policies or triggers for a migration named the way render names them."""
    match = _GENERATED_MIGRATION.fullmatch(PurePosixPath(rel).name)
    return match.group(1) if match else None


@dataclass
class Written:
    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # clashing migrations left in place under force


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Write a temporary file in the same folder, then rename it over `path`: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = None
    # 0o666 through os.open lets the umask decide, as for any new file (mkstemp would force 0600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def manifest_text(files: dict[str, bytes]) -> str:
    """Deterministic: sorted paths, no timestamps, so the same render gives the same manifest bytes."""
    listing = {rel: sha256(files[rel]) for rel in sorted(files)}
    return json.dumps({"format": MANIFEST_FORMAT, "generator": "blueprint-mcp render", "files": listing},
                      indent=2) + "\n"


def _safe(rel: str) -> bool:
    """A plain relative path below the output folder: no absolute path, no `..`, no backslash."""
    parts = PurePosixPath(rel).parts
    return bool(parts) and "\\" not in rel and not PurePosixPath(rel).is_absolute() \
        and all(p not in ("", ".", "..") for p in parts) and rel != MANIFEST


def _inside(root: Path, rel: str) -> bool:
    """The file's folder, symlinks followed, is inside the output folder: a manifest can't reach out of it."""
    return (root / rel).parent.resolve().is_relative_to(root.resolve())


def read_manifest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of what the last render wrote; empty when there is no manifest."""
    path = root / MANIFEST
    if not path.is_file():
        return {}
    fix = "delete it (render then treats every existing file as not its own)"
    if path.stat().st_size > FILE_BYTES:
        raise BlueprintError(f"{path} is larger than {FILE_BYTES:,} bytes", field="out", fix=fix)
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        raise BlueprintError(f"{path} is not valid JSON", field="out", fix=fix) from None
    files = data.get("files") if isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT else None
    if not isinstance(files, dict):
        raise BlueprintError(f"{path} is not a blueprint-mcp manifest (format {MANIFEST_FORMAT})", field="out",
                             fix=fix)
    bad = [rel for rel, digest in files.items() if not (isinstance(digest, str) and _SHA256.fullmatch(digest)
                                                        and _safe(rel) and _inside(root, rel))]
    if bad:
        raise BlueprintError(f"{path} lists paths outside the output folder or without a sha256: {bad[:5]}",
                             field="out", fix=fix)
    return files


@dataclass
class Plan:
    """What a render would do to a folder, and what stands in its way."""

    stale: list[str]      # generated before, no longer produced, unedited (or forced): deleted
    foreign: list[str]    # files render did not create at paths it produces
    edited: list[str]     # generated files changed since (produced again, or stale)
    clashes: list[str]    # unrecorded migrations named like generated ones, with other content
    current: dict[str, str]


def plan(new: dict[str, bytes], root: Path) -> Plan:
    """Compare the files to write with the folder and its manifest; changes nothing."""
    old = read_manifest(root)
    mig = root / "supabase" / "migrations"
    unrecorded = sorted(p.relative_to(root).as_posix() for p in (mig.glob("*.sql") if mig.is_dir() else [])
                        if _kind(p.name) and p.relative_to(root).as_posix() not in {*new, *old})
    current = {rel: sha256((root / rel).read_bytes()) for rel in {*new, *old, *unrecorded} if (root / rel).is_file()}
    # A migration from before manifests existed, byte for byte one this render writes under a new
    # name, is this render's own: removing it loses nothing.
    produced = {(_kind(rel), sha256(data)) for rel, data in new.items() if _kind(rel)}
    adopted = [rel for rel in unrecorded if (_kind(rel), current[rel]) in produced]
    stale = sorted(rel for rel in old if rel not in new and rel in current and _GENERATED_SHAPES.fullmatch(rel))
    changed = [rel for rel in new if rel in current and current[rel] != sha256(new[rel])]
    return Plan(
        stale=stale + adopted,
        foreign=[rel for rel in changed if rel not in old],
        edited=[rel for rel in changed if rel in old and current[rel] != old[rel]]
        + [rel for rel in stale if current[rel] != old[rel]],
        clashes=[rel for rel in unrecorded if rel not in adopted],
        current=current,
    )


def _check_folders(root: Path, rels: list[str]) -> None:
    """Refuse, before writing anything, where a folder render needs is a file (or a file it writes is a folder)."""
    if root.exists() and not root.is_dir():
        raise OutputExists(f"{root} is a file, not a folder", field="out",
                           fix="choose a folder for --out (render creates it when missing), or move the file away")
    blocked = next((str(p) for p in reversed(root.parents) if p.exists() and not p.is_dir()), None)
    folders = sorted({root / parent for rel in rels for parent in PurePosixPath(rel).parents if parent.parts})
    blocked = blocked or next((str(p) for p in folders if p.exists() and not p.is_dir()), None)
    if blocked:
        raise OutputExists(f"{blocked} is a file where render needs a folder", field="out",
                           fix="move the file away, or choose another --out")
    folder = next((str(root / rel) for rel in rels if (root / rel).is_dir()), None)
    if folder:
        raise OutputExists(f"{folder} is a folder where render writes a file", field="out",
                           fix="move the folder away, or choose another --out")


def write_generated(files: dict[str, str], out_dir: str | Path, force: bool = False) -> Written:
    """Write render's files under out_dir and record them; refuse (before writing anything) to replace a
    file render did not create or a generated file edited since, unless force."""
    root = Path(out_dir)
    new = {rel: text.encode("utf-8") for rel, text in files.items()}
    unsafe = [rel for rel in new if not _safe(rel)]
    if unsafe:
        raise BlueprintError(f"not a relative path below the output folder: {unsafe[:5]}", field="files")
    _check_folders(root, list(new))
    todo = plan(new, root)
    problems = [(todo.foreign, "would overwrite files render did not create"),
                (todo.edited, "generated files were edited since the last render"),
                (todo.clashes, "the folder holds migrations named like generated ones that render did not record "
                               "(applied with the new ones, they clash)")]
    if not force and any(paths for paths, _ in problems):
        raise OutputExists("; ".join(f"{what}: {[str(root / rel) for rel in paths]}" for paths, what in problems
                                     if paths), field="out",
                           fix="pass --force to replace them (generated files only: a migration render did not "
                               "create is never removed), move them away, or choose another --out")
    out = Written(kept=[root / rel for rel in todo.clashes])
    for rel, data in new.items():
        if todo.current.get(rel) != sha256(data):
            atomic_write(root / rel, data)
        out.written.append(root / rel)
    for rel in todo.stale:
        (root / rel).unlink()
        out.removed.append(root / rel)
    atomic_write(root / MANIFEST, manifest_text(new).encode("utf-8"))
    return out
