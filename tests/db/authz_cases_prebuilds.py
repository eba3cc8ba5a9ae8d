"""Authorization cases: prebuilt workspaces, the claim, prebuild failures and leases."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from berth.db.authz import AuthzStore
from berth.db.engine import Database
from berth.domain.actors import (
    PREBUILDS_USERNAME,
    as_agent_gateway,
    as_prebuilds_reconciler,
    as_system,
)
from berth.errors import Forbidden, NotFound
from berth.records import User, Workspace
from berth.services.accounts import add_user
from tests.db.authz_cases_workspaces import Built, alice_workspace
from tests.db.authz_world import World, as_, case, denied, uid


async def pool_owner(db: Database, w: World) -> User:
    """The ``prebuilds`` system user (the world has none), made once."""
    async with db.write(as_system()) as s:
        if (user := await s.get_user_by_username(PREBUILDS_USERNAME)) is not None:
            return user
        return await add_user(
            s, username=PREBUILDS_USERNAME, organization_id=w.org_a.id, is_system=True
        )


async def prebuild(db: Database, w: World, name: str = "pb-1") -> tuple[User, Built]:
    """A prebuilt workspace in org A, owned by the ``prebuilds`` user: one build of the
    world's preset, its job, a sandbox and an agent."""
    owner = await pool_owner(db, w)
    async with db.write(as_system()) as s:
        ws = await s.insert_workspace(
            owner_id=owner.id, organization_id=w.org_a.id, template_id=w.template.id,
            name=name, ttl_ms=None,
        )  # fmt: skip
        job = await s.insert_provisioner_job(
            type="workspace_build", organization_id=w.org_a.id, initiator_id=owner.id,
            input={}, priority=1,
        )  # fmt: skip
        build = await s.insert_workspace_build(
            workspace_id=ws.id, build_number=1, transition="start",
            template_version_id=w.version_id, preset_id=w.preset_id, initiator_id=owner.id,
            reason="prebuild", daily_cost=0, job_id=job.id, rendered={},
        )  # fmt: skip
        resource = await s.insert_workspace_resource(
            job_id=job.id, type="sandbox", name=name, handle={}
        )
        agent = await s.insert_workspace_agent(
            resource_id=resource.id, name="main", display_order=0, chat=True, external=False,
            directory="", env={}, auth_token_hash=name.encode().ljust(32, b"p"),
            connection_timeout_seconds=120,
        )  # fmt: skip
    return owner, Built(ws, build, job, agent, resource.id)


@case("list_prebuild_pools")
async def _(db: Database, w: World) -> None:
    async with db.write(as_system()) as s:
        # The world's preset asks for no prebuilds (None); add one that asks for two,
        # one that asks for none, and a pool in org B.
        pool = await s.insert_template_version_preset(
            template_version_id=w.version_id, name="pooled", description="", icon="",
            is_default=False, desired_prebuild_instances=2, parameters={},
        )  # fmt: skip
        await s.insert_template_version_preset(
            template_version_id=w.version_id, name="zero", description="", icon="",
            is_default=False, desired_prebuild_instances=0, parameters={},
        )  # fmt: skip
        tpl_b = await s.insert_template(
            organization_id=w.org_b.id, name="go", created_by=uid(w.bob)
        )
        version_b = await s.insert_template_version(
            template_id=tpl_b.id, name="v1", document={}, source="name: go\n", readme="",
            has_external_agent=False, created_by=uid(w.bob),
        )  # fmt: skip
        pool_b = await s.insert_template_version_preset(
            template_version_id=version_b.id, name="b", description="", icon="",
            is_default=True, desired_prebuild_instances=1, parameters={},
        )  # fmt: skip
        await s.update_template(tpl_b.id, active_version_id=version_b.id)

        both = await as_(s, as_prebuilds_reconciler()).list_prebuild_pools()
        assert [(p.preset_id, p.desired, p.template_id, p.organization_id) for p in both] == [
            (pool_b.id, 1, tpl_b.id, w.org_b.id),
            (pool.id, 2, w.template.id, w.org_a.id),
        ]
        assert both[1].template_version_id == w.version_id
        assert (both[1].template_name, both[1].preset_name) == ("py", "pooled")
        assert await as_(s, w.owner).list_prebuild_pools() == both
        # A member sees only the pools of templates they may read: their organization's.
        assert [p.preset_id for p in await as_(s, w.bob).list_prebuild_pools()] == [pool_b.id]
        assert [p.preset_id for p in await as_(s, w.alice).list_prebuild_pools()] == [pool.id]
        # A deleted template has no pool.
        await s.update_template(tpl_b.id, deleted=True)
        assert await as_(s, w.bob).list_prebuild_pools() == []
        assert await as_(s, as_prebuilds_reconciler()).list_prebuild_pools() == both[1:]


@case("list_workspace_states")
async def _(db: Database, w: World) -> None:
    owner, pb = await prebuild(db, w)
    mine = await alice_workspace(db, w)
    async with db.write(as_system()) as s:
        reconciler = as_(s, as_prebuilds_reconciler())
        (state,) = await reconciler.list_workspace_states(owner.id)
        assert (state.workspace, state.build, state.job) == (pb.workspace, pb.build, pb.job)
        assert state.agents == (pb.agent,)
        assert await as_(s, w.owner).list_workspace_states(owner.id) == [state]
        template_id = pb.workspace.template_id
        assert await reconciler.list_workspace_states(owner.id, template_id=template_id) == [state]
        assert await reconciler.list_workspace_states(owner.id, template_id=uuid.uuid4()) == []
        # A member sees none of the pool's workspaces, nor another member's.
        assert await as_(s, w.alice).list_workspace_states(owner.id) == []
        assert await as_(s, w.bob).list_workspace_states(uid(w.alice)) == []
        (own,) = await as_(s, w.alice).list_workspace_states(uid(w.alice))
        assert (own.workspace, own.build, own.agents) == (mine.workspace, mine.build, (mine.agent,))
        # The latest build counts, with its own job (and that job's agents: none yet).
        job = await s.insert_provisioner_job(
            type="workspace_build", organization_id=w.org_a.id, initiator_id=owner.id,
            input={}, priority=1,
        )  # fmt: skip
        build = await s.insert_workspace_build(
            workspace_id=pb.workspace.id, build_number=2, transition="stop",
            template_version_id=w.version_id, preset_id=w.preset_id, initiator_id=owner.id,
            reason="prebuild", daily_cost=0, job_id=job.id, rendered={},
        )  # fmt: skip
        (state,) = await reconciler.list_workspace_states(owner.id)
        assert (state.build, state.job, state.agents) == (build, job, ())
        # A deleted workspace is not in the pool.
        await s.update_workspace(pb.workspace.id, deleted=True)
        assert await reconciler.list_workspace_states(owner.id) == []


@case("lock_prebuilt_workspace")
async def _(db: Database, w: World) -> None:
    owner, pb = await prebuild(db, w)
    mine = await alice_workspace(db, w)
    async with db.write(as_system()) as s:
        reconciler = as_(s, as_prebuilds_reconciler())
        with pytest.raises(NotFound):
            await as_(s, w.alice).lock_prebuilt_workspace(pb.workspace.id, owner.id)
        with pytest.raises(NotFound):
            await as_(s, w.bob).lock_prebuilt_workspace(mine.workspace.id, uid(w.alice))
        locked = await reconciler.lock_prebuilt_workspace(pb.workspace.id, owner.id)
        assert locked == pb.workspace
        assert await as_(s, w.owner).lock_prebuilt_workspace(pb.workspace.id, owner.id) == locked
        # Only while the pool still owns it, and it is live.
        assert await reconciler.lock_prebuilt_workspace(mine.workspace.id, owner.id) is None
        await s.update_workspace(pb.workspace.id, deleted=True)
        assert await reconciler.lock_prebuilt_workspace(pb.workspace.id, owner.id) is None


async def _claim(
    store: AuthzStore, ws: Built, from_owner: uuid.UUID, owner: uuid.UUID, name: str
) -> Workspace | None:
    return await store.claim_prebuilt_workspace(
        ws.workspace.id, from_owner_id=from_owner, owner_id=owner, name=name, ttl_ms=60_000,
        deadline=ws.workspace.created_at + dt.timedelta(hours=8),
    )  # fmt: skip


@case("claim_prebuilt_workspace")
async def _(db: Database, w: World) -> None:
    pool, pb = await prebuild(db, w)
    _, pb2 = await prebuild(db, w, "pb-2")
    _, pb3 = await prebuild(db, w, "pb-3")
    theirs = await alice_workspace(db, w)  # a member's own workspace: not a prebuild
    async with db.write(as_system()) as s:
        alice, bob = as_(s, w.alice), as_(s, w.bob)
        tadmin_ws = await s.insert_workspace(
            owner_id=uid(w.tadmin), organization_id=w.org_a.id, template_id=w.template.id,
            name="t", ttl_ms=None,
        )  # fmt: skip
        tadmin_built = Built(tadmin_ws, theirs.build, theirs.job, theirs.agent, theirs.resource_id)
        # Outside its organization the prebuild is not there, for the caller or another.
        with pytest.raises(NotFound):
            await _claim(bob, pb, pool.id, uid(w.bob), "mine")
        with pytest.raises(NotFound):
            await _claim(bob, pb, pool.id, uid(w.alice), "mine")
        # A member may not claim for someone else.
        with pytest.raises(NotFound):
            await _claim(alice, pb, pool.id, uid(w.tadmin), "mine")
        # Nor take a workspace that is not the pool's: another member's, or their own.
        with pytest.raises(Forbidden):
            await _claim(alice, tadmin_built, uid(w.tadmin), uid(w.alice), "stolen")
        with pytest.raises(Forbidden):
            await _claim(alice, theirs, uid(w.alice), uid(w.alice), "renamed")
        # Naming the pool as the source does not take a workspace the pool does not own.
        assert await _claim(alice, tadmin_built, pool.id, uid(w.alice), "stolen") is None
        assert await s.get_workspace_by_id(tadmin_ws.id) == tadmin_ws
        assert await s.get_workspace_by_id(theirs.workspace.id) == theirs.workspace
        assert await s.get_workspace_by_id(pb.workspace.id) == pb.workspace

        claimed = await _claim(alice, pb, pool.id, uid(w.alice), "mine")
        assert claimed is not None
        assert (claimed.id, claimed.owner_id, claimed.name, claimed.ttl_ms, claimed.deadline) == (
            pb.workspace.id, uid(w.alice), "mine", 60_000,
            pb.workspace.created_at + dt.timedelta(hours=8),
        )  # fmt: skip
        assert claimed.last_used_at == db.clock.now()
        assert await s.get_workspace_by_id(pb.workspace.id) == claimed
        # Claimed once: the pool no longer holds it.
        assert await _claim(alice, pb, pool.id, uid(w.alice), "again") is None
        reconciler = as_(s, as_prebuilds_reconciler())
        left = await reconciler.list_workspace_states(pool.id)
        assert {x.workspace.id for x in left} == {pb2.workspace.id, pb3.workspace.id}
        # The reconciler and the site owner may claim for a member.
        claimed2 = await _claim(reconciler, pb2, pool.id, uid(w.tadmin), "t2")
        assert claimed2 is not None
        assert (claimed2.owner_id, claimed2.name) == (uid(w.tadmin), "t2")
        claimed3 = await _claim(as_(s, w.owner), pb3, pool.id, uid(w.alice), "mine-too")
        assert claimed3 is not None
        assert (claimed3.owner_id, claimed3.name) == (uid(w.alice), "mine-too")
        assert await reconciler.list_workspace_states(pool.id) == []


@case("move_workspace_resources")
async def _(db: Database, w: World) -> None:
    _, pb = await prebuild(db, w)
    async with db.write(as_system()) as s:
        claim_job = await s.insert_provisioner_job(
            type="workspace_build", organization_id=w.org_a.id, initiator_id=uid(w.alice),
            input={}, priority=1,
        )  # fmt: skip
        with pytest.raises(NotFound):
            await as_(s, w.alice).move_workspace_resources(pb.job.id, claim_job.id)
        assert [r.id for r in await s.list_workspace_resources_by_job(pb.job.id)] == [
            pb.resource_id
        ]
        reconciler = as_(s, as_prebuilds_reconciler())
        assert await reconciler.move_workspace_resources(pb.job.id, claim_job.id) == 1
        assert await s.list_workspace_resources_by_job(pb.job.id) == []
        assert [r.id for r in await s.list_workspace_resources_by_job(claim_job.id)] == [
            pb.resource_id
        ]
        # The agents go with their resources.
        assert [a.id for a in await s.list_workspace_agents_by_job(claim_job.id)] == [pb.agent.id]
        assert await reconciler.move_workspace_resources(pb.job.id, claim_job.id) == 0
        assert await as_(s, w.owner).move_workspace_resources(claim_job.id, pb.job.id) == 1


@case("personalize_workspace_agent")
async def _(db: Database, w: World) -> None:
    _, pb = await prebuild(db, w)
    now = db.clock.now()
    script = {"display_name": "s", "script": "true", "run_on": "start", "blocks_login": True,
              "timeout_seconds": 0, "display_order": 0}  # fmt: skip
    claim_script = {**script, "display_name": "c", "run_on": "claim"}
    async with db.write(as_system()) as s:
        gateway, reconciler = as_(s, as_agent_gateway()), as_(s, as_prebuilds_reconciler())
        await s.insert_workspace_agent_scripts([{"agent_id": pb.agent.id, **script}])
        # Before the claim, a report for the claimed manifest is stale.
        assert (
            await gateway.update_workspace_agent_lifecycle(pb.agent.id, "ready", claimed=True)
            is None
        )
        ready = await gateway.update_workspace_agent_lifecycle(pb.agent.id, "ready", claimed=False)
        assert ready is not None
        assert (ready.lifecycle_state, ready.ready_at) == ("ready", now)

        for member in (w.alice, w.bob):
            with pytest.raises(NotFound):
                await as_(s, member).personalize_workspace_agent(
                    pb.agent.id, directory="/x", env={}, scripts=[], claimed_at=now
                )
        assert await s.get_workspace_agent_by_id(pb.agent.id) == ready
        assert len(await s.list_workspace_agent_scripts(pb.agent.id)) == 1

        agent = await reconciler.personalize_workspace_agent(
            pb.agent.id, directory="/home/alice", env={"USER": "alice"},
            scripts=[script, {**claim_script, "display_order": 1}], claimed_at=now,
        )  # fmt: skip
        assert agent is not None
        assert (agent.directory, agent.env, agent.claimed_at) == (
            "/home/alice",
            {"USER": "alice"},
            now,
        )
        # Its lifecycle starts over.
        assert (agent.lifecycle_state, agent.started_at, agent.ready_at) == ("created", None, None)
        scripts = await s.list_workspace_agent_scripts(pb.agent.id)
        assert [(x.display_name, x.run_on) for x in scripts] == [("s", "start"), ("c", "claim")]

        # After the claim, a late report for the old manifest changes nothing...
        assert (
            await gateway.update_workspace_agent_lifecycle(pb.agent.id, "ready", claimed=False)
            is None
        )
        assert await s.get_workspace_agent_by_id(pb.agent.id) == agent
        # ...and one for the new manifest is recorded.
        starting = await gateway.update_workspace_agent_lifecycle(
            pb.agent.id, "starting", claimed=True
        )
        assert starting is not None
        assert (starting.lifecycle_state, starting.started_at) == ("starting", now)

        # The site owner may too; an empty script list removes them all.
        again = await as_(s, w.owner).personalize_workspace_agent(
            pb.agent.id, directory="", env={}, scripts=[], claimed_at=now
        )
        assert again is not None
        assert (again.directory, again.env) == ("", {})
        assert await s.list_workspace_agent_scripts(pb.agent.id) == []


@case("list_prebuild_failures", "set_prebuild_failure")
async def _(db: Database, w: World) -> None:
    now = db.clock.now()
    async with db.write(as_system()) as s:
        reconciler = as_(s, as_prebuilds_reconciler())
        for member in (w.alice, w.bob, w.tadmin):
            with pytest.raises(Forbidden):
                await as_(s, member).list_prebuild_failures()
            with pytest.raises(NotFound):
                await as_(s, member).set_prebuild_failure(
                    w.preset_id, count=1, last_error="boom", last_failed_at=now
                )
        assert await reconciler.list_prebuild_failures() == []
        await reconciler.set_prebuild_failure(
            w.preset_id, count=1, last_error="boom", last_failed_at=now
        )
        (failure,) = await reconciler.list_prebuild_failures()
        assert (failure.preset_id, failure.count, failure.last_error, failure.last_failed_at) == (
            w.preset_id, 1, "boom", now,
        )  # fmt: skip
        # Setting it again replaces it (the count is reset once a prebuild is ready).
        await reconciler.set_prebuild_failure(
            w.preset_id, count=0, last_error="boom", last_failed_at=None
        )
        (failure,) = await as_(s, w.owner).list_prebuild_failures()
        assert (failure.count, failure.last_error, failure.last_failed_at) == (0, "boom", None)
        await as_(s, w.owner).set_prebuild_failure(
            w.preset_id, count=3, last_error="bang", last_failed_at=now
        )
        assert [(f.count, f.last_error) for f in await reconciler.list_prebuild_failures()] == [
            (3, "bang")
        ]


@case("acquire_lease", "release_lease")
async def _(db: Database, w: World) -> None:
    now = db.clock.now()
    later, earlier = now + dt.timedelta(seconds=30), now - dt.timedelta(seconds=1)
    async with db.write(as_system()) as s:
        reconciler = as_(s, as_prebuilds_reconciler())
        for member in (w.alice, w.tadmin):
            with pytest.raises(NotFound):
                await as_(s, member).acquire_lease("prebuilds", "a", until=later)
            with pytest.raises(NotFound):
                await as_(s, member).release_lease("prebuilds", "a")
        assert await reconciler.acquire_lease("prebuilds", "a", until=later) is True
        assert await reconciler.acquire_lease("prebuilds", "b", until=later) is False
        # Another lease is another name.
        assert await reconciler.acquire_lease("other", "b", until=later) is True
        # The holder renews it, here into the past: it lapses.
        assert await reconciler.acquire_lease("prebuilds", "a", until=earlier) is True
        assert await reconciler.acquire_lease("prebuilds", "b", until=later) is True
        assert await reconciler.acquire_lease("prebuilds", "a", until=later) is False
        # Only the holder releases it.
        await reconciler.release_lease("prebuilds", "a")
        assert await reconciler.acquire_lease("prebuilds", "a", until=later) is False
        await as_(s, w.owner).release_lease("prebuilds", "b")
        assert await as_(s, w.owner).acquire_lease("prebuilds", "a", until=later) is True
        await denied(as_(s, w.bob).acquire_lease("prebuilds", "b", until=earlier))
        assert await reconciler.acquire_lease("prebuilds", "b", until=later) is False
