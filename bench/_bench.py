"""What the benchmarks share: a real server with one template, a timed MCP
``create_workspace``, percentiles, and the clean-up of the sandboxes a run leaves.

The benchmarks drive the server from a synchronous httpx client between MCP calls on
purpose: the server runs in its own process, so blocking here blocks nothing.
"""

# ruff: noqa: ASYNC212, ASYNC220

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from berth.provisioner.backends.local import LocalBackend

BERTH = Path(sys.executable).with_name("berth")
"""The ``berth`` command of this environment."""

ISOLATION = "bwrap" if shutil.which("bwrap") else "none"
"""bubblewrap where installed, ``isolation: none`` otherwise (the template says which)."""

NOOP_TEMPLATE = f"""\
name: bench
backend:
  type: local
  isolation: {ISOLATION}
agents:
  - name: main
    chat: true
    directory: ~/project
    scripts:
      - display_name: noop
        blocks_login: true
        script: "true"
"""
"""The cold-create benchmarks' template: one agent whose only startup script is ``true``."""


@dataclass(frozen=True, slots=True)
class Bench:
    url: str
    token: str
    api: httpx.Client
    """The API as the admin, at ``/api/v1``."""
    template_id: str
    data_dir: Path


@dataclass(frozen=True, slots=True)
class Created:
    seconds: float
    """The tool call as the MCP client saw it."""
    returned_at: dt.datetime
    result: dict[str, Any]
    workspace: dict[str, Any]
    """``GET /workspaces/{name}`` right after the call."""


@contextlib.asynccontextmanager
async def bench_server(template_yaml: str) -> AsyncGenerator[Bench]:
    """``berth server`` in a process of its own, as it runs for real (SQLite, built-in
    provisioner), in a scratch data dir, with the template pushed. The sandboxes the run
    leaves are destroyed at the end (they outlive their server on purpose, and a bench
    that leaves dozens loads every later run).

    Its own process, not a thread of this one: the MCP client here would otherwise
    share the server's interpreter lock, and every call would pay for both."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        argv = [str(BERTH), "server", "--data-dir", tmp, "--address", "127.0.0.1:0"]
        server = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        try:
            url = _running_url(server, data_dir / "bench-server.log")
            token = (data_dir / "admin-token").read_text().strip()
            api = httpx.Client(
                base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=120
            )
            pushed = api.post("/templates", json={"files": {"template.yaml": template_yaml}})
            pushed.raise_for_status()
            yield Bench(url, token, api, pushed.json()["template"]["id"], data_dir)
        finally:
            server.terminate()
            server.wait(timeout=60)
            await destroy_sandboxes(data_dir)


RUNNING = re.compile(r"berth is running at (\S+)")
"""The line ``berth server`` prints once it serves (the real port when given ``:0``)."""


def _running_url(server: subprocess.Popen[str], log: Path) -> str:
    """The URL the server prints once it serves; everything it prints goes to ``log``
    (by a thread, from then on, so its pipe never fills)."""
    assert server.stdout is not None
    out = server.stdout
    with log.open("a") as first:
        for line in out:
            first.write(line)
            if found := RUNNING.search(line):
                break
        else:
            raise RuntimeError(f"berth server exited with {server.wait()}: see {log}")

    def drain() -> None:
        with log.open("a") as rest:
            shutil.copyfileobj(out, rest)

    threading.Thread(target=drain, daemon=True).start()
    return found.group(1)


@contextlib.asynccontextmanager
async def session(url: str, token: str, chat_id: str) -> AsyncGenerator[Client]:
    """An MCP session to a chat's endpoint over streamable HTTP, kept for the block."""
    headers = {"Authorization": f"Bearer {token}"}
    endpoint = f"{url}/api/v1/chats/{chat_id}/mcp"
    async with (
        httpx2.AsyncClient(headers=headers, timeout=600) as http,
        Client(streamable_http_client(endpoint, http_client=http)) as client,
    ):
        yield client


async def timed_calls(
    client: Client, tool: str, arguments: dict[str, object], runs: int
) -> list[float]:
    """The seconds of ``runs`` calls of ``tool``, each of which must succeed."""
    samples: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await client.call_tool(tool, arguments)
        samples.append(time.perf_counter() - started)
        assert not result.is_error, result.content
    return samples


async def create(bench: Bench, arguments: dict[str, str]) -> Created:
    """One ``create_workspace`` call in a fresh chat, over streamable HTTP."""
    chat = bench.api.post("/chats", json={"title": "bench"}).json()
    async with session(bench.url, bench.token, chat["id"]) as mcp:
        started = time.perf_counter()
        result = await mcp.call_tool("create_workspace", arguments)
        returned_at = dt.datetime.now(dt.UTC)
        seconds = time.perf_counter() - started
    assert not result.is_error, result.content
    structured: dict[str, Any] = dict(result.structured_content or {})
    assert structured.get("created") is True, structured
    name = str(structured["workspace_name"]).split("/", 1)[1]
    return Created(seconds, returned_at, structured, bench.api.get(f"/workspaces/{name}").json())


async def destroy_sandboxes(data_dir: Path) -> None:
    backend = LocalBackend()
    for state in sorted((data_dir / "workspaces" / "sandboxes").glob("*/sandbox.json")):
        with contextlib.suppress(OSError, ValueError):
            await backend.destroy(json.loads(state.read_text()))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def report(label: str, seconds: list[float]) -> None:
    """One line: p50 and p99 in milliseconds."""
    ms = [s * 1000 for s in seconds]
    print(f"  {label:22} p50 {percentile(ms, 50):7.1f} ms   p99 {percentile(ms, 99):7.1f} ms")
