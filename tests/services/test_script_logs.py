"""Agent script output as users read it: which agents' lines a workspace shows, the
cursor over them, who may read them, and the failed start script the tools name."""

from __future__ import annotations

import uuid

import pytest

from berth.clock import FakeClock
from berth.db.engine import Database
from berth.domain.actors import as_system
from berth.errors import NotFound
from berth.records import WorkspaceAgent
from berth.services import Ctx, agents, workspace_views
from berth.services.accounts import owner_actor
from tests.support.chats import Org, add_agent, add_template, add_workspace, make_org

pytestmark = pytest.mark.anyio


@pytest.fixture
async def org(db: Database, clock: FakeClock) -> Org:
    return await make_org(db, clock)


async def _scripts(org: Org, agent: WorkspaceAgent, *names: str) -> dict[str, uuid.UUID]:
    async with org.db.write(as_system()) as store:
        await store.insert_workspace_agent_scripts(
            [
                {
                    "agent_id": agent.id,
                    "display_name": name,
                    "run_on": "start",
                    "script": "true",
                    "blocks_login": True,
                    "timeout_seconds": 0,
                    "display_order": i,
                }
                for i, name in enumerate(names)
            ]
        )
        return {s.display_name: s.id for s in await store.list_workspace_agent_scripts(agent.id)}


async def _log(org: Org, agent: WorkspaceAgent, *lines: tuple[uuid.UUID | None, str, str]) -> None:
    async with org.db.write(as_system()) as store:
        await store.insert_workspace_agent_logs(agent.id, lines)


async def _owner_ctx(org: Org) -> Ctx:
    system = Ctx(org.db, as_system())
    return Ctx(org.db, await owner_actor(system, org.owner.id))


async def test_lines_of_all_agents_in_order_with_their_names_and_one_cursor(org: Org) -> None:
    template = await add_template(org, "dev")
    workspace = await add_workspace(org, template, "dev", owner=org.owner)
    main, side = await add_agent(org, workspace, "main"), await add_agent(org, workspace, "side")
    ids = await _scripts(org, main, "setup")
    await _log(org, main, (ids["setup"], "info", "one"))
    await _log(org, side, (None, "info", "side's own"))
    await _log(org, main, (ids["setup"], "error", "setup: exited with code 3"))
    ctx = await _owner_ctx(org)
    lines = await workspace_views.script_logs(ctx, workspace.id)
    assert [(x.agent, x.script, x.log.level, x.log.output) for x in lines] == [
        ("main", "setup", "info", "one"),
        ("side", None, "info", "side's own"),
        ("main", "setup", "error", "setup: exited with code 3"),
    ]
    later = await workspace_views.script_logs(ctx, workspace.id, after_id=lines[0].log.id)
    assert [x.log.output for x in later] == ["side's own", "setup: exited with code 3"]


async def test_after_a_stop_the_lines_are_those_of_the_last_start(org: Org) -> None:
    template = await add_template(org, "dev")
    workspace = await add_workspace(org, template, "dev", owner=org.owner)
    main = await add_agent(org, workspace, "main")
    await _log(org, main, (None, "info", "bye"))
    async with org.db.write(as_system()) as store:
        build = await store.get_latest_workspace_build_by_workspace_id(workspace.id)
        assert build is not None
        job = await store.insert_provisioner_job(
            type="workspace_build",
            organization_id=workspace.organization_id,
            initiator_id=org.owner.id,
            input={},
            priority=1,
        )
        await store.insert_workspace_build(
            workspace_id=workspace.id,
            build_number=2,
            transition="stop",
            template_version_id=build.template_version_id,
            preset_id=None,
            initiator_id=org.owner.id,
            reason="initiator",
            daily_cost=0,
            job_id=job.id,
            rendered={},
        )
    lines = await workspace_views.script_logs(await _owner_ctx(org), workspace.id)
    assert [(x.agent, x.log.output) for x in lines] == [("main", "bye")]


async def test_another_user_reads_no_lines(org: Org) -> None:
    template = await add_template(org, "dev")
    workspace = await add_workspace(org, template, "dev", owner=org.owner)
    await _log(org, await add_agent(org, workspace, "main"), (None, "info", "secret"))
    system = Ctx(org.db, as_system())
    other = Ctx(org.db, await owner_actor(system, org.other.id))
    with pytest.raises(NotFound):
        await workspace_views.script_logs(other, workspace.id)


async def test_the_failed_start_script_is_the_one_of_the_newest_error(org: Org) -> None:
    template = await add_template(org, "dev")
    workspace = await add_workspace(org, template, "dev")
    main = await add_agent(org, workspace, "main")
    system = Ctx(org.db, as_system())
    assert await agents.failed_start_script(system, main.id) is None, "no lines"
    ids = await _scripts(org, main, "deps", "setup")
    await _log(org, main, (ids["deps"], "info", "installed"))
    assert await agents.failed_start_script(system, main.id) is None, "no error"
    tail = [(ids["setup"], "info", f"line {i}") for i in range(8)]
    await _log(org, main, *tail, (ids["deps"], "info", "late output of deps"))
    await _log(org, main, (ids["setup"], "error", "setup: exited with code 3"))
    assert await agents.failed_start_script(system, main.id) == (
        "startup script 'setup' failed; its last lines:\n"
        "line 4\nline 5\nline 6\nline 7\nsetup: exited with code 3"
    )
