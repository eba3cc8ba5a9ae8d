"""The CLI against a real berth server (the ``live_server`` fixture of tests/conftest.py)."""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path
from typing import Any, Protocol, cast

import pytest
from typer.testing import CliRunner, Result

from berth.cli.app import app


class LiveServer(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def admin_token(self) -> str: ...


runner = CliRunner()


def berth(server: LiveServer, *args: str, input: str | None = None) -> Result:
    """``berth ARGS --url … --token …`` as the admin."""
    return runner.invoke(
        app, [*args, "--url", server.url, "--token", server.admin_token], input=input
    )


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def failed(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output
    return result.stderr


def json_of(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def template_folder(folder: Path, name: str, ttl: str = "4h") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "template.yaml").write_text(
        f"name: {name}\n"
        "display_name: CLI test\n"
        "description: Pushed by the CLI tests.\n"
        f"default_ttl: {ttl}\n"
        "backend: {type: local, isolation: none}\n"
        "parameters:\n"
        "  - name: repo_url\n"
        "    type: string\n"
        '    default: ""\n'
        "presets:\n"
        "  - name: empty\n"
        "    default: true\n"
        '    parameters: {repo_url: ""}\n'
    )
    (folder / "README.md").write_text("# CLI test\n")
    return folder


def test_templates_push_list_show_delete(live_server: LiveServer, tmp_path: Path) -> None:
    name = unique("cli")
    folder = template_folder(tmp_path / "tpl", name)

    pushed = ok(berth(live_server, "templates", "push", str(folder)))
    assert f"Created template {name}" in pushed.stdout

    template_folder(folder, name, ttl="1h")
    again = json_of(berth(live_server, "templates", "push", str(folder), "-o", "json"))
    assert again["created"] is False
    assert again["template"]["name"] == name
    assert again["template"]["default_ttl"] == "1h0m0s"
    assert again["template"]["active_version_id"] == again["version"]["id"]

    table = ok(berth(live_server, "templates", "list"))
    for expected in (name, "python", "python-docker", "NAME", "1h0m0s"):
        assert expected in table.stdout
    listed = json_of(berth(live_server, "templates", "list", "--output", "json"))
    assert {t["name"] for t in listed} >= {name, "python", "python-docker"}

    shown = ok(berth(live_server, "templates", "show", name))
    for expected in (name, "CLI test", "1h0m0s", "repo_url", "Parameters", "Presets", "empty"):
        assert expected in shown.stdout
    detail = json_of(berth(live_server, "templates", "show", name, "-o", "json"))
    assert detail["id"] == again["template"]["id"]
    assert detail["active_version"]["id"] == again["version"]["id"]
    assert [p["name"] for p in detail["parameters"]] == ["repo_url"]

    versions = json_of(berth(live_server, "templates", "versions", name, "-o", "json"))
    assert again["version"]["id"] in {v["id"] for v in versions}

    deleted = ok(berth(live_server, "templates", "delete", name, "--yes"))
    assert f"Deleted template {name}" in deleted.stdout
    assert name not in {
        t["name"] for t in json_of(berth(live_server, "templates", "list", "-o", "json"))
    }
    assert failed(berth(live_server, "templates", "show", name))


def test_templates_delete_asks_first(live_server: LiveServer, tmp_path: Path) -> None:
    name = unique("cli")
    ok(berth(live_server, "templates", "push", str(template_folder(tmp_path, name))))
    declined = berth(live_server, "templates", "delete", name, input="n\n")
    assert declined.exit_code == 1
    assert "error: not deleted" in declined.stderr
    ok(berth(live_server, "templates", "show", name))
    ok(berth(live_server, "templates", "delete", name, input="y\n"))


def test_a_bad_template_push_names_the_field(live_server: LiveServer, tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text("name: broken\ndefault_ttl: forever\n")
    stderr = failed(berth(live_server, "templates", "push", str(tmp_path)))
    assert "template.yaml" in stderr
    assert "  default_ttl: " in stderr


def test_tokens_create_list_delete(live_server: LiveServer) -> None:
    name = unique("ci")
    created = ok(berth(live_server, "tokens", "create", name, "--lifetime", "720h"))
    secret = created.stdout.strip()
    assert secret
    assert "won't be shown again" in created.stderr

    # The new token works on its own.
    me = runner.invoke(
        app, ["tokens", "list", "-o", "json", "--url", live_server.url, "--token", secret]
    )
    assert name in {t["name"] for t in json_of(me)}

    table = ok(berth(live_server, "tokens", "list"))
    assert name in table.stdout
    assert secret not in table.stdout
    listed = json_of(berth(live_server, "tokens", "list", "-o", "json"))
    entry = next(t for t in listed if t["name"] == name)
    assert entry["expires_at"] is not None
    assert "token" not in entry

    as_json = json_of(berth(live_server, "tokens", "create", unique("json"), "-o", "json"))
    assert as_json["token"]
    assert as_json["expires_at"] is None

    ok(berth(live_server, "tokens", "delete", name))
    assert name not in {
        t["name"] for t in json_of(berth(live_server, "tokens", "list", "-o", "json"))
    }
    refused = runner.invoke(app, ["users", "list", "--url", live_server.url, "--token", secret])
    assert "berth login" in failed(refused)


def test_users_create_list(live_server: LiveServer) -> None:
    username = unique("dev")
    created = ok(
        berth(
            live_server,
            "users",
            "create",
            username,
            "--email",
            f"{username}@example.com",
            "--name",
            "Dev Eloper",
            "--role",
            "template-admin",
        )
    )
    assert username in created.stdout
    assert "template-admin" in created.stdout

    other = unique("bot")
    user = json_of(berth(live_server, "users", "create", other, "-o", "json"))
    assert user["username"] == other

    table = ok(berth(live_server, "users", "list"))
    for expected in ("admin", username, other, "Dev Eloper"):
        assert expected in table.stdout
    users = json_of(berth(live_server, "users", "list", "-o", "json"))
    assert {"admin", username, other} <= {u["username"] for u in users}

    assert failed(berth(live_server, "users", "create", username))  # taken: 409


def test_tokens_for_another_user(live_server: LiveServer) -> None:
    username = unique("bot")
    ok(berth(live_server, "users", "create", username))
    secret = ok(berth(live_server, "tokens", "create", "deploy", "--user", username)).stdout.strip()
    listed = json_of(berth(live_server, "tokens", "list", "--user", username, "-o", "json"))
    assert [t["name"] for t in listed] == ["deploy"]
    mine = runner.invoke(
        app, ["tokens", "list", "-o", "json", "--url", live_server.url, "--token", secret]
    )
    assert [t["name"] for t in json_of(mine)] == ["deploy"]
    ok(berth(live_server, "tokens", "delete", "deploy", "--user", username))


def test_config_set_get(live_server: LiveServer) -> None:
    stored = ok(berth(live_server, "config", "set", "chat-workspace-ttl", "2h"))
    assert stored.stdout == "chat-workspace-ttl = 2h0m0s\n"
    assert ok(berth(live_server, "config", "get", "chat-workspace-ttl")).stdout == "2h0m0s\n"
    assert json_of(berth(live_server, "config", "get", "chat-workspace-ttl", "-o", "json")) == {
        "key": "chat-workspace-ttl",
        "value": "2h0m0s",
    }

    stderr = failed(berth(live_server, "config", "set", "chat-workspace-ttl", "30s"))
    assert "Workspace TTL must not be less than 1 minute." in stderr
    assert ok(berth(live_server, "config", "get", "chat-workspace-ttl")).stdout == "2h0m0s\n"

    python = json_of(berth(live_server, "templates", "show", "python", "-o", "json"))
    allow = json_of(
        berth(live_server, "config", "set", "chat-template-allowlist", python["id"], "-o", "json")
    )
    assert allow == {"key": "chat-template-allowlist", "value": python["id"]}


def test_login_saves_a_private_file_and_later_commands_use_it(
    live_server: LiveServer, isolated: Path
) -> None:
    result = ok(runner.invoke(app, ["login", live_server.url, "--token", live_server.admin_token]))
    assert "as admin" in result.stdout
    path = isolated / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = cast("dict[str, str]", json.loads(path.read_text()))
    assert saved == {"url": live_server.url, "token": live_server.admin_token}

    listed = json_of(runner.invoke(app, ["templates", "list", "-o", "json"]))
    assert "python" in {t["name"] for t in listed}

    ok(runner.invoke(app, ["logout"]))
    assert not path.exists()
    assert "not logged in" in failed(runner.invoke(app, ["templates", "list"]))


def test_login_reads_the_token_from_stdin(live_server: LiveServer, isolated: Path) -> None:
    result = runner.invoke(
        app, ["login", live_server.url + "/api/v1/", "--token", "-"], input=live_server.admin_token
    )
    ok(result)
    saved = cast("dict[str, str]", json.loads((isolated / "config.json").read_text()))
    assert saved == {"url": live_server.url, "token": live_server.admin_token}


def test_login_with_a_bad_token_saves_nothing(live_server: LiveServer, isolated: Path) -> None:
    stderr = failed(runner.invoke(app, ["login", live_server.url, "--token", "wrong"]))
    assert "did not accept the token" in stderr
    assert not (isolated / "config.json").exists()


def test_environment_credentials(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_URL", live_server.url)
    monkeypatch.setenv("BERTH_TOKEN", live_server.admin_token)
    users = json_of(runner.invoke(app, ["users", "list", "-o", "json"]))
    assert "admin" in {u["username"] for u in users}
