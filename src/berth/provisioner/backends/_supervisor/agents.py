"""One agent under the supervisor: its process, its control socket, its watchdog.

The supervisor (:mod:`.supervision`) starts one process per agent and restarts one
that exits with an error (1 s backoff, doubling to 30 s; an agent that exits 0 meant
to). Over the control socket (:mod:`.control`) the agent makes itself non-dumpable
and says ``hello``; the supervisor checks that it is (:func:`.control.protected`) and
untraced, and only then sends its token. The agent then sends a ``beat`` every few
seconds and hands over each background process (its record and the read end of its
output pipe), so that a restarted agent gets them back with their ids. A stopped agent
(SIGSTOP, seen at once through ``waitpid``) is continued; one that has not beaten for
``WATCHDOG_SECONDS`` (30 s) is continued if stopped, else killed and
restarted at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from typing import Any, cast

from . import CGROUP_FDS_ENV, CONTROL_FD_ENV, WATCHDOG_SECONDS
from .control import encode, protected, recv_msg, send_msg
from .process import say, state

__all__ = ["Agent"]

_RESTART_FIRST = 1.0
_RESTART_MAX = 30.0
_HEALTHY_AFTER = 60.0
_MAX_HELD = 256


class Agent:
    """One agent's process across its restarts, and what it handed over."""

    def __init__(
        self, spec: dict[str, Any], cgroup_fds: list[int], watchdog: float = WATCHDOG_SECONDS
    ) -> None:
        self.watchdog = watchdog
        self.name = str(spec["name"])
        self.argv = [str(a) for a in cast("list[Any]", spec["argv"])]
        # The agent inherits the supervisor's environment (a container image's PATH, LANG,
        # ...) with its own variables on top.
        self.env = dict(os.environ)
        self.env.update({str(k): str(v) for k, v in cast("dict[str, Any]", spec["env"]).items()})
        self.token: str | None = spec.get("token")
        self.cwd = str(spec.get("cwd") or "/")
        self.cgroup_fds = cgroup_fds
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.outbox: list[tuple[bytes, list[int]]] = []
        self.said_hello = False
        self.heard_at = 0.0
        self.started_at = 0.0
        self.backoff = _RESTART_FIRST
        self.restart_at: float | None = None
        self.done = False
        self.killed_stuck = False
        # Background processes the agent handed over: record and output fds, by id.
        self.held: dict[str, tuple[dict[str, Any], list[int]]] = {}

    # --- life ---------------------------------------------------------------------

    def start(self) -> None:
        self.restart_at = None
        self.started_at = self.heard_at = time.monotonic()
        self.said_hello = self.killed_stuck = False
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(self.env)
        env[CONTROL_FD_ENV] = str(theirs.fileno())
        if self.cgroup_fds:
            env[CGROUP_FDS_ENV] = ",".join(str(fd) for fd in self.cgroup_fds)
        try:
            self.proc = subprocess.Popen(
                self.argv,
                env=env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                pass_fds=[theirs.fileno(), *self.cgroup_fds],
            )
        except OSError as err:
            say(f"cannot start agent {self.name}: {err}")
            self.proc = None
            ours.close()
            self._schedule_restart()
        else:
            self.sock = ours
        finally:
            theirs.close()

    def exited(self, status: int, stopping: bool) -> None:
        code = os.waitstatus_to_exitcode(status)
        if self.proc is not None:
            self.proc.returncode = code  # reaped by us, not by Popen.wait
        self.proc = None
        self._close_socket()
        if code == 0 or stopping:
            say(f"agent {self.name} exited with {code}")
            self.done = True
            return
        if self.killed_stuck or time.monotonic() - self.started_at >= _HEALTHY_AFTER:
            self.backoff = _RESTART_FIRST
        if self.killed_stuck:
            say(f"agent {self.name} was stuck and is restarted now")
            self.restart_at = time.monotonic()
            return
        say(f"agent {self.name} exited with {code}; restarting in {self.backoff:g}s")
        self._schedule_restart()

    def _schedule_restart(self) -> None:
        self.restart_at = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, _RESTART_MAX)

    def _close_socket(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        for _, fds in self.outbox:
            for fd in fds:
                os.close(fd)
        self.outbox.clear()

    # --- the watchdog -------------------------------------------------------------

    def check(self, now: float) -> float | None:
        """Act on an agent that stopped answering; return when to look again."""
        if self.proc is None or not self.said_hello:
            return None
        due = self.heard_at + self.watchdog
        if now < due:
            return due
        pid = self.proc.pid
        if state(pid) in ("T", "t"):
            say(f"agent {self.name} is stopped; continuing it")
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGCONT)
        else:
            say(f"agent {self.name} said nothing for {self.watchdog:g}s; killing it")
            self.killed_stuck = True
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.heard_at = now
        return now + self.watchdog

    # --- messages -----------------------------------------------------------------

    def readable(self) -> None:
        """Handle every message waiting on the control socket."""
        while self.sock is not None:
            try:
                data, fds = recv_msg(self.sock, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._close_socket()
                return
            if not data:
                for fd in fds:
                    os.close(fd)
                self._close_socket()
                return
            self.heard_at = time.monotonic()
            try:
                message = cast("dict[str, Any]", json.loads(data))
            except ValueError:
                message = {}
            self._on_message(message, list(fds))

    def _on_message(self, message: dict[str, Any], fds: list[int]) -> None:
        op = message.get("op")
        if op == "hello" and not self.said_hello:
            self.said_hello = True
            self._send_config()
        elif op == "adopt" and isinstance(message.get("process"), dict) and fds:
            record = cast("dict[str, Any]", message["process"])
            self._release(str(record.get("id")))
            self.held[str(record.get("id"))] = (record, fds)
            self._prune()
            return
        elif op == "release":
            self._release(str(message.get("id")))
        for fd in fds:
            os.close(fd)

    def _send_config(self) -> None:
        if self.proc is None:
            return
        if self.token is not None:
            why = protected(self.proc.pid)
            if why is not None:
                say(f"not giving agent {self.name} its token: {why}; restarting it")
                self.killed_stuck = True
                with contextlib.suppress(OSError):
                    os.kill(self.proc.pid, signal.SIGKILL)
                return
        self.send({"op": "config", "token": self.token, "processes": len(self.held)})
        for record, fds in self.held.values():
            self.send({"op": "process", "process": record}, [os.dup(fd) for fd in fds])

    def send(self, message: dict[str, Any], fds: list[int] | None = None) -> None:
        """Queue ``message`` (and fds, closed once sent) for the agent; never blocks."""
        if self.sock is None:
            for fd in fds or []:
                os.close(fd)
            return
        self.outbox.append((encode(message), fds or []))
        self.flush()

    def flush(self) -> None:
        while self.outbox and self.sock is not None:
            data, fds = self.outbox[0]
            try:
                send_msg(self.sock, data, fds, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._close_socket()
                return
            self.outbox.pop(0)
            for fd in fds:
                os.close(fd)

    def orphan_exited(self, pid: int, code: int) -> None:
        """A process the agent handed over ended (we reaped it): remember, and tell."""
        for record, _ in self.held.values():
            if record.get("pid") == pid and "exit_code" not in record:
                record["exit_code"] = code
                if self.said_hello:
                    self.send({"op": "exited", "pid": pid, "code": code})

    def _release(self, process_id: str) -> None:
        held = self.held.pop(process_id, None)
        if held is not None:
            for fd in held[1]:
                os.close(fd)

    def _prune(self) -> None:
        finished = [k for k, (r, _) in self.held.items() if "exit_code" in r]
        for key in finished[: max(0, len(self.held) - _MAX_HELD)]:
            self._release(key)
        while len(self.held) > _MAX_HELD:
            self._release(next(iter(self.held)))
