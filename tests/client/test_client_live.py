"""The client against a real berth server (the ``live_server`` fixture of tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from berth.client import ApiError, Client, Validation


class LiveServer(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def admin_token(self) -> str: ...


@pytest.fixture
def admin(live_server: LiveServer) -> Iterator[Client]:
    with Client(live_server.url, live_server.admin_token) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def template_yaml(name: str, ttl: str = "4h") -> str:
    return (
        f"name: {name}\n"
        "display_name: Client test\n"
        "description: Pushed by the client tests.\n"
        f"default_ttl: {ttl}\n"
        "daily_cost: 2\n"
        "backend: {type: local, isolation: none}\n"
        "parameters:\n"
        "  - name: size\n"
        "    type: string\n"
        "    form_type: dropdown\n"
        "    default: small\n"
        "    options: [{name: Small, value: small}, {name: Large, value: large}]\n"
        "presets:\n"
        "  - name: large\n"
        "    default: true\n"
        "    parameters: {size: large}\n"
    )


def test_health_needs_no_token(live_server: LiveServer) -> None:
    with Client(live_server.url) as client:
        health = client.health()
    assert health.status == "ok"
    assert health.version


def test_me_is_the_first_admin(admin: Client) -> None:
    me = admin.me()
    assert me.username == "admin"
    assert "owner" in me.roles
    assert me.raw["id"] == me.id


def test_a_bad_token_is_401(live_server: LiveServer) -> None:
    with Client(live_server.url, "not-a-token") as client, pytest.raises(ApiError) as caught:
        client.me()
    assert caught.value.status_code == 401


def test_the_example_templates_are_installed(admin: Client) -> None:
    names = {t.name for t in admin.list_templates()}
    assert {"python", "python-docker"} <= names
    organizations = admin.list_organizations()
    default = next(o for o in organizations if o.is_default)
    assert {t.name for t in admin.list_templates(organization=default.name)} == names


def test_push_show_versions_delete(admin: Client, tmp_path: Path) -> None:
    name = unique("client")
    (tmp_path / "template.yaml").write_text(template_yaml(name))
    (tmp_path / "README.md").write_text("# Client test\n")

    first = admin.push_template(tmp_path)
    assert first.created
    assert first.template.name == name
    assert first.template.default_ttl == "4h0m0s"
    assert first.template.active_version_id == first.version.id

    second = admin.push_template({"template.yaml": template_yaml(name, ttl="1h")})
    assert not second.created
    assert second.template.id == first.template.id
    assert second.template.active_version_id == second.version.id

    detail = admin.get_template(name)
    assert detail.id == first.template.id
    assert detail.default_ttl == "1h0m0s"
    assert detail.daily_cost == 2
    assert detail.active_version is not None
    assert detail.active_version.id == second.version.id
    assert [p.name for p in detail.parameters] == ["size"]
    assert [o.value for o in detail.parameters[0].options] == ["small", "large"]
    assert [(p.name, p.default) for p in detail.presets] == [("large", True)]
    assert [(v.name, v.value) for v in detail.presets[0].parameters] == [("size", "large")]
    assert admin.get_template(first.template.id).name == name

    versions = admin.list_template_versions(name)
    assert {v.id for v in versions} == {first.version.id, second.version.id}
    assert first.version.readme == "# Client test\n"

    admin.delete_template(name)
    assert name not in {t.name for t in admin.list_templates()}
    with pytest.raises(ApiError) as caught:
        admin.get_template(name)
    assert caught.value.status_code == 404


def test_an_invalid_template_names_the_field(admin: Client) -> None:
    with pytest.raises(ApiError) as caught:
        admin.push_template({"template.yaml": "name: ok\ndefault_ttl: forever\n"})
    assert caught.value.status_code == 422
    assert "default_ttl" in {v.field for v in caught.value.validations}
    assert "  default_ttl: " in str(caught.value)


def test_users(admin: Client) -> None:
    username = unique("dev")
    user = admin.create_user(
        username, email=f"{username}@example.com", name="Dev Eloper", roles=["template-admin"]
    )
    assert (user.username, user.email, user.name) == (
        username,
        f"{username}@example.com",
        "Dev Eloper",
    )
    assert "template-admin" in user.roles
    assert username in {u.username for u in admin.list_users()}
    with pytest.raises(ApiError) as caught:
        admin.create_user(username)
    assert caught.value.status_code == 409


def test_tokens(admin: Client, live_server: LiveServer) -> None:
    name = unique("ci")
    created = admin.create_token(name, lifetime="720h")
    assert created.name == name
    assert created.token
    assert created.expires_at is not None
    listed = {t.name: t for t in admin.list_tokens()}
    assert name in listed
    assert "token" not in listed[name].raw  # the secret is shown once, never listed

    with Client(live_server.url, created.token) as client:
        assert client.me().username == "admin"

    forever = admin.create_token(unique("forever"))
    assert forever.expires_at is None

    admin.delete_token(name)
    assert name not in {t.name for t in admin.list_tokens()}
    with Client(live_server.url, created.token) as client, pytest.raises(ApiError) as caught:
        client.me()
    assert caught.value.status_code == 401


def test_tokens_of_another_user(admin: Client) -> None:
    username = unique("bot")
    admin.create_user(username)
    token = admin.create_token("deploy", user=username)
    assert {t.name for t in admin.list_tokens(user=username)} == {"deploy"}
    admin.delete_token(token.id, user=username)
    assert admin.list_tokens(user=username) == []


def test_config_workspace_ttl(admin: Client) -> None:
    stored = admin.set_config("chat-workspace-ttl", "2h")
    assert (stored.key, stored.value) == ("chat-workspace-ttl", "2h0m0s")
    assert admin.get_config("chat-workspace-ttl").value == "2h0m0s"
    with pytest.raises(ApiError) as caught:
        admin.set_config("chat-workspace-ttl", "30s")
    assert caught.value.status_code == 422
    assert "Workspace TTL must not be less than 1 minute." in str(caught.value)
    assert admin.get_config("chat-workspace-ttl").value == "2h0m0s"


def test_config_template_allowlist(admin: Client) -> None:
    python = admin.get_template("python")
    stored = admin.set_config("chat-template-allowlist", python.id)
    assert stored.value == python.id
    assert admin.set_config("chat-template-allowlist", "").value == ""


def test_errors_carry_the_envelope(admin: Client) -> None:
    with pytest.raises(ApiError) as caught:
        admin.get_template(unique("missing"))
    error = caught.value
    assert error.status_code == 404
    assert error.message
    assert all(isinstance(v, Validation) for v in error.validations)
