"""The files `render` writes: atomic writes, and a manifest so a re-render replaces exactly what it made.

`supabase/.blueprint-manifest.json` lists every generated file (path relative to the output folder,
sha256 of the bytes written). A re-render replaces those files (the CLI keeps the recorded migration names unless
given a new --timestamp), deletes the ones it no longer produces (an earlier timestamp's migrations, which would
otherwise apply first and clash), and never touches a file it did not create: a migration it did not record is
never removed or replaced, even with force. A generated file edited since (its hash no longer matches) is only
replaced with force. Every path is checked, and every file staged, before anything is replaced.
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
_KINDS = ("initial_schema", "rls_policies", "triggers")  # in the order render stamps them


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
    tmp = stage(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def stage(path: Path, data: bytes) -> Path:
    """Write `data` to a new temporary file beside `path` (its mode, when it exists) and return it: renaming it over
    `path` is the only step left, so a render can write every file before it replaces any."""
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
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def manifest_text(files: dict[str, bytes]) -> str:
    """Deterministic: sorted paths, no timestamps, so the same render gives the same manifest bytes."""
    return _manifest({rel: sha256(data) for rel, data in files.items()})


def _manifest(listing: dict[str, str]) -> str:
    return json.dumps({"format": MANIFEST_FORMAT, "generator": "blueprint-mcp render",
                       "files": {rel: listing[rel] for rel in sorted(listing)}}, indent=2) + "\n"


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
    fix = "delete it (render then treats every existing file as not its own)"
    if path.is_symlink():  # render keeps its own record in --out, never one read through a link (red team 31)
        raise BlueprintError(f"{path} is a symbolic link (to {os.readlink(path)}): render keeps its manifest as a "
                             "plain file in the output folder", field="out",
                             fix="replace the link with a copy of the file, or " + fix)
    if not path.is_file():
        return {}
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


def recorded_stamps(root: Path) -> list[str] | None:
    """The stamps of the migrations the last render recorded (initial_schema, rls_policies, triggers, in that
    order), so a re-render not asked for a new --timestamp keeps their names; None without one full set."""
    found: dict[str, list[str]] = {}
    for rel in read_manifest(root):
        kind = _kind(rel) if PurePosixPath(rel).parent == PurePosixPath("supabase/migrations") else None
        if kind:
            found.setdefault(kind, []).append(PurePosixPath(rel).name[:14])
    stamps = [found.get(kind, []) for kind in _KINDS]
    if any(len(s) != 1 for s in stamps) or [s[0] for s in stamps] != sorted({s[0] for s in stamps}):
        return None
    return [s[0] for s in stamps]


@dataclass
class Plan:
    """What a render would do to a folder, and what stands in its way."""

    stale: list[str]      # generated before, no longer produced, unedited (or forced): deleted
    foreign: list[str]    # files render did not create at paths it produces
    edited: list[str]     # generated files changed since (produced again, or stale)
    clashes: list[str]    # unrecorded migrations named like generated ones, with other content
    twins: list[str]      # unrecorded migrations byte for byte one this render writes under another name
    versions: list[str]   # migrations render did not create holding a version it writes
    current: dict[str, str]
    recorded: dict[str, str]  # the manifest


def plan(new: dict[str, bytes], root: Path) -> Plan:
    """Compare the files to write with the folder and its manifest; changes nothing."""
    old = read_manifest(root)
    mig = root / "supabase" / "migrations"
    theirs = [rel for rel in (p.relative_to(root).as_posix() for p in (mig.glob("*.sql") if mig.is_dir() else []))
              if rel not in new and rel not in old]
    unrecorded = sorted(rel for rel in theirs if _kind(rel))
    # The Supabase CLI keys its migration history by the digits before the first '_': a migration of the user's
    # with a version render writes would be taken for it (red team 31 F6).
    written = {_version(rel) for rel in new if _migration(rel)}
    current = {rel: sha256((root / rel).read_bytes()) for rel in {*new, *old, *unrecorded} if (root / rel).is_file()}
    # A migration render did not record is the user's (a client wrote it from scaffold_project, or the manifest
    # was deleted): it may be applied, so it is never removed. Byte for byte one this render writes under another
    # name, it would make a second set.
    produced = {(_kind(rel), sha256(data)) for rel, data in new.items() if _kind(rel)}
    twins = [rel for rel in unrecorded if (_kind(rel), current[rel]) in produced]
    stale = sorted(rel for rel in old if rel not in new and rel in current and _GENERATED_SHAPES.fullmatch(rel))
    changed = [rel for rel in new if rel in current and current[rel] != sha256(new[rel])]
    # A dangling link where render writes a file is not render's: the same as a file it did not create.
    dangling = [rel for rel in new if (root / rel).is_symlink() and not (root / rel).exists()]
    return Plan(
        stale=stale,
        foreign=[rel for rel in changed if rel not in old] + dangling,
        edited=[rel for rel in changed if rel in old and current[rel] != old[rel]]
        + [rel for rel in stale if current[rel] != old[rel]],
        clashes=[rel for rel in unrecorded if rel not in twins],
        twins=twins,
        versions=sorted(rel for rel in theirs if _version(rel) in written),
        current=current,
        recorded=old,
    )


def _blocked(path: Path) -> tuple[str, str] | None:
    """Why render can't make `path` a folder, and the fix: a file stands there, or a link to nothing."""
    if path.is_symlink() and not path.exists():
        return (f"{path} is a symbolic link to {os.readlink(path)}, which does not exist",
                "check out or create what it points to, remove the link, or choose another --out")
    if path.exists() and not path.is_dir():
        return f"{path} is a file where render needs a folder", "move the file away, or choose another --out"
    return None


def _check_folders(root: Path, rels: list[str]) -> None:
    """Refuse, before writing anything, where a folder render needs is a file or a dangling link, where a file it
    writes is a folder, and where a folder is a link leading out of the output folder."""
    if root.exists() and not root.is_dir():
        raise OutputExists(f"{root} is a file, not a folder", field="out",
                           fix="choose a folder for --out (render creates it when missing), or move the file away")
    folders = sorted({root / parent for rel in rels for parent in PurePosixPath(rel).parents if parent.parts})
    blocked = next((why for p in [*reversed(root.parents), root, *folders] if (why := _blocked(p))), None)
    if blocked:
        raise OutputExists(blocked[0], field="out", fix=blocked[1])
    folder = next((str(root / rel) for rel in rels if (root / rel).is_dir()), None)
    if folder:
        raise OutputExists(f"{folder} is a folder where render writes a file", field="out",
                           fix="move the folder away, or choose another --out")
    outside = next((p for p in folders if not p.resolve().is_relative_to(root.resolve())), None)
    if outside:
        raise OutputExists(f"{outside} is a symbolic link leading out of the output folder (to {outside.resolve()}):"
                           " render writes only inside --out", field="out",
                           fix="replace the link with a folder, or render into another --out and copy the files")


def _migration(rel: str) -> bool:
    return PurePosixPath(rel).parent == PurePosixPath("supabase/migrations")


def _version(rel: str) -> str:
    """A migration's version, as the Supabase CLI reads it: the digits before the first '_'."""
    return PurePosixPath(rel).name.split("_", 1)[0]


def write_generated(files: dict[str, str], out_dir: str | Path, force: bool = False) -> Written:
    """Write render's files under out_dir and record them; refuse (before writing anything) to replace a
    file render did not create or a generated file edited since, unless force; never replace or remove a
    migration it did not record."""
    root = Path(out_dir)
    new = {rel: text.encode("utf-8") for rel, text in files.items()}
    unsafe = [rel for rel in new if not _safe(rel)]
    if unsafe:
        raise BlueprintError(f"not a relative path below the output folder: {unsafe[:5]}", field="files")
    _check_folders(root, [*new, MANIFEST])
    todo = plan(new, root)
    if todo.twins:
        stamp = PurePosixPath(todo.twins[0]).name[:14]
        raise OutputExists(f"the folder holds migrations render did not record, identical to ones it writes under "
                           f"another name: {[str(root / rel) for rel in todo.twins]}; writing would give a second "
                           "set (applied together, they clash)", field="out",
                           fix=f"render with --timestamp {stamp} to keep their names (render then records them), "
                               "or move them away: render never removes a migration it did not record")
    if todo.versions:
        raise OutputExists(f"migrations render did not create hold a version it writes (the Supabase CLI keys its "
                           f"history by it): {[str(root / rel) for rel in todo.versions]}", field="out",
                           fix="render with another --timestamp, or rename them: render never replaces a migration "
                               "it did not record")
    mine = [rel for rel in todo.foreign if _migration(rel)]
    if mine:
        raise OutputExists(f"would overwrite migrations render did not create: {[str(root / rel) for rel in mine]}",
                           field="out", fix="render with another --timestamp, or move them away: render never "
                                            "replaces a migration it did not record, even with --force")
    problems = [(todo.foreign, "would overwrite files render did not create"),
                (todo.edited, "generated files were edited since the last render"),
                (todo.clashes, "the folder holds migrations named like generated ones that render did not record "
                               "(applied with the new ones, they clash)")]
    if not force and any(paths for paths, _ in problems):
        raise OutputExists("; ".join(f"{what}: {[str(root / rel) for rel in paths]}" for paths, what in problems
                                     if paths), field="out",
                           fix="pass --force to replace them (generated files only: a migration render did not "
                               "create is never removed), move them away, or choose another --out")
    return _apply(root, new, todo)


def _apply(root: Path, new: dict[str, bytes], todo: Plan) -> Written:
    """Write every changed file to a temporary file first, then rename them all and delete the stale ones; the
    manifest records what the folder then holds, also when a step fails midway."""
    out = Written(kept=[root / rel for rel in todo.clashes])
    staged: dict[str, Path] = {}
    changed = [rel for rel, data in new.items() if todo.current.get(rel) != sha256(data)]
    # The folders staging creates, deepest first: a failure leaves the folder as it was, not a tree of empty ones.
    created = sorted({p for rel in changed for p in (root / rel).parents if not p.exists()},
                     key=lambda p: len(p.parts), reverse=True)
    try:
        for rel in changed:
            staged[rel] = stage(root / rel, new[rel])
    except BaseException:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        for folder in created:
            try:
                folder.rmdir()
            except OSError:
                pass  # not empty, or never made: the first failure is the one to report
        raise
    done = {rel for rel in new if rel not in staged}
    try:
        for rel, tmp in staged.items():
            os.replace(tmp, root / rel)
            done.add(rel)
        for rel in todo.stale:
            (root / rel).unlink()
            out.removed.append(root / rel)
    except BaseException:
        for rel, tmp in staged.items():
            if rel not in done:
                tmp.unlink(missing_ok=True)
        gone = {p.relative_to(root).as_posix() for p in out.removed}
        record = {rel: digest for rel, digest in todo.recorded.items() if rel not in gone and rel not in done}
        try:
            atomic_write(root / MANIFEST, _manifest(record | {rel: sha256(new[rel]) for rel in done}).encode())
        except OSError:
            pass  # the first failure is the one to report
        raise
    out.written = [root / rel for rel in new]
    atomic_write(root / MANIFEST, manifest_text(new).encode("utf-8"))
    return out

