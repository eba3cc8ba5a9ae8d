"""``read_file``, ``write_file`` and ``edit_files`` (spec §13.2–13.4) through the agent.

The agent implements the spec's results and error texts (line numbering, directory
listings, atomic writes, all-or-nothing edits with a unified diff per file); these
tools check their arguments, resolve the chat's agent and pass its answer on.

Arguments are checked here, before anything reaches the agent, with the texts the
agent would use (:func:`berth.agent.params.path_problem` for every path): a path
with a NUL byte, over 4096 bytes or over 256 levels; offsets and limits below 1;
content over :data:`WRITE_FILE_MAX_BYTES`; more than :data:`EDIT_MAX_EDITS` edits or
more than :data:`EDIT_TEXTS_MAX_BYTES` of their texts. What goes to the agent stays
well inside its frame limit: text is sent as a JSON string or, when escaping would
make that larger (control characters are six bytes each), as base64
(:func:`wire_text`). :data:`MCP_REQUEST_MAX_BYTES` is the MCP endpoint's request limit,
large enough that any content these tools accept fits in a request however its JSON
is escaped, so an oversized ``write_file`` is a tool error naming the limit, not an
HTTP 413.
"""

from __future__ import annotations

import base64
from typing import Any

from berth.agent.params import path_problem, too_large
from berth.agent.protocol import (
    EDIT_DIFF_MAX_BYTES,
    EDIT_FILE_MAX_BYTES,
    EDIT_MAX_EDITS,
    EDIT_TEXTS_MAX_BYTES,
    NO_EDITS_APPLIED,
    READ_FILE_MAX_BYTES,
    WRITE_FILE_MAX_BYTES,
)
from berth.tools.context import ChatContext
from berth.tools.result import ToolResult
from berth.tools.workspace_tools import Target, call_agent, run_workspace_tool

READ_FILE_NAME = "read_file"
READ_FILE_DESCRIPTION = (
    "Read a file from the workspace. Returns line-numbered content. When reading a "
    "directory, returns a non-recursive directory listing. The offset parameter is a "
    "1-based line number or directory entry (default: 1). The limit parameter is the "
    "number of lines or directory entries to return (default: 2000). For large files and "
    "directories, use offset and limit to paginate."
)
PATH_DESCRIPTION = (
    "The path of the file or directory; relative paths are relative to the agent's directory."
)
OFFSET_DESCRIPTION = "1-based line number or directory entry to start at (default: 1)."
LIMIT_DESCRIPTION = (
    "Number of lines or directory entries to return (default: 2000). One call returns at "
    f"most {READ_FILE_MAX_BYTES // 1024} KiB of content; a result cut short says so "
    "(truncated, note) and gives next_offset to go on from."
)
BYTE_OFFSET_DESCRIPTION = (
    "For a line too long to return whole: the byte of the line at offset to start from "
    "(default: 0). Pass back the next_byte_offset of a result that cut the line."
)

WRITE_FILE_NAME = "write_file"
WRITE_FILE_DESCRIPTION = "Write a file to the workspace."
WRITE_PATH_DESCRIPTION = (
    "The path of the file to write; relative paths are relative to the agent's directory. "
    "Parent directories are created."
)
CONTENT_DESCRIPTION = (
    f"The complete new content of the file (at most {WRITE_FILE_MAX_BYTES >> 20} MiB as UTF-8)."
)

EDIT_FILES_NAME = "edit_files"
EDIT_FILES_DESCRIPTION = (
    "Edit files by replacing old_text with new_text. Edits to the same file apply in "
    "order. If any edit fails, no file is changed."
)
EDITS_DESCRIPTION = (
    f"The edits to apply, in order: at most {EDIT_MAX_EDITS}, on files of at most "
    f"{EDIT_FILE_MAX_BYTES >> 20} MiB (before and after). Each file's diff is cut at "
    f"{EDIT_DIFF_MAX_BYTES // 1024} KiB."
)
EDIT_PATH_DESCRIPTION = "The path of the file to edit."
OLD_TEXT_DESCRIPTION = "The exact text to replace; it must match exactly once unless replace_all."
NEW_TEXT_DESCRIPTION = "The text to put in its place."
REPLACE_ALL_DESCRIPTION = "Replace every match of old_text instead of exactly one."

NO_EDITS = "Add at least one edit to edits" + NO_EDITS_APPLIED

MCP_REQUEST_MAX_BYTES = 6 * WRITE_FILE_MAX_BYTES + (1 << 20)
"""The MCP endpoint's request body limit: a ``write_file`` of the largest content still
fits when every byte of it is escaped as ``\\u00XX`` (six bytes), with room to spare."""

# The bytes JSON escapes as two characters, and the other control bytes (six).
_SHORT_ESCAPES = b'\n\r\t\b\f"\\'
_LONG_ESCAPES = bytes(c for c in range(0x20) if c not in b"\n\r\t\b\f")


def wire_text(text: str, data: bytes) -> str | dict[str, str]:
    """``text`` (``data`` is its UTF-8) as the agent takes it: the string itself, or
    ``{"base64": …}`` when that is shorter than the string's JSON."""
    short = len(data) - len(data.translate(None, _SHORT_ESCAPES))
    control = len(data) - len(data.translate(None, _LONG_ESCAPES))
    if len(data) + short + 5 * control <= 4 * ((len(data) + 2) // 3):
        return text
    return {"base64": base64.b64encode(data).decode("ascii")}


def _utf8(name: str, value: str) -> bytes | str:
    """``value`` as UTF-8, or the text error for one that is not (lone surrogates)."""
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        return f"{name} must be valid UTF-8 text"


async def read_file(
    ctx: ChatContext,
    *,
    path: str,
    offset: int | None = None,
    limit: int | None = None,
    byte_offset: int | None = None,
) -> ToolResult:
    async def body(target: Target) -> ToolResult:
        if problem := path_problem("path", path):  # [rf.file]
            return ToolResult.error(problem)
        params: dict[str, Any] = {"path": path}
        for name, value, least in (("offset", offset, 1), ("limit", limit, 1)):
            if value is not None:
                if value < least:
                    return ToolResult.error(f"{name} must be >= {least}")
                params[name] = value
        if byte_offset is not None:
            if byte_offset < 0:
                return ToolResult.error("byte_offset must be >= 0")
            params["byte_offset"] = byte_offset
        return ToolResult.json(await call_agent(ctx, target, "read_file", params))

    return await run_workspace_tool(ctx, body)


async def write_file(ctx: ChatContext, *, path: str, content: str) -> ToolResult:
    async def body(target: Target) -> ToolResult:
        if problem := path_problem("path", path):  # [wf.write]
            return ToolResult.error(problem)
        data = _utf8("content", content)
        if isinstance(data, str):
            return ToolResult.error(data)
        if len(data) > WRITE_FILE_MAX_BYTES:
            return ToolResult.error(too_large("content", WRITE_FILE_MAX_BYTES, len(data)))
        params = {"path": path, "content": wire_text(content, data)}
        await call_agent(ctx, target, "write_file", params)
        return ToolResult.json({"ok": True})

    return await run_workspace_tool(ctx, body)


def _edit_params(edits: list[dict[str, Any]]) -> list[dict[str, Any]] | str:
    """The edits as the agent takes them, or the text error for the first bad one."""
    if not edits:  # [ef.errors]
        return NO_EDITS
    if len(edits) > EDIT_MAX_EDITS:
        return (
            f"edits must be <= {EDIT_MAX_EDITS} per call, got {len(edits)}; split them into "
            f"several calls" + NO_EDITS_APPLIED
        )
    wire: list[dict[str, Any]] = []
    texts = 0
    for number, edit in enumerate(edits, start=1):
        if problem := path_problem("path", str(edit.get("path", ""))):
            return f"edit {number}: {problem}" + NO_EDITS_APPLIED
        item = dict(edit)
        for name in ("old_text", "new_text"):
            text = str(edit.get(name, ""))
            data = _utf8(name, text)
            if isinstance(data, str):
                return f"edit {number}: {data}" + NO_EDITS_APPLIED
            texts += len(data)
            item[name] = wire_text(text, data)
        wire.append(item)
    if texts > EDIT_TEXTS_MAX_BYTES:
        return (
            too_large("the old_text and new_text of all edits", EDIT_TEXTS_MAX_BYTES, texts)
            + "; split the edits into several calls"
            + NO_EDITS_APPLIED
        )
    return wire


async def edit_files(ctx: ChatContext, *, edits: list[dict[str, Any]]) -> ToolResult:
    async def body(target: Target) -> ToolResult:
        wire = _edit_params(edits)
        if isinstance(wire, str):
            return ToolResult.error(wire)
        response = await call_agent(ctx, target, "edit_files", {"edits": wire})
        return ToolResult.json({"ok": True, "files": response.get("files", [])})

    return await run_workspace_tool(ctx, body)
