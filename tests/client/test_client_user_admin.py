"""The client's user administration against a live server: ``suspend_user``,
``activate_user`` and ``set_user_roles`` (``PUT /users/{user}/status/…`` and ``…/roles``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from berth.client import ApiError, Client, InvalidArgument, User
from tests.support.api import LiveServer, unique


@pytest.fixture
def admin(live_server: LiveServer) -> Iterator[Client]:
    with Client(live_server.url, live_server.admin_token) as client:
        yield client


@pytest.fixture
def member(admin: Client, live_server: LiveServer) -> Iterator[Client]:
    """A new user with no site role, as a client with their own token."""
    name = unique("m")
    admin.create_user(name)
    secret = admin.create_token("t", user=name).token
    with Client(live_server.url, secret) as client:
        yield client


def refused(call: Callable[[], object], status: int) -> ApiError:
    """The :class:`ApiError` of ``status`` that ``call`` raises."""
    with pytest.raises(ApiError) as caught:
        call()
    assert caught.value.status_code == status, caught.value
    return caught.value


def test_a_suspended_users_token_stops_working_until_activated(
    admin: Client, member: Client
) -> None:
    name = member.me().username

    suspended = admin.suspend_user(name)
    assert isinstance(suspended, User)
    assert (suspended.username, suspended.status) == (name, "suspended")
    assert refused(member.me, 401).message == "The token's user is not active."
    assert {u.username: u.status for u in admin.list_users()}[name] == "suspended"

    activated = admin.activate_user(suspended.id)  # an id works as well as a username
    assert (activated.username, activated.status) == (name, "active")
    assert member.me().username == name  # the same token works again


def test_roles_are_replaced_and_the_user_returned(admin: Client, member: Client) -> None:
    name = member.me().username
    assert [u.username for u in member.list_users()] == [name]  # a member sees themselves

    promoted = admin.set_user_roles(name, ["owner", "member"])
    assert promoted.roles == ["owner"]  # member is implied, not stored
    assert len(member.list_users()) > 1  # now a site owner: everyone
    assert set(admin.set_user_roles(name, ("template-admin", "owner")).roles) == {
        "owner",
        "template-admin",
    }

    assert admin.set_user_roles(name, []).roles == []
    assert member.me().roles == []
    assert [u.username for u in member.list_users()] == [name]


def test_admin_errors_carry_the_servers_reasons(admin: Client, member: Client) -> None:
    name = member.me().username
    missing = unique("nobody")
    for call in (
        lambda: admin.suspend_user(missing),
        lambda: admin.activate_user(missing),
        lambda: admin.set_user_roles(missing, []),
    ):
        assert refused(call, 404).message == "user not found"

    itself = refused(lambda: admin.suspend_user("me"), 422)
    assert itself.message == "You cannot suspend yourself."
    assert [v.field for v in itself.validations] == ["status"]
    demoted = refused(lambda: admin.set_user_roles("admin", []), 422)
    assert demoted.message == "You cannot remove your own owner role."
    assert admin.me().roles == ["owner"]
    assert admin.me().status == "active"

    bad_role = refused(lambda: admin.set_user_roles(name, ["king"]), 422)
    assert [v.field for v in bad_role.validations] == ["roles"]

    # A member cannot see the admin (404) and may not change themselves (403).
    assert refused(lambda: member.suspend_user("admin"), 404).message == "user not found"
    refused(lambda: member.set_user_roles(name, ["owner"]), 403)
    refused(lambda: member.activate_user(name), 403)
    assert member.me().roles == []


def test_roles_given_as_one_string_are_refused_before_sending() -> None:
    # Nothing listens at this URL: a request would be ConnectionFailed, not this.
    with Client("http://127.0.0.1:9", "t") as client, pytest.raises(InvalidArgument) as caught:
        client.set_user_roles("bob", "owner")
    assert "not the string 'owner'" in str(caught.value)
