"""A throwaway PostgreSQL cluster and the shim that makes vanilla PostgreSQL look like Supabase."""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..model.errors import BlueprintError
from ..sql.ident import ident, literal

if TYPE_CHECKING:
    import psycopg

GrantMode = Literal["legacy", "explicit"]
GRANT_MODES: tuple[GrantMode, ...] = ("legacy", "explicit")
EXPOSED_SCHEMAS = ("public", "graphql_public")
ROLE_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
OS_USER = "postgres"  # initdb and postgres refuse to run as root; as root we run them as this user
SUPERUSER = "postgres"
START_ATTEMPTS = 5  # another process may take the free port between our probe and the bind

SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    # An autovacuum worker connected to a template makes CREATE DATABASE ... TEMPLATE fail with
    # "source database is being accessed by other users".
    "autovacuum": "off",
}


class PostgresUnavailable(BlueprintError, RuntimeError):
    """PostgreSQL cannot be found or started on this machine; the message says why."""


class SqlScriptError(BlueprintError, RuntimeError):
    """A SQL script failed: PostgreSQL's message, its SQLSTATE and the line/column when known."""

    def __init__(
        self, message: str, *, sqlstate: str | None, line: int | None, column: int | None,
        fix: str | None = None,
    ) -> None:
        self.sqlstate = sqlstate
        self.line = line
        self.column = column
        where = f"line {line}, column {column}" if line is not None else None
        super().__init__(message, field=where, fix=fix)


# --- the cluster -------------------------------------------------------------------------------


def find_bindir() -> Path:
    """The server binaries: `pg_config --bindir`, else the newest /usr/lib/postgresql, else PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    debian = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")]
    candidates += sorted(debian, key=_version_key, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for bindir in candidates:
        if all(os.access(bindir / exe, os.X_OK) for exe in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found",
        fix="install the server (apt-get install postgresql-15) or put its bin directory on PATH",
    )


def _version_key(bindir: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", bindir.parent.name)) or (0,)


def run_as_prefix() -> list[str]:
    """As root, the command prefix that runs a server binary as the `postgres` user; else nothing."""
    if os.geteuid() != 0:
        return []
    import pwd

    # An editor or cron may start the server with a PATH without the sbin folders, where util-linux keeps it.
    runuser = shutil.which("runuser") or shutil.which("runuser", path=os.pathsep.join(("/usr/sbin", "/sbin")))
    if runuser is None:
        raise PostgresUnavailable(
            "running as root and `runuser` is missing", fix="run as a normal user"
        )
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root and there is no '{OS_USER}' user to run the server as",
            fix=f"create it (useradd --system {OS_USER}) or run as a normal user",
        ) from None
    return [runuser, "-u", OS_USER, "--"]


def _give_to_os_user(*paths: Path) -> None:
    import pwd

    entry = pwd.getpwnam(OS_USER)
    for path in paths:
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _run(args: list[str], *, cwd: Path, what: str) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            args, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PostgresUnavailable(f"{what} could not run: {exc}") from exc
    if done.returncode != 0:
        output = done.stderr.strip() or done.stdout.strip() or "no output"
        raise PostgresUnavailable(f"{what} failed (exit {done.returncode}): {output}")
    return done


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _conninfo_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _teardown(prefix: list[str], bindir: Path, root: Path) -> None:
    data = root / "data"
    if (data / "postmaster.pid").exists():
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            cwd=root, capture_output=True, check=False, timeout=60,
        )
    shutil.rmtree(root, ignore_errors=True)


class TempCluster:
    """A private PostgreSQL cluster on a free 127.0.0.1 port, deleted by stop()."""

    def __init__(self, bindir: str | Path | None = None) -> None:
        self.bindir = Path(bindir) if bindir is not None else None
        self.root: Path | None = None
        self.port: int | None = None
        self._admin: psycopg.Connection[Any] | None = None
        self._finalizer: weakref.finalize | None = None

    def __enter__(self) -> TempCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> TempCluster:
        """initdb a fresh cluster in a temp dir and start it; PostgresUnavailable if impossible."""
        if self.root is not None:
            raise RuntimeError("cluster already started")
        bindir = self.bindir or find_bindir()
        prefix = run_as_prefix()
        root = Path(tempfile.mkdtemp(prefix="blueprint-pg-"))
        self.root, self.bindir = root, bindir
        # Also runs at interpreter exit, so a crashed test session leaves no server behind.
        self._finalizer = weakref.finalize(self, _teardown, prefix, bindir, root)
        try:
            (root / "sock").mkdir()
            if prefix:
                _give_to_os_user(root, root / "sock")
            _run(
                [*prefix, str(bindir / "initdb"), "--no-sync", "-A", "trust", "-U", SUPERUSER,
                 "-E", "UTF8", "--locale=C", "-D", str(root / "data")],
                cwd=root, what="initdb",
            )
            self.port = self._start_server(prefix, bindir, root)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_server(self, prefix: list[str], bindir: Path, root: Path) -> int:
        log = root / "postgres.log"
        for _ in range(START_ATTEMPTS):
            port = _free_port()
            settings = {**SERVER_SETTINGS, "port": str(port)}
            options = ["-k", str(root / "sock")]
            for name, value in settings.items():
                options += ["-c", f"{name}={value}"]
            args = [*prefix, str(bindir / "pg_ctl"), "-D", str(root / "data"), "-l", str(log),
                    "-w", "-t", "30", "-o", shlex.join(options), "start"]
            try:
                _run(args, cwd=root, what="pg_ctl start")
                return port
            except PostgresUnavailable as exc:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                if "Address already in use" not in tail:
                    raise PostgresUnavailable(f"{exc}\n{tail.strip()}") from exc
        raise PostgresUnavailable(f"no free port after {START_ATTEMPTS} attempts")

    def stop(self) -> None:
        """Stop the server immediately (no checkpoint: the data is thrown away) and delete it."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._finalizer is not None:
            self._finalizer()
        self.root = self.port = None

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq conninfo string for `dbname` as the superuser."""
        if self.port is None:
            raise RuntimeError("cluster is not running")
        params = {"host": "127.0.0.1", "port": str(self.port), "user": SUPERUSER, "dbname": dbname}
        return " ".join(f"{key}={_conninfo_value(value)}" for key, value in params.items())

    def execute(self, sql: str) -> None:
        """Run one statement on the maintenance database (for cluster-wide DDL)."""
        if self._admin is None:
            import psycopg

            self._admin = psycopg.connect(self.dsn(), autocommit=True)
        self._admin.execute(sql)

    def create_database(self, name: str, template: str | None = None) -> None:
        """CREATE DATABASE, optionally as a copy of `template` (nobody may be connected to it)."""
        statement = "create database " + ident(name)
        if template is not None:
            statement += " template " + ident(template)
        self.execute(statement)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE, disconnecting whoever is still connected."""
        self.execute(f"drop database if exists {ident(name)} with (force)")


# --- the Supabase shim -------------------------------------------------------------------------

_SHIM_ROLES = (
    ("anon", "nologin noinherit"),
    ("authenticated", "nologin noinherit"),
    ("service_role", "nologin noinherit bypassrls"),
    ("authenticator", "login noinherit"),
)

_SHIM_OBJECTS = """
grant anon, authenticated, service_role to authenticator;

create schema if not exists auth;
create schema if not exists extensions;
-- Every Supabase project starts with these in `extensions` (on the search_path): migrations call
-- gen_random_bytes(), crypt() or uuid_generate_v4() unqualified. Made only where the server ships them.
do $$
declare
  wanted text;
begin
  foreach wanted in array array['pgcrypto', 'uuid-ossp'] loop
    if exists (select from pg_catalog.pg_available_extensions e where e.name = wanted) then
      execute format('create extension if not exists %I with schema extensions', wanted);
    end if;
  end loop;
end $$;

-- The columns of GoTrue's auth.users that signups, seeds and triggers touch (the real table has more).
create table if not exists auth.users (
  instance_id uuid,
  id uuid primary key,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  confirmation_token varchar(255),
  recovery_token varchar(255),
  email_change_token_new varchar(255),
  email_change varchar(255),
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  created_at timestamptz default now(),
  updated_at timestamptz,
  deleted_at timestamptz,
  is_anonymous boolean not null default false
);

-- A user signs in through an identity: GoTrue's email provider needs one row per user.
create table if not exists auth.identities (
  id uuid primary key default gen_random_uuid(),
  provider_id text not null,
  user_id uuid not null references auth.users (id) on delete cascade,
  identity_data jsonb not null,
  provider text not null,
  last_sign_in_at timestamptz,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  unique (provider_id, provider)
);

create or replace function auth.uid() returns uuid language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.email() returns text language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

create or replace function auth.jwt() returns jsonb language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

-- Storage as the platform has it: buckets, objects with RLS on, the API roles granted.
create schema if not exists storage;
create table if not exists storage.buckets (
  id text primary key,
  name text not null,
  owner uuid,
  owner_id text,
  public boolean default false,
  file_size_limit bigint,
  allowed_mime_types text[],
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);
create table if not exists storage.objects (
  id uuid primary key default gen_random_uuid(),
  bucket_id text references storage.buckets (id),
  name text,
  owner uuid,
  owner_id text,
  metadata jsonb,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  last_accessed_at timestamptz default now(),
  unique (bucket_id, name)
);
alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;
grant usage on schema storage to anon, authenticated, service_role;
grant all on storage.buckets, storage.objects to anon, authenticated, service_role;

grant usage on schema public, auth, extensions to anon, authenticated, service_role;
grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
  to anon, authenticated, service_role;
"""

_DEFAULT_PRIVILEGE_OBJECTS = ("tables", "functions", "sequences")


def _ensure_role_sql(name: str, options: str) -> str:
    # Roles are cluster-wide while the shim runs once per database: create only when missing,
    # then enforce the attributes in case the role pre-existed with others.
    return (
        "do $$\nbegin\n"
        f"  if not exists (select from pg_catalog.pg_roles where rolname = {literal(name)}) then\n"
        f"    create role {ident(name)} {options};\n"
        "  end if;\nend\n$$;\n"
        f"alter role {ident(name)} {options};\n"
    )


def _default_privileges_sql(grant_mode: GrantMode) -> str:
    roles = "anon, authenticated, service_role"
    action = ("grant all on {} to " if grant_mode == "legacy" else "revoke all on {} from ") + roles
    prefix = f"alter default privileges for role {ident(SUPERUSER)} in schema public "
    return "".join(prefix + action.format(kind) + ";\n" for kind in _DEFAULT_PRIVILEGE_OBJECTS)


# The search_path a Supabase project's migrations run with (the postgres role's), and PostgREST's requests.
PLATFORM_SEARCH_PATH = '"$user", public, extensions'


def auth_shim_sql(grant_mode: GrantMode) -> str:
    """SQL giving a vanilla database Supabase's API roles, auth schema, auth.*() and grants."""
    if grant_mode not in GRANT_MODES:
        raise ValueError(f"grant_mode must be one of {GRANT_MODES}, not {grant_mode!r}")
    roles = "".join(_ensure_role_sql(name, options) for name, options in _SHIM_ROLES)
    return roles + _SHIM_OBJECTS + _default_privileges_sql(grant_mode)


def expose_schemas_sql(dbname: str, schemas: tuple[str, ...] = EXPOSED_SCHEMAS) -> str:
    """Set PostgREST's `pgrst.db_schemas` on a database (not copied by CREATE DATABASE TEMPLATE)."""
    value = literal(", ".join(schemas))
    return f"alter database {ident(dbname)} set pgrst.db_schemas = {value};\n"


def detect_supabase(conn: psycopg.Connection[Any]) -> bool:
    """True when the database has Supabase's real auth schema, so the shim must not be applied. The shim has
    auth.users and auth.identities too; only GoTrue's own bookkeeping (its migrations, refresh tokens) tells."""
    row = conn.execute(
        "select to_regclass('auth.users') is not null and ("
        "to_regclass('auth.schema_migrations') is not null"
        " or to_regclass('auth.refresh_tokens') is not null)"
    ).fetchone()
    return bool(row and row[0])


# --- helpers for tests and the attack matrix ---------------------------------------------------


def act_as(
    cur: psycopg.Cursor[Any], role: str, user_id: str | uuid.UUID | None = None,
    extra_claims: dict[str, Any] | None = None,
) -> None:
    """Impersonate a PostgREST request for the rest of the current transaction."""
    if not ROLE_RE.match(role):
        raise ValueError(f"invalid role name {role!r}")
    from psycopg import pq

    conn = cur.connection
    if conn.autocommit and conn.info.transaction_status != pq.TransactionStatus.INTRANS:
        # Outside a transaction SET LOCAL only warns and set_config(..., true) is lost at once.
        raise RuntimeError("act_as needs an open transaction: use `with conn.transaction():`")
    claims: dict[str, Any] = {"role": role}
    if user_id is not None:
        claims["sub"] = str(user_id)
    claims.update(extra_claims or {})  # last, so a test can also forge `sub` or `role`
    cur.execute("set local role " + ident(role))
    cur.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))


def create_user(
    cur: psycopg.Cursor[Any], email: str, user_id: str | uuid.UUID | None = None,
    full_name: str | None = None,
) -> str:
    """Insert a user into auth.users as GoTrue would at email signup; returns its id."""
    from psycopg.types.json import Jsonb

    user_metadata = {"full_name": full_name} if full_name is not None else {}
    cur.execute(
        "insert into auth.users (id, email, raw_app_meta_data, raw_user_meta_data)"
        " values (%s, %s, %s, %s) returning id",
        (
            str(user_id or uuid.uuid4()), email,
            Jsonb({"provider": "email", "providers": ["email"]}), Jsonb(user_metadata),
        ),
    )
    row = cur.fetchone()
    assert row is not None  # INSERT ... RETURNING of one row
    return str(row[0])


def apply_sql(conn: psycopg.Connection[Any], sql: str) -> None:
    """Run a whole multi-statement script; failures become SqlScriptError with line and column."""
    import psycopg

    try:
        # Without parameters psycopg uses the simple query protocol, which accepts many
        # statements (run as one implicit transaction when the connection is in autocommit).
        conn.execute(sql)  # type: ignore[arg-type]
    except psycopg.Error as exc:
        raise _script_error(exc, sql) from exc


def _script_error(exc: Any, sql: str) -> SqlScriptError:
    diag = exc.diag
    message = diag.message_primary or str(exc).strip()
    line = column = None
    if diag.statement_position:
        # The server reports a 1-based character (not byte) offset into the whole script.
        offset = int(diag.statement_position) - 1
        before = sql[:offset]
        line = before.count("\n") + 1
        column = offset - (before.rfind("\n") + 1) + 1
        source = sql.splitlines()[line - 1].strip()[:120]
        message += f" near `{source}`"
    if diag.sqlstate:
        message += f" [SQLSTATE {diag.sqlstate}]"
    for label, value in (("detail", diag.message_detail), ("context", diag.context),
                         ("internal query", diag.internal_query)):
        if value:
            message += f"; {label}: {value.strip()}"
    return SqlScriptError(message, sqlstate=diag.sqlstate, line=line, column=column,
                          fix=diag.message_hint)
