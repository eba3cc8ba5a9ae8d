"""The local backend for real: bubblewrap sandboxes, a stand-in agent, isolation probes.

Tests marked ``bwrap`` are skipped, with that reason, where bubblewrap is not on PATH;
the refusal for a missing bwrap is tested everywhere.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from berth.domain.enums import Transition
from berth.errors import BuildFailed
from berth.provisioner.backends import _proc
from berth.provisioner.backends.local import BWRAP_MISSING, PREPARE_FAILED, LocalBackend
from berth.provisioner.spec import BuildSpec, ResourceRecord
from tests.support.backends import (
    LogLines,
    agent,
    build_spec,
    mark_of,
    next_build,
    processes_with,
    read_marker,
    template,
    write_stand_in_agent,
)
from tests.support.waiting import until

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T", bound=Callable[..., Any])


def needs_bwrap(test: T) -> T:
    skip = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not on PATH")
    return pytest.mark.bwrap(skip(test))


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def zipapp(tmp_path: Path) -> Path:
    return write_stand_in_agent(tmp_path)


@pytest.fixture
async def backend(state_dir: Path) -> AsyncIterator[LocalBackend]:
    """A backend whose sandboxes are all destroyed after the test, whatever happened."""
    made = LocalBackend(stop_timeout=2.0)
    yield made
    for state in (state_dir / "sandboxes").glob("*/sandbox.json"):
        await made.destroy(json.loads(state.read_text()))


def spec_for(state_dir: Path, zipapp: Path, **kwargs: Any) -> BuildSpec:
    backend = {"type": "local", **kwargs.pop("backend", {})}
    return build_spec(template(**backend), state_dir=state_dir, zipapp=zipapp, **kwargs)


def home_of(spec: BuildSpec) -> Path:
    return spec.state_dir / "homes" / str(spec.workspace_id)


def token_of(spec: BuildSpec) -> str:
    return spec.agents[0].token


def steady(records: list[ResourceRecord]) -> list[ResourceRecord]:
    """The records without what changes by itself (the home's disk use)."""
    return [
        replace(r, handle={k: v for k, v in r.handle.items() if k != "disk_used_bytes"})
        for r in records
    ]


def marked(spec: BuildSpec) -> list[int]:
    """Host pids of the first agent of ``spec`` and of everything it started."""
    return processes_with(mark_of(spec.agents[0]))


def gone(handle: dict[str, Any], spec: BuildSpec) -> bool:
    """No process of the sandbox in ``handle`` is left (zombies awaiting a reaper aside)."""
    ids = [
        _proc.ProcessId(int(handle[f"{k}_pid"]), int(handle[f"{k}_start"]))
        for k in ("keeper", "init")
        if handle.get(f"{k}_pid") is not None
    ]
    # The agent and what it starts carry its mark; the keeper and the sandbox's init
    # (the supervisor) are known by identity. The PID namespace's inode is no test: a
    # new namespace may reuse it.
    return not any(_proc.alive(p) for p in ids) and not marked(spec)


async def test_missing_bwrap_fails_the_build_and_says_what_to_do(
    state_dir: Path, zipapp: Path
) -> None:
    backend = LocalBackend(bwrap_path="/nonexistent/bwrap")
    spec = spec_for(state_dir, zipapp)
    with pytest.raises(BuildFailed) as failed:
        await backend.apply(spec, Transition.START, LogLines())
    assert failed.value.code == BWRAP_MISSING
    assert "bubblewrap" in failed.value.message
    assert "apt-get install bubblewrap" in failed.value.message
    assert "isolation: none" in failed.value.message
    assert await backend.apply(spec, Transition.DELETE, LogLines()) == []  # needs no bwrap


@needs_bwrap
@pytest.mark.parametrize("network", [True, False])
async def test_agents_run_in_the_sandbox_and_reach_the_server(
    backend: LocalBackend, state_dir: Path, zipapp: Path, network: bool
) -> None:
    async def pong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await reader.readline() == b"ping\n":
            writer.write(b"pong\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(pong, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    agents = [agent("main", PING="1", GREETING="hi"), agent("second"), agent("far", external=True)]
    spec = spec_for(
        state_dir,
        zipapp,
        backend={"network": network},
        agents=agents,
        server_url=f"http://localhost:{port}",
    )
    log = LogLines()
    async with server:
        records = await backend.apply(spec, Transition.START, log)
        main = await read_marker(home_of(spec), "main")
        second = await read_marker(home_of(spec), "second")
    assert [r.type for r in records] == ["local_sandbox", "local_home"]
    assert (await backend.inspect(records[0].handle)).running
    env = main["env"]
    # The token came on the control socket, never through an environment.
    assert (main["token"], second["token"]) == (agents[0].token, agents[1].token)
    assert "BERTH_AGENT_TOKEN" not in env
    assert "BERTH_AGENT_TOKEN" not in second["env"]
    assert (env["BERTH_AGENT_NAME"], env["BERTH_WORKSPACE_NAME"]) == ("main", "my-workspace")
    assert (env["HOME"], env["USER"], env["GREETING"]) == ("/home/alice", "alice", "hi")
    assert main["argv"] == ["/opt/berth/berth-agent.pyz"]
    assert (main["uid"], main["cwd"], main["hostname"]) == (1000, "/home/alice", "my-workspace")
    assert main["ping"] == "pong"  # with or without a network: through the relay
    assert env["BERTH_AGENT_URL"] == f"http://localhost:{port}"  # localhost is the relay
    assert not (home_of(spec) / "marker-far.json").exists()
    assert sorted(main["interfaces"]) == (["lo", "tap0"] if network else ["lo"])
    assert any("started bubblewrap sandbox" in line for line in log.of("apply"))


@needs_bwrap
async def test_the_sandbox_sees_nothing_of_the_host_it_should_not(
    backend: LocalBackend, state_dir: Path, zipapp: Path
) -> None:
    other = spec_for(state_dir, zipapp, owner="bob", name="other")
    await backend.apply(other, Transition.START, LogLines())
    await read_marker(home_of(other))
    probes = [
        str(state_dir),
        str(home_of(other)),
        "/home/bob",
        str(REPO),
        "/etc/shadow",
        "/etc/sudoers",
        "/root",
        "/var/lib",
    ]
    writes = ["/usr/berth-probe", "/etc/berth-probe", "/berth-probe", "/home/alice/probe"]
    spec = spec_for(
        state_dir,
        zipapp,
        agents=[
            agent(
                PROBES=json.dumps(probes),
                WRITE_PROBES=json.dumps(writes),
                SECRETS=json.dumps([token_of(other)[::-1]]),
            )
        ],
    )
    await backend.apply(spec, Transition.START, LogLines())
    report = await read_marker(home_of(spec))
    for path in probes:
        assert report["probes"][path] == {"exists": False, "list": False, "read": False}, path
    assert report["writable"] == {**dict.fromkeys(writes[:-1], False), "/home/alice/probe": True}
    assert report["secrets_seen"] == []
    assert len(report["pids"]) < 10  # its own PID namespace: the supervisor, the agent


@needs_bwrap
async def test_applying_a_build_twice_leaves_one_sandbox_and_a_new_build_replaces_it(
    backend: LocalBackend, state_dir: Path, zipapp: Path
) -> None:
    spec = spec_for(state_dir, zipapp)
    first = await backend.apply(spec, Transition.START, LogLines())
    await read_marker(home_of(spec))
    again = await backend.apply(spec, Transition.START, LogLines())
    assert steady(again) == steady(first)
    starts = home_of(spec) / "starts-main.log"
    assert len(starts.read_text().split()) == 1

    later_spec = next_build(spec, agents=[agent()])
    later = await backend.apply(later_spec, Transition.START, LogLines())
    await until(lambda: len(starts.read_text().split()) == 2)
    await until(lambda: gone(first[0].handle, spec))
    assert not (await backend.inspect(first[0].handle)).exists
    assert (await backend.inspect(later[0].handle)).running
    assert marked(later_spec)


@needs_bwrap
async def test_stop_kills_everything_keeps_the_home_and_start_sees_it_again(
    backend: LocalBackend, state_dir: Path, zipapp: Path
) -> None:
    spec = spec_for(state_dir, zipapp, agents=[agent(DETACH="1")])
    started = await backend.apply(spec, Transition.START, LogLines())
    await read_marker(home_of(spec))
    # the agent and its detached child (bwrap and the supervisor are known by identity)
    assert len(marked(spec)) == 2
    (home_of(spec) / "work.txt").write_text("keep me")
    stopped = [await backend.apply(next_build(spec), Transition.STOP, LogLines()) for _ in "12"]
    assert steady(stopped[0]) == steady(stopped[1])  # the second stop is a no-op
    assert [r.type for r in stopped[0]] == ["local_home"]
    assert gone(started[0].handle, spec)
    assert not (await backend.inspect(started[0].handle)).exists
    assert (await backend.inspect(stopped[0][0].handle)).exists

    (home_of(spec) / "marker-main.json").unlink()
    restarted = next_build(spec, agents=[agent()])
    await backend.apply(restarted, Transition.START, LogLines())
    await read_marker(home_of(spec))
    assert (home_of(spec) / "work.txt").read_text() == "keep me"
    assert len((home_of(spec) / "starts-main.log").read_text().split()) == 2


@needs_bwrap
async def test_delete_removes_the_home_and_every_process_and_is_idempotent(
    backend: LocalBackend, state_dir: Path, zipapp: Path
) -> None:
    spec = spec_for(state_dir, zipapp, backend={"network": False})
    started = await backend.apply(spec, Transition.START, LogLines())
    await read_marker(home_of(spec))
    readonly = home_of(spec) / "ro" / "deep"
    readonly.mkdir(parents=True)
    (readonly / "file").write_text("x")
    (readonly / "file").chmod(0o400)
    readonly.chmod(0o500)
    for _ in range(2):
        assert await backend.apply(next_build(spec), Transition.DELETE, LogLines()) == []
    assert not home_of(spec).exists()
    assert not (state_dir / "sandboxes" / str(spec.workspace_id)).exists()
    assert gone(started[0].handle, spec)


@needs_bwrap
async def test_prepare_runs_in_the_home_and_its_failure_fails_the_build_with_its_output(
    backend: LocalBackend, state_dir: Path, zipapp: Path
) -> None:
    ok = spec_for(state_dir, zipapp, backend={"prepare": "echo prepared > done.txt; id -un"})
    log = LogLines()
    await backend.apply(ok, Transition.START, log)
    assert (home_of(ok) / "done.txt").read_text() == "prepared\n"
    assert log.of("prepare") == ["alice"]

    script = "echo step one; echo broken >&2; exit 3"
    bad = spec_for(state_dir, zipapp, backend={"prepare": script})
    log = LogLines()
    with pytest.raises(BuildFailed) as failed:
        await backend.apply(bad, Transition.START, log)
    assert failed.value.code == PREPARE_FAILED
    assert "status 3" in failed.value.message
    assert "step one\nbroken" in failed.value.message
    assert log.of("prepare") == ["step one", "broken"]
    assert not marked(bad)
    assert not (state_dir / "sandboxes" / str(bad.workspace_id) / "sandbox.json").exists()


@needs_bwrap
async def test_a_new_backend_finds_the_running_sandbox_and_destroy_is_idempotent(
    backend: LocalBackend, state_dir: Path, zipapp: Path
) -> None:
    spec = spec_for(state_dir, zipapp)
    started = await backend.apply(spec, Transition.START, LogLines())
    await read_marker(home_of(spec))
    after_restart = LocalBackend()
    sandbox, home = (r.handle for r in started)
    assert (await after_restart.inspect(sandbox)).running
    reused = await after_restart.apply(spec, Transition.START, LogLines())
    assert steady(reused) == steady(started)
    for _ in range(2):
        await after_restart.destroy(sandbox)
        assert gone(sandbox, spec)
        assert not (await after_restart.inspect(sandbox)).exists
    assert (await after_restart.inspect(home)).exists
    for _ in range(2):
        await after_restart.destroy(home)
    assert not (await after_restart.inspect(home)).exists


async def test_a_reused_pid_is_never_signalled(backend: LocalBackend, tmp_path: Path) -> None:
    bystander = await asyncio.create_subprocess_exec("sleep", "60")
    try:
        stat = _proc.read_stat(bystander.pid)
        assert stat is not None
        handle = {
            "kind": "sandbox",
            "mode": "none",
            "keeper_pid": bystander.pid,
            "keeper_start": stat.start_time - 1,  # an earlier process that had this pid
            "run_dir": str(tmp_path),
        }
        assert not (await backend.inspect(handle)).exists
        await backend.destroy(handle)
        assert bystander.returncode is None
        assert _proc.alive(_proc.ProcessId(bystander.pid, stat.start_time))
    finally:
        bystander.send_signal(signal.SIGKILL)
        await bystander.wait()


async def test_isolation_none_runs_the_agent_on_the_host_with_the_workspace_home(
    backend: LocalBackend, state_dir: Path, zipapp: Path
) -> None:
    spec = spec_for(
        state_dir,
        zipapp,
        backend={"isolation": "none", "prepare": "pwd"},
        agents=[agent(DETACH="1")],
    )
    log = LogLines()
    started = await backend.apply(spec, Transition.START, log)
    report = await read_marker(home_of(spec))
    assert len(marked(spec)) == 2  # the agent and its detached child
    assert report["env"]["HOME"] == str(home_of(spec))
    assert report["cwd"] == str(home_of(spec))
    assert log.of("prepare") == [str(home_of(spec))]
    assert any("without a sandbox" in line for line in log.of("apply"))
    assert (await backend.inspect(started[0].handle)).running
    await backend.apply(next_build(spec), Transition.STOP, LogLines())
    assert gone(started[0].handle, spec)
