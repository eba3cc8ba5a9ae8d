"""What every service call needs: the database, the actor it acts for, the event bus."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from dataclasses import dataclass

from berth.clock import Clock
from berth.db.authz import AuthzStore
from berth.db.engine import Database
from berth.domain.actors import Actor
from berth.events import EventBus, messages


@dataclass(frozen=True, slots=True)
class Ctx:
    """A database, an actor and the event bus: the first argument of every service.

    A service opens its transactions with :meth:`read` and :meth:`write` (the store
    they yield checks :attr:`actor` on every query) and publishes on the bus after its
    transaction commits. Nothing outside ``services/`` opens a transaction.
    """

    db: Database
    actor: Actor
    bus: EventBus | None = None
    """``None`` in tests that do not observe events."""

    @property
    def clock(self) -> Clock:
        return self.db.clock

    def acting_as(self, actor: Actor) -> Ctx:
        """The same database and bus, for another actor (a system actor, the chat owner)."""
        return dataclasses.replace(self, actor=actor)

    async def publish(self, channel: str, *events: messages.Message) -> None:
        """Publish after commit; a lost event only delays waiters until their re-check."""
        await messages.publish(self.bus, channel, *events)

    def write(self) -> contextlib.AbstractAsyncContextManager[AuthzStore]:
        """A read-write transaction whose store checks this context's actor."""
        return self.db.write(self.actor)

    def read(self) -> contextlib.AbstractAsyncContextManager[AuthzStore]:
        """A read-only transaction whose store checks this context's actor."""
        return self.db.read(self.actor)


def parse_uuid(value: str) -> uuid.UUID | None:
    """``value`` as a UUID, or ``None`` when it is not one (names are not UUIDs)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
