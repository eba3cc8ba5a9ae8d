"""What every service call needs: the database and the actor it acts for."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass

from berth.db.authz import AuthzStore, not_found
from berth.db.engine import Database
from berth.db.policy import Kind
from berth.domain.actors import Actor
from berth.events import EventBus, publish_quietly
from berth.records import Organization

log = logging.getLogger("berth.services")


@dataclass(frozen=True, slots=True)
class Ctx:
    """A database, an actor and the event bus: the first argument of every service.

    Services publish on ``bus`` after their transaction commits; payloads carry ids
    and states only, and consumers re-read the database.
    """

    db: Database
    actor: Actor
    bus: EventBus | None = None
    """``None`` in tests that do not observe events."""

    async def publish(self, channel: str, payload: Mapping[str, object]) -> None:
        """Publish after commit; a lost event only delays waiters until their re-check."""
        await publish_quietly(self.bus, channel, payload)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncGenerator[AuthzStore]:
        """A read-write transaction whose Store checks this context's actor."""
        async with self.db.write() as store:
            yield AuthzStore(store, self.actor)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncGenerator[AuthzStore]:
        """A read-only transaction whose Store checks this context's actor."""
        async with self.db.read() as store:
            yield AuthzStore(store, self.actor)


def parse_uuid(value: str) -> uuid.UUID | None:
    """``value`` as a UUID, or ``None`` when it is not one (names are not UUIDs)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def resolve_organization(store: AuthzStore, ref: str | None) -> Organization:
    """An organization by id or name; the default organization when ``ref`` is empty."""
    if not ref:
        org = await store.get_default_organization()
    elif (org_id := parse_uuid(ref)) is not None:
        org = await store.get_organization_by_id(org_id)
    else:
        org = await store.get_organization_by_name(ref)
    if org is None:
        raise not_found(Kind.ORGANIZATION)
    return org
