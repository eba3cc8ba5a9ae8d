"""The part every Store mixin shares: the connection, the clock and row helpers."""

from __future__ import annotations

import datetime as dt
from dataclasses import fields
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from berth.clock import Clock

R = TypeVar("R")


def from_row(cls: type[R], row: sa.Row[Any]) -> R:
    """Build record ``cls`` from a row whose columns include all of its fields."""
    mapping = row._mapping  # pyright: ignore[reportPrivateUsage]
    return cls(**{f.name: mapping[f.name] for f in fields(cls)})  # type: ignore[arg-type]


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

    async def _one(self, cls: type[R], stmt: sa.Executable) -> R | None:
        row = (await self._conn.execute(stmt)).first()
        return None if row is None else from_row(cls, row)

    async def _all(self, cls: type[R], stmt: sa.Executable) -> list[R]:
        return [from_row(cls, row) for row in await self._conn.execute(stmt)]

    async def _insert(self, cls: type[R], table: sa.Table, **values: Any) -> R:
        row = (await self._conn.execute(table.insert().values(**values).returning(table))).one()
        return from_row(cls, row)

    async def _update_one(
        self, cls: type[R], table: sa.Table, where: sa.ColumnElement[bool], **values: Any
    ) -> R | None:
        stmt = table.update().where(where).values(**values).returning(table)
        row = (await self._conn.execute(stmt)).first()
        return None if row is None else from_row(cls, row)
