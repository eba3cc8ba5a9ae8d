"""What a Docker workspace cannot do: reach the host, run as root, outgrow its limits.

The backend for real (the fixtures of ``test_backend_docker``): each test starts a
workspace with the stand-in agent and probes it from inside with ``docker exec``, which
runs as the container's user, in its cgroup and its network namespace. The route
planning and the firewall's refusals are tested without an engine.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import shutil
import socket
import struct
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import docker
import pytest
from docker.models.containers import Container

from berth.domain.enums import Transition
from berth.errors import BuildFailed
from berth.provisioner.backends import docker as docker_module
from berth.provisioner.backends._docker_net import BRIDGE, ensure_host_firewall, plan_route
from berth.provisioner.backends.docker import (
    HOST_FIREWALL_UNAVAILABLE,
    LIMITS_UNAVAILABLE,
    DockerBackend,
)
from tests.provisioner.test_backend_docker import (
    cleaning_backend,
    engine_client,
    exists,
    marker,
    pong_server,
    spec_for,
)
from tests.support.backends import LogLines, agent, is_root, write_stand_in_agent
from tests.support.waiting import until

pytestmark = pytest.mark.anyio

CONNECT = r"""
import json, socket, sys
out = {}
for host, port in json.loads(sys.argv[1]):
    try:
        socket.create_connection((host, port), timeout=5).close()
        out["%s:%d" % (host, port)] = "open"
    except OSError as err:
        out["%s:%d" % (host, port)] = type(err).__name__
print(json.dumps(out))
"""

GATEWAY = r"""
for line in open("/proc/net/route").readlines()[1:]:
    fields = line.split()
    if fields[1] == "00000000":
        g = int(fields[2], 16)
        print(".".join(str((g >> s) & 255) for s in (0, 8, 16, 24)))
"""

SPAWN = r"""
import json, os, signal, subprocess
children = []
for _ in range(400):
    try:
        children.append(subprocess.Popen(["sleep", "1000"]))
    except OSError:
        break
count = sum(1 for p in os.listdir("/proc") if p.isdigit())
for child in children:
    child.kill()
    child.wait()
print(json.dumps({"started": len(children), "processes": count}))
"""


@pytest.fixture
def engine() -> Iterator[docker.DockerClient]:
    with engine_client() as made:
        yield made


@pytest.fixture
async def workspaces(engine: docker.DockerClient) -> AsyncIterator[DockerBackend]:
    async with cleaning_backend(engine) as made:
        yield made


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return write_stand_in_agent(tmp_path)


def host_addresses() -> list[str]:
    """This host's own IPv4 addresses, loopback excepted."""
    found: list[str] = []
    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:  # SIOCGIFADDR
                packed = fcntl.ioctl(
                    probe.fileno(), 0x8915, struct.pack("256s", name[:15].encode())
                )
            except OSError:
                continue
        address = socket.inet_ntoa(packed[20:24])
        if not address.startswith("127."):
            found.append(address)
    return found


async def run_in(container: Container, *argv: str) -> tuple[int, str]:
    code, output = await asyncio.to_thread(container.exec_run, list(argv))
    return -1 if code is None else code, cast("bytes", output).decode()


async def started(
    workspaces: DockerBackend, engine: docker.DockerClient, app: Path, tmp_path: Path, **kw: Any
) -> tuple[Container, dict[str, Any]]:
    """Start a workspace whose agent pings a stand-in server on the host's loopback."""
    server, port = await pong_server()
    spec = spec_for(
        app,
        tmp_path,
        agents=[agent("main", PING="1", WRITE_PROBES=kw.pop("write_probes", "[]"))],
        server_url=f"http://127.0.0.1:{port}",
        **kw,
    )
    async with server:
        await workspaces.apply(spec, Transition.START, LogLines())
        report = await marker(engine, spec)
    container = await asyncio.to_thread(engine.containers.get, f"berth-{spec.workspace_id}")
    return container, cast("dict[str, Any]", report)


# --- the network ------------------------------------------------------------------


@pytest.mark.docker
async def test_a_network_true_workspace_reaches_no_address_of_the_host(
    workspaces: DockerBackend, engine: docker.DockerClient, app: Path, tmp_path: Path
) -> None:
    accepted: list[object] = []

    async def note(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer.get_extra_info("peername"))
        writer.close()

    listener = await asyncio.start_server(note, "0.0.0.0", 0)  # noqa: S104 - the point
    port = int(listener.sockets[0].getsockname()[1])
    async with listener:
        container, report = await started(workspaces, engine, app, tmp_path)
        assert report["ping"] == "pong"  # the agent reaches the server, through the relay
        assert "eth0" in report["interfaces"]
        code, gateway = await run_in(container, "python3", "-c", GATEWAY)
        assert code == 0
        assert gateway.strip(), "a bridge network has a default route"
        hosts = list(dict.fromkeys(["127.0.0.1", gateway.strip(), *host_addresses()]))
        targets = [[h, p] for h in hosts for p in (port, 5432)]
        code, output = await run_in(container, "python3", "-c", CONNECT, json.dumps(targets))
    assert code == 0, output
    results = json.loads(output)
    assert len(results) == len(targets)
    assert all(r in ("ConnectionRefusedError", "TimeoutError") for r in results.values()), results
    assert accepted == []
    network = container.attrs["HostConfig"]["NetworkMode"]
    attrs = (await asyncio.to_thread(engine.networks.get, network)).attrs
    assert attrs["Options"]["com.docker.network.bridge.name"] == BRIDGE
    assert attrs["Options"]["com.docker.network.bridge.enable_icc"] == "false"
    if is_root() and shutil.which("iptables"):
        rule = ["iptables", "-C", "INPUT", "-i", BRIDGE, "-j", "REJECT"]
        checked = await asyncio.to_thread(subprocess.run, rule, capture_output=True, check=False)
        assert checked.returncode == 0


@pytest.mark.docker
async def test_the_workspace_runs_as_its_user_and_only_the_home_is_its_own(
    workspaces: DockerBackend, engine: docker.DockerClient, app: Path, tmp_path: Path
) -> None:
    probes = ["/home/alice/mine", "/opt/berth/x", "/run/berth/x", "/etc/x", "/x"]
    container, report = await started(
        workspaces, engine, app, tmp_path, write_probes=json.dumps(probes)
    )
    assert (report["uid"], report["gid"]) == (1000, 1000)
    assert report["writable"] == {p: p == "/home/alice/mine" for p in probes}
    assert await run_in(container, "id", "-un") == (0, "alice\n")
    code, status = await run_in(container, "grep", "^Cap[EP]", "/proc/self/status")
    assert code == 0
    assert [line.split()[1] for line in status.splitlines()] == ["0" * 16] * 2
    assert (await run_in(container, "stat", "-c", "%u %a", "/home/alice")) == (0, "1000 755\n")


@pytest.mark.docker
async def test_network_false_has_no_route_out_but_the_agent_reaches_the_server(
    workspaces: DockerBackend, engine: docker.DockerClient, app: Path, tmp_path: Path
) -> None:
    container, report = await started(workspaces, engine, app, tmp_path, backend={"network": False})
    assert (report["interfaces"], report["ping"]) == (["lo"], "pong")
    targets = [["192.0.2.1", 80], *([a, 5432] for a in host_addresses())]
    code, output = await run_in(container, "python3", "-c", CONNECT, json.dumps(targets))
    assert code == 0, output
    assert set(json.loads(output).values()) == {"OSError"}  # network unreachable


@pytest.mark.docker
async def test_workspace_code_cannot_stop_the_supervisor_and_a_stopped_agent_resumes(
    workspaces: DockerBackend, engine: docker.DockerClient, app: Path, tmp_path: Path
) -> None:
    container, _ = await started(workspaces, engine, app, tmp_path)
    for signal_name in ("TERM", "KILL", "STOP"):
        assert (await run_in(container, "sh", "-c", f"kill -{signal_name} 1"))[0] == 0
    (pid,) = await agent_pids(container)
    assert (await run_in(container, "sh", "-c", f"kill -STOP {pid}"))[0] == 0

    async def state(of: str) -> str:
        code, status = await run_in(container, "grep", "^State:", f"/proc/{of}/status")
        assert code == 0, status
        return status.split()[1]

    await until(lambda: state(pid), lambda s: s != "T", within=30.0, every=0.1)
    assert await state("1") in ("S", "R")
    await asyncio.to_thread(container.reload)
    assert (container.status, container.attrs["RestartCount"]) == ("running", 0)
    assert await agent_pids(container) == [pid]  # continued, not restarted


# --- limits -----------------------------------------------------------------------


@pytest.mark.docker
async def test_memory_pids_and_tmp_limits_hold_and_the_agent_survives(
    workspaces: DockerBackend, engine: docker.DockerClient, app: Path, tmp_path: Path
) -> None:
    limits = {"memory": "256m", "pids": 200, "tmp_size": "64m"}
    container, report = await started(workspaces, engine, app, tmp_path, backend=limits)
    host_config = container.attrs["HostConfig"]
    assert (host_config["Memory"], host_config["PidsLimit"]) == (256 << 20, 200)
    assert host_config["ShmSize"] == 64 << 20

    assert report["ping"] == "pong"
    first = await agent_pids(container)
    assert len(first) == 1

    code, _ = await run_in(container, "python3", "-c", "b = b'x' * (700 << 20)")
    assert code != 0  # killed by the memory cgroup, or a MemoryError
    assert await run_in(container, "echo", "alive") == (0, "alive\n")
    assert await agent_pids(container) == first  # the same agent, never restarted

    code, output = await run_in(container, "python3", "-c", SPAWN)
    assert code == 0, output
    spawned = json.loads(output)
    assert spawned["started"] < 400
    assert spawned["processes"] <= 200

    for directory in ("/tmp", "/dev/shm"):
        code, output = await run_in(
            container, "dd", "if=/dev/zero", f"of={directory}/big", "bs=1M", "count=200"
        )
        assert code != 0
        assert "No space left on device" in output
        await run_in(container, "rm", "-f", f"{directory}/big")
    assert await agent_pids(container) == first


async def agent_pids(container: Container) -> list[str]:
    """The stand-in agent's pids, as it logs them at each start."""
    code, output = await run_in(container, "cat", "/home/alice/starts-main.log")
    assert code == 0, output
    return output.split()


@pytest.mark.docker
async def test_a_limit_docker_cannot_hold_fails_the_build_unless_best_effort(
    workspaces: DockerBackend, engine: docker.DockerClient, app: Path, tmp_path: Path
) -> None:
    spec = spec_for(app, tmp_path, backend={"disk": "1g"})
    with pytest.raises(BuildFailed) as failed:
        await workspaces.apply(spec, Transition.START, LogLines())
    assert failed.value.code == LIMITS_UNAVAILABLE
    assert "disk" in failed.value.message
    assert "best-effort" in failed.value.message
    assert not exists(engine, "container", f"berth-{spec.workspace_id}")


# --- the firewall and the route, without an engine ------------------------------


def test_the_firewall_says_why_it_cannot_hold_for_a_bridge_not_on_this_host() -> None:
    problem = ensure_host_firewall("berth-nosuch0")
    assert problem is not None
    assert "not on this host" in problem


@pytest.mark.docker
async def test_a_firewall_that_cannot_hold_fails_the_build_and_external_trusts_the_host(
    workspaces: DockerBackend,
    engine: docker.DockerClient,
    app: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(docker_module, "ensure_host_firewall", lambda: "no iptables here")
    spec = spec_for(app, tmp_path)
    with pytest.raises(BuildFailed) as failed:
        await workspaces.apply(spec, Transition.START, LogLines())
    assert failed.value.code == HOST_FIREWALL_UNAVAILABLE
    assert "no iptables here" in failed.value.message
    assert "BERTH_DOCKER_HOST_FIREWALL=external" in failed.value.message
    assert not exists(engine, "container", f"berth-{spec.workspace_id}")

    trusting = DockerBackend(engine, pull_missing=False, stop_timeout=1, host_firewall="external")
    log = LogLines()
    records = await trusting.apply(spec, Transition.START, log)
    try:
        assert any("external" in line for line in log.of("apply"))
    finally:
        for record in records:
            await trusting.destroy(record.handle)


@pytest.mark.parametrize(
    ("url", "network", "agent_url", "connect", "listen"),
    [
        ("http://127.0.0.1:7080", True, "http://127.0.0.1:7080", ["127.0.0.1", 7080], 7080),
        ("http://localhost", True, "http://localhost:40080", ["localhost", 80], 40080),
        ("https://203.0.113.7:8443", True, "https://203.0.113.7:8443", None, None),
        ("https://203.0.113.7:8443", False, "https://127.0.0.1:8443", ["203.0.113.7", 8443], 8443),
        ("https://berth.invalid", True, "https://berth.invalid", None, None),
        (
            "https://berth.invalid",
            False,
            "https://berth.invalid:40443",
            ["berth.invalid", 443],
            40443,
        ),
    ],
)
def test_the_agents_dial_directly_only_what_a_bridge_container_can_reach(
    url: str, network: bool, agent_url: str, connect: list[object] | None, listen: int | None
) -> None:
    route = plan_route(url, network=network)
    assert route.agent_url == agent_url
    if connect is None:
        assert (route.relay, route.inner_relay) == (None, None)
        return
    assert route.relay == {"socket": "/run/berth/relay.sock", "connect": connect}
    assert route.inner_relay == {"socket": "/run/berth/relay.sock", "listen": listen}
    named = urlsplit(url).hostname == "berth.invalid"
    assert route.host_alias == ("berth.invalid" if named else None)


def test_a_server_on_one_of_this_hosts_addresses_goes_through_the_relay() -> None:
    if not host_addresses():
        pytest.skip("this host has no address but loopback")
    route = plan_route(f"http://{host_addresses()[0]}:7080", network=True)
    assert route.relay is not None
    assert route.agent_url == "http://127.0.0.1:7080"
