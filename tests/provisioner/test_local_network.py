"""What a local workspace can reach: the outside with ``network: true``, never the host.

"The outside" here is a TCP listener in a network namespace of its own, behind a veth
pair (this machine reaches nothing else): the host routes to it like to any other
machine, so a workspace reaching it is a workspace reaching beyond the host. The host
is a listener on all of the host's addresses, and Postgres on 127.0.0.1:5432 where it
runs. Everything goes through the chat tools to the real agent in a real sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.provisioner.backends._bwrap import find_network_tools
from tests.conftest import HOST_NETWORK
from tests.support.backends import local_chat
from tests.support.waiting import until_sync

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.bwrap,
    # These tests add addresses to the host (``outside``) and probe all of them: run with
    # the Docker tests (which add bridges) on one worker, so no address appears on the
    # host while another of them probes (see ``tests/conftest.py``).
    pytest.mark.xdist_group(HOST_NETWORK),
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not on PATH"),
    pytest.mark.skipif(
        bool(find_network_tools().missing()),
        reason=f"network: true needs {', '.join(find_network_tools().missing())}",
    ),
]

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="making a network namespace that is not the host needs root and iproute2",
)

OUTSIDE_PORT = 7777

PROBE = r"""
import json, socket, struct, sys
targets = json.loads(sys.argv[1])
gateway = None
for line in open("/proc/net/route").read().splitlines()[1:]:
    fields = line.split()
    if fields[1] == "00000000":
        gateway = socket.inet_ntoa(struct.pack("<L", int(fields[2], 16)))
results = {}
for host, port in targets:
    host = gateway if host == "GATEWAY" else host
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect((host, port))
        results["%s:%d" % (host, port)] = "connected: " + s.recv(64).decode().strip()
    except OSError as err:
        results["%s:%d" % (host, port)] = "%s %s" % (type(err).__name__, err.errno)
    finally:
        s.close()
print(json.dumps({"gateway": gateway, "results": results}))
"""

LISTENER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
print("listening", flush=True)
while True:
    conn, _ = s.accept()
    conn.sendall(b"outside\n")
    conn.close()
"""


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], check=False, capture_output=True, text=True)
    assert done.returncode == 0, f"ip {' '.join(args)}: {done.stderr.strip()}"


def _connects(address: tuple[str, int]) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(address, timeout=1):
        return True
    return False


@pytest.fixture
def outside() -> Iterator[str]:
    """The address of a listener (port :data:`OUTSIDE_PORT`) in a namespace of its own."""
    tag = uuid.uuid4().hex[:6]
    name, host_if, ns_if = f"berth-t-{tag}", f"bth{tag}", f"btn{tag}"
    subnet = f"10.213.{random.randrange(256)}.{4 * random.randrange(64)}"
    base = subnet.rsplit(".", 1)[0]
    last = int(subnet.rsplit(".", 1)[1])
    here, there = f"{base}.{last + 1}", f"{base}.{last + 2}"
    _ip("netns", "add", name)
    listener: subprocess.Popen[bytes] | None = None
    try:
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if, "netns", name)
        _ip("addr", "add", f"{here}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", name, "addr", "add", f"{there}/30", "dev", ns_if)
        _ip("-n", name, "link", "set", ns_if, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        listener = subprocess.Popen(
            ["ip", "netns", "exec", name, sys.executable, "-c", LISTENER, str(OUTSIDE_PORT)],
            stdout=subprocess.DEVNULL,
        )
        until_sync(lambda: _connects((there, OUTSIDE_PORT)), within=30, what="the listener")
        yield there
        # Starting sandboxes left the host's network namespaces alone: slirp4netns's own
        # sandbox once unmounted their files (/run/netns/*), and this one became unusable.
        _ip("-n", name, "link", "show", "lo")
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def _host_addresses() -> list[str]:
    shown = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], check=True, capture_output=True, text=True
    ).stdout
    return sorted({line.split()[3].split("/")[0] for line in shown.splitlines()})


@needs_root
async def test_a_networked_workspace_reaches_the_outside_and_nothing_of_the_host(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outside: str
) -> None:
    knocks: list[str] = []

    async def knock(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        knocks.append(str(writer.get_extra_info("peername")))
        writer.write(b"host\n")
        writer.close()

    host = await asyncio.start_server(knock, "0.0.0.0", 0)  # noqa: S104 - it is the target
    port = host.sockets[0].getsockname()[1]
    async with host, local_chat(database_url, tmp_path, monkeypatch, network=True) as chat:
        addresses = _host_addresses()
        assert "127.0.0.1" in addresses
        targets = [
            *((address, p) for address in addresses for p in (5432, port)),
            ("GATEWAY", 5432),
            ("GATEWAY", port),
            (outside, OUTSIDE_PORT),
        ]
        (chat.home / "probe.py").write_text(PROBE)
        result = await chat.run(f"python3 ~/probe.py '{json.dumps(targets)}'", time_limit="5m")
        assert result["exit_code"] == 0, result
        report = json.loads(result["output"])
        results: dict[str, str] = report["results"]
        assert results.pop(f"{outside}:{OUTSIDE_PORT}") == "connected: outside"
        assert report["gateway"] is not None
        reached = {target: how for target, how in results.items() if how.startswith("connected")}
        assert reached == {}, results
        assert knocks == []
        resolv = await chat.run("cat /etc/resolv.conf")
        assert resolv["output"].strip() == "nameserver 10.0.2.3"
        # The targets were there: from the host itself, every one of them answers.
        assert all(_connects((address, port)) for address in addresses)


@needs_root
async def test_a_workspace_without_network_has_only_loopback_and_its_agent_works(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outside: str
) -> None:
    async with local_chat(database_url, tmp_path, monkeypatch, network=False) as chat:
        interfaces = await chat.run("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")
        assert interfaces["output"].split() == ["lo"]
        (chat.home / "probe.py").write_text(PROBE)
        targets = [("127.0.0.1", 5432), (outside, OUTSIDE_PORT)]
        result = await chat.run(f"python3 ~/probe.py '{json.dumps(targets)}'")
        report = json.loads(result["output"])
        assert report["gateway"] is None
        assert report["results"][f"{outside}:{OUTSIDE_PORT}"] == "OSError 101"  # unreachable
        assert not report["results"]["127.0.0.1:5432"].startswith("connected")
