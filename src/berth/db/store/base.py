"""The part every Store mixin shares: the connection, the clock and row helpers."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import fields
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from berth.clock import Clock

R = TypeVar("R")
T = TypeVar("T")


async def uninterruptible(
    work: Awaitable[T], *, undo: Callable[[T], Awaitable[object]] | None = None
) -> T:
    """``work``'s result; a cancellation meanwhile is raised only once ``work`` is done.

    For database calls: one cut short inside the driver can leave its connection
    holding locks (see :meth:`berth.db.engine.Database._transaction`). Repeated
    cancellations (anyio cancel scopes re-deliver them at every await) are absorbed
    until ``work`` ends, then one is raised — after ``undo(result)``, when the result
    would otherwise be lost with the cancellation (an opened transaction).
    """
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():  # the work itself was cancelled: nothing to finish
                raise
            cancelled = True  # the caller was: finish the work, then raise it
        except BaseException:
            break  # the work failed: task.result() below raises its error
    result = task.result()
    if cancelled:
        if undo is not None:
            await uninterruptible(undo(result))
        raise asyncio.CancelledError
    return result


def from_row(cls: type[R], row: sa.Row[Any]) -> R:
    """Build record ``cls`` from a row whose columns include all of its fields."""
    mapping = row._mapping  # pyright: ignore[reportPrivateUsage]
    return cls(**{f.name: mapping[f.name] for f in fields(cls)})  # type: ignore[arg-type]


def key(name: str = "key") -> sa.BindParameter[Any]:
    """A bind parameter, for the statements the hottest lookups build once, at import.

    Building a ``SELECT … WHERE id = :id`` costs about a third of running it on SQLite
    (~85 µs of ~285 here), and every request runs several (its token, its user, the
    chat, the workspace, the build, the job, the agents): those are module constants
    that take their values as parameters, ``_one(cls, STATEMENT, {"key": value})``.
    """
    return sa.bindparam(name)


class StoreBase:
    """Holds one connection inside a transaction that the caller owns."""

    def __init__(self, conn: AsyncConnection, clock: Clock) -> None:
        self._conn = conn
        self._clock = clock

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._conn.dialect.name

    def _now(self) -> dt.datetime:
        return self._clock.now()

    async def _execute(
        self, stmt: sa.Executable, params: Sequence[Mapping[str, Any]] | None = None
    ) -> sa.CursorResult[*tuple[Any, ...]]:
        """Run one statement to its end, even if the caller is cancelled meanwhile."""
        return await uninterruptible(self._conn.execute(stmt, params))

    async def _one(
        self, cls: type[R], stmt: sa.Executable, params: Mapping[str, Any] | None = None
    ) -> R | None:
        row = (await self._execute(stmt, None if params is None else [params])).first()
        return None if row is None else from_row(cls, row)

    async def _all(
        self, cls: type[R], stmt: sa.Executable, params: Mapping[str, Any] | None = None
    ) -> list[R]:
        rows = await self._execute(stmt, None if params is None else [params])
        return [from_row(cls, row) for row in rows]

    async def _insert(self, cls: type[R], table: sa.Table, **values: Any) -> R:
        row = (await self._execute(table.insert().values(**values).returning(table))).one()
        return from_row(cls, row)

    async def _update_one(
        self, cls: type[R], table: sa.Table, where: sa.ColumnElement[bool], **values: Any
    ) -> R | None:
        stmt = table.update().where(where).values(**values).returning(table)
        row = (await self._execute(stmt)).first()
        return None if row is None else from_row(cls, row)
