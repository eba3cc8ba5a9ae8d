"""Benchmark: cold ``create_workspace`` over MCP on the local backend (DESIGN §12).

Runs a real berth server (SQLite, built-in provisioner, bubblewrap — or
``isolation: none`` where bwrap is missing), pushes a template whose only startup
script is ``true``, and calls ``create_workspace`` through the official MCP client over
streamable HTTP, one fresh chat per call. For every call it reports:

- ``total``: the tool call as the MCP client sees it;
- ``floor``: the physical floor of that same create, measured from the database rows:
  the job's ``started_at`` (a worker picked the build up) to the agent's ``ready_at``
  (sandbox started, agent connected, scripts done);
- ``gap``: tool return minus the agent's ``ready_at`` — how long berth takes to notice
  readiness and answer (the reference polls every 2 s, so its gap averages ~1 s).

Usage: ``uv run python bench/bench_create_workspace.py [--runs 20]``
"""

# The bench drives the server from a synchronous httpx client between MCP calls on
# purpose: the server runs in its own thread and loop, so blocking here blocks nothing.
# ruff: noqa: ASYNC212

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from berth.api.server import running_server
from berth.provisioner.backends.local import LocalBackend
from berth.settings import Settings

TEMPLATE = """\
name: bench
backend:
  type: local
  isolation: {isolation}
agents:
  - name: main
    chat: true
    directory: ~/project
    scripts:
      - display_name: noop
        blocks_login: true
        script: "true"
"""


async def destroy_sandboxes(data_dir: Path) -> None:
    """Stop the sandboxes the run left: they outlive their server on purpose (agents
    reconnect after a restart), and a bench that leaves dozens loads every later run."""
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


async def one_create(
    api: httpx.Client, url: str, token: str, template_id: str
) -> tuple[float, float, float]:
    chat = api.post("/chats", json={"title": "bench"}).json()
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=120) as http,
        Client(
            streamable_http_client(f"{url}/api/v1/chats/{chat['id']}/mcp", http_client=http)
        ) as mcp,
    ):
        started = time.perf_counter()
        result = await mcp.call_tool("create_workspace", {"template_id": template_id})
        returned_at = dt.datetime.now(dt.UTC)
        total = time.perf_counter() - started
    assert not result.is_error, result.content
    structured: dict[str, Any] = dict(result.structured_content or {})
    assert structured.get("created") is True, structured
    assert "startup_scripts" not in structured, structured
    name = str(structured["workspace_name"]).split("/", 1)[1]
    workspace = api.get(f"/workspaces/{name}").json()
    agent = workspace["agents"][0]
    ready = parse_time(agent["ready_at"])
    job_started = parse_time(workspace["latest_build"]["job"]["started_at"])
    floor = (ready - job_started).total_seconds()
    gap = (returned_at - ready).total_seconds()
    api.delete(f"/workspaces/{name}")
    return total, floor, gap


async def main(runs: int) -> None:
    isolation = "bwrap" if shutil.which("bwrap") else "none"
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), address="127.0.0.1:0")
        try:
            with running_server(settings) as server:
                assert server.runtime.bootstrapped is not None
                token = server.runtime.bootstrapped.token
                api = httpx.Client(
                    base_url=f"{server.url}/api/v1",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=120,
                )
                pushed = api.post(
                    "/templates",
                    json={"files": {"template.yaml": TEMPLATE.format(isolation=isolation)}},
                )
                pushed.raise_for_status()
                template_id = pushed.json()["template"]["id"]
                await one_create(api, server.url, token, template_id)  # warm-up: imports, caches
                samples = [
                    await one_create(api, server.url, token, template_id) for _ in range(runs)
                ]
        finally:
            await destroy_sandboxes(Path(tmp))
    totals = [s[0] * 1000 for s in samples]
    floors = [s[1] * 1000 for s in samples]
    gaps = [s[2] * 1000 for s in samples]
    print(f"cold create_workspace, local backend ({isolation}), {runs} runs, SQLite")
    for label, values in (("total", totals), ("floor", floors), ("gap (return - ready)", gaps)):
        p50, p99 = percentile(values, 50), percentile(values, 99)
        print(f"  {label:22} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")
    ratio = statistics.median(t / f for t, f in zip(totals, floors, strict=True))
    print(f"  ratio total/floor      p50 {ratio:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    asyncio.run(main(parser.parse_args().runs))
