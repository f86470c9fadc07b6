"""Test helpers over a migrated database: act as a user, expect a denial, seed organisations."""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
import pytest

from blueprint_mcp.model.blueprint import Blueprint
from blueprint_mcp.templates import load_template
from blueprint_mcp.tools import migrations
from blueprint_mcp.verify.pg import act_as, apply_sql, create_user

FIXED_TS = "2025-01-01T00:00:00+00:00"


def migrate(conn: psycopg.Connection, template: str | Blueprint) -> dict[str, str]:
    """Apply a template's (or a blueprint's) migrations in file-name order, as `supabase db reset` would."""
    files = _template_migrations(template) if isinstance(template, str) else _migrations(template)
    for path in sorted(files):
        apply_sql(conn, files[path])
    return dict(files)


def _migrations(bp: Blueprint) -> dict[str, str]:
    return migrations(bp, datetime.fromisoformat(FIXED_TS))


@functools.cache
def _template_migrations(name: str) -> dict[str, str]:
    """A template's migrations, generated once per test process: many tests start from the same template."""
    return _migrations(load_template(name))


def run_as(conn: psycopg.Connection, role: str, user: str | None, sql: str, params: Any = None) -> list[tuple]:
    """Run one statement as an API role (and user) in its own rolled-back-on-error transaction."""
    with conn.transaction():
        cur = conn.cursor()
        act_as(cur, role, user)
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else [("rowcount", cur.rowcount)]


def denied(conn: psycopg.Connection, role: str, user: str | None, sql: str, params: Any = None) -> str:
    """Assert the statement fails; return the SQLSTATE (42501 = RLS/privilege, 23503 = FK...)."""
    with pytest.raises(psycopg.Error) as info:
        run_as(conn, role, user, sql, params)
    return info.value.sqlstate


def affected(conn: psycopg.Connection, role: str, user: str | None, sql: str, params: Any = None) -> int:
    rows = run_as(conn, role, user, sql, params)
    return rows[0][1] if rows and rows[0][0] == "rowcount" else len(rows)


@dataclass
class World:
    """Two organisations: org1 with one user per role, org2 with its own owner; plus an outsider."""

    conn: psycopg.Connection
    users: dict[str, str] = field(default_factory=dict)
    org1: str = ""
    org2: str = ""

    def as_(self, who: str, sql: str, params: Any = None) -> list[tuple]:
        return run_as(self.conn, "authenticated", self.users[who], sql, params)

    def denied(self, who: str, sql: str, params: Any = None) -> str:
        return denied(self.conn, "authenticated", self.users[who], sql, params)

    def count(self, who: str, sql: str, params: Any = None) -> int:
        return affected(self.conn, "authenticated", self.users[who], sql, params)

    def su(self, sql: str, params: Any = None) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []


def build_world(conn: psycopg.Connection, roles: list[str]) -> World:
    """Users sign up (the trigger makes profiles and workspaces); org1 is created by its owner."""
    w = World(conn)
    with conn.cursor() as cur:
        for who in ["owner", *[r for r in roles if r != "owner"], "owner2", "outsider"]:
            w.users[who] = create_user(cur, f"{who}@example.com", full_name=who.title())
    w.org1 = w.as_("owner", "insert into public.organizations (name, slug) values ('Org One', 'org-one') returning id")[0][0]
    w.org2 = w.as_("owner2", "insert into public.organizations (name, slug) values ('Org Two', 'org-two') returning id")[0][0]
    for role in roles:
        if role != "owner":
            w.su("insert into public.organization_members (organization_id, user_id, role) values (%s, %s, %s)",
                 (w.org1, w.users[role], role))
    return w




def require_pg_prove() -> str:
    """pg_prove's path; without it, fail under CI and skip elsewhere, saying what to install (tests/deps.py)."""
    from deps import PGTAP, has_pgtap, in_ci, plan

    if has_pgtap():
        return shutil.which("pg_prove")  # type: ignore[return-value]
    line = plan([PGTAP], root=False, apt=False, ci=in_ci()).lines[0]
    if in_ci():
        pytest.fail(line)
    pytest.skip(line)
