"""The measures of the benchmark suite (``python -m bench``), each next to its floor.

Every function returns :class:`Row` values: what was measured (p50/p99 of its samples)
and the floor measured in the same run on the same machine, so a row reads as a ratio
that does not depend on how fast the machine is. The floors are what the machine allows
for the same outcome without berth: a sandbox that starts Python and reads one answer
from the server; an HTTP request on a kept-alive connection; the imports alone.
"""

# ruff: noqa: ASYNC212

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from _bench import (
    BERTH,
    ISOLATION,
    RUNNING,
    Bench,
    Created,
    create,
    parse_time,
    percentile,
    session,
    timed_calls,
)
from sqlalchemy import event

from berth.api.server import running_server
from berth.settings import Settings

PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    unit: str
    samples: Sequence[float]
    floor_name: str = ""
    floor: Sequence[float] = ()
    goal: str = ""
    note: str = ""

    @property
    def p50(self) -> float:
        return percentile(list(self.samples), 50)

    @property
    def p99(self) -> float:
        return percentile(list(self.samples), 99)

    @property
    def ratio(self) -> float | None:
        if not self.floor:
            return None
        floor = percentile(list(self.floor), 50)
        return self.p50 / floor if floor else None


def ms(seconds: Sequence[float]) -> list[float]:
    return [s * 1000 for s in seconds]


# --- sandbox and HTTP floors ------------------------------------------------------------


def sandbox_floor(url: str, runs: int) -> list[float]:
    """bubblewrap (where installed) starting ``python3 -S`` that opens a TCP connection
    to the server and reads one answer: the least a cold create must do."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    script = (
        "import socket\n"
        f"s = socket.create_connection(({host!r}, {port}))\n"
        "s.sendall(b'GET /api/v1/health HTTP/1.0\\r\\n\\r\\n')\n"
        "s.recv(4096)\n"
    )
    argv = [PYTHON, "-S", "-c", script]
    if ISOLATION == "bwrap":
        argv = [
            "bwrap", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",  # noqa: S108 - inside the sandbox
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--",
            *argv,
        ]  # fmt: skip
    samples: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, timeout=30)
        samples.append(time.perf_counter() - started)
    return samples


async def http_floor(url: str, runs: int) -> list[float]:
    """``GET /api/v1/health`` on a kept-alive connection."""
    async with httpx.AsyncClient(base_url=url) as client:
        await client.get("/api/v1/health")
        samples: list[float] = []
        for _ in range(runs):
            started = time.perf_counter()
            (await client.get("/api/v1/health")).raise_for_status()
            samples.append(time.perf_counter() - started)
    return samples


# --- tool calls -------------------------------------------------------------------------


async def creates_and_calls(bench: Bench, runs: int) -> tuple[list[Row], str]:
    """Cold creates against the sandbox floor; a no-op tool call and ``execute true``
    against the HTTP floor; a 10 MB ``write_file``. Returns the rows and the id of a
    running workspace (for the memory row)."""
    await create(bench, {"template_id": bench.template_id})  # warm-up
    created = [await create(bench, {"template_id": bench.template_id}) for _ in range(runs)]
    floor = sandbox_floor(bench.url, runs)
    rows = [
        Row("cold create_workspace (MCP)", "ms", ms([c.seconds for c in created]),
            "sandbox + python3 -S + one TCP answer", ms(floor), "≤ 3x"),
    ]  # fmt: skip
    rows += create_phases(created)
    last = created[-1]
    chat_id = _chat_of(bench, str(last.workspace["id"]))
    http = ms(await http_floor(bench.url, runs * 5))
    async with session(bench.url, bench.token, chat_id) as client:
        await client.call_tool("process_list", {})
        noop = await timed_calls(client, "process_list", {}, runs * 5)
        true = await timed_calls(client, "execute", {"command": "true"}, runs * 5)
        content = "0123456789abcde\n" * (10 * 1024 * 1024 // 16)
        write = await timed_calls(client, "write_file", {"path": "ten.txt", "content": content}, 3)
    rows += [
        Row("no-op tool call (process_list)", "ms", ms(noop), "GET /health kept alive", http,
            "≤ 3x"),
        Row("execute true", "ms", ms(true), "GET /health kept alive", http, "≤ 5x"),
        Row("write_file 10 MB", "MB/s", [len(content) / 1e6 / s for s in write], goal="≥ 50"),
    ]  # fmt: skip
    return rows, str(created[0].workspace["id"])  # one no tool call has touched


_PHASES = (
    ("job created", "API, MCP, the create's transactions"),
    ("job started", "the job's pickup"),
    ("job completed", "sandbox launch (keeper, bwrap)"),
    ("agent connected", "supervisor, agent start, connect"),
    ("scripts started", "the agent's handshake"),
    ("agent ready", "the startup script (true)"),
    ("tool returned", "ready seen, answer sent"),
)


def create_phases(created: Sequence[Created]) -> list[Row]:
    """Where a cold create's time goes, from the timestamps the server recorded (one
    clock: the server's and this process's are the same machine's)."""
    spans: list[list[float]] = [[] for _ in _PHASES]
    for c in created:
        job = c.workspace["latest_build"]["job"]
        agent = c.workspace["agents"][0]
        points = [
            c.returned_at - dt.timedelta(seconds=c.seconds),
            *(parse_time(job[k]) for k in ("created_at", "started_at", "completed_at")),
            *(parse_time(agent[k]) for k in ("first_connected_at", "started_at", "ready_at")),
            c.returned_at,
        ]
        for i, (start, end) in enumerate(itertools.pairwise(points)):
            spans[i].append((end - start).total_seconds() * 1000)
    return [
        Row(f"  create: {name}", "ms", samples, note=what)
        for (name, what), samples in zip(_PHASES, spans, strict=True)
    ]


def _chat_of(bench: Bench, workspace_id: str) -> str:
    for chat in bench.api.get("/chats").json():
        if chat.get("workspace_id") == workspace_id:
            return str(chat["id"])
    raise AssertionError(f"no chat holds workspace {workspace_id}")


async def concurrent_creates(bench: Bench, count: int, cold: Row) -> Row:
    """``count`` chats calling ``create_workspace`` at once; the floor is one cold create."""
    results = await asyncio.gather(
        *(create(bench, {"template_id": bench.template_id}) for _ in range(count))
    )
    return Row(f"{count} concurrent create_workspace", "ms", ms([r.seconds for r in results]),
               "one cold create", cold.samples, "p99 ≤ 10x")  # fmt: skip


# --- memory -----------------------------------------------------------------------------


def idle_memory(data_dir: Path, workspace_id: str) -> Row:
    """Memory of every process of one idle workspace: its keeper and all the keeper's
    descendants (bwrap, supervisor, agent)."""
    state = json.loads(
        (data_dir / "workspaces" / "sandboxes" / workspace_id / "sandbox.json").read_text()
    )
    root = int(state["keeper_pid"])
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(proc.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        total += _pss(pid)
    return Row("idle workspace memory (PSS, all procs)", "MiB", [total / 2**20], goal="≤ 20")


def _pss(pid: int) -> int:
    """Proportional set size in bytes: shared pages divided among their users, so the
    sum over a workspace's processes is what they cost together (RSS counts a shared
    library once per process)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


# --- start-up ---------------------------------------------------------------------------


def timed_runs(argv: Sequence[str], runs: int, env: dict[str, str] | None = None) -> list[float]:
    samples: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, timeout=120, env=env)
        samples.append(time.perf_counter() - started)
    return samples


def server_start(runs: int) -> Row:
    """``berth server`` on a migrated data dir, from exec to its "running" line."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [str(BERTH), "server", "--data-dir", tmp, "--address", "127.0.0.1:0"]
        env = {**os.environ, "BERTH_PROVISIONER_WORKERS": "0"}
        samples = [_start_once(argv, env) for _ in range(runs + 1)][1:]  # the first migrates
    imports = timed_runs([sys.executable, "-c", "import berth.api.server, berth.cli.app"], runs)
    return Row("server start to healthy (migrated)", "ms", ms(samples),
               "import berth.api.server, berth.cli", ms(imports), "≤ 1500 ms")  # fmt: skip


def _start_once(argv: Sequence[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if RUNNING.search(line):
                return time.perf_counter() - started
        raise AssertionError("the server did not start")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()


def cli_help(runs: int) -> Row:
    samples = timed_runs([str(BERTH), "--help"], runs)
    floor = timed_runs([sys.executable, "-c", "pass"], runs)
    return Row("berth --help", "ms", ms(samples), "python -c pass", ms(floor), "≤ 300 ms")


# --- listings: queries per request --------------------------------------------------------


async def listing_queries(sizes: Sequence[int]) -> list[Row]:
    """SQL statements of ``GET /workspaces`` and ``list_templates`` with each of ``sizes``
    of each, smallest first (fake backend, builds left queued): a constant count is the
    goal."""
    with tempfile.TemporaryDirectory() as tmp:
        # No built-in workers: the workspaces' builds stay queued, so no background work
        # runs statements while a listing is counted.
        settings = Settings(
            data_dir=Path(tmp),
            address="127.0.0.1:0",
            fake_backend=True,
            install_examples=False,
            provisioner_workers=0,
        )
        with running_server(settings) as server:
            assert server.runtime.bootstrapped is not None
            token = server.runtime.bootstrapped.token
            engine = server.runtime.db.engine.sync_engine
            counted: list[int] = [0]

            def count(*_: object) -> None:
                counted[0] += 1

            event.listen(engine, "before_cursor_execute", count)
            api = httpx.Client(
                base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {token}"},
                timeout=120,
            )  # fmt: skip
            fake = "backend:\n  type: fake\n"
            chat_id = str(api.post("/chats", json={}).json()["id"])
            bench = Bench(server.url, token, api, "", Path(tmp))

            async def measure(what: Callable[[], object]) -> tuple[int, float]:
                counted[0] = 0
                started = time.perf_counter()
                result = what()
                if asyncio.iscoroutine(result):
                    await result
                return counted[0], time.perf_counter() - started

            async def list_templates() -> None:
                async with session(bench.url, bench.token, chat_id) as client:
                    assert not (await client.call_tool("list_templates", {})).is_error

            rows: list[Row] = []
            made_t = made_w = 0
            for size in sorted(sizes):
                for i in range(made_t, size):
                    files = {"template.yaml": f"name: t{i:04d}\n{fake}"}
                    api.post("/templates", json={"files": files}).raise_for_status()
                for i in range(made_w, size):
                    body = {"name": f"w{i:04d}", "template": "t0000"}
                    api.post("/workspaces", json=body).raise_for_status()
                made_t = made_w = size
                queries, seconds = await measure(lambda: api.get("/workspaces").raise_for_status())
                rows.append(Row(f"GET /workspaces, {size} workspaces", "queries", [queries],
                                goal="constant", note=f"{seconds * 1000:.0f} ms"))  # fmt: skip
                queries, seconds = await measure(list_templates)
                rows.append(Row(f"list_templates, {size} templates", "queries", [queries],
                                goal="constant", note=f"{seconds * 1000:.0f} ms"))  # fmt: skip
            api.close()
    return rows
