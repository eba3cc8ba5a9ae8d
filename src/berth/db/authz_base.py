"""The shared half of :class:`~berth.db.authz.AuthzStore`: the actor and the checks."""

from __future__ import annotations

import uuid
from typing import TypeVar

from berth.db.policy import Action, Kind, Resource, is_allowed
from berth.db.store import Store
from berth.domain.actors import Actor
from berth.errors import Forbidden, NotFound
from berth.records import Chat, Template, User

R = TypeVar("R")

SITE = Resource(Kind.SITE_CONFIG)


def not_found(kind: Kind) -> NotFound:
    """The error for a missing thing, identical to the one for a hidden thing."""
    return NotFound(f"{kind.value.replace('_', ' ')} not found")


def user_resource(u: User) -> Resource:
    return Resource(Kind.USER, owner_id=u.id)


def template_resource(t: Template) -> Resource:
    return Resource(Kind.TEMPLATE, organization_id=t.organization_id)


def chat_resource(c: Chat) -> Resource:
    return Resource(Kind.CHAT, organization_id=c.organization_id, owner_id=c.owner_id)


class AuthzBase(Store):
    """The Store's interface, with ``actor`` authorized on every call."""

    def __init__(self, store: Store, actor: Actor) -> None:
        # Share the inner store's connection so the wrapper is a view, not a copy.
        super().__init__(store._conn, store._clock)  # pyright: ignore[reportPrivateUsage]
        self._inner = store
        self.actor = actor

    # --- helpers ----------------------------------------------------------------------

    def _can(self, action: Action, resource: Resource) -> bool:
        return is_allowed(self.actor, action, resource)

    def _require(self, action: Action, resource: Resource) -> None:
        if self._can(action, resource):
            return
        if action is not Action.READ and self._can(Action.READ, resource):
            raise Forbidden(f"not allowed to {action.value} this {resource.kind.value}")
        raise not_found(resource.kind)

    def _visible(self, record: R | None, resource: Resource | None) -> R | None:
        if record is None or resource is None:
            return None
        return record if self._can(Action.READ, resource) else None

    async def _template_resource(self, template_id: uuid.UUID) -> Resource:
        tpl = await self._inner.get_template_by_id(template_id)
        if tpl is None:
            raise not_found(Kind.TEMPLATE)
        return template_resource(tpl)

    async def _version_resource(self, version_id: uuid.UUID) -> Resource | None:
        version = await self._inner.get_template_version_by_id(version_id)
        if version is None:
            return None
        return await self._template_resource(version.template_id)
