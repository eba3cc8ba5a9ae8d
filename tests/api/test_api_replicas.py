"""``GET /replicas`` against a live server: the server itself, registered and live;
a member's refusal; the relay endpoint looks like any unknown path without its signature.
The registry across two real servers is in ``tests/replicas``."""

from __future__ import annotations

import httpx

from tests.conftest import LiveServer
from tests.support.api import Connect, envelope, json_list, ok

REPLICA_KEYS = {"id", "hostname", "relay_url", "version", "started_at", "heartbeat_at", "live"}


def test_the_server_lists_itself_as_a_live_replica(
    admin: httpx.Client, live_server: LiveServer
) -> None:
    listed = admin.get("/replicas")
    assert listed.status_code == 200
    (replica,) = json_list(listed)
    assert set(replica) == REPLICA_KEYS
    assert replica["live"] is True
    assert replica["relay_url"] == live_server.url  # the address it listens on
    assert replica["id"] == str(live_server.runtime.gateway.replica_id)
    assert replica["version"] == ok(admin.get("/health"))["version"]


def test_a_member_is_refused(admin: httpx.Client, connect: Connect) -> None:
    ok(admin.post("/users", json={"username": "rita"}), 201)
    token = ok(admin.post("/users/rita/tokens", json={"name": "t"}), 201)["token"]
    refusal = envelope(connect(token).get("/replicas"), 403)
    assert refusal == {"message": "only site owners see the server replicas"}


def test_the_relay_endpoint_is_an_unknown_path_to_a_user(admin: httpx.Client) -> None:
    unknown = admin.post("/internal/nothing", json={})
    for method in ("GET", "POST", "PUT", "DELETE"):
        response = admin.request(method, "/internal/relay", json={"agent_id": "x"})
        assert (response.status_code, response.content) == (404, unknown.content)
