"""What the relay costs: tool calls through the replica holding the agent, and through
the other one (DESIGN §7: "a tool answers the same on any replica").

Two servers share a fresh Postgres database (``--admin-url``, default the local
``postgres`` superuser). The workspace is created while only the first runs, so its
agent is held by the first; then the second starts. Each measured call goes over one
kept-alive MCP session per replica: ``process_list`` (no work in the workspace) and
``execute true``. The floor is the same call through the holder, in the same run.

    uv run python bench/bench_relay.py --runs 50
"""

# ruff: noqa: ASYNC212

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import AsyncGenerator
from pathlib import Path

import httpx
import sqlalchemy as sa
from _bench import ISOLATION, destroy_sandboxes, percentile, session, timed_calls
from mcp import Client

from berth.api.server import RunningServer, running_server
from berth.db.engine import create_engine
from berth.settings import Settings, async_database_url

TEMPLATE = f"""\
name: bench-relay
backend:
  type: local
  isolation: {ISOLATION}
agents:
  - name: main
    chat: true
"""


@contextlib.asynccontextmanager
async def fresh_database(admin_url: str) -> AsyncGenerator[str]:
    name = f"berth_bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(async_database_url(admin_url))
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await engine.dispose()


async def timed(client: Client, tool: str, arguments: dict[str, object], runs: int) -> list[float]:
    await client.call_tool(tool, arguments)  # warm: connections, the relay's keep-alive
    return await timed_calls(client, tool, arguments, runs)


def settings(data_dir: Path, database_url: str) -> Settings:
    return Settings(data_dir=data_dir, database_url=database_url, address="127.0.0.1:0")


async def main(runs: int, admin_url: str) -> None:
    async with fresh_database(admin_url) as database_url:
        await run(database_url, runs)


async def run(database_url: str, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        try:
            with running_server(settings(root / "a", database_url)) as a:
                assert a.runtime.bootstrapped is not None
                token = a.runtime.bootstrapped.token
                chat_id = await create_workspace(a, token)
                with running_server(settings(root / "b", database_url)) as b:
                    await measure(a, b, token, chat_id, runs)
        finally:
            for name in ("a", "b"):
                await destroy_sandboxes(root / name)


async def create_workspace(a: RunningServer, token: str) -> str:
    api = httpx.Client(
        base_url=f"{a.url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=120
    )
    pushed = api.post("/templates", json={"files": {"template.yaml": TEMPLATE}})
    pushed.raise_for_status()
    template_id = pushed.json()["template"]["id"]
    chat_id = str(api.post("/chats", json={}).json()["id"])

    async with session(a.url, token, chat_id) as client:
        result = await client.call_tool("create_workspace", {"template_id": template_id})
        assert not result.is_error, result.content
    return chat_id


async def measure(a: RunningServer, b: RunningServer, token: str, chat_id: str, runs: int) -> None:
    print(f"relay: {runs} calls each, agent held by replica A ({ISOLATION})")
    calls: list[tuple[str, dict[str, object]]] = [
        ("process_list", {}),
        ("execute", {"command": "true"}),
    ]
    for tool, arguments in calls:
        async with session(a.url, token, chat_id) as here, session(b.url, token, chat_id) as there:
            direct = await timed(here, tool, arguments, runs)
            relayed = await timed(there, tool, arguments, runs)
        d50, r50 = percentile(direct, 50) * 1000, percentile(relayed, 50) * 1000
        d99, r99 = percentile(direct, 99) * 1000, percentile(relayed, 99) * 1000
        print(
            f"  {tool + ' ' + str(arguments.get('command', '')):20}"
            f" holder p50 {d50:6.1f} ms p99 {d99:6.1f} ms | other replica p50 {r50:6.1f} ms"
            f" p99 {r99:6.1f} ms | ratio p50 {r50 / d50:4.2f}x, +{r50 - d50:.1f} ms"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="What the relay costs per tool call.")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.admin_url))
