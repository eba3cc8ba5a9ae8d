"""CLI behaviour that needs no server: credentials, errors, argument checks, output.

Every error is ``error: <message>`` on stderr with exit status 1, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from berth import __version__
from berth.cli.app import app
from berth.cli.output import fmt_bytes, print_listing
from berth.cli.workspaces._render import home_disk, print_workspace, stops
from berth.client import User, Workspace

runner = CliRunner()


def closed_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def assert_error(args: list[str], *expected: str) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""
    for text in expected:
        assert text in result.stderr
    return result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["templates", "list"],
        ["templates", "show", "python"],
        ["users", "list"],
        ["tokens", "create", "ci"],
        ["config", "get", "chat-workspace-ttl"],
    ],
)
def test_missing_credentials(args: list[str]) -> None:
    stderr = assert_error(args)
    assert stderr == (
        'error: not logged in: run "berth login URL --token TOKEN"'
        " or set BERTH_URL and BERTH_TOKEN\n"
    )


def test_connection_refused() -> None:
    url = closed_url()
    assert_error(
        ["templates", "list", "--url", url, "--token", "t"],
        f"could not connect to the berth server at {url}",
        "may not be running",
    )


def test_connection_refused_with_credentials_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = closed_url()
    monkeypatch.setenv("BERTH_URL", url)
    monkeypatch.setenv("BERTH_TOKEN", "t")
    assert_error(["users", "list"], url)


def test_bad_output_format() -> None:
    assert_error(
        ["templates", "list", "-o", "yaml", "--url", closed_url(), "--token", "t"],
        "unknown output format 'yaml': use table or json",
    )


def test_invalid_url() -> None:
    assert_error(["templates", "list", "--url", "localhost:7080", "--token", "t"], "invalid")


def test_an_empty_name_is_refused_before_connecting() -> None:
    assert_error(
        ["templates", "show", "", "--url", closed_url(), "--token", "t"],
        "a name or id must not be empty",
    )


def test_push_of_a_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert_error(
        ["templates", "push", str(missing), "--url", closed_url(), "--token", "t"],
        f"{missing} does not exist",
    )


def test_push_of_a_folder_without_template_yaml(tmp_path: Path) -> None:
    assert_error(
        ["templates", "push", str(tmp_path), "--url", closed_url(), "--token", "t"],
        "has no template.yaml",
    )


def test_push_of_an_unreadable_template(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_bytes(b"\xff\xfe\x00bad")
    assert_error(
        ["templates", "push", str(tmp_path), "--url", closed_url(), "--token", "t"],
        "is not UTF-8 text",
    )


def test_login_to_a_closed_port_saves_nothing(isolated: Path) -> None:
    url = closed_url()
    assert_error(["login", url, "--token", "t"], "could not connect", url)
    assert not (isolated / "config.json").exists()


def test_login_without_a_token_off_a_terminal() -> None:
    assert_error(["login", closed_url()], "a token is required")


def test_logout_when_not_logged_in() -> None:
    result = runner.invoke(app, ["logout"])
    assert result.exit_code == 0
    assert "Not logged in" in result.stdout


def test_delete_is_confirmed() -> None:
    result = runner.invoke(
        app, ["templates", "delete", "python", "--url", closed_url(), "--token", "t"], input="n\n"
    )
    assert result.exit_code == 1
    assert "error: not deleted" in result.stderr


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"berth {__version__}\n"


def test_no_arguments_shows_help() -> None:
    result = runner.invoke(app, [])
    assert "templates" in result.output
    assert "login" in result.output


def test_a_listing_is_the_servers_json_a_note_or_a_table(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    users = [User.model_validate({"id": "u1", "username": "ann", "colour": "red"})]

    def row(user: User) -> list[str]:
        return [user.username, user.id]

    print_listing(users, "json", ["USERNAME", "ID"], row, empty="No users.")
    assert json.loads(capsys.readouterr().out) == [{"id": "u1", "username": "ann", "colour": "red"}]
    print_listing([], "json", ["USERNAME", "ID"], row, empty="No users.")
    assert json.loads(capsys.readouterr().out) == []
    print_listing([], "table", ["USERNAME", "ID"], row, empty="No users.")
    assert capsys.readouterr() == ("", "No users.\n")
    print_listing([], "table", ["USERNAME", "ID"], row)  # no note: the empty table
    assert capsys.readouterr().out.split()[:2] == ["USERNAME", "ID"]
    print_listing(users, "table", ["USERNAME", "ID"], row, empty="No users.")
    assert capsys.readouterr().out.split()[-2:] == ["ann", "u1"]


def test_when_a_workspace_stops_reads_from_its_status_and_deadline() -> None:
    now = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)

    def shown(status: str, deadline: dt.datetime | None) -> str:
        raw = {"id": "w", "name": "w", "status": status, "deadline": deadline}
        return stops(Workspace.model_validate(raw), now)

    assert shown("running", now + dt.timedelta(hours=3, minutes=59, seconds=59)) == "in 3h 59m"
    assert shown("running", now + dt.timedelta(days=2, hours=5)) == "in 2d 5h"
    assert shown("running", now + dt.timedelta(minutes=12, seconds=5)) == "in 12m"
    assert shown("running", now + dt.timedelta(seconds=40)) == "in 40s"
    assert shown("running", now - dt.timedelta(seconds=1)) == "due now"
    assert shown("running", None) == "never"
    assert shown("stopped", now - dt.timedelta(hours=1)) == "-"  # a past deadline: nothing


def test_home_disk_use_reads_in_binary_units_with_its_quota() -> None:
    def shown(disk: dict[str, object] | None) -> str:
        raw = {"id": "w", "name": "w", "home_disk": disk}
        return home_disk(Workspace.model_validate(raw))

    at = "2026-12-02T09:00:00Z"
    assert shown(None) == "-"
    assert shown({"used_bytes": 512, "measured_at": at}).startswith("512 B (measured ")
    assert shown({"used_bytes": 3 << 20, "limit_bytes": 1 << 30, "measured_at": at}).startswith(
        "3.0 MiB of 1.0 GiB (measured "
    )
    assert [fmt_bytes(n) for n in (1023, 1536, 5 << 40)] == ["1023 B", "1.5 KiB", "5.0 TiB"]


def test_show_names_the_host_and_what_a_pending_build_waits_for(
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = dt.datetime(2026, 12, 2, 9, tzinfo=dt.UTC)
    host = "box:/var/lib/berth/workspaces"
    waiting = {"id": "w", "name": "w", "status": "pending", "host": host, "waiting_for_host": host}
    print_workspace(Workspace.model_validate(waiting), now)
    shown = capsys.readouterr().out
    assert re.search(rf"Waiting for\s+a provisioner that serves {re.escape(host)} *\n", shown)
    assert re.search(rf"Host\s+{re.escape(host)} *\n", shown)
    print_workspace(Workspace.model_validate({"id": "w", "name": "w", "status": "running"}), now)
    shown = capsys.readouterr().out
    assert "Waiting for" not in shown
    assert re.search(r"Host\s+- *\n", shown)
