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

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx
from _bench import ISOLATION, bench_server, create, parse_time, report

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
    colds: list[float] = []
    claims: list[float] = []
    agents: list[float] = []
    async with bench_server(TEMPLATE.format(isolation=ISOLATION)) as bench:
        api = bench.api
        (preset,) = api.get(f"/templates/{bench.template_id}").json()["presets"]
        cold_args = {"template_id": bench.template_id}
        claim_args = {"template_id": bench.template_id, "preset_id": preset["id"]}
        settle(api)
        for args in (claim_args, cold_args):  # warm-up: imports, caches
            settle(api, (await create(bench, args)).workspace["name"])
        for _ in range(runs):
            cold = await create(bench, cold_args)
            colds.append(cold.seconds)
            settle(api, cold.workspace["name"])
            claim = await create(bench, claim_args)
            workspace = claim.workspace
            assert workspace["latest_build"]["reason"] == "claim", workspace["latest_build"]
            agent = workspace["agents"][0]
            ran = parse_time(agent["ready_at"]) - parse_time(agent["started_at"])
            claims.append(claim.seconds)
            agents.append(ran.total_seconds())
            settle(api, workspace["name"])
    server_side = [c - a for c, a in zip(claims, agents, strict=True)]
    print(f"claim vs cold create_workspace, local backend ({ISOLATION}), {runs} runs, SQLite")
    for label, values in (
        ("cold create", colds),
        ("claim", claims),
        ("claim: agent", agents),
        ("claim: server", server_side),
    ):
        report(label, values)
    ratio = statistics.median(claims) / statistics.median(colds)
    print(f"  ratio claim/cold p50 {ratio:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    asyncio.run(main(parser.parse_args().runs))
