"""Fixtures for the agent's tests: an agent context rooted in a temp directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.agent.context import AgentContext


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def ctx(workdir: Path) -> Iterator[AgentContext]:
    """An agent whose directory is ``workdir``; its processes are killed afterwards."""
    context = AgentContext(directory=str(workdir), env={"MANIFEST_VAR": "from-manifest"})
    yield context
    context.processes.kill_all()
    for proc in context.processes.all():
        assert proc.wait(10), f"process {proc.id} did not exit after KILL"
        proc.wait_closed(10)
