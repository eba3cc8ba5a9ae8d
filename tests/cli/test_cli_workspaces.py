"""``berth workspaces …`` and ``berth exec`` against a real server.

Builds run on the fake backend (``backend.type: fake``), which creates nothing and
starts no agent: templates without agents build to ``running`` at once, and a
``backend.fake`` block scripts failures, log lines and hangs. The one real ``exec``
runs on the local backend with ``isolation: none`` (agents are host processes).
Every wait is the server's watch stream or the CLI's own; nothing sleeps.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Protocol

import pytest
from typer.testing import CliRunner, Result

from berth.api.routes import workspaces as workspace_routes
from berth.cli.app import app
from berth.cli.execute import shell_command
from berth.client import Client


class Server(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def admin_token(self) -> str: ...


runner = CliRunner()


def berth(server: Server, *args: str, input: str | None = None) -> Result:
    """``berth --url … --token … ARGS``: the options go first, so ``--`` can end the line."""
    group, *rest = args
    connection = ["--url", server.url, "--token", server.admin_token]
    if group == "exec":
        return runner.invoke(app, [group, *connection, *rest], input=input)
    command, *tail = rest
    return runner.invoke(app, [group, command, *connection, *tail], input=input)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def failed(result: Result) -> str:
    """The stderr of a command that failed with an ``error:`` line (build progress and
    prompts may come before it)."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.output
    assert "error: " in result.stderr, result.stderr
    return result.stderr


def json_of(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def push(server: Server, document: str) -> str:
    """Push a template document; its name."""
    name = unique("tpl")
    with Client(server.url, server.admin_token) as client:
        client.push_template({"template.yaml": f"name: {name}\n{document}"})
    return name


FAKE = (
    "default_ttl: 4h\n"
    "backend: {type: fake, fake: {logs: [fetching the image, sandbox up]}}\n"
    "parameters:\n"
    "  - {name: size, type: string, default: small, mutable: true}\n"
    "presets:\n"
    "  - {name: big, parameters: {size: large}}\n"
)


def test_workspace_lifecycle(live_server: Server) -> None:
    template = push(live_server, FAKE)
    name = unique("ws")

    created = ok(
        berth(live_server, "workspaces", "create", name, "--template", template, "-p", "size=huge")
    )
    assert "[init] build 1: start " + name in created.stderr  # progress on stderr
    assert "[apply] fetching the image\n[apply] sandbox up\n" in created.stderr
    assert name in created.stdout
    assert "running" in created.stdout
    assert "fetching" not in created.stdout

    table = ok(berth(live_server, "workspaces", "list"))
    for expected in ("NAME", name, template, "running", "4h0m0s", "#1 start (succeeded)"):
        assert expected in table.stdout
    assert "STOPS" in table.stdout
    assert re.search(r"in (3h 59m|4h 0m)", table.stdout), table.stdout
    listed = json_of(berth(live_server, "workspaces", "list", "-o", "json"))
    assert [w["name"] for w in listed] == [name]
    assert name in {
        w["name"] for w in json_of(berth(live_server, "workspaces", "list", "--all", "-o", "json"))
    }

    shown = json_of(berth(live_server, "workspaces", "show", name, "-o", "json"))
    assert shown == listed[0]
    assert (shown["status"], shown["ttl"], shown["agents"]) == ("running", "4h0m0s", [])
    assert shown["latest_build"]["job"]["status"] == "succeeded"
    shown_table = ok(berth(live_server, "workspaces", "show", name))
    for expected in (name, "Status", "running", "admin", template, "#1 start (succeeded)"):
        assert expected in shown_table.stdout
    assert re.search(r"Stops\s+in (3h 59m|4h 0m)", shown_table.stdout), shown_table.stdout

    logs = ok(berth(live_server, "workspaces", "logs", name))
    assert logs.stdout.endswith("[apply] fetching the image\n[apply] sandbox up\n")
    entries = json_of(berth(live_server, "workspaces", "logs", name, "-o", "json"))
    assert [e["output"] for e in entries][-2:] == ["fetching the image", "sandbox up"]
    followed = ok(berth(live_server, "workspaces", "logs", name, "--follow"))
    assert followed.stdout == logs.stdout  # settled: the stream ends after the backlog
    lines = ok(berth(live_server, "workspaces", "logs", name, "-f", "-o", "json")).stdout
    assert [json.loads(line) for line in lines.splitlines()] == entries

    assert (
        "stops after 2h0m0s unused"
        in ok(berth(live_server, "workspaces", "ttl", name, "2h")).stdout
    )
    never = json_of(berth(live_server, "workspaces", "ttl", name, "0", "-o", "json"))
    assert never["ttl"] is None
    assert "never stops" in ok(berth(live_server, "workspaces", "ttl", name, "0")).stdout
    assert re.search(r"Stops\s+never", ok(berth(live_server, "workspaces", "show", name)).stdout)

    stopped = ok(berth(live_server, "workspaces", "stop", name))
    assert "[init] build 2: stop " + name in stopped.stderr
    assert "stopped" in stopped.stdout
    again = json_of(berth(live_server, "workspaces", "stop", name, "-o", "json"))
    assert again["latest_build"]["build_number"] == 2  # nothing to do: no new build

    started = json_of(berth(live_server, "workspaces", "start", name, "-o", "json"))
    assert (started["status"], started["latest_build"]["build_number"]) == ("running", 3)

    declined = berth(live_server, "workspaces", "delete", name, input="n\n")
    assert "error: not deleted" in failed(declined)
    deleted = ok(berth(live_server, "workspaces", "delete", name, "--yes"))
    assert deleted.stdout == f"Deleted workspace {name}.\n"
    assert f"workspace '{name}' not found" in failed(berth(live_server, "workspaces", "show", name))
    assert json_of(berth(live_server, "workspaces", "list", "-o", "json")) == []


def test_create_with_a_preset_and_ttl_json_and_no_wait(live_server: Server) -> None:
    template = push(live_server, FAKE)
    name = unique("ws")
    created = json_of(
        berth(
            live_server,
            "workspaces",
            "create",
            name,
            "-t",
            template,
            "--preset",
            "big",
            "--ttl",
            "90m",
            "-o",
            "json",
        )
    )
    assert (created["name"], created["status"], created["ttl"]) == (name, "running", "1h30m0s")

    other = unique("ws")
    queued = json_of(
        berth(live_server, "workspaces", "create", other, "-t", template, "--no-wait", "-o", "json")
    )
    assert queued["name"] == other
    assert queued["status"] in ("pending", "starting", "running")
    followed = ok(berth(live_server, "workspaces", "logs", other, "--follow"))
    assert "sandbox up" in followed.stdout

    stopping = json_of(berth(live_server, "workspaces", "stop", other, "--no-wait", "-o", "json"))
    assert stopping["latest_build"]["transition"] == "stop"
    ok(berth(live_server, "workspaces", "logs", other, "--follow"))
    starting = ok(berth(live_server, "workspaces", "start", other, "--no-wait"))
    assert "#3 start" in starting.stdout
    assert starting.stderr == ""  # no progress without waiting
    ok(berth(live_server, "workspaces", "logs", other, "--follow"))
    build = json_of(berth(live_server, "workspaces", "delete", other, "-y", "-o", "json"))
    assert (build["transition"], build["build_number"]) == ("delete", 4)
    assert other not in {
        w["name"] for w in json_of(berth(live_server, "workspaces", "list", "-o", "json"))
    }
    queued_delete = ok(berth(live_server, "workspaces", "delete", name, "-y", "--no-wait"))
    assert queued_delete.stdout == f"Deleting workspace {name} (build 2).\n"

    stderr = failed(
        berth(live_server, "workspaces", "create", unique("ws"), "-t", template, "--preset", "tiny")
    )
    assert f"template {template} has no preset 'tiny' (presets: big)" in stderr


def test_a_failed_build_is_an_error_with_the_job_error(live_server: Server) -> None:
    template = push(
        live_server,
        "backend:\n  type: fake\n"
        "  fake: {fail: no capacity left, code: NO_CAPACITY, logs: [trying]}\n",
    )
    name = unique("ws")
    stderr = failed(berth(live_server, "workspaces", "create", name, "-t", template))
    assert "[apply] trying\n" in stderr  # the progress came first
    assert f"error: build 1 (start) of workspace {name} failed: no capacity left [NO_CAPACITY]" in (
        stderr
    )
    assert f"berth workspaces logs {name}" in stderr
    shown = json_of(berth(live_server, "workspaces", "show", name, "-o", "json"))
    assert shown["status"] == "failed"
    assert shown["latest_build"]["job"]["error_code"] == "NO_CAPACITY"
    assert (
        "no capacity left [NO_CAPACITY]"
        in ok(berth(live_server, "workspaces", "show", name)).stdout
    )
    # json mode prints no progress, and still fails
    quiet = berth(live_server, "workspaces", "start", name, "-o", "json")
    assert "[apply]" not in failed(quiet)
    assert quiet.stdout == ""
    ok(berth(live_server, "workspaces", "delete", name, "-y"))


def test_cancel_a_hanging_build(live_server: Server) -> None:
    template = push(live_server, "backend: {type: fake, fake: {hang: true}}\n")
    name = unique("ws")
    queued = json_of(
        berth(live_server, "workspaces", "create", name, "-t", template, "--no-wait", "-o", "json")
    )
    assert queued["status"] in ("pending", "starting")
    canceled = ok(berth(live_server, "workspaces", "cancel", name))
    assert f"Canceled the build of workspace {name}" in canceled.stdout
    ok(berth(live_server, "workspaces", "logs", name, "--follow"))  # ends once it settles
    shown = json_of(berth(live_server, "workspaces", "show", name, "-o", "json"))
    assert shown["status"] == "canceled"
    assert "has no build in progress" in failed(berth(live_server, "workspaces", "cancel", name))
    ok(berth(live_server, "workspaces", "delete", name, "-y"))  # delete does not hang


def test_an_agent_that_never_connects_fails_the_wait(
    live_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The watch stream re-checks agents every few seconds; faster here.
    monkeypatch.setattr(workspace_routes, "FOLLOW_RECHECK_SECONDS", 0.05)
    template = push(
        live_server,
        "backend: {type: fake}\nagents:\n  - {name: main, chat: true, connection_timeout: 1s}\n",
    )
    name = unique("ws")
    stderr = failed(berth(live_server, "workspaces", "create", name, "-t", template))
    assert (
        f"error: workspace {name} is running, but agent main did not connect within its"
        " connection timeout (status timeout)"
    ) in stderr
    assert f"berth exec {name} -- COMMAND" in stderr
    shown = json_of(berth(live_server, "workspaces", "show", name, "-o", "json"))
    assert [(a["name"], a["status"], a["lifecycle_state"]) for a in shown["agents"]] == [
        ("main", "timeout", "created")
    ]
    # exec needs a connected agent
    assert "unreachable" in failed(berth(live_server, "exec", name, "--", "true"))


def test_exec_errors(live_server: Server) -> None:
    template = push(live_server, "backend: {type: fake}\n")
    name = unique("ws")
    ok(berth(live_server, "workspaces", "create", name, "-t", template))
    stderr = failed(berth(live_server, "exec", name, "--", "echo", "hi"))
    assert f"Workspace {name!r}: no eligible workspace agents found" in stderr
    ok(berth(live_server, "workspaces", "stop", name))
    stderr = failed(berth(live_server, "exec", name, "--", "echo", "hi"))
    assert f"Workspace {name!r} is stopped, not running." in stderr
    assert "workspace 'nope' not found" in failed(berth(live_server, "exec", "nope", "--", "true"))


@pytest.mark.parametrize(
    "args",
    [
        ["show", "nope"],
        ["start", "nope"],
        ["stop", "nope"],
        ["delete", "nope", "-y"],
        ["logs", "nope"],
        ["logs", "nope", "--follow"],
        ["cancel", "nope"],
        ["ttl", "nope", "1h"],
    ],
)
def test_an_unknown_workspace(live_server: Server, args: list[str]) -> None:
    stderr = failed(berth(live_server, "workspaces", *args))
    assert stderr == "error: workspace 'nope' not found (berth workspaces list shows them)\n"


def test_an_unknown_template(live_server: Server) -> None:
    stderr = failed(berth(live_server, "workspaces", "create", "w1", "-t", "nope"))
    assert stderr == "error: template 'nope' not found (berth templates list shows them)\n"


def test_a_bad_parameter_value_names_the_field(live_server: Server) -> None:
    template = push(live_server, FAKE)
    stderr = failed(
        berth(live_server, "workspaces", "create", "w1", "-t", template, "-p", "nope=1")
    )
    assert "nope" in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["workspaces", "create", "w", "-t", "t", "--param", "size"],
            "error: --param expects NAME=VALUE, got 'size'\n",
        ),
        (
            ["workspaces", "create", "w", "-t", "t", "-p", "=x"],
            "error: --param expects NAME=VALUE, got '=x'\n",
        ),
        (
            ["workspaces", "create", "w", "-t", "t", "-p", "a=1", "-p", "a=2"],
            "error: --param a is given twice\n",
        ),
        (
            ["workspaces", "create", "w", "-t", "t", "--ttl", "8"],
            "error: --ttl: invalid duration '8': use a number and a unit, such as 30s, 15m, 8h"
            " or 1h30m\n",
        ),
        (
            ["workspaces", "create", "w", "-t", "t", "--ttl", "-1h"],
            "error: Workspace TTL must be non-negative.\n",
        ),
        (
            ["workspaces", "ttl", "w", "forever"],
            "error: DURATION: invalid duration 'forever': use a number and a unit, such as 30s,"
            " 15m, 8h or 1h30m\n",
        ),
        (["exec", "w", "-e", "FOO", "--", "env"], "error: --env expects NAME=VALUE, got 'FOO'\n"),
        (
            ["exec", "w", "--timeout", "0s", "--", "true"],
            "error: --timeout: the duration must be positive\n",
        ),
        (
            ["exec", "w", "--", ""],
            "error: no command: give one after --, e.g. berth exec WORKSPACE -- ls -la\n",
        ),
    ],
)
def test_bad_input_fails_before_connecting(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)  # no server and no credentials: never reached
    assert (result.exit_code, result.stderr, result.stdout) == (1, message, "")


def test_shell_command_quotes_several_arguments() -> None:
    assert shell_command(["python3", "-c", "print(1)"]) == "python3 -c 'print(1)'"
    assert shell_command(["echo", "a b", "$HOME"]) == "echo 'a b' '$HOME'"
    assert shell_command(["ls | wc -l"]) == "ls | wc -l"  # one argument: a command line


# --- a real agent -----------------------------------------------------------------------

LOCAL = (
    "backend: {type: local, isolation: none}\n"
    "agents:\n"
    "  - name: main\n"
    "    chat: true\n"
    "    connection_timeout: 60s\n"
    "    env: {GREETING: hello}\n"
    "    scripts:\n"
    "      - {display_name: setup, run_on: start, blocks_login: true, script: 'mkdir -p sub'}\n"
)


def test_exec_end_to_end(live_server: Server) -> None:
    template = push(live_server, LOCAL)
    name = unique("ws")
    created = json_of(
        berth(live_server, "workspaces", "create", name, "-t", template, "-o", "json")
    )
    assert [(a["name"], a["lifecycle_state"]) for a in created["agents"]] == [("main", "ready")]

    printed = berth(live_server, "exec", name, "--", "python3", "-c", "print(1)")
    assert (printed.exit_code, printed.stdout, printed.stderr) == (0, "1\n", "")

    script = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    both = berth(live_server, "exec", name, "--", "python3", "-c", script)
    assert (both.exit_code, both.stdout, both.stderr) == (3, "out\n", "err\n")

    exact = berth(live_server, "exec", name, "--", "printf", "%s", "no newline \x1b[1mbold")
    assert (exact.exit_code, exact.stdout) == (0, "no newline \x1b[1mbold")

    env = berth(
        live_server,
        "exec",
        name,
        "-e",
        "WHO=world",
        "-w",
        "sub",
        "--",
        'echo "$GREETING $WHO from $(basename "$PWD")"',
    )
    assert (env.exit_code, env.stdout) == (0, "hello world from sub\n")

    slow = berth(live_server, "exec", name, "--timeout", "200ms", "--", "echo started; sleep 30")
    assert (slow.exit_code, slow.stdout) == (124, "started\n")
    assert "ran out of time (200ms) and was killed" in slow.stderr

    as_json = json_of(berth(live_server, "exec", name, "-o", "json", "--", "exit 5"))
    assert (as_json["exit_code"], as_json["timed_out"]) == (5, False)

    # The home's disk use, as the latest build measured it: the stop build sees 3 MiB.
    assert re.search(r"Home disk\s+\d", ok(berth(live_server, "workspaces", "show", name)).stdout)
    filled = berth(live_server, "exec", name, "--", "head -c 3145728 /dev/urandom > big")
    assert filled.exit_code == 0, filled.stderr
    ok(berth(live_server, "workspaces", "stop", name))
    shown = json_of(berth(live_server, "workspaces", "show", name, "-o", "json"))
    assert shown["home_disk"]["used_bytes"] >= 3 << 20, shown["home_disk"]
    assert shown["home_disk"]["limit_bytes"] is None  # no backend.disk quota
    listed = json_of(berth(live_server, "workspaces", "list", "-o", "json"))
    assert [w["home_disk"] for w in listed if w["name"] == name] == [None]  # one at a time
    table = ok(berth(live_server, "workspaces", "show", name)).stdout
    assert re.search(r"Home disk\s+3\.\d MiB \(measured ", table), table

    ok(berth(live_server, "workspaces", "delete", name, "-y"))


def test_a_failing_start_script_says_start_error(live_server: Server) -> None:
    template = push(live_server, LOCAL.replace("'mkdir -p sub'", "'echo broken >&2; exit 7'"))
    name = unique("ws")
    stderr = failed(berth(live_server, "workspaces", "create", name, "-t", template))
    assert (
        f"error: workspace {name} is running, but a start script of agent main failed (start_error)"
    ) in stderr
    assert f"berth workspaces logs {name}" in stderr
    assert f"berth exec {name} -- COMMAND" in stderr
    tail = "the last lines of script 'setup' of agent main:\n  [main/setup] broken\n"
    assert tail + "  [main/setup] ERROR: setup: exited with code 7\n" in stderr
    ran = berth(live_server, "exec", name, "--", "echo still reachable")  # the agent is up
    assert (ran.exit_code, ran.stdout) == (0, "still reachable\n")
    printed = ok(berth(live_server, "workspaces", "logs", name)).stdout.splitlines()
    assert printed[-2:] == ["[main/setup] broken", "[main/setup] ERROR: setup: exited with code 7"]
    assert any(line.startswith("[apply] ") for line in printed[:-2]), "the build's lines first"
    followed = ok(berth(live_server, "workspaces", "logs", name, "--follow")).stdout
    assert followed.splitlines() == printed  # settled: the backlog of both, then the end
    as_json = json_of(berth(live_server, "workspaces", "logs", name, "-o", "json"))
    assert [(e["agent"], e["script"], e["output"]) for e in as_json if "agent" in e] == [
        ("main", "setup", "broken"),
        ("main", "setup", "setup: exited with code 7"),
    ]
