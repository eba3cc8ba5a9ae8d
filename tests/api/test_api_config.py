"""Site configuration over HTTP: the chat workspace TTL (spec §10) and the template allowlist."""

from __future__ import annotations

import uuid

import httpx

from tests.support.api import Connect, envelope, fields, json_list, ok

TTL = "/config/chat-workspace-ttl"
ALLOWLIST = "/config/chat-template-allowlist"


def _set(client: httpx.Client, path: str, value: str) -> httpx.Response:
    return client.put(path, json={"value": value})


def test_ttl_defaults_to_zero(admin: httpx.Client) -> None:
    assert ok(admin.get(TTL)) == {"key": "chat-workspace-ttl", "value": "0s"}
    assert ok(admin.get(ALLOWLIST)) == {"key": "chat-template-allowlist", "value": ""}


# One server per test is the slow part, so each table below runs against one server.
_CANONICAL = [
    ("2h", "2h0m0s"),
    ("0", "0s"),
    ("", "0s"),
    ("1m", "1m0s"),
    ("90m", "1h30m0s"),
    ("720h", "720h0m0s"),
    (" 45m ", "45m0s"),
    ("1h0m30s", "1h0m30s"),
]
_REFUSED = [
    ("30s", "Workspace TTL must not be less than 1 minute."),
    ("59.999s", "Workspace TTL must not be less than 1 minute."),
    ("1ns", "Workspace TTL must not be less than 1 minute."),
    ("-1h", "Workspace TTL must be non-negative."),
    ("745h", "Workspace TTL must not exceed 30 days."),
    ("720h1s", "Workspace TTL must not exceed 30 days."),
    ("abc", 'time: invalid duration "abc"'),
    ("2", 'time: missing unit in duration "2"'),
    ("1d", 'time: unknown unit "d" in duration "1d"'),
]


def test_ttl_is_stored_in_canonical_form(admin: httpx.Client) -> None:
    for value, canonical in _CANONICAL:
        set_to = ok(_set(admin, TTL, value))
        assert set_to == {"key": "chat-workspace-ttl", "value": canonical}, value
        assert ok(admin.get(TTL))["value"] == canonical, value


def test_a_bad_ttl_is_refused_and_the_old_value_kept(admin: httpx.Client) -> None:
    ok(_set(admin, TTL, "2h"))
    for value, message in _REFUSED:
        body = envelope(_set(admin, TTL, value), 422)
        assert body["message"] == message, value
        assert body["validations"] == [{"field": "value", "detail": message}], value
        assert ok(admin.get(TTL))["value"] == "2h0m0s", value


def test_the_allowlist_is_canonical_template_ids(admin: httpx.Client) -> None:
    ids = {t["name"]: t["id"] for t in json_list(admin.get("/templates"))}
    python, docker = ids["python"], ids["python-docker"]
    got = ok(_set(admin, ALLOWLIST, python))
    assert got == {"key": "chat-template-allowlist", "value": python}
    assert ok(admin.get(ALLOWLIST))["value"] == python

    # Blanks, repeats, upper case and empty items are normalised away; order is kept.
    messy = f" {docker.upper()} ,, {python} , {docker} ,"
    assert ok(_set(admin, ALLOWLIST, messy))["value"] == f"{docker},{python}"
    assert ok(admin.get(ALLOWLIST))["value"] == f"{docker},{python}"

    assert ok(_set(admin, ALLOWLIST, ""))["value"] == ""


def test_a_bad_allowlist_is_refused_and_the_old_value_kept(admin: httpx.Client) -> None:
    ids = {t["name"]: t["id"] for t in json_list(admin.get("/templates"))}
    ok(_set(admin, ALLOWLIST, ids["python"]))
    for value in ["garbage", "python", str(uuid.uuid4()), f"{ids['python']},not-an-id"]:
        body = envelope(_set(admin, ALLOWLIST, value), 422)
        assert body["message"] == "Invalid chat template allowlist.", value
        assert fields(body) == ["value"], value
        assert ok(admin.get(ALLOWLIST))["value"] == ids["python"], value


def test_a_deleted_template_cannot_be_allowlisted(admin: httpx.Client) -> None:
    template_id = ok(admin.get("/templates/python-docker"))["id"]
    assert admin.delete("/templates/python-docker").status_code == 204
    envelope(_set(admin, ALLOWLIST, template_id), 422)
    assert ok(admin.get(ALLOWLIST))["value"] == ""


def test_unknown_keys_are_404(admin: httpx.Client) -> None:
    for response in [admin.get("/config/no-such-key"), _set(admin, "/config/no-such-key", "1")]:
        body = envelope(response, 404)
        assert body["message"] == "Unknown setting 'no-such-key'."
        assert "chat-workspace-ttl" in body["detail"]
    # The storage names are not an alias for the public keys.
    envelope(admin.get("/config/chat_workspace_ttl"), 404)


def test_a_bad_config_request_is_422(admin: httpx.Client) -> None:
    for payload in [{}, {"value": 5}, {"value": "2h", "extra": 1}, {"ttl": "2h"}]:
        body = envelope(admin.put(TTL, json=payload), 422)
        assert body["message"] == "Invalid request."
    assert ok(admin.get(TTL))["value"] == "0s"


def test_members_read_but_do_not_change_site_config(admin: httpx.Client, connect: Connect) -> None:
    ok(admin.post("/users", json={"username": "alice"}), 201)
    alice = connect(ok(admin.post("/users/alice/tokens", json={"name": "t"}), 201)["token"])
    ok(_set(admin, TTL, "2h"))

    assert ok(alice.get(TTL))["value"] == "2h0m0s"
    assert ok(alice.get(ALLOWLIST))["value"] == ""
    # The policy lets members read site config, so a change is Forbidden, not hidden.
    for path, value in [(TTL, "3h"), (TTL, "0"), (ALLOWLIST, "")]:
        body = envelope(_set(alice, path, value), 403)
        assert body["message"] == "not allowed to update this site_config"
    assert ok(admin.get(TTL))["value"] == "2h0m0s"
    assert ok(admin.get(ALLOWLIST))["value"] == ""
