"""Web UI logins: passwords, server-side sessions and their CSRF tokens (DESIGN §14).

A login — a username and password, or an API token — makes a session row and hands
back its id once, for the cookie. The id is 256 random bits; the row stores only its
SHA-256, so reading the table logs no one in. A session is good until it expires
(:data:`SESSION_LIFETIME` after login, not extended by use) or is revoked (logout, a
new password). Each request re-reads the session and its user, so a revoked session,
a suspended user or a changed role takes effect at the next page.

Forms carry a CSRF token derived from the session id (an HMAC under it): another site
can make the browser send the cookie, never read the id, so it cannot forge the token.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from berth.db.engine import Database
from berth.domain import credentials, passwords
from berth.domain.actors import Actor, as_authenticator
from berth.errors import InvalidInput, Unauthenticated, Validation
from berth.records import User
from berth.services.accounts import TOKEN_PREFIX, actor_for_user, authenticate
from berth.services.base import Ctx

SESSION_LIFETIME = dt.timedelta(days=7)
"""How long a login lasts. Fixed from login on: a stolen cookie stops working by then."""
_FORGET_AFTER = dt.timedelta(days=1)
"""Expired rows are deleted this long after they expire (at some later login)."""


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just made: ``secret`` goes in the cookie and is never readable again."""

    secret: str
    user: User
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Session:
    """A valid session, read for one request."""

    user: User
    actor: Actor
    expires_at: dt.datetime
    csrf: str
    """The CSRF token this session's forms must carry."""


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def csrf_for(secret: str) -> str:
    """The CSRF token of the session whose cookie holds ``secret``."""
    return hmac.new(secret.encode(), b"berth-csrf", hashlib.sha256).hexdigest()


def csrf_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


async def _open_session(
    db: Database, user: User, *, not_after: dt.datetime | None = None
) -> NewSession:
    secret = secrets.token_urlsafe(32)
    now = db.clock.now()
    expires = now + SESSION_LIFETIME
    if not_after is not None:
        expires = min(expires, not_after)
    async with db.write(as_authenticator()) as store:
        await store.delete_web_sessions_expired_before(now - _FORGET_AFTER)
        await store.insert_web_session(id_hash=_hash(secret), user_id=user.id, expires_at=expires)
    return NewSession(secret, user, expires)


_BAD_LOGIN = "Wrong username or password."


async def login_with_password(db: Database, username: str, password: str) -> NewSession:
    """A session for the user whose password this is; :class:`Unauthenticated` otherwise.

    The answer is the same for an unknown user, a user without a password, a suspended
    user and a wrong password, and takes one hash's time in each case.
    """
    async with db.read(as_authenticator()) as store:
        user = await store.get_user_by_username(username.strip()) if username.strip() else None
        usable = user is not None and not user.is_system and user.status == "active"
        stored = await store.get_user_password(user.id) if user is not None and usable else None
    if not await asyncio.to_thread(passwords.verify, stored, password) or user is None:
        raise Unauthenticated(_BAD_LOGIN)
    return await _open_session(db, user)


async def login_with_token(db: Database, token: str) -> NewSession:
    """A session for the user an API token stands for (the token itself is not kept).

    It ends no later than the token expires; deleting the token does not end it (log
    out, or set the user's password, for that).
    """
    actor = await authenticate(db, token)
    parts = credentials.split(token, TOKEN_PREFIX)
    assert actor.user_id is not None
    assert parts is not None  # authenticate() accepted it
    async with db.read(as_authenticator()) as store:
        user = await store.get_user_by_id(actor.user_id)
        key = await store.get_api_key_by_id(parts[0])
    if user is None or key is None:
        raise Unauthenticated("Invalid API token.")
    return await _open_session(db, user, not_after=key.expires_at)


async def session_for(db: Database, secret: str) -> Session:
    """The valid session a cookie names; :class:`Unauthenticated` saying why otherwise."""
    async with db.read(as_authenticator()) as store:
        found = await store.get_web_session(_hash(secret)) if secret else None
        if found is None or found.revoked_at is not None:
            raise Unauthenticated("You are not logged in.")
        if found.expires_at <= db.clock.now():
            raise Unauthenticated("Your session expired. Log in again.")
        user = await store.get_user_by_id(found.user_id)
        if user is None or user.status != "active":
            raise Unauthenticated("Your account is not active.")
        actor = await actor_for_user(store, user)
    return Session(user, actor, found.expires_at, csrf_for(secret))


async def logout(db: Database, secret: str) -> None:
    """Revoke the session (a no-op for one that is not there)."""
    if not secret:
        return
    async with db.write(as_authenticator()) as store:
        await store.revoke_web_session(_hash(secret))


async def set_password(ctx: Ctx, user: User, password: str) -> None:
    """Set a user's password and end their sessions (whoever knew the old one is out).

    The hash is made before the transaction opens (scrypt takes ~0.1 s of CPU), in a
    thread, so no database lock is held while it runs.
    """
    if user.is_system:
        raise InvalidInput(
            "System users cannot log in.",
            validations=[Validation("user", f"{user.username!r} is a system user")],
        )
    hashed = await asyncio.to_thread(passwords.hash_password, password)
    async with ctx.write() as store:
        await store.set_user_password(user.id, hashed)
        await store.revoke_web_sessions_by_user(user.id)
