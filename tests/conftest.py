"""Shared fixtures: real databases (SQLite always, Postgres when configured) and a live server.

Every test that asks for ``database_url`` runs twice, on SQLite and on Postgres. The
Postgres run uses the server named by ``BERTH_TEST_DATABASE_URL`` and is skipped, with
that reason, when the variable is unset. Each test gets a fresh database cloned from
one migrated once per session: a file copy on SQLite, ``CREATE DATABASE … TEMPLATE``
on Postgres, so no test pays for migrations.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import shutil
import uuid
from collections.abc import AsyncGenerator, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from berth.api.server import running_server
from berth.clock import FakeClock
from berth.db.engine import Database, create_engine
from berth.db.migrate import migrate
from berth.provisioner.backends.local import LocalBackend
from berth.services.runtime import Runtime
from berth.settings import Settings

PG_ENV = "BERTH_TEST_DATABASE_URL"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def _pg_admin_url() -> str | None:
    url = os.environ.get(PG_ENV)
    return url.replace("postgresql+asyncpg://", "postgresql://") if url else None


def _with_database(url: str, name: str) -> str:
    return str(sa.make_url(url).set(database=name))


def _pg_run(admin_url: str, *statements: str) -> None:
    """Run statements outside a transaction (CREATE/DROP DATABASE) with asyncpg."""

    async def go() -> None:
        import asyncpg  # pyright: ignore[reportMissingTypeStubs]

        conn = await asyncpg.connect(admin_url)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        try:
            for stmt in statements:
                await conn.execute(stmt)  # pyright: ignore[reportUnknownMemberType]
        finally:
            await conn.close()  # pyright: ignore[reportUnknownMemberType]

    asyncio.run(go())


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db-template") / "template.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    admin = _pg_admin_url()
    if admin is None:
        pytest.skip(f"{PG_ENV} is not set; set it to a PostgreSQL URL to run the Postgres tests")
    name = f"berth_test_template_{os.getpid()}"
    _pg_run(admin, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
    asyncio.run(_migrate(_with_database(admin, name)))
    yield name
    _pg_run(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated, empty database of each kind."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "berth.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    template_name: str = request.getfixturevalue("postgres_template")
    admin = _pg_admin_url()
    assert admin is not None
    name = f"berth_test_{uuid.uuid4().hex[:12]}"
    _pg_run(admin, f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
    try:
        yield _with_database(admin, name)
    finally:
        _pg_run(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of each kind with no schema at all (for migration tests)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    admin = _pg_admin_url()
    if admin is None:
        pytest.skip(f"{PG_ENV} is not set; set it to a PostgreSQL URL to run the Postgres tests")
    name = f"berth_test_empty_{uuid.uuid4().hex[:12]}"
    _pg_run(admin, f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(admin, name)
    finally:
        _pg_run(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def db(database_url: str, clock: FakeClock) -> AsyncGenerator[Database]:
    database = Database(create_engine(database_url), clock=clock)
    try:
        yield database
    finally:
        await database.dispose()


@dataclass
class LiveServer:
    """A real berth server on a loopback port, with its own fresh database."""

    url: str
    admin_token: str
    data_dir: Path
    runtime: Runtime


def destroy_sandboxes(data_dir: Path) -> None:
    """Stop every local sandbox a test server left behind.

    Sandboxes outlive their server on purpose (agents reconnect after a restart), so a
    test that ends with workspaces running must take them down itself.
    """
    backend = LocalBackend()
    states = sorted((data_dir / "workspaces" / "sandboxes").glob("*/sandbox.json"))

    async def destroy_all() -> None:
        for state in states:
            with contextlib.suppress(OSError, ValueError):
                await backend.destroy(json.loads(state.read_text()))

    # In a thread of its own: the caller may be inside a running event loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, destroy_all()).result(timeout=120)


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> Generator[LiveServer]:
    data_dir = tmp_path / "data"
    settings = Settings(
        data_dir=data_dir, database_url=database_url, address="127.0.0.1:0", fake_backend=True
    )
    try:
        with running_server(settings) as server:
            bootstrapped = server.runtime.bootstrapped
            assert bootstrapped is not None
            yield LiveServer(server.url, bootstrapped.token, data_dir, server.runtime)
    finally:
        destroy_sandboxes(data_dir)
