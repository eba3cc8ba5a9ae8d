"""The chat tools as declarations: name, description, argument model, MCP hints, handler.

Transport-neutral: the MCP adapter (and any future in-server chat loop) lists
:data:`TOOLS` and calls :func:`call_tool`. Arguments are validated by each tool's
pydantic model (unknown keys refused; every string must be valid UTF-8 text, so a lone
surrogate from a JSON ``\\ud800`` escape never reaches a database or an agent frame, and
create_workspace's parameters hold no NUL byte, which Postgres text cannot store);
a bad argument is a text error, never an exception out of here. The limits on sizes,
paths and offsets are the tools' own checks, which answer in the spec's words.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from berth.tools import create_workspace as cw
from berth.tools import execute as ex
from berth.tools import files, lifecycle
from berth.tools import templates as tpl
from berth.tools.context import ChatContext
from berth.tools.result import ToolResult

log = logging.getLogger("berth.tools")


def _utf8(value: str | None) -> str | None:
    try:
        if value is not None:
            value.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError("utf8", "must be valid UTF-8 text") from None
    return value


Text = Annotated[str, AfterValidator(_utf8)]
"""A string argument: valid UTF-8 text (no lone surrogates)."""


def _no_nul(value: dict[str, str]) -> dict[str, str]:
    # Build parameters are stored as text, and Postgres text cannot hold a NUL.
    if any("\0" in key or "\0" in item for key, item in value.items()):
        raise PydanticCustomError("nul", "names and values must not contain NUL bytes")
    return value


Parameters = Annotated[dict[Text, Text], AfterValidator(_no_nul)]
"""create_workspace's parameters: UTF-8 names and values without NUL bytes."""


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
    # Required in the schema, but a missing template_id reaches the tool, which answers
    # with the spec's text error (as the reference does for an empty one).
    model_config = ConfigDict(json_schema_extra={"required": ["template_id"]})

    template_id: Text = Field(
        default="",
        description="The UUIDv4 of the template to create the workspace from. Obtain this "
        "from list_templates.",
    )
    name: Text = Field(
        default="",
        description="The name of the workspace to create. If not provided, a random name "
        "will be generated.",
    )
    parameters: Parameters = Field(
        default_factory=dict[str, str],
        description="Key-value pairs of template parameters to use when creating the "
        "workspace. Obtain available parameters from read_template.",
    )
    preset_id: Text = Field(
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


def _required(*names: str) -> ConfigDict:
    """Mark arguments required in the schema while a missing one still reaches the tool,
    which answers with the spec's text error (``path is required``) instead of a
    validation message."""
    return ConfigDict(json_schema_extra={"required": list(names)})


# Optional arguments whose absence the tool tells apart from an empty value; the
# schema shows only the real type (no ``null``).
OptionalStr = Annotated[str | SkipJsonSchema[None], AfterValidator(_utf8)]
OptionalInt = int | SkipJsonSchema[None]
OptionalBool = bool | SkipJsonSchema[None]


class ListTemplatesArgs(Args):
    query: Text = Field(default="", description=tpl.QUERY_DESCRIPTION)
    page: int = Field(default=1, description=tpl.PAGE_DESCRIPTION)


class ReadTemplateArgs(Args):
    model_config = _required("template_id")

    template_id: Text = Field(default="", description=tpl.TEMPLATE_ID_DESCRIPTION)


class ExecuteArgs(Args):
    model_config = _required("command")

    command: Text = Field(default="", description=ex.COMMAND_DESCRIPTION)
    timeout: OptionalStr = Field(default=None, description=ex.TIMEOUT_DESCRIPTION)
    workdir: OptionalStr = Field(default=None, description=ex.WORKDIR_DESCRIPTION)
    run_in_background: OptionalBool = Field(default=None, description=ex.BACKGROUND_DESCRIPTION)


class ProcessOutputArgs(Args):
    model_config = _required("process_id")

    process_id: Text = Field(default="", description=ex.PROCESS_ID_DESCRIPTION)
    wait_timeout: OptionalStr = Field(default=None, description=ex.WAIT_TIMEOUT_DESCRIPTION)


class ProcessSignalArgs(Args):
    model_config = _required("process_id", "signal")

    process_id: Text = Field(default="", description=ex.PROCESS_ID_DESCRIPTION)
    signal: Text = Field(default="", description=ex.SIGNAL_DESCRIPTION)


class ReadFileArgs(Args):
    model_config = _required("path")

    path: Text = Field(default="", description=files.PATH_DESCRIPTION)
    offset: OptionalInt = Field(default=None, description=files.OFFSET_DESCRIPTION)
    limit: OptionalInt = Field(default=None, description=files.LIMIT_DESCRIPTION)
    byte_offset: OptionalInt = Field(default=None, description=files.BYTE_OFFSET_DESCRIPTION)


class WriteFileArgs(Args):
    model_config = _required("path", "content")

    path: Text = Field(default="", description=files.WRITE_PATH_DESCRIPTION)
    content: Text = Field(default="", description=files.CONTENT_DESCRIPTION)


class EditArg(Args):
    model_config = _required("path", "old_text", "new_text")

    path: Text = Field(default="", description=files.EDIT_PATH_DESCRIPTION)
    old_text: Text = Field(default="", description=files.OLD_TEXT_DESCRIPTION)
    new_text: Text = Field(default="", description=files.NEW_TEXT_DESCRIPTION)
    replace_all: OptionalBool = Field(default=None, description=files.REPLACE_ALL_DESCRIPTION)


class EditFilesArgs(Args):
    model_config = _required("edits")

    edits: list[EditArg] = Field(default_factory=list[EditArg], description=files.EDITS_DESCRIPTION)


async def _list_templates(ctx: ChatContext, args: ListTemplatesArgs) -> ToolResult:
    return await tpl.list_templates(ctx, query=args.query, page=args.page)


async def _read_template(ctx: ChatContext, args: ReadTemplateArgs) -> ToolResult:
    return await tpl.read_template(ctx, template_id=args.template_id)


async def _execute(ctx: ChatContext, args: ExecuteArgs) -> ToolResult:
    return await ex.execute(
        ctx,
        command=args.command,
        timeout=args.timeout,
        workdir=args.workdir,
        run_in_background=args.run_in_background,
    )


async def _process_output(ctx: ChatContext, args: ProcessOutputArgs) -> ToolResult:
    return await ex.process_output(ctx, process_id=args.process_id, wait_timeout=args.wait_timeout)


async def _process_list(ctx: ChatContext, _: NoArgs) -> ToolResult:
    return await ex.process_list(ctx)


async def _process_signal(ctx: ChatContext, args: ProcessSignalArgs) -> ToolResult:
    return await ex.process_signal(ctx, process_id=args.process_id, signal=args.signal)


async def _read_file(ctx: ChatContext, args: ReadFileArgs) -> ToolResult:
    return await files.read_file(
        ctx, path=args.path, offset=args.offset, limit=args.limit, byte_offset=args.byte_offset
    )


async def _write_file(ctx: ChatContext, args: WriteFileArgs) -> ToolResult:
    return await files.write_file(ctx, path=args.path, content=args.content)


async def _edit_files(ctx: ChatContext, args: EditFilesArgs) -> ToolResult:
    edits = [e.model_dump(exclude_none=True) for e in args.edits]
    return await files.edit_files(ctx, edits=edits)


_LIFECYCLE = Hints(idempotent=True)
_READ_ONLY = Hints(read_only=True)
_DESTRUCTIVE = Hints(destructive=True)

TOOLS: list[ToolSpec] = [
    ToolSpec(cw.NAME, cw.DESCRIPTION, CreateWorkspaceArgs, _LIFECYCLE, _create),
    ToolSpec("start_workspace", lifecycle.START_DESCRIPTION, NoArgs, _LIFECYCLE, _start),
    ToolSpec("stop_workspace", lifecycle.STOP_DESCRIPTION, NoArgs, _LIFECYCLE, _stop),
    ToolSpec(tpl.LIST_NAME, tpl.LIST_DESCRIPTION, ListTemplatesArgs, _READ_ONLY, _list_templates),
    ToolSpec(tpl.READ_NAME, tpl.READ_DESCRIPTION, ReadTemplateArgs, _READ_ONLY, _read_template),
    ToolSpec(ex.EXECUTE_NAME, ex.EXECUTE_DESCRIPTION, ExecuteArgs, _DESTRUCTIVE, _execute),
    ToolSpec(
        ex.PROCESS_OUTPUT_NAME,
        ex.PROCESS_OUTPUT_DESCRIPTION,
        ProcessOutputArgs,
        _READ_ONLY,
        _process_output,
    ),
    ToolSpec(ex.PROCESS_LIST_NAME, ex.PROCESS_LIST_DESCRIPTION, NoArgs, _READ_ONLY, _process_list),
    ToolSpec(
        ex.PROCESS_SIGNAL_NAME,
        ex.PROCESS_SIGNAL_DESCRIPTION,
        ProcessSignalArgs,
        _DESTRUCTIVE,
        _process_signal,
    ),
    ToolSpec(
        files.READ_FILE_NAME, files.READ_FILE_DESCRIPTION, ReadFileArgs, _READ_ONLY, _read_file
    ),
    ToolSpec(
        files.WRITE_FILE_NAME,
        files.WRITE_FILE_DESCRIPTION,
        WriteFileArgs,
        _DESTRUCTIVE,
        _write_file,
    ),
    ToolSpec(
        files.EDIT_FILES_NAME,
        files.EDIT_FILES_DESCRIPTION,
        EditFilesArgs,
        _DESTRUCTIVE,
        _edit_files,
    ),
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
