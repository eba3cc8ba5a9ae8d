"""``berth provisioner keys …`` and the start-up errors of ``berth provisioner`` (live server)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Protocol

import pytest
from typer.testing import CliRunner, Result

from berth.cli.app import app

runner = CliRunner()


def run(key: str, url: str, data_dir: Path) -> Result:
    """``berth provisioner`` with a key and a server, which must fail at start-up."""
    return runner.invoke(
        app, ["provisioner", "--url", url, "--key", key, "--data-dir", str(data_dir)]
    )


class LiveServer(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def admin_token(self) -> str: ...


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No login file and no BERTH_* credentials from the developer's shell."""
    monkeypatch.setenv("BERTH_CONFIG_DIR", str(tmp_path / "berth-config"))
    for name in ("BERTH_URL", "BERTH_TOKEN", "BERTH_PROVISIONER_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def keys(server: LiveServer, *args: str) -> Result:
    return runner.invoke(
        app,
        ["provisioner", "keys", *args, "--url", server.url, "--token", server.admin_token],
    )


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def failed(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: "), result.output
    assert "Traceback" not in result.output
    return result.stderr


def test_keys_create_list_delete(live_server: LiveServer) -> None:
    created: dict[str, Any] = json.loads(ok(keys(live_server, "create", "ci", "-o", "json")).stdout)
    assert created["name"] == "ci"
    assert created["key"].startswith("berthprov_")
    plain = ok(keys(live_server, "create", "cd"))
    assert plain.stdout.strip().startswith("berthprov_")  # the key alone on stdout
    assert "won't be shown again" in plain.stderr
    listed = json.loads(ok(keys(live_server, "list", "-o", "json")).stdout)
    assert [k["name"] for k in listed] == ["ci", "cd"]
    assert all("key" not in k for k in listed)
    table = ok(keys(live_server, "list")).stdout
    assert "ci" in table
    assert created["id"] in table
    assert ok(keys(live_server, "delete", "ci")).stdout.strip() == "Deleted provisioner key ci."
    assert "provisioner key not found" in failed(keys(live_server, "delete", "ci"))
    assert [k["name"] for k in json.loads(ok(keys(live_server, "list", "-o", "json")).stdout)] == [
        "cd"
    ]


def test_a_bad_key_is_one_clear_error(live_server: LiveServer, tmp_path: Path) -> None:
    result = run("berthprov_nope_nope", live_server.url, tmp_path / "p")
    assert "refused the provisioner key (Invalid provisioner key.)" in failed(result)
    user_token = run(live_server.admin_token, live_server.url, tmp_path / "p")
    assert "refused the provisioner key" in failed(user_token)


def test_an_unreachable_server_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run("berthprov_a_b", f"http://127.0.0.1:{port}", tmp_path / "p")
    assert f"could not reach the berth server at http://127.0.0.1:{port}" in failed(result)


def test_a_missing_key_or_server_is_named(tmp_path: Path) -> None:
    assert "no provisioner key" in failed(
        runner.invoke(app, ["provisioner", "--url", "http://127.0.0.1:9"])
    )
    assert "no server" in failed(runner.invoke(app, ["provisioner", "--key", "berthprov_a_b"]))
