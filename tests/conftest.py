"""Shared fixtures: real databases (SQLite always, Postgres when configured) and a live server.

Every test that asks for ``database_url`` runs twice, on SQLite and on Postgres. The
Postgres run uses the server named by ``BERTH_TEST_DATABASE_URL`` and is skipped, with
that reason, when the variable is unset. Each test gets an empty, migrated database: on
SQLite a copy of a file migrated once per session; on Postgres one of this process's
databases cloned (``CREATE DATABASE … TEMPLATE``) from one migrated once, and emptied
between tests with one ``TRUNCATE`` (after ending every session still connected to it)
instead of dropping and cloning it again, which cost ~0.4 s a test.
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
from berth.db.tables import metadata
from berth.provisioner.backends.local import LocalBackend
from berth.services.runtime import Runtime
from berth.settings import Settings
from tests.support.live_agents import LivePool

PG_ENV = "BERTH_TEST_DATABASE_URL"
NO_POSTGRES = f"{PG_ENV} is not set; set it to a PostgreSQL URL to run the Postgres tests"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


HOST_NETWORK = "host-network"
"""The xdist group of the tests that change the host's network or probe all of it."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Docker tests run on one worker, one at a time (``--dist loadgroup``): Debian 12's
    engine sometimes loses a new container's root file system while another container
    is removed (see ``berth.provisioner.backends._docker_sdk._started``), and parallel
    Docker tests remove containers all the time. They also add bridges to the host, so
    the local network tests, which probe every host address, share their worker."""
    for item in items:
        if item.get_closest_marker("docker") is not None:
            item.add_marker(pytest.mark.xdist_group(HOST_NETWORK))


def _pg_admin_url() -> str | None:
    url = os.environ.get(PG_ENV)
    return url.replace("postgresql+asyncpg://", "postgresql://") if url else None


def _with_database(url: str, name: str) -> str:
    return str(sa.make_url(url).set(database=name))


def _pg_run(admin_url: str, *statements: str) -> None:
    """Run statements outside a transaction (CREATE/DROP DATABASE) with asyncpg.

    In a thread of its own when called from inside a running event loop (a shared
    database made for an async fixture).
    """

    async def go() -> None:
        import asyncpg  # pyright: ignore[reportMissingTypeStubs]

        conn = await asyncpg.connect(admin_url)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        try:
            for stmt in statements:
                await conn.execute(stmt)  # pyright: ignore[reportUnknownMemberType]
        finally:
            await conn.close()  # pyright: ignore[reportUnknownMemberType]

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(go())
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, go()).result(timeout=120)


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
        pytest.skip(NO_POSTGRES)
    name = f"berth_test_template_{os.getpid()}"
    _pg_run(admin, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
    asyncio.run(_migrate(_with_database(admin, name)))
    yield name
    _pg_run(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class _PostgresDatabases:
    """This process's test databases: cloned from the template once, emptied for reuse."""

    def __init__(self, admin: str, template: str) -> None:
        self.admin = admin
        self.template = template
        self.free: list[str] = []
        self.made: list[str] = []
        tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        self._truncate = f"TRUNCATE {tables} RESTART IDENTITY CASCADE"

    def take(self) -> str:
        if self.free:
            return self.free.pop()
        name = f"berth_test_{os.getpid()}_{len(self.made)}"
        _pg_run(
            self.admin,
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"',
        )
        self.made.append(name)
        return name

    def give_back(self, name: str) -> None:
        """Empty the database as the template left it; drop it if that fails."""
        terminate = (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        try:
            _pg_run(_with_database(self.admin, name), terminate, self._truncate)
        except Exception:
            _pg_run(self.admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.made.remove(name)
            raise
        self.free.append(name)

    def drop_all(self) -> None:
        for name in self.made:
            _pg_run(self.admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_databases(postgres_template: str) -> Iterator[_PostgresDatabases]:
    admin = _pg_admin_url()
    assert admin is not None
    databases = _PostgresDatabases(admin, postgres_template)
    yield databases
    databases.drop_all()


def _database(request: pytest.FixtureRequest, directory: Path) -> Iterator[str]:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = directory / "berth.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    databases: _PostgresDatabases = request.getfixturevalue("postgres_databases")
    name = databases.take()
    try:
        yield _with_database(databases.admin, name)
    finally:
        databases.give_back(name)


_KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=_KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each kind."""
    yield from _database(request, tmp_path)


@dataclass
class SharedDatabases:
    """Databases that live as long as this test process, for servers tests share."""

    sqlite_template: Path
    directory: Path
    postgres: _PostgresDatabases | None
    made: int = 0

    def url(self, kind: str) -> str:
        self.made += 1
        if kind == "sqlite":
            path = self.directory / f"shared-{self.made}.db"
            shutil.copyfile(self.sqlite_template, path)
            return f"sqlite+aiosqlite:///{path}"
        if self.postgres is None:
            pytest.skip(NO_POSTGRES)
        return _with_database(self.postgres.admin, self.postgres.take())


@pytest.fixture(scope="session")
def shared_databases(
    request: pytest.FixtureRequest, sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> SharedDatabases:
    postgres = request.getfixturevalue("postgres_databases") if _pg_admin_url() else None
    return SharedDatabases(sqlite_template, tmp_path_factory.mktemp("shared-db"), postgres)


@pytest.fixture(params=_KINDS)
def database_kind(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgres``, for tests that share a server per kind (see ``live_pool``)."""
    kind: str = request.param
    return kind


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of each kind with no schema at all (for migration tests)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    admin = _pg_admin_url()
    if admin is None:
        pytest.skip(NO_POSTGRES)
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


@contextlib.contextmanager
def serve(settings: Settings) -> Generator[LiveServer]:
    """A live server for ``settings`` (a first start: it bootstraps), its sandboxes
    destroyed after."""
    try:
        with running_server(settings) as server:
            bootstrapped = server.runtime.bootstrapped
            assert bootstrapped is not None
            yield LiveServer(server.url, bootstrapped.token, settings.data_dir, server.runtime)
    finally:
        destroy_sandboxes(settings.data_dir)


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> Generator[LiveServer]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        address="127.0.0.1:0",
        fake_backend=True,
    )
    with serve(settings) as server:
        yield server


@pytest.fixture(scope="session")
async def live_pool(
    shared_databases: SharedDatabases, tmp_path_factory: pytest.TempPathFactory
) -> AsyncGenerator[LivePool]:
    """Live workspaces (server + agent) shared by a module's tests, kept for the session."""
    async with contextlib.AsyncExitStack() as stack:
        yield LivePool(stack, shared_databases, tmp_path_factory.mktemp("live"))
