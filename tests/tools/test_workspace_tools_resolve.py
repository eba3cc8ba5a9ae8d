"""How the workspace tools (spec §13) find the chat's agent, and when they cannot.

Real databases and a real :class:`AgentGateway` with no agent connected to it: every
case here ends before an RPC. (The tests with a running agent are in
``test_workspace_tools_execute.py`` and ``test_workspace_tools_files.py``.)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from berth.agentconn import AgentGateway
from berth.clock import FakeClock
from berth.db.engine import Database
from berth.domain.actors import as_system
from berth.records import Workspace, WorkspaceAgent
from berth.tools.registry import call_tool
from berth.tools.workspace_tools import NO_WORKSPACE, WORKSPACE_DELETED
from tests.support.chats import (
    Org,
    add_agent,
    add_template,
    add_workspace,
    bind,
    error_text,
    make_org,
)

pytestmark = pytest.mark.anyio

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("execute", {"command": "true"}),
    ("process_output", {"process_id": "p"}),
    ("process_list", {}),
    ("process_signal", {"process_id": "p", "signal": "TERM"}),
    ("read_file", {"path": "a"}),
    ("write_file", {"path": "a", "content": ""}),
    ("edit_files", {"edits": [{"path": "a", "old_text": "x", "new_text": "y"}]}),
]
SUGGESTION = ". If the workspace is stopped, use start_workspace to start it, then try again."


@pytest.fixture
async def org(db: Database, clock: FakeClock) -> Org:
    return await make_org(db, clock)


async def _errors(org: Org, **kw: Any) -> set[str]:
    """The text error every workspace tool answers with (they must all agree)."""
    ctx = org.ctx(gateway=AgentGateway(), **kw)
    return {error_text(await call_tool(ctx, name, arguments)) for name, arguments in CALLS}


async def _bound_workspace(org: Org, name: str = "dev") -> Workspace:
    template = await add_template(org, name)
    workspace = await add_workspace(org, template, name)
    await bind(org, workspace)
    return workspace


async def _connect(
    org: Org,
    agent: WorkspaceAgent,
    *,
    first_connected_at: dt.datetime | None = None,
    last_connected_at: dt.datetime | None = None,
    disconnected_at: dt.datetime | None = None,
) -> None:
    async with org.db.write(as_system()) as store:
        await store.update_workspace_agent_connection(
            agent.id,
            first_connected_at=first_connected_at,
            last_connected_at=last_connected_at,
            disconnected_at=disconnected_at,
        )


def _unreachable(reason: str) -> str:
    return f"the workspace agent is unreachable: {reason}{SUGGESTION}"


@pytest.mark.spec("ex.validation", "rf.file", "wf.write", "ef.errors")
async def test_chat_without_a_workspace(org: Org) -> None:
    """[ex.validation] [rf.file] [wf.write] [ef.errors] Every workspace tool first resolves
    the chat's workspace: none → ``chat has no workspace; use create_workspace first``."""
    assert NO_WORKSPACE == "chat has no workspace; use create_workspace first"
    assert await _errors(org) == {NO_WORKSPACE}
    # Even before checking its own arguments.
    ctx = org.ctx(gateway=AgentGateway())
    assert error_text(await call_tool(ctx, "execute", {})) == NO_WORKSPACE
    assert error_text(await call_tool(ctx, "edit_files", {})) == NO_WORKSPACE


@pytest.mark.spec("agent.status")
async def test_workspace_states_without_a_reachable_agent(org: Org) -> None:
    """[agent.status] Deleted, stopped, still building, failed: text errors, the agent ones
    suggesting start_workspace."""
    template = await add_template(org, "dev")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"deleted": True}, WORKSPACE_DELETED),
        ({"transition": "stop"}, _unreachable("the workspace is stopped")),
        ({"status": "pending"}, _unreachable("the workspace is still starting")),
        ({"status": "failed"}, _unreachable("the workspace's last start build failed")),
    ]
    for i, (kw, expected) in enumerate(cases):
        workspace = await add_workspace(org, template, f"w{i}", **kw)
        await add_agent(org, workspace, "main", chat=True)
        await bind(org, workspace)
        assert await _errors(org) == {expected}, kw


@pytest.mark.spec("agent.status")
async def test_agent_connection_status(org: Org) -> None:
    """[agent.status] The reason follows the agent's status (spec §8) when it is not
    connected to this server: connecting, timeout, disconnected (twice), connected."""
    workspace = await _bound_workspace(org)
    agent = await add_agent(org, workspace, "main", chat=True, connection_timeout_seconds=60)
    assert await _errors(org) == {_unreachable("the agent has not connected yet")}
    org.clock.advance(dt.timedelta(minutes=2))
    timeout = "the agent did not connect within its connection timeout"
    assert await _errors(org) == {_unreachable(timeout)}
    now = org.clock.now()
    await _connect(org, agent, first_connected_at=now, last_connected_at=now)
    connected_elsewhere = "the agent is not connected to this server"
    assert await _errors(org) == {_unreachable(connected_elsewhere)}
    org.clock.advance(dt.timedelta(seconds=31))  # no heartbeat for longer than 30s
    assert await _errors(org) == {_unreachable("the agent is disconnected")}
    assert await _errors(org, inactive_disconnect_timeout=dt.timedelta(minutes=1)) == {
        _unreachable(connected_elsewhere)
    }
    await _connect(org, agent, disconnected_at=org.clock.now())
    assert await _errors(org) == {_unreachable("the agent is disconnected")}


@pytest.mark.spec("external")
async def test_external_agent(org: Org) -> None:
    """[external] An external agent that is not reachable: the spec §9 messages."""
    workspace = await _bound_workspace(org)
    agent = await add_agent(org, workspace, "ext", chat=True, external=True)
    (not_yet,) = await _errors(org)
    assert not_yet == (
        "workspace uses an externally managed agent that has not connected yet. The user "
        "needs to start the workspace externally and make sure the external agent is "
        "connected, then try again"
    )
    now = org.clock.now()
    await _connect(org, agent, first_connected_at=now, last_connected_at=now, disconnected_at=now)
    (offline,) = await _errors(org)
    assert offline == (
        "workspace uses an externally managed agent that is currently offline. The user "
        "needs to reconnect the external agent on its host, then try again"
    )


@pytest.mark.spec("agentselect")
async def test_chat_agent_selection(org: Org) -> None:
    """[agentselect] The agent marked chat wins over the first sorted; sub-agents do not
    count; none or several marked are text errors. (An agent "connected" per the database
    but not to this server tells which one was picked.)"""
    now = org.clock.now()
    picked = _unreachable("the agent is not connected to this server")
    other = _unreachable("the agent has not connected yet")
    workspace = await _bound_workspace(org)
    assert await _errors(org) == {"no eligible workspace agents found"}
    first = await add_agent(org, workspace, "alpha")
    marked = await add_agent(org, workspace, "beta", chat=True)
    await _connect(org, marked, first_connected_at=now, last_connected_at=now)
    assert await _errors(org) == {picked}
    # A sub-agent marked chat does not count.
    await add_agent(org, workspace, "sub", chat=True, parent_id=first.id)
    assert await _errors(org) == {picked}
    await add_agent(org, workspace, "gamma", chat=True)
    assert await _errors(org) == {
        "multiple agents are marked for chat: beta, gamma; only one agent should be"
    }
    # Without marks, the first by display order, then name.
    second = await _bound_workspace(org, "second")
    zed = await add_agent(org, second, "zed")
    await add_agent(org, second, "Able")
    await _connect(org, zed, first_connected_at=now, last_connected_at=now)
    assert await _errors(org) == {other}


@pytest.mark.spec("ex.result")
async def test_activity_moves_last_use_and_the_deadline(org: Org) -> None:
    """[ex.result] Workspace activity (spec §13): ``last_used_at`` = now; a running
    workspace's deadline becomes now + TTL, never earlier than it was; a workspace with no
    deadline (stopped, or no TTL) gets none."""
    template = await add_template(org, "dev")
    timed = await add_workspace(org, template, "timed", ttl_ms=3_600_000)
    stopped = await add_workspace(org, template, "stopped", ttl_ms=3_600_000)
    plain = await add_workspace(org, template, "plain")
    start = org.clock.now()
    now = org.clock.advance(dt.timedelta(minutes=5))
    async with org.db.write(as_system()) as store:
        await store.update_workspace(timed.id, deadline=start + dt.timedelta(hours=1))
        touched = await store.touch_workspace(timed.id, now)
        assert touched is not None
        assert touched.last_used_at == now
        assert touched.deadline == now + dt.timedelta(hours=1)
        far = now + dt.timedelta(hours=5)
        await store.update_workspace(timed.id, deadline=far)
        kept = await store.touch_workspace(timed.id, now)
        assert kept is not None
        assert kept.deadline == far
        for workspace in (stopped, plain):
            untimed = await store.touch_workspace(workspace.id, now)
            assert untimed is not None
            assert (untimed.last_used_at, untimed.deadline) == (now, None)


@pytest.mark.spec("agent.status")
async def test_no_gateway(org: Org) -> None:
    """[agent.status] Without an agent connection the tools say so."""
    workspace = await _bound_workspace(org)
    await add_agent(org, workspace, "main", chat=True)
    ctx = org.ctx()
    result = await call_tool(ctx, "process_list", {})
    assert error_text(result) == "workspace agent connection is not configured"
