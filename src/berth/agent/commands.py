"""The command RPCs: ``exec``, ``process_output``, ``process_list``, ``process_signal``.

They read their params, then drive :class:`~.processes.ManagedProcess` and the
context's :class:`~.processes.ProcessTable` (see :mod:`.processes` for how a command
runs, what a timeout does and how output is kept).
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

from .params import Params, Result, RpcError, get_bool, get_env, get_int, get_str, invalid
from .processes import ManagedProcess
from .protocol import DEFAULT_EXEC_TIMEOUT_MS, DEFAULT_OUTPUT_LIMIT, PROCESS_BUFFER_BYTES

if TYPE_CHECKING:
    from .context import AgentContext

SIGNALS = {"TERM": signal.SIGTERM, "KILL": signal.SIGKILL, "INT": signal.SIGINT}
TERMINATE_GRACE_SECONDS = 2.0
"""``separate_stderr`` on timeout: how long the group has between TERM and KILL."""


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
