"""The SQLite driver (:mod:`berth.db.sqlite_driver`): the trips it saves, and that it
loses nothing for them — results, row counts, transactions, failures, locks."""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.db import sqlite_driver
from berth.db.engine import create_engine

pytestmark = pytest.mark.anyio

_TABLE = sa.table("items", sa.column("id", sa.Integer), sa.column("name", sa.String))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # aiosqlite is asyncio-only


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    async with engine.begin() as conn:
        await conn.exec_driver_sql("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
    yield engine
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    """The hand-overs to a connection's thread, by what ran there."""
    counted: collections.Counter[str] = collections.Counter()
    original: Callable[..., Any] = sqlite_driver.OneTripConnection._execute  # pyright: ignore[reportPrivateUsage, reportUnknownMemberType, reportUnknownVariableType]

    async def counting(
        self: sqlite_driver.OneTripConnection, fn: Callable[..., Any], *a: Any
    ) -> Any:
        counted[fn.__name__] += 1
        return await original(self, fn, *a)

    monkeypatch.setattr(sqlite_driver.OneTripConnection, "_execute", counting)
    return counted


async def _names(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(sa.select(_TABLE.c.name).order_by("name"))).scalars())


async def test_a_read_transaction_of_one_statement_is_two_trips_and_an_empty_one_none(
    engine: AsyncEngine, trips: collections.Counter[str]
) -> None:
    async with engine.connect() as conn:  # the pool holds a connection: opening it is done
        pass
    trips.clear()
    async with engine.connect() as conn, conn.begin():
        assert (await conn.execute(sa.text("SELECT 41 + 1"))).scalar_one() == 42
    assert sum(trips.values()) == 2  # BEGIN with the SELECT; COMMIT. No cursor, fetch,
    # close or pool reset of their own.
    trips.clear()
    async with engine.connect() as conn, conn.begin():
        pass
    assert sum(trips.values()) == 0


async def test_results_row_counts_and_last_row_ids_are_the_drivers(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        inserted = await conn.execute(_TABLE.insert().values(name="a"))
        assert inserted.lastrowid == 1
        await conn.execute(_TABLE.insert(), [{"name": "b"}, {"name": "c"}])  # executemany
        updated = await conn.execute(
            _TABLE.update().where(_TABLE.c.id > 1).values(name=_TABLE.c.name + "!")
        )
        assert updated.rowcount == 2
        returned = await conn.execute(
            _TABLE.update()
            .where(_TABLE.c.id == 1)
            .values(name="a2")
            .returning(_TABLE.c.id, _TABLE.c.name)
        )
        assert returned.all() == [(1, "a2")]
        many = await conn.execute(sa.select(_TABLE.c.id).order_by(_TABLE.c.id))
        assert many.fetchone() == (1,)
        assert many.fetchmany(1) == [(2,)]
        assert many.fetchall() == [(3,)]
    assert await _names(engine) == ["a2", "b!", "c!"]


async def test_a_failed_statement_rolls_back_the_whole_transaction(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        with pytest.raises(IntegrityError):  # noqa: PT012 - the transaction is the unit
            async with conn.begin():
                await conn.execute(_TABLE.insert().values(name="kept?"))
                await conn.execute(_TABLE.insert().values(name="kept?"))  # UNIQUE fails
    assert await _names(engine) == []  # the first insert went with the rollback
    async with engine.begin() as conn:  # and the connection is clean for the next one
        await conn.execute(_TABLE.insert().values(name="next"))
    assert await _names(engine) == ["next"]


async def test_a_write_transaction_holds_the_write_lock_from_its_first_statement(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """``BEGIN IMMEDIATE`` runs with the first statement, a read here: from then on
    another writer (another process's connection, which gives up at once) is locked
    out, until the commit."""
    other = sqlite3.connect(tmp_path / "db.sqlite", timeout=0, isolation_level=None)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
            async with conn.begin():
                other.execute("BEGIN IMMEDIATE")  # nothing ran yet: no lock is taken
                other.execute("ROLLBACK")
                await conn.execute(sa.select(_TABLE.c.id))
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
                await conn.execute(_TABLE.insert().values(name="mine"))
        other.execute("BEGIN IMMEDIATE")  # released at commit
        other.execute("COMMIT")
    finally:
        other.close()
    assert await _names(engine) == ["mine"]
