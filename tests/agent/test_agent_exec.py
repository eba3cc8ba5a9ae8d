"""exec, process_output, process_list, process_signal, called as the dispatcher calls them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from berth.agent.context import AgentContext
from berth.agent.output import OutputBuffer, utf8_head, utf8_tail
from berth.agent.rpc import respond
from tests.support.agents import call, call_error

# Commands that wait for the test (never for the clock): they spin until a file appears.
WAIT_FOR_GO = "while [ ! -e go ]; do sleep 0.01; done"


def test_exec_foreground_output_and_exit_code(ctx: AgentContext) -> None:
    result = call(ctx, "exec", {"command": "echo out; echo err >&2; echo again; exit 3"})
    assert result["exit_code"] == 3
    assert result["output"] == "out\nerr\nagain\n"  # one pipe: interleaved in order
    assert result["truncated"] is False
    assert result["timed_out"] is False
    assert isinstance(result["wall_duration_ms"], int)
    assert "process_id" not in result


def test_exec_runs_under_sh_in_the_agent_directory(ctx: AgentContext, workdir: Path) -> None:
    (workdir / "sub").mkdir()
    assert call(ctx, "exec", {"command": "pwd"})["output"] == f"{workdir}\n"
    relative = call(ctx, "exec", {"command": "pwd", "workdir": "sub"})
    assert relative["output"] == f"{workdir / 'sub'}\n"
    absolute = call(ctx, "exec", {"command": "pwd", "workdir": str(workdir.parent)})
    assert absolute["output"] == f"{workdir.parent}\n"
    missing = call_error(ctx, "exec", {"command": "pwd", "workdir": "nope"})
    assert missing.code == "not_found"
    assert missing.message == f"working directory does not exist: {workdir / 'nope'}"


def test_exec_environment_layers(ctx: AgentContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_OWN", "from-agent")
    monkeypatch.setenv("BERTH_AGENT_TOKEN", "secret")
    command = 'echo "$AGENT_OWN $MANIFEST_VAR $CALL_VAR ${BERTH_AGENT_TOKEN:-unset}"'
    result = call(ctx, "exec", {"command": command, "env": {"CALL_VAR": "from-call"}})
    assert result["output"] == "from-agent from-manifest from-call unset\n"
    override = call(ctx, "exec", {"command": "echo $MANIFEST_VAR", "env": {"MANIFEST_VAR": "x"}})
    assert override["output"] == "x\n"


def test_exec_truncates_on_a_utf8_boundary(ctx: AgentContext, workdir: Path) -> None:
    (workdir / "e.txt").write_text("é" * 100, encoding="utf-8")  # two bytes each
    result = call(ctx, "exec", {"command": "cat e.txt", "output_limit": 5})
    assert result["output"] == "éé"
    assert result["truncated"] is True
    assert result["exit_code"] == 0
    exact = call(ctx, "exec", {"command": "cat e.txt", "output_limit": 200})
    assert exact["output"] == "é" * 100
    assert exact["truncated"] is False


def test_exec_default_output_cap_is_32_kib(ctx: AgentContext) -> None:
    result = call(ctx, "exec", {"command": "head -c 100000 /dev/zero | tr '\\0' a"})
    assert result["output"] == "a" * 32 * 1024
    assert result["truncated"] is True


def test_exec_timeout_keeps_the_process(ctx: AgentContext, workdir: Path) -> None:
    command = f"echo started; {WAIT_FOR_GO}; echo finished"
    result = call(ctx, "exec", {"command": command, "timeout_ms": 200})
    assert result["timed_out"] is True
    assert result["exit_code"] == -1
    assert result["output"] == "started\n"
    process_id = result["process_id"]
    listed = call(ctx, "process_list")["processes"]
    assert [p["process_id"] for p in listed] == [process_id]
    assert listed[0]["running"] is True
    assert listed[0]["command"] == command
    snapshot = call(ctx, "process_output", {"process_id": process_id, "wait_timeout_ms": 0})
    assert snapshot == {
        "process_id": process_id,
        "running": True,
        "output": "started\n",
        "truncated": False,
    }
    (workdir / "go").touch()
    done = call(ctx, "process_output", {"process_id": process_id, "wait_timeout_ms": 10_000})
    assert done["running"] is False
    assert done["exit_code"] == 0
    assert done["output"] == "started\nfinished\n"
    assert call(ctx, "process_list")["processes"][0]["exit_code"] == 0


def test_exec_background_returns_at_once(ctx: AgentContext, workdir: Path) -> None:
    result = call(ctx, "exec", {"command": f"{WAIT_FOR_GO}; echo bg-done", "background": True})
    assert result["exit_code"] == 0
    assert result["wall_duration_ms"] == 0
    assert result["timed_out"] is False
    process_id = result["process_id"]
    assert isinstance(process_id, str)
    (workdir / "go").touch()
    done = call(ctx, "process_output", {"process_id": process_id, "wait_timeout_ms": 10_000})
    assert done["exit_code"] == 0
    assert done["output"] == "bg-done\n"


def test_exec_separate_stderr(ctx: AgentContext) -> None:
    command = "echo out; echo err >&2; printf 'no newline'; printf 'e2' >&2; exit 4"
    result = call(ctx, "exec", {"command": command, "separate_stderr": True})
    assert result["exit_code"] == 4
    assert result["stdout"] == "out\nno newline"
    assert result["stderr"] == "err\ne2"
    assert "output" not in result
    assert result["truncated"] is False
    assert result["timed_out"] is False
    assert isinstance(result["wall_duration_ms"], int)
    assert "process_id" not in result
    assert call(ctx, "process_list")["processes"] == []


def test_exec_separate_stderr_caps_each_stream(ctx: AgentContext) -> None:
    both = "head -c 100 /dev/zero | tr '\\0' a; head -c 100 /dev/zero | tr '\\0' b >&2"
    result = call(ctx, "exec", {"command": both, "separate_stderr": True, "output_limit": 10})
    assert (result["stdout"], result["stderr"], result["truncated"]) == ("a" * 10, "b" * 10, True)
    only_err = "echo short; head -c 100 /dev/zero | tr '\\0' b >&2"
    err_cut = call(ctx, "exec", {"command": only_err, "separate_stderr": True, "output_limit": 10})
    assert (err_cut["stdout"], err_cut["truncated"]) == ("short\n", True)
    fits = call(ctx, "exec", {"command": "echo a; echo b >&2", "separate_stderr": True})
    assert fits["truncated"] is False


def test_exec_separate_stderr_terminates_on_timeout(ctx: AgentContext, workdir: Path) -> None:
    command = f"echo $$ > pid; echo started; echo warming >&2; {WAIT_FOR_GO}; echo finished"
    params = {"command": command, "separate_stderr": True, "timeout_ms": 200}
    result = call(ctx, "exec", params)
    assert result["timed_out"] is True
    assert result["exit_code"] == -1
    assert (result["stdout"], result["stderr"]) == ("started\n", "warming\n")
    assert "process_id" not in result
    assert call(ctx, "process_list")["processes"] == []  # terminated, not adopted
    with pytest.raises(ProcessLookupError):  # the shell is gone (and reaped)
        os.kill(int((workdir / "pid").read_text()), 0)


def test_exec_separate_stderr_refuses_background(ctx: AgentContext) -> None:
    err = call_error(ctx, "exec", {"command": "true", "separate_stderr": True, "background": True})
    assert (err.code, err.message) == (
        "invalid_params",
        "separate_stderr cannot be combined with background",
    )
    bad = call_error(ctx, "exec", {"command": "true", "separate_stderr": "yes"})
    assert (bad.code, bad.message) == ("invalid_params", "separate_stderr must be a boolean")


def test_exec_default_path_ignores_false_separate_stderr(ctx: AgentContext) -> None:
    result = call(ctx, "exec", {"command": "echo out; echo err >&2", "separate_stderr": False})
    assert result["output"] == "out\nerr\n"
    assert "stdout" not in result


def test_process_output_returns_the_tail(ctx: AgentContext) -> None:
    result = call(ctx, "exec", {"command": "seq 1 5000", "background": True})
    out = call(
        ctx,
        "process_output",
        {"process_id": result["process_id"], "wait_timeout_ms": 10_000, "output_limit": 10},
    )
    assert out["output"] == "4999\n5000\n"
    assert out["truncated"] is True


def test_process_signal_reaches_the_whole_group(ctx: AgentContext) -> None:
    # The shell's child holds the output pipe too: the pipe closes only when both are dead.
    result = call(ctx, "exec", {"command": "sleep 300 & sleep 300; wait", "background": True})
    process_id = result["process_id"]
    proc = ctx.processes.get(process_id)
    assert call(ctx, "process_signal", {"process_id": process_id, "signal": "TERM"}) == {}
    assert proc.wait_closed(10), "a process of the group survived TERM"
    done = call(ctx, "process_output", {"process_id": process_id, "wait_timeout_ms": 10_000})
    assert done["running"] is False
    assert done["exit_code"] == 128 + 15


@pytest.mark.parametrize(("name", "code"), [("KILL", 128 + 9), ("INT", 128 + 2), ("SIGKILL", 137)])
def test_process_signal_names(ctx: AgentContext, workdir: Path, name: str, code: int) -> None:
    # exec replaces the shell, so the signal hits the command itself.
    result = call(ctx, "exec", {"command": "exec sleep 300", "background": True})
    call(ctx, "process_signal", {"process_id": result["process_id"], "signal": name})
    done = call(ctx, "process_output", {"process_id": result["process_id"]})
    assert done["exit_code"] == code


def test_process_errors(ctx: AgentContext) -> None:
    missing = call_error(ctx, "process_output", {"process_id": "proc-nope"})
    assert (missing.code, missing.message) == ("not_found", "process proc-nope not found")
    assert call_error(ctx, "process_signal", {"process_id": "x", "signal": "TERM"}).code == (
        "not_found"
    )
    bg = call(ctx, "exec", {"command": "exec sleep 300", "background": True})
    bad = call_error(ctx, "process_signal", {"process_id": bg["process_id"], "signal": "HUP"})
    assert bad.code == "invalid_params"
    assert bad.message == "signal must be one of TERM, KILL, INT, got 'HUP'"
    assert call_error(ctx, "process_output", {}).message == "process_id is required"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "command is required"),
        ({"command": ""}, "command is required"),
        ({"command": 3}, "command must be a string"),
        ({"command": "true", "timeout_ms": "1s"}, "timeout_ms must be an integer"),
        ({"command": "true", "timeout_ms": True}, "timeout_ms must be an integer"),
        ({"command": "true", "timeout_ms": 0}, "timeout_ms must be positive"),
        ({"command": "true", "background": "yes"}, "background must be a boolean"),
        ({"command": "true", "env": {"A": 1}}, "env must be an object of strings"),
        ({"command": "true", "env": ["A"]}, "env must be an object of strings"),
        ({"command": "true", "output_limit": -1}, "output_limit must be positive"),
    ],
)
def test_exec_invalid_params(ctx: AgentContext, params: dict[str, Any], message: str) -> None:
    err = call_error(ctx, "exec", params)
    assert (err.code, err.message) == ("invalid_params", message)


def test_respond_never_raises(ctx: AgentContext, monkeypatch: pytest.MonkeyPatch) -> None:
    assert respond(ctx, {"id": 1, "method": "ping"}) == {"type": "response", "id": 1, "result": {}}
    unknown = respond(ctx, {"id": 2, "method": "format_disk", "params": {}})
    assert unknown["error"] == {
        "message": "unknown method: 'format_disk'",
        "code": "unknown_method",
    }
    bad = respond(ctx, {"id": 3, "method": "exec", "params": ["ls"]})
    assert bad["error"] == {"message": "params must be an object", "code": "invalid_params"}

    def boom(ctx: AgentContext, params: dict[str, Any]) -> dict[str, Any]:
        raise ZeroDivisionError("oops")

    from berth.agent import rpc

    monkeypatch.setitem(rpc.HANDLERS, "ping", boom)
    crashed = respond(ctx, {"id": 4, "method": "ping"})
    assert crashed["error"] == {"message": "internal error: oops", "code": "internal"}


def test_utf8_cuts() -> None:
    data = "aé€😀".encode()  # 1 + 2 + 3 + 4 bytes
    assert [utf8_head(data, n)[0].decode() for n in range(11)] == [
        "",
        "a",
        "a",
        "aé",
        "aé",
        "aé",
        "aé€",
        "aé€",
        "aé€",
        "aé€",
        "aé€😀",
    ]
    assert utf8_tail(data, 5) == ("😀".encode(), True)
    assert utf8_tail(data, 7) == ("€😀".encode(), True)
    assert utf8_tail(data, 10) == (data, False)


def test_output_buffer_is_bounded() -> None:
    buffer = OutputBuffer(keep=8)
    for chunk in (b"0123", b"4567", b"89ab", b"cdef"):
        buffer.append(chunk)
    assert buffer.total == 16
    assert buffer.head(100) == ("01234567", True)  # never more than ``keep``
    assert buffer.head(4) == ("0123", True)
    assert buffer.tail(4) == ("cdef", True)
    assert buffer.tail(100) == ("89abcdef", True)
    short = OutputBuffer(keep=8)
    short.append(b"abc")
    assert (short.head(8), short.tail(8)) == (("abc", False), ("abc", False))
