"""Where a Docker workspace's packets may go, and how its agents reach the server.

Networks. ``network: true`` puts the container on ``berth``, a bridge network berth
creates on first use (host interface :data:`BRIDGE`, no traffic between its
containers: ``enable_icc=false``); never the host's network. ``network: false`` is
Docker's ``none``: loopback only.

The host's own addresses. A bridge container cannot reach the host's loopback, but it
reaches the host itself at the bridge's gateway and at every other address the host
has (its LAN address, other bridges' gateways, addresses added later). One rule in the
host's ``INPUT`` chain closes all of them at once: ``iptables -I INPUT -i berth0 -j
REJECT`` (and the same with ``ip6tables`` where there is one), checked with ``-C``
before every start and inserted when missing (a firewall reload flushes it until the
next start). Traffic to the outside is forwarded, not ``INPUT``, so it still flows;
Docker's DNS server for the container answers inside the container's own namespace;
ports that other containers publish on the host are not NAT-ed for packets coming from
a bridge (Docker's ``nat DOCKER`` chain returns for them), so they are behind the same
rule. The rule needs the engine's bridge on this host and the right to change its
firewall (root): :func:`ensure_host_firewall` says why not otherwise (a remote or
rootless engine, no ``iptables``), and the build fails with that unless the
administrator keeps the rule on the engine's host and says so
(``BERTH_DOCKER_HOST_FIREWALL=external``).

The relay. An agent dials the server's access URL directly only when the workspace has
network and the URL's host is neither loopback nor one of this host's addresses (the
rule above would refuse it). Otherwise it goes through a relay, the supervisor's own
pair of relays (``_supervisor``): a sidecar container ``berth-relay-W`` on the host's
network runs the *host* relay (a Unix socket to the server's TCP address) as
``nobody``, with no capabilities and nothing of the workspace but the socket's volume;
the workspace container mounts that volume read-only at ``/run/berth``, and its
supervisor runs the *sandbox* relay (``127.0.0.1:<port>`` to the socket). The agent's
URL keeps the server's host name (mapped to 127.0.0.1 in the container) and port
(``plan_relay``), so TLS still verifies.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import docker
import docker.errors
from docker.models.networks import Network

from berth.provisioner.backends._bwrap import RELAY_DIR, RELAY_SOCKET, SUPERVISOR_PATH, plan_relay
from berth.provisioner.backends._supervisor_zip import ARCHIVE_PACKAGE

__all__ = [
    "BRIDGE",
    "FIREWALL_ENV",
    "NETWORK",
    "RELAY_COMMAND",
    "RELAY_ENV",
    "AgentRoute",
    "ensure_host_firewall",
    "ensure_network",
    "firewall_mode",
    "is_own_address",
    "plan_route",
]

NETWORK = "berth"
BRIDGE = "berth0"
FIREWALL_ENV = "BERTH_DOCKER_HOST_FIREWALL"
RELAY_ENV = "BERTH_RELAY"
RELAY_COMMAND = [
    "python3",
    "-I",
    "-c",
    f"import json, os, sys; sys.path.insert(0, {SUPERVISOR_PATH!r}); "
    f"from {ARCHIVE_PACKAGE}.relay import host_relay; "
    f"from {ARCHIVE_PACKAGE}.supervision import supervise; "
    f"host_relay(json.loads(os.environ.pop({RELAY_ENV!r}))); sys.exit(supervise([]))",
]
"""The sidecar's command: the supervisor's host relay, kept up by its signal loop."""

_RULE = ["INPUT", "-i", BRIDGE, "-j", "REJECT"]
_firewall_lock = threading.Lock()


# --- the route to the server ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentRoute:
    """How the agents of one container reach the server."""

    agent_url: str
    relay: dict[str, object] | None = None
    """The sidecar's host relay config (``socket``, ``connect``), or None: direct."""
    inner_relay: dict[str, object] | None = None
    """The supervisor's sandbox relay config inside the workspace (``socket``, ``listen``)."""
    host_alias: str | None = None
    """A host name to map to 127.0.0.1 in the container."""


def is_own_address(host: str) -> bool:
    """Whether ``host`` is loopback or resolves to an address of this host (blocking)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return False
    for family, _, _, _, address in infos:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
        if ip.is_loopback or ip.is_unspecified:
            return True
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((address[0], 0))  # only an address of this host binds
            except OSError:
                continue
            return True
    return False


def plan_route(server_url: str, *, network: bool) -> AgentRoute:
    """Direct when the container has network and the server is not on this host; else the relay.

    Blocking: it resolves the URL's host.
    """
    host = urlsplit(server_url).hostname or "127.0.0.1"
    if network and not is_own_address(host):
        return AgentRoute(agent_url=server_url)
    plan = plan_relay(server_url)
    path = f"{RELAY_DIR}/{RELAY_SOCKET}"
    return AgentRoute(
        agent_url=plan.agent_url,
        relay={"socket": path, "connect": list(plan.connect)},
        inner_relay={"socket": path, "listen": plan.listen_port},
        host_alias=plan.host_alias,
    )


# --- the bridge network -----------------------------------------------------------


def ensure_network(client: docker.DockerClient) -> Network:
    """The ``berth`` bridge network, created if missing; refused if it is not berth's."""
    found = _find_network(client)
    if found is None:
        # Another worker may make it first (the bridge name is unique) or it fails for
        # real: either way, what is there afterwards decides.
        with contextlib.suppress(docker.errors.APIError):
            client.networks.create(
                NETWORK,
                driver="bridge",
                options={
                    "com.docker.network.bridge.name": BRIDGE,
                    "com.docker.network.bridge.enable_icc": "false",
                },
                labels={"berth.managed": "true"},
                check_duplicate=True,
            )
        found = _find_network(client)
        if found is None:
            raise docker.errors.APIError(f"cannot create the Docker network {NETWORK}")
    options = cast("dict[str, str]", found.attrs.get("Options") or {})
    if options.get("com.docker.network.bridge.name") != BRIDGE:
        raise docker.errors.APIError(
            f"the Docker network {NETWORK} exists but does not use the bridge {BRIDGE}: "
            f"remove it (docker network rm {NETWORK}) and berth recreates it"
        )
    return found


def _find_network(client: docker.DockerClient) -> Network | None:
    listed = client.networks.list(names=[NETWORK])  # pyright: ignore[reportUnknownMemberType]  # partly untyped in the stubs
    named = [n for n in listed if n.name == NETWORK]
    if not named:
        return None
    named.sort(key=lambda n: (str(n.attrs.get("Created", "")), str(n.id)))
    return client.networks.get(str(named[0].id))


# --- the host's firewall ----------------------------------------------------------


def firewall_mode(configured: str | None) -> str:
    """``iptables`` (berth keeps the rule), ``external`` (the administrator does), or as given.

    Anything else is returned as it is, for the build to refuse with the setting's name.
    """
    return (configured or os.environ.get(FIREWALL_ENV) or "iptables").strip().lower()


def ensure_host_firewall(bridge: str = BRIDGE) -> str | None:
    """Keep the rule that refuses packets from the bridge to the host; why it cannot, or None.

    Blocking (it runs ``iptables``).
    """
    if not Path("/sys/class/net", bridge).exists():
        return (
            f"the bridge {bridge} is not on this host (a remote or rootless Docker engine), "
            "so berth cannot add the firewall rule there"
        )
    iptables = shutil.which("iptables")
    if iptables is None:
        return "iptables is not installed on this host"
    rule = [_RULE[0], "-i", bridge, *_RULE[3:]]
    with _firewall_lock:
        problem = _ensure_rule(iptables, rule)
        if problem is None and (ip6tables := shutil.which("ip6tables")) is not None:
            _ensure_rule(ip6tables, rule)  # Docker gives these containers no IPv6 anyway
    return problem


def _ensure_rule(binary: str, rule: list[str]) -> str | None:
    check = subprocess.run(
        [binary, "-w", "5", "-C", *rule], capture_output=True, text=True, check=False
    )
    if check.returncode == 0:
        return None
    add = subprocess.run(
        [binary, "-w", "5", "-I", rule[0], "1", *rule[1:]],
        capture_output=True,
        text=True,
        check=False,
    )
    if add.returncode == 0:
        return None
    why = (add.stderr or check.stderr).strip() or f"exit status {add.returncode}"
    return f"{Path(binary).name} -I {' '.join(rule)} failed: {why}"
