"""What workspace agents report, recorded; and the agent rows other services read.

An agent's WebSocket ends in :class:`berth.agentconn.AgentGateway`, which holds the
live session and its RPCs but never touches the database. What the connection
changes — connection timestamps (spec §8: heartbeats move ``last_connected_at``, a
closed socket sets ``disconnected_at``), lifecycle states, script logs, the manifest it
is sent — is recorded here by :class:`AgentReports`, which the agent route hands to the
gateway, and published on ``agent:<id>`` and ``workspace:<id>`` after each commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from berth.agent import protocol
from berth.domain.actors import as_agent_gateway, as_authenticator
from berth.domain.credentials import hash_secret
from berth.errors import NotFound
from berth.events import messages
from berth.records import WorkspaceAgent
from berth.services.base import Ctx


async def authenticate(ctx: Ctx, token: str) -> WorkspaceAgent | None:
    """The agent an agent token belongs to, or ``None``."""
    async with ctx.db.read(as_authenticator()) as store:
        return await store.get_workspace_agent_by_token_hash(hash_secret(token))


async def get_agent(ctx: Ctx, agent_id: uuid.UUID) -> WorkspaceAgent | None:
    async with ctx.read() as store:
        return await store.get_workspace_agent_by_id(agent_id)


async def agents_of_job(ctx: Ctx, job_id: uuid.UUID) -> list[WorkspaceAgent]:
    """The agents a build's job created."""
    async with ctx.read() as store:
        return await store.list_workspace_agents_by_job(job_id)


FAILED_SCRIPT_LINES = 5
"""How many of a failed start script's last lines :func:`failed_start_script` quotes."""


async def failed_start_script(ctx: Ctx, agent_id: uuid.UUID) -> str | None:
    """What failed the agent's start, for a person or a model: the script of its newest
    error line (the agent ends a failed script with one, "setup: exited with code 3",
    "setup: timed out after 30s; killed") and that script's last lines. ``None`` when
    no script failed."""
    async with ctx.read() as store:
        errors = await store.list_workspace_agent_logs(agent_id, level="error", last=1)
        if not errors or errors[0].script_id is None:
            return None
        failed = errors[0]
        tail = await store.list_workspace_agent_logs(
            agent_id, script_id=failed.script_id, last=FAILED_SCRIPT_LINES
        )
        scripts = await store.list_workspace_agent_scripts(agent_id)
    name = next((s.display_name for s in scripts if s.id == failed.script_id), "")
    shown = "\n".join(line.output for line in tail)
    return f"startup script {name!r} failed; its last lines:\n{shown}"


def manifest_generation(agent: WorkspaceAgent) -> str:
    """The agent's manifest generation: one before its prebuilt workspace is claimed,
    another after (a claim re-renders the manifest for the new owner)."""
    return str(agent.id) if agent.claimed_at is None else f"{agent.id}{_CLAIMED}"


_CLAIMED = ":claimed"
_SETTLED = frozenset({"ready", "start_error", "start_timeout"})


def _claimed_generation(agent_id: uuid.UUID, generation: object) -> bool | None:
    """Which manifest a lifecycle report belongs to (``None``: no generation given)."""
    if generation == str(agent_id):
        return False
    if generation == f"{agent_id}{_CLAIMED}":
        return True
    return None


class AgentReports:
    """Records one connected agent's reports (the gateway's ``Reports``) as the gateway actor."""

    def __init__(self, ctx: Ctx, agent_id: uuid.UUID, replica_id: uuid.UUID | None) -> None:
        """``replica_id``: the server replica the connection ends on (``None``: unknown)."""
        self._ctx = ctx.acting_as(as_agent_gateway())
        self.agent_id = agent_id
        self._replica_id = replica_id
        self._workspace_id: uuid.UUID | None = None

    async def connected(self) -> None:
        async with self._ctx.write() as store:
            workspace_id = await store.get_workspace_id_by_agent_id(self.agent_id)
            if workspace_id is None:
                raise NotFound("workspace agent not found")
            now = self._ctx.clock.now()
            await store.update_workspace_agent_connection(
                self.agent_id,
                first_connected_at=now,
                last_connected_at=now,
                replica_id=self._replica_id,
            )
        self._workspace_id = workspace_id
        await self._publish(messages.AgentConnection(agent_id=self.agent_id, state="connected"))

    async def heartbeat(self) -> None:
        async with self._ctx.write() as store:
            await store.update_workspace_agent_connection(
                self.agent_id, last_connected_at=self._ctx.clock.now(), if_replica=self._replica_id
            )

    async def lifecycle(self, state: str, generation: object = None) -> None:
        """Record a state the agent reports, unless it belongs to a manifest the agent
        has been sent a newer one of (a claimed prebuild's agent re-announces its old
        ``ready`` before it starts on the new owner's manifest)."""
        if state not in protocol.LIFECYCLE_STATES:
            return
        claimed = _claimed_generation(self.agent_id, generation)
        async with self._ctx.write() as store:
            agent = await store.update_workspace_agent_lifecycle(
                self.agent_id, state, claimed=claimed
            )
        if agent is None:
            return
        await self._publish(messages.AgentLifecycle(agent_id=self.agent_id, state=state))
        if state in _SETTLED:  # a prebuild became claimable, or failed
            await self._ctx.publish(messages.PREBUILDS, messages.PrebuildsChanged())

    async def logs(self, entries: Sequence[tuple[uuid.UUID | None, str, str]]) -> None:
        """``(script_id, level, output)`` lines, in order."""
        if entries:
            async with self._ctx.write() as store:
                await store.insert_workspace_agent_logs(self.agent_id, entries)
            if self._workspace_id is not None:
                event = messages.AgentLogsAppended(agent_id=self.agent_id)
                await self._ctx.publish(messages.workspace(self._workspace_id), event)

    async def manifest(self) -> dict[str, Any]:
        """What the agent runs: its directory, environment and scripts."""
        async with self._ctx.read() as store:
            agent = await store.get_workspace_agent_by_id(self.agent_id)
            scripts = await store.list_workspace_agent_scripts(self.agent_id)
        if agent is None:
            raise NotFound("workspace agent not found")
        return {
            "type": "manifest",
            "agent_id": str(agent.id),
            "name": agent.name,
            "generation": manifest_generation(agent),
            "phase": "start" if agent.claimed_at is None else "claim",
            "directory": agent.directory,
            "env": agent.env,
            "scripts": [
                {
                    "id": str(s.id),
                    "display_name": s.display_name,
                    "script": s.script,
                    "run_on": s.run_on,
                    "blocks_login": s.blocks_login,
                    "timeout_seconds": s.timeout_seconds,
                }
                for s in scripts
            ],
        }

    async def disconnected(self) -> None:
        async with self._ctx.write() as store:
            agent = await store.update_workspace_agent_connection(
                self.agent_id, disconnected_at=self._ctx.clock.now(), if_replica=self._replica_id
            )
        if agent is None:  # it is connected to another replica by now
            return
        await self._publish(messages.AgentConnection(agent_id=self.agent_id, state="disconnected"))

    async def _publish(self, event: messages.Message) -> None:
        await self._ctx.publish(messages.agent(self.agent_id), event)
        if self._workspace_id is not None:
            await self._ctx.publish(messages.workspace(self._workspace_id), event)
