"""The domain rules the chat tools rest on: chat agent selection (§7), agent status (§8),
workspace names (§6) and the chat workspace TTL setting (§10). Tables of cases."""

from __future__ import annotations

import datetime as dt
import random
import re
import uuid
from dataclasses import dataclass, field

import pytest

from berth.domain.agents import (
    DEFAULT_INACTIVE_DISCONNECT_TIMEOUT,
    AgentSelectionError,
    agent_status,
    select_chat_agent,
)
from berth.domain.enums import AgentLifecycle, AgentStatus
from berth.domain.names import (
    ADJECTIVES,
    SURNAMES,
    generate_name,
    is_valid_name,
    name_error,
)
from berth.domain.ttl import parse_chat_workspace_ttl, validate_chat_workspace_ttl
from berth.errors import InvalidInput

# --- §7 choosing the chat agent ---------------------------------------------------------


@dataclass(frozen=True)
class Agent:
    name: str
    display_order: int = 0
    chat: bool = False
    parent_id: uuid.UUID | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)


PARENT = uuid.UUID(int=7)
LOW = uuid.UUID(int=1)
HIGH = uuid.UUID(int=2)


@pytest.mark.spec("agentselect")
@pytest.mark.parametrize(
    ("agents", "chosen"),
    [
        pytest.param([Agent("only")], "only", id="one agent"),
        pytest.param([Agent("b"), Agent("a")], "a", id="by name"),
        pytest.param([Agent("a", display_order=2), Agent("z", display_order=1)], "z", id="order"),
        pytest.param([Agent("Beta"), Agent("alpha")], "alpha", id="name ignoring case"),
        pytest.param([Agent("b"), Agent("B")], "B", id="then the name as is"),
        pytest.param([Agent("a", id=HIGH), Agent("a", id=LOW)], str(LOW), id="then the id"),
        pytest.param([Agent("a"), Agent("z", chat=True)], "z", id="marked wins"),
        pytest.param(
            [Agent("z", display_order=-1), Agent("m", display_order=5, chat=True)],
            "m",
            id="marked wins over order",
        ),
        pytest.param(
            [Agent("root"), Agent("a-child", chat=True, parent_id=PARENT)],
            "root",
            id="sub-agents do not count",
        ),
        pytest.param(
            [Agent("root", chat=True), Agent("child", chat=True, parent_id=PARENT)],
            "root",
            id="a marked sub-agent is no second mark",
        ),
    ],
)
def test_select_chat_agent(agents: list[Agent], chosen: str) -> None:
    picked = select_chat_agent(agents)
    assert chosen in (picked.name, str(picked.id))
    assert select_chat_agent(list(reversed(agents))) == picked, "stable whatever the input order"


@pytest.mark.spec("agentselect")
@pytest.mark.parametrize(
    ("agents", "message"),
    [
        pytest.param([], "no eligible workspace agents found", id="none"),
        pytest.param(
            [Agent("child", parent_id=PARENT, chat=True)],
            "no eligible workspace agents found",
            id="only sub-agents",
        ),
        pytest.param(
            [Agent("zed", chat=True), Agent("alpha", chat=True), Agent("other")],
            "multiple agents are marked for chat: alpha, zed; only one agent should be",
            id="two marked",
        ),
        pytest.param(
            [Agent("c", chat=True), Agent("B", chat=True), Agent("a", chat=True)],
            "multiple agents are marked for chat: B, a, c; only one agent should be",
            id="three marked, names sorted",
        ),
    ],
)
def test_select_chat_agent_errors(agents: list[Agent], message: str) -> None:
    with pytest.raises(AgentSelectionError) as caught:
        select_chat_agent(agents)
    assert str(caught.value) == message


# --- §8 agent connection status ---------------------------------------------------------

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
S = dt.timedelta(seconds=1)


@pytest.mark.spec("agent.status")
@pytest.mark.parametrize(
    ("first", "last", "disconnected", "timeout", "now", "status"),
    [
        pytest.param(None, None, None, None, 600 * S, "connecting", id="never, no timeout"),
        pytest.param(None, None, None, 0 * S, 600 * S, "connecting", id="never, timeout 0"),
        pytest.param(None, None, None, 120 * S, 60 * S, "connecting", id="never, within"),
        pytest.param(None, None, None, 120 * S, 120 * S, "connecting", id="never, at timeout"),
        pytest.param(None, None, None, 120 * S, 121 * S, "timeout", id="never, past timeout"),
        pytest.param(10 * S, 20 * S, None, 120 * S, 30 * S, "connected", id="recent"),
        pytest.param(10 * S, 20 * S, None, 120 * S, 50 * S, "connected", id="at inactive"),
        pytest.param(10 * S, 20 * S, None, 120 * S, 51 * S, "disconnected", id="silent"),
        pytest.param(10 * S, 20 * S, 20 * S, None, 21 * S, "disconnected", id="left at last"),
        pytest.param(10 * S, 20 * S, 25 * S, None, 26 * S, "disconnected", id="left after"),
        pytest.param(10 * S, 30 * S, 25 * S, None, 31 * S, "connected", id="came back"),
        pytest.param(10 * S, None, None, None, 11 * S, "disconnected", id="no last connect"),
    ],
)
def test_agent_status(
    first: dt.timedelta | None,
    last: dt.timedelta | None,
    disconnected: dt.timedelta | None,
    timeout: dt.timedelta | None,
    now: dt.timedelta,
    status: str,
) -> None:
    def at(offset: dt.timedelta | None) -> dt.datetime | None:
        return None if offset is None else T0 + offset

    result = agent_status(
        created_at=T0,
        first_connected_at=at(first),
        last_connected_at=at(last),
        disconnected_at=at(disconnected),
        connection_timeout=timeout,
        now=T0 + now,
        inactive_timeout=DEFAULT_INACTIVE_DISCONNECT_TIMEOUT,
    )
    assert result is AgentStatus(status)


@pytest.mark.spec("agent.status")
@pytest.mark.parametrize(
    ("inactive", "status"),
    [(None, "disconnected"), (60 * S, "connected"), (44 * S, "disconnected")],
)
def test_agent_status_inactive_timeout_is_the_servers(
    inactive: dt.timedelta | None, status: str
) -> None:
    """45 s of silence: past the default 30 s, within a server setting of 60 s."""
    assert dt.timedelta(seconds=30) == DEFAULT_INACTIVE_DISCONNECT_TIMEOUT
    now = T0 + 45 * S
    if inactive is None:
        result = agent_status(
            created_at=T0,
            first_connected_at=T0,
            last_connected_at=T0,
            disconnected_at=None,
            connection_timeout=None,
            now=now,
        )
    else:
        result = agent_status(
            created_at=T0,
            first_connected_at=T0,
            last_connected_at=T0,
            disconnected_at=None,
            connection_timeout=None,
            now=now,
            inactive_timeout=inactive,
        )
    assert result is AgentStatus(status)


@pytest.mark.spec("agent.status")
def test_statuses_and_lifecycle_states() -> None:
    assert [s.value for s in AgentStatus] == ["connecting", "connected", "disconnected", "timeout"]
    assert [s.value for s in AgentLifecycle] == [
        "created",
        "starting",
        "start_timeout",
        "start_error",
        "ready",
        "shutting_down",
        "shutdown_timeout",
        "shutdown_error",
        "off",
    ]


# --- §6 workspace names -------------------------------------------------------------------


@pytest.mark.spec("names.valid")
@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("a", None),
        ("dev", None),
        ("my-workspace-2", None),
        ("ABC-def-9", None),
        ("x" * 32, None),
        ("new-box", None),
        ("news", None),
        ("x" * 33, "must be <= 32 characters"),
        ("é" * 17, "must be <= 32 characters"),  # 34 bytes
        ("", "must be >= 1 character"),
        ("new", 'cannot use "new" as a name'),
        ("create", 'cannot use "create" as a name'),
        ("-dev", "must be alphanumeric with hyphens"),
        ("dev-", "must be alphanumeric with hyphens"),
        ("a--b", "must be alphanumeric with hyphens"),
        ("under_score", "must be alphanumeric with hyphens"),
        ("with space", "must be alphanumeric with hyphens"),
        ("dotted.name", "must be alphanumeric with hyphens"),
        ("émoji", "must be alphanumeric with hyphens"),
        ("é" * 5, "must be alphanumeric with hyphens"),
    ],
)
def test_name_validity(name: str, error: str | None) -> None:
    assert name_error(name) == error
    assert is_valid_name(name) is (error is None)


HEX4 = r"[0-9a-f]{4}"
RANDOM = rf"({'|'.join(ADJECTIVES)})-({'|'.join(SURNAMES)})"


@pytest.mark.spec("names.generate")
@pytest.mark.parametrize(
    ("seed", "pattern"),
    [
        ("My Project!", rf"myproject-{HEX4}"),
        ("dev", rf"dev-{HEX4}"),
        ("  Dev-Env  ", rf"dev-env-{HEX4}"),
        ("bob@example.com", rf"bob-{HEX4}"),
        ("a.b@c@example.com", rf"abc-{HEX4}"),
        ("under_score", rf"underscore-{HEX4}"),
        ("abcdefghijklmnopqrstuvwxyz-abc", rf"abcdefghijklmnopqrstuvwxyz-{HEX4}"),
        ("abcdefghijklmnopqrstuvwxyzab-c", rf"abcdefghijklmnopqrstuvwxyza-{HEX4}"),
        ("x" * 32, rf"x{{27}}-{HEX4}"),
        ("", rf"{RANDOM}-{HEX4}"),
        ("!!!", rf"{RANDOM}-{HEX4}"),
        ("new", rf"{RANDOM}-{HEX4}"),
        ("x" * 40, rf"{RANDOM}-{HEX4}"),
        ("-lead", rf"{RANDOM}-{HEX4}"),
    ],
)
def test_generated_names(seed: str, pattern: str) -> None:
    for i in range(20):
        name = generate_name(seed, random.Random(i))
        assert re.fullmatch(pattern, name), name
        assert is_valid_name(name)
        assert len(name.encode()) <= 32


@pytest.mark.spec("names.generate")
def test_generated_names_are_reproducible_and_vary() -> None:
    assert generate_name("My Project!", random.Random(3)) == generate_name(
        "My Project!", random.Random(3)
    )
    names = {generate_name("dev") for _ in range(50)}
    assert len(names) > 40, "four random hex digits: repeats are rare"


@pytest.mark.spec("names.generate")
def test_cut_base_loses_its_trailing_hyphen() -> None:
    seed = "abcdefghijklmnopqrstuvwxyz-abcd"  # 31 bytes, the 27th is "-"
    assert is_valid_name(seed)
    name = generate_name(seed, random.Random(1))
    assert re.fullmatch(rf"abcdefghijklmnopqrstuvwxyz-{HEX4}", name), name


# --- §10 the chat workspace TTL setting -----------------------------------------------------


@pytest.mark.spec("ttl.setting")
@pytest.mark.parametrize(
    ("raw", "ttl"),
    [
        ("", dt.timedelta(0)),
        ("0", dt.timedelta(0)),
        ("0s", dt.timedelta(0)),
        ("300ms", dt.timedelta(milliseconds=300)),
        ("90s", dt.timedelta(seconds=90)),
        ("2h30m", dt.timedelta(hours=2, minutes=30)),
        ("1.5h", dt.timedelta(minutes=90)),
        ("2h0m0s", dt.timedelta(hours=2)),
        ("1500us", dt.timedelta(microseconds=1500)),
        ("1500µs", dt.timedelta(microseconds=1500)),
        ("+5m", dt.timedelta(minutes=5)),
    ],
)
def test_parse_chat_workspace_ttl(raw: str, ttl: dt.timedelta) -> None:
    assert parse_chat_workspace_ttl(raw) == ttl


@pytest.mark.spec("ttl.setting")
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("bogus", 'invalid duration "bogus": time: invalid duration "bogus"'),
        ("1d", 'invalid duration "1d": time: unknown unit "d" in duration "1d"'),
        ("10", 'invalid duration "10": time: missing unit in duration "10"'),
        (" 1h", 'invalid duration " 1h": time: invalid duration " 1h"'),
        ("-1h", "duration must be non-negative"),
        ("-0.5s", "duration must be non-negative"),
    ],
)
def test_parse_chat_workspace_ttl_errors(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        parse_chat_workspace_ttl(raw)
    assert str(caught.value) == message


@pytest.mark.spec("ttl.setting")
@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("", "0s"),
        ("   ", "0s"),
        ("0", "0s"),
        ("0s", "0s"),
        ("1m", "1m0s"),
        ("2h", "2h0m0s"),
        (" 90m ", "1h30m0s"),
        ("1.5h", "1h30m0s"),
        ("720h", "720h0m0s"),
        ("60s", "1m0s"),
    ],
)
def test_validate_chat_workspace_ttl(raw: str, stored: str) -> None:
    assert validate_chat_workspace_ttl(raw) == stored
    assert parse_chat_workspace_ttl(stored) == parse_chat_workspace_ttl(stored.strip())


@pytest.mark.spec("ttl.setting")
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("-1m", "Workspace TTL must be non-negative."),
        ("59s", "Workspace TTL must not be less than 1 minute."),
        ("500ns", "Workspace TTL must not be less than 1 minute."),
        ("720h1s", "Workspace TTL must not exceed 30 days."),
        ("721h", "Workspace TTL must not exceed 30 days."),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
    ],
)
def test_validate_chat_workspace_ttl_refusals(raw: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_chat_workspace_ttl(raw)
    assert caught.value.message == message
