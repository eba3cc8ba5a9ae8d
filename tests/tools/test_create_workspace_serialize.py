"""[cw.serialize] create/start/stop of one chat run one at a time, across processes.

The lease is a row lock on the chat (``chats.lock_holder``): parallel calls in one
process, and calls from two processes (two ``Database`` engines, two event buses, one
database), must still create exactly one workspace.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

from berth.db.engine import Database, create_engine
from berth.events import InProcessBus
from berth.tools.context import ChatContext
from berth.tools.registry import call_tool
from tests.support.timings import WAIT
from tests.support.tool_results import background, finished, result_of
from tests.support.tools import World

pytestmark = pytest.mark.anyio

CALLS = 6


async def create_in_parallel(contexts: list[ChatContext], template_id: str) -> list[dict[str, Any]]:
    """One create_workspace per context, all at once; each asks for its own name."""
    with anyio.fail_after(WAIT):
        results = await asyncio.gather(
            *(
                call_tool(ctx, "create_workspace", {"template_id": template_id, "name": f"ws-{i}"})
                for i, ctx in enumerate(contexts)
            )
        )
    return [result_of(r) for r in results]


async def assert_one_workspace(world: World, results: list[dict[str, Any]]) -> None:
    [workspace] = await world.workspaces()
    created = [r for r in results if r["created"]]
    assert len(created) == 1, results
    assert created[0]["workspace_name"] == f"alice/{workspace.name}"
    for result in results:
        if not result["created"]:
            assert result["workspace_name"] == workspace.name
            assert result["status"] == "already_exists"
    chat = await world.chat()
    assert chat.workspace_id == workspace.id
    assert chat.lock_holder is None, "the lease is released after the calls"
    assert len(world.fake.applies) == 1


@pytest.mark.spec("cw.serialize")
async def test_parallel_calls_create_one_workspace(world: World) -> None:
    template = await world.template()
    results = await create_in_parallel([world.ctx() for _ in range(CALLS)], str(template.id))
    await assert_one_workspace(world, results)


@pytest.mark.spec("cw.serialize")
async def test_parallel_calls_while_the_build_is_slow(world: World) -> None:
    """The first call holds the lease through its whole build; the others wait for it."""
    template = await world.template(fake={"hang": True})
    calls = [world.ctx() for _ in range(CALLS)]
    async with background(create_in_parallel(calls, str(template.id))) as parallel:
        await world.wait_hanging()
        assert (await world.chat()).lock_holder is not None
        world.fake.release()
        results = await finished(parallel)
    await assert_one_workspace(world, results)


@pytest.mark.spec("cw.serialize")
async def test_two_server_processes_create_one_workspace(world: World, database_url: str) -> None:
    """A second engine and a bus of its own: it shares nothing with the first but the database."""
    other_db = Database(create_engine(database_url), clock=world.clock)
    other_bus = InProcessBus()
    await other_bus.start()
    try:
        template = await world.template()
        contexts = [
            world.ctx() if i % 2 == 0 else world.ctx(db=other_db, bus=other_bus)
            for i in range(CALLS)
        ]
        results = await create_in_parallel(contexts, str(template.id))
        await assert_one_workspace(world, results)
    finally:
        await other_bus.close()
        await other_db.dispose()


@pytest.mark.spec("cw.serialize", "cw.existing.stopped", "stw.flow")
async def test_create_waits_for_a_stop_in_progress(world: World) -> None:
    """While stop_workspace holds the lease, create_workspace waits, then sees the result."""
    template = await world.template(fake={"stop": {"hang": True}})
    await world.running_workspace(template, "home")
    async with background(world.call("stop_workspace")) as stop:
        await world.wait_hanging()
        async with background(world.create(template_id=str(template.id))) as create:
            with anyio.move_on_after(0.5):
                await asyncio.shield(create)
            assert not create.done(), "create ran while stop_workspace held the lease"
            world.fake.release()
            stopped = result_of(await finished(stop))
            created = result_of(await finished(create))
    assert stopped["stopped"] is True
    assert created == {
        "created": False,
        "workspace_name": "home",
        "status": "stopped",
        "message": "workspace is stopped; use start_workspace to start it",
    }
