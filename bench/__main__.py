"""The benchmark suite: every performance row against its floor, in one run, one table.

    uv run python -m bench [--runs 10] [--concurrent 100] [--quick] [--only NAME[,NAME]]

A real server (SQLite, built-in provisioner, bubblewrap where installed) with a
template whose only startup script is ``true``: cold creates over MCP next to a sandbox
that starts Python and reads one answer from the server; a no-op tool call and
``execute true`` next to a kept-alive HTTP request; a 10 MB ``write_file``; the memory
of an idle workspace; ``count`` chats creating at once next to one cold create. Then,
in processes of their own: server start next to its imports, ``berth --help`` next to
``python -c pass``; and the SQL statements of the listings at two sizes (fake backend).
Ratios are p50 over the floor's p50; goals are issue 12's. ``--quick`` skips the
concurrent creates and uses small sizes. ``--only`` runs some of the measures, by the
names in :data:`MEASURES` (``memory`` and ``concurrent`` run ``creates`` too: they need
its workspace and its cold create).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _bench import ISOLATION, NOOP_TEMPLATE, bench_server
from _measures import (
    Row,
    cli_help,
    concurrent_creates,
    creates_and_calls,
    idle_memory,
    listing_queries,
    server_start,
)

MEASURES = ("creates", "memory", "concurrent", "server-start", "cli-help", "listings")
"""The names ``--only`` takes: cold creates with the tool calls and write_file, idle
memory, concurrent creates, server start, ``berth --help``, the listings' queries."""


async def run(runs: int, concurrent: int, quick: bool, only: frozenset[str]) -> list[Row]:
    rows: list[Row] = []
    if only & {"creates", "memory", "concurrent"}:
        async with bench_server(NOOP_TEMPLATE) as bench:
            measured, workspace_id = await creates_and_calls(bench, runs)
            rows += measured
            if "memory" in only:
                rows.append(idle_memory(bench.data_dir, workspace_id))
            if "concurrent" in only and not quick and concurrent:
                rows.append(await concurrent_creates(bench, concurrent, measured[0]))
    if "server-start" in only:
        rows.append(server_start(max(3, runs // 3)))
    if "cli-help" in only:
        rows.append(cli_help(max(3, runs // 2)))
    if "listings" in only:
        rows += await listing_queries((1, 20) if quick else (1, 20, 200))
    return rows


def measures(value: str) -> frozenset[str]:
    """``--only``'s comma-separated names, each one of :data:`MEASURES`."""
    names = frozenset(name.strip() for name in value.split(",") if name.strip())
    unknown = sorted(names - set(MEASURES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown measure {', '.join(unknown) or '(none)'}: choose from {', '.join(MEASURES)}"
        )
    return names


def print_table(rows: list[Row]) -> None:
    print(f"\nberth benchmarks — {platform.node()}: {os.cpu_count()} CPUs, {platform.machine()},")
    print(f"Python {platform.python_version()}, {platform.platform()}, isolation {ISOLATION}\n")
    header = (
        f"{'measure':40} {'p50':>9} {'p99':>9}  {'unit':7} {'floor (same run)':38}"
        f" {'floor p50':>9} {'ratio':>7}  goal"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        floor = f"{sorted(r.floor)[len(r.floor) // 2]:9.1f}" if r.floor else " " * 9
        ratio = f"{r.ratio:6.1f}x" if r.ratio is not None else " " * 7
        note = f"  ({r.note})" if r.note else ""
        print(
            f"{r.name:40} {r.p50:9.1f} {r.p99:9.1f}  {r.unit:7} {r.floor_name:38} {floor} {ratio}"
            f"  {r.goal}{note}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=10, help="samples per measure (default 10)")
    parser.add_argument("--concurrent", type=int, default=100, help="chats creating at once")
    parser.add_argument("--quick", action="store_true", help="no concurrent creates, small sizes")
    parser.add_argument(
        "--only",
        type=measures,
        default=frozenset(MEASURES),
        metavar="NAME[,NAME]",
        help=f"run only these measures: {', '.join(MEASURES)}",
    )
    args = parser.parse_args()
    print_table(asyncio.run(run(args.runs, args.concurrent, args.quick, args.only)))


main()
