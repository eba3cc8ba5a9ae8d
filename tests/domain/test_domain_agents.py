"""Chat agent selection [agentselect] and agent connection status [agent.status]."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

import pytest

from berth.domain.agents import AgentSelectionError, agent_status, select_chat_agent
from berth.domain.enums import AgentStatus


@dataclass(frozen=True)
class Agent:
    name: str
    display_order: int = 0
    chat: bool = False
    parent_id: uuid.UUID | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)


PARENT = uuid.UUID(int=99)


def test_no_agents() -> None:
    """[agentselect] no root agents is an error."""
    with pytest.raises(AgentSelectionError, match=r"^no eligible workspace agents found$"):
        select_chat_agent([])


def test_only_sub_agents() -> None:
    """[agentselect] sub-agents never count."""
    with pytest.raises(AgentSelectionError, match=r"^no eligible workspace agents found$"):
        select_chat_agent([Agent("sub", chat=True, parent_id=PARENT)])


@pytest.mark.parametrize(
    ("agents", "winner"),
    [
        ([Agent("b", display_order=0), Agent("a", display_order=1)], "b"),
        ([Agent("B"), Agent("a")], "a"),  # case-insensitive name
        ([Agent("a"), Agent("A")], "A"),  # then exact name
        ([Agent("z"), Agent("a", chat=True)], "a"),
        ([Agent("a"), Agent("z", display_order=5, chat=True)], "z"),  # marked wins
        ([Agent("a", parent_id=PARENT), Agent("b")], "b"),
        ([Agent("a", chat=True, parent_id=PARENT), Agent("z"), Agent("y")], "y"),
    ],
)
def test_selection(agents: list[Agent], winner: str) -> None:
    """[agentselect] sort by display order, name case-insensitively, name, id; chat wins."""
    assert select_chat_agent(agents).name == winner


def test_selection_breaks_ties_by_id() -> None:
    low, high = Agent("a", id=uuid.UUID(int=1)), Agent("a", id=uuid.UUID(int=2))
    assert select_chat_agent([high, low]) is low


def test_selection_returns_the_callers_object() -> None:
    agents = [Agent("main", chat=True)]
    assert select_chat_agent(agents) is agents[0]


@pytest.mark.parametrize(
    ("names", "listed"),
    [
        (["beta", "alpha"], "alpha, beta"),
        (["alpha", "Zed", "mid"], "Zed, alpha, mid"),
    ],
)
def test_multiple_marked(names: list[str], listed: str) -> None:
    """[agentselect] two or more marked is an error naming them, sorted."""
    agents = [Agent(n, chat=True, display_order=i) for i, n in enumerate(names)]
    with pytest.raises(AgentSelectionError) as info:
        select_chat_agent(agents)
    assert str(info.value) == (
        f"multiple agents are marked for chat: {listed}; only one agent should be"
    )


T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SEC = dt.timedelta(seconds=1)
NEVER = None


@pytest.mark.parametrize(
    ("first", "last", "disconnected", "timeout", "now", "expected"),
    [
        # never connected
        (NEVER, NEVER, NEVER, None, T0 + 3600 * SEC, AgentStatus.CONNECTING),
        (NEVER, NEVER, NEVER, dt.timedelta(0), T0 + 3600 * SEC, AgentStatus.CONNECTING),
        (NEVER, NEVER, NEVER, 120 * SEC, T0 + 120 * SEC, AgentStatus.CONNECTING),
        (NEVER, NEVER, NEVER, 120 * SEC, T0 + 121 * SEC, AgentStatus.TIMEOUT),
        # connected and heartbeating
        (T0, T0 + 10 * SEC, NEVER, 120 * SEC, T0 + 20 * SEC, AgentStatus.CONNECTED),
        (T0, T0 + 10 * SEC, NEVER, 120 * SEC, T0 + 40 * SEC, AgentStatus.CONNECTED),
        # heartbeats stopped longer than the inactive timeout (30s)
        (T0, T0 + 10 * SEC, NEVER, 120 * SEC, T0 + 41 * SEC, AgentStatus.DISCONNECTED),
        # disconnected at or after the last connect
        (T0, T0 + 10 * SEC, T0 + 10 * SEC, None, T0 + 11 * SEC, AgentStatus.DISCONNECTED),
        (T0, T0 + 10 * SEC, T0 + 12 * SEC, None, T0 + 13 * SEC, AgentStatus.DISCONNECTED),
        # reconnected after a disconnect
        (T0, T0 + 20 * SEC, T0 + 12 * SEC, None, T0 + 21 * SEC, AgentStatus.CONNECTED),
        # connected once, no last-connected time: Go's zero times say disconnected
        (T0, NEVER, NEVER, None, T0, AgentStatus.DISCONNECTED),
    ],
)
def test_agent_status(
    first: dt.datetime | None,
    last: dt.datetime | None,
    disconnected: dt.datetime | None,
    timeout: dt.timedelta | None,
    now: dt.datetime,
    expected: AgentStatus,
) -> None:
    """[agent.status] derived from timestamps as the spec says."""
    status = agent_status(
        created_at=T0,
        first_connected_at=first,
        last_connected_at=last,
        disconnected_at=disconnected,
        connection_timeout=timeout,
        now=now,
        inactive_timeout=30 * SEC,
    )
    assert status is expected


def test_agent_status_default_inactive_timeout_is_30s() -> None:
    def status(now: dt.datetime) -> AgentStatus:
        return agent_status(
            created_at=T0,
            first_connected_at=T0,
            last_connected_at=T0,
            disconnected_at=None,
            connection_timeout=None,
            now=now,
        )

    assert status(T0 + 30 * SEC) is AgentStatus.CONNECTED
    assert status(T0 + 31 * SEC) is AgentStatus.DISCONNECTED
