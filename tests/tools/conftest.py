"""The worlds of the chat-tool tests (:mod:`tests.support.tools`), as fixtures."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

from berth.clock import FakeClock
from berth.db.engine import Database
from tests.support.tools import World, open_world


@pytest.fixture
async def world(db: Database, clock: FakeClock, tmp_path: Path) -> AsyncGenerator[World]:
    async with open_world(db, clock, tmp_path) as w:
        yield w


@pytest.fixture
async def manual(db: Database, clock: FakeClock, tmp_path: Path) -> AsyncGenerator[World]:
    """A world whose jobs run only when the test runs them (``run_job``)."""
    async with open_world(db, clock, tmp_path, run_provisioner=False) as w:
        yield w
