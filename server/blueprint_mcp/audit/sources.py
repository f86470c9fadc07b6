"""Paths -> what to audit: SQL files and migration folders, markdown specs, blueprint files."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..model import BlueprintError

SQL_SUFFIXES = (".sql",)
SPEC_SUFFIXES = (".md", ".markdown")
BLUEPRINT_SUFFIXES = (".yaml", ".yml", ".json")
# Where a project keeps its migrations, most specific first; else the .sql files of the folder itself.
MIGRATION_DIRS = ("supabase/migrations", "migrations")
# What the Supabase CLI applies from supabase/migrations (pkg/migration ListLocalMigrations): files named
# <digits>_<name>.sql, in file-name order; any other file is skipped with a warning, and so is a first
# <timestamp>_init.sql older than 20211209000000 (the schema dump of old CLIs). Evasion round 16 e03.
CLI_MIGRATION = re.compile(r"([0-9]+)_(.*)\.sql")  # (fullmatch: Go's `$` is the end of the name)
CLI_OLD_INIT = re.compile(r"([0-9]{14})_init\.sql")
CLI_OLD_INIT_BEFORE = 20211209000000


@dataclass
class Sources:
    sql: list[tuple[str, str]] = field(default_factory=list)  # (file name, text) in the order to apply
    specs: list[tuple[str, str]] = field(default_factory=list)
    blueprints: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # migration files the Supabase CLI does not apply
    exposed: list[str] | None = None  # the API's schemas, from the project's supabase/config.toml


CONFIG_BYTES = 1_000_000  # a config.toml is a few KB; a larger file is no project's config


def exposed_schemas(folder: Path, within: list[Path] | None = None) -> list[str] | None:
    """`[api] schemas` of the Supabase project a folder belongs to (the folder itself, its supabase/, or the
    project above a supabase/migrations folder): the schemas PostgREST serves. None without a readable one.
    `within` (the client's workspace roots): a config.toml outside them, links followed, is not read (red team 31
    F7: the root's parent, a linked supabase/config.toml)."""
    for candidate in (folder / "supabase" / "config.toml", folder / "config.toml", folder.parent / "config.toml"):
        if not candidate.is_file():
            continue
        if within is not None and not any(candidate.resolve().is_relative_to(root) for root in within):
            continue
        try:
            if candidate.stat().st_size > CONFIG_BYTES:
                return None
            api = tomllib.loads(candidate.read_text(encoding="utf-8", errors="replace")).get("api") or {}
        except (tomllib.TOMLDecodeError, OSError):
            return None
        schemas = api.get("schemas") if isinstance(api, dict) else None
        if isinstance(schemas, list) and all(isinstance(x, str) for x in schemas):
            return list(dict.fromkeys(schemas))
        return None
    return None


def sql_files_in(folder: Path) -> list[Path]:
    """The migrations of a folder in file-name order (the order `supabase db reset` applies them)."""
    return migration_files(folder)[0]


def migration_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """(the .sql files applied, in file-name order; the ones skipped). A Supabase migrations folder (named
    supabase/migrations, with a file the CLI applies) keeps what the CLI applies; any other folder (one none of
    whose names the CLI takes is run by another tool), every .sql file."""
    for sub in MIGRATION_DIRS:
        if (folder / sub).is_dir():
            folder = folder / sub
            break
    files = sorted((p for p in folder.glob("*.sql") if p.is_file()), key=lambda p: (p.name, str(p)))
    if not _is_supabase_migrations(folder):
        return files, []
    first = min((p.name for p in folder.iterdir()), default=None)  # the CLI's old-init test looks at entry 0
    applied = [p for p in files if CLI_MIGRATION.fullmatch(p.name) and not (p.name == first and _old_init(p.name))]
    return (applied, [p for p in files if p not in applied]) if applied else (files, [])


def _is_supabase_migrations(folder: Path) -> bool:
    return any(p.name == "migrations" and p.parent.name == "supabase" for p in (folder.absolute(), folder.resolve()))


def _old_init(name: str) -> bool:
    found = CLI_OLD_INIT.search(name)
    return found is not None and int(found.group(1)) < CLI_OLD_INIT_BEFORE


def read_text(path: Path, max_bytes: int | None = None) -> str:
    """The file as text; bytes that are not UTF-8 become U+FFFD instead of an error."""
    if max_bytes is not None and path.is_file() and path.stat().st_size > max_bytes:
        raise BlueprintError(f"{path} is too large: {path.stat().st_size:,} bytes (at most {max_bytes:,})",
                             field="paths", fix="audit a smaller file or a folder of migrations")
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise BlueprintError(f"cannot read {path} ({exc.strerror})", field="paths",
                             fix="pass a readable file") from None


def collect(paths: list[Path], max_bytes: int | None = None, within: list[Path] | None = None) -> Sources:
    """Sort existing paths by kind; a folder contributes its migrations. Errors name the path. With `within`
    (the client's workspace roots), a file a folder holds must also be inside them once links are followed."""
    out = Sources()
    for path in paths:
        if path.is_dir():
            files, skipped = migration_files(path)
            out.skipped += [str(p) for p in skipped]
            if not files:
                raise BlueprintError(f"{path} holds no .sql files" + (
                    f" the Supabase CLI applies (it skips {', '.join(p.name for p in skipped)})" if skipped else ""),
                    field="paths", fix="pass a folder of migrations (e.g. supabase/migrations) or .sql files")
            for f in files if within is not None else []:
                if not any(f.resolve().is_relative_to(root) for root in within):
                    raise BlueprintError(f"{f} links outside the workspace roots", field="paths",
                                         fix="audit a folder whose files are inside the workspace")
            out.sql += [(str(p), read_text(p, max_bytes)) for p in files]
            found = exposed_schemas(path, within)
            if found is not None:
                out.exposed = list(dict.fromkeys([*(out.exposed or []), *found]))
        elif not path.is_file():
            if path.exists():  # a pipe, socket or device: reading it could block or never end
                raise BlueprintError(f"{path} is not a regular file", field="paths",
                                     fix="pass a regular file or a folder")
            raise BlueprintError(f"{path} does not exist", field="paths", fix="pass an existing file or folder")
        elif path.suffix.lower() in SQL_SUFFIXES:
            out.sql.append((str(path), read_text(path, max_bytes)))
        elif path.suffix.lower() in SPEC_SUFFIXES:
            out.specs.append((str(path), read_text(path, max_bytes)))
        elif path.suffix.lower() in BLUEPRINT_SUFFIXES:
            out.blueprints.append(path)
        else:
            raise BlueprintError(f"{path} is neither SQL, a markdown spec nor a blueprint", field="paths",
                                 fix="pass .sql files, migration folders, .md specs or .yaml/.json blueprints")
    return out
