"""Stop scripts through ``stop_workspace`` (DESIGN §7), with a real agent process.

The workspace is built by the real provisioner on the fake backend and its chat agent
is the built agent zipapp running as a subprocess: the stop build asks it to shut
down, it runs its ``run_on: stop`` scripts, and the build goes on when they are done —
or once their timeouts have passed, whatever they do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from berth.services import workspace_views
from tests.support.chats import payload
from tests.support.live_agents import Live, live

pytestmark = pytest.mark.anyio


def _script(name: str, script: str, timeout: int) -> dict[str, Any]:
    return {"display_name": name, "run_on": "stop", "script": script, "timeout_seconds": timeout}


async def _stop(ws: Live) -> tuple[dict[str, Any], list[str]]:
    result = payload(await ws.call("stop_workspace"))
    view, logs = await workspace_views.build_logs(ws.ctx.services, ws.workspace.id)
    assert view.status == "stopped"
    return result, [entry.output for entry in logs]


async def test_the_stop_build_waits_for_the_stop_scripts(database_url: str, tmp_path: Path) -> None:
    scripts = [
        _script("goodbye", "echo bye > goodbye.txt", 30),
        _script("failing", "exit 3", 30),
    ]
    async with live(database_url, tmp_path, scripts=scripts) as ws:
        result, logs = await _stop(ws)
        assert result["stopped"] is True
        assert (ws.project / "goodbye.txt").read_text() == "bye\n", "it ran before the stop"
    assert "agent main: running its stop scripts" in logs
    assert "agent main: stop scripts shutdown_error" in logs, logs


async def test_a_hanging_stop_script_holds_the_stop_only_for_its_timeout(
    database_url: str, tmp_path: Path
) -> None:
    scripts = [_script("hang", "sleep 600", 1)]
    async with live(database_url, tmp_path, scripts=scripts) as ws:
        result, logs = await _stop(ws)
    assert result["stopped"] is True
    assert "agent main: stop scripts shutdown_timeout" in logs, logs
