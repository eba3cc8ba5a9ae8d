"""Users, API tokens and authentication.

Tokens look like ``berth_<id>_<secret>``: the id finds the row, the secret is stored
only as its SHA-256 (it is 192 random bits, so a slow hash adds nothing) and compared
in constant time. The full token is shown once, when it is created.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass

from berth.db.authz import AuthzStore, not_found
from berth.db.dialects import is_unique_violation
from berth.db.engine import Database
from berth.db.policy import Kind
from berth.domain import credentials, passwords
from berth.domain.actors import Actor, as_authenticator, as_chat_tools
from berth.domain.enums import Role, UserStatus
from berth.domain.gocompat import DurationError, parse_duration
from berth.domain.names import name_error
from berth.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated, Validation
from berth.records import ApiKey, Chat, Organization, User
from berth.services.base import Ctx
from berth.services.refs import organization_in

TOKEN_PREFIX = "berth"  # noqa: S105 - a public prefix, not a secret
MAX_TOKEN_LIFETIME = dt.timedelta(days=365)


@dataclass(frozen=True, slots=True)
class NewToken:
    """A freshly created API key and its secret, which is never readable again."""

    key: ApiKey
    token: str


async def actor_for_user(store: AuthzStore, user: User) -> Actor:
    """The actor of a user: site roles plus organization memberships."""
    members = await store.list_organization_members_by_user(user.id)
    return Actor(
        user_id=user.id,
        username=user.username,
        roles=frozenset(Role(r) for r in user.roles),
        organizations={m.organization_id: frozenset(Role(r) for r in m.roles) for m in members},
    )


async def authenticate(db: Database, token: str) -> Actor:
    """The actor a bearer token stands for; :class:`Unauthenticated` otherwise."""
    key_id, secret = _token_parts(token)
    # A read transaction: every request authenticates, and on SQLite a write
    # transaction would take the database's one writer lock each time. The key's
    # last use is written at most once a minute, in a transaction of its own.
    async with db.read(as_authenticator()) as store:
        actor, key = await _identify(store, db.clock.now(), key_id, secret)
    await _note_use(db, key)
    return actor


async def authenticate_chat(db: Database, token: str, chat_id: uuid.UUID | None) -> Chat:
    """The chat ``chat_id`` as the token's user sees it, read in the transaction that
    authenticates the token (one instead of two for each MCP request): a chat that is
    not theirs is the same :class:`NotFound` as one that does not exist."""
    key_id, secret = _token_parts(token)
    async with db.read(as_authenticator()) as store:
        actor, key = await _identify(store, db.clock.now(), key_id, secret)
        chat = None if chat_id is None else await store.acting_as(actor).get_chat_by_id(chat_id)
    await _note_use(db, key)
    if chat is None:
        raise not_found(Kind.CHAT)
    return chat


def _token_parts(token: str) -> tuple[str, str]:
    parts = credentials.split(token, TOKEN_PREFIX)
    if parts is None:
        raise Unauthenticated("Invalid API token.", detail="The token is malformed.")
    return parts


async def _identify(
    store: AuthzStore, now: dt.datetime, key_id: str, secret: str
) -> tuple[Actor, ApiKey]:
    key = await store.get_api_key_by_id(key_id)
    if key is None or not credentials.secret_matches(key.hashed_secret, secret):
        raise Unauthenticated("Invalid API token.")
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthenticated("API token expired.", detail=f"It expired at {key.expires_at}.")
    user = await store.get_user_by_id(key.user_id)
    if user is None or user.status != "active":
        raise Unauthenticated("The token's user is not active.")
    return await actor_for_user(store, user), key


async def _note_use(db: Database, key: ApiKey) -> None:
    """Record the key's use, at most once a minute."""
    if key.last_used_at is None or db.clock.now() - key.last_used_at > dt.timedelta(minutes=1):
        async with db.write(as_authenticator()) as store:
            await store.update_api_key_last_used(key.id)


async def owner_actor(ctx: Ctx, user_id: uuid.UUID) -> Actor:
    """A user's actor, freshly read, for acting on their behalf (the reference's ``asOwner``).

    Read as the chat tools' actor; raises with the reference's texts (``user not
    found``, ``user is suspended``) when the user cannot act.
    """
    async with ctx.db.read(as_chat_tools()) as store:
        user = await store.get_user_by_id(user_id)
    if user is None:
        raise NotFound("user not found")
    if user.status != "active":
        raise Forbidden(f"user is {user.status}")
    # The user may read their own memberships; nothing wider is needed here.
    async with ctx.db.read(Actor(user_id=user.id, username=user.username)) as store:
        return await actor_for_user(store, user)


async def issue_token(
    store: AuthzStore, user_id: uuid.UUID, name: str, *, expires_at: dt.datetime | None
) -> NewToken:
    """Create an API key for ``user_id`` inside the caller's transaction."""
    minted = credentials.mint(TOKEN_PREFIX)
    try:
        key = await store.insert_api_key(
            key_id=minted.id,
            user_id=user_id,
            name=name,
            hashed_secret=minted.hashed,
            scopes=["all"],
            expires_at=expires_at,
        )
    except Exception as exc:
        if is_unique_violation(exc):
            raise Conflict(
                f"A token named {name!r} already exists.",
                validations=[Validation("name", "already exists")],
            ) from exc
        raise
    return NewToken(key=key, token=minted.value)


def _lifetime(value: str | None) -> dt.timedelta | None:
    if value is None or value.strip() in ("", "0", "0s"):
        return None
    try:
        lifetime = parse_duration(value.strip())
    except DurationError as exc:
        raise InvalidInput(
            "Invalid token lifetime.", validations=[Validation("lifetime", str(exc))]
        ) from exc
    if lifetime <= dt.timedelta(0) or lifetime > MAX_TOKEN_LIFETIME:
        raise InvalidInput(
            "Invalid token lifetime.",
            validations=[Validation("lifetime", "must be positive and at most 8760h (a year)")],
        )
    return lifetime


def _token_name(name: str) -> str:
    name = name.strip()
    if problem := name_error(name):
        raise InvalidInput("Invalid token name.", validations=[Validation("name", problem)])
    return name


async def create_token(ctx: Ctx, user_id: uuid.UUID, name: str, lifetime: str | None) -> NewToken:
    name = _token_name(name)
    life = _lifetime(lifetime)
    async with ctx.write() as store:
        expires = None if life is None else ctx.clock.now() + life
        return await issue_token(store, user_id, name, expires_at=expires)


async def list_tokens(ctx: Ctx, user_id: uuid.UUID) -> list[ApiKey]:
    async with ctx.read() as store:
        return await store.list_api_keys_by_user(user_id)


async def delete_token(ctx: Ctx, user_id: uuid.UUID, token_ref: str) -> None:
    """Delete one of the user's tokens, named by its id or its name."""
    async with ctx.write() as store:
        for key in await store.list_api_keys_by_user(user_id):
            if token_ref in (key.id, key.name):
                await store.delete_api_key(key.id)
                return
        raise not_found(Kind.API_KEY)


async def organizations_of(ctx: Ctx, user_id: uuid.UUID) -> list[uuid.UUID]:
    """The organizations a user belongs to."""
    async with ctx.read() as store:
        return [m.organization_id for m in await store.list_organization_members_by_user(user_id)]


async def list_users(ctx: Ctx) -> list[tuple[User, list[uuid.UUID]]]:
    async with ctx.read() as store:
        out: list[tuple[User, list[uuid.UUID]]] = []
        for user in await store.list_users():
            members = await store.list_organization_members_by_user(user.id)
            out.append((user, [m.organization_id for m in members]))
        return out


async def add_user(
    store: AuthzStore,
    *,
    username: str,
    email: str = "",
    name: str = "",
    roles: list[str] | None = None,
    organization_id: uuid.UUID,
    is_system: bool = False,
) -> User:
    """Insert a user, make them a member of the organization and its Everyone group."""
    try:
        user = await store.insert_user(
            username=username, email=email, name=name, roles=roles, is_system=is_system
        )
    except Exception as exc:
        if is_unique_violation(exc):
            raise Conflict(
                f"The username {username!r} is taken.",
                validations=[Validation("username", "already taken")],
            ) from exc
        raise
    await store.insert_organization_member(organization_id=organization_id, user_id=user.id)
    if everyone := await store.get_everyone_group(organization_id):
        await store.insert_group_member(group_id=everyone.id, user_id=user.id)
    return user


async def create_user(
    ctx: Ctx,
    *,
    username: str,
    email: str = "",
    name: str = "",
    roles: list[str] | None = None,
    organization: str | None = None,
    password: str | None = None,
) -> tuple[User, list[uuid.UUID]]:
    """A new user; with ``password``, one who can also log in to the web UI with it
    (hashed before the transaction opens: scrypt takes ~0.1 s of CPU)."""
    username = username.strip()
    problems: list[Validation] = []
    if problem := name_error(username):
        problems.append(Validation("username", problem))
    problems.extend(_role_problems(roles or []))
    if email and ("@" not in email or len(email) > 320):
        problems.append(Validation("email", "must be an email address"))
    if password is not None:
        try:
            passwords.validate(password)
        except InvalidInput as exc:
            problems.extend(exc.validations)
    if problems:
        raise InvalidInput("Invalid user.", validations=problems)
    hashed = (
        None if password is None else await asyncio.to_thread(passwords.hash_password, password)
    )
    site_roles = _site_roles(roles or [])
    async with ctx.write() as store:
        org = await organization_in(store, organization)
        user = await add_user(
            store,
            username=username,
            email=email,
            name=name,
            roles=site_roles,
            organization_id=org.id,
        )
        if hashed is not None:
            await store.set_user_password(user.id, hashed)
        return user, [org.id]


def _role_problems(roles: list[str]) -> list[Validation]:
    valid = {r.value for r in Role}
    return [
        Validation("roles", f"unknown role {role!r}; one of {', '.join(sorted(valid))}")
        for role in roles
        if role not in valid
    ]


def _site_roles(roles: list[str]) -> list[str]:
    """The roles stored on a user: every user is a member, so ``member`` is not one."""
    return sorted({r for r in roles if r != Role.MEMBER.value})


def _not_a_system_user(user: User) -> None:
    if user.is_system:
        raise InvalidInput(
            "System users are not managed here.",
            validations=[Validation("user", f"{user.username!r} is a system user")],
        )


async def set_user_status(ctx: Ctx, user: User, status: UserStatus) -> User:
    """Suspend a user or make them active again (site owners).

    A suspended user's API tokens stop working at their next request (authentication
    reads the user's status each time) and their web sessions are revoked, so unsuspending
    does not bring an old, possibly stolen, cookie back to life. Site owners cannot
    suspend themselves: the last one would lock everyone out.
    """
    _not_a_system_user(user)
    if status not in (UserStatus.ACTIVE, UserStatus.SUSPENDED):
        raise InvalidInput(
            "Invalid status.", validations=[Validation("status", "must be active or suspended")]
        )
    async with ctx.write() as store:
        updated = await store.update_user_status(user.id, status.value)  # authorized first
        if updated is None:
            raise not_found(Kind.USER)
        if status is UserStatus.SUSPENDED and user.id == ctx.actor.user_id:
            raise InvalidInput(  # rolls the update back
                "You cannot suspend yourself.",
                validations=[Validation("status", "another site owner must do it")],
            )
        if status is UserStatus.SUSPENDED:
            await store.revoke_web_sessions_by_user(user.id)
        return updated


async def set_user_roles(ctx: Ctx, user: User, roles: list[str]) -> User:
    """Replace a user's site roles (site owners). ``member`` is implied and may be given.

    A site owner cannot take ``owner`` from themselves, so there is always one left who
    can give it back. The new roles apply from the user's next request.
    """
    _not_a_system_user(user)
    if problems := _role_problems(roles):
        raise InvalidInput("Invalid roles.", validations=problems)
    site_roles = _site_roles(roles)
    async with ctx.write() as store:
        updated = await store.update_user_roles(user.id, site_roles)  # authorized first
        if updated is None:
            raise not_found(Kind.USER)
        if user.id == ctx.actor.user_id and Role.OWNER.value not in site_roles:
            raise InvalidInput(  # rolls the update back
                "You cannot remove your own owner role.",
                validations=[Validation("roles", "another site owner must do it")],
            )
        return updated


async def list_organizations(ctx: Ctx) -> list[Organization]:
    async with ctx.read() as store:
        return await store.list_organizations()


async def create_organization(
    ctx: Ctx, *, name: str, display_name: str = "", description: str = ""
) -> Organization:
    """A new organization with its ``Everyone`` group."""
    name = name.strip()
    if problem := name_error(name):
        raise InvalidInput("Invalid organization.", validations=[Validation("name", problem)])
    async with ctx.write() as store:
        try:
            org = await store.insert_organization(
                name=name, display_name=display_name, description=description
            )
        except Exception as exc:
            if is_unique_violation(exc):
                raise Conflict(
                    f"An organization named {name!r} exists.",
                    validations=[Validation("name", "already exists")],
                ) from exc
            raise
        await store.insert_group(organization_id=org.id, name="Everyone", is_everyone=True)
        return org
