"""A database at the head revision is left alone without loading Alembic (server start,
issue 12); any other (empty, older, downgraded) is still migrated to the head."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from berth.db.engine import create_engine
from berth.db.migrate import (
    alembic_config,
    at_head,
    current_revision,
    head_revision,
    migrate,
    script_head,
)

pytestmark = pytest.mark.anyio


def test_the_head_read_from_the_files_is_alembics() -> None:
    assert script_head() == head_revision()


async def test_an_empty_database_is_migrated(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        assert not await at_head(engine)
        await migrate(engine)
        assert await current_revision(engine) == head_revision()
        assert await at_head(engine)
    finally:
        await engine.dispose()


async def test_an_older_database_is_migrated_to_the_head(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        await migrate(engine)

        def one_back(conn: sa.Connection) -> None:
            command.downgrade(alembic_config(conn), "-1")

        async with engine.connect() as conn:
            await conn.run_sync(one_back)
            await conn.commit()
        older = await current_revision(engine)
        assert older is not None
        assert older != head_revision()
        assert not await at_head(engine)
        await migrate(engine)
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


_PROBE = """
import asyncio, json, sys
import sqlalchemy as sa
from berth.db.engine import create_engine
from berth.db.migrate import migrate

async def main() -> None:
    engine = create_engine(sys.argv[1])
    statements = []
    sa.event.listen(
        engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2])
    )
    await migrate(engine)
    await engine.dispose()
    print(json.dumps({"statements": statements, "alembic": "alembic" in sys.modules}))

asyncio.run(main())
"""


async def test_a_migrated_database_costs_one_query_and_no_alembic(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'berth.db'}"
    engine = create_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    argv = [sys.executable, "-c", _PROBE, url]
    done = await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    queries = [s for s in seen["statements"] if not s.startswith("BEGIN")]
    assert queries == ["SELECT version_num FROM alembic_version"]
    assert seen["alembic"] is False
