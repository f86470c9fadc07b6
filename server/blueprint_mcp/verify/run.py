"""verify: apply migrations, run the attack matrix and the catalogue lints, roll everything back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..model import Blueprint, BlueprintError
from ..sql.design import build_schema
from ..sql.render import rls_sql, schema_sql, triggers_sql
from .catalog import catalog_lints
from .execute import run_plan
from .introspect import introspect
from .matrix import Plan, blueprint_plan, generic_plan
from .pg import EXPOSED_SCHEMAS, GrantMode, apply_sql, auth_shim_sql, detect_supabase
from .report import VerifyReport, build_report
from .target import open_target

Progress = Callable[[int, int, str], None]
STATEMENT_TIMEOUT = "60s"


def blueprint_migrations(bp: Blueprint) -> list[str]:
    schema = build_schema(bp)
    return [schema_sql(schema, bp.app.slug), rls_sql(schema, bp.app.slug), triggers_sql(schema, bp.app.slug)]


def migrations_from_path(path: str | Path) -> list[str]:
    """A .sql file, or every .sql file of a folder in file-name order (as the Supabase CLI applies them)."""
    p = Path(path)
    files = sorted(p.glob("*.sql")) if p.is_dir() else [p]
    if p.is_dir() and not files:
        raise BlueprintError(f"{p} holds no .sql files", field="path", fix="point at supabase/migrations")
    try:
        return [f.read_text(encoding="utf-8") for f in files]
    except OSError as exc:
        raise BlueprintError(f"cannot read {exc.filename} ({exc.strerror})", field="path",
                             fix="pass an existing .sql file or migrations folder") from None


def verify(*, source: str, migrations: list[str], blueprint: Blueprint | None = None,
           database_url: str | None = None, allow_remote: bool = False, grant_mode: GrantMode = "legacy",
           include_cases: bool = False, progress: Progress | None = None) -> VerifyReport:
    """Prove (or disprove) tenant isolation; with a blueprint, every table x command x actor is judged."""
    import psycopg

    note = progress or (lambda done, total, message: None)
    with open_target(database_url, allow_remote) as target:
        conn = target.conn
        # force_rollback: the target is left exactly as it was, whatever happens below.
        with conn.transaction(force_rollback=True):
            conn.execute(f"set local statement_timeout = '{STATEMENT_TIMEOUT}'")
            real = detect_supabase(conn)
            if not real:
                apply_sql(conn, auth_shim_sql(grant_mode))
            conn.execute("select set_config('pgrst.db_schemas', %s, true)", (", ".join(EXPOSED_SCHEMAS),))
            note(0, 3, "applying migrations")
            for i, sql in enumerate(migrations):
                try:
                    apply_sql(conn, sql)
                except BlueprintError as exc:
                    raise BlueprintError(f"migration {i + 1} of {len(migrations)} failed: {exc}", field="migrations",
                                         fix="fix the SQL (or verify against an empty database)") from None
            note(1, 3, "catalogue lints")
            lints = [f for f in catalog_lints(conn) if f.level.value in ("ERROR", "WARN")]
            plan: Plan = blueprint_plan(blueprint, build_schema(blueprint)) if blueprint else generic_plan(introspect(conn))
            note(2, 3, f"attack matrix: {len(plan.cases)} cases")
            try:
                run_plan(conn, plan, progress)
            except psycopg.Error as exc:
                raise BlueprintError(f"the attack matrix could not run: {str(exc).strip()}", field="migrations",
                                     fix="report this with the migrations that caused it") from None
            desc = target.description + ("; real Supabase auth schema" if real else "; Supabase auth shim")
    return build_report(source, "blueprint" if blueprint else "generic", desc, grant_mode if not real else "as deployed",
                        plan.cases, lints, plan.notes, include_cases, plan.fixture_failures)
