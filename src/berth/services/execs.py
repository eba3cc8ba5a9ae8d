"""Running commands in a workspace through its agent (``berth exec``)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from berth.agentconn import AgentGateway
from berth.domain.agents import AgentSelectionError, select_chat_agent
from berth.errors import (
    AgentCallError,
    AgentUnavailable,
    BerthError,
    Conflict,
    InvalidInput,
    Unavailable,
    Validation,
)
from berth.services.base import Ctx
from berth.services.workspace_views import get_workspace
from berth.services.workspaces import record_activity

log = logging.getLogger("berth.services")

MAX_TIMEOUT_MS = 4 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool
    truncated: bool
    wall_duration_ms: int


async def exec_command(
    ctx: Ctx,
    gateway: AgentGateway,
    workspace_id: uuid.UUID,
    command: str,
    *,
    timeout_ms: int = 60_000,
    workdir: str | None = None,
    env: dict[str, str] | None = None,
) -> ExecResult:
    """Run ``command`` with ``sh -c`` in the workspace's chat agent; stdout and stderr apart."""
    if not command.strip():
        raise InvalidInput("Invalid command.", validations=[Validation("command", "is required")])
    if not 0 < timeout_ms <= MAX_TIMEOUT_MS:
        raise InvalidInput(
            "Invalid timeout.",
            validations=[Validation("timeout_ms", "must be between 1 ms and 4h")],
        )
    view = await get_workspace(ctx, workspace_id)
    if view.status != "running":
        raise Conflict(f"Workspace {view.workspace.name!r} is {view.status}, not running.")
    try:
        agent = select_chat_agent([a.agent for a in view.agents])
    except AgentSelectionError as exc:
        raise Conflict(f"Workspace {view.workspace.name!r}: {exc}") from exc
    try:  # an exec is activity: it keeps the workspace from its autostop
        await record_activity(ctx, workspace_id)
    except BerthError:
        log.warning("could not record activity on workspace %s", workspace_id, exc_info=True)
    params: dict[str, Any] = {
        "command": command,
        "timeout_ms": timeout_ms,
        "separate_stderr": True,
        "env": env or {},
    }
    if workdir:
        params["workdir"] = workdir
    try:
        result = await gateway.call(agent.id, "exec", params, within=timeout_ms / 1000 + 10)
    except AgentUnavailable as exc:
        raise Unavailable(f"The workspace agent is unreachable: {exc}", retry_after=2) from exc
    except AgentCallError as exc:
        raise InvalidInput(exc.message) from exc
    return ExecResult(
        exit_code=int(result.get("exit_code", -1)),
        stdout=str(result.get("stdout", result.get("output", ""))),
        stderr=str(result.get("stderr", "")),
        timed_out=bool(result.get("timed_out", False)),
        truncated=bool(result.get("truncated", False)),
        wall_duration_ms=int(result.get("wall_duration_ms", 0)),
    )
