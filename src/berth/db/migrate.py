"""Bring a database to the newest schema, once, however many servers start at once.

On Postgres every server takes one advisory lock around the upgrade, so the first
migrates and the others find nothing left to do. SQLite has no advisory locks; an
``flock`` on a file beside the database gives the same guarantee on one host.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncGenerator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.db.dialects import MIGRATION_LOCK_KEY

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config pointing at berth's migrations (no ini file)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest revision in the tree."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("the migration tree has no head revision")
    return head


def _upgrade(connection: sa.Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


def _current(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@contextlib.asynccontextmanager
async def _sqlite_file_lock(database: str | None) -> AsyncGenerator[None]:
    if not database or database == ":memory:":
        yield
        return
    fd = os.open(database + ".migrate-lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        # flock blocks; wait for it in a thread so the event loop keeps running.
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade the database behind ``engine`` to the head revision."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            try:
                await conn.commit()
                await conn.run_sync(_upgrade)
                await conn.commit()
            finally:
                await conn.execute(
                    sa.text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY}
                )
                await conn.commit()
        return
    async with _sqlite_file_lock(engine.url.database), engine.connect() as conn:
        await conn.run_sync(_upgrade)
        await conn.commit()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or ``None`` when it was never migrated."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current)
