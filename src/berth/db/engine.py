"""The database handle: an async engine plus transactions that hand out Stores.

Services own transactions (DESIGN §3): they open one with :meth:`Database.write` or
:meth:`Database.read`, call named Store methods, and the block commits on success.
Store methods never commit.

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
from berth.db.dialects import is_retryable
from berth.db.store import Store
from berth.errors import Unavailable
from berth.settings import async_database_url

_SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine for ``url`` with berth's per-dialect connection setup."""
    url = async_database_url(url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000})
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
        conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """An engine and a clock; the factory of transactions and Stores."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock: Clock = clock or SystemClock()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.asynccontextmanager
    async def _transaction(self, **options: Any) -> AsyncGenerator[Store]:
        try:
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(**options)
                async with conn.begin():
                    yield Store(conn, self.clock)
        except DBAPIError as exc:
            if is_retryable(exc):
                raise Unavailable("The database is busy; try again.") from exc
            raise

    def write(self) -> contextlib.AbstractAsyncContextManager[Store]:
        """A read-write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
        return self._transaction(sqlite_begin="IMMEDIATE")

    def read(self) -> contextlib.AbstractAsyncContextManager[Store]:
        """A read transaction."""
        return self._transaction()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncGenerator[AsyncConnection]:
        """A raw connection, for maintenance (migrations, test setup)."""
        async with self.engine.connect() as conn:
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()
