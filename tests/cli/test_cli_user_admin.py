"""``berth users suspend|activate|roles`` against a live server, and what they say when
the server refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from berth.cli.app import app
from tests.cli.test_cli_startup import CLIENT, SERVER_STACK, imported_by
from tests.support.api import LiveServer, unique

runner = CliRunner()


def berth(server: LiveServer, *args: str, token: str | None = None) -> Result:
    """``berth ARGS --url … --token …``, as the admin unless ``token`` is given."""
    return runner.invoke(app, [*args, "--url", server.url, "--token", token or server.admin_token])


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def json_of(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def failed(result: Result) -> str:
    """stderr of a command that failed as a user's mistake: ``error: …``, exit 1."""
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return result.stderr


def new_member(server: LiveServer) -> tuple[str, str]:
    """A new user with no site role, and a token of theirs."""
    name = unique("m")
    ok(berth(server, "users", "create", name))
    return name, ok(berth(server, "tokens", "create", "t", "--user", name)).stdout.strip()


def test_suspend_stops_the_users_token_and_activate_restores_it(
    live_server: LiveServer,
) -> None:
    name, secret = new_member(live_server)
    assert ok(berth(live_server, "tokens", "list", token=secret))

    shown = ok(berth(live_server, "users", "suspend", name))
    assert f"Suspended user {name}" in shown.stdout
    assert "suspended" in shown.stdout
    stderr = failed(berth(live_server, "tokens", "list", token=secret))
    assert "The token's user is not active." in stderr

    activated = json_of(berth(live_server, "users", "activate", name, "-o", "json"))
    assert (activated["username"], activated["status"]) == (name, "active")
    assert ok(berth(live_server, "tokens", "list", token=secret))
    listed = json_of(berth(live_server, "users", "list", "-o", "json"))
    assert {u["username"]: u["status"] for u in listed}[name] == "active"


def test_roles_replaces_the_roles_and_shows_them(live_server: LiveServer) -> None:
    name, secret = new_member(live_server)

    shown = ok(
        berth(live_server, "users", "roles", name, "--role", "owner", "--role", "template-admin")
    )
    assert f"Set the roles of {name}" in shown.stdout
    roles_line = next(line for line in shown.stdout.splitlines() if line.startswith("Roles"))
    assert set(roles_line.removeprefix("Roles").strip().split(", ")) == {
        "owner",
        "template-admin",
    }
    # Now a site owner, the member sees every user.
    assert len(json_of(berth(live_server, "users", "list", "-o", "json", token=secret))) > 1

    cleared = json_of(berth(live_server, "users", "roles", name, "-o", "json"))
    assert cleared["roles"] == []
    listed = json_of(berth(live_server, "users", "list", "-o", "json", token=secret))
    assert [u["username"] for u in listed] == [name]


def test_refusals_are_clear_errors(live_server: LiveServer) -> None:
    missing = unique("nobody")
    for command in ("suspend", "activate", "roles"):
        stderr = failed(berth(live_server, "users", command, missing))
        assert stderr == f"error: user {missing!r} not found (berth users list shows them)\n"

    stderr = failed(berth(live_server, "users", "suspend", "admin"))
    assert stderr.startswith("error: You cannot suspend yourself.\n  status: ")
    assert failed(berth(live_server, "users", "roles", "admin")) == (
        "error: You cannot remove your own owner role.\n  roles: another site owner must do it\n"
    )
    users = json_of(berth(live_server, "users", "list", "-o", "json"))
    assert {u["username"]: u["roles"] for u in users}["admin"] == ["owner"]

    name, secret = new_member(live_server)
    assert "  roles: " in failed(berth(live_server, "users", "roles", name, "--role", "king"))
    promote_oneself = berth(live_server, "users", "roles", name, "--role", "owner", token=secret)
    assert failed(promote_oneself) == "error: not allowed to update this user\n"


@pytest.mark.parametrize("command", ["suspend", "activate", "roles"])
def test_their_help_imports_neither_server_nor_client(command: str) -> None:
    imported = imported_by(["users", command, "--help"])
    assert "typer" in imported
    assert not imported & (SERVER_STACK | CLIENT), sorted(imported & (SERVER_STACK | CLIENT))
