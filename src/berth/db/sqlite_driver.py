"""aiosqlite with one trip to its thread per statement, and none to spare.

aiosqlite runs each SQLite connection in a thread of its own and hands it work through
a queue; every hand-over wakes the event loop through its self-pipe on the way back.
SQLAlchemy's adapter makes four per statement (create a cursor, execute, fetch all,
close) and a read transaction of one statement took eight (BEGIN, the four, COMMIT, and
the pool's rollback on return): a primary-key ``SELECT`` in its own transaction cost
~1.4 ms, most of it hand-overs, and the tool calls spent more time there than anywhere.

:class:`OneTripConnection` is an aiosqlite connection that makes one:

- its cursors run the statement, fetch its rows and close the SQLite cursor in one
  trip, then answer ``description``, ``rowcount``, ``lastrowid`` and the fetches from
  what came back (SQLAlchemy's adapter buffers every row anyway);
- ``BEGIN`` is not a trip of its own: :meth:`OneTripConnection.begin_with_next` holds
  it for the next statement, which runs it first in the same trip (SQLite takes no lock
  before then in any case: a deferred transaction starts at its first statement, and an
  ``IMMEDIATE`` one waits for the write lock right before that statement runs);
- ``commit`` and ``rollback`` of a connection that holds no transaction (nothing ran
  since BEGIN, or the pool's reset after a commit) make no trip.

The connection knows whether SQLite holds a transaction from the thread's own answer
after each trip (``in_transaction``), so nothing is guessed.

It relies on ``aiosqlite.Connection._execute`` (run a callable in the connection's
thread), which the lock file pins; ``tests/db/test_sqlite_driver.py`` checks the
contract, so an upgrade that changes it fails there first.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import aiosqlite

R = TypeVar("R")
Rows = list[Any]
_Outcome = tuple[Rows, Any, int, int | None]
_Work = Callable[[sqlite3.Cursor], object]


class OneTripCursor:
    """The part of ``aiosqlite.Cursor`` SQLAlchemy uses, one thread trip per statement."""

    arraysize = 1

    def __init__(self, conn: OneTripConnection) -> None:
        self._conn = conn
        self._rows: Rows = []
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    async def _trip(self, work: _Work) -> OneTripCursor:
        outcome: _Outcome = await self._conn.statement(work)
        self._rows, self._description, self._rowcount, self._lastrowid = outcome
        return self

    def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> Awaitable[Any]:
        return self._trip(lambda cursor: cursor.execute(sql, parameters or ()))

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Awaitable[Any]:
        return self._trip(lambda cursor: cursor.executemany(sql, parameters))

    async def fetchall(self) -> Rows:
        rows, self._rows = self._rows, []
        return rows

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> Rows:
        count = self.arraysize if size is None else size
        taken, self._rows = self._rows[:count], self._rows[count:]
        return taken

    async def close(self) -> None:
        self._rows = []

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._lastrowid


class OneTripConnection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors are :class:`OneTripCursor` and whose
    ``BEGIN``, ``commit`` and ``rollback`` make no trip they can spare."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        # As SQLAlchemy does for the connections it opens itself: a connection the pool
        # never closed must not keep the process alive at exit.
        self._thread.daemon = True  # pyright: ignore[reportPrivateUsage]
        self._pending_begin: str | None = None
        self._in_transaction = False

    def begin_with_next(self, begin: str) -> None:
        """Run ``begin`` (``BEGIN DEFERRED``, ``BEGIN IMMEDIATE``) right before the
        next statement, in its trip."""
        self._pending_begin = begin

    async def statement(self, work: _Work) -> _Outcome:
        """Run ``work`` on a fresh SQLite cursor, after the pending BEGIN, in one trip."""
        begin, self._pending_begin = self._pending_begin, None
        return await self._trip(self._run, begin, work)

    async def commit(self) -> None:
        await self._end(sqlite3.Connection.commit)

    async def rollback(self) -> None:
        await self._end(sqlite3.Connection.rollback)

    async def _end(self, end: Callable[[sqlite3.Connection], None]) -> None:
        self._pending_begin = None  # a transaction that never ran a statement: nothing to end
        if self._in_transaction:
            await self._trip(self._in_thread, end)

    def _trip(self, fn: Callable[..., R], *args: Any) -> Awaitable[R]:
        """``fn(*args)`` in the connection's thread: aiosqlite's hand-over."""
        execute: Callable[..., Awaitable[R]] = self._execute  # pyright: ignore[reportPrivateUsage, reportUnknownMemberType, reportUnknownVariableType]
        return execute(fn, *args)

    # --- in the connection's thread ---------------------------------------------------

    def _run(self, begin: str | None, work: _Work) -> _Outcome:
        def statement(conn: sqlite3.Connection) -> _Outcome:
            if begin is not None:
                conn.execute(begin)
            cursor = conn.cursor()
            try:
                work(cursor)
                rows = cursor.fetchall() if cursor.description else []
                return rows, cursor.description, cursor.rowcount, cursor.lastrowid
            finally:
                cursor.close()

        return self._in_thread(statement)

    def _in_thread(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        """``fn(connection)``, then whether SQLite holds a transaction, even if it failed."""
        conn: sqlite3.Connection = self._conn  # pyright: ignore[reportPrivateUsage]
        try:
            return fn(conn)
        finally:
            self._in_transaction = conn.in_transaction

    def cursor(self) -> OneTripCursor:  # type: ignore[override]
        # No trip: the SQLite cursor is made in the thread when a statement runs.
        # SQLAlchemy enters it (``async with``), as aiosqlite's cursor() result allows.
        return OneTripCursor(self)


def connect(database: str, **kwargs: Any) -> OneTripConnection:
    """Like ``aiosqlite.connect``: await it for the opened connection."""

    def connector() -> sqlite3.Connection:
        return sqlite3.connect(database, **kwargs)

    return OneTripConnection(connector)
