"""Steps the workspaces-service tests share, on a :class:`~tests.support.workspaces.World`.

Create as the admin (from the ``basic`` template unless told), run the first build,
resolve a workspace ref as an API route does, read a workspace's status, and the
validations of a refused request by field.
"""

from __future__ import annotations

import uuid
from typing import Any

from berth.domain.enums import JobStatus
from berth.errors import BerthError
from berth.services import workspace_views, workspaces
from berth.services.base import Ctx
from berth.services.workspaces import Started
from tests.support.workspaces import World, workspace_id

HOUR_MS = 3600 * 1000


async def create(world: World, name: str = "w1", **kw: Any) -> Started:
    return await workspaces.create_workspace(
        world.admin, template=kw.pop("template", "basic"), name=name, **kw
    )


async def running(world: World, name: str = "w1", **kw: Any) -> Started:
    """A workspace whose first start build has succeeded."""
    started = await create(world, name, **kw)
    assert await world.run_one()
    assert (await world.job(started.job.id)).status == JobStatus.SUCCEEDED
    return started


async def ws_id(world: World, ref: str = "w1") -> uuid.UUID:
    """The admin's workspace ``ref``, resolved as an API route resolves it."""
    return await workspace_id(world.admin, ref)


async def status_of(ctx: Ctx, ref: str) -> str:
    return (await workspace_views.get_workspace(ctx, await workspace_id(ctx, ref))).status


def validations_of(exc: BerthError) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for v in exc.validations:
        found.setdefault(v.field, []).append(v.detail)
    return found
