"""verify: apply migrations, run the attack matrix and the catalogue lints, roll everything back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..audit.sources import read_text, sql_files_in
from ..model import Blueprint, BlueprintError
from ..sql.design import build_schema
from ..sql.render import rls_sql, schema_sql, triggers_sql
from .catalog import catalog_lints
from .execute import run_plan
from .guard import check_migrations, run_contained
from .introspect import introspect
from .matrix import Plan, blueprint_plan, generic_plan
from .pg import EXPOSED_SCHEMAS, GrantMode, apply_sql, auth_shim_sql, detect_supabase
from .report import VerifyReport, build_report
from .target import Engine, open_target

Progress = Callable[[int, int, str], None]
STATEMENT_TIMEOUT = "60s"


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
           tables: set[str] | None = None) -> VerifyReport:
    """Prove (or disprove) tenant isolation; with a blueprint, every table x command x actor is judged."""
    import psycopg

    # First wall: refuse, before connecting, whatever could end the transaction or act beyond the database.
    statements = check_migrations(migrations)
    note = progress or (lambda done, total, message: None)
    with open_target(database_url, allow_remote, engine) as target:
        conn = target.conn
        # Last wall, force_rollback: the target is left exactly as it was, whatever happens below.
        with conn.transaction(force_rollback=True):
            conn.execute(f"set local statement_timeout = '{STATEMENT_TIMEOUT}'")
            xid = _transaction_id(conn)
            real = detect_supabase(conn)
            if not real:
                apply_sql(conn, auth_shim_sql(grant_mode))
            conn.execute("select set_config('pgrst.db_schemas', %s, true)", (", ".join(EXPOSED_SCHEMAS),))
            note(0, 3, "applying migrations")
            for i, migration in enumerate(statements, 1):
                run_contained(conn, migration, i, len(statements))  # second wall: PostgreSQL forbids escapes inside EXECUTE
                if _transaction_id(conn, assign=False) != xid:  # third: proof the transaction is still ours
                    raise BlueprintError(f"migration {i} of {len(migrations)} ended verify's transaction",
                                         field="migrations", fix="remove transaction control from the SQL")
            note(1, 3, "catalogue lints")
            lints = [f for f in catalog_lints(conn) if f.level.value in ("ERROR", "WARN")]
            plan: Plan = blueprint_plan(blueprint, build_schema(blueprint)) if blueprint else generic_plan(introspect(conn))
            plan.only = tables
            note(2, 3, f"attack matrix: {len(plan.cases)} cases")
            try:
                run_plan(conn, plan, progress)
            except psycopg.Error as exc:
                raise BlueprintError(f"the attack matrix could not run: {str(exc).strip()}", field="migrations",
                                     fix="report this with the migrations that caused it") from None
            desc = target.description + ("; real Supabase auth schema" if real else "; Supabase auth shim")
    return build_report(source, "blueprint" if blueprint else "generic", desc, grant_mode if not real else "as deployed",
                        plan.cases, lints, plan.notes, include_cases, plan.fixture_failures)
