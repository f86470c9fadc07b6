"""Large artefacts behind `blueprint://` URIs, so an answer carries a link and a client reads only what it needs.

A design is named by its template (`habit-tracker`) or by a hash of its blueprint (`bp-<20 hex>`), kept in a
small on-disk store that every worker of one host shares; artefacts are rendered again on each read (the
generators are deterministic). A verify run is kept the same way under `run-<20 hex>`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from datetime import datetime, timedelta, timezone
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from .analytics import DIALECTS, queries_sql
from .model import Blueprint, BlueprintError, parse_blueprint
from .model.schema import Schema
from .model.errors import choose, preview
from .spec.er import er_diagram
from .spec.render import SECTIONS, render_spec
from .sql.design import build_schema
from .sql.render import rls_sql, schema_sql, triggers_sql
from .templates import load_template, template_names

CACHE_ENV = "BLUEPRINT_MCP_CACHE"
KEEP = {"bp": 256, "run": 32}  # entries kept per kind, the oldest go first (a run's cases can be megabytes)
_STORED = re.compile(r"^(bp|run)-[0-9a-f]{20}$")

# artefact name -> (MIME type, what it is); `only` narrows sections (schema, triggers, spec) or tables (rls).
DESIGN_ARTEFACTS: dict[str, tuple[str, str]] = {
    "blueprint.json": ("application/json", "the blueprint to carry forward or edit"),
    "spec.md": ("text/markdown", "the spec document"),
    "schema.sql": ("application/sql", "migration: tables, keys, indexes, RLS enabled, grants"),
    "triggers.sql": ("application/sql", "migration: trigger functions and triggers"),
    "rls.sql": ("application/sql", "migration: helpers, policies and served views"),
    "pgtap.sql": ("application/sql", "the attack matrix as pgTAP tests"),
    "er.mmd": ("text/vnd.mermaid", "the ER diagram (Mermaid): every table and foreign key"),
}
# Rendered only when read: too slow to render for a link's size (seconds for 200 entities).
UNSIZED = {"pgtap.sql"}
RUN_ARTEFACTS: dict[str, tuple[str, str]] = {
    "report.md": ("text/markdown", "the verification report"),
    "failures.json": ("application/json", "every failing case, leaks first"),
    "cases.json": ("application/json", "every case run"),
}
SCHEMA_SECTIONS = ("core", "domain", "analytics", "privacy")


class Link(BaseModel):
    """A resource the client may read (resources/read) instead of receiving it inline."""

    model_config = ConfigDict(extra="forbid")
    uri: str
    name: str
    mime_type: str
    size: int | None = None


class ArtefactNotFound(BlueprintError):
    """A `blueprint://` URI that names no design, run or artefact."""


def cache_dir() -> Path:
    """The store's folder; in a shared temp dir someone else could have made it first, so it must be ours alone."""
    path = Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / f"blueprint-mcp-{os.getuid()}")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if info.st_uid != os.getuid() or info.st_mode & 0o022 or path.is_symlink():
        raise BlueprintError(f"the cache folder {path} is not this user's alone", field=CACHE_ENV,
                             fix=f"remove it, or set {CACHE_ENV} to a private folder")
    return path


def _key(kind: str, text: str) -> str:
    return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:20]}"


def _put(kind: str, text: str) -> str:
    """Store text under its content hash (atomically, so concurrent workers never read half a file)."""
    key = _key(kind, text)
    folder = cache_dir() / kind
    folder.mkdir(mode=0o700, exist_ok=True)
    target = folder / f"{key}.json"
    if not target.exists():
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
        # Only our own entries: the folder may be one the user chose (BLUEPRINT_MCP_CACHE), with files of theirs.
        entries = sorted((p for p in folder.glob(f"{kind}-*.json") if _STORED.match(p.stem)), key=_age)
        for old in entries[:-KEEP[kind]]:
            old.unlink(missing_ok=True)
    return key


def _age(path: Path) -> float:
    """A stored entry's modification time; one another worker pruned meanwhile counts as the oldest."""
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _get(key: str) -> str:
    if not _STORED.match(key):
        raise ArtefactNotFound(f"unknown design or run {preview(key)}", field="uri",
                               fix=choose(key, template_names()) + ", or a bp-/run- id from a tool answer")
    kind = key.split("-")[0]
    try:
        text = (cache_dir() / kind / f"{key}.json").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArtefactNotFound(f"{key} is no longer stored on this server", field="uri",
                               fix="call the tool again to get a fresh link") from None
    if _key(kind, text) != key:  # the name is the content's hash: anything else was not written by us
        raise ArtefactNotFound(f"{key} is damaged", field="uri", fix="call the tool again to get a fresh link")
    return text


def compact_blueprint(bp: Blueprint) -> dict:
    """The blueprint without default values: the same design once parsed again, a fraction of the bytes."""
    return bp.model_dump(mode="json", exclude_defaults=True)


def design_id(bp: Blueprint, template: str | None) -> str:
    """The template's name when the design is one unchanged, else the stored blueprint's hash."""
    if template:
        return template
    return _put("bp", json.dumps(compact_blueprint(bp), separators=(",", ":"), sort_keys=True))


def load_design(design: str) -> Blueprint:
    if _STORED.match(design):
        return parse_blueprint(json.loads(_get(design)), root="blueprint")
    return load_template(design)


def store_run(data: dict) -> str:
    return _put("run", json.dumps(data, separators=(",", ":"), ensure_ascii=False))


@dataclass(frozen=True)
class Artefact:
    uri: str
    mime_type: str
    text: str


def _only(only: str | None) -> list[str]:
    return [x for x in (only or "").split(",") if x]


def design_uri(design: str, artefact: str, only: list[str] | None = None) -> str:
    return f"blueprint://designs/{design}/{artefact}" + (f"?only={','.join(only)}" if only else "")


def design_artefact(design: str, artefact: str, only: str | None = None,
                    loaded: tuple[Blueprint, Schema] | None = None) -> Artefact:
    """Render one artefact of a design; `only` is a comma-separated list of sections or tables.

    `loaded` is the design's blueprint and schema when the caller has them already.
    """
    if artefact not in DESIGN_ARTEFACTS:
        raise ArtefactNotFound(f"unknown artefact {preview(artefact)}", field="uri",
                               fix=choose(artefact, list(DESIGN_ARTEFACTS)))
    if _only(only) and artefact not in NARROWED:
        raise ArtefactNotFound(f"{artefact} takes no only", field="only",
                               fix=f"leave it out; only narrows {', '.join(NARROWED)}")
    bp = loaded[0] if loaded else load_design(design)
    schema, slug, wanted = loaded[1] if loaded else build_schema(bp), bp.app.slug, _only(only)
    if artefact in ("schema.sql", "triggers.sql", "spec.md") and wanted:
        bad = [s for s in wanted if s not in (SCHEMA_SECTIONS if artefact != "spec.md" else SECTIONS)]
        if bad:
            raise ArtefactNotFound(f"unknown section {preview(bad[0])}", field="only",
                                   fix=choose(bad[0], SCHEMA_SECTIONS if artefact != "spec.md" else SECTIONS))
    if artefact == "rls.sql" and wanted:
        known = [t.name for t in schema.tables]
        bad = [t for t in wanted if t not in known]
        if bad:
            raise ArtefactNotFound(f"{preview(bad[0])} is not a table of this blueprint", field="only",
                                   fix=choose(bad[0], known))
    if artefact == "blueprint.json":
        text = json.dumps(compact_blueprint(bp), indent=1, ensure_ascii=False) + "\n"
    elif artefact == "spec.md":
        text = render_spec(bp, schema, wanted or list(SECTIONS))
    elif artefact == "er.mmd":
        text = er_diagram(schema)
    elif artefact == "pgtap.sql":
        from .verify.pgtap import pgtap_file

        text = pgtap_file(bp)
    elif artefact == "rls.sql":
        part = schema.model_copy(update={"tables": [t for t in schema.tables if not wanted or t.name in wanted],
                                         "views": schema.views if not wanted else [],
                                         "cron_jobs": schema.cron_jobs if not wanted else []})
        text = rls_sql(part, slug)
    else:
        sections = set(wanted or SCHEMA_SECTIONS)
        part = schema.model_copy(update={"tables": [t for t in schema.tables if t.section in sections],
                                         "views": schema.views if "analytics" in sections else []})
        text = (schema_sql if artefact == "schema.sql" else triggers_sql)(part, slug)
    return Artefact(design_uri(design, artefact, wanted), DESIGN_ARTEFACTS[artefact][0], text)


def run_artefact(run: str, artefact: str) -> Artefact:
    if artefact not in RUN_ARTEFACTS or not run.startswith("run-"):
        raise ArtefactNotFound(f"unknown artefact {preview(artefact)} of {preview(run)}", field="uri",
                               fix=choose(artefact, list(RUN_ARTEFACTS)))
    data = json.loads(_get(run))
    if artefact == "report.md":
        text = data["markdown"]
    else:
        text = json.dumps(data[artefact.removesuffix(".json")], indent=1, ensure_ascii=False) + "\n"
    return Artefact(f"blueprint://verify/{run}/{artefact}", RUN_ARTEFACTS[artefact][0], text)


def analytics_uri(design: str, dialect: str = "postgres") -> str:
    return f"blueprint://designs/{design}/analytics.sql" + (f"?dialect={dialect}" if dialect != "postgres" else "")


def analytics_artefact(design: str, dialect: str | None = None, bp: Blueprint | None = None) -> Artefact:
    """The analytics pack of a design in one dialect (postgres, duckdb, clickhouse, bigquery)."""
    dialect = dialect or "postgres"
    if dialect not in DIALECTS:
        raise ArtefactNotFound(f"unknown dialect {preview(dialect)}", field="dialect", fix=choose(dialect, DIALECTS))
    bp = bp or load_design(design)
    if not bp.analytics.enabled:
        raise ArtefactNotFound(f"design {preview(design)} has analytics turned off", field="analytics.enabled",
                               fix="set analytics.enabled: true in the blueprint")
    return Artefact(analytics_uri(design, dialect), "application/sql", queries_sql(bp, dialect))


# --- the whole project (scaffold_project): every file render writes, one resource each ---------------------

STAMP_RE = re.compile(r"^\d{14}$")
MIGRATIONS = 3  # render's migrations, stamped one second apart from the first


def stamp_of(when: datetime) -> str:
    """YYYYMMDDHHMMSS; the year always four digits (strftime's %Y drops the zeros of years before 1000)."""
    return f"{when.year:04d}" + when.strftime("%m%d%H%M%S")


# The first migration's stamp: the later ones must still be dates a datetime, and a file name, can hold.
FIRST_STAMP, LAST_STAMP = stamp_of(datetime.min), stamp_of(datetime.max - timedelta(seconds=MIGRATIONS - 1))
STAMP_FIX = f"use 14 digits, YYYYMMDDHHMMSS in UTC, from {FIRST_STAMP} to {LAST_STAMP}, e.g. 20250101000000"
_MIME_BY_SUFFIX = {".sql": "application/sql", ".md": "text/markdown", ".mmd": "text/vnd.mermaid",
                   ".ts": "application/typescript", ".toml": "application/toml", ".json": "application/json"}


def file_mime(path: str) -> str:
    return _MIME_BY_SUFFIX.get(Path(path).suffix, "text/plain")


def project_uri(design: str, stamp: str, path: str) -> str:
    return f"blueprint://designs/{design}/project/{stamp}/{path}"


def parse_stamp(stamp: str, field: str = "timestamp"):
    """A migration timestamp YYYYMMDDHHMMSS (UTC), as `supabase migration new` names files."""
    try:
        when = datetime.strptime(stamp, "%Y%m%d%H%M%S") if STAMP_RE.fullmatch(stamp) else None
    except ValueError:
        when = None
    if when is None:
        raise ArtefactNotFound(f"{preview(stamp)} is not a migration timestamp", field=field, fix=STAMP_FIX)
    if stamp > LAST_STAMP:
        raise ArtefactNotFound(f"{stamp} is too late: the last of the {MIGRATIONS} migrations, one second apart, "
                               "would be stamped after the year 9999", field=field, fix=STAMP_FIX)
    return when.replace(tzinfo=timezone.utc)


def project_files(bp: Blueprint, stamp: str) -> dict[str, str]:
    from .tools import migration_files  # render's own list, so the tool and the CLI write the same files

    return migration_files(bp, parse_stamp(stamp))


# A client reads a project file by file, and an artefact too large for one read part by part: each read rendered
# it all again (a project 0.3-0.5 s, a pgTAP file up to seconds). A design id names a template, which does not
# change while the server runs, or a stored blueprint by its content's hash: a rendering kept stays true.
@lru_cache(maxsize=4)
def _project_of(design: str, stamp: str) -> dict[str, str]:
    return project_files(load_design(design), stamp)


@lru_cache(maxsize=16)
def read_design_artefact(design: str, artefact: str, only: str | None = None) -> Artefact:
    """`design_artefact` for a resource read, the last ones kept."""
    return design_artefact(design, artefact, only)


def project_artefact(design: str, stamp: str, path: str) -> Artefact:
    """One file of a design's project, its migrations named from `stamp`."""
    files = _project_of(design, stamp)
    if path not in files:
        raise ArtefactNotFound(f"{preview(path)} is not a file of this project", field="path",
                               fix=choose(path, list(files)))
    return Artefact(project_uri(design, stamp, path), file_mime(path), files[path])


# --- parts: no resource read answers more than one message of a client carries --------------------------

# A part's text, in UTF-8 bytes. The Python SDK client takes at most 1 MiB in one server-sent event (legacy
# streamable HTTP, the SSE transport); the part goes in JSON, whose escaping grows SQL by a few per cent.
PART_BYTES = 600_000
# The artefacts `only` narrows (sections or tables); the others take none.
NARROWED = ("schema.sql", "triggers.sql", "spec.md", "rls.sql")


class ArtefactTooLarge(BlueprintError):
    """A resource read whole would pass PART_BYTES: it is read in parts."""


def split_parts(text: str, limit: int = PART_BYTES) -> list[str]:
    """`text` cut into pieces of at most `limit` UTF-8 bytes, at line ends (a longer line is cut between
    characters); joined in order they are the text."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.splitlines(keepends=True):
        data = line.encode()
        while data:
            if size and size + len(data) > limit:
                out.append("".join(current))
                current, size = [], 0
            end = min(limit - size, len(data))
            while end < len(data) and (data[end] & 0xC0) == 0x80:  # never inside a character
                end -= 1
            current.append(data[:end].decode())
            size += end
            data = data[end:]
    if current or not out:
        out.append("".join(current))
    return out


def part_uri(uri: str, part: int) -> str:
    return f"{uri}{'&' if '?' in uri else '?'}part={part}"


def read_part(art: Artefact, part: str | None) -> str:
    """The text a read answers: whole when it fits one part and none was asked for; else the part asked for.
    A read of a larger text without `part` is refused, naming its parts: never half a file taken for all of it."""
    pieces = split_parts(art.text) if part or len(art.text.encode()) > PART_BYTES else [art.text]
    if not part:
        if len(pieces) == 1:
            return pieces[0]
        raise ArtefactTooLarge(
            f"{art.uri} is {len(art.text.encode()):,} bytes, more than one answer carries ({PART_BYTES:,})",
            field="part", fix=f"read its {len(pieces)} parts in order, {part_uri(art.uri, 1)} to "
                              f"{part_uri(art.uri, len(pieces))}, and join them")
    if not part.isdigit() or not 1 <= int(part) <= len(pieces):
        raise ArtefactNotFound(f"{art.uri} has no part {preview(part)}", field="part",
                               fix=f"use a part from 1 to {len(pieces)}")
    return pieces[int(part) - 1]


def link(art: Artefact, name: str) -> Link:
    return Link(uri=art.uri, name=name, mime_type=art.mime_type, size=len(art.text.encode()))


def unsized_link(design: str, artefact: str, name: str) -> Link:
    return Link(uri=design_uri(design, artefact), name=name, mime_type=DESIGN_ARTEFACTS[artefact][0])
