"""The shared half of :class:`~berth.db.authz.AuthzStore`: the actor and the checks."""

from __future__ import annotations

import uuid
from typing import Self, TypeVar

from berth.db.policy import Action, Kind, Resource, is_allowed
from berth.db.querier import Querier
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


class AuthzBase:
    """Holds the Store and the actor; the subclasses authorize each query on it.

    Composition, not inheritance: the only way to the database is a method that checks
    ``actor`` first and then calls the held store.
    """

    __slots__ = ("_inner", "actor")

    def __init__(self, store: Querier, actor: Actor) -> None:
        self._inner = store
        self.actor = actor

    @property
    def dialect(self) -> str:
        return self._inner.dialect

    def acting_as(self, actor: Actor) -> Self:
        """The same transaction, checked for another actor (bootstrap installs templates
        as the admin it has just created)."""
        return type(self)(self._inner, actor)

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
