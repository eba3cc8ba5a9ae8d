"""Commands the agent runs: foreground exec with a timeout, background processes, signals.

Every command is ``sh -c`` in a new session, so it leads its own process group and a
signal reaches everything it started (``make`` and its compilers, a server and its
workers). By default stdout and stderr share one pipe, so the output is interleaved
exactly as a terminal would show it. A reader thread drains the pipe into an
:class:`OutputBuffer` that keeps the first and the last :data:`PROCESS_BUFFER_BYTES`
bytes (:mod:`.output`), so a chatty process can run for days in bounded memory while
``exec`` still returns the head and ``process_output`` the tail. The RPC handlers that
use these are in :mod:`.commands`.

A foreground command that outlives its timeout is not killed: it is adopted by the
:class:`ProcessTable` as a background process, and the caller gets its id. The table
lives as long as the agent process, so ids survive a reconnect to the server.

``exec`` with ``separate_stderr`` (what ``berth exec`` asks for) captures stderr on a
pipe of its own, with its own buffer and reader thread, and behaves like
``timeout(1)``: a command that outlives its timeout is terminated (TERM to its group,
KILL after :data:`.commands.TERMINATE_GRACE_SECONDS`), never adopted, and it cannot run in the
background.

Two things come from the supervisor (``_supervisor`` on the server side), when there
is one. :func:`confine_children` puts every child the agent starts — commands and
lifecycle scripts alike, since both use ``subprocess.Popen`` — into the workspace's
workload cgroups before it executes anything, so the agent stays outside the limits
it enforces. And the table hands every process it keeps to its ``watcher`` (the
supervisor link: the record and a duplicate of the output pipe's read end), so that a
restarted agent gets the processes of its predecessor back with their ids
(:meth:`ProcessTable.adopt`): their output from then on, their signals, their exit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import signal
import subprocess
import threading
import time
from typing import IO, TYPE_CHECKING, Any, Callable

from .output import OutputBuffer
from .params import Result, RpcError

if TYPE_CHECKING:
    pass

SHELL = "/bin/sh" if os.path.exists("/bin/sh") else "sh"
# After the shell exits, how long to wait for the pipe to close: a child left running in
# the background (``server &``) keeps it open, and must not hold up the caller.
EOF_GRACE_SECONDS = 0.5
# Finished background processes kept for process_list/process_output.
MAX_FINISHED = 64


_CGROUP_FDS: list[int] = []


class _ConfinedPopen(subprocess.Popen):  # type: ignore[type-arg]
    """``subprocess.Popen`` whose child joins the workload cgroups before it executes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        theirs = kwargs.pop("preexec_fn", None)

        def join() -> None:
            for fd in _CGROUP_FDS:
                os.write(fd, b"0")  # "0": the writing process, i.e. this child
            if theirs is not None:
                theirs()

        super().__init__(*args, preexec_fn=join, **kwargs)


def confine_children(fds: list[int]) -> None:
    """Make every later child of this process join the cgroups behind ``fds`` first.

    ``fds`` are ``cgroup.procs`` files opened for writing by the server (the kernel
    checks the opener's rights); they stay in the agent, never in a child.
    """
    for fd in fds:
        os.set_inheritable(fd, False)
    _CGROUP_FDS[:] = fds
    if fds:
        subprocess.Popen = _ConfinedPopen  # type: ignore[misc]


def now_iso() -> str:
    """The current time, ISO 8601 UTC with milliseconds and a ``Z``."""
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


class ManagedProcess:
    """One ``sh -c`` command in its own process group, its output drained by threads.

    With ``separate_stderr`` stderr has a pipe and a buffer of its own (read with
    ``stream="stderr"``); otherwise it shares stdout's.
    """

    def __init__(
        self, command: str, cwd: str, env: dict[str, str], *, separate_stderr: bool = False
    ) -> None:
        self.id = "proc-" + secrets.token_hex(6)
        self.command = command
        self.started_at = now_iso()
        self._started = time.monotonic()
        self._cond = threading.Condition()
        self._outputs = {"stdout": OutputBuffer()}
        if separate_stderr:
            self._outputs["stderr"] = OutputBuffer()
        self._open = len(self._outputs)
        self._exit_code: int | None = None
        self._eof = False
        self._done = False
        self._on_done: list[Callable[[], None]] = []
        popen = subprocess.Popen(
            [SHELL, "-c", command],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if separate_stderr else subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
        self.popen: subprocess.Popen[bytes] | None = popen
        self.pid = popen.pid
        # Kept for a hand-over to the supervisor (the reader may close its own at EOF).
        self._keep_fd: int | None = None
        if popen.stdout is not None:
            self._keep_fd = os.dup(popen.stdout.fileno())
        pipes = {"stdout": popen.stdout, "stderr": popen.stderr}
        for name, buffer in self._outputs.items():
            stream = pipes[name]
            if stream is None:  # pragma: no cover - started with a PIPE for it
                continue
            threading.Thread(
                target=self._read,
                args=(stream, buffer),
                name=f"{self.id}-read-{name}",
                daemon=True,
            ).start()
        threading.Thread(target=self._wait, name=f"{self.id}-wait", daemon=True).start()

    @classmethod
    def adopt(cls, record: dict[str, Any], fd: int) -> ManagedProcess:
        """A process a predecessor of this agent started: its output from ``fd`` on.

        It is not this agent's child, so its exit comes as :meth:`exited` (the
        supervisor reaps it); ``record`` may say it has exited already.
        """
        self = cls.__new__(cls)
        self.id = str(record["id"])
        self.command = str(record.get("command", ""))
        self.started_at = str(record.get("started_at", now_iso()))
        self._started = time.monotonic()
        self._cond = threading.Condition()
        self._outputs = {"stdout": OutputBuffer()}
        self._open = 1
        self._exit_code = None
        self._eof = False
        self._done = False
        self._on_done = []
        self.popen = None
        self.pid = int(record["pid"])
        self._keep_fd = os.dup(fd)
        stream = os.fdopen(fd, "rb", buffering=0)
        threading.Thread(
            target=self._read,
            args=(stream, self._outputs["stdout"]),
            name=f"{self.id}-read-stdout",
            daemon=True,
        ).start()
        code = record.get("exit_code")
        if isinstance(code, int):
            self.exited(code)
        return self

    def record(self) -> dict[str, Any]:
        """What the supervisor keeps of this process for a successor agent."""
        return {
            "id": self.id,
            "command": self.command[:65536],
            "started_at": self.started_at,
            "pid": self.pid,
        }

    def handover_fds(self) -> list[int]:
        """Duplicates of the output pipe's read end (none once the process is done)."""
        with self._cond:
            return [] if self._keep_fd is None else [os.dup(self._keep_fd)]

    def exited(self, code: int) -> None:
        """An adopted process ended with ``code`` (as ``waitpid`` put it)."""
        threading.Thread(
            target=self._finish, args=(code,), name=f"{self.id}-exited", daemon=True
        ).start()

    def when_done(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (once) when the process has exited and its output is read."""
        with self._cond:
            if not self._done:
                self._on_done.append(callback)
                return
        callback()

    @property
    def separate_stderr(self) -> bool:
        return "stderr" in self._outputs

    def _read(self, stream: IO[bytes], buffer: OutputBuffer) -> None:
        fd = stream.fileno()
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                with self._cond:
                    buffer.append(chunk)
                    self._cond.notify_all()
        except OSError:
            pass
        finally:
            stream.close()
            with self._cond:
                self._open -= 1
                self._eof = self._open == 0
                self._cond.notify_all()

    def _wait(self) -> None:
        if self.popen is not None:
            self._finish(self.popen.wait())

    def _finish(self, code: int) -> None:
        with self._cond:
            if self._done or self._exit_code is not None:
                return
            self._exit_code = 128 - code if code < 0 else code
            self._cond.wait_for(lambda: self._eof, timeout=EOF_GRACE_SECONDS)
            self._done = True
            if self._keep_fd is not None:
                os.close(self._keep_fd)
                self._keep_fd = None
            callbacks, self._on_done = self._on_done, []
            self._cond.notify_all()
        for callback in callbacks:
            callback()

    def wait(self, timeout: float | None) -> bool:
        """Wait until the command has exited and its output is read; ``True`` if it has."""
        with self._cond:
            return self._cond.wait_for(lambda: self._done, timeout=timeout)

    def wait_closed(self, timeout: float | None) -> bool:
        """Wait until the output pipe closes: every process that held it is gone."""
        with self._cond:
            return self._cond.wait_for(lambda: self._eof, timeout=timeout)

    @property
    def running(self) -> bool:
        with self._cond:
            return not self._done

    @property
    def exit_code(self) -> int | None:
        with self._cond:
            return self._exit_code if self._done else None

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self._started) * 1000)

    def head(self, limit: int, stream: str = "stdout") -> tuple[str, bool]:
        """The first ``limit`` bytes of ``stream`` (``stdout``, or ``stderr`` when separate)."""
        with self._cond:
            return self._outputs[stream].head(limit)

    def tail(self, limit: int, stream: str = "stdout") -> tuple[str, bool]:
        """The last ``limit`` bytes of ``stream`` (``stdout``, or ``stderr`` when separate)."""
        with self._cond:
            return self._outputs[stream].tail(limit)

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the whole process group, unless it is entirely gone."""
        with self._cond:
            gone = self._exit_code is not None and self._eof
        if gone:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def terminate(self, grace: float) -> None:
        """TERM the group, then KILL it if it has not finished within ``grace`` seconds."""
        self.signal(signal.SIGTERM)
        if not self.wait(grace):
            self.signal(signal.SIGKILL)
            self.wait(grace)

    def describe(self) -> Result:
        info: Result = {
            "process_id": self.id,
            "command": self.command,
            "running": self.running,
            "started_at": self.started_at,
        }
        code = self.exit_code
        if code is not None:
            info["exit_code"] = code
        return info


class Watcher:
    """Who keeps the table's processes for a successor agent (the supervisor link)."""

    def adopted(self, proc: ManagedProcess) -> None:
        """``proc`` joined the table."""

    def released(self, proc: ManagedProcess) -> None:
        """``proc`` is done: nothing of it is needed any more."""


class ProcessTable:
    """Background (and timed-out foreground) processes by id, for the agent's lifetime."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: dict[str, ManagedProcess] = {}
        self.watcher = Watcher()

    def add(self, proc: ManagedProcess) -> None:
        with self._lock:
            self._procs[proc.id] = proc
            finished = [p for p in self._procs.values() if not p.running]
            for old in finished[: max(0, len(finished) - MAX_FINISHED)]:
                del self._procs[old.id]
        watcher = self.watcher
        watcher.adopted(proc)
        proc.when_done(lambda: watcher.released(proc))

    def adopt(self, handed: list[tuple[dict[str, Any], int]]) -> None:
        """Take over the processes a predecessor agent handed to the supervisor."""
        for record, fd in handed:
            try:
                proc = ManagedProcess.adopt(record, fd)
            except (KeyError, TypeError, ValueError, OSError):
                os.close(fd)
                continue
            self.add(proc)

    def exited(self, pid: int, code: int) -> None:
        """An adopted process ``pid`` ended (the supervisor reaped it)."""
        for proc in self.all():
            if proc.pid == pid and proc.popen is None:
                proc.exited(code)

    def get(self, process_id: str) -> ManagedProcess:
        with self._lock:
            proc = self._procs.get(process_id)
        if proc is None:
            raise RpcError("not_found", f"process {process_id} not found")
        return proc

    def all(self) -> list[ManagedProcess]:
        with self._lock:
            return list(self._procs.values())

    def kill_all(self) -> None:
        """KILL every process group still running (the agent is going away)."""
        for proc in self.all():
            if proc.running:
                proc.signal(signal.SIGKILL)
