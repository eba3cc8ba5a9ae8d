"""Benchmark: claiming a prebuilt workspace over MCP, next to a cold create (DESIGN §12).

Runs a real berth server (SQLite, built-in provisioner, bubblewrap — or
``isolation: none`` where bwrap is missing) and pushes a template whose preset keeps
two prebuilds and whose only startup and claim scripts are ``true``. Then, in the same
run, with one fresh chat per call through the official MCP client over streamable HTTP:

- ``cold``: ``create_workspace`` without the preset (a build: sandbox, agent, scripts);
- ``claim``: ``create_workspace`` with the preset's id, once the pool holds two ready
  prebuilds (the refill between claims is not timed);
- ``agent``: of each claim, the agent's own part, from the database rows: the server
  received its ``starting`` (it had the new manifest) to its ``ready`` (the claim
  script ran);
- ``server``: claim minus agent — everything berth adds: the MCP round trip, the claim's
  transaction, the manifest push and the readiness wait's wake-up (DESIGN §12: ≤ 25 ms
  at p50).

It prints p50/p99 of each and the ratio claim/cold (DESIGN §12: ≤ 0.25).

Usage: ``uv run python bench/bench_claim.py [--runs 20]``
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
presets:
  - name: warm
    prebuilds: {{instances: 2}}
agents:
  - name: main
    chat: true
    directory: ~/project
    scripts:
      - display_name: noop
        blocks_login: true
        script: "true"
      - display_name: welcome
        run_on: claim
        blocks_login: true
        script: "true"
"""
POOL_WAIT = 120.0


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


async def create(
    api: httpx.Client, url: str, token: str, arguments: dict[str, str]
) -> tuple[float, dict[str, Any]]:
    """One ``create_workspace`` call in a fresh chat: its seconds and the workspace."""
    chat = api.post("/chats", json={"title": "bench"}).json()
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=120) as http,
        Client(
            streamable_http_client(f"{url}/api/v1/chats/{chat['id']}/mcp", http_client=http)
        ) as mcp,
    ):
        started = time.perf_counter()
        result = await mcp.call_tool("create_workspace", arguments)
        total = time.perf_counter() - started
    assert not result.is_error, result.content
    structured: dict[str, Any] = dict(result.structured_content or {})
    assert structured.get("created") is True, structured
    name = str(structured["workspace_name"]).split("/", 1)[1]
    return total, api.get(f"/workspaces/{name}").json()


def settle(api: httpx.Client, removed: str | None = None) -> None:
    """Delete ``removed``; then wait until the host is quiet — that workspace gone, no
    build running, two ready prebuilds — so no sample shares the CPU with another's
    build or clean-up (polled: this is a bench, not a test)."""
    if removed is not None:
        api.delete(f"/workspaces/{removed}").raise_for_status()
    deadline = time.monotonic() + POOL_WAIT
    while time.monotonic() < deadline:
        rows = api.get("/prebuilds").json()["prebuilds"]
        listed = api.get("/workspaces", params={"all": "true"}).json()
        busy = [w for w in listed if w["status"] != "running" or w["name"] == removed]
        if sum(1 for r in rows if r["ready"]) >= 2 and not busy:
            return
        time.sleep(0.05)
    raise TimeoutError(f"the host did not settle within {POOL_WAIT:g}s")


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
                (preset,) = api.get(f"/templates/{template_id}").json()["presets"]
                cold_args = {"template_id": template_id}
                claim_args = {"template_id": template_id, "preset_id": preset["id"]}
                colds: list[float] = []
                claims: list[float] = []
                agents: list[float] = []
                settle(api)
                for args in (claim_args, cold_args):  # warm-up: imports, caches
                    settle(api, (await create(api, server.url, token, args))[1]["name"])
                for _ in range(runs):
                    cold, workspace = await create(api, server.url, token, cold_args)
                    colds.append(cold)
                    settle(api, workspace["name"])
                    claim, workspace = await create(api, server.url, token, claim_args)
                    assert workspace["latest_build"]["reason"] == "claim", workspace["latest_build"]
                    agent = workspace["agents"][0]
                    ran = parse_time(agent["ready_at"]) - parse_time(agent["started_at"])
                    claims.append(claim)
                    agents.append(ran.total_seconds())
                    settle(api, workspace["name"])
        finally:
            await destroy_sandboxes(Path(tmp))
    server_side = [c - a for c, a in zip(claims, agents, strict=True)]
    print(f"claim vs cold create_workspace, local backend ({isolation}), {runs} runs, SQLite")
    for label, values in (
        ("cold create", colds),
        ("claim", claims),
        ("claim: agent", agents),
        ("claim: server", server_side),
    ):
        ms = [v * 1000 for v in values]
        print(f"  {label:16} p50 {percentile(ms, 50):7.1f} ms   p99 {percentile(ms, 99):7.1f} ms")
    ratio = statistics.median(claims) / statistics.median(colds)
    print(f"  ratio claim/cold p50 {ratio:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    asyncio.run(main(parser.parse_args().runs))
