"""The PostgreSQL harness and the Supabase shim, proven on a real cluster."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import errors

from blueprint_mcp.verify.pg import (
    SqlScriptError,
    TempCluster,
    act_as,
    apply_sql,
    auth_shim_sql,
    create_user,
    detect_supabase,
)

pytestmark = pytest.mark.postgres


def test_cluster_runs_postgresql_15(pg_cluster: TempCluster) -> None:
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        (version,) = conn.execute("select version()").fetchone()
    assert version.startswith("PostgreSQL 15.")


def test_cluster_listens_on_loopback_only(pg_cluster: TempCluster) -> None:
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        row = conn.execute(
            "select current_setting('listen_addresses'), current_setting('port')::int"
        ).fetchone()
    assert row == ("127.0.0.1", pg_cluster.port)


def test_new_database_exposes_public_and_graphql_public(make_db) -> None:
    conn = make_db()
    (schemas,) = conn.execute("select current_setting('pgrst.db_schemas')").fetchone()
    assert schemas == "public, graphql_public"


def test_api_roles_have_platform_attributes(make_db) -> None:
    conn = make_db()
    rows = conn.execute(
        "select rolname, rolcanlogin, rolinherit, rolbypassrls from pg_roles"
        " where rolname in ('anon', 'authenticated', 'service_role', 'authenticator')"
        " order by rolname"
    ).fetchall()
    assert rows == [
        ("anon", False, False, False),
        ("authenticated", False, False, False),
        ("authenticator", True, False, False),
        ("service_role", False, False, True),
    ]
    members = conn.execute(
        "select r.rolname from pg_auth_members m join pg_roles r on r.oid = m.roleid"
        " where m.member = 'authenticator'::regrole order by 1"
    ).fetchall()
    assert members == [("anon",), ("authenticated",), ("service_role",)]


def test_auth_uid_returns_sub_of_impersonated_user(make_db) -> None:
    conn = make_db()
    user_id = str(uuid.uuid4())
    with conn.transaction(), conn.cursor() as cur:
        act_as(cur, "authenticated", user_id, extra_claims={"email": "ada@example.com"})
        cur.execute("select auth.uid(), auth.role(), auth.email(), current_user")
        row = cur.fetchone()
    assert row == (uuid.UUID(user_id), "authenticated", "ada@example.com", "authenticated")


def test_auth_jwt_returns_the_whole_claims_object(make_db) -> None:
    conn = make_db()
    user_id = str(uuid.uuid4())
    with conn.transaction(), conn.cursor() as cur:
        act_as(cur, "authenticated", user_id, extra_claims={"app_metadata": {"plan": "pro"}})
        cur.execute("select auth.jwt()")
        (claims,) = cur.fetchone()
    assert claims == {"role": "authenticated", "sub": user_id, "app_metadata": {"plan": "pro"}}


def test_anon_has_no_auth_uid(make_db) -> None:
    conn = make_db()
    with conn.transaction(), conn.cursor() as cur:
        act_as(cur, "anon")
        cur.execute("select auth.uid(), auth.role(), current_user")
        row = cur.fetchone()
    assert row == (None, "anon", "anon")


def test_impersonation_ends_with_the_transaction(make_db) -> None:
    conn = make_db()
    with conn.transaction(), conn.cursor() as cur:
        act_as(cur, "authenticated", str(uuid.uuid4()))
    row = conn.execute("select current_user, auth.uid()").fetchone()
    assert row == ("postgres", None)


def test_act_as_refuses_to_run_outside_a_transaction(make_db) -> None:
    conn = make_db()
    with conn.cursor() as cur, pytest.raises(RuntimeError, match="open transaction"):
        act_as(cur, "authenticated", str(uuid.uuid4()))


def test_act_as_rejects_a_role_name_that_is_not_an_identifier(make_db) -> None:
    conn = make_db()
    with conn.transaction(), conn.cursor() as cur:
        with pytest.raises(ValueError, match="invalid role name"):
            act_as(cur, "postgres; drop table auth.users")


def test_authenticated_cannot_read_auth_users(make_db) -> None:
    conn = make_db()
    with conn.transaction(force_rollback=True), conn.cursor() as cur:
        act_as(cur, "authenticated", str(uuid.uuid4()))
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied for table users"):
            cur.execute("select * from auth.users")


def test_explicit_mode_does_not_grant_new_tables_to_api_roles(make_db) -> None:
    conn = make_db("explicit")
    conn.execute("create table public.notes (id bigint primary key, body text)")
    with conn.transaction(force_rollback=True), conn.cursor() as cur:
        act_as(cur, "authenticated", str(uuid.uuid4()))
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied for table notes"):
            cur.execute("select * from public.notes")


def test_legacy_mode_grants_new_tables_to_api_roles(make_db) -> None:
    conn = make_db("legacy")
    conn.execute("create table public.notes (id bigint primary key, body text)")
    conn.execute("insert into public.notes values (1, 'hello')")
    with conn.transaction(force_rollback=True), conn.cursor() as cur:
        act_as(cur, "authenticated", str(uuid.uuid4()))
        cur.execute("select id, body from public.notes")
        assert cur.fetchall() == [(1, "hello")]
        act_as(cur, "anon")
        cur.execute("delete from public.notes")
        assert cur.rowcount == 1


def test_shim_can_be_applied_again_to_the_same_database(make_db) -> None:
    conn = make_db("explicit")
    apply_sql(conn, auth_shim_sql("explicit"))
    (count,) = conn.execute(
        "select count(*) from pg_proc where pronamespace = 'auth'::regnamespace"
    ).fetchone()
    assert count == 4


def test_detect_supabase_is_false_on_the_shim(make_db) -> None:
    assert detect_supabase(make_db()) is False


def test_detect_supabase_is_true_with_the_real_auth_schema(make_db) -> None:
    conn = make_db()
    conn.execute("create table auth.refresh_tokens (id bigserial primary key)")  # GoTrue's, never the shim's
    assert detect_supabase(conn) is True


def test_detect_supabase_is_false_without_an_auth_schema(pg_cluster: TempCluster) -> None:
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        assert detect_supabase(conn) is False


def test_create_user_stores_email_and_full_name(make_db) -> None:
    conn = make_db()
    with conn.cursor() as cur:
        user_id = create_user(cur, "ada@example.com", full_name="Ada Lovelace")
        cur.execute(
            "select email, raw_user_meta_data, raw_app_meta_data ->> 'provider', is_anonymous"
            " from auth.users where id = %s",
            (user_id,),
        )
        row = cur.fetchone()
    assert row == ("ada@example.com", {"full_name": "Ada Lovelace"}, "email", False)


def test_create_user_keeps_a_given_id(make_db) -> None:
    conn = make_db()
    wanted = str(uuid.uuid4())
    with conn.cursor() as cur:
        assert create_user(cur, "bob@example.com", user_id=wanted) == wanted


def test_apply_sql_reports_line_and_column_of_the_failure(make_db) -> None:
    conn = make_db()
    script = "select 1;\nselect '100%';\n  select nope from nowhere;\n"
    with pytest.raises(SqlScriptError) as caught:
        apply_sql(conn, script)
    assert (caught.value.line, caught.value.column, caught.value.sqlstate) == (3, 20, "42P01")
    assert str(caught.value).startswith('line 3, column 20: relation "nowhere" does not exist')


def test_apply_sql_runs_the_script_as_one_transaction(make_db) -> None:
    conn = make_db()
    with pytest.raises(SqlScriptError):
        apply_sql(conn, "create table public.kept (id int);\nselect 1 / 0;")
    assert conn.execute("select to_regclass('public.kept')").fetchone() == (None,)
