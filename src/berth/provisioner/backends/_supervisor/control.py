"""The control socket between the supervisor and one agent: messages, fds, protection.

Each agent gets a ``SOCK_SEQPACKET`` socketpair end (``BERTH_AGENT_CONTROL_FD``; a
socket cannot be re-opened through ``/proc/<pid>/fd``). One message is one JSON
object, with file descriptors as ``SCM_RIGHTS``. From the agent: ``hello`` (once it is
non-dumpable), ``beat``, ``adopt`` (a background process: its record and the read end
of its output pipe) and ``release``; from the supervisor: ``config`` (the token, and
how many ``process`` messages follow, one per process a predecessor handed over) and
``exited`` (a handed-over process ended). The agent's side is
``berth.agent.supervisor_link.SupervisorLink``.
"""

from __future__ import annotations

import array
import json
import os
import socket
from typing import Any

__all__ = ["MAX_MESSAGE", "encode", "protected", "recv_msg", "send_msg"]

MAX_MESSAGE = 1 << 17


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def send_msg(sock: socket.socket, data: bytes, fds: list[int], flags: int = 0) -> None:
    """``sendmsg`` with SCM_RIGHTS (``socket.send_fds`` drops ``flags`` before 3.12)."""
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    sock.sendmsg([data], ancillary, flags)


def recv_msg(sock: socket.socket, flags: int = 0) -> tuple[bytes, list[int]]:
    """``recvmsg`` with SCM_RIGHTS (``socket.recv_fds`` drops ``flags`` before 3.12)."""
    fds = array.array("i")
    data, ancillary, _, _ = sock.recvmsg(MAX_MESSAGE, socket.CMSG_LEN(8 * fds.itemsize), flags)
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    return data, list(fds)


def protected(pid: int) -> str | None:
    """Why agent ``pid`` may not have its token yet (None: it is non-dumpable and untraced).

    A non-dumpable process's ``/proc/<pid>/environ`` belongs to root, no longer to the
    workspace user (as root we cannot tell, and rely on the agent's own ``prctl``).
    """
    try:
        if os.geteuid() != 0 and os.stat(f"/proc/{pid}/environ").st_uid == os.geteuid():
            return "it is still dumpable"
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("TracerPid:") and line.split()[1] != "0":
                    return "it is being traced"
    except OSError as err:
        return f"its /proc entry is unreadable ({err})"
    return None
