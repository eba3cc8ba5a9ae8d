"""Progress notifications (DESIGN §8) reach the official MCP client's ``progress_callback``.

Over streamable HTTP straight to the server, and through ``berth mcp`` (the stdio
bridge), during a ``create_workspace`` whose startup script takes two seconds; then a
``stop_workspace`` and a ``start_workspace`` on the same chat. A call without a
progress callback (no progress token) gets none, and its result is the same.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.conftest import LiveServer
from tests.mcp.test_mcp_e2e import api, mcp_client

pytestmark = pytest.mark.anyio

BERTH = Path(sys.executable).with_name("berth")

TEMPLATE = """\
name: slow-start
backend:
  type: local
  isolation: {isolation}
agents:
  - name: main
    chat: true
    scripts:
      - display_name: setup
        blocks_login: true
        script: echo warming up && sleep 2 && echo warmed
"""


class Progress:
    """What a ``progress_callback`` received, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, str]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        assert total is None
        self.seen.append((progress, message or ""))

    @property
    def messages(self) -> list[str]:
        return [message for _, message in self.seen]

    def check_increasing(self) -> None:
        counts = [count for count, _ in self.seen]
        assert len(counts) >= 2, self.seen
        assert counts == sorted(set(counts)), f"not increasing: {self.seen}"
        assert all(self.messages), self.seen

    def index(self, fragment: str) -> int:
        """Where the first message holding ``fragment`` is."""
        for at, message in enumerate(self.messages):
            if fragment in message:
                return at
        raise AssertionError(f"no progress message holds {fragment!r}: {self.messages}")


async def chat_with_template(server: LiveServer) -> tuple[str, str]:
    isolation = "bwrap" if shutil.which("bwrap") else "none"
    async with api(server) as http:
        files = {"template.yaml": TEMPLATE.format(isolation=isolation)}
        pushed = await http.post("/templates", json={"files": files})
        assert pushed.status_code == 201, pushed.text
        chat = (await http.post("/chats", json={"title": "progress"})).json()
    return pushed.json()["template"]["id"], chat["id"]


async def test_create_stop_and_start_report_progress_over_http(live_server: LiveServer) -> None:
    template_id, chat_id = await chat_with_template(live_server)
    async for client in mcp_client(live_server, chat_id, live_server.admin_token):
        created_progress = Progress()
        created = await client.call_tool(
            "create_workspace",
            {"template_id": template_id, "name": "slow"},
            progress_callback=created_progress,
        )
        assert not created.is_error, created.content
        created_progress.check_increasing()
        steps = [
            "creating the workspace",
            "build #1 (start)",
            "agent main connected: running its startup scripts",
            "agent main: setup: warming up",
            "agent main is ready",
        ]
        at = [created_progress.index(step) for step in steps]
        assert at == sorted(at), created_progress.messages
        # The two seconds of the script are not silent (a heartbeat under a second).
        assert at[-1] - at[2] >= 2, created_progress.messages

        stopped_progress = Progress()
        stopped = await client.call_tool("stop_workspace", {}, progress_callback=stopped_progress)
        assert not stopped.is_error, stopped.content
        assert stopped_progress.messages[0] == "stopping the workspace"
        stopped_progress.index("build #2 (stop)")

        quiet = await client.call_tool("start_workspace", {})
        assert not quiet.is_error, quiet.content
        assert quiet.structured_content is not None
        assert quiet.structured_content["started"] is True


@pytest.mark.skipif(not BERTH.exists(), reason=f"the berth console script is not at {BERTH}")
async def test_the_stdio_bridge_passes_progress_on(live_server: LiveServer) -> None:
    template_id, chat_id = await chat_with_template(live_server)
    params = StdioServerParameters(
        command=str(BERTH),
        args=[
            "mcp",
            "--chat",
            chat_id,
            "--url",
            live_server.url,
            "--token",
            live_server.admin_token,
        ],
    )
    progress = Progress()
    async with Client(params) as client:
        created = await client.call_tool(
            "create_workspace", {"template_id": template_id}, progress_callback=progress
        )
    assert not created.is_error, created.content
    progress.check_increasing()
    assert progress.index("creating the workspace") < progress.index("agent main is ready")
