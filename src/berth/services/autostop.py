"""Autostop (DESIGN §10): a workspace is stopped when its deadline comes.

A start build sets ``deadline = now + ttl``; activity pushes it (``record_activity``);
``update_ttl`` moves it. :class:`Autostop` runs on every replica: it sleeps until the
nearest deadline of any workspace — not a minute tick — and wakes early when a deadline
changes or a build settles (``DeadlinesChanged``), re-checking every ``recheck`` seconds
in case a message was lost. A due workspace gets one ``stop`` build with reason
``autostop`` however many replicas see it due: the build is inserted in a transaction
that finds the workspace still due and not building, and a second replica's insert of
the same build number fails. A workspace with a build in progress is left alone until
the build settles. The deadline is cleared with the stop build, so a stop that fails is
not retried in a loop (the workspace shows ``failed``; its owner decides).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from berth.domain.actors import as_autostop
from berth.domain.enums import BuildReason, Transition
from berth.errors import Conflict
from berth.events import listening, messages, pause
from berth.services import workspaces
from berth.services.base import Ctx
from berth.services.refs import live_workspace_in

log = logging.getLogger("berth.autostop")


class Autostop:
    """The autostop timer of one replica, as the ``autostop`` system actor."""

    def __init__(self, ctx: Ctx, *, recheck: float = 30.0) -> None:
        self._ctx = ctx.acting_as(as_autostop())
        self._recheck = recheck

    async def run_forever(self) -> None:
        async with listening(self._ctx.bus, messages.DEADLINES) as events:
            while True:
                upcoming = await self.stop_due()
                await pause(events, self.delay(upcoming))

    def delay(self, upcoming: dt.datetime | None) -> float:
        """Seconds to sleep before the next check: until ``upcoming``, at most ``recheck``."""
        if upcoming is None:
            return self._recheck
        left = (upcoming - self._ctx.clock.now()).total_seconds()
        return min(self._recheck, max(0.0, left))

    async def stop_due(self) -> dt.datetime | None:
        """Stop every workspace whose deadline has come; the next deadline ahead, if any."""
        now = self._ctx.clock.now()
        async with self._ctx.read() as store:
            due = await store.list_workspaces_due(now)
        for workspace in due:
            try:
                await stop_at_deadline(self._ctx, workspace.id, now)
            except Exception:
                log.exception("autostop of workspace %s failed", workspace.id)
        async with self._ctx.read() as store:
            return await store.get_next_workspace_deadline(self._ctx.clock.now())


async def stop_at_deadline(
    ctx: Ctx, workspace_id: uuid.UUID, now: dt.datetime
) -> workspaces.Started | None:
    """The ``autostop`` stop build of a workspace that is still due; ``None`` otherwise."""
    async with ctx.write() as store:
        workspace = await live_workspace_in(store, workspace_id)
        if workspace.deadline is None or workspace.deadline > now:
            return None  # activity moved it, or another replica stopped it
        try:
            started = await workspaces.transition_in(
                store, workspace, Transition.STOP, BuildReason.AUTOSTOP
            )
        except Conflict:
            return None  # a build is in progress (or another replica's won): it settles first
        await store.update_workspace(workspace.id, deadline=None)
    if not started.new_build:
        return None  # already stopped; the stale deadline is gone now
    log.info("workspace %s reached its deadline: stop build %s", workspace_id, started.build.id)
    return await workspaces.published(ctx, started)
