"""Acting as the chat's owner (the reference's ``asOwner``)."""

from __future__ import annotations

from berth.db.authz import AuthzStore
from berth.domain.actors import Actor, as_chat_tools
from berth.services.accounts import actor_for_user
from berth.tools.context import ChatContext


class OwnerAuthorizationError(Exception):
    """The owner's permissions could not be loaded."""


async def owner_actor(ctx: ChatContext) -> Actor:
    """The chat owner's actor: their roles and organization memberships, freshly read."""
    async with ctx.db.read() as raw:
        user = await AuthzStore(raw, as_chat_tools()).get_user_by_id(ctx.owner_id)
        if user is None:
            raise OwnerAuthorizationError("user not found")
        if user.status != "active":
            raise OwnerAuthorizationError(f"user is {user.status}")
        # The owner may read their own memberships; nothing wider is needed here.
        self_view = AuthzStore(raw, Actor(user_id=user.id, username=user.username))
        return await actor_for_user(self_view, user)
