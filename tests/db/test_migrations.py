"""Migrations: one tree that builds the schema of ``tables.py`` on both databases, once."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from berth.db.engine import create_engine
from berth.db.migrate import alembic_config, current_revision, head_revision, migrate
from berth.db.tables import metadata

pytestmark = pytest.mark.anyio


async def test_parallel_migrations_on_one_database_migrate_once(empty_database_url: str) -> None:
    """Two servers starting at once: both finish, the schema is at head, nothing doubled."""
    engines = [create_engine(empty_database_url) for _ in range(3)]
    try:
        await asyncio.gather(*(migrate(e) for e in engines))
        assert await current_revision(engines[0]) == head_revision()
        async with engines[0].connect() as conn:
            versions = (
                await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            ).all()
        assert [v[0] for v in versions] == [head_revision()]
    finally:
        for e in engines:
            await e.dispose()


async def test_migrated_schema_matches_the_tables(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        await migrate(engine)

        def diff(conn: sa.Connection) -> list[Any]:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            with warnings.catch_warnings():
                # SQLite cannot reflect expression indexes; Postgres compares them fully.
                warnings.filterwarnings("ignore", message=".*expression-based index.*")
                return compare_metadata(ctx, metadata)

        async with engine.connect() as conn:
            differences = await conn.run_sync(diff)
        assert differences == []
    finally:
        await engine.dispose()


async def test_downgrade_to_base_and_back(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        await migrate(engine)

        def down(conn: sa.Connection) -> None:
            command.downgrade(alembic_config(conn), "base")

        async with engine.connect() as conn:
            await conn.run_sync(down)
            await conn.commit()
        assert await current_revision(engine) is None
        await migrate(engine)
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()
