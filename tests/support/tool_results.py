"""What a chat tool returned, for the chat-tool tests.

:func:`result_of` and :func:`error_of` read a :class:`~berth.tools.result.ToolResult`;
the constants are the texts the spec fixes that several test modules compare with;
:func:`background` runs a call (or any coroutine) while the test acts, and
:func:`finished` collects it, within :data:`~tests.support.timings.WAIT`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator
from typing import Any

import anyio

from berth.tools.result import ToolResult
from tests.support.timings import WAIT

DELETED = "workspace was deleted; use create_workspace to make a new one"
TIMED_OUT = "timed out waiting for workspace build: context deadline exceeded"
NOT_CONNECTED = "the workspace agent is not connected"
QUOTA_TITLE = "Workspace quota reached"


def quota_message(action: str) -> str:
    return (
        f"berth could not {action} this workspace because your workspace quota is full. "
        "Delete a workspace you no longer need to free quota, or ask an administrator to "
        "raise your group quota allowance."
    )


def result_of(result: ToolResult) -> dict[str, Any]:
    """The JSON object of a successful (non-error) result, checked against its text."""
    assert not result.is_error, result.text
    assert result.structured is not None, result.text
    assert json.loads(result.text) == result.structured
    assert result.text == json.dumps(result.structured, sort_keys=True, ensure_ascii=False)
    return result.structured


def error_of(result: ToolResult) -> str:
    """The text of a text-error result."""
    assert result.is_error, result.text
    assert result.structured is None
    return result.text


@contextlib.asynccontextmanager
async def background(coro: Any) -> AsyncGenerator[asyncio.Task[Any]]:
    """Run ``coro`` as a task for the block; cancel it if the block leaves it running."""
    task: asyncio.Task[Any] = asyncio.ensure_future(coro)
    try:
        yield task
    finally:
        if not task.done():
            task.cancel()
        with contextlib.suppress(BaseException):
            await task


async def finished(task: asyncio.Task[Any]) -> Any:
    """The task's result, within :data:`WAIT`."""
    with anyio.fail_after(WAIT):
        return await task
