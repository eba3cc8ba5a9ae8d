"""Authorization cases: the replica registry and the mesh secret."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from berth.db.engine import Database
from berth.domain.actors import as_mesh, as_system
from berth.errors import Forbidden
from berth.records import Replica
from tests.db.authz_cases_workspaces import alice_workspace
from tests.db.authz_world import World, as_, case, denied

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


async def register(db: Database, replica_id: uuid.UUID | None = None) -> Replica:
    async with db.write(as_system()) as s:
        return await as_(s, as_mesh()).upsert_replica(
            replica_id or uuid.uuid4(),
            hostname="host-a",
            relay_url="http://10.0.0.1:7080",
            version="1.0",
            started_at=NOW,
        )


@case("upsert_replica", "touch_replica", "list_replicas")
async def _(db: Database, w: World) -> None:
    async with db.write(as_system()) as s:
        for person in (w.alice, w.tadmin):
            await denied(
                as_(s, person).upsert_replica(
                    uuid.uuid4(), hostname="x", relay_url="http://x", version="", started_at=NOW
                )
            )
            await denied(as_(s, person).touch_replica(uuid.uuid4()))
            with pytest.raises(Forbidden):
                await as_(s, person).list_replicas()
    replica = await register(db)
    again = await register(db, replica.id)  # registering again refreshes the same row
    async with db.write(as_system()) as s:
        mesh = as_(s, as_mesh())
        assert await mesh.touch_replica(replica.id) is True
        assert await mesh.touch_replica(uuid.uuid4()) is False
        listed = await as_(s, w.owner).list_replicas()
    assert [(r.id, r.hostname, r.relay_url) for r in listed] == [
        (again.id, "host-a", "http://10.0.0.1:7080")
    ]


@case("delete_replica", "delete_replicas_silent_since")
async def _(db: Database, w: World) -> None:
    first, second = await register(db), await register(db)
    async with db.write(as_system()) as s:
        await denied(as_(s, w.alice).delete_replica(first.id))
        await denied(as_(s, w.alice).delete_replicas_silent_since(NOW))
        mesh = as_(s, as_mesh())
        await mesh.delete_replica(first.id)
        assert await mesh.delete_replicas_silent_since(second.heartbeat_at) == 0
        later = second.heartbeat_at + dt.timedelta(seconds=1)
        assert await mesh.delete_replicas_silent_since(later) == 1
        assert await mesh.list_replicas() == []


@case("locate_workspace_agent")
async def _(db: Database, w: World) -> None:
    built = await alice_workspace(db, w)
    replica = await register(db)
    async with db.write(as_system()) as s:
        await denied(as_(s, w.alice).locate_workspace_agent(built.agent.id))
        mesh = as_(s, as_mesh())
        assert await mesh.locate_workspace_agent(uuid.uuid4()) is None
        agent, holder = await mesh.locate_workspace_agent(built.agent.id) or (None, None)
        assert agent is not None
        assert agent.id == built.agent.id
        assert holder is None
        await s.update_workspace_agent_connection(
            built.agent.id, last_connected_at=NOW, replica_id=replica.id
        )
        _, holder = await mesh.locate_workspace_agent(built.agent.id) or (None, None)
        assert holder == replica


@case("ensure_mesh_secret")
async def _(db: Database, w: World) -> None:
    async with db.write(as_system()) as s:
        for someone in (w.alice, w.owner, as_system()):  # not even a site owner
            await denied(as_(s, someone).ensure_mesh_secret("mine"))
        mesh = as_(s, as_mesh())
        secret = await mesh.ensure_mesh_secret("first")
        assert await mesh.ensure_mesh_secret("second") == secret  # made once, then kept
        # The generic site-config calls never reach it.
        for someone in (w.alice, w.owner):
            assert await as_(s, someone).get_site_config("mesh_secret") is None
            await denied(as_(s, someone).upsert_site_config("mesh_secret", "x"))
        assert await mesh.ensure_mesh_secret("third") == secret
