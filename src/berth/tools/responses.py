"""Responses shared by the workspace tools (spec §4)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from berth.errors import INSUFFICIENT_QUOTA, BerthError, BuildFailed
from berth.services import quotas
from berth.tools.context import ChatContext
from berth.tools.result import ToolResult

QUOTA_TITLE = "Workspace quota reached"

BuildAction = Literal["create", "start"]


def quota_message(action: BuildAction) -> str:
    return (
        f"berth could not {action} this workspace because your workspace quota is full. "
        "Delete a workspace you no longer need to free quota, or ask an administrator to "
        "raise your group quota allowance."
    )


async def build_failure(
    ctx: ChatContext,
    action: BuildAction,
    build_id: uuid.UUID | None,
    error: BuildFailed,
    message: str,
) -> ToolResult:
    """[resp.build-failure] A failed build as a JSON result; quota failures say more."""
    result: dict[str, Any] = {"error": message}
    if build_id is not None:
        result["build_id"] = str(build_id)
    if error.code == INSUFFICIENT_QUOTA:
        result.update(
            {
                "error_code": INSUFFICIENT_QUOTA,
                "title": QUOTA_TITLE,
                "message": quota_message(action),
            }
        )
        if (quota := await _quota(ctx)) is not None:
            result["quota"] = quota
    return ToolResult.json(result)


async def _quota(ctx: ChatContext) -> dict[str, int] | None:
    """The owner's quota figures, read as the owner; ``None`` when they cannot be read."""
    try:
        quota = await quotas.get_quota(await ctx.as_owner(), ctx.owner_id, ctx.organization_id)
    except Exception:
        return None
    budget = quota.budget if quota.budget is not None else 0
    return {"credits_consumed": quota.credits_consumed, "budget": budget}


def api_error(exc: BerthError) -> ToolResult:
    """[resp.api-error] A structured API error as a JSON result."""
    result: dict[str, Any] = {"error": exc.message or "request failed"}
    if exc.detail:
        result["detail"] = exc.detail
    if exc.validations:
        result["validations"] = [{"field": v.field, "detail": v.detail} for v in exc.validations]
    return ToolResult.json(result)
