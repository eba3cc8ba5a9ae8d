"""Bearer-token authentication: every way a request can fail to be someone, and expiry."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from berth.clock import FakeClock
from berth.db.engine import Database
from berth.errors import InvalidInput, Unauthenticated
from berth.services.accounts import authenticate, create_token
from berth.services.base import Ctx
from berth.services.bootstrap import bootstrap
from tests.support.api import Connect, LiveServer, envelope, fields, json_list, ok


def _unauthenticated(response: httpx.Response) -> dict[str, object]:
    body = envelope(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    return body


def test_no_token_is_401_in_the_envelope(connect: Connect) -> None:
    anonymous = connect(None)
    for method, path in [
        ("GET", "/users/me"),
        ("GET", "/templates"),
        ("POST", "/templates"),
        ("GET", "/config/chat-workspace-ttl"),
        ("DELETE", "/templates/python"),
    ]:
        body = _unauthenticated(anonymous.request(method, path))
        assert body["message"] == "Authentication required.", (method, path)
        assert "validations" not in body


def test_a_non_bearer_or_empty_authorization_header_is_401(
    live_server: LiveServer, connect: Connect
) -> None:
    client = connect(None)
    for header in [
        f"Basic {live_server.admin_token}",
        "Bearer",
        live_server.admin_token,
    ]:
        response = client.get("/users/me", headers={"Authorization": header})
        assert _unauthenticated(response)["message"] == "Authentication required.", header


def test_a_malformed_token_is_401(connect: Connect) -> None:
    for token in ["garbage", "berth_", "berth_onlyid", "other_0123456789_secret"]:
        body = _unauthenticated(connect(token).get("/users/me"))
        assert body["message"] == "Invalid API token.", token
        assert body["detail"] == "The token is malformed.", token


def test_an_unknown_token_and_a_wrong_secret_look_the_same(
    live_server: LiveServer, connect: Connect
) -> None:
    key_id = live_server.admin_token.split("_")[1]
    unknown = _unauthenticated(connect("berth_0123456789_notasecret").get("/users/me"))
    wrong_secret = _unauthenticated(connect(f"berth_{key_id}_notasecret").get("/users/me"))
    assert unknown == wrong_secret == {"message": "Invalid API token."}


def test_a_revoked_token_stops_working(admin: httpx.Client, connect: Connect) -> None:
    created = ok(admin.post("/users/me/tokens", json={"name": "ci"}), 201)
    assert created["name"] == "ci"
    assert created["expires_at"] is None
    token = created["token"]
    assert isinstance(token, str)
    user = connect(token)
    assert ok(user.get("/users/me"))["username"] == "admin"
    listed = json_list(admin.get("/users/me/tokens"))
    assert {t["name"] for t in listed} == {"admin-bootstrap", "ci"}
    assert all("token" not in t and "hashed_secret" not in t for t in listed), "no secrets"
    used = next(t for t in listed if t["name"] == "ci")
    assert used["last_used_at"] is not None, "using a token records when"

    response = admin.delete(f"/users/me/tokens/{created['id']}")
    assert response.status_code == 204, response.text
    assert response.content == b""
    _unauthenticated(user.get("/users/me"))
    assert {t["name"] for t in json_list(admin.get("/users/me/tokens"))} == {"admin-bootstrap"}
    envelope(admin.delete(f"/users/me/tokens/{created['id']}"), 404)
    # The admin's own token is untouched.
    assert ok(admin.get("/users/me"))["username"] == "admin"


def test_a_token_can_be_revoked_by_name(admin: httpx.Client, connect: Connect) -> None:
    token = ok(admin.post("/users/admin/tokens", json={"name": "laptop"}), 201)["token"]
    assert isinstance(token, str)
    assert admin.delete("/users/admin/tokens/laptop").status_code == 204
    _unauthenticated(connect(token).get("/users/me"))


def test_token_requests_are_validated(admin: httpx.Client) -> None:
    ok(admin.post("/users/me/tokens", json={"name": "dup"}), 201)
    conflict = envelope(admin.post("/users/me/tokens", json={"name": "dup"}), 409)
    assert fields(conflict) == ["name"]
    for lifetime in ["forever", "-1h", "8761h"]:
        body = envelope(
            admin.post("/users/me/tokens", json={"name": "x", "lifetime": lifetime}), 422
        )
        assert fields(body) == ["lifetime"], lifetime
    body = envelope(admin.post("/users/me/tokens", json={"name": "Bad Name"}), 422)
    assert fields(body) == ["name"]
    names = {t["name"] for t in json_list(admin.get("/users/me/tokens"))}
    assert names == {"admin-bootstrap", "dup"}, "no refused token was stored"


def test_a_token_with_a_lifetime_says_when_it_expires(admin: httpx.Client) -> None:
    created = ok(admin.post("/users/me/tokens", json={"name": "day", "lifetime": "24h"}), 201)
    expires = dt.datetime.fromisoformat(created["expires_at"])
    issued = dt.datetime.fromisoformat(created["created_at"])
    assert expires - issued == pytest.approx(dt.timedelta(hours=24), abs=dt.timedelta(seconds=5))


# --- expiry, at the service level with a fake clock ----------------------------------------


@pytest.mark.anyio
async def test_a_token_expires_at_the_end_of_its_lifetime(db: Database, clock: FakeClock) -> None:
    first = await bootstrap(db, install_examples=False)
    assert first is not None
    admin = await authenticate(db, first.token)
    ctx = Ctx(db, admin)
    assert admin.user_id is not None
    issued_at = clock.now()
    new = await create_token(ctx, admin.user_id, "short", "1m")
    assert new.key.expires_at == issued_at + dt.timedelta(minutes=1)

    clock.advance(dt.timedelta(seconds=59))
    assert (await authenticate(db, new.token)).username == "admin"

    clock.advance(dt.timedelta(seconds=1))  # exactly the expiry time: expired
    with pytest.raises(Unauthenticated) as expired:
        await authenticate(db, new.token)
    assert expired.value.message == "API token expired."

    clock.advance(dt.timedelta(days=400))
    with pytest.raises(Unauthenticated):
        await authenticate(db, new.token)
    # A token without a lifetime never expires.
    assert (await authenticate(db, first.token)).username == "admin"


@pytest.mark.anyio
async def test_a_bad_lifetime_creates_no_token(db: Database) -> None:
    first = await bootstrap(db, install_examples=False)
    assert first is not None
    admin = await authenticate(db, first.token)
    assert admin.user_id is not None
    ctx = Ctx(db, admin)
    for lifetime in ["0.5x", "-1m", "366d", "8761h"]:
        with pytest.raises(InvalidInput):
            await create_token(ctx, admin.user_id, "bad", lifetime)
    # "0", "" and None mean no expiry.
    for name, lifetime in [("zero", "0"), ("empty", ""), ("none", None)]:
        new = await create_token(ctx, admin.user_id, name, lifetime)
        assert new.key.expires_at is None
