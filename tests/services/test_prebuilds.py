"""Prebuilds (DESIGN §10): the reconciler and the claim, on real databases.

Builds run on the fake backend; the agents' reports are made as a connected agent
makes them (:class:`~berth.services.agents.AgentReports`), so a prebuild becomes ready
exactly as it does with a real agent — the real agent's side is in
``tests/provisioner/test_prebuilds_e2e.py``. The clock is the test's. Each test runs
on SQLite and Postgres.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from berth.clock import FakeClock
from berth.db.engine import Database
from berth.domain.actors import PREBUILDS_USERNAME, as_prebuilds_reconciler, as_system
from berth.domain.enums import BuildReason, JobStatus, Transition
from berth.errors import Forbidden
from berth.records import WorkspaceAgent
from berth.services import prebuild_pool, quotas, templates, workspaces
from berth.services.agents import AgentReports, manifest_generation
from berth.services.prebuilds import Reconciler
from tests.support.workspaces import World, fake_template, open_world

pytestmark = pytest.mark.anyio

SECOND = dt.timedelta(seconds=1)


def warm(instances: int = 2, **fields: Any) -> dict[str, Any]:
    """A fake-backend template whose preset ``fast`` keeps ``instances`` prebuilds."""
    return fake_template(
        "warm",
        parameters=[{"name": "size", "type": "string", "default": "small"}],
        presets=[
            {
                "name": "fast",
                "parameters": {"size": "small"},
                "prebuilds": {"instances": instances},
            }
        ],
        agents=[
            {
                "name": "main",
                "chat": True,
                "env": {"OWNER": "{{ owner.username }}", "WS": "{{ workspace.name }}"},
                "scripts": [
                    {
                        "display_name": "hello",
                        "run_on": "claim",
                        "script": "echo {{ owner.username }}",
                    }
                ],
            }
        ],
        **fields,
    )


@pytest.fixture
async def world(db: Database, tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(db, tmp_path / "state") as w:
        yield w


def reconciler(world: World, holder: str = "replica-a") -> Reconciler:
    return Reconciler(world.admin, holder=holder, interval=15.0, site_max=100)


async def pool_owner_id(world: World) -> uuid.UUID:
    async with world.db.read(as_system()) as store:
        user = await store.get_user_by_username(PREBUILDS_USERNAME)
    assert user is not None
    return user.id


async def prebuilds(world: World) -> list[Any]:
    async with world.db.read(as_system()) as store:
        return await store.list_workspace_states(await pool_owner_id(world))


async def build_all(world: World) -> None:
    """Run every queued build to its end."""
    while await world.run_one():
        pass


async def report(world: World, agent: WorkspaceAgent, state: str) -> None:
    """What a connected agent reports: connected, then ``state`` for its generation."""
    reports = AgentReports(world.admin, agent.id, None)
    await reports.connected()
    await reports.lifecycle(state, manifest_generation(agent))


async def ready_pool(world: World, instances: int = 2) -> list[Any]:
    """Push ``warm``, reconcile, build and report every agent ready."""
    await world.push(warm(instances))
    await reconciler(world).reconcile_once()
    await build_all(world)
    states = await prebuilds(world)
    for state in states:
        for agent in state.agents:
            await report(world, agent, "ready")
    return await prebuilds(world)


async def preset_id(world: World) -> str:
    async with world.db.read(as_system()) as store:
        tpl = await store.get_template_by_organization_and_name(world.organization_id, "warm")
        assert tpl is not None
        assert tpl.active_version_id is not None
        (preset,) = await store.list_template_version_presets(tpl.active_version_id)
    return str(preset.id)


async def test_the_reconciler_keeps_the_pool_at_the_presets_instances(world: World) -> None:
    await world.push(warm(2))
    cycle = reconciler(world)
    await cycle.reconcile_once()
    states = await prebuilds(world)
    assert len(states) == 2
    for state in states:
        assert (state.build.reason, state.job.priority) == ("prebuild", 0)
        assert str(state.build.preset_id) == await preset_id(world)
        assert state.workspace.ttl_ms in (None, 0)  # a prebuild never stops by itself
    # Building ones count: a second cycle makes no more.
    await cycle.reconcile_once()
    assert len(await prebuilds(world)) == 2
    await build_all(world)
    for state in await prebuilds(world):
        await report(world, state.agents[0], "ready")
    status = await prebuild_pool.pool_status(world.admin)
    assert [(r.ready, r.status, r.preset_name) for r in status.prebuilds] == [
        (True, "running", "fast"),
        (True, "running", "fast"),
    ]
    (preset,) = status.presets
    assert (preset.desired, preset.actual, preset.ready, preset.failures) == (2, 2, 2, 0)


@pytest.mark.spec("cw.prebuild")
async def test_a_claim_moves_a_ready_prebuild_to_its_new_owner(world: World) -> None:
    pool = await ready_pool(world)
    chosen = {s.workspace.id for s in pool}
    started = await workspaces.create_workspace(
        world.admin, template="warm", name="mine", preset_ref=await preset_id(world), ttl_ms=60_000
    )
    assert started.workspace.id in chosen
    assert (started.workspace.owner_id, started.workspace.name) == (world.admin_user.id, "mine")
    assert (started.build.reason, started.build.transition) == ("claim", "start")
    assert started.build.build_number == 2
    assert started.job.status == JobStatus.SUCCEEDED
    assert started.workspace.deadline is not None
    assert started.workspace.deadline - world.db.clock.now() == dt.timedelta(minutes=1)
    async with world.db.read(as_system()) as store:
        (agent,) = await store.list_workspace_agents_by_job(started.job.id)
        scripts = await store.list_workspace_agent_scripts(agent.id)
    # Rendered again for the new owner and name; its lifecycle starts over.
    assert agent.env == {"OWNER": "admin", "WS": "mine"}
    assert [(s.run_on, s.script) for s in scripts] == [("claim", "echo admin")]
    assert agent.claimed_at is not None
    assert agent.lifecycle_state == "created"
    # The old manifest's late "ready" is stale; the new one's counts.
    reports = AgentReports(world.admin, agent.id, None)
    await reports.lifecycle("ready", str(agent.id))
    async with world.db.read(as_system()) as store:
        assert (await store.get_workspace_agent_by_id(agent.id)).lifecycle_state == "created"  # type: ignore[union-attr]
    await reports.lifecycle("ready", manifest_generation(agent))
    async with world.db.read(as_system()) as store:
        assert (await store.get_workspace_agent_by_id(agent.id)).lifecycle_state == "ready"  # type: ignore[union-attr]
    # The pool builds a replacement, not the claimed one.
    await reconciler(world).reconcile_once()
    left = await prebuilds(world)
    assert len(left) == 2
    assert started.workspace.id not in {s.workspace.id for s in left}


@pytest.mark.spec("cw.prebuild")
async def test_parameters_that_differ_from_the_preset_build_a_new_workspace(
    world: World,
) -> None:
    pool = await ready_pool(world)
    started = await workspaces.create_workspace(
        world.admin,
        template="warm",
        name="mine",
        preset_ref=await preset_id(world),
        parameters={"size": "large"},
    )
    assert started.workspace.id not in {s.workspace.id for s in pool}
    assert (started.build.reason, started.job.status) == ("initiator", JobStatus.PENDING)
    async with world.db.read(as_system()) as store:
        params = await store.list_workspace_build_parameters(started.build.id)
    assert {p.name: p.value for p in params} == {"size": "large"}
    # The same value as the preset's is no difference: that one claims.
    same = await workspaces.create_workspace(
        world.admin,
        template="warm",
        name="mine2",
        preset_ref=await preset_id(world),
        parameters={"size": "small"},
    )
    assert same.build.reason == "claim"


@pytest.mark.spec("cw.prebuild")
async def test_a_prebuild_whose_agent_never_connects_is_not_claimed_and_is_replaced(
    world: World, clock: FakeClock
) -> None:
    await world.push(warm(1))
    cycle = reconciler(world)
    await cycle.reconcile_once()
    await build_all(world)  # built, but its agent never connects
    started = await workspaces.create_workspace(
        world.admin, template="warm", name="mine", preset_ref=await preset_id(world)
    )
    assert started.build.reason == "initiator"
    clock.advance(dt.timedelta(minutes=2) + SECOND)  # the agent's connection_timeout
    await cycle.reconcile_once()
    (state,) = await prebuilds(world)
    assert state.build.transition == "delete"
    (preset,) = (await prebuild_pool.pool_status(world.admin)).presets
    assert (preset.failures, preset.last_error) == (1, "agent 'main' never connected")


async def test_a_prebuild_being_deleted_is_not_claimed(world: World) -> None:
    (state,) = await ready_pool(world, instances=1)
    await workspaces.transition_workspace(
        world.admin.acting_as(as_prebuilds_reconciler()),
        state.workspace.id,
        Transition.DELETE,
        reason=BuildReason.PREBUILD,
    )
    started = await workspaces.create_workspace(
        world.admin, template="warm", name="mine", preset_ref=await preset_id(world)
    )
    assert started.build.reason == "initiator"
    assert started.workspace.id != state.workspace.id


async def test_a_new_version_replaces_the_pool_and_leaves_claimed_workspaces(
    world: World,
) -> None:
    await ready_pool(world)
    claimed = await workspaces.create_workspace(
        world.admin, template="warm", name="mine", preset_ref=await preset_id(world)
    )
    await reconciler(world).reconcile_once()
    await build_all(world)
    old = {s.workspace.id for s in await prebuilds(world)}
    await world.push(warm(2, description="version two"))
    await reconciler(world).reconcile_once()
    states = await prebuilds(world)
    deleting = [s for s in states if s.workspace.id in old]
    assert {s.build.transition for s in deleting} == {"delete"}
    await build_all(world)
    states = await prebuilds(world)
    new_version = await preset_id(world)
    assert len(states) == 2
    assert {str(s.build.preset_id) for s in states} == {new_version}
    assert not old & {s.workspace.id for s in states}
    mine = await world.workspace(claimed.workspace.id)
    assert (mine.owner_id, mine.deleted) == (world.admin_user.id, False)


async def test_a_failing_preset_backs_off_instead_of_building_in_a_loop(
    world: World, clock: FakeClock
) -> None:
    await world.push(warm(1))
    cycle = reconciler(world)

    async def fail_the_prebuild() -> float:
        await cycle.reconcile_once()
        await build_all(world)
        (state,) = [s for s in await prebuilds(world) if s.build.transition == "start"]
        await report(world, state.agents[0], "start_error")
        return await cycle.reconcile_once()

    delay = await fail_the_prebuild()
    (preset,) = (await prebuild_pool.pool_status(world.admin)).presets
    assert (preset.failures, preset.last_error) == (1, "agent 'main': start_error")
    assert preset.retry_at == clock.now() + 10 * SECOND
    assert delay == pytest.approx(10.0)
    await build_all(world)  # the delete
    # Within the backoff, no new prebuild.
    clock.advance(9 * SECOND)
    await cycle.reconcile_once()
    assert await prebuilds(world) == []
    clock.advance(SECOND)
    await fail_the_prebuild()
    (preset,) = (await prebuild_pool.pool_status(world.admin)).presets
    assert preset.failures == 2
    assert preset.retry_at == clock.now() + 20 * SECOND
    # Once a prebuild is ready again, the count starts over (the error stays on show).
    await build_all(world)
    clock.advance(20 * SECOND)
    await cycle.reconcile_once()
    await build_all(world)
    (state,) = await prebuilds(world)
    await report(world, state.agents[0], "ready")
    await cycle.reconcile_once()
    (preset,) = (await prebuild_pool.pool_status(world.admin)).presets
    assert (preset.failures, preset.retry_at, preset.ready) == (0, None, 1)
    assert preset.last_error == "agent 'main': start_error"


async def test_one_replica_reconciles_at_a_time(world: World, clock: FakeClock) -> None:
    await world.push(warm(1))
    first, second = reconciler(world, "replica-a"), reconciler(world, "replica-b")
    await second.reconcile_once()  # b holds the lease from now on
    await build_all(world)
    (state,) = await prebuilds(world)
    await report(world, state.agents[0], "start_error")
    await first.reconcile_once()
    assert (await prebuilds(world))[0].build.transition == "start"  # a did nothing
    clock.advance(dt.timedelta(seconds=45) + SECOND)  # b's lease lapsed
    await first.reconcile_once()
    assert (await prebuilds(world))[0].build.transition == "delete"


async def test_paused_reconciliation_changes_nothing(world: World) -> None:
    await world.push(warm(2))
    status = await prebuild_pool.set_paused(world.admin, True)
    assert status.paused
    await reconciler(world).reconcile_once()
    assert await prebuilds(world) == []
    assert not (await prebuild_pool.set_paused(world.admin, False)).paused
    await reconciler(world).reconcile_once()
    assert len(await prebuilds(world)) == 2


async def test_only_site_owners_see_the_pool(world: World) -> None:
    member = await world.add_member("bob")
    with pytest.raises(Forbidden, match="only site owners may see the prebuild pool"):
        await prebuild_pool.pool_status(member)
    with pytest.raises(Forbidden, match="only site owners may pause or resume"):
        await prebuild_pool.set_paused(member, True)


@pytest.mark.spec("cw.prebuild")
async def test_concurrent_claims_never_share_a_prebuild(world: World) -> None:
    pool = await ready_pool(world, instances=4)
    preset = await preset_id(world)
    users = [await world.add_member(f"u{i}") for i in range(10)]
    # Members may use the template (it is in their organization).
    results = await asyncio.gather(
        *(
            workspaces.create_workspace(user, template="warm", name="mine", preset_ref=preset)
            for user in users
        )
    )
    claims = [r for r in results if r.build.reason == "claim"]
    built = [r for r in results if r.build.reason == "initiator"]
    assert len(claims) == 4
    assert len(built) == 6
    assert {c.workspace.id for c in claims} == {s.workspace.id for s in pool}
    assert len({c.workspace.owner_id for c in claims}) == 4


async def test_a_template_with_a_pool_can_be_deleted_and_its_prebuilds_go_with_it(
    world: World,
) -> None:
    await ready_pool(world)
    async with world.db.read(as_system()) as store:
        tpl = await store.get_template_by_organization_and_name(world.organization_id, "warm")
    assert tpl is not None
    await templates.delete_template(world.admin, tpl)  # prebuilds hold no template up
    await reconciler(world).reconcile_once()
    assert {s.build.transition for s in await prebuilds(world)} == {"delete"}
    await build_all(world)
    assert await prebuilds(world) == []


async def test_prebuilds_count_against_no_quota_and_a_claim_against_the_claimers(
    world: World,
) -> None:
    await quotas.set_quota_allowance(world.admin, "Everyone", None, 1)  # one workspace a day
    pool = await ready_pool(world)  # two prebuilds that cost 1 each: both built
    assert [s.job.status for s in pool] == [JobStatus.SUCCEEDED, JobStatus.SUCCEEDED]
    preset = await preset_id(world)
    first = await workspaces.create_workspace(
        world.admin, template="warm", name="one", preset_ref=preset
    )
    assert first.build.reason == "claim"
    # The second would exceed the admin's budget: no claim; the build that follows
    # fails as any over-quota build does.
    second = await workspaces.create_workspace(
        world.admin, template="warm", name="two", preset_ref=preset
    )
    assert second.build.reason == "initiator"
    await build_all(world)
    job = await world.job(second.job.id)
    assert (job.status, job.error_code) == (JobStatus.FAILED, "INSUFFICIENT_QUOTA")
