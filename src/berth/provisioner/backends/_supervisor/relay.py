"""How agents reach the server, whether or not the workspace has a network.

Two halves, each a listener that forwards every connection on a thread of its own:
the *host* relay (the keeper, or Docker's relay sidecar) accepts on a Unix socket that
is bound into the sandbox and connects to the server's TCP address; the *sandbox*
relay (the supervisor) listens on ``127.0.0.1:<port>`` in the sandbox's own network
namespace and connects to that socket. The server's host name maps to 127.0.0.1 in
the sandbox, so TLS still verifies.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
from collections.abc import Callable
from typing import Any

from .process import say

__all__ = ["host_relay", "sandbox_relay"]


def _pump(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until both sides are done, then close both."""
    open_ends = {a: b, b: a}
    try:
        while open_ends:
            readable, _, _ = select.select(list(open_ends), [], [])
            for src in readable:
                data = src.recv(65536)
                dst = open_ends[src]
                if data:
                    dst.sendall(data)
                else:
                    del open_ends[src]
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        a.close()
        b.close()


def _no_delay(sock: socket.socket) -> socket.socket:
    """``TCP_NODELAY`` on a TCP socket: agent frames are small, and Nagle's algorithm would
    hold each one that follows an unacknowledged one until the peer's delayed ACK
    (~40 ms) — a lifecycle report, an exec's output."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        # A peer that already hung up makes this fail: the pump then sees it go. It
        # must never raise, or the accepting thread dies and no agent connects again.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _serve(listener: socket.socket, connect: Callable[[], socket.socket]) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError as err:  # e.g. the peer reset before it was accepted: go on
            if listener.fileno() < 0:
                return  # the listener is closed: nothing more to accept
            say(f"relay could not accept a connection: {err}")
            continue
        try:
            upstream = _no_delay(connect())
        except OSError as err:
            say(f"relay cannot reach the server: {err}")
            conn.close()
            continue
        _no_delay(conn)
        threading.Thread(target=_pump, args=(conn, upstream), daemon=True).start()


def _start_relay(listener: socket.socket, connect: Callable[[], socket.socket]) -> None:
    threading.Thread(target=_serve, args=(listener, connect), daemon=True).start()


def host_relay(relay: dict[str, Any]) -> None:
    """Serve ``relay["socket"]`` (a path), forwarding to ``relay["connect"]`` (host, port).

    Changes the working directory to the socket's (see below).
    """
    path = str(relay["socket"])
    host, port = str(relay["connect"][0]), int(relay["connect"][1])
    # A socket path is limited to ~100 bytes and state dirs can be deep: bind by a
    # relative name from inside the directory (the keeper's cwd matters to nothing else).
    directory, name = os.path.split(path)
    os.chdir(directory)
    if os.path.lexists(name):
        os.unlink(name)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(name)
    os.chmod(name, 0o666)  # noqa: S103 - the sandbox user must connect to it
    listener.listen(64)
    _start_relay(listener, lambda: socket.create_connection((host, port)))


def sandbox_relay(relay: dict[str, Any]) -> None:
    """Listen on ``127.0.0.1:relay["listen"]``, forwarding to ``relay["socket"]``."""
    path = str(relay["socket"])

    def connect() -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        return s

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(relay["listen"])))
    listener.listen(64)
    _start_relay(listener, connect)
