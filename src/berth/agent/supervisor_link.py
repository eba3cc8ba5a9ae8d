"""The agent's end of its control socket to berth's supervisor.

The supervisor (``provisioner/backends/_supervisor`` on the server side) starts the
agent with one end of a ``SOCK_SEQPACKET`` socketpair, named by
``BERTH_AGENT_CONTROL_FD``. A socket cannot be re-opened through ``/proc/<pid>/fd``, so
workspace code cannot listen in. Over it the agent says ``hello`` once it made itself
non-dumpable, and only then receives its token; it beats every :data:`BEAT_SECONDS`
so the supervisor's watchdog can tell a stuck agent from a busy one; and it hands over
each background process it keeps (the record and the read end of its output pipe) so
that a restarted agent gets its predecessor's processes back with their ids.
"""

from __future__ import annotations

import array
import json
import logging
import os
import socket
import threading
import time
from typing import Any, Callable, cast

from .processes import ManagedProcess, Watcher

log = logging.getLogger("berth.agent")

BEAT_SECONDS = 5.0
"""How often the main thread tells the supervisor it is alive (its watchdog waits 30 s)."""
CONTROL_FD_ENV = "BERTH_AGENT_CONTROL_FD"
CGROUP_FDS_ENV = "BERTH_AGENT_CGROUP_FDS"
_CONFIG_TIMEOUT = 60.0
_MAX_MESSAGE = 1 << 17


class SupervisorLink(Watcher):
    """The control socket to berth's supervisor: token in, beats and processes out.

    Built by :meth:`from_environment` (None when the agent runs without a supervisor,
    e.g. by hand). The supervisor sends the token only after the ``hello``, which the
    agent sends once it is non-dumpable (see ``main``).
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self._last_beat = 0.0
        self.token: str | None = None
        self.handed: list[tuple[dict[str, Any], int]] = []
        self.on_exit: Callable[[int, int], None] | None = None

    @classmethod
    def from_environment(cls) -> SupervisorLink | None:
        """Take the control socket named by ``BERTH_AGENT_CONTROL_FD``, say hello, get the config.

        Raises OSError (or ValueError) if the supervisor does not answer.
        """
        text = os.environ.pop(CONTROL_FD_ENV, "")
        if not text:
            return None
        sock = socket.socket(fileno=int(text))
        sock.set_inheritable(False)
        link = cls(sock)
        link._handshake()
        return link

    def _handshake(self) -> None:
        self.send({"op": "hello", "pid": os.getpid()})
        self._sock.settimeout(_CONFIG_TIMEOUT)
        config, _ = self._receive()
        if config.get("op") != "config":
            raise ValueError(f"the supervisor sent {config.get('op')!r}, not the config")
        token = config.get("token")
        self.token = token if isinstance(token, str) else None
        for _ in range(int(config.get("processes") or 0)):
            message, fds = self._receive()
            record = message.get("process")
            if message.get("op") == "process" and isinstance(record, dict) and fds:
                self.handed.append((cast("dict[str, Any]", record), fds[0]))
                fds = fds[1:]
            for fd in fds:
                os.close(fd)
        self._sock.settimeout(None)

    def _receive(self) -> tuple[dict[str, Any], list[int]]:
        fds = array.array("i")
        size = socket.CMSG_LEN(8 * fds.itemsize)
        data, ancillary, _, _ = self._sock.recvmsg(_MAX_MESSAGE, size)
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
        if not data:
            raise ConnectionError("the supervisor closed the control socket")
        message = json.loads(data)
        if not isinstance(message, dict):
            raise ValueError("a control message is not an object")
        return cast("dict[str, Any]", message), list(fds)

    def send(self, message: dict[str, Any], fds: list[int] | None = None) -> bool:
        """Send one message (and fds); ``False`` if the supervisor cannot take it now."""
        data = json.dumps(message).encode()
        with self._lock:
            try:
                rights = array.array("i", fds or [])
                ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)] if fds else []
                self._sock.sendmsg([data], ancillary, socket.MSG_DONTWAIT)
            except OSError as err:
                log.debug("control message %s not sent: %s", message.get("op"), err)
                return False
        return True

    def beat(self) -> None:
        """Tell the supervisor the main thread is alive (at most every BEAT_SECONDS)."""
        now = time.monotonic()
        if now - self._last_beat >= BEAT_SECONDS:
            self._last_beat = now
            self.send({"op": "beat"})

    def listen(self) -> None:
        """Serve the supervisor's notices (a handed-over process exited) on a thread."""
        threading.Thread(target=self._listen, name="supervisor", daemon=True).start()

    def _listen(self) -> None:
        while True:
            try:
                message, fds = self._receive()
            except (OSError, ValueError):
                return
            for fd in fds:
                os.close(fd)
            if message.get("op") == "exited" and self.on_exit is not None:
                pid, code = message.get("pid"), message.get("code")
                if isinstance(pid, int) and isinstance(code, int):
                    self.on_exit(pid, code)

    # --- Watcher ----------------------------------------------------------------------

    def adopted(self, proc: ManagedProcess) -> None:
        fds = proc.handover_fds()
        if fds:
            try:
                self.send({"op": "adopt", "process": proc.record()}, fds)
            finally:
                for fd in fds:
                    os.close(fd)

    def released(self, proc: ManagedProcess) -> None:
        self.send({"op": "release", "id": proc.id})
