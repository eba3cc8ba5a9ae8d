"""The world of the workspaces-service tests (:mod:`tests.support.workspaces`), as a fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from berth.db.engine import Database
from tests.support.workspaces import World, fake_template, open_world


@pytest.fixture
async def world(db: Database, tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(db, tmp_path / "state") as w:
        await w.push(fake_template("basic"))
        yield w
