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

A wall clock that jumps forward (an NTP step, ``date -s``) would make deadlines due that
no real time reached. Each timer compares the wall clock with the clock's monotonic
time between its checks; when the wall clock ran ahead by more than
:data:`JUMP_SLACK`, a workspace that only the jump made due has its deadline moved by
the jump instead of being stopped (a workspace used within its TTL keeps running). The
move happens once however many replicas see it: a replica's transaction only moves a
deadline that is still due. A jump while no replica runs cannot be told from downtime:
what is due then stops.
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

JUMP_SLACK = dt.timedelta(seconds=5)
"""How far the wall clock may run ahead of the time that passed before it is a jump."""


class Autostop:
    """The autostop timer of one replica, as the ``autostop`` system actor."""

    def __init__(self, ctx: Ctx, *, recheck: float = 30.0) -> None:
        self._ctx = ctx.acting_as(as_autostop())
        self._recheck = recheck
        self._last_check: tuple[dt.datetime, float] | None = None

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
        jump = self._jump(now)
        async with self._ctx.read() as store:
            due = await store.list_workspaces_due(now)
        for workspace in due:
            try:
                if workspace.deadline is not None and workspace.deadline > now - jump:
                    await defer_deadline(self._ctx, workspace.id, now, jump)
                else:
                    await stop_at_deadline(self._ctx, workspace.id, now)
            except Exception:
                log.exception("autostop of workspace %s failed", workspace.id)
        async with self._ctx.read() as store:
            return await store.get_next_workspace_deadline(self._ctx.clock.now())

    def _jump(self, now: dt.datetime) -> dt.timedelta:
        """How far the wall clock jumped ahead since the last check (zero if it did not)."""
        monotonic = self._ctx.clock.monotonic()
        last, self._last_check = self._last_check, (now, monotonic)
        if last is None:
            return dt.timedelta(0)
        jump = now - (last[0] + dt.timedelta(seconds=monotonic - last[1]))
        if jump <= JUMP_SLACK:
            return dt.timedelta(0)
        log.warning("the wall clock jumped ahead by %s: deadlines it passed move with it", jump)
        return jump


async def defer_deadline(
    ctx: Ctx, workspace_id: uuid.UUID, now: dt.datetime, jump: dt.timedelta
) -> None:
    """Move a deadline that only a jump of the clock made due by that jump."""
    async with ctx.write() as store:
        workspace = await live_workspace_in(store, workspace_id)
        if workspace.deadline is None or workspace.deadline > now:
            return  # no longer due: activity, or another replica moved it
        await store.update_workspace(workspace.id, deadline=workspace.deadline + jump)
    await ctx.publish(messages.DEADLINES, messages.DeadlinesChanged(workspace_id=workspace_id))


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
