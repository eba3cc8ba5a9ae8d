"""``read_file``, ``write_file`` and ``edit_files`` (spec §13.2–13.4) through the agent.

The agent implements the spec's results and error texts (line numbering, directory
listings, atomic writes, all-or-nothing edits with a unified diff per file); these
tools check their arguments, resolve the chat's agent and pass its answer on.
"""

from __future__ import annotations

from typing import Any

from berth.agent.protocol import NO_EDITS_APPLIED
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
LIMIT_DESCRIPTION = "Number of lines or directory entries to return (default: 2000)."

WRITE_FILE_NAME = "write_file"
WRITE_FILE_DESCRIPTION = "Write a file to the workspace."
WRITE_PATH_DESCRIPTION = (
    "The path of the file to write; relative paths are relative to the agent's directory. "
    "Parent directories are created."
)
CONTENT_DESCRIPTION = "The complete new content of the file."

EDIT_FILES_NAME = "edit_files"
EDIT_FILES_DESCRIPTION = (
    "Edit files by replacing old_text with new_text. Edits to the same file apply in "
    "order. If any edit fails, no file is changed."
)
EDITS_DESCRIPTION = "The edits to apply, in order."
EDIT_PATH_DESCRIPTION = "The path of the file to edit."
OLD_TEXT_DESCRIPTION = "The exact text to replace; it must match exactly once unless replace_all."
NEW_TEXT_DESCRIPTION = "The text to put in its place."
REPLACE_ALL_DESCRIPTION = "Replace every match of old_text instead of exactly one."

NO_EDITS = "Add at least one edit to edits" + NO_EDITS_APPLIED


async def read_file(
    ctx: ChatContext, *, path: str, offset: int | None = None, limit: int | None = None
) -> ToolResult:
    async def body(target: Target) -> ToolResult:
        if not path.strip():  # [rf.file]
            return ToolResult.error("path is required")
        params: dict[str, Any] = {"path": path}
        if offset is not None:
            params["offset"] = offset
        if limit is not None:
            params["limit"] = limit
        return ToolResult.json(await call_agent(ctx, target, "read_file", params))

    return await run_workspace_tool(ctx, body)


async def write_file(ctx: ChatContext, *, path: str, content: str) -> ToolResult:
    async def body(target: Target) -> ToolResult:
        if not path.strip():  # [wf.write]
            return ToolResult.error("path is required")
        await call_agent(ctx, target, "write_file", {"path": path, "content": content})
        return ToolResult.json({"ok": True})

    return await run_workspace_tool(ctx, body)


async def edit_files(ctx: ChatContext, *, edits: list[dict[str, Any]]) -> ToolResult:
    async def body(target: Target) -> ToolResult:
        if not edits:  # [ef.errors]
            return ToolResult.error(NO_EDITS)
        response = await call_agent(ctx, target, "edit_files", {"edits": edits})
        return ToolResult.json({"ok": True, "files": response.get("files", [])})

    return await run_workspace_tool(ctx, body)
