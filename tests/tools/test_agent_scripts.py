"""The chat agent's scripts as the tools see them, with a real agent process.

The workspace is built by the real provisioner on the fake backend and its chat agent
is the built agent zipapp running as a subprocess. A failed start script is named, with
its last lines, in the tools' readiness result. ``stop_workspace`` (DESIGN §7): the stop
build asks the agent to shut down, it runs its ``run_on: stop`` scripts, and the build
goes on when they are done — or once their timeouts have passed, whatever they do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from berth.services import workspace_views
from tests.support.chats import payload
from tests.support.live_agents import Live, live

pytestmark = pytest.mark.anyio


def _script(name: str, script: str, timeout: int, run_on: str = "stop") -> dict[str, Any]:
    return {"display_name": name, "run_on": run_on, "script": script, "timeout_seconds": timeout}


@pytest.mark.spec("wait.agent")
async def test_a_failed_start_script_is_named_with_its_last_lines(
    database_url: str, tmp_path: Path
) -> None:
    """[wait.agent] The spec's keys, and ``startup_script_error`` naming the script."""
    failing = {**_script("setup", "echo one; echo two; exit 3", 30, "start"), "blocks_login": True}
    async with live(database_url, tmp_path, scripts=[failing]) as ws:
        template_id = str(ws.workspace.template_id)
        result = payload(await ws.call("create_workspace", {"template_id": template_id}))
    assert result["status"] == "already_exists"
    assert (result["startup_scripts"], result["lifecycle_state"]) == (
        "startup_scripts_failed",
        "start_error",
    )
    assert result["startup_script_error"] == (
        "startup script 'setup' failed; its last lines:\none\ntwo\nsetup: exited with code 3"
    )


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
