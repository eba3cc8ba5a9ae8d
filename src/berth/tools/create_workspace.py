"""``create_workspace`` (spec §1): the reference's steps, in order, event-driven.

Port of ``coderd/x/chatd/chattool/createworkspace.go``: every early return, string and
key is kept; the waits wake on events instead of 2-second tickers, and the per-chat
serialization is a lease on the chat row, so it holds across server processes. Each
step reads and writes through the services, as the reference's steps call its store.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from berth.domain.gocompat import parse_uuid
from berth.domain.names import generate_name, name_error
from berth.domain.ttl import parse_chat_workspace_ttl
from berth.errors import BerthError, BuildFailed, Conflict, NotFound
from berth.records import Template
from berth.services import Ctx, siteconfig, templates, workspaces
from berth.tools.chats import bind_workspace, chat_lock, refire_chat_updated
from berth.tools.context import ChatContext
from berth.tools.existing import check_existing
from berth.tools.responses import api_error, build_failure
from berth.tools.result import ToolResult
from berth.tools.waits import merge_agent_readiness, wait_for_build

log = logging.getLogger("berth.tools")

NAME = "create_workspace"
DESCRIPTION = (
    "Create a new workspace from a template only when workspace-backed file inspection, "
    "command execution, or file editing is required, or when the user explicitly asks for "
    "one. Do not use this as a default first step for requests answerable from "
    "conversation context, provider tools, or external MCP tools. Requires a template_id "
    "(from list_templates). Optionally provide a name and parameter values (from "
    "read_template). If no name is given, one will be generated. Provide a preset_id (from "
    "read_template) to apply preset parameters and potentially claim a prebuilt workspace "
    "for faster startup. This tool is idempotent. If the chat already has a workspace that "
    "is building or running, the existing workspace is returned."
)
EXTERNAL_AGENT_MESSAGE = (
    "create_workspace cannot create workspaces from templates with externally managed "
    "agents. Use list_templates to choose a different template, or if the user wants to "
    "use an external workspace, they should create it and start it up fully themselves "
    "first, then attach it to this chat"
)
CROSS_ORG_MESSAGE = (
    "template belongs to a different organization than this chat; use list_templates to "
    "find templates in the correct organization"
)
NOT_ALLOWED_MESSAGE = (
    "template not available for chat workspaces; use list_templates to find allowed templates"
)


async def create_workspace(
    ctx: ChatContext,
    *,
    template_id: str,
    name: str = "",
    parameters: Mapping[str, str] | None = None,
    preset_id: str = "",
) -> ToolResult:
    if not ctx.create_enabled:  # [cw.not-configured]
        return ToolResult.error("workspace creator is not configured")
    template_ref = template_id.strip()
    if not template_ref:  # [cw.template-id-required]
        return ToolResult.error("template_id is required; use list_templates to find one")
    tpl_id, parse_error = parse_uuid(template_ref)
    if tpl_id is None:  # [cw.template-id-invalid]
        return ToolResult.error(f"invalid template_id: {parse_error}")
    if ctx.allowlist is not None:  # [cw.allowlist]
        allowed = await ctx.allowlist()
        if allowed and tpl_id not in allowed:
            return ToolResult.error(NOT_ALLOWED_MESSAGE)
    try:
        async with chat_lock(ctx):  # [cw.serialize]
            return await _locked(ctx, tpl_id, name, parameters or {}, preset_id)
    except NotFound:
        return ToolResult.error("load chat: chat not found")


async def _locked(
    ctx: ChatContext,
    template_id: uuid.UUID,
    name: str,
    parameters: Mapping[str, str],
    preset_id: str,
) -> ToolResult:
    existing = await check_existing(ctx)  # [cw.existing]
    if existing.build_error is not None:
        return await build_failure(
            ctx,
            existing.build_action,
            existing.build_id,
            existing.build_error,
            existing.build_error.message,
        )
    if existing.error is not None:
        return ToolResult.error(existing.error)
    if existing.done:
        return ToolResult.json(existing.result)
    try:  # [cw.as-owner]
        owner = await ctx.as_owner()
    except Exception as exc:
        return ToolResult.error(f"load user authorization: {exc}")
    template = await templates.get_template_by_id(owner, template_id)
    if template is None or template.deleted:  # [cw.template-lookup]
        return ToolResult.error("look up template: template not found")
    if template.organization_id != ctx.organization_id:  # [cw.cross-org]
        return ToolResult.error(CROSS_ORG_MESSAGE)
    try:
        version = (
            await templates.get_version(owner, template.active_version_id)
            if template.active_version_id
            else None
        )
    except Exception as exc:
        return ToolResult.error(f"look up template version: {exc}")
    if version is not None and version.has_external_agent:  # [cw.external]
        return ToolResult.error(EXTERNAL_AGENT_MESSAGE)
    ttl_ms = await _chat_ttl_ms(owner)  # [cw.ttl]
    preset = preset_id.strip()  # [cw.preset]
    if preset:
        preset_uuid, parse_error = parse_uuid(preset)
        if preset_uuid is None:
            return ToolResult.error(f"invalid preset_id: {parse_error}")
    workspace_name = _workspace_name(name, template)  # [cw.name]
    return await _create_and_wait(
        ctx, owner, template, workspace_name, dict(parameters), preset or None, ttl_ms
    )


def _workspace_name(requested: str, template: Template) -> str:
    name = requested.strip()
    if not name:
        return generate_name(template.name)
    if name_error(name) is not None:
        return generate_name(name)
    return name


async def _chat_ttl_ms(owner: Ctx) -> int | None:
    """[cw.ttl] The chat workspace TTL in ms; ``None`` means the template's default."""
    try:
        raw_value = await siteconfig.get_config(owner, siteconfig.CHAT_WORKSPACE_TTL)
    except Exception:
        log.exception("failed to read chat workspace TTL setting, using template default")
        return None
    try:
        ttl = parse_chat_workspace_ttl(raw_value)
    except ValueError as exc:
        log.warning(
            "invalid chat workspace TTL setting %r, using template default: %s", raw_value, exc
        )
        return None
    # Exact, like Go's Duration.Milliseconds (float seconds * 1000 turns 1.001s into 1000).
    return ttl // dt.timedelta(milliseconds=1) if ttl > dt.timedelta(0) else None


async def _create(
    owner: Ctx,
    template: Template,
    name: str,
    parameters: dict[str, str],
    preset_id: str | None,
    ttl_ms: int | None,
) -> workspaces.Started:
    """[cw.name-retry] Create; retry once with a generated name on a name conflict."""

    async def attempt(workspace_name: str) -> workspaces.Started:
        return await workspaces.create_workspace(
            owner,
            template=str(template.id),
            name=workspace_name,
            parameters=parameters,  # [cw.parameters]
            preset_ref=preset_id,
            ttl_ms=ttl_ms,
        )

    try:
        return await attempt(name)
    except Conflict as exc:
        if not any(v.field == "name" for v in exc.validations):
            raise
        return await attempt(generate_name(name))


async def _create_and_wait(
    ctx: ChatContext,
    owner: Ctx,
    template: Template,
    name: str,
    parameters: dict[str, str],
    preset_id: str | None,
    ttl_ms: int | None,
) -> ToolResult:
    try:
        started = await _create(owner, template, name, parameters, preset_id, ttl_ms)
    except BerthError as exc:  # [cw.api-error]
        return api_error(exc)
    except Exception as exc:
        return ToolResult.error(str(exc))
    workspace, build = started.workspace, started.build
    await bind_workspace(ctx, workspace.id, build.id)  # [cw.bind]
    try:
        await wait_for_build(ctx, build.id)  # [cw.wait-build]
    except BuildFailed as exc:
        return await build_failure(
            ctx, "create", build.id, exc, f"workspace build failed: {exc.message}"
        )
    result: dict[str, Any] = {  # [cw.result]
        "created": True,
        "workspace_name": f"{owner.actor.username}/{workspace.name}",
        "build_id": str(build.id),
    }
    await merge_agent_readiness(ctx, build.job_id, result)  # [cw.agent-select], [cw.agent-wait]
    await refire_chat_updated(ctx)  # [cw.refire]
    return ToolResult.json(result)
