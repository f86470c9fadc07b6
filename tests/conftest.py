"""Shared fixtures: one throwaway PostgreSQL per session, a fresh shimmed database per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest

from blueprint_mcp.verify.pg import (
    GRANT_MODES,
    PostgresUnavailable,
    TempCluster,
    apply_sql,
    auth_shim_sql,
    expose_schemas_sql,
)


def _unavailable(reason: str) -> NoReturn:
    """Fail in CI, where PostgreSQL is a requirement; skip on a laptop without it."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[TempCluster]:
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        _unavailable(f"psycopg is not installed ({exc})")
    try:
        cluster = TempCluster().start()
    except PostgresUnavailable as exc:
        _unavailable(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def shim_template(pg_cluster: TempCluster) -> Callable[[str], str]:
    """Name of a template database with the shim for a grant mode, built once per session."""
    import psycopg

    built: dict[str, str] = {}

    def template_for(grant_mode: str) -> str:
        if grant_mode not in GRANT_MODES:
            raise ValueError(f"grant_mode must be one of {GRANT_MODES}, not {grant_mode!r}")
        if grant_mode not in built:
            name = f"shim_{grant_mode}"
            pg_cluster.create_database(name)
            with psycopg.connect(pg_cluster.dsn(name), autocommit=True) as conn:
                apply_sql(conn, auth_shim_sql(grant_mode))  # type: ignore[arg-type]
            built[grant_mode] = name
        return built[grant_mode]

    return template_for


@pytest.fixture
def make_db(shim_template: Callable[[str], str], copied_db: Callable[[str], Any]) -> Callable[..., Any]:
    """Factory: make_db(grant_mode="explicit") -> autocommit connection to a fresh shimmed db."""
    return lambda grant_mode="explicit": copied_db(shim_template(grant_mode))


@pytest.fixture(scope="session")
def built_template(pg_cluster: TempCluster, shim_template: Callable[[str], str]) -> Iterator[Callable[..., Any]]:
    """Factory: built_template(key, grant_mode, build) -> (name, what build returned): a shimmed database that
    `build(conn)` fills once per session (migrations, a world of users and organisations), for `copied_db` to copy
    per test instead of building it again."""
    import psycopg

    made: dict[tuple[str, str], tuple[str, Any]] = {}

    def template_for(key: str, grant_mode: str, build: Callable[[Any], Any]) -> tuple[str, Any]:
        if (key, grant_mode) not in made:
            name = f"built_{uuid.uuid4().hex[:16]}"
            pg_cluster.create_database(name, template=shim_template(grant_mode))
            with psycopg.connect(pg_cluster.dsn(name), autocommit=True) as conn:
                made[key, grant_mode] = (name, build(conn))
        return made[key, grant_mode]

    yield template_for
    for name, _ in made.values():
        pg_cluster.drop_database(name)


@pytest.fixture
def copied_db(pg_cluster: TempCluster) -> Iterator[Callable[[str], Any]]:
    """Factory: copied_db(template) -> autocommit connection to a fresh copy of a template database (the shim's,
    or a `built_template`), dropped after the test."""
    import psycopg

    made: list[tuple[str, Any]] = []

    def copy(template: str) -> Any:
        name = f"test_{uuid.uuid4().hex[:16]}"
        pg_cluster.create_database(name, template=template)
        pg_cluster.execute(expose_schemas_sql(name))
        conn = psycopg.connect(pg_cluster.dsn(name), autocommit=True)
        made.append((name, conn))
        return conn

    yield copy
    for name, conn in made:
        conn.close()
        pg_cluster.drop_database(name)


# The longest tests start first: `make test` runs two workers, and a minute-long test collected last would keep
# one of them busy after the other has run out of work (tests/test_mutation.py takes about 50 s a test).
LONG_FIRST = ("test_mutation.py", "test_wheel.py", "test_edge_functions.py", "test_properties.py", "test_budget.py")


@pytest.hookimpl(trylast=True)  # after pytest-xdist's own hook, which marks each grouped test's id
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: LONG_FIRST.index(item.path.name) if item.path.name in LONG_FIRST else len(LONG_FIRST))
    # `--dist loadgroup` keeps an `xdist_group` on one worker (the wheel is built, Deno's cache filled, once)
    # by suffixing the test ids; a pytest whose ids the suffix does not reach makes it a silent no-op.
    if config.getoption("loadgroup", default=False):
        lost = [item.nodeid for item in items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
        if lost:  # (raised here, a worker's error would reach the terminal as xdist's bare INTERNALERROR)
            config.stash[GROUPING] = (f"--dist loadgroup did not group {lost[0]} (and {len(lost) - 1} more): this "
                                      "pytest-xdist does not work with this pytest; install what pyproject.toml pins")


GROUPING = pytest.StashKey[str]()


@pytest.fixture(autouse=True, scope="session")
def _grouping_works(request: pytest.FixtureRequest) -> None:
    if GROUPING in request.config.stash:
        pytest.fail(request.config.stash[GROUPING])


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="Rewrite tests/golden from the current output (review the diff before committing).")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(scope="session")
def js_tools(tmp_path_factory: pytest.TempPathFactory):
    """tests/js installed from the npm registry once per session (jstools.py: skip without npm, fail in CI)."""
    from jstools import install

    return install(tmp_path_factory.mktemp("js"))


@pytest.fixture(scope="session")
def deno_npm(js_tools, tmp_path_factory: pytest.TempPathFactory):
    """js_tools with supabase-js in Deno's cache: what the generated edge functions import."""
    from jstools import cache_supabase_js

    return cache_supabase_js(js_tools, tmp_path_factory.mktemp("deno-warm"))


@pytest.fixture
def empty_db_url(pg_cluster, request):
    """A fresh database with nothing in it: verify installs the shim itself, inside its transaction."""
    name = f"verify_{request.node.name[:40].lower().replace('[', '_').replace(']', '').replace('-', '_')}"
    pg_cluster.create_database(name)
    yield f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/{name}"
    pg_cluster.drop_database(name)
