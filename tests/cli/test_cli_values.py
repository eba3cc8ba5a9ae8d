"""Values that look like options: ``-1h`` where a duration is expected is a value.

Click reads any word that starts with ``-`` as an option, so ``berth config set
chat-workspace-ttl -1h`` was "No such option: -1" instead of the TTL message (spec
§10: "Workspace TTL must be non-negative."). A negative number or duration is read as
a value; every other option keeps working, an unknown one is still an error, and
``--`` still ends the options.
"""

from __future__ import annotations

from typing import Protocol

import pytest
from typer.testing import CliRunner, Result

from berth.cli.app import app

TTL_MESSAGE = "Workspace TTL must be non-negative."

runner = CliRunner()


class LiveServer(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def admin_token(self) -> str: ...


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def refused(result: Result, message: str) -> None:
    """Exit status 1 with ``error: MESSAGE`` first on stderr (the server's validations
    may follow)."""
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[0] == f"error: {message}", result.stderr
    assert result.stdout == ""


def unknown_option(result: Result, option: str) -> None:
    assert result.exit_code == 2, result.output
    assert f"No such option: {option}" in result.output


OFFLINE = ["--url", "http://127.0.0.1:9", "--token", "berth_x_y"]
"""A server that is never reached: these refusals come before any request."""


def offline(group: str, command: str, *args: str) -> Result:
    return invoke(group, command, *OFFLINE, *args)


@pytest.mark.parametrize(
    "args",
    [
        ["workspaces", "ttl", "w1", "-1h"],
        ["workspaces", "ttl", "w1", "-30m", "-o", "json"],
        ["workspaces", "ttl", "-o", "json", "w1", "-1.5h"],
        ["workspaces", "ttl", "w1", "--", "-1h"],
        ["workspaces", "create", "w1", "--template", "python", "--ttl", "-1h"],
        ["workspaces", "create", "w1", "--ttl", "-1h", "--template", "python"],
        ["workspaces", "create", "w1", "--template", "python", "--ttl=-1h"],
    ],
)
def test_a_negative_workspace_ttl_gets_the_ttl_message(args: list[str]) -> None:
    refused(offline(*args), TTL_MESSAGE)


def test_other_options_and_mistakes_are_as_before() -> None:
    unknown_option(offline("config", "set", "--bogus", "x"), "--bogus")
    unknown_option(offline("config", "set", "chat-workspace-ttl", "-x"), "-x")
    unknown_option(offline("workspaces", "ttl", "w1", "-h"), "-h")
    result = offline("workspaces", "ttl", "w1", "1h", "-o", "yaml")
    refused(result, "unknown output format 'yaml': use table or json")
    result = offline("workspaces", "ttl", "w1", "-1h", "-2h")
    assert result.exit_code == 2
    assert "unexpected extra argument" in result.output
    assert invoke("--version").exit_code == 0


def berth(server: LiveServer, group: str, command: str, *args: str) -> Result:
    return invoke(group, command, "--url", server.url, "--token", server.admin_token, *args)


def test_config_set_takes_a_negative_duration_to_the_server(live_server: LiveServer) -> None:
    for args in (["-1h"], ["--", "-1h"], ["-1h", "-o", "json"], ["-5m"]):
        refused(berth(live_server, "config", "set", "chat-workspace-ttl", *args), TTL_MESSAGE)
    stored = berth(live_server, "config", "set", "chat-workspace-ttl", "2h", "-o", "json")
    assert stored.exit_code == 0, stored.output
    assert '"value": "2h0m0s"' in stored.stdout
    got = berth(live_server, "config", "get", "chat-workspace-ttl")
    assert got.stdout == "2h0m0s\n"
