"""The context every chat tool runs in: the chat, its owner, the server's parts, settings.

It carries the options of the reference (``CreateWorkspaceOptions``): the template
allowlist, the agent connection, the inactive-disconnect timeout and the chat-updated
callback; plus the clock and every wait interval and timeout as settings, so tests
shorten them instead of sleeping. The tools reach state only through services:
:attr:`ChatContext.services` acts as the ``chat-tools`` system actor,
:meth:`ChatContext.as_owner` as the chat's owner (the reference's ``asOwner``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from berth.agentconn import AgentGateway
from berth.clock import Clock
from berth.domain.actors import as_chat_tools
from berth.events import EventBus
from berth.records import Chat
from berth.services import Ctx, Database
from berth.services.accounts import owner_actor


@dataclass(frozen=True, slots=True)
class ToolTimings:
    """The reference's intervals and timeouts, as defaults (spec §3)."""

    build_timeout: dt.timedelta = dt.timedelta(minutes=10)
    build_poll_interval: dt.timedelta = dt.timedelta(seconds=2)
    agent_connect_timeout: dt.timedelta = dt.timedelta(minutes=2)
    agent_retry_interval: dt.timedelta = dt.timedelta(seconds=2)
    agent_attempt_timeout: dt.timedelta = dt.timedelta(seconds=5)
    startup_script_timeout: dt.timedelta = dt.timedelta(minutes=10)
    startup_script_poll_interval: dt.timedelta = dt.timedelta(seconds=2)
    chat_lock_lease: dt.timedelta = dt.timedelta(seconds=30)
    chat_lock_retry: dt.timedelta = dt.timedelta(seconds=1)


ChatUpdated = Callable[[Chat], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ChatContext:
    """One chat's view of the server, handed to every tool call."""

    db: Database
    chat_id: uuid.UUID
    organization_id: uuid.UUID
    owner_id: uuid.UUID
    bus: EventBus | None = None
    gateway: AgentGateway | None = None
    """The agent connection; ``None`` skips the connect phase of the agent wait."""
    create_enabled: bool = True
    """``False`` reproduces the reference's "workspace creator is not configured"."""
    start_enabled: bool = True
    stop_enabled: bool = True
    allowlist: Callable[[], Awaitable[frozenset[uuid.UUID]]] | None = None
    """The chat template allowlist; empty means every template."""
    inactive_disconnect_timeout: dt.timedelta = dt.timedelta(seconds=30)
    on_chat_updated: ChatUpdated | None = None
    timings: ToolTimings = field(default_factory=ToolTimings)

    @property
    def clock(self) -> Clock:
        return self.db.clock

    @property
    def services(self) -> Ctx:
        """Service calls as the ``chat-tools`` system actor: lookups, the chat's lease."""
        return Ctx(self.db, as_chat_tools(), self.bus)

    async def as_owner(self) -> Ctx:
        """Service calls as the chat's owner, whose roles are read afresh.

        Raises with the reference's texts (``user not found``, ``user is suspended``);
        the tools prefix them (``load user authorization: …``).
        """
        return Ctx(self.db, await owner_actor(self.services, self.owner_id), self.bus)
