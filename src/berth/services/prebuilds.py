"""The prebuild reconciler (DESIGN §10): warm pools of workspaces, one per preset.

For every preset of a template's active version with ``prebuilds.instances = N``,
:class:`Reconciler` keeps N workspaces of that preset running with their agents ready,
owned by the system user ``prebuilds`` and acting as ``as_prebuilds_reconciler``. Each
cycle reads the pools and the prebuilds, asks :func:`berth.domain.prebuilds.plan` what
to change and does it: creates (at prebuild priority, so every human build goes first;
no quota) and deletes (prebuilds of older versions, surplus, failures). It wakes on
:data:`~berth.events.messages.PREBUILDS` — a template push, a build settling, a
prebuild's agent becoming ready or failing, a claim, pause/resume — and at least every
``interval`` seconds.

Only one replica reconciles at a time: a cycle runs only while its replica holds the
``prebuilds`` lease (renewed each cycle, lapsing after three intervals if its holder
dies). A failed prebuild — its build failed, or its agent ended in ``start_error``,
``start_timeout``, never connected or dropped — is deleted in the transaction that
counts the failure against its preset, so each failure counts once; the preset waits
:func:`~berth.domain.prebuilds.backoff` before building again, and its status shows the
last error. A ready prebuild clears the count.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from berth.db.authz import AuthzStore
from berth.domain import prebuilds as plans
from berth.domain.actors import PREBUILDS_USERNAME, as_prebuilds_reconciler
from berth.domain.enums import AgentLifecycle, AgentStatus, BuildReason, JobStatus, Transition
from berth.domain.names import generate_name
from berth.errors import BerthError, Conflict
from berth.events import listening, messages, pause
from berth.records import PrebuildFailure, PrebuildPool, User, WorkspaceState
from berth.services import workspaces
from berth.services.base import Ctx
from berth.services.claims import agent_ready
from berth.services.workspace_views import view_agent

log = logging.getLogger("berth.prebuilds")

LEASE = "prebuilds"
READY_WITHIN = dt.timedelta(minutes=30)
"""A prebuild whose agents are not ready this long after its build is replaced."""
SETTLE = 0.5
"""Seconds the reconciler lets an event's change settle before it acts on it."""
RECONNECT_GRACE = dt.timedelta(minutes=1)
"""How long a prebuild's agent may be gone before it is replaced: agents reconnect by
themselves when a server restarts, and the pool must survive a restart."""
PAUSED_KEY = "prebuilds_paused"


@dataclass(frozen=True, slots=True)
class Observed:
    """One prebuild as a cycle sees it: the plan's view, and why it failed (if it did).

    ``error`` is set for a failure that counts against the preset (a stopped prebuild
    is replaced but did not fail).
    """

    prebuild: plans.Prebuild
    ready: bool
    error: str | None = None


def observe(state: WorkspaceState, now: dt.datetime) -> Observed:
    """What a prebuild's latest build, job and agents say about it."""
    build, job = state.build, state.job
    created = state.workspace.created_at

    def seen(
        *,
        building: bool = False,
        failed: bool = False,
        starting: bool = False,
        error: str | None = None,
    ) -> Observed:
        # ``building`` is for the plan: a build in progress, so no delete can be queued.
        # Agents still starting are not ready, but the prebuild may be deleted.
        prebuild = plans.Prebuild(
            state.workspace.id, build.preset_id, created, building=building, failed=failed
        )
        return Observed(prebuild, ready=not (building or failed or starting), error=error)

    settled = JobStatus(job.status).is_terminal
    if build.transition != Transition.START.value:
        # Being deleted or stopped: never claimable. A delete in progress (or one that
        # failed, which a person has to look at) is left alone.
        leave = build.transition == Transition.DELETE.value or not settled
        return seen(building=leave, failed=True)
    if not settled:
        return seen(building=True)
    if job.status != JobStatus.SUCCEEDED.value:
        return seen(failed=True, error=job.error or f"the build was {job.status}")
    waiting = False
    for agent in state.agents:
        if agent_ready(agent, now):
            continue
        status = view_agent(agent, now).status
        lifecycle = agent.lifecycle_state
        if lifecycle in (AgentLifecycle.START_ERROR.value, AgentLifecycle.START_TIMEOUT.value):
            return seen(failed=True, error=f"agent {agent.name!r}: {lifecycle}")
        if status is AgentStatus.TIMEOUT:
            return seen(failed=True, error=f"agent {agent.name!r} never connected")
        lost = agent.disconnected_at or agent.last_connected_at
        if status is AgentStatus.DISCONNECTED and lost and now - lost > RECONNECT_GRACE:
            return seen(failed=True, error=f"agent {agent.name!r} disconnected")
        waiting = True
    if waiting and job.completed_at is not None and now - job.completed_at > READY_WITHIN:
        return seen(failed=True, error=f"the agents were not ready within {READY_WITHIN}")
    return seen(starting=waiting)


class Reconciler:
    """One replica's reconciler loop (it acts only while it holds the lease)."""

    def __init__(
        self,
        ctx: Ctx,
        *,
        holder: str,
        interval: float = 15.0,
        site_max: int = 100,
        settle: float = SETTLE,
    ) -> None:
        self._ctx = ctx.acting_as(as_prebuilds_reconciler())
        self._holder = holder
        self.interval = interval
        self._site_max = site_max
        self._settle = settle

    async def run_forever(self) -> None:
        async with listening(self._ctx.bus, messages.PREBUILDS) as events:
            try:
                while True:
                    delay = await self.reconcile_once()
                    await pause(events, delay)
                    if events is None:
                        continue
                    # Let the change that woke it finish first (a claim still waits for
                    # its agent; a refill's build would compete with it for the CPU),
                    # and take a burst of events as one.
                    await asyncio.sleep(self._settle)
                    while await events.get(timeout=0) is not None:
                        pass
            finally:
                await self._release()

    async def reconcile_once(self) -> float:
        """One read → plan → act cycle; the seconds until the next one is due."""
        now = self._ctx.clock.now()
        async with self._ctx.write() as store:
            if await store.get_site_config(PAUSED_KEY) == "true":
                return self.interval
            until = now + dt.timedelta(seconds=self.interval * 3)
            if not await store.acquire_lease(LEASE, self._holder, until=until):
                return self.interval
            owner = await pool_owner(store)
            pools = await store.list_prebuild_pools()
            states = await store.list_workspace_states(owner.id)
            failures = {f.preset_id: f for f in await store.list_prebuild_failures()}
            seen = [observe(s, now) for s in states]
            await _clear_failures(store, seen, failures)
        # This cycle's failures count before it plans: the pool they leave short must
        # back off now, not build their replacement at once.
        counted = _count_failures(seen, failures, now)
        plan = plans.plan(
            [plans.Pool(p.preset_id, p.desired) for p in pools],
            [o.prebuild for o in seen],
            failures={
                k: plans.Failures(f.count, f.last_failed_at or now)
                for k, f in counted.items()
                if f.count
            },
            now=now,
            site_max=self._site_max,
        )
        observed = {o.prebuild.workspace_id: o for o in seen}
        by_preset = {p.preset_id: p for p in pools}
        for workspace_id in plan.delete:
            await self._delete(owner, observed[workspace_id], counted, by_preset)
        for preset_id, count in plan.create.items():
            for _ in range(count):
                await self._create(owner, by_preset[preset_id])
        for preset_id, retry_at in plan.waiting.items():
            log.info(
                "prebuilds of preset %s (%s) back off after failures; next attempt at %s",
                by_preset[preset_id].preset_name,
                preset_id,
                retry_at.isoformat(timespec="seconds"),
            )
        soonest = min(plan.waiting.values(), default=None)
        if soonest is None:
            return self.interval
        return max(0.0, min(self.interval, (soonest - self._ctx.clock.now()).total_seconds()))

    async def _create(self, owner: User, pool: PrebuildPool) -> None:
        try:
            started = await workspaces.create_workspace(
                self._ctx,
                template=str(pool.template_id),
                name=generate_name(pool.template_name),
                owner=str(owner.id),
                preset_ref=str(pool.preset_id),
                ttl_ms=0,  # a prebuild waits for its claim; the claimer's TTL applies then
                reason=BuildReason.PREBUILD,
                priority=workspaces.PRIORITY_PREBUILD,
            )
        except BerthError as exc:
            log.warning("could not create a prebuild of preset %s: %s", pool.preset_name, exc)
            return
        log.info(
            "prebuild %s of %s/%s queued",
            started.workspace.name,
            pool.template_name,
            pool.preset_name,
        )

    async def _delete(
        self,
        owner: User,
        seen: Observed,
        failures: dict[uuid.UUID, PrebuildFailure],
        pools: dict[uuid.UUID, PrebuildPool],
    ) -> None:
        prebuild = seen.prebuild
        async with self._ctx.write() as store:
            workspace = await store.lock_prebuilt_workspace(prebuild.workspace_id, owner.id)
            if workspace is None:
                return  # claimed, or being claimed
            try:
                started = await workspaces.transition_in(
                    store, workspace, Transition.DELETE, BuildReason.PREBUILD
                )
            except Conflict:
                return  # a build of it started since the read
            preset = prebuild.preset_id
            failure = failures.get(preset) if preset is not None else None
            if seen.error is not None and failure is not None:
                await store.set_prebuild_failure(
                    failure.preset_id,
                    count=failure.count,
                    last_error=failure.last_error,
                    last_failed_at=failure.last_failed_at,
                )
                pool = pools.get(failure.preset_id)
                log.warning(
                    "prebuild %s of %s failed (%s): deleted; failure %d in a row, "
                    "next attempt after %s",
                    workspace.name,
                    f"{pool.template_name}/{pool.preset_name}" if pool else preset,
                    seen.error,
                    failure.count,
                    plans.backoff(failure.count),
                )
        await workspaces.published(self._ctx, started)

    async def _release(self) -> None:
        try:
            async with self._ctx.write() as store:
                await store.release_lease(LEASE, self._holder)
        except Exception:
            log.debug("could not release the prebuilds lease", exc_info=True)


async def pool_owner(store: AuthzStore) -> User:
    owner = await store.get_user_by_username(PREBUILDS_USERNAME)
    if owner is None:
        raise RuntimeError(f"the system user {PREBUILDS_USERNAME!r} is missing")
    return owner


def _count_failures(
    seen: Sequence[Observed], failures: dict[uuid.UUID, PrebuildFailure], now: dt.datetime
) -> dict[uuid.UUID, PrebuildFailure]:
    """The presets' failures with this cycle's failed prebuilds (those it deletes) added."""
    counted = dict(failures)
    for observed in seen:
        preset, error = observed.prebuild.preset_id, observed.error
        if preset is None or error is None or observed.prebuild.building:
            continue
        earlier = counted.get(preset)
        counted[preset] = PrebuildFailure(preset, (earlier.count if earlier else 0) + 1, error, now)
    return counted


async def _clear_failures(
    store: AuthzStore, seen: Sequence[Observed], failures: dict[uuid.UUID, PrebuildFailure]
) -> None:
    """A preset with a ready prebuild has stopped failing: its count starts over (its
    last error stays on show)."""
    for observed in seen:
        preset = observed.prebuild.preset_id
        failure = failures.get(preset) if preset is not None else None
        if observed.ready and failure is not None and failure.count:
            await store.set_prebuild_failure(
                failure.preset_id,
                count=0,
                last_error=failure.last_error,
                last_failed_at=failure.last_failed_at,
            )
            failures[failure.preset_id] = PrebuildFailure(
                failure.preset_id, 0, failure.last_error, failure.last_failed_at
            )
