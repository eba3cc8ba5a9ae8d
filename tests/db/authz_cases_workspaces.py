"""Authorization cases: workspaces, builds, jobs, resources, agents and quotas."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from berth.db.engine import Database
from berth.domain.actors import (
    as_agent_gateway,
    as_authenticator,
    as_autostop,
    as_chat_tools,
    as_provisioner,
    as_system,
)
from berth.errors import Forbidden, NotFound
from berth.records import ProvisionerJob, Workspace, WorkspaceAgent, WorkspaceBuild
from tests.db.authz_world import World, as_, case, denied, uid


@dataclass
class Built:
    workspace: Workspace
    build: WorkspaceBuild
    job: ProvisionerJob
    agent: WorkspaceAgent
    resource_id: uuid.UUID


async def alice_workspace(db: Database, w: World) -> Built:
    """Alice's workspace in org A with one build, its job, a sandbox and an agent."""
    async with db.write(as_system()) as s:
        ws = await s.insert_workspace(
            owner_id=uid(w.alice), organization_id=w.org_a.id, template_id=w.template.id,
            name="dev", ttl_ms=None,
        )  # fmt: skip
        job = await s.insert_provisioner_job(
            type="workspace_build", organization_id=w.org_a.id, initiator_id=uid(w.alice),
            input={}, priority=1,
        )  # fmt: skip
        build = await s.insert_workspace_build(
            workspace_id=ws.id, build_number=1, transition="start",
            template_version_id=w.version_id, preset_id=None, initiator_id=uid(w.alice),
            reason="initiator", daily_cost=1, job_id=job.id, rendered={},
        )  # fmt: skip
        resource = await s.insert_workspace_resource(
            job_id=job.id, type="sandbox", name="dev", handle={}
        )
        agent = await s.insert_workspace_agent(
            resource_id=resource.id, name="main", display_order=0, chat=True, external=False,
            directory="", env={}, auth_token_hash=b"t" * 32, connection_timeout_seconds=120,
        )  # fmt: skip
    return Built(ws, build, job, agent, resource.id)


@case("insert_workspace", "list_workspaces")
async def _(db: Database, w: World) -> None:
    async with db.write(as_system()) as s:
        kw: dict[str, Any] = {"template_id": w.template.id, "name": "x", "ttl_ms": None}
        await denied(
            as_(s, w.bob).insert_workspace(owner_id=uid(w.alice), organization_id=w.org_a.id, **kw)
        )
        await denied(
            as_(s, w.bob).insert_workspace(owner_id=uid(w.bob), organization_id=w.org_a.id, **kw)
        )
        await as_(s, w.alice).insert_workspace(
            owner_id=uid(w.alice), organization_id=w.org_a.id, **kw
        )
        assert await as_(s, w.bob).list_workspaces() == []
        assert [x.name for x in await as_(s, w.alice).list_workspaces()] == ["x"]


@case("list_workspaces_due", "get_next_workspace_deadline")
async def _(db: Database, w: World) -> None:
    b = await alice_workspace(db, w)
    now = db.clock.now()
    async with db.write(as_system()) as s:
        await s.update_workspace(b.workspace.id, deadline=now + dt.timedelta(minutes=1))
        assert await as_(s, as_autostop()).get_next_workspace_deadline(now) == now + dt.timedelta(
            minutes=1
        )
        await denied(as_(s, w.alice).get_next_workspace_deadline(now))
        await s.update_workspace(b.workspace.id, deadline=now)
        assert [x.id for x in await as_(s, as_autostop()).list_workspaces_due(now)] == [
            b.workspace.id
        ]
        assert [x.id for x in await as_(s, w.alice).list_workspaces_due(now)] == [b.workspace.id]
        assert await as_(s, w.bob).list_workspaces_due(now) == []
        assert await as_(s, as_autostop()).get_next_workspace_deadline(now) is None


@case("get_workspace_by_id", "get_workspace_by_owner_and_name", "update_workspace")
async def _(db: Database, w: World) -> None:
    b = await alice_workspace(db, w)
    async with db.write(as_system()) as s:
        bob = as_(s, w.bob)
        assert await bob.get_workspace_by_id(b.workspace.id) is None
        assert await bob.get_workspace_by_owner_and_name(uid(w.alice), "dev") is None
        with pytest.raises(NotFound):
            await bob.update_workspace(b.workspace.id, ttl_ms=5)
        assert (await as_(s, as_chat_tools()).get_workspace_by_id(b.workspace.id)) is not None
        with pytest.raises(Forbidden):
            await as_(s, as_chat_tools()).update_workspace(b.workspace.id, ttl_ms=5)
        updated = await as_(s, w.alice).update_workspace(b.workspace.id, ttl_ms=5)
        assert updated is not None
        assert updated.ttl_ms == 5


@case(
    "insert_workspace_build",
    "get_workspace_build_by_id",
    "get_workspace_build_by_job_id",
    "get_latest_workspace_build_by_workspace_id",
    "list_workspace_builds",
)
async def _(db: Database, w: World) -> None:
    b = await alice_workspace(db, w)
    async with db.write(as_system()) as s:
        bob, alice = as_(s, w.bob), as_(s, w.alice)
        assert await bob.get_workspace_build_by_id(b.build.id) is None
        assert await bob.get_workspace_build_by_job_id(b.job.id) is None
        assert await bob.get_latest_workspace_build_by_workspace_id(b.workspace.id) is None
        # and the read of all of it at once (AuthzStore only): one check, the same answer
        assert await bob.get_workspace_with_latest_build(b.workspace.id) is None
        latest = await alice.get_workspace_with_latest_build(b.workspace.id)
        assert latest is not None
        assert (latest.workspace.id, latest.build, latest.job) == (b.workspace.id, b.build, b.job)
        assert [a.id for a in latest.agents] == [b.agent.id]
        assert await bob.list_workspace_builds(b.workspace.id) == []
        await denied(
            bob.insert_workspace_build(
                workspace_id=b.workspace.id, build_number=2, transition="stop",
                template_version_id=w.version_id, preset_id=None, initiator_id=uid(w.bob),
                reason="initiator", daily_cost=0, job_id=b.job.id, rendered=None,
            )
        )  # fmt: skip
        assert await alice.get_workspace_build_by_id(b.build.id) == b.build
        assert await alice.get_workspace_build_by_job_id(b.job.id) == b.build
        assert await alice.get_latest_workspace_build_by_workspace_id(b.workspace.id) == b.build
        assert len(await alice.list_workspace_builds(b.workspace.id)) == 1


@case("insert_workspace_build_parameters", "list_workspace_build_parameters")
async def _(db: Database, w: World) -> None:
    b = await alice_workspace(db, w)
    async with db.write(as_system()) as s:
        await denied(as_(s, w.bob).insert_workspace_build_parameters(b.build.id, {"a": "1"}))
        await as_(s, w.alice).insert_workspace_build_parameters(b.build.id, {"a": "1"})
        assert await as_(s, w.bob).list_workspace_build_parameters(b.build.id) == []
        assert [
            (p.name, p.value)
            for p in await as_(s, w.alice).list_workspace_build_parameters(b.build.id)
        ] == [("a", "1")]


@case("get_quota_allowance", "get_quota_consumed")
async def _(db: Database, w: World) -> None:
    await alice_workspace(db, w)
    async with db.read(as_system()) as s:
        await denied(as_(s, w.bob).get_quota_allowance(uid(w.alice), w.org_a.id))
        await denied(as_(s, w.bob).get_quota_consumed(uid(w.alice), w.org_a.id))
        assert await as_(s, w.alice).get_quota_allowance(uid(w.alice), w.org_a.id) is None
        assert await as_(s, as_provisioner()).get_quota_consumed(uid(w.alice), w.org_a.id) == 1


@case("insert_provisioner_job", "get_provisioner_job_by_id")
async def _(db: Database, w: World) -> None:
    b = await alice_workspace(db, w)
    async with db.write(as_system()) as s:
        kw: dict[str, Any] = {"type": "workspace_build", "input": {}, "priority": 1}
        await denied(
            as_(s, w.bob).insert_provisioner_job(
                organization_id=w.org_a.id, initiator_id=uid(w.bob), **kw
            )
        )
        await denied(
            as_(s, w.bob).insert_provisioner_job(
                organization_id=w.org_b.id, initiator_id=uid(w.alice), **kw
            )
        )
        assert await as_(s, w.bob).get_provisioner_job_by_id(b.job.id) is None
        assert await as_(s, w.alice).get_provisioner_job_by_id(b.job.id) == b.job
        assert await as_(s, as_provisioner()).get_provisioner_job_by_id(b.job.id) == b.job


@case("count_provisioner_jobs_ahead")
async def _(db: Database, w: World) -> None:
    b = await alice_workspace(db, w)
    async with db.write(as_system()) as s:
        assert b.job.status == "pending"
        with pytest.raises(NotFound):
            await as_(s, w.bob).count_provisioner_jobs_ahead(b.job)
        assert await as_(s, w.alice).count_provisioner_jobs_ahead(b.job) == 0
        await s.insert_provisioner_job(
            type="workspace_build",
            organization_id=w.org_b.id,
            initiator_id=uid(w.bob),
            input={},
            priority=b.job.priority + 1,
        )
        # A count of the queue ahead names none of the jobs in it.
        assert await as_(s, w.alice).count_provisioner_jobs_ahead(b.job) == 1


@case(
    "acquire_provisioner_job",
    "update_provisioner_job_heartbeat",
    "complete_provisioner_job",
    "list_stale_provisioner_jobs",
)
async def _(db: Database, w: World, clock_step: dt.timedelta = dt.timedelta(minutes=5)) -> None:
    b = await alice_workspace(db, w)
    async with db.write(as_system()) as s:
        alice, prov = as_(s, w.alice), as_(s, as_provisioner())
        await denied(alice.acquire_provisioner_job("w1"))
        await denied(alice.update_provisioner_job_heartbeat(b.job.id, "w1"))
        await denied(alice.complete_provisioner_job(b.job.id, status="succeeded"))
        await denied(alice.list_stale_provisioner_jobs(db.clock.now()))
        assert await prov.acquire_provisioner_job("w1", organization_id=w.org_b.id) is None
        acquired = await prov.acquire_provisioner_job("w1", organization_id=w.org_a.id)
        assert acquired is not None
        assert acquired.status == "running"
        assert await prov.update_provisioner_job_heartbeat(b.job.id, "w2") is None
        assert await prov.update_provisioner_job_heartbeat(b.job.id, "w1") is not None
        stale = await prov.list_stale_provisioner_jobs(db.clock.now() + clock_step)
        assert [j.id for j in stale] == [b.job.id]
        done = await prov.complete_provisioner_job(b.job.id, status="succeeded")
        assert done is not None
        assert done.status == "succeeded"


@case("request_provisioner_job_cancel")
async def _(db: Database, w: World) -> None:
    b = await alice_workspace(db, w)
    async with db.write(as_system()) as s:
        await denied(as_(s, w.bob).request_provisioner_job_cancel(b.job.id))
        canceled = await as_(s, w.alice).request_provisioner_job_cancel(b.job.id)
        assert canceled is not None
        assert canceled.status == "canceled"


@case("insert_provisioner_job_logs", "list_provisioner_job_logs")
async def _(db: Database, w: World) -> None:
    b = await alice_workspace(db, w)
    async with db.write(as_system()) as s:
        await denied(
            as_(s, w.alice).insert_provisioner_job_logs(b.job.id, [("apply", "info", "x")])
        )
        await as_(s, as_provisioner()).insert_provisioner_job_logs(
            b.job.id, [("apply", "info", "x")]
        )
        assert await as_(s, w.bob).list_provisioner_job_logs(b.job.id) == []
        assert [x.output for x in await as_(s, w.alice).list_provisioner_job_logs(b.job.id)] == [
            "x"
        ]


@case(
    "insert_workspace_resource",
    "update_workspace_resource_handle",
    "list_workspace_resources_by_job",
)
async def _(db: Database, w: World) -> None:
    b = await alice_workspace(db, w)
    async with db.write(as_system()) as s:
        await denied(
            as_(s, w.alice).insert_workspace_resource(
                job_id=b.job.id, type="v", name="v", handle={}
            )
        )
        await denied(as_(s, w.alice).update_workspace_resource_handle(b.resource_id, {"x": 1}))
        await as_(s, as_provisioner()).update_workspace_resource_handle(b.resource_id, {"x": 1})
        assert await as_(s, w.bob).list_workspace_resources_by_job(b.job.id) == []
        assert [
            r.handle for r in await as_(s, w.alice).list_workspace_resources_by_job(b.job.id)
        ] == [{"x": 1}]


@case("insert_workspace_agent", "insert_workspace_agent_scripts", "list_workspace_agent_scripts")
async def _(db: Database, w: World) -> None:
    b = await alice_workspace(db, w)
    async with db.write(as_system()) as s:
        await denied(
            as_(s, w.alice).insert_workspace_agent(
                resource_id=b.resource_id, name="x", display_order=0, chat=False, external=False,
                directory="", env={}, auth_token_hash=b"u" * 32, connection_timeout_seconds=0,
            )
        )  # fmt: skip
        script = {"agent_id": b.agent.id, "display_name": "s", "script": "true", "run_on": "start",
                  "blocks_login": True, "timeout_seconds": 0, "display_order": 0}  # fmt: skip
        await denied(as_(s, w.alice).insert_workspace_agent_scripts([script]))
        await as_(s, as_provisioner()).insert_workspace_agent_scripts([script])
        assert await as_(s, w.bob).list_workspace_agent_scripts(b.agent.id) == []
        assert len(await as_(s, w.alice).list_workspace_agent_scripts(b.agent.id)) == 1


@case(
    "get_workspace_agent_by_id",
    "get_workspace_agent_by_token_hash",
    "list_workspace_agents_by_job",
    "get_workspace_id_by_agent_id",
)
async def _(db: Database, w: World) -> None:
    b = await alice_workspace(db, w)
    async with db.read(as_system()) as s:
        bob, alice = as_(s, w.bob), as_(s, w.alice)
        assert await bob.get_workspace_agent_by_id(b.agent.id) is None
        assert await alice.get_workspace_agent_by_token_hash(b"t" * 32) is None
        assert await bob.list_workspace_agents_by_job(b.job.id) == []
        assert await bob.get_workspace_id_by_agent_id(b.agent.id) is None
        assert await alice.get_workspace_agent_by_id(b.agent.id) == b.agent
        assert (
            await as_(s, as_authenticator()).get_workspace_agent_by_token_hash(b"t" * 32) == b.agent
        )
        assert [a.id for a in await alice.list_workspace_agents_by_job(b.job.id)] == [b.agent.id]
        assert await alice.get_workspace_id_by_agent_id(b.agent.id) == b.workspace.id


@case(
    "update_workspace_agent_connection",
    "update_workspace_agent_lifecycle",
    "insert_workspace_agent_logs",
    "list_workspace_agent_logs",
)
async def _(db: Database, w: World) -> None:
    b = await alice_workspace(db, w)
    now = db.clock.now()
    async with db.write(as_system()) as s:
        alice, gateway = as_(s, w.alice), as_(s, as_agent_gateway())
        await denied(alice.update_workspace_agent_connection(b.agent.id, last_connected_at=now))
        await denied(alice.update_workspace_agent_lifecycle(b.agent.id, "ready"))
        await denied(alice.insert_workspace_agent_logs(b.agent.id, [(None, "info", "hi")]))
        agent = await gateway.update_workspace_agent_connection(
            b.agent.id, first_connected_at=now, last_connected_at=now
        )
        assert agent is not None
        assert agent.first_connected_at == now
        ready = await gateway.update_workspace_agent_lifecycle(b.agent.id, "ready")
        assert ready is not None
        assert ready.lifecycle_state == "ready"
        await gateway.insert_workspace_agent_logs(b.agent.id, [(None, "info", "hi")])
        assert await as_(s, w.bob).list_workspace_agent_logs(b.agent.id) == []
        assert [x.output for x in await alice.list_workspace_agent_logs(b.agent.id)] == ["hi"]


@case(
    "insert_provisioner_key",
    "get_provisioner_key_by_id",
    "list_provisioner_keys",
    "delete_provisioner_key",
)
async def _(db: Database, w: World) -> None:
    async with db.write(as_system()) as s:
        owner, alice, prov = as_(s, w.owner), as_(s, w.alice), as_(s, as_provisioner())
        kw: dict[str, Any] = {"organization_id": w.org_a.id, "hashed_secret": b"p" * 32}
        await denied(alice.insert_provisioner_key(key_id="pk1", name="x", **kw))
        await denied(prov.insert_provisioner_key(key_id="pk1", name="x", **kw))
        key = await owner.insert_provisioner_key(key_id="pk1", name="x", **kw)
        assert await alice.get_provisioner_key_by_id("pk1") is None
        assert await alice.list_provisioner_keys() == []
        assert await prov.get_provisioner_key_by_id("pk1") == key
        assert await owner.list_provisioner_keys(organization_id=w.org_a.id) == [key]
        assert await owner.list_provisioner_keys(organization_id=w.org_b.id) == []
        await denied(alice.delete_provisioner_key("pk1"))
        await denied(prov.delete_provisioner_key("pk1"))
        assert await owner.delete_provisioner_key("pk1") is True
        assert await owner.delete_provisioner_key("pk1") is False


@case("update_workspace_agent_token")
async def _(db: Database, w: World) -> None:
    b = await alice_workspace(db, w)
    async with db.write(as_system()) as s:
        await denied(as_(s, w.bob).update_workspace_agent_token(b.agent.id, b"n" * 32))
        with pytest.raises(Forbidden):
            await as_(s, as_chat_tools()).update_workspace_agent_token(b.agent.id, b"n" * 32)
        updated = await as_(s, w.alice).update_workspace_agent_token(b.agent.id, b"n" * 32)
        assert updated is not None
        assert updated.auth_token_hash == b"n" * 32
