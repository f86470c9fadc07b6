"""verify: apply migrations, run the attack matrix and the catalogue lints, roll everything back."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..audit.sources import read_text, sql_files_in
from ..model import Blueprint, BlueprintError
from ..sql.design import build_schema
from ..sql.render import rls_sql, schema_sql, triggers_sql
from .catalog import catalog_lints
from .execute import run_plan
from .guard import FAILED_FIX, check_migrations, run_contained
from .introspect import introspect
from .matrix import CASCADES_FIRST, Plan, blueprint_plan, generic_plan
from .pg import EXPOSED_SCHEMAS, PLATFORM_SEARCH_PATH, GrantMode, apply_sql, auth_shim_sql, detect_supabase
from .report import VerifyReport, build_report
from .sequences import hold_sequences, moved
from .target import Engine, open_target
from .values import crowded_refusal

Progress = Callable[[int, int, str], None]
STATEMENT_TIMEOUT = "60s"
# How long a statement of verify's waits for a lock another session holds: while it waits, every other session's
# queries on that table queue behind it (a user's app froze for the whole statement timeout).
LOCK_TIMEOUT = "5s"
VERIFY_LOCK = 0x626C7565  # the transaction-level advisory lock verify holds on a database while it runs ("blue")
# The whole call, migrations and matrix: a verify holds the locks its migrations take until it rolls back.
TIMEOUT_VARIABLE = "BLUEPRINT_VERIFY_TIMEOUT"
DEFAULT_TIMEOUT = 300.0
# Seconds a stopped verify waits for the server to answer its cancel before it cuts the connection.
SEVER_AFTER = 10.0


class Stopped(BlueprintError):
    """verify was cancelled or ran out of time; everything it did was rolled back."""


class Watchdog:
    """Stops a verify that is cancelled (`stop` set, e.g. by the MCP client) or runs past its time: cancels the
    running statement, again every 0.2 s until the call ends, and `check()` raises between statements."""

    def __init__(self, conn: Any, seconds: float, stop: threading.Event | None = None) -> None:
        self.conn, self.seconds, self.stop = conn, seconds, stop
        self.reason: str | None = None
        self.halted = False  # set once verify has stopped: its rollback must not be cancelled too
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="verify-watchdog", daemon=True)

    def __enter__(self) -> "Watchdog":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        end = time.monotonic() + self.seconds
        severed_at: float | None = None
        while not self._done.wait(0.2):
            if self.reason is None and self.stop is not None and self.stop.is_set():
                self.reason = "it was cancelled"
            elif self.reason is None and time.monotonic() > end:
                self.reason = f"it ran longer than {self.seconds:g} s ({TIMEOUT_VARIABLE})"
            if self.reason is None:
                continue
            severed_at = severed_at or time.monotonic() + SEVER_AFTER
            if not self.halted:
                try:
                    self.conn.cancel_safe(timeout=2)
                except Exception:  # noqa: BLE001 - the connection may be between statements or closing
                    pass
            if time.monotonic() > severed_at:
                self._sever()

    def _sever(self) -> None:
        """The server answers neither the statement nor its cancel (a network that stopped carrying packets, a
        stuck pooler or tunnel): shut the connection's socket down, so the call returns instead of waiting for
        ever; the server rolls back when it notices (verify's idle_in_transaction_session_timeout at the latest)."""
        import socket

        try:
            with socket.socket(fileno=os.dup(self.conn.pgconn.socket)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except Exception:  # noqa: BLE001 - the connection is already closed, or has no socket left
            pass

    def check(self) -> None:
        if self.reason is not None:
            self.halted = True
            raise Stopped(f"verify stopped: {self.reason}; everything it ran was rolled back", field="verify",
                          fix=f"verify fewer migrations, or raise {TIMEOUT_VARIABLE} (seconds)")


def verify_timeout() -> float:
    raw = os.environ.get(TIMEOUT_VARIABLE)
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        raise BlueprintError(f"{TIMEOUT_VARIABLE}={raw!r} is not a number of seconds", field=TIMEOUT_VARIABLE,
                             fix="set it to a positive number, e.g. 600") from None
    if not value > 0:
        raise BlueprintError(f"{TIMEOUT_VARIABLE}={raw!r} is not a positive number of seconds", field=TIMEOUT_VARIABLE,
                             fix="set it to a positive number, e.g. 600")
    return value


def _transaction_id(conn, *, assign: bool = True) -> str | None:
    """The current transaction's id; a different one after a migration means it escaped."""
    from psycopg import pq

    if conn.info.transaction_status != pq.TransactionStatus.INTRANS:
        return None
    fn = "pg_current_xact_id" if assign else "pg_current_xact_id_if_assigned"
    row = conn.execute(f"select {fn}()::text").fetchone()
    return row[0] if row else None


def blueprint_migrations(bp: Blueprint) -> list[str]:
    schema = build_schema(bp)
    return [schema_sql(schema, bp.app.slug), rls_sql(schema, bp.app.slug), triggers_sql(schema, bp.app.slug)]


def migrations_from_path(path: str | Path) -> list[str]:
    """A .sql file, or the migrations of a folder or project root, found as `audit` finds them."""
    p = Path(path)
    if p.is_dir():
        files = sql_files_in(p)
        if not files:
            raise BlueprintError(f"{p} holds no .sql files", field="path",
                                 fix="point at a project root, supabase/migrations or a .sql file")
    elif p.is_file():
        files = [p]
    else:
        raise BlueprintError(f"{p} does not exist", field="path", fix="pass an existing .sql file or migrations folder")
    return [read_text(f) for f in files]


def verify(*, source: str, migrations: list[str], blueprint: Blueprint | None = None,
           database_url: str | None = None, allow_remote: bool = False, grant_mode: GrantMode = "legacy",
           include_cases: bool = False, progress: Progress | None = None, engine: Engine | None = None,
           tables: set[str] | None = None, stop: threading.Event | None = None,
           notes: list[str] | None = None, attacks: tuple[str, ...] | None = None) -> VerifyReport:
    """Prove (or disprove) tenant isolation; with a blueprint, every table x command x actor is judged.
    `stop`, once set, ends the call (rolled back); so does running past BLUEPRINT_VERIFY_TIMEOUT seconds.
    `notes`: the caller's, reported after the plan's. `tables` and `attacks` judge only some cases: those of
    these tables, those whose attack name starts with one of these (a test reopening one hole)."""
    import psycopg

    # First wall: refuse, before connecting, whatever could end the transaction or act beyond the database.
    statements = check_migrations(migrations)
    seconds = verify_timeout()
    with open_target(database_url, allow_remote, engine) as target, Watchdog(target.conn, seconds, stop) as dog:
        try:
            return _verify(target, statements, source, migrations, blueprint, grant_mode, include_cases, progress,
                           tables, attacks, dog, notes or [])
        except (psycopg.Error, BlueprintError) as exc:
            if dog.reason is not None and not isinstance(exc, Stopped):
                dog.check()
            if not isinstance(exc, Stopped) and (target.conn.closed or target.conn.broken):
                raise _lost(exc) from None
            raise


def _ms(seconds: float) -> int:
    """Seconds as a PostgreSQL timeout in milliseconds, which it holds in an int (BLUEPRINT_VERIFY_TIMEOUT=1e9)."""
    return min(int(seconds * 1000), 2**31 - 1)


def _lost(exc: BaseException) -> BlueprintError:
    """The connection ended mid-run (the server restarted, an administrator or a pooler ended it, the network
    dropped): a traceback and exit code 1, which reads as a leak, said nothing of what happened to the database."""
    import psycopg

    first: BaseException | None = exc
    while first.__context__ is not None and isinstance(first.__context__, psycopg.Error):
        first = first.__context__
    reason = (str(first).strip().splitlines() or ["the connection closed"])[0]
    return BlueprintError(f"verify lost its connection to the database mid-run ({reason}); the transaction ended "
                          "with it, so PostgreSQL rolled everything back and nothing was committed",
                          field="database_url", fix="run verify again; if the server ends long or idle "
                          "connections (a pooler, a restart), verify a local database or the throwaway default")


def refuse_crowded(bp: Blueprint, plan: Plan) -> None:
    """A blueprint whose exclusion's check bounds cannot give verify's rows a range each is refused, naming the
    bound to widen: past them the rows share a range, and the exclusion's refusals would read as a FAIL of a backend
    that did nothing wrong (session 30 fit: 120 such 23P01 errors)."""
    problem = crowded_refusal(bp, plan.world)
    if problem is not None:
        raise problem


def _judging_settings(conn) -> None:
    """What a verdict relies on, whatever the URL's options, PGOPTIONS or the migrations said: row level security
    applied (with row_security off a query it would filter fails with 42501, counted as denied, so every leak
    passed), triggers firing as on the platform (session_replication_role), and no claim pinned for every actor."""
    conn.execute("set local row_security = on")
    if conn.execute("select current_setting('session_replication_role')").fetchone()[0] != "origin":
        conn.execute("set local session_replication_role = origin")
    # The legacy per-claim settings, which auth.uid() and auth.jwt() read first: each case sets request.jwt.claims
    for claim in ("request.jwt.claim", "request.jwt.claim.sub", "request.jwt.claim.role", "request.jwt.claim.email"):
        conn.execute("select set_config(%s, '', true)", (claim,))


def _verify(target, statements, source, migrations, blueprint, grant_mode, include_cases, progress, tables,
            attacks, dog: Watchdog, notes: list[str]) -> VerifyReport:
    import psycopg

    note = progress or (lambda done, total, message: None)
    conn = target.conn
    # A blueprint verify cannot judge is refused before the database is touched (its plan needs no database).
    planned = blueprint_plan(blueprint, build_schema(blueprint)) if blueprint is not None else None
    if blueprint is not None:
        refuse_crowded(blueprint, planned)
    # Last wall, force_rollback: the target is left exactly as it was, whatever happens below.
    with conn.transaction(force_rollback=True):
        # One verify at a time per database: a second one would wait on the first's test roles and users (its
        # lock_timeout would fail it), so it queues here, for as long as the first may run, instead.
        conn.execute(f"set local statement_timeout = '{_ms(dog.seconds)}'")
        conn.execute("select pg_advisory_xact_lock(%s)", (VERIFY_LOCK,))
        conn.execute(f"set local statement_timeout = '{STATEMENT_TIMEOUT}'")
        conn.execute(f"set local lock_timeout = '{LOCK_TIMEOUT}'")
        # A client gone silent (a dropped network, a killed process) leaves the server waiting inside verify's
        # transaction, holding its locks on the user's tables: the server ends it after the whole call's time.
        conn.execute(f"set local idle_in_transaction_session_timeout = '{_ms(dog.seconds + SEVER_AFTER)}'")
        _judging_settings(conn)
        loose = hold_sequences(conn)  # the rollback then puts every sequence a row moved back where it was
        xid = _transaction_id(conn)
        real = detect_supabase(conn)
        if not real:
            apply_sql(conn, auth_shim_sql(grant_mode))
            conn.execute(f"set local search_path = {PLATFORM_SEARCH_PATH}")
        conn.execute("select set_config('pgrst.db_schemas', %s, true)", (", ".join(EXPOSED_SCHEMAS),))
        note(0, 3, "applying migrations")
        for i, migration in enumerate(statements, 1):
            # second wall: PostgreSQL forbids escapes inside EXECUTE
            run_contained(conn, migration, i, len(statements), check=dog.check)
            if _transaction_id(conn, assign=False) != xid:  # third: proof the transaction is still ours
                raise BlueprintError(f"migration {i} of {len(migrations)} ended verify's transaction",
                                     field="migrations", fix="remove transaction control from the SQL")
        # Our own SQL from here on (lints, fixture rows, cases) quotes values the standard way: a migration that
        # switched standard_conforming_strings off would have a crafted value end its literal early, and fixture
        # rows go as simple queries, where a second statement (a COMMIT) could follow.
        conn.execute("set local standard_conforming_strings = on")
        _judging_settings(conn)
        note(1, 3, "catalogue lints")
        lints = [f for f in catalog_lints(conn) if f.level.value in ("ERROR", "WARN")]
        try:
            conn.execute(CASCADES_FIRST)
        except psycopg.errors.LockNotAvailable as exc:
            table = re.search(r"alter trigger \S+ on (\S+) rename", str(exc.diag.context or ""))
            raise BlueprintError(f"another session holds a lock on {table.group(1) if table else 'a table'}, whose "
                                 f"foreign-key triggers verify orders (it waited {LOCK_TIMEOUT})", field="database_url",
                                 fix=FAILED_FIX["55P03"]) from None
        plan: Plan = planned if planned is not None else generic_plan(introspect(conn))
        plan.only, plan.only_attacks = tables, attacks
        note(2, 3, f"attack matrix: {len(plan.cases)} cases")
        try:
            run_plan(conn, plan, progress, check=dog.check)
        except psycopg.Error as exc:
            dog.check()
            raise BlueprintError(f"the attack matrix could not run: {str(exc).strip()}", field="migrations",
                                 fix="report this with the migrations that caused it") from None
        desc = target.description + ("; real Supabase auth schema" if real else "; Supabase auth shim")
        notes = notes + [f"sequence {name} moved for good: verify did not hold it (the platform's, another role's, "
                         "or in use by another session), and PostgreSQL never rolls a sequence back"
                         for name in moved(conn, loose)]
    return build_report(source, "blueprint" if blueprint else "generic", desc, grant_mode if not real else "as deployed",
                        plan.cases, lints, plan.notes + notes, include_cases, plan.fixture_failures, plan.untested)
