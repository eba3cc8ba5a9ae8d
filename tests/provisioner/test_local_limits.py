"""Limits of local workspaces: memory, processes, ``/tmp``, the home; and what cannot be held.

The workspace tests run the real agent in a real sandbox through the chat tools, and
read the workspace's cgroups from the host to check the kernel's own account. The
refusal tests use the stand-in agent and a host without cgroups (``detect`` replaced).
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from berth.domain.enums import Transition
from berth.errors import BuildFailed
from berth.provisioner.backends import _cgroups
from berth.provisioner.backends._local_disk import disk_tools_missing
from berth.provisioner.backends.local import LIMITS_UNAVAILABLE, LocalBackend
from tests.support.backends import (
    LocalChat,
    LogLines,
    build_spec,
    local_chat,
    next_build,
    read_marker,
    template,
    write_stand_in_agent,
)
from tests.support.waiting import until

pytestmark = [pytest.mark.anyio, pytest.mark.bwrap]

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap is not on PATH")
HOST = _cgroups.detect()
needs_cgroups = pytest.mark.skipif(
    any(
        HOST.for_controller(c) is None or HOST.for_controller(c).base is None  # type: ignore[union-attr]
        for c in ("memory", "pids")
    ),
    reason=f"this host cannot give berth memory and pids cgroups ({HOST.describe()})",
)
needs_root_disk = pytest.mark.skipif(
    os.geteuid() != 0 or bool(disk_tools_missing()),
    reason="a home of bounded size needs root and e2fsprogs",
)

COUNT = 'n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo "$n"'
"""How many processes the sandbox has, with shell builtins only (no fork needed)."""
KILL_SLEEPS = (
    'for d in /proc/[0-9]*; do read -r c < "$d/comm" 2>/dev/null || continue; '
    '[ "$c" = sleep ] && kill -9 "${d#/proc/}"; done; echo cleared'
)


def _workload(chat_handle: dict[str, Any], name: str) -> int:
    """A counter of the workspace's ``workload`` cgroup, read on the host."""
    for directory in chat_handle["cgroups"]:
        path = Path(directory) / "workload" / name
        if path.exists():
            return int(path.read_text().split()[0])
    raise AssertionError(f"no {name} in {chat_handle['cgroups']}")


async def _output(chat: LocalChat, command: str) -> str:
    return str((await chat.run(command))["output"])


@needs_bwrap
@needs_cgroups
async def test_a_workspace_is_held_to_its_limits_and_its_agent_survives_them(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = {"memory": "256m", "pids": 200, "tmp_size": "64m", "network": False}
    async with local_chat(database_url, tmp_path, monkeypatch, **limits) as chat:
        handle = await chat.sandbox_handle()

        for place in ("/tmp", "/dev/shm"):
            wrote = await _output(chat, f"dd if=/dev/zero of={place}/big bs=1M count=200 2>&1")
            assert "No space left on device" in wrote, wrote
            size = int(await _output(chat, f"stat -c %s {place}/big"))
            assert 60 << 20 <= size <= 64 << 20
            await chat.run(f"rm -f {place}/big")

        hog = await chat.run("python3 -c 'b = bytearray(700 * 1024 * 1024); print(\"allocated\")'")
        assert hog["exit_code"] == 137, hog  # killed by the workload's own OOM killer
        assert "allocated" not in hog["output"]
        assert (await _output(chat, "echo alive")).strip() == "alive"

        storm = await chat.ok(
            "execute",
            {
                "command": "for i in $(seq 400); do sleep 300 & done; wait",
                "run_in_background": True,
            },
        )
        storm_id = storm["background_process_id"]
        await until(lambda: _workload(handle, "pids.current"), lambda n: n >= 190, within=60)
        await until(
            lambda: chat.ok("process_output", {"process_id": storm_id, "wait_timeout": "1s"}),
            lambda out: "Cannot fork" in out["output"] or "fork" in out["output"],
            within=60,
        )
        assert _workload(handle, "pids.current") <= 200
        inside = int(await _output(chat, COUNT))
        assert 190 <= inside <= 210  # the sleeps, plus the supervisor, agent and this shell
        assert (await _output(chat, "echo alive")).strip() == "alive"
        assert (await _output(chat, KILL_SLEEPS)).strip() == "cleared"
        await until(lambda: _workload(handle, "pids.current"), lambda n: n < 10, within=30)
        assert (await _output(chat, "ls / >/dev/null && echo forks-again")).strip() == "forks-again"


# --- limits the host cannot hold ------------------------------------------------------------


@pytest.fixture
def no_cgroups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cgroups, "detect", lambda *a, **k: _cgroups.CgroupHost(()))  # type: ignore[misc]


@needs_bwrap
async def test_a_limit_the_host_cannot_enforce_fails_the_build_and_says_which(
    tmp_path: Path, no_cgroups: None
) -> None:
    backend = LocalBackend(stop_timeout=2.0)
    zipapp = write_stand_in_agent(tmp_path)
    doc = template(type="local", network=False, memory="256m", cpus=1)
    spec = build_spec(doc, state_dir=tmp_path / "state", zipapp=zipapp)
    with pytest.raises(BuildFailed) as failed:
        await backend.apply(spec, Transition.START, LogLines())
    assert failed.value.code == LIMITS_UNAVAILABLE
    assert "memory: the host has no memory cgroup controller" in failed.value.message
    assert "cpus: the host has no cpu cgroup controller" in failed.value.message
    assert "limits: best-effort" in failed.value.message
    assert not (tmp_path / "state" / "sandboxes" / str(spec.workspace_id) / "sandbox.json").exists()


@needs_bwrap
async def test_best_effort_runs_without_what_the_host_cannot_enforce_and_says_so(
    tmp_path: Path, no_cgroups: None
) -> None:
    backend = LocalBackend(stop_timeout=2.0)
    zipapp = write_stand_in_agent(tmp_path)
    doc = template(type="local", network=False, memory="256m", limits="best-effort")
    spec = build_spec(doc, state_dir=tmp_path / "state", zipapp=zipapp)
    log = LogLines()
    try:
        await backend.apply(spec, Transition.START, log)
        await read_marker(tmp_path / "state" / "homes" / str(spec.workspace_id))
        warned = [text for _, level, text in log.lines if level == "warn"]
        assert any(t.startswith("not enforced: memory:") for t in warned), warned
        assert any(t.startswith("not enforced: pids:") for t in warned), warned  # the default
    finally:
        await backend.apply(next_build(spec), Transition.DELETE, LogLines())


@needs_bwrap
async def test_the_default_pids_limit_only_warns_where_it_cannot_be_held(
    tmp_path: Path, no_cgroups: None
) -> None:
    backend = LocalBackend(stop_timeout=2.0)
    zipapp = write_stand_in_agent(tmp_path)
    spec = build_spec(
        template(type="local", network=False), state_dir=tmp_path / "state", zipapp=zipapp
    )
    log = LogLines()
    try:
        await backend.apply(spec, Transition.START, log)
        warned = [text for _, level, text in log.lines if level == "warn"]
        assert any(t.startswith("not enforced: pids:") for t in warned), warned
    finally:
        await backend.apply(next_build(spec), Transition.DELETE, LogLines())


# --- the home's size ------------------------------------------------------------------------


@needs_bwrap
@needs_root_disk
async def test_disk_bounds_the_home_which_keeps_its_files_across_stop_and_start(
    tmp_path: Path,
) -> None:
    backend = LocalBackend(stop_timeout=2.0)
    zipapp = write_stand_in_agent(tmp_path)
    state = tmp_path / "state"
    spec = build_spec(
        template(type="local", network=False, disk="64m"), state_dir=state, zipapp=zipapp
    )
    home = state / "homes" / str(spec.workspace_id)
    image = state / "homes" / f"{spec.workspace_id}.img"
    try:
        records = await backend.apply(spec, Transition.START, LogLines())
        await read_marker(home)
        handle = records[1].handle
        assert handle["disk_limit_bytes"] == 64 << 20
        assert await asyncio.to_thread(os.path.ismount, home)
        assert await asyncio.to_thread(_fill, home / "big", 100 << 20) == errno.ENOSPC
        (home / "big").unlink()
        (home / "kept.txt").write_text("kept")
        detail = (await backend.inspect(handle)).detail
        assert f"of {64 << 20}" in detail
        used = await backend.home_usage(handle)
        assert used is not None
        assert 0 < used < 64 << 20

        stopped = await backend.apply(next_build(spec), Transition.STOP, LogLines())
        assert not await asyncio.to_thread(os.path.ismount, home)
        assert image.exists()
        # Measured on its own file system before it was unmounted: what `show` reports.
        assert stopped[0].handle["disk_limit_bytes"] == 64 << 20
        assert 0 < stopped[0].handle["disk_used_bytes"] < 64 << 20
        again = next_build(spec)
        await backend.apply(again, Transition.START, LogLines())
        assert await asyncio.to_thread(os.path.ismount, home)
        assert (home / "kept.txt").read_text() == "kept"
    finally:
        await backend.apply(next_build(spec), Transition.DELETE, LogLines())
    assert not home.exists()
    assert not image.exists()


def _fill(path: Path, size: int) -> int | None:
    """Write ``size`` bytes to ``path``, synced; the errno that stopped it (None: none did)."""
    try:
        with open(path, "wb") as f:
            for _ in range(size >> 20):
                f.write(b"\0" * (1 << 20))
                f.flush()
                os.fsync(f.fileno())
    except OSError as err:
        return err.errno
    return None


# --- cgroup v2 (this machine has v1; the layout is checked on a file tree) --------------------


V2_MOUNTINFO = "30 23 0:26 / {root} rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw\n"
V1_MOUNTINFO = (
    "31 25 0:27 / {root}/memory rw,relatime - cgroup cgroup rw,memory\n"
    "32 25 0:28 / {root}/pids rw,relatime - cgroup cgroup rw,pids\n"
    "33 25 0:29 / {root}/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "34 25 0:30 / {root}/unified rw,relatime - cgroup2 cgroup2 rw\n"
)


def test_cgroup_v2_gets_one_tree_with_the_controllers_enabled_and_the_limits_written(
    tmp_path: Path,
) -> None:
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "cgroup.subtree_control").write_text("memory\n")
    host = _cgroups.detect(V2_MOUNTINFO.format(root=root), "0::/\n", root=True)
    assert [(h.version, sorted(h.controllers)) for h in host.hierarchies] == [
        (2, ["cpu", "memory", "pids"])
    ]
    asked = _cgroups.LimitsAsked(memory=256 << 20, pids=200, cpus=1.5)
    made = _cgroups.setup(host, "ws", asked)
    ws = root / "berth" / "ws"
    assert made.dirs == (ws,)
    assert (root / "cgroup.subtree_control").read_text() == "+pids"  # memory was on; cpu next
    assert (ws / "workload" / "memory.max").read_text() == str(256 << 20)
    assert (ws / "workload" / "pids.max").read_text() == "200"
    assert (ws / "cpu.max").read_text() == "150000 100000"
    assert made.agent_procs == [str(ws / "agent" / "cgroup.procs")]
    assert _cgroups.unenforceable(host, asked) == []


def test_cgroup_v1_hosts_use_one_hierarchy_per_controller(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    for name in ("memory", "pids", "cpu,cpuacct", "unified"):
        (root / name).mkdir(parents=True)
    (root / "unified" / "cgroup.controllers").write_text("")
    host = _cgroups.detect(V1_MOUNTINFO.format(root=root), "0::/\n", root=True)
    by = {c: host.for_controller(c) for c in ("memory", "pids", "cpu")}
    assert {c: (h.version, h.mount.name) for c, h in by.items() if h} == {
        "memory": (1, "memory"),
        "pids": (1, "pids"),
        "cpu": (1, "cpu,cpuacct"),
    }
    made = _cgroups.setup(host, "ws", _cgroups.LimitsAsked(memory=1 << 30, pids=50, cpus=None))
    assert (
        root / "memory" / "berth" / "ws" / "workload" / "memory.limit_in_bytes"
    ).read_text() == str(1 << 30)
    assert (root / "pids" / "berth" / "ws" / "workload" / "pids.max").read_text() == "50"
    assert (root / "cpu,cpuacct" / "berth" / "ws" / "cpu.cfs_quota_us").read_text() == "-1"
    assert len(made.workload_procs) == 3


def test_an_unprivileged_server_without_delegation_cannot_enforce_limits() -> None:
    mountinfo = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    host = _cgroups.detect(
        mountinfo, "0::/user.slice/user-1000.slice/session-2.scope\n", root=False
    )
    problems = _cgroups.unenforceable(host, _cgroups.LimitsAsked(memory=1, pids=1, cpus=None))
    assert problems
    assert all("may not create cgroups" in p or "no " in p for p in problems)
    assert json.dumps(problems)  # plain text, for the build error
