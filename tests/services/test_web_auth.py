"""Web UI logins: passwords, sessions (expiry, revocation), CSRF tokens."""

from __future__ import annotations

import datetime as dt

import pytest

from berth.clock import FakeClock
from berth.db.engine import Database
from berth.domain.actors import as_system
from berth.errors import InvalidInput, NotFound, Unauthenticated
from berth.records import User
from berth.services import accounts, refs, web_auth
from berth.services.base import Ctx

pytestmark = pytest.mark.anyio


async def _site(db: Database) -> Ctx:
    """An organization and a site owner's context."""
    async with db.write(as_system()) as s:
        org = await s.insert_organization(name="default", is_default=True)
        await s.insert_group(organization_id=org.id, name="Everyone", is_everyone=True)
        root = await accounts.add_user(s, username="root", roles=["owner"], organization_id=org.id)
        actor = await accounts.actor_for_user(s, root)
    return Ctx(db, actor)


async def test_a_password_set_at_creation_logs_in_and_a_wrong_one_does_not(db: Database) -> None:
    owner = await _site(db)
    user, _ = await accounts.create_user(owner, username="alice", password="s3cret-pass")
    made = await web_auth.login_with_password(db, "Alice", "s3cret-pass")  # any case
    assert made.user.id == user.id
    session = await web_auth.session_for(db, made.secret)
    assert session.user.id == user.id
    assert session.actor.user_id == user.id
    assert session.csrf == web_auth.csrf_for(made.secret)
    for name, password in (("alice", "wrong-pass"), ("nobody", "s3cret-pass"), ("root", "")):
        with pytest.raises(Unauthenticated) as refused:
            await web_auth.login_with_password(db, name, password)
        assert refused.value.message == "Wrong username or password."  # one answer for all


async def test_a_bad_password_at_creation_creates_no_user(db: Database) -> None:
    owner = await _site(db)
    with pytest.raises(InvalidInput) as refused:
        await accounts.create_user(owner, username="bob", password="short")
    assert [v.field for v in refused.value.validations] == ["password"]
    with pytest.raises(NotFound):
        await refs.user(owner, "bob")


async def test_sessions_expire_and_are_revoked(db: Database, clock: FakeClock) -> None:
    owner = await _site(db)
    await accounts.create_user(owner, username="alice", password="s3cret-pass")
    first = await web_auth.login_with_password(db, "alice", "s3cret-pass")
    second = await web_auth.login_with_password(db, "alice", "s3cret-pass")
    assert first.secret != second.secret
    assert web_auth.csrf_for(first.secret) != web_auth.csrf_for(second.secret)
    await web_auth.logout(db, first.secret)
    with pytest.raises(Unauthenticated, match="not logged in"):
        await web_auth.session_for(db, first.secret)
    await web_auth.session_for(db, second.secret)  # the other login is still good
    clock.advance(web_auth.SESSION_LIFETIME + dt.timedelta(seconds=1))
    with pytest.raises(Unauthenticated, match="expired"):
        await web_auth.session_for(db, second.secret)
    with pytest.raises(Unauthenticated):
        await web_auth.session_for(db, "made-up")


async def test_a_new_password_ends_the_sessions_and_the_old_password(db: Database) -> None:
    owner = await _site(db)
    user, _ = await accounts.create_user(owner, username="alice", password="first-password")
    made = await web_auth.login_with_password(db, "alice", "first-password")
    alice = Ctx(db, (await web_auth.session_for(db, made.secret)).actor)
    await web_auth.set_password(alice, user, "second-password")  # one's own
    with pytest.raises(Unauthenticated):
        await web_auth.session_for(db, made.secret)
    with pytest.raises(Unauthenticated):
        await web_auth.login_with_password(db, "alice", "first-password")
    await web_auth.login_with_password(db, "alice", "second-password")


async def test_a_member_cannot_set_another_users_password(db: Database) -> None:
    owner = await _site(db)
    alice, _ = await accounts.create_user(owner, username="alice", password="alice-password")
    bob, _ = await accounts.create_user(owner, username="bob")
    made = await web_auth.login_with_password(db, "alice", "alice-password")
    as_alice = Ctx(db, (await web_auth.session_for(db, made.secret)).actor)
    with pytest.raises(NotFound):
        await web_auth.set_password(as_alice, bob, "taken-over!")
    await web_auth.set_password(owner, bob, "bobs-password")  # a site owner may
    assert (await web_auth.login_with_password(db, "bob", "bobs-password")).user.id == bob.id
    assert alice.id != bob.id


async def test_a_token_logs_in_and_system_users_get_no_password(db: Database) -> None:
    owner = await _site(db)
    user, _ = await accounts.create_user(owner, username="carol")
    token = await accounts.create_token(owner, user.id, "web", None)
    made = await web_auth.login_with_token(db, token.token)
    assert made.user.id == user.id
    with pytest.raises(Unauthenticated):
        await web_auth.login_with_token(db, "berth_nope_nope")
    system_user: User
    async with db.write(as_system()) as s:
        org = await s.get_default_organization()
        assert org is not None
        system_user = await accounts.add_user(
            s, username="prebuilds", organization_id=org.id, is_system=True
        )
    with pytest.raises(InvalidInput):
        await web_auth.set_password(owner, system_user, "a-password")


async def test_a_token_login_ends_no_later_than_its_token(db: Database, clock: FakeClock) -> None:
    owner = await _site(db)
    user, _ = await accounts.create_user(owner, username="dora")
    token = await accounts.create_token(owner, user.id, "short", "1h")
    made = await web_auth.login_with_token(db, token.token)
    assert made.expires_at == token.key.expires_at
    clock.advance(dt.timedelta(minutes=61))
    with pytest.raises(Unauthenticated, match="expired"):
        await web_auth.session_for(db, made.secret)
