"""Suspending users and changing their roles: ``PUT /users/{user}/status/suspend``,
``…/status/activate`` and ``PUT /users/{user}/roles`` (the admin page offers the same)."""

from __future__ import annotations

import httpx

from tests.support.api import Connect, LiveServer, envelope, fields, json_list, ok, unique
from tests.web.conftest import http_login


def _member(admin: httpx.Client, connect: Connect) -> tuple[str, httpx.Client]:
    name = unique("m")
    ok(admin.post("/users", json={"username": name, "password": "member's password"}), 201)
    token = ok(admin.post(f"/users/{name}/tokens", json={"name": "t"}), 201)["token"]
    return name, connect(token)


def test_a_suspended_users_token_and_web_session_stop_working_until_activated(
    admin: httpx.Client, connect: Connect, live_server: LiveServer
) -> None:
    name, member = _member(admin, connect)
    with httpx.Client(base_url=live_server.url, timeout=30.0) as web:
        assert http_login(web, username=name, password="member's password").status_code == 303
        assert web.get("/templates").status_code == 200

        suspended = ok(admin.put(f"/users/{name}/status/suspend"))
        assert suspended["status"] == "suspended"
        assert envelope(member.get("/users/me"), 401)["message"] == (
            "The token's user is not active."
        )
        page = web.get("/templates")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login?next=/templates")
        assert http_login(web, username=name, password="member's password").status_code == 401

        assert ok(admin.put(f"/users/{name}/status/activate"))["status"] == "active"
        assert ok(member.get("/users/me"))["username"] == name  # the token works again
        web.cookies.clear()
        assert web.get("/templates").status_code == 303  # the old session stays revoked
        assert http_login(web, username=name, password="member's password").status_code == 303


def test_roles_are_replaced_and_take_effect_at_the_next_request(
    admin: httpx.Client, connect: Connect
) -> None:
    name, member = _member(admin, connect)
    assert [u["username"] for u in json_list(member.get("/users"))] == [name]
    promoted = ok(admin.put(f"/users/{name}/roles", json={"roles": ["owner", "member"]}))
    assert promoted["roles"] == ["owner"]  # member is implied, not stored
    assert len(json_list(member.get("/users"))) > 1  # a site owner sees everyone
    assert ok(admin.put(f"/users/{name}/roles", json={"roles": []}))["roles"] == []
    assert [u["username"] for u in json_list(member.get("/users"))] == [name]


def test_bad_roles_and_locking_oneself_out_are_refused_naming_the_field(
    admin: httpx.Client, connect: Connect
) -> None:
    name, _ = _member(admin, connect)
    body = envelope(admin.put(f"/users/{name}/roles", json={"roles": ["king"]}), 422)
    assert fields(body) == ["roles"]
    body = envelope(admin.put("/users/admin/roles", json={"roles": []}), 422)
    assert body["message"] == "You cannot remove your own owner role."
    assert ok(admin.get("/users/admin"))["roles"] == ["owner"]  # rolled back
    body = envelope(admin.put("/users/admin/status/suspend"), 422)
    assert (body["message"], fields(body)) == ("You cannot suspend yourself.", ["status"])
    assert ok(admin.get("/users/admin"))["status"] == "active"


def test_a_member_can_neither_suspend_nor_promote(admin: httpx.Client, connect: Connect) -> None:
    name, member = _member(admin, connect)
    assert envelope(member.put("/users/admin/status/suspend"), 404) == {"message": "user not found"}
    envelope(member.put(f"/users/{name}/roles", json={"roles": ["owner"]}), 403)
    envelope(member.put(f"/users/{name}/status/activate"), 403)
    assert ok(admin.get(f"/users/{name}"))["roles"] == []
