"""The database handle: an async engine plus transactions that hand out authorized Stores.

Services own transactions (DESIGN §2): they open one with :meth:`Database.write` or
:meth:`Database.read` *for an actor*, call named queries on the
:class:`~berth.db.authz.AuthzStore` it yields, and the block commits on success. The raw
:class:`~berth.db.store.Store` never leaves this package; its methods never commit.

SQLite: WAL journal, foreign keys on, a busy timeout, and write transactions that start
with ``BEGIN IMMEDIATE`` so that two writers queue instead of failing halfway (the
SQLite counterpart of Postgres row locks, see :mod:`berth.db.dialects`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from berth.clock import Clock, SystemClock
from berth.db import sqlite_driver
from berth.db.authz import AuthzStore
from berth.db.dialects import is_retryable
from berth.db.store import Store
from berth.db.store.base import uninterruptible
from berth.domain.actors import Actor
from berth.errors import Unavailable
from berth.settings import async_database_url

_SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine for ``url`` with berth's per-dialect connection setup."""
    url = async_database_url(url)
    if url.startswith("sqlite"):
        database = sa.make_url(url).database or ":memory:"
        engine = create_async_engine(
            url,
            async_creator=lambda: sqlite_driver.connect(
                database, timeout=_SQLITE_BUSY_TIMEOUT_MS / 1000
            ),
        )
        _configure_sqlite(engine)
        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:  # pyright: ignore[reportUnusedFunction]
        # Let SQLAlchemy's "begin" event below issue BEGIN itself.
        dbapi_conn.isolation_level = None  # type: ignore[attr-defined]
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:  # pyright: ignore[reportUnusedFunction]
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        driver = conn.connection.driver_connection
        assert isinstance(driver, sqlite_driver.OneTripConnection)
        driver.begin_with_next(f"BEGIN {mode}")  # in the first statement's trip


async def _abandon(conn: AsyncConnection) -> None:
    """Give up a transaction nobody will use (its opener was cancelled)."""
    try:
        await conn.rollback()
    finally:
        await conn.close()


class Database:
    """An engine and a clock; the factory of transactions, each for one actor."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock: Clock = clock or SystemClock()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.asynccontextmanager
    async def _transaction(self, actor: Actor, **options: Any) -> AsyncGenerator[AuthzStore]:
        """One transaction; a cancellation of the caller never cuts a database call short.

        A call cut short inside the driver leaves the connection in a state its pool
        cannot clean (with aiosqlite, a write lock held until the connection is garbage
        collected, which stalls every other writer). So each boundary — checkout and
        begin, commit or rollback, close — and each statement (:meth:`Store._execute`)
        runs to its end, and the cancellation is raised after it.
        """
        try:
            conn = await uninterruptible(self._begin(options), undo=_abandon)
            try:
                yield AuthzStore(Store(conn, self.clock), actor)
            except BaseException:
                await uninterruptible(conn.rollback())
                raise
            else:
                await uninterruptible(conn.commit())
            finally:
                await uninterruptible(conn.close())
        except DBAPIError as exc:
            if is_retryable(exc):
                raise Unavailable("The database is busy; try again.") from exc
            raise

    async def _begin(self, options: dict[str, Any]) -> AsyncConnection:
        conn = await self.engine.connect()
        try:
            conn = await conn.execution_options(**options)
            await conn.begin()
        except BaseException:
            await conn.close()
            raise
        return conn

    def write(self, actor: Actor) -> contextlib.AbstractAsyncContextManager[AuthzStore]:
        """A read-write transaction for ``actor`` (``BEGIN IMMEDIATE`` on SQLite)."""
        return self._transaction(actor, sqlite_begin="IMMEDIATE")

    def read(self, actor: Actor) -> contextlib.AbstractAsyncContextManager[AuthzStore]:
        """A read transaction for ``actor``."""
        return self._transaction(actor)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncGenerator[AsyncConnection]:
        """A raw connection, for maintenance (migrations, test setup)."""
        async with self.engine.connect() as conn:
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()
