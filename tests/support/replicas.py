"""Several real ``berth server`` processes on one Postgres, and MCP calls to them.

:class:`Replica` runs the console script (a separate interpreter, as in production)
and drains its output into memory on a thread, so a long test never blocks a server
on a full pipe and can search everything the server printed (secrets must not be in
it). :func:`call_tool` is one MCP tool call through its own session, as a chat client
makes it.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import anyio
import httpx
import httpx2
import sqlalchemy as sa
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent

from berth.db.engine import create_engine
from berth.events import bus_for_url, messages
from berth.settings import async_database_url
from tests.support.processes import BERTH

WAIT = 60.0

ISOLATION = "bwrap" if shutil.which("bwrap") else "none"

TEMPLATE = """\
name: replicated
backend:
  type: local
  isolation: {isolation}
agents:
  - name: main
    chat: true
"""


class Replica:
    """One ``berth server`` process on a free loopback port."""

    def __init__(
        self,
        data_dir: Path,
        database_url: str,
        *,
        address: str = "127.0.0.1:0",
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.data_dir = data_dir
        self._address = address
        argv = [str(BERTH), "server", "--data-dir", str(data_dir), "--address", address]
        argv += ["--database-url", database_url, *args]
        self.output: list[str] = []
        self._started = threading.Event()
        self.url = ""
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        if not self._started.wait(WAIT) or not self.url:
            self.stop(kill=True)
            raise AssertionError("berth server did not start:\n" + "".join(self.output))

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            if not self.url and (match := re.search(r"berth is running at (\S+)", line)):
                self.url = match.group(1)
                self._started.set()
        self._started.set()  # it exited

    @property
    def direct_url(self) -> str:
        """The replica's own address as a URL (``url`` is its access URL, which may be
        a load balancer's)."""
        return self.url if self._address.endswith(":0") else f"http://{self._address}"

    def stop(self, *, kill: bool = False) -> None:
        if self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
        try:
            self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)
        self._reader.join(timeout=WAIT)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def free_port() -> int:
    """A port nothing listens on now (to start a server on it again after a restart)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def admin_token(*replicas: Replica) -> str:
    """The first start's admin token, from whichever data dir it was written to."""
    for replica in replicas:
        path = replica.data_dir / "admin-token"
        if path.exists():
            return path.read_text().strip()
    raise AssertionError("no replica bootstrapped the database")


async def call_tool(
    url: str, token: str, chat_id: str, name: str, arguments: dict[str, Any] | None = None
) -> CallToolResult:
    """One tool call through its own MCP session to the server at ``url``."""
    endpoint = f"{url}/api/v1/chats/{chat_id}/mcp"
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120) as http,
        Client(streamable_http_client(endpoint, http_client=http)) as client,
    ):
        return await client.call_tool(name, arguments or {})


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text(result)
    content: Any = result.structured_content
    assert isinstance(content, dict), result
    return cast(dict[str, Any], content)


def text(result: CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, TextContent))


def api(url: str, token: str) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.AsyncClient(base_url=f"{url}/api/v1", headers=headers, timeout=60)


async def push_template(url: str, token: str) -> str:
    """:data:`TEMPLATE` (bubblewrap where installed), pushed; its id."""
    files = {"template.yaml": TEMPLATE.format(isolation=ISOLATION)}
    async with api(url, token) as client:
        pushed = await client.post("/templates", json={"files": files})
    assert pushed.status_code == 201, pushed.text
    return str(pushed.json()["template"]["id"])


async def create_in_new_chat(url: str, token: str, template_id: str) -> tuple[str, str]:
    """A new chat and its workspace, created through ``url``: ``(chat id, workspace name)``."""
    async with api(url, token) as client:
        chat_id = str((await client.post("/chats", json={})).json()["id"])
    arguments = {"template_id": template_id}
    result = structured(await call_tool(url, token, chat_id, "create_workspace", arguments))
    assert result["created"] is True, result
    return chat_id, str(result["workspace_name"]).split("/")[-1]


async def agent_row(database_url: str, workspace: str) -> tuple[uuid.UUID, uuid.UUID | None]:
    """The workspace's agent and the replica its row says it is connected to."""
    engine = create_engine(async_database_url(database_url))
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.text(
                        "SELECT a.id, a.last_connected_replica_id FROM workspace_agents a"
                        " JOIN workspace_resources r ON r.id = a.resource_id"
                        " JOIN workspace_builds b ON b.job_id = r.job_id"
                        " JOIN workspaces w ON w.id = b.workspace_id"
                        " WHERE w.name = :name ORDER BY b.build_number DESC LIMIT 1"
                    ),
                    {"name": workspace},
                )
            ).one()
    finally:
        await engine.dispose()
    replica = None if row[1] is None else uuid.UUID(str(row[1]))
    return uuid.UUID(str(row[0])), replica


async def wait_until_held(
    database_url: str, workspace: str, replica_ids: set[uuid.UUID], *, within: float = WAIT
) -> uuid.UUID:
    """Until the agent's row names one of ``replica_ids`` (woken by its connection
    events, published over Postgres); returns it."""
    agent_id, held = await agent_row(database_url, workspace)
    bus = bus_for_url(async_database_url(database_url))
    await bus.start()
    try:
        async with bus.subscribe(messages.agent(agent_id)) as events:
            with anyio.fail_after(within):
                while (held := (await agent_row(database_url, workspace))[1]) not in replica_ids:
                    await events.get(timeout=1.0)
    finally:
        await bus.close()
    assert held is not None
    return held
