"""The chat tools as declarations: name, description, argument model, MCP hints, handler.

Transport-neutral: the MCP adapter (and any future in-server chat loop) lists
:data:`TOOLS` and calls :func:`call_tool`. Arguments are validated by each tool's
pydantic model (unknown keys refused); a bad argument is a text error, never an
exception out of here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from berth.tools import create_workspace as cw
from berth.tools import lifecycle
from berth.tools.context import ChatContext
from berth.tools.result import ToolResult

log = logging.getLogger("berth.tools")


class Args(BaseModel):
    """Base of every tool's arguments: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


@dataclass(frozen=True, slots=True)
class Hints:
    """MCP tool annotations."""

    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    args: type[Args]
    hints: Hints
    handler: Callable[[ChatContext, Any], Awaitable[ToolResult]]

    def input_schema(self) -> dict[str, Any]:
        schema = self.args.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        return schema


class CreateWorkspaceArgs(Args):
    template_id: str = Field(
        description="The UUIDv4 of the template to create the workspace from. Obtain this "
        "from list_templates."
    )
    name: str = Field(
        default="",
        description="The name of the workspace to create. If not provided, a random name "
        "will be generated.",
    )
    parameters: dict[str, str] = Field(
        default_factory=dict[str, str],
        description="Key-value pairs of template parameters to use when creating the "
        "workspace. Obtain available parameters from read_template.",
    )
    preset_id: str = Field(
        default="",
        description="The UUIDv4 of a template version preset to use. Obtain available "
        "presets from read_template. When provided, the preset's parameters are applied "
        "automatically and the workspace may claim a prebuilt instance for faster startup.",
    )


class NoArgs(Args):
    pass


async def _create(ctx: ChatContext, args: CreateWorkspaceArgs) -> ToolResult:
    return await cw.create_workspace(
        ctx,
        template_id=args.template_id,
        name=args.name,
        parameters=args.parameters,
        preset_id=args.preset_id,
    )


async def _start(ctx: ChatContext, _: NoArgs) -> ToolResult:
    return await lifecycle.start_workspace(ctx)


async def _stop(ctx: ChatContext, _: NoArgs) -> ToolResult:
    return await lifecycle.stop_workspace(ctx)


_LIFECYCLE = Hints(idempotent=True)

TOOLS: list[ToolSpec] = [
    ToolSpec(cw.NAME, cw.DESCRIPTION, CreateWorkspaceArgs, _LIFECYCLE, _create),
    ToolSpec("start_workspace", lifecycle.START_DESCRIPTION, NoArgs, _LIFECYCLE, _start),
    ToolSpec("stop_workspace", lifecycle.STOP_DESCRIPTION, NoArgs, _LIFECYCLE, _stop),
]


def tool_by_name(name: str) -> ToolSpec | None:
    return next((t for t in TOOLS if t.name == name), None)


def describe_validation_error(exc: ValidationError) -> str:
    """One readable line per problem: ``field: message``."""
    parts: list[str] = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
        message = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            message = "unknown argument"
        parts.append(f"{loc}: {message}")
    return "invalid arguments: " + "; ".join(parts)


async def call_tool(ctx: ChatContext, name: str, arguments: dict[str, Any] | None) -> ToolResult:
    """Validate ``arguments`` and run the tool; every failure is a result, never raised."""
    spec = tool_by_name(name)
    if spec is None:
        return ToolResult.error(f"unknown tool: {name}")
    try:
        args = spec.args.model_validate(arguments or {})
    except ValidationError as exc:
        return ToolResult.error(describe_validation_error(exc))
    try:
        return await spec.handler(ctx, args)
    except Exception as exc:
        log.exception("tool %s failed", name)
        return ToolResult.error(f"{name} failed: {exc}")
