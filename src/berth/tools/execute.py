"""``execute`` and its companions ``process_output``, ``process_list``, ``process_signal``
(spec §13.1): shell commands in the chat's workspace, through the agent's ``exec``.

Port of the reference's ``execute.go`` without its execution ledger: a foreground
command waits up to its timeout and is then left running in the background (its id is
returned), ``run_in_background`` or a trailing ``&`` returns at once, and every command
gets a non-interactive environment so nothing waits for a terminal.

Arguments are checked before they reach the agent: a command with a NUL byte (no
``exec`` takes one) or longer than one argument may be (:data:`MAX_COMMAND_BYTES`,
Linux's ``MAX_ARG_STRLEN`` less its NUL), a ``workdir`` that is not a usable path
(:func:`berth.agent.params.path_problem`), a ``process_id`` that cannot be one.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from berth.agent.params import path_problem
from berth.agent.protocol import SIGNALS
from berth.domain.gocompat import DurationError, format_duration, go_quote, parse_duration
from berth.tools.context import ChatContext
from berth.tools.result import ToolResult
from berth.tools.workspace_tools import (
    RPC_MARGIN_SECONDS,
    Target,
    call_agent,
    run_workspace_tool,
)

EXECUTE_NAME = "execute"
EXECUTE_DESCRIPTION = (
    'Execute a shell command in the workspace. Runs under "sh -c" (POSIX). Waits for '
    "completion up to the timeout (default 10s, override with the timeout parameter e.g. "
    "'30s', '5m'; at most 4h). If the command exceeds the timeout, the response includes a "
    "background_process_id; use process_output with that ID to re-attach and wait for the "
    "result. Use run_in_background=true for persistent processes (dev servers, file "
    "watchers) or when you want to continue other work while the command runs. Never use "
    "shell '&' for backgrounding."
)
COMMAND_DESCRIPTION = 'The shell command to execute. Runs under "sh -c" (POSIX).'
TIMEOUT_DESCRIPTION = (
    "How long to wait for completion (e.g. '30s', '5m'). Default is 10s, at most 4h. The "
    "process keeps running if this expires and you get a background_process_id to "
    "re-attach. Only applies to foreground commands."
)
WORKDIR_DESCRIPTION = "Working directory for the command."
BACKGROUND_DESCRIPTION = (
    "Run without blocking. Use for persistent processes (dev servers, file watchers) or "
    "when you want to continue working while a command runs and check the result later "
    "with process_output. For commands whose result you need before continuing, prefer "
    "foreground with a longer timeout. Do NOT use shell & to background processes. Always "
    "use this parameter instead."
)

PROCESS_OUTPUT_NAME = "process_output"
PROCESS_OUTPUT_DESCRIPTION = (
    "Retrieve output from a tracked process by ID. Use the process_id returned by execute "
    "with run_in_background=true or from a timed-out execute's background_process_id. "
    "Blocks up to 10s for the process to exit, then returns the output and exit_code. If "
    "still running after the timeout, returns the output so far. Use wait_timeout to "
    "override the default 10s wait (e.g. '30s', or '0s' for an immediate snapshot without "
    "waiting)."
)
PROCESS_ID_DESCRIPTION = "The ID of the process (from execute or process_list)."
WAIT_TIMEOUT_DESCRIPTION = (
    "Override the default 10s block duration. The call blocks until the process exits or "
    "this timeout is reached. Set to '0s' for an immediate snapshot without waiting."
)

PROCESS_LIST_NAME = "process_list"
PROCESS_LIST_DESCRIPTION = (
    "List all tracked processes in the workspace. Returns process IDs, commands, whether "
    "they are still running, and exit codes. Use this to discover processes or check which "
    "are still running."
)

PROCESS_SIGNAL_NAME = "process_signal"
PROCESS_SIGNAL_DESCRIPTION = (
    'Send a signal to a tracked process and its children. Use "TERM" for a graceful '
    'shutdown, "INT" to interrupt, or "KILL" to force it to stop. Use the process_id '
    "returned by execute with run_in_background=true or from process_list."
)
SIGNAL_DESCRIPTION = 'The signal to send: "TERM", "KILL" or "INT".'

DEFAULT_TIMEOUT = dt.timedelta(seconds=10)
MAX_TIMEOUT = dt.timedelta(hours=4)
MAX_OUTPUT_BYTES = 32 * 1024
MAX_COMMAND_BYTES = 128 * 1024 - 1
"""The longest command: ``sh -c`` gets it as one argument, and Linux takes 128 KiB."""
MAX_PROCESS_ID_BYTES = 256
CHAT_AGENT_ENV = "BERTH_CHAT_AGENT"
NON_INTERACTIVE_ENV = {
    "GIT_EDITOR": "true",
    "GIT_SEQUENCE_EDITOR": "true",
    "EDITOR": "true",
    "VISUAL": "true",
    "GIT_TERMINAL_PROMPT": "0",
    "NO_COLOR": "1",
    "TERM": "dumb",
    "PAGER": "cat",
    "GIT_PAGER": "cat",
}
FILE_DUMP_NOTE = "Consider using read_file instead of dumping file contents with shell commands."
_FILE_DUMP_PATTERNS = (
    re.compile(r"^cat\s+"),
    re.compile(r"^(rg|grep)\s+.*--include-all"),
    re.compile(r"^(rg|grep)\s+-l\s+"),
)
STILL_RUNNING_NOTE = "process is still running"


def command_env() -> dict[str, str]:
    """[ex.env] The variables added to every command's environment."""
    return {CHAT_AGENT_ENV: "true", **NON_INTERACTIVE_ENV}


def split_background(command: str, background: bool) -> tuple[str, bool]:
    """[ex.background] A trailing single ``&`` (not ``&&``, ``|&``) means background."""
    trimmed = command.strip()
    if (
        not background
        and trimmed.endswith("&")
        and not trimmed.endswith("&&")
        and not trimmed.endswith("|&")
    ):
        return trimmed[:-1].strip(), True
    return command, background


def parse_timeout(name: str, value: str) -> dt.timedelta:
    """A Go duration argument; ``ValueError`` with the tool's text error."""
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise ValueError(f"invalid {name} {go_quote(value)}: {exc}") from None


def foreground_timeout(value: str | None) -> dt.timedelta:
    """[ex.timeout] Default 10s; a Go duration, positive; longer than 4h is clamped to 4h."""
    if value is None:
        return DEFAULT_TIMEOUT
    parsed = parse_timeout("timeout", value)
    if parsed <= dt.timedelta(0):
        raise ValueError(f"timeout must be positive, got {go_quote(value)}")
    return min(parsed, MAX_TIMEOUT)


def command_problem(command: str) -> str | None:
    """Why ``command`` cannot be run (the text error), or ``None``."""
    if "\0" in command:
        return "command must not contain NUL bytes"
    size = len(command.encode("utf-8", errors="surrogatepass"))
    if size > MAX_COMMAND_BYTES:
        return (
            f"command must be <= {MAX_COMMAND_BYTES} bytes, got {size}; write a longer "
            "script to a file with write_file and run that"
        )
    return None


def process_id_problem(process_id: str) -> str | None:
    """``process_id is required``, or why it cannot be a process id, or ``None``."""
    if not process_id.strip():
        return "process_id is required"
    size = len(process_id.encode("utf-8", errors="surrogatepass"))
    if size > MAX_PROCESS_ID_BYTES:
        return f"process_id must be <= {MAX_PROCESS_ID_BYTES} bytes, got {size}"
    return None


def file_dump_note(command: str) -> str | None:
    """[ex.note] Advice for commands that dump whole files."""
    text = command.lstrip()
    return FILE_DUMP_NOTE if any(p.search(text) for p in _FILE_DUMP_PATTERNS) else None


def limit_output(output: str) -> tuple[str, bool]:
    """At most 32 KiB of output, cut on a UTF-8 boundary; and whether it was cut."""
    data = output.encode("utf-8")
    if len(data) <= MAX_OUTPUT_BYTES:
        return output, False
    return data[:MAX_OUTPUT_BYTES].decode("utf-8", errors="ignore"), True


def _ms(duration: dt.timedelta) -> int:
    return max(1, int(duration.total_seconds() * 1000))


def _output_fields(result: dict[str, Any], response: dict[str, Any]) -> None:
    output, cut = limit_output(str(response.get("output") or ""))
    if output:
        result["output"] = output
    if cut or response.get("truncated"):
        result["truncated"] = True


async def execute(
    ctx: ChatContext,
    *,
    command: str,
    timeout: str | None = None,  # noqa: ASYNC109 - the tool argument, a Go duration
    workdir: str | None = None,
    run_in_background: bool | None = None,
) -> ToolResult:
    async def body(target: Target) -> ToolResult:
        if not command.strip():  # [ex.validation]
            return ToolResult.error("command is required")
        text, background = split_background(command, bool(run_in_background))
        if not text:
            return ToolResult.error("command is required")
        if problem := command_problem(text):
            return ToolResult.error(problem)
        directory = workdir if workdir and workdir.strip() else None
        if directory and (problem := path_problem("workdir", directory)):
            return ToolResult.error(problem)
        try:  # the timeout of a background command is ignored, even a bad one
            limit = DEFAULT_TIMEOUT if background else foreground_timeout(timeout)
        except ValueError as exc:
            return ToolResult.error(str(exc))
        params: dict[str, Any] = {
            "command": text,
            "env": command_env(),
            "output_limit": MAX_OUTPUT_BYTES,
        }
        if directory:
            params["workdir"] = directory
        if background:
            params["background"] = True
            response = await call_agent(ctx, target, "exec", params)
            return ToolResult.json(
                {
                    "success": True,
                    "exit_code": 0,
                    "wall_duration_ms": 0,
                    "background_process_id": str(response.get("process_id", "")),
                }
            )
        params["timeout_ms"] = _ms(limit)
        within = limit.total_seconds() + RPC_MARGIN_SECONDS
        response = await call_agent(ctx, target, "exec", params, within=within)
        return ToolResult.json(_foreground_result(text, limit, response))

    return await run_workspace_tool(ctx, body)


def _foreground_result(
    command: str, limit: dt.timedelta, response: dict[str, Any]
) -> dict[str, Any]:
    exit_code = int(response.get("exit_code", -1))
    timed_out = bool(response.get("timed_out"))
    result: dict[str, Any] = {
        "success": exit_code == 0 and not timed_out,
        "exit_code": -1 if timed_out else exit_code,
        "wall_duration_ms": int(response.get("wall_duration_ms", 0)),
    }
    _output_fields(result, response)
    if timed_out:
        result["error"] = f"command timed out after {format_duration(limit)}"
        result["background_process_id"] = str(response.get("process_id", ""))
    if note := file_dump_note(command):
        result["note"] = note
    return result


async def process_output(
    ctx: ChatContext, *, process_id: str, wait_timeout: str | None = None
) -> ToolResult:
    async def body(target: Target) -> ToolResult:
        if problem := process_id_problem(process_id):
            return ToolResult.error(problem)
        wait = DEFAULT_TIMEOUT
        if wait_timeout is not None:
            try:
                wait = parse_timeout("wait_timeout", wait_timeout)
            except ValueError as exc:
                return ToolResult.error(str(exc))
        wait = min(max(wait, dt.timedelta(0)), MAX_TIMEOUT)
        params = {
            "process_id": process_id.strip(),
            "wait_timeout_ms": int(wait.total_seconds() * 1000),
            "output_limit": MAX_OUTPUT_BYTES,
        }
        within = wait.total_seconds() + RPC_MARGIN_SECONDS
        response = await call_agent(ctx, target, "process_output", params, within=within)
        running = bool(response.get("running"))
        exit_code = int(response.get("exit_code") or 0)
        result: dict[str, Any] = {
            "success": running or exit_code == 0,
            "exit_code": exit_code,
            "process_id": str(response.get("process_id", process_id.strip())),
            "running": running,
        }
        _output_fields(result, response)
        if running:
            result["note"] = STILL_RUNNING_NOTE
        return ToolResult.json(result)

    return await run_workspace_tool(ctx, body)


async def process_list(ctx: ChatContext) -> ToolResult:
    async def body(target: Target) -> ToolResult:
        response = await call_agent(ctx, target, "process_list", {})
        return ToolResult.json({"processes": response.get("processes", [])})

    return await run_workspace_tool(ctx, body)


async def process_signal(ctx: ChatContext, *, process_id: str, signal: str) -> ToolResult:
    async def body(target: Target) -> ToolResult:
        if problem := process_id_problem(process_id):
            return ToolResult.error(problem)
        name = signal.strip().upper().removeprefix("SIG")
        if name not in SIGNALS:
            return ToolResult.error('signal must be "TERM", "KILL" or "INT"')
        params = {"process_id": process_id.strip(), "signal": name}
        await call_agent(ctx, target, "process_signal", params)
        return ToolResult.json(
            {
                "success": True,
                "message": f"signal {go_quote(name)} sent to process {process_id.strip()}",
            }
        )

    return await run_workspace_tool(ctx, body)
