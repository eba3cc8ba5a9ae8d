"""``create_workspace`` (spec §1): the reference's steps, in order, event-driven.

Port of ``coderd/x/chatd/chattool/createworkspace.go``: every early return, string and
key is kept; the waits wake on events instead of 2-second tickers, and the per-chat
serialization is a lease on the chat row, so it holds across server processes.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from berth.db.authz import AuthzStore
from berth.domain.actors import Actor
from berth.domain.durations import parse_chat_workspace_ttl
from berth.domain.names import generate_name, name_error
from berth.errors import BerthError, Conflict, NotFound
from berth.records import Template
from berth.services import workspaces
from berth.services.base import Ctx
from berth.services.siteconfig import CHAT_WORKSPACE_TTL, KEYS
from berth.tools.chats import bind_workspace, chat_lock, refire_chat_updated
from berth.tools.context import ChatContext
from berth.tools.existing import check_existing
from berth.tools.owner import owner_actor
from berth.tools.responses import api_error, build_failure
from berth.tools.result import ToolResult
from berth.tools.waits import BuildError, merge_agent_readiness, wait_for_build

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


_HEX_OFFSETS = (0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34)
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
               "\t": "\\t", "\v": "\\v", '"': '\\"', "\\": "\\\\"}  # fmt: skip


def _go_quote(data: bytes) -> str:
    """Go's ``%q`` of a byte string: printable characters kept, the rest escaped."""
    out = ['"']
    for char in data.decode("utf-8", "surrogateescape"):
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def parse_uuid_arg(value: str) -> tuple[uuid.UUID | None, str]:
    """A UUID, or the reference's parse error text.

    A port of Go's ``uuid.Parse`` (github.com/google/uuid): the same accepted forms
    (``xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx``, with ``urn:uuid:`` or braces, or 32
    hex digits) and the same error texts; lengths are counted in bytes, as Go does.
    """
    data = value.encode("utf-8", "surrogatepass")
    match len(data):
        case 36:
            pass
        case 45:
            if data[:9].lower() != b"urn:uuid:":
                return None, f"invalid urn prefix: {_go_quote(data[:9])}"
            data = data[9:]
        case 38:
            data = data[1:]
        case 32:
            if not all(b in _HEX_DIGITS for b in data):
                return None, "invalid UUID format"
            return uuid.UUID(data.decode()), ""
        case n:
            return None, f"invalid UUID length: {n}"
    if any(data[i] != ord("-") for i in (8, 13, 18, 23)):
        return None, "invalid UUID format"
    digits = b"".join(data[i : i + 2] for i in _HEX_OFFSETS)
    if not all(b in _HEX_DIGITS for b in digits):
        return None, "invalid UUID format"
    return uuid.UUID(digits.decode()), ""


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
    tpl_id, parse_error = parse_uuid_arg(template_ref)
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
        actor = await owner_actor(ctx)
    except Exception as exc:
        return ToolResult.error(f"load user authorization: {exc}")
    async with ctx.db.read() as raw:
        store = AuthzStore(raw, actor)
        template = await store.get_template_by_id(template_id)
        if template is None or template.deleted:  # [cw.template-lookup]
            return ToolResult.error("look up template: template not found")
        if template.organization_id != ctx.organization_id:  # [cw.cross-org]
            return ToolResult.error(CROSS_ORG_MESSAGE)
        version = (
            await store.get_template_version_by_id(template.active_version_id)
            if template.active_version_id
            else None
        )
        if version is not None and version.has_external_agent:  # [cw.external]
            return ToolResult.error(EXTERNAL_AGENT_MESSAGE)
        ttl_ms = await _chat_ttl_ms(store)  # [cw.ttl]
    preset = preset_id.strip()  # [cw.preset]
    if preset:
        preset_uuid, parse_error = parse_uuid_arg(preset)
        if preset_uuid is None:
            return ToolResult.error(f"invalid preset_id: {parse_error}")
    workspace_name = _workspace_name(name, template)  # [cw.name]
    return await _create_and_wait(
        ctx, actor, template, workspace_name, dict(parameters), preset or None, ttl_ms
    )


def _workspace_name(requested: str, template: Template) -> str:
    name = requested.strip()
    if not name:
        return generate_name(template.name)
    if name_error(name) is not None:
        return generate_name(name)
    return name


async def _chat_ttl_ms(store: AuthzStore) -> int | None:
    """[cw.ttl] The chat workspace TTL in ms; ``None`` means the template's default."""
    try:
        raw_value = await store.get_site_config(KEYS[CHAT_WORKSPACE_TTL])
    except Exception:
        log.exception("failed to read chat workspace TTL setting, using template default")
        return None
    try:
        ttl = parse_chat_workspace_ttl(raw_value or "")
    except ValueError as exc:
        log.warning(
            "invalid chat workspace TTL setting %r, using template default: %s", raw_value, exc
        )
        return None
    # Exact, like Go's Duration.Milliseconds (float seconds * 1000 turns 1.001s into 1000).
    return ttl // dt.timedelta(milliseconds=1) if ttl > dt.timedelta(0) else None


async def _create(
    ctx: ChatContext,
    actor: Actor,
    template: Template,
    name: str,
    parameters: dict[str, str],
    preset_id: str | None,
    ttl_ms: int | None,
) -> workspaces.Started:
    """[cw.name-retry] Create; retry once with a generated name on a name conflict."""
    service = Ctx(ctx.db, actor, ctx.bus)

    async def attempt(workspace_name: str) -> workspaces.Started:
        return await workspaces.create_workspace(
            service,
            template=str(template.id),
            name=workspace_name,
            parameters=parameters,  # [cw.parameters]
            preset_id=preset_id,
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
    actor: Actor,
    template: Template,
    name: str,
    parameters: dict[str, str],
    preset_id: str | None,
    ttl_ms: int | None,
) -> ToolResult:
    try:
        started = await _create(ctx, actor, template, name, parameters, preset_id, ttl_ms)
    except BerthError as exc:  # [cw.api-error]
        return api_error(exc)
    except Exception as exc:
        return ToolResult.error(str(exc))
    workspace, build = started.workspace, started.build
    await bind_workspace(ctx, workspace.id, build.id)  # [cw.bind]
    try:
        await wait_for_build(ctx, build.id)  # [cw.wait-build]
    except BuildError as exc:
        return await build_failure(
            ctx, "create", build.id, exc, f"workspace build failed: {exc.message}"
        )
    owner = actor.username
    result: dict[str, Any] = {  # [cw.result]
        "created": True,
        "workspace_name": f"{owner}/{workspace.name}",
        "build_id": str(build.id),
    }
    await merge_agent_readiness(ctx, build.job_id, result)  # [cw.agent-select], [cw.agent-wait]
    await refire_chat_updated(ctx)  # [cw.refire]
    return ToolResult.json(result)
