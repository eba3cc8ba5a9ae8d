"""Bring a database to the newest schema, once, however many servers start at once.

On Postgres every server takes one advisory lock around the upgrade, so the first
migrates and the others find nothing left to do. SQLite has no advisory locks; an
``flock`` on a file beside the database gives the same guarantee on one host.

A database already at the head revision is told by one query, against the head read
from the revision files' text (:func:`script_head`): Alembic and its machinery (~0.1 s
of imports, a script directory to load) are only imported when there is something to
migrate, so a server on a migrated database starts without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import re
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.db.dialects import MIGRATION_LOCK_KEY

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_REVISION = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(.*)$", re.MULTILINE)
_QUOTED = re.compile(r"""["']([^"']+)["']""")


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config pointing at berth's migrations (no ini file)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest revision in the tree, as Alembic reads it."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("the migration tree has no head revision")
    return head


@functools.cache
def script_head() -> str | None:
    """The head revision read from the revision files' ``revision =`` and
    ``down_revision =`` lines, without Alembic: the one revision no other names as its
    parent. ``None`` when the text does not tell one head (then :func:`migrate` asks
    Alembic). tests/db/test_migrate_at_head.py checks it against :func:`head_revision`."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for key, value in _REVISION.findall(path.read_text(encoding="utf-8")):
            names = set(_QUOTED.findall(value))
            (parents if key == "down_revision" else revisions).update(names)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _upgrade(connection: sa.Connection) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), "head")


def _current(connection: sa.Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def at_head(engine: AsyncEngine) -> bool:
    """Whether the database's ``alembic_version`` holds exactly the head revision (one
    query; a database never migrated has no such table, which is ``False`` too)."""
    head = script_head()
    if head is None:
        return False
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).all()
    except DBAPIError:
        return False
    return [row[0] for row in rows] == [head]


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
    if await at_head(engine):
        return
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
