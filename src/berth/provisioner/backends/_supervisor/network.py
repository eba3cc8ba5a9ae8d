"""User-mode networking for a ``network: true`` sandbox (the keeper's side).

The sandbox always has its own network namespace; the keeper connects it to the
outside with ``slirp4netns`` (no port forwarding, ``--disable-host-loopback``) while
bwrap holds the sandbox blocked, installs the packet filter of :mod:`.firewall` in it
(through ``nsenter`` and ``iptables-restore``), then lets the sandbox go on. A thread
re-installs the filter whenever the host's addresses change.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import socket
import subprocess
import threading
import time
from typing import Any

from .firewall import FIREWALL6, firewall_rules, host_addresses
from .process import say

__all__ = ["Network"]

_NS_GET_USERNS = 0xB701
_RTMGRP_IPV4_IFADDR = 0x10


class Network:
    """slirp4netns and the packet filter of one sandbox's network namespace."""

    def __init__(self, net: dict[str, Any], child_pid: int, log_fd: int) -> None:
        self.net = net
        self.log_fd = log_fd
        self.netfd = os.open(f"/proc/{child_pid}/ns/net", os.O_RDONLY)
        self.userfd: int | None = None
        self.slirp: subprocess.Popen[bytes] | None = None
        self.exit_w: int | None = None
        self.addresses: list[str] = []
        self.lock = threading.Lock()
        if net.get("userns"):
            self.userfd = int(fcntl.ioctl(self.netfd, _NS_GET_USERNS))
            _wait_for_uid_map(child_pid)
        # bwrap configures lo itself (refusing an address that exists); slirp4netns brings
        # lo up too, and the kernel gives an up lo its address: let bwrap go first.
        _wait_for_loopback(child_pid)

    def _enter(self, *, net: bool) -> list[str]:
        fds = [f"--net=/proc/self/fd/{self.netfd}"] if net else []
        if self.userfd is None:
            return [str(self.net["nsenter"]), *fds] if fds else []
        user = f"--user=/proc/self/fd/{self.userfd}"
        return [str(self.net["nsenter"]), "--preserve-credentials", user, *fds]

    def _private_mounts(self) -> list[str]:
        """Run slirp4netns in a mount namespace of its own with private propagation.

        Its ``--enable-sandbox`` makes a mount namespace and detaches the old root. Made
        from the host's (a server running as root), that namespace shares the host's
        shared mounts, and the detach propagated back: it unmounted the host's network
        namespace files (``/run/netns/*`` of ``ip netns``, Docker's), which then could no
        longer be entered. In the server's user namespace (not root) the kernel makes
        those mounts slaves already, so nothing is needed there."""
        if self.userfd is not None:
            return []
        return [str(self.net["unshare"]), "--mount", "--propagation", "private"]

    def _fds(self) -> list[int]:
        return [self.netfd] + ([] if self.userfd is None else [self.userfd])

    def start(self, timeout: float = 20.0) -> None:
        ready_r, ready_w = os.pipe()
        exit_r, self.exit_w = os.pipe()
        argv = [
            *self._enter(net=False),
            *self._private_mounts(),
            str(self.net["slirp4netns"]),
            "--configure",
            "--mtu=65520",
            "--disable-host-loopback",
            "--enable-sandbox",
            "--enable-seccomp",
            f"--ready-fd={ready_w}",
            f"--exit-fd={exit_r}",
            "--netns-type=path",
            f"/proc/self/fd/{self.netfd}",
            "tap0",
        ]
        try:
            self.slirp = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self.log_fd,
                stderr=self.log_fd,
                pass_fds=[ready_w, exit_r, *self._fds()],
            )
        finally:
            os.close(ready_w)
            os.close(exit_r)
        try:
            readable, _, _ = select.select([ready_r], [], [], timeout)
            ready = os.read(ready_r, 16) if readable else b""
        finally:
            os.close(ready_r)
        if not ready.startswith(b"1"):
            raise RuntimeError("slirp4netns did not start (see the sandbox log)")
        self.apply(host_addresses())

    def apply(self, addresses: list[str]) -> None:
        """Install the packet filter for ``addresses`` (atomically replacing the last one).

        The IPv4 and IPv6 filters are installed at once, by two processes (each start
        costs ~25 ms, the sandbox waits for both); they touch different tables and each
        has its own lock file, so neither waits for the other."""
        with self.lock:
            running: list[tuple[str, bytes, subprocess.Popen[bytes]]] = []
            for tool, rules in (
                ("iptables_restore", firewall_rules(addresses)),
                ("ip6tables_restore", FIREWALL6),
            ):
                if not self.net.get(tool):
                    continue
                lock = f"{self.net['lock_file']}.{tool}"
                running.append((tool, rules.encode(), self._restore(tool, lock)))
            errors = {tool: process.communicate(rules)[1] for tool, rules, process in running}
            for tool, _, process in running:
                if process.returncode != 0 and tool == "iptables_restore":
                    detail = errors[tool].decode(errors="replace").strip()
                    raise RuntimeError(f"could not install the sandbox's packet filter: {detail}")
            self.addresses = addresses

    def _restore(self, tool: str, lock_file: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*self._enter(net=True), str(self.net[tool])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=self._fds(),
            env=dict(os.environ, XTABLES_LOCKFILE=lock_file),
        )

    def follow_host_addresses(self) -> None:
        """Re-install the filter whenever the host's addresses change (a thread).

        The first filter was made before this watch existed: an address the host gained
        in between would stay reachable until the next change, so the addresses are read
        once more now that every later change is heard.
        """
        try:
            watch = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
            watch.bind((0, _RTMGRP_IPV4_IFADDR))
        except OSError as err:
            say(f"cannot follow the host's address changes: {err}")
            return
        addresses = host_addresses()
        if addresses != self.addresses:
            self.apply(addresses)

        def run() -> None:
            while True:
                try:
                    watch.recv(65536)
                    addresses = host_addresses()
                    if addresses != self.addresses:
                        self.apply(addresses)
                except Exception as err:  # keep following; say what went wrong
                    say(f"updating the sandbox's packet filter failed: {err}")
                    time.sleep(1)

        threading.Thread(target=run, daemon=True).start()

    def stop(self) -> None:
        if self.exit_w is not None:
            os.close(self.exit_w)  # slirp4netns exits when this closes
            self.exit_w = None
        if self.slirp is not None:
            try:
                self.slirp.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.slirp.kill()
                self.slirp.wait()


def _wait_for_uid_map(pid: int, within: float = 10.0) -> None:
    """bwrap reports its child before it has mapped the child's user namespace: wait for it."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/uid_map") as f:
            if f.read().strip():
                return
        time.sleep(0.002)
    raise RuntimeError("the sandbox's user namespace was not set up in time")


def _wait_for_loopback(pid: int, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/net/fib_trie") as f:
            if "127.0.0.1" in f.read():
                return
        time.sleep(0.002)
    raise RuntimeError("the sandbox's loopback interface was not set up in time")
