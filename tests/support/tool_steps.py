"""Steps over a :class:`~tests.support.tools.World` that several chat-tool test modules share."""

from __future__ import annotations

import uuid
from typing import Any

from berth.domain.enums import Transition
from tests.support.tools import World


async def names(world: World) -> list[str]:
    return [w.name for w in await world.workspaces()]


async def stopped_workspace(world: World, name: str = "home", **template: Any) -> uuid.UUID:
    """A workspace of alice's chat whose latest build is a succeeded stop."""
    tpl = await world.template(**template)
    started = await world.running_workspace(tpl, name)
    stopping = await world.transition(started.workspace.id, Transition.STOP)
    assert (await world.wait_job(stopping.job.id)).status == "succeeded"
    return started.workspace.id


def transitions(builds: list[Any]) -> list[str]:
    return [b.transition for b in builds]
