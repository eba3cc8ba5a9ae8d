"""``PUT /users/{user}/password`` and ``POST /users`` with a password (the web UI's login)."""

from __future__ import annotations

import httpx

from tests.support.api import Connect, envelope, fields, ok, unique


def _member(admin: httpx.Client, connect: Connect) -> tuple[str, httpx.Client]:
    name = unique("m")
    ok(admin.post("/users", json={"username": name, "password": "member's password"}), 201)
    token = ok(admin.post(f"/users/{name}/tokens", json={"name": "t"}), 201)["token"]
    return name, connect(token)


def test_a_site_owner_sets_anyones_password_and_a_member_only_their_own(
    admin: httpx.Client, connect: Connect
) -> None:
    name, member = _member(admin, connect)
    assert member.put("/users/me/password", json={"password": "my new password"}).status_code == 204
    assert (
        admin.put(f"/users/{name}/password", json={"password": "reset by admin"}).status_code == 204
    )
    assert admin.put("/users/me/password", json={"password": "the admin's own"}).status_code == 204
    refused = member.put("/users/admin/password", json={"password": "taken over!"})
    assert envelope(refused, 404) == {"message": "user not found"}  # like a missing user


def test_a_bad_password_is_a_422_naming_the_field_and_creates_no_user(
    admin: httpx.Client, connect: Connect
) -> None:
    name, _ = _member(admin, connect)
    body = envelope(admin.put(f"/users/{name}/password", json={"password": "short"}), 422)
    assert fields(body) == ["password"]
    other = unique("n")
    created = admin.post("/users", json={"username": other, "password": "x\x00yyyyyyyy"})
    assert fields(envelope(created, 422)) == ["password"]
    envelope(admin.get(f"/users/{other}"), 404)
    assert "password" not in ok(admin.get(f"/users/{name}"))  # never shown
