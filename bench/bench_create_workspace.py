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

from __future__ import annotations

import argparse
import asyncio
import statistics

from _bench import ISOLATION, NOOP_TEMPLATE, Bench, bench_server, create, parse_time, report


async def one_create(bench: Bench) -> tuple[float, float, float]:
    """``(total, floor, gap)`` of one cold create (see the module's docstring)."""
    created = await create(bench, {"template_id": bench.template_id})
    assert "startup_scripts" not in created.result, created.result
    workspace = created.workspace
    ready = parse_time(workspace["agents"][0]["ready_at"])
    job_started = parse_time(workspace["latest_build"]["job"]["started_at"])
    bench.api.delete(f"/workspaces/{workspace['name']}")
    floor = (ready - job_started).total_seconds()
    return created.seconds, floor, (created.returned_at - ready).total_seconds()


async def main(runs: int) -> None:
    async with bench_server(NOOP_TEMPLATE) as bench:
        await one_create(bench)  # warm-up: imports, caches
        samples = [await one_create(bench) for _ in range(runs)]
    totals, floors, gaps = ([s[i] for s in samples] for i in range(3))
    print(f"cold create_workspace, local backend ({ISOLATION}), {runs} runs, SQLite")
    for label, values in (("total", totals), ("floor", floors), ("gap (return - ready)", gaps)):
        report(label, values)
    ratio = statistics.median(t / f for t, f in zip(totals, floors, strict=True))
    print(f"  ratio total/floor      p50 {ratio:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    asyncio.run(main(parser.parse_args().runs))
