"""Authorization cases: the web UI's password hashes and login sessions."""

from __future__ import annotations

import datetime as dt
import hashlib

from berth.db.engine import Database
from berth.domain.actors import as_authenticator, as_chat_tools, as_system
from tests.db.authz_world import World, as_, case, denied, uid

LATER = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def _id(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


@case("set_user_password", "get_user_password")
async def _(db: Database, w: World) -> None:
    async with db.write(as_system()) as s:
        alice, bob, owner = as_(s, w.alice), as_(s, w.bob), as_(s, w.owner)
        await denied(bob.set_user_password(uid(w.alice), "scrypt$x"))  # not someone else's
        await alice.set_user_password(uid(w.alice), "scrypt$mine")  # one's own
        await owner.set_user_password(uid(w.bob), "scrypt$bobs")  # a site owner: anyone's
        await owner.set_user_password(uid(w.bob), "scrypt$bobs2")  # replaced, not doubled
        await denied(as_(s, as_chat_tools()).set_user_password(uid(w.alice), "x"))
        # No person reads a hash, not even its user or a site owner: only the login check.
        for someone in (w.alice, w.owner, as_system(), as_chat_tools()):
            assert await as_(s, someone).get_user_password(uid(w.alice)) is None
        auth = as_(s, as_authenticator())
        assert await auth.get_user_password(uid(w.alice)) == "scrypt$mine"
        assert await auth.get_user_password(uid(w.bob)) == "scrypt$bobs2"
        assert await auth.get_user_password(uid(w.tadmin)) is None
        await denied(auth.set_user_password(uid(w.alice), "x"))  # it reads, never writes


@case("insert_web_session", "get_web_session")
async def _(db: Database, w: World) -> None:
    async with db.write(as_system()) as s:
        await denied(
            as_(s, w.alice).insert_web_session(
                id_hash=_id("a"), user_id=uid(w.alice), expires_at=LATER
            )
        )  # sessions come from a login, never from a user's own call
        auth = as_(s, as_authenticator())
        made = await auth.insert_web_session(
            id_hash=_id("a"), user_id=uid(w.alice), expires_at=LATER
        )
        assert made.user_id == uid(w.alice)
        assert made.revoked_at is None
        assert await auth.get_web_session(_id("a")) == made
        assert await auth.get_web_session(_id("missing")) is None
        assert await as_(s, w.alice).get_web_session(_id("a")) == made  # their own
        assert await as_(s, w.bob).get_web_session(_id("a")) is None  # hidden from others
        assert await as_(s, w.owner).get_web_session(_id("a")) == made


@case("revoke_web_session", "revoke_web_sessions_by_user")
async def _(db: Database, w: World) -> None:
    async with db.write(as_system()) as s:
        auth = as_(s, as_authenticator())
        for name in ("a1", "a2", "a3"):
            await auth.insert_web_session(id_hash=_id(name), user_id=uid(w.alice), expires_at=LATER)
        await denied(as_(s, w.bob).revoke_web_session(_id("a1")))
        await denied(as_(s, w.bob).revoke_web_sessions_by_user(uid(w.alice)))
        assert await as_(s, w.alice).revoke_web_session(_id("a1")) is True
        assert await auth.revoke_web_session(_id("a1")) is False  # already revoked
        assert await auth.revoke_web_session(_id("missing")) is False
        assert await as_(s, w.alice).revoke_web_sessions_by_user(uid(w.alice)) == 2
        for name in ("a1", "a2", "a3"):
            found = await auth.get_web_session(_id(name))
            assert found is not None
            assert found.revoked_at is not None


@case("delete_web_sessions_expired_before")
async def _(db: Database, w: World) -> None:
    now = db.clock.now()
    async with db.write(as_system()) as s:
        auth = as_(s, as_authenticator())
        await auth.insert_web_session(id_hash=_id("old"), user_id=uid(w.alice), expires_at=now)
        await auth.insert_web_session(id_hash=_id("new"), user_id=uid(w.alice), expires_at=LATER)
        await denied(as_(s, w.alice).delete_web_sessions_expired_before(LATER))
        assert await auth.delete_web_sessions_expired_before(now + dt.timedelta(seconds=1)) == 1
        assert await auth.get_web_session(_id("old")) is None
        assert await auth.get_web_session(_id("new")) is not None
