"""What every service call needs: the database and the actor it acts for."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from berth.db.authz import AuthzStore, not_found
from berth.db.engine import Database
from berth.db.policy import Kind
from berth.db.records import Organization
from berth.domain.actors import Actor


@dataclass(frozen=True, slots=True)
class Ctx:
    """A database and an actor: the first argument of every service function."""

    db: Database
    actor: Actor

    def as_actor(self, actor: Actor) -> Ctx:
        return Ctx(self.db, actor)

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
