"""Commands the agent runs: foreground exec with a timeout, background processes, signals.

Every command is ``sh -c`` in a new session, so it leads its own process group and a
signal reaches everything it started (``make`` and its compilers, a server and its
workers). By default stdout and stderr share one pipe, so the output is interleaved
exactly as a terminal would show it. A reader thread drains the pipe into an
:class:`OutputBuffer` that keeps the first and the last :data:`PROCESS_BUFFER_BYTES`
bytes, so a chatty process can run for days in bounded memory while ``exec`` still
returns the head and ``process_output`` the tail.

A foreground command that outlives its timeout is not killed: it is adopted by the
:class:`ProcessTable` as a background process, and the caller gets its id. The table
lives as long as the agent process, so ids survive a reconnect to the server.

``exec`` with ``separate_stderr`` (what ``berth exec`` asks for) captures stderr on a
pipe of its own, with its own buffer and reader thread, and behaves like
``timeout(1)``: a command that outlives its timeout is terminated (TERM to its group,
KILL after :data:`TERMINATE_GRACE_SECONDS`), never adopted, and it cannot run in the
background.
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
from typing import IO, TYPE_CHECKING

from .params import Params, Result, RpcError, get_bool, get_env, get_int, get_str, invalid
from .protocol import DEFAULT_EXEC_TIMEOUT_MS, DEFAULT_OUTPUT_LIMIT, PROCESS_BUFFER_BYTES

if TYPE_CHECKING:
    from .context import AgentContext

SHELL = "/bin/sh" if os.path.exists("/bin/sh") else "sh"
SIGNALS = {"TERM": signal.SIGTERM, "KILL": signal.SIGKILL, "INT": signal.SIGINT}
# After the shell exits, how long to wait for the pipe to close: a child left running in
# the background (``server &``) keeps it open, and must not hold up the caller.
EOF_GRACE_SECONDS = 0.5
# Finished background processes kept for process_list/process_output.
MAX_FINISHED = 64
# ``separate_stderr`` on timeout: how long the group has between TERM and KILL.
TERMINATE_GRACE_SECONDS = 2.0
_SLACK = 4  # bytes kept beyond the limit so a cut can see the next UTF-8 byte


def now_iso() -> str:
    """The current time, ISO 8601 UTC with milliseconds and a ``Z``."""
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _is_continuation(byte: int) -> bool:
    return byte & 0xC0 == 0x80


def utf8_head(data: bytes, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes from the start, not ending inside a UTF-8 sequence."""
    if len(data) <= limit:
        return data, False
    cut = limit
    while cut > 0 and cut > limit - 3 and _is_continuation(data[cut]):
        cut -= 1
    return data[:cut], True


def utf8_tail(data: bytes, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes from the end, not starting inside a UTF-8 sequence."""
    if len(data) <= limit:
        return data, False
    start = len(data) - limit
    while start < len(data) and start < len(data) - limit + 3 and _is_continuation(data[start]):
        start += 1
    return data[start:], True


class OutputBuffer:
    """The head and the tail of a stream, each bounded; not thread-safe on its own."""

    def __init__(self, keep: int = PROCESS_BUFFER_BYTES) -> None:
        self.keep = keep
        self.total = 0
        self._head = bytearray()
        self._tail = bytearray()

    def append(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.keep + _SLACK - len(self._head)
        if room > 0:
            self._head += chunk[:room]
        self._tail += chunk
        excess = len(self._tail) - (self.keep + _SLACK)
        if excess > 0:
            del self._tail[:excess]

    def head(self, limit: int) -> tuple[str, bool]:
        """The first ``limit`` bytes as text, and whether there was more."""
        data, cut = utf8_head(bytes(self._head), min(limit, self.keep))
        return data.decode("utf-8", errors="replace"), cut or self.total > len(self._head)

    def tail(self, limit: int) -> tuple[str, bool]:
        """The last ``limit`` bytes as text, and whether there was more before them."""
        data, cut = utf8_tail(bytes(self._tail), min(limit, self.keep))
        return data.decode("utf-8", errors="replace"), cut or self.total > len(self._tail)


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
        self.popen = subprocess.Popen(
            [SHELL, "-c", command],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if separate_stderr else subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
        pipes = {"stdout": self.popen.stdout, "stderr": self.popen.stderr}
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
        code = self.popen.wait()
        with self._cond:
            self._exit_code = 128 - code if code < 0 else code
            self._cond.wait_for(lambda: self._eof, timeout=EOF_GRACE_SECONDS)
            self._done = True
            self._cond.notify_all()

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
            os.killpg(self.popen.pid, sig)

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


class ProcessTable:
    """Background (and timed-out foreground) processes by id, for the agent's lifetime."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: dict[str, ManagedProcess] = {}

    def add(self, proc: ManagedProcess) -> None:
        with self._lock:
            self._procs[proc.id] = proc
            finished = [p for p in self._procs.values() if not p.running]
            for old in finished[: max(0, len(finished) - MAX_FINISHED)]:
                del self._procs[old.id]

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


def _output_limit(params: Params) -> int:
    limit = get_int(params, "output_limit", DEFAULT_OUTPUT_LIMIT)
    if limit <= 0:
        raise invalid("output_limit must be positive")
    return min(limit, PROCESS_BUFFER_BYTES)


def exec_command(ctx: AgentContext, params: Params) -> Result:
    """``exec``: run a command in the foreground (with a timeout) or the background."""
    command = get_str(params, "command", required=True, allow_empty=False)
    timeout_ms = get_int(params, "timeout_ms", DEFAULT_EXEC_TIMEOUT_MS)
    if timeout_ms <= 0:
        raise invalid("timeout_ms must be positive")
    workdir = get_str(params, "workdir")
    env = ctx.env(get_env(params, "env"))
    background = get_bool(params, "background")
    separate = get_bool(params, "separate_stderr")
    if separate and background:
        raise invalid("separate_stderr cannot be combined with background")
    limit = _output_limit(params)
    cwd = ctx.resolve(workdir) if workdir else ctx.directory()
    if not os.path.isdir(cwd):
        raise RpcError("not_found", f"working directory does not exist: {cwd}")
    try:
        proc = ManagedProcess(command, cwd, env, separate_stderr=separate)
    except OSError as err:
        raise RpcError("failed", f"could not start the command: {err}") from err
    if separate:
        return _exec_separate(proc, timeout_ms, limit)
    result: Result = {"exit_code": 0, "output": "", "truncated": False, "timed_out": False}
    if background:
        ctx.processes.add(proc)
        result.update(wall_duration_ms=0, process_id=proc.id)
        return result
    finished = proc.wait(timeout_ms / 1000)
    output, truncated = proc.head(limit)
    result.update(output=output, truncated=truncated, wall_duration_ms=proc.elapsed_ms())
    if not finished:
        ctx.processes.add(proc)
        result.update(exit_code=-1, timed_out=True, process_id=proc.id)
        return result
    code = proc.exit_code
    result["exit_code"] = -1 if code is None else code
    return result


def _exec_separate(proc: ManagedProcess, timeout_ms: int, limit: int) -> Result:
    """``exec`` with ``separate_stderr``: a timed-out command is terminated, not adopted."""
    timed_out = not proc.wait(timeout_ms / 1000)
    if timed_out:
        proc.terminate(TERMINATE_GRACE_SECONDS)
    stdout, stdout_cut = proc.head(limit, "stdout")
    stderr, stderr_cut = proc.head(limit, "stderr")
    code = proc.exit_code
    return {
        "exit_code": -1 if timed_out or code is None else code,
        "stdout": stdout,
        "stderr": stderr,
        "truncated": stdout_cut or stderr_cut,
        "timed_out": timed_out,
        "wall_duration_ms": proc.elapsed_ms(),
    }


def process_output(ctx: AgentContext, params: Params) -> Result:
    """``process_output``: wait a while for a process to exit, then report its tail."""
    process_id = get_str(params, "process_id", required=True, allow_empty=False)
    wait_ms = get_int(params, "wait_timeout_ms", DEFAULT_EXEC_TIMEOUT_MS)
    if wait_ms < 0:
        raise invalid("wait_timeout_ms must not be negative")
    limit = _output_limit(params)
    proc = ctx.processes.get(process_id)
    if wait_ms > 0:
        proc.wait(wait_ms / 1000)
    output, truncated = proc.tail(limit)
    result: Result = {"process_id": proc.id, "running": proc.running}
    code = proc.exit_code
    if code is not None:
        result["exit_code"] = code
    result.update(output=output, truncated=truncated)
    return result


def process_list(ctx: AgentContext, params: Params) -> Result:
    """``process_list``: every process the table knows, oldest first."""
    del params
    return {"processes": [proc.describe() for proc in ctx.processes.all()]}


def process_signal(ctx: AgentContext, params: Params) -> Result:
    """``process_signal``: TERM, KILL or INT to a process's whole group."""
    process_id = get_str(params, "process_id", required=True, allow_empty=False)
    name = get_str(params, "signal", required=True, allow_empty=False).upper()
    name = name[3:] if name.startswith("SIG") else name
    if name not in SIGNALS:
        raise invalid(f"signal must be one of {', '.join(SIGNALS)}, got {name!r}")
    proc = ctx.processes.get(process_id)
    try:
        proc.signal(SIGNALS[name])
    except PermissionError as err:
        raise RpcError("failed", f"could not signal process {process_id}: {err}") from err
    return {}
