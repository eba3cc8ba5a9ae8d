"""``berth prebuilds list|pause|resume`` against a live server (the fake backend), and
a ``berth workspaces create --preset`` that claims a prebuild."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from berth.cli.app import app
from berth.cli.prebuilds import PAUSED, print_pool
from berth.client import Client, PrebuildPool
from tests.conftest import LiveServer
from tests.support.prebuilds import PRESET, pooled_template_yaml, wait_for_pool

runner = CliRunner()


def berth(server: LiveServer, *args: str, token: str | None = None) -> Result:
    """``berth ARGS --url … --token …``, as the admin unless ``token`` says otherwise."""
    return runner.invoke(app, [*args, "--url", server.url, "--token", token or server.admin_token])


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def json_of(result: Result) -> Any:
    return json.loads(ok(result).stdout)


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[Client]:
    with Client(live_server.url, live_server.admin_token) as admin:
        yield admin


def api_body(client: Client) -> dict[str, Any]:
    return client.prebuilds().raw


def push_pooled(server: LiveServer, folder: Path, name: str = "pooled") -> None:
    folder.mkdir()
    (folder / "template.yaml").write_text(pooled_template_yaml(name))
    ok(berth(server, "templates", "push", str(folder)))


def lines_with(text: str, *words: str) -> list[str]:
    return [line for line in text.splitlines() if all(word in line for word in words)]


def test_list_with_no_pool(live_server: LiveServer, client: Client) -> None:
    listed = ok(berth(live_server, "prebuilds", "list"))
    assert listed.stdout == ""
    assert "No prebuilds" in listed.stderr
    assert json_of(berth(live_server, "prebuilds", "list", "-o", "json")) == api_body(client)


def test_list_shows_the_prebuilds_and_the_presets(
    live_server: LiveServer, client: Client, tmp_path: Path
) -> None:
    push_pooled(live_server, tmp_path / "tpl")
    body = wait_for_pool(lambda: api_body(client), 2)

    table = ok(berth(live_server, "prebuilds", "list")).stdout
    assert PAUSED not in table
    for header in ("Prebuilds", "WORKSPACE", "Presets", "DESIRED", "ACTUAL", "LAST ERROR"):
        assert header in table
    assert "RETRY AT" not in table  # no preset backs off
    for row in body["prebuilds"]:
        (line,) = lines_with(table, row["workspace_name"])
        assert line.split()[:5] == [row["workspace_name"], "pooled", PRESET, "running", "yes"]
    (preset_line,) = lines_with(table, PRESET, " 2 ")
    # PRESET TEMPLATE DESIRED ACTUAL READY FAILURES LAST ERROR
    assert preset_line.split() == [PRESET, "pooled", "2", "2", "2", "0", "-"]

    assert json_of(berth(live_server, "prebuilds", "list", "-o", "json")) == api_body(client)


def test_pause_and_resume(live_server: LiveServer, client: Client, tmp_path: Path) -> None:
    push_pooled(live_server, tmp_path / "tpl")
    wait_for_pool(lambda: api_body(client), 2)

    paused = ok(berth(live_server, "prebuilds", "pause")).stdout
    assert paused == "Paused prebuild reconciliation (2 prebuild(s), 2 ready).\n"
    listed = ok(berth(live_server, "prebuilds", "list")).stdout
    assert listed.startswith(PAUSED + "\n")
    assert "Presets" in listed
    again = json_of(berth(live_server, "prebuilds", "pause", "-o", "json"))
    assert again == api_body(client)
    assert again["paused"] is True

    resumed = ok(berth(live_server, "prebuilds", "resume")).stdout
    assert resumed == "Resumed prebuild reconciliation (2 prebuild(s), 2 ready).\n"
    assert PAUSED not in ok(berth(live_server, "prebuilds", "list")).stdout
    body = json_of(berth(live_server, "prebuilds", "resume", "-o", "json"))
    assert body["paused"] is False
    assert body == api_body(client)


def test_a_member_is_refused(live_server: LiveServer, client: Client) -> None:
    client.create_user("alice")
    token = client.create_token("t", user="alice").token
    for command in ("list", "pause", "resume"):
        refused = berth(live_server, "prebuilds", command, token=token)
        assert refused.exit_code == 1, (command, refused.stdout, refused.stderr)
        assert refused.stderr.startswith("error: "), refused.stderr
        assert "Traceback" not in refused.output
    assert "only site owners" in berth(live_server, "prebuilds", "list", token=token).stderr
    assert api_body(client)["paused"] is False


def test_a_create_with_the_preset_claims_a_prebuild(
    live_server: LiveServer, client: Client, tmp_path: Path
) -> None:
    push_pooled(live_server, tmp_path / "tpl")
    before = wait_for_pool(lambda: api_body(client), 2)
    created = json_of(
        berth(
            live_server, "workspaces", "create", "mine", "--template", "pooled",
            "--preset", PRESET, "-o", "json",
        )
    )  # fmt: skip
    assert created["id"] in {row["workspace_id"] for row in before["prebuilds"]}
    assert created["status"] == "running"
    after = wait_for_pool(lambda: api_body(client), 2)
    assert created["id"] not in {row["workspace_id"] for row in after["prebuilds"]}


def test_a_preset_that_backs_off_shows_when_it_builds_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Offline: the tables of a pool whose preset failed (no server needed)."""
    now = dt.datetime(2026, 1, 2, 12, 0, tzinfo=dt.UTC)
    failed = {
        "preset_id": "p1",
        "preset_name": "warm",
        "template_name": "pooled",
        "desired": 2,
        "actual": 0,
        "ready": 0,
        "failures": 3,
        "last_error": "no capacity",
        "last_failed_at": "2026-01-02T11:59:20Z",
        "retry_at": "2026-01-02T12:00:40Z",
    }
    healthy = {**failed, "preset_id": "p2", "preset_name": "cold", "failures": 0}
    healthy |= {"last_error": "", "last_failed_at": None, "retry_at": None}
    pool = PrebuildPool.model_validate({"paused": False, "presets": [failed, healthy]})
    print_pool(pool, now)
    captured = capsys.readouterr()
    assert "No prebuilds yet." in captured.err
    (header,) = lines_with(captured.out, "PRESET", "LAST ERROR")
    assert header.rstrip().endswith("RETRY AT")
    (line,) = lines_with(captured.out, "no capacity")
    assert line.split()[:6] == ["warm", "pooled", "2", "0", "0", "3"]
    assert line.rstrip().endswith("(in 40s)")
    (other,) = lines_with(captured.out, "cold")
    assert other.split()[-2:] == ["-", "-"]  # no last error, no retry
