"""First start (DESIGN §11): the admin, its token file, the example templates, /health."""

from __future__ import annotations

import contextlib
import re
import stat
import threading
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import httpx

import berth
from berth.api.server import ADMIN_TOKEN_FILE, serve, write_secret
from berth.settings import Settings
from tests.support.api import API, Connect, json_list, ok

WAIT = 60.0  # seconds; a bound on every wait for a server to start or stop


def test_admin_is_the_site_owner_in_the_default_organization(admin: httpx.Client) -> None:
    me = ok(admin.get("/users/me"))
    assert me["username"] == "admin"
    assert me["roles"] == ["owner"]
    assert me["status"] == "active"
    orgs = json_list(admin.get("/organizations"))
    assert [(o["name"], o["is_default"]) for o in orgs] == [("default", True)]
    assert me["organization_ids"] == [orgs[0]["id"]]
    # "me" and the username name the same user.
    assert ok(admin.get("/users/admin")) == me
    assert ok(admin.get(f"/users/{me['id']}")) == me


def test_example_templates_are_installed(admin: httpx.Client) -> None:
    listed = json_list(admin.get("/templates"))
    assert [t["name"] for t in listed] == ["python", "python-docker"], "listed by name"
    for template in listed:
        assert template["active_version_id"] is not None
        assert template["default_ttl"] == "8h0m0s"
        assert template["daily_cost"] == 1
        detail = ok(admin.get(f"/templates/{template['name']}"))
        assert detail["id"] == template["id"]
        assert detail["active_version"]["id"] == template["active_version_id"]
        assert detail["active_version"]["name"] == "v1"
        assert detail["active_version"]["readme"].strip(), "the example's README is stored"
        assert [p["name"] for p in detail["parameters"]] == ["repo_url"]
        assert detail["presets"] == []


def test_health_needs_no_token(connect: Connect) -> None:
    response = connect(None).get("/health")
    assert ok(response) == {"status": "ok", "version": berth.__version__}
    bad = connect("berth_nope_nope").get("/health")
    assert bad.status_code == 200, "a bad token does not break the unauthenticated health check"


# --- the admin token file, written by `berth server` (berth.api.server.serve) -------------


@dataclass
class Started:
    url: str
    message: str


@contextlib.contextmanager
def running(settings: Settings) -> Generator[Started]:
    """Run the real :func:`serve` (bootstrap, token file, message) in a thread."""
    settings = settings.model_copy(update={"address": "127.0.0.1:0"})
    messages: list[str] = []
    started, stop = threading.Event(), threading.Event()

    def echo(text: str) -> None:
        messages.append(text)
        started.set()

    thread = threading.Thread(
        target=serve, args=(settings,), kwargs={"echo": echo, "stop": stop}, daemon=True
    )
    thread.start()
    try:
        assert started.wait(WAIT), f"the server did not start within {WAIT} s"
        (url,) = re.findall(r"berth is running at (\S+)", messages[0])
        yield Started(url=url, message=messages[0])
    finally:
        stop.set()
        thread.join(WAIT)
    assert not thread.is_alive(), f"the server did not stop within {WAIT} s"


def _me(url: str, token: str) -> httpx.Response:
    with httpx.Client(base_url=url + API, timeout=30.0) as client:
        return client.get("/users/me", headers={"Authorization": f"Bearer {token}"})


def test_first_start_writes_the_admin_token_once(database_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir, database_url=database_url)
    token_file = data_dir / ADMIN_TOKEN_FILE

    with running(settings) as first:
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        text = token_file.read_text()
        token = text.strip()
        assert text == token + "\n", "the file holds the token and nothing else"
        assert token.startswith("berth_")
        me = ok(_me(first.url, token))
        assert (me["username"], me["roles"]) == ("admin", ["owner"])
        assert first.url in first.message
        assert "Created the first user 'admin'" in first.message
        assert str(token_file) in first.message
        (installed,) = [
            line for line in first.message.splitlines() if "Installed example templates:" in line
        ]
        assert sorted(installed.split(":", 1)[1].replace(",", " ").split()) == [
            "python",
            "python-docker",
        ]
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700

    # A second start on the same database creates nobody and leaves the file alone.
    with running(settings) as second:
        assert "Created the first user" not in second.message
        assert token_file.read_text() == text
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert ok(_me(second.url, token))["username"] == "admin"


def test_write_secret_narrows_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / ADMIN_TOKEN_FILE
    path.write_text("an old, longer secret that must not survive\n")
    path.chmod(0o644)
    write_secret(path, "s3cret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "s3cret\n"
