"""``execute`` and the process tools (spec §13.1) against a real agent process.

Each test runs a real server in its own event loop, a workspace built by the real
provisioner (fake backend), and the built agent zipapp as a subprocess connected to
the server's agent endpoint (see ``agent_live_support``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from berth.domain.actors import as_system
from berth.services.workspaces import ACTIVITY_EVERY
from berth.tools import execute as ex
from berth.tools.registry import tool_by_name
from tests.support.chats import error_text, payload
from tests.support.live_agents import Live, LivePool, live

pytestmark = pytest.mark.anyio

ENV = {
    "BERTH_CHAT_AGENT": "true",
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


@pytest.fixture
async def ws(live_pool: LivePool, database_kind: str) -> Live:
    return await live_pool.get(__name__, database_kind, ttl_ms=3_600_000, extra_agents=("aaa",))


async def _run(ws: Live, **arguments: Any) -> dict[str, Any]:
    return payload(await ws.call("execute", arguments))


@pytest.mark.spec("ex.decl")
def test_declarations() -> None:
    """[ex.decl] execute and its companions: arguments and MCP hints."""
    execute = tool_by_name("execute")
    assert execute is not None
    props = execute.input_schema()["properties"]
    assert props["command"]["description"] == (
        'The shell command to execute. Runs under "sh -c" (POSIX).'
    )
    assert props["workdir"]["description"] == "Working directory for the command."
    assert props["timeout"]["type"] == "string"
    assert props["run_in_background"]["type"] == "boolean"
    assert execute.input_schema()["required"] == ["command"]
    hints = {n: tool_by_name(n) for n in ex_tools()}
    assert {n: (s.hints.read_only, s.hints.destructive) for n, s in hints.items() if s} == {
        "execute": (False, True),
        "process_output": (True, False),
        "process_list": (True, False),
        "process_signal": (False, True),
    }
    output = tool_by_name("process_output")
    assert output is not None
    assert output.input_schema()["required"] == ["process_id"]
    signal = tool_by_name("process_signal")
    assert signal is not None
    assert signal.input_schema()["required"] == ["process_id", "signal"]


def ex_tools() -> list[str]:
    return ["execute", "process_output", "process_list", "process_signal"]


@pytest.mark.spec("ex.result", "ex.env", "agentselect")
async def test_foreground_command(ws: Live) -> None:
    """[ex.result] [ex.env] [agentselect] Output interleaved, exit code, duration; the
    non-interactive environment; runs on the agent marked ``chat``, in its directory;
    the call counts as workspace activity (``last_used_at``, deadline = now + TTL)."""
    async with ws.ctx.db.write(as_system()) as store:
        # Activity is written at most every ACTIVITY_EVERY: make the last use older.
        last = dt.datetime.now(dt.UTC) - 2 * ACTIVITY_EVERY
        await store.update_workspace(ws.workspace.id, last_used_at=last)
    before = await ws.read_workspace()
    result = await _run(ws, command="echo out; echo err >&2; pwd; echo $FROM_MANIFEST")
    assert set(result) == {"success", "exit_code", "wall_duration_ms", "output"}
    assert result["success"] is True
    assert result["exit_code"] == 0
    assert isinstance(result["wall_duration_ms"], int)
    assert result["output"] == f"out\nerr\n{ws.project}\nyes\n"
    env = await _run(ws, command="env")
    lines = set(str(env["output"]).splitlines())
    assert {f"{k}={v}" for k, v in ENV.items()} <= lines
    failed = await _run(ws, command="exit 3")
    assert failed == {
        "success": False,
        "exit_code": 3,
        "wall_duration_ms": failed["wall_duration_ms"],
    }
    after = await ws.read_workspace()
    assert before.last_used_at is not None
    assert after.last_used_at is not None
    assert after.last_used_at > before.last_used_at
    assert after.deadline == after.last_used_at + dt.timedelta(hours=1)


@pytest.mark.spec("ex.result")
async def test_workdir_and_output_cap(ws: Live) -> None:
    """[ex.result] ``workdir``; output at most 32 KiB, cut on a UTF-8 boundary."""
    (ws.project / "sub").mkdir(parents=True, exist_ok=True)
    assert (await _run(ws, command="pwd", workdir="sub"))["output"] == f"{ws.project}/sub\n"
    big = await _run(ws, command="head -c 40000 /dev/zero | tr '\\0' a")
    assert big["output"] == "a" * 32768
    assert big["truncated"] is True
    wide = await _run(ws, command="i=0; while [ $i -lt 20000 ]; do printf 'é'; i=$((i+1)); done")
    assert wide["output"] == "é" * 16384
    assert wide["truncated"] is True


@pytest.mark.spec("ex.validation", "ex.timeout")
async def test_argument_errors(ws: Live) -> None:
    """[ex.validation] [ex.timeout] ``command is required``; Go duration errors; ≤ 0."""
    assert error_text(await ws.call("execute", {})) == "command is required"
    assert error_text(await ws.call("execute", {"command": "  "})) == "command is required"
    assert error_text(await ws.call("execute", {"command": " & "})) == "command is required"
    bad = await ws.call("execute", {"command": "true", "timeout": "abc"})
    assert error_text(bad) == 'invalid timeout "abc": time: invalid duration "abc"'
    days = await ws.call("execute", {"command": "true", "timeout": "1d"})
    assert error_text(days) == 'invalid timeout "1d": time: unknown unit "d" in duration "1d"'
    for value in ("0s", "-1m", "0"):
        result = await ws.call("execute", {"command": "true", "timeout": value})
        assert error_text(result) == f'timeout must be positive, got "{value}"'
    # The timeout applies to foreground commands only: a background call ignores it.
    ignored = await _run(ws, command="true", timeout="abc", run_in_background=True)
    assert ignored["success"] is True


@pytest.mark.spec("ex.timeout", "ex.process")
async def test_timeout_leaves_the_command_running(ws: Live) -> None:
    """[ex.timeout] [ex.process] A timed-out command keeps running: partial output, its id;
    process_output then waits for its exit."""
    result = await _run(ws, command="echo partial; sleep 1; echo done", timeout="300ms")
    process_id = result["background_process_id"]
    assert result == {
        "success": False,
        "exit_code": -1,
        "wall_duration_ms": result["wall_duration_ms"],
        "output": "partial\n",
        "error": "command timed out after 300ms",
        "background_process_id": process_id,
    }
    assert result["wall_duration_ms"] >= 300
    finished = payload(await ws.call("process_output", {"process_id": process_id}))
    assert finished == {
        "success": True,
        "exit_code": 0,
        "process_id": process_id,
        "running": False,
        "output": "partial\ndone\n",
    }


@pytest.mark.spec("ex.timeout")
def test_timeout_default_and_cap() -> None:
    """[ex.timeout] Default 10s; Go syntax; longer than 4h is clamped to 4h (as in the
    reference, which clamps rather than refuses)."""
    assert ex.foreground_timeout(None) == dt.timedelta(seconds=10)
    assert ex.foreground_timeout("1.5h") == dt.timedelta(hours=1, minutes=30)
    assert ex.foreground_timeout("250ms") == dt.timedelta(milliseconds=250)
    assert ex.foreground_timeout("4h") == dt.timedelta(hours=4)
    assert ex.foreground_timeout("4h0m1s") == dt.timedelta(hours=4)
    assert ex.foreground_timeout("72h") == dt.timedelta(hours=4)
    with pytest.raises(ValueError, match=r'^timeout must be positive, got "-5s"$'):
        ex.foreground_timeout("-5s")


@pytest.mark.spec("ex.background", "ex.process")
async def test_background_and_the_process_tools(ws: Live) -> None:
    """[ex.background] [ex.process] run_in_background and a trailing ``&`` return at once;
    process_output (snapshot and wait), process_list and process_signal."""
    started = await _run(ws, command="echo up; sleep 30", run_in_background=True)
    pid = started["background_process_id"]
    assert started == {
        "success": True,
        "exit_code": 0,
        "wall_duration_ms": 0,
        "background_process_id": pid,
    }
    amp = await _run(ws, command="sleep 31 &")
    assert amp["wall_duration_ms"] == 0
    listed = payload(await ws.call("process_list"))["processes"]
    by_id = {p["process_id"]: p for p in listed}
    assert by_id[pid]["command"] == "echo up; sleep 30"
    assert by_id[amp["background_process_id"]]["command"] == "sleep 31"  # "&" stripped
    assert by_id[pid]["running"]
    assert by_id[amp["background_process_id"]]["running"]
    snapshot = payload(await ws.call("process_output", {"process_id": pid, "wait_timeout": "0s"}))
    assert snapshot["running"] is True
    assert snapshot["success"] is True
    assert snapshot["note"] == "process is still running"
    sent = payload(await ws.call("process_signal", {"process_id": pid, "signal": "TERM"}))
    assert sent == {"success": True, "message": f'signal "TERM" sent to process {pid}'}
    payload(
        await ws.call(
            "process_signal", {"process_id": amp["background_process_id"], "signal": "kill"}
        )
    )
    ended = payload(await ws.call("process_output", {"process_id": pid, "wait_timeout": "20s"}))
    assert ended["running"] is False
    assert ended["exit_code"] == 143
    assert ended["success"] is False
    assert ended["output"] == "up\n"


@pytest.mark.spec("ex.process")
async def test_process_tool_errors(ws: Live) -> None:
    """[ex.process] Required ids, signal names, bad waits, unknown ids (the agent's text)."""
    assert error_text(await ws.call("process_output", {})) == "process_id is required"
    assert error_text(await ws.call("process_signal", {"signal": "TERM"})) == (
        "process_id is required"
    )
    assert error_text(await ws.call("process_signal", {"process_id": "p", "signal": "HUP"})) == (
        'signal must be "TERM", "KILL" or "INT"'
    )
    wait = await ws.call("process_output", {"process_id": "p", "wait_timeout": "soon"})
    assert error_text(wait) == 'invalid wait_timeout "soon": time: invalid duration "soon"'
    missing = await ws.call("process_output", {"process_id": "proc-nope", "wait_timeout": "0s"})
    assert error_text(missing) == "process proc-nope not found"
    signal = await ws.call("process_signal", {"process_id": "proc-nope", "signal": "INT"})
    assert error_text(signal) == "process proc-nope not found"
    # An id the agent would echo back megabytes of never reaches it.
    for tool, extra in (("process_output", {}), ("process_signal", {"signal": "INT"})):
        long = await ws.call(tool, {"process_id": "p" * 300, **extra})
        assert error_text(long) == "process_id must be <= 256 bytes, got 300"


@pytest.mark.spec("ex.validation")
async def test_command_and_workdir_checks(ws: Live) -> None:
    """[ex.validation] Issue 8: a NUL byte, a command longer than one argument may be, a
    workdir that cannot be a path: clear text errors before the agent; a blank workdir
    is the agent's directory."""
    nul = await ws.call("execute", {"command": "echo a\0b"})
    assert error_text(nul) == "command must not contain NUL bytes"
    size = ex.MAX_COMMAND_BYTES + 1
    long = await ws.call("execute", {"command": "#" * size})
    assert error_text(long) == (
        f"command must be <= {ex.MAX_COMMAND_BYTES} bytes, got {size}; write a longer script "
        "to a file with write_file and run that"
    )
    longest = await _run(ws, command="echo ok #" + "x" * (ex.MAX_COMMAND_BYTES - 9))
    assert longest["output"] == "ok\n"
    for workdir, message in (
        ("a\0b", "workdir must not contain NUL bytes"),
        ("a/" * 2000, "workdir must be <= 256 levels deep, got 2000"),
        ("w" * 5000, "workdir must be <= 4096 bytes, got 5000"),
    ):
        result = await ws.call("execute", {"command": "pwd", "workdir": workdir})
        assert error_text(result) == message
    blank = await _run(ws, command="pwd", workdir="  ")
    assert blank["output"] == f"{ws.project}\n"
    assert ws.server.runtime.gateway.holds(ws.agent.id)


@pytest.mark.spec("ex.background", "ex.note")
def test_trailing_ampersand_and_note_rules() -> None:
    """[ex.background] [ex.note] Only a single trailing ``&`` backgrounds; file dumps get
    the read_file note."""
    assert ex.split_background("npm start &", False) == ("npm start", True)
    assert ex.split_background("  npm start  &  ", False) == ("npm start", True)
    assert ex.split_background("make && make test", False) == ("make && make test", False)
    assert ex.split_background("a && b &&", False) == ("a && b &&", False)
    assert ex.split_background("cmd |&", False) == ("cmd |&", False)
    assert ex.split_background("cmd &", True) == ("cmd &", True)
    note = "Consider using read_file instead of dumping file contents with shell commands."
    for command in ("cat README.md", "grep -l TODO -r .", "rg -l main src", "rg x --include-all"):
        assert ex.file_dump_note(command) == note, command
    for command in ("echo cat", "catalog x", "grep TODO file", "rg main"):
        assert ex.file_dump_note(command) is None, command


@pytest.mark.spec("ex.note")
async def test_file_dump_note(ws: Live) -> None:
    """[ex.note] ``cat <file>`` gets the note in its result."""
    (ws.project / "a.txt").write_text("hello\n")
    result = await _run(ws, command="cat a.txt")
    assert result["output"] == "hello\n"
    assert result["note"] == (
        "Consider using read_file instead of dumping file contents with shell commands."
    )
    assert "note" not in await _run(ws, command="echo cat a.txt")


@pytest.mark.spec("agent.status")
async def test_agent_gone(database_url: str, tmp_path: Path) -> None:
    """[agent.status] An agent that went away: a text error saying so, suggesting
    start_workspace. (A workspace of its own: the module's shared one keeps its agent.)"""
    async with live(database_url, tmp_path) as ws:
        await _agent_gone(ws)


async def _agent_gone(ws: Live) -> None:
    await ws.stop_agent()
    for tool, arguments in (
        ("execute", {"command": "true"}),
        ("process_list", {}),
        ("read_file", {"path": "x"}),
    ):
        text = error_text(await ws.call(tool, arguments))
        assert text.startswith("the workspace agent is unreachable: "), text
        assert "start_workspace" in text
