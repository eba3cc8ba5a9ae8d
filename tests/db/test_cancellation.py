"""Transactions cancelled anywhere leave nothing behind (DESIGN §2, the Database).

A caller can be cancelled at any await — a client hangs up, a timeout fires, a worker
stops its heartbeat. A database call cut short inside the driver used to leave its
connection holding SQLite's write lock, so every later writer waited for the busy
timeout and failed. Here a writer is cancelled at many different points of its
transactions and, each time, another writer must get through at once.
"""

from __future__ import annotations

import asyncio

import anyio
import pytest

from berth.db.engine import Database
from berth.domain.actors import as_system

pytestmark = pytest.mark.anyio

ROUNDS = 150
WAIT = 10.0


async def _writer(db: Database) -> None:
    while True:
        async with db.write(as_system()) as store:
            await store.get_site_config("k")
            await store.upsert_site_config("k", "v")


async def test_a_cancelled_transaction_never_blocks_the_next_writer(db: Database) -> None:
    for round_ in range(ROUNDS):
        writer = asyncio.create_task(_writer(db))
        # Cancel after a different number of loop turns each round, so the cancellation
        # lands on every kind of await: checkout, BEGIN, statements, COMMIT, close.
        for _ in range(round_ % 17):
            await asyncio.sleep(0)
        if round_ % 5 == 0:
            await asyncio.sleep(0.0005 * (round_ % 7))
        writer.cancel()
        with anyio.fail_after(WAIT):
            await asyncio.wait([writer])
        assert writer.cancelled(), "a cancellation is never swallowed"
        # Far below SQLite's busy timeout (30 s): a leaked lock fails this bound.
        with anyio.fail_after(WAIT):
            async with db.write(as_system()) as store:
                await store.upsert_site_config("probe", str(round_))
    async with db.read(as_system()) as store:
        assert await store.get_site_config("probe") == str(ROUNDS - 1)
