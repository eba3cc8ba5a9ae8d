"""Issue 8's tool-input limits end to end: the official MCP client, the real HTTP
endpoint, a real agent.

The SDK's default request limit (4 MiB) made a large ``write_file`` an HTTP 413 that
clients show as a protocol error. Now an 8 MB write succeeds, content over the tool's
32 MiB limit is a tool error that names it, and content the JSON escapes six-fold (one
``\\u00XX`` per control character) still fits. A last property sends random arguments
through the transport: every answer is a tool result, never a protocol error.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any, cast

import anyio
import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from berth.agent.protocol import READ_FILE_MAX_BYTES, WRITE_FILE_MAX_BYTES
from berth.services.accounts import create_token
from berth.services.base import Ctx
from tests.support.live_agents import Live, LivePool

pytestmark = pytest.mark.anyio

_tokens: dict[str, str] = {}


@pytest.fixture
async def ws(live_pool: LivePool) -> Live:
    return await live_pool.get(__name__, "sqlite")


async def _owner_token(ws: Live) -> str:
    """An API token of the chat's owner (one per shared workspace)."""
    key = str(ws.agent.id)
    if key not in _tokens:
        runtime = ws.server.runtime
        assert ws.owner.user_id is not None
        made = await create_token(
            Ctx(runtime.db, ws.owner, runtime.bus),
            ws.owner.user_id,
            f"mcp-{secrets.token_hex(4)}",
            None,
        )
        _tokens[key] = made.token
    return _tokens[key]


@asynccontextmanager
async def mcp(ws: Live) -> AsyncGenerator[Client]:
    token = await _owner_token(ws)
    url = f"{ws.server.url}/api/v1/chats/{ws.ctx.chat_id}/mcp"
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


def _text(result: Any) -> str:
    return str(getattr(result.content[0], "text", ""))


@pytest.mark.spec("wf.write")
async def test_write_file_over_mcp_takes_8_mb(ws: Live) -> None:
    content = "".join(f"row {i}, some text\n" for i in range(600_000))[: 8 * 1024 * 1024]
    async with mcp(ws) as client:
        written = await client.call_tool("write_file", {"path": "eight.txt", "content": content})
        assert not written.is_error, _text(written)
        assert cast(dict[str, Any], written.structured_content) == {"ok": True}
        assert (ws.project / "eight.txt").read_text() == content
        controls = "\x00\x1f" * (1024 * 1024)  # 2 MiB; 12 MiB of JSON
        escaped = await client.call_tool("write_file", {"path": "c.bin", "content": controls})
        assert not escaped.is_error, _text(escaped)
        assert (ws.project / "c.bin").read_bytes() == controls.encode()


@pytest.mark.spec("wf.write")
async def test_write_file_over_mcp_beyond_its_limit_is_a_tool_error(ws: Live) -> None:
    size = WRITE_FILE_MAX_BYTES + 1024
    async with mcp(ws) as client:
        over = await client.call_tool("write_file", {"path": "over.txt", "content": "y" * size})
    assert over.is_error
    assert _text(over) == (
        f"content must be <= {WRITE_FILE_MAX_BYTES} bytes (32 MiB), got {size} bytes"
    )
    assert not (ws.project / "over.txt").exists()


@pytest.mark.spec("rf.file")
async def test_read_file_over_mcp_of_a_2_mb_line_is_under_1_mb(ws: Live) -> None:
    (ws.project / "line.txt").write_text("z" * (2 * 1024 * 1024))
    async with mcp(ws) as client:
        result = await client.call_tool("read_file", {"path": "line.txt"})
    assert not result.is_error
    assert len(_text(result).encode()) < 1024 * 1024
    page = cast(dict[str, Any], result.structured_content)
    assert len(page["content"]) <= READ_FILE_MAX_BYTES
    assert page["next_byte_offset"] == READ_FILE_MAX_BYTES - 3  # after "1\t" as JSON
    assert "byte_offset=" in page["note"]


# What a JSON client can send: any text but lone surrogates.
TEXT = st.text(max_size=40)
ARGUMENTS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "read_file": st.fixed_dictionaries(
        {"path": st.one_of(TEXT, st.just("a/" * 2000), st.just("a\0b"))},
        optional={"offset": st.integers(-(2**64), 2**64), "byte_offset": st.integers(-5, 10)},
    ),
    "write_file": st.fixed_dictionaries(
        {"path": TEXT.map(lambda t: "m/" + t.replace("..", "__")), "content": TEXT}
    ),
    "edit_files": st.fixed_dictionaries(
        {
            "edits": st.lists(
                st.fixed_dictionaries(
                    {"path": TEXT.map(lambda t: "m/" + t), "old_text": TEXT, "new_text": TEXT}
                ),
                max_size=3,
            )
        }
    ),
    "execute": st.fixed_dictionaries(
        {"command": st.sampled_from(["true", "echo a\0b", "", "exit 2"])},
        optional={"workdir": TEXT, "timeout": TEXT},
    ),
    "process_output": st.fixed_dictionaries({"process_id": TEXT}, optional={"wait_timeout": TEXT}),
    "process_signal": st.fixed_dictionaries({"process_id": TEXT, "signal": TEXT}),
    "process_list": st.just({}),
}


CALL = st.sampled_from(sorted(ARGUMENTS)).flatmap(
    lambda tool: st.tuples(st.just(tool), ARGUMENTS[tool])
)


@settings(
    max_examples=3,  # of 15 calls each, at once on one client
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(calls=st.lists(CALL, min_size=15, max_size=15))
async def test_random_arguments_over_mcp_are_tool_results(
    ws: Live, calls: list[tuple[str, dict[str, Any]]]
) -> None:
    """No protocol error, no server error, no internal error; the agent stays. The
    calls of an example run concurrently, as a chat's parallel tool calls do."""
    texts: dict[int, str] = {}

    async def one(client: Client, index: int, tool: str, arguments: dict[str, Any]) -> None:
        texts[index] = _text(await client.call_tool(tool, arguments))

    async with mcp(ws) as client, anyio.create_task_group() as group:
        for index, (tool, arguments) in enumerate(calls):
            group.start_soon(one, client, index, tool, arguments)
    assert len(texts) == len(calls)
    for index, (tool, _) in enumerate(calls):
        assert "internal error" not in texts[index]
        assert not texts[index].startswith(f"{tool} failed:")
    assert ws.server.runtime.gateway.holds(ws.agent.id)
