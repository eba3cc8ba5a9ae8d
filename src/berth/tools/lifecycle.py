"""``start_workspace`` and ``stop_workspace`` (spec §2), serialized with create per chat."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from berth.domain.enums import JobStatus, Transition
from berth.errors import BerthError, BuildFailed, NotFound, ToolError
from berth.records import ProvisionerJob, Workspace, WorkspaceBuild
from berth.services import Ctx, chats, workspaces
from berth.tools.chats import bind_workspace, chat_lock, refire_chat_updated
from berth.tools.context import ChatContext
from berth.tools.responses import build_failure
from berth.tools.result import ToolResult
from berth.tools.waits import merge_agent_readiness, wait_for_build

START_DESCRIPTION = (
    "Start the chat's workspace if it is currently stopped. This tool is idempotent — if "
    "the workspace is already running, it returns immediately. Use create_workspace first "
    "if no workspace exists yet."
)
STOP_DESCRIPTION = (
    "Stop the chat's workspace and wait for the stop build to complete. If another "
    "workspace build is already in progress, this waits for that build first, then stops "
    "the workspace if needed. After waiting, this tool is idempotent if the workspace is "
    "already stopped or the in-progress build stopped it. Use this when the user "
    "explicitly asks to stop the workspace, or when a workspace-agent error tells you to "
    "stop and then start the workspace. Stopping a workspace terminates running processes "
    "and may discard unsaved in-memory state. This tool does not delete the workspace."
)
UPDATED_MESSAGE = (
    "Workspace started and was updated to the active template version because the template "
    "requires active versions."
)
IN_PROGRESS = (JobStatus.PENDING.value, JobStatus.RUNNING.value)


@dataclass
class Current:
    workspace: Workspace
    build: WorkspaceBuild
    job: ProvisionerJob


async def _current(ctx: ChatContext) -> Current:
    state = await chats.chat_workspace(ctx.services, ctx.chat_id)
    if state.chat is None:
        raise ToolError("load chat: chat not found")
    if state.chat.workspace_id is None:
        raise ToolError("chat has no workspace; use create_workspace first")
    if state.workspace is None:
        raise ToolError("load workspace: workspace not found")
    if state.workspace.deleted:
        raise ToolError("workspace was deleted; use create_workspace to make a new one")
    if state.build is None:
        raise ToolError("get latest build: workspace build not found")
    if state.job is None:
        raise ToolError("get provisioner job: provisioner job not found")
    return Current(state.workspace, state.build, state.job)


async def _owner(ctx: ChatContext) -> Ctx:
    try:
        return await ctx.as_owner()
    except Exception as exc:
        raise ToolError(f"load user authorization: {exc}") from exc


async def _new_build(
    owner: Ctx, workspace: Workspace, transition: Transition, verb: str
) -> workspaces.Started:
    try:
        return await workspaces.transition_workspace(owner, workspace.id, transition)
    except BerthError as exc:
        raise ToolError(exc.message or f"{verb} workspace: {exc}") from exc
    except Exception as exc:
        raise ToolError(f"{verb} workspace: {exc}") from exc


async def start_workspace(ctx: ChatContext) -> ToolResult:
    if not ctx.start_enabled:
        return ToolResult.error("workspace starter is not configured")
    try:
        async with chat_lock(ctx):
            return await _start(ctx)
    except ToolError as exc:
        return ToolResult.error(exc.message)
    except NotFound:
        return ToolResult.error("load chat: chat not found")


async def _start(ctx: ChatContext) -> ToolResult:
    current = await _current(ctx)
    owner = await _owner(ctx)
    name = current.workspace.name
    if current.job.status in IN_PROGRESS:
        await bind_workspace(ctx, current.workspace.id, current.build.id)
        try:
            await wait_for_build(ctx, current.build.id)
        except BuildFailed as exc:
            return ToolResult.json(
                {
                    "error": f"waiting for in-progress build: {exc.message}",
                    "build_id": str(current.build.id),
                }
            )
        current = await _current(ctx)
    result: dict[str, Any] = {"started": True, "workspace_name": name}
    succeeded = current.job.status == JobStatus.SUCCEEDED
    if succeeded and current.build.transition == Transition.START:
        result["no_build"] = True
        job_id = current.build.job_id
    else:
        started = await _new_build(owner, current.workspace, Transition.START, "start")
        build = started.build
        await bind_workspace(ctx, current.workspace.id, build.id)
        try:
            await wait_for_build(ctx, build.id)
        except BuildFailed as exc:
            return await build_failure(
                ctx, "start", build.id, exc, f"workspace start build failed: {exc.message}"
            )
        result["build_id"] = str(build.id)
        if build.template_version_id != current.build.template_version_id:
            result["updated_to_active_version"] = True
            result["update_reason"] = "template requires active versions"
            result["message"] = UPDATED_MESSAGE
        job_id = build.job_id
    await merge_agent_readiness(ctx, job_id, result)
    await refire_chat_updated(ctx)
    return ToolResult.json(result)


async def stop_workspace(ctx: ChatContext) -> ToolResult:
    if not ctx.stop_enabled:
        return ToolResult.error("workspace stopper is not configured")
    try:
        async with chat_lock(ctx):
            return await _stop(ctx)
    except ToolError as exc:
        return ToolResult.error(exc.message)
    except NotFound:
        return ToolResult.error("load chat: chat not found")


async def _stop(ctx: ChatContext) -> ToolResult:
    current = await _current(ctx)
    owner = await _owner(ctx)
    if current.job.status in IN_PROGRESS:
        await bind_workspace(ctx, current.workspace.id, current.build.id)
        wait_error: BuildFailed | None = None
        try:
            await wait_for_build(ctx, current.build.id)
        except BuildFailed as exc:
            wait_error = exc
        current = await _current(ctx)
        if wait_error is not None and not JobStatus(current.job.status).is_terminal:
            return ToolResult.json(
                {
                    "error": f"waiting for in-progress build: {wait_error.message}",
                    "build_id": str(current.build.id),
                }
            )
    name = current.workspace.name
    succeeded = current.job.status == JobStatus.SUCCEEDED
    if succeeded and current.build.transition == Transition.STOP:
        return ToolResult.json({"stopped": True, "workspace_name": name, "no_build": True})
    started = await _new_build(owner, current.workspace, Transition.STOP, "stop")
    build_id: uuid.UUID = started.build.id
    await bind_workspace(ctx, current.workspace.id, build_id)
    try:
        await wait_for_build(ctx, build_id)
    except BuildFailed as exc:
        return ToolResult.json(
            {"error": f"workspace stop build failed: {exc.message}", "build_id": str(build_id)}
        )
    await refire_chat_updated(ctx)
    return ToolResult.json({"stopped": True, "workspace_name": name, "build_id": str(build_id)})
