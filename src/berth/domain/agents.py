"""Which agent a chat uses (spec §7), and an agent's connection status (spec §8).

Both are pure functions of rows the caller already has, so every tool and background
loop agrees on them. They port Coder's ``agentselect.FindChatAgent`` and
``WorkspaceAgent.Status``; berth marks the chat agent with ``chat: true`` in the
template instead of Coder's name suffix.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Protocol, TypeVar

from berth.domain.enums import AgentStatus

__all__ = [
    "DEFAULT_INACTIVE_DISCONNECT_TIMEOUT",
    "AgentLike",
    "AgentSelectionError",
    "agent_status",
    "select_chat_agent",
]

DEFAULT_INACTIVE_DISCONNECT_TIMEOUT = dt.timedelta(seconds=30)


class AgentLike(Protocol):
    """What agent selection reads from an agent row (read-only, so frozen rows fit)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def name(self) -> str: ...
    @property
    def display_order(self) -> int: ...
    @property
    def parent_id(self) -> uuid.UUID | None: ...
    @property
    def chat(self) -> bool: ...


A = TypeVar("A", bound=AgentLike)


class AgentSelectionError(Exception):
    """No agent, or more than one, qualifies as the chat agent; ``str()`` is the tool text."""


def _sort_key(agent: AgentLike) -> tuple[int, str, str, bytes]:
    # Python compares str by code point, which orders like Go's byte-wise UTF-8 compare.
    return (agent.display_order, agent.name.lower(), agent.name, agent.id.bytes)


def select_chat_agent(agents: Sequence[A]) -> A:
    """The agent the chat tools talk to.

    Only root agents count. With none marked ``chat``, the first by (display order,
    name case-insensitively, name, id) wins, so the choice is stable across calls.
    """
    roots = sorted((a for a in agents if a.parent_id is None), key=_sort_key)
    if not roots:
        raise AgentSelectionError("no eligible workspace agents found")
    marked = [a for a in roots if a.chat]
    if not marked:
        return roots[0]
    if len(marked) == 1:
        return marked[0]
    names = ", ".join(sorted(a.name for a in marked))
    raise AgentSelectionError(
        f"multiple agents are marked for chat: {names}; only one agent should be"
    )


def agent_status(
    *,
    created_at: dt.datetime,
    first_connected_at: dt.datetime | None,
    last_connected_at: dt.datetime | None,
    disconnected_at: dt.datetime | None,
    connection_timeout: dt.timedelta | None,
    now: dt.datetime,
    inactive_timeout: dt.timedelta = DEFAULT_INACTIVE_DISCONNECT_TIMEOUT,
) -> AgentStatus:
    """Derive connection status from the agent's timestamps (Coder's ``Status``).

    Heartbeats move ``last_connected_at``; a clean disconnect sets ``disconnected_at``.
    An agent whose heartbeats stopped without a disconnect (a killed sandbox) turns
    ``disconnected`` once ``inactive_timeout`` has passed. A ``connection_timeout`` of
    None or zero means "wait for the first connection forever".
    """
    if first_connected_at is None:
        if connection_timeout and now - created_at > connection_timeout:
            return AgentStatus.TIMEOUT
        return AgentStatus.CONNECTING
    if last_connected_at is None:
        # Go compares zero times here: "not before" holds, so the agent is disconnected.
        return AgentStatus.DISCONNECTED
    # "At or after" rather than "after": both can be equal in tight sequences.
    if disconnected_at is not None and disconnected_at >= last_connected_at:
        return AgentStatus.DISCONNECTED
    if now - last_connected_at > inactive_timeout:
        return AgentStatus.DISCONNECTED
    return AgentStatus.CONNECTED
