"""The prebuild pool as people see it: every prebuild, every pool, pause and resume.

``berth prebuilds list`` and ``GET /api/v1/prebuilds`` show :func:`pool_status`, for
site owners: one row per prebuild (with ``ready``: running with every agent ready, so
claimable) and per preset the desired and actual counts, the failures in a row and the
last error. :func:`set_paused` stops and restarts the reconciler site-wide.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from berth.db.authz import AuthzStore
from berth.domain import prebuilds as plans
from berth.errors import Forbidden
from berth.events import messages
from berth.records import PrebuildFailure, PrebuildPool
from berth.services.base import Ctx
from berth.services.prebuilds import PAUSED_KEY, observe, pool_owner
from berth.services.workspace_views import workspace_status


@dataclass(frozen=True, slots=True)
class PrebuildRow:
    """One prebuilt workspace; ``ready``: running with every agent ready (claimable)."""

    workspace_id: uuid.UUID
    workspace_name: str
    template_id: uuid.UUID
    template_name: str
    preset_id: uuid.UUID | None
    preset_name: str
    template_version_id: uuid.UUID
    status: str
    ready: bool
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class PresetRow:
    """One preset's pool: how many it wants and has, and its failures."""

    preset_id: uuid.UUID
    preset_name: str
    template_id: uuid.UUID
    template_name: str
    template_version_id: uuid.UUID
    desired: int
    actual: int
    """Prebuilds that are ready or on their way (not failed, not being deleted)."""
    ready: int
    failures: int
    """Failed prebuilds in a row (0 once one is ready again)."""
    last_error: str
    last_failed_at: dt.datetime | None
    retry_at: dt.datetime | None
    """While backing off after failures: when the pool builds again."""


@dataclass(frozen=True, slots=True)
class PoolStatus:
    paused: bool
    presets: list[PresetRow]
    prebuilds: list[PrebuildRow]


async def pool_status(ctx: Ctx) -> PoolStatus:
    """Every prebuild and every pool (site owners; others get Forbidden)."""
    now = ctx.clock.now()
    async with ctx.read() as store:
        failures = {f.preset_id: f for f in await store.list_prebuild_failures()}
        paused = await store.get_site_config(PAUSED_KEY) == "true"
        owner = await pool_owner(store)
        pools = {p.preset_id: p for p in await store.list_prebuild_pools()}
        states = await store.list_workspace_states(owner.id)
        names = _Names(store)
        rows: list[PrebuildRow] = []
        live: set[uuid.UUID] = set()
        for state in states:
            seen = observe(state, now)
            if not seen.prebuild.failed:
                live.add(state.workspace.id)
            preset_name, version_id = await names.preset(state.build.preset_id)
            rows.append(
                PrebuildRow(
                    workspace_id=state.workspace.id,
                    workspace_name=state.workspace.name,
                    template_id=state.workspace.template_id,
                    template_name=await names.template(state.workspace.template_id),
                    preset_id=state.build.preset_id,
                    preset_name=preset_name,
                    template_version_id=version_id or state.build.template_version_id,
                    status=workspace_status(state.build, state.job),
                    ready=seen.ready,
                    created_at=state.workspace.created_at,
                )
            )
            if state.build.preset_id is not None and state.build.preset_id not in pools:
                # an older version's (or a removed preset's) prebuild: shown until deleted
                pools[state.build.preset_id] = PrebuildPool(
                    state.build.preset_id,
                    preset_name,
                    0,
                    state.workspace.template_id,
                    await names.template(state.workspace.template_id),
                    state.workspace.organization_id,
                    state.build.template_version_id,
                )
    presets = [_preset_row(p, rows, live, failures.get(p.preset_id), now) for p in pools.values()]
    return PoolStatus(paused=paused, presets=presets, prebuilds=rows)


def _preset_row(
    pool: PrebuildPool,
    rows: Sequence[PrebuildRow],
    live: set[uuid.UUID],
    failure: PrebuildFailure | None,
    now: dt.datetime,
) -> PresetRow:
    members = [r for r in rows if r.preset_id == pool.preset_id]
    count = failure.count if failure else 0
    retry_at = None
    if failure is not None and count and failure.last_failed_at is not None:
        retry_at = failure.last_failed_at + plans.backoff(count)
        if retry_at <= now:
            retry_at = None  # the backoff is over: the pool builds at its next cycle
    return PresetRow(
        preset_id=pool.preset_id,
        preset_name=pool.preset_name,
        template_id=pool.template_id,
        template_name=pool.template_name,
        template_version_id=pool.template_version_id,
        desired=pool.desired,
        actual=sum(1 for r in members if r.workspace_id in live),
        ready=sum(1 for r in members if r.ready),
        failures=count,
        last_error=failure.last_error if failure else "",
        last_failed_at=failure.last_failed_at if failure else None,
        retry_at=retry_at,
    )


class _Names:
    """Template and preset names for the pool's rows, each read once."""

    def __init__(self, store: AuthzStore) -> None:
        self._store = store
        self._templates: dict[uuid.UUID, str] = {}
        self._presets: dict[uuid.UUID, tuple[str, uuid.UUID | None]] = {}

    async def template(self, template_id: uuid.UUID) -> str:
        if template_id not in self._templates:
            found = await self._store.get_template_by_id(template_id)
            self._templates[template_id] = found.name if found else ""
        return self._templates[template_id]

    async def preset(self, preset_id: uuid.UUID | None) -> tuple[str, uuid.UUID | None]:
        if preset_id is None:
            return "", None
        if preset_id not in self._presets:
            found = await self._store.get_template_version_preset_by_id(preset_id)
            self._presets[preset_id] = (
                (found.name, found.template_version_id) if found else ("", None)
            )
        return self._presets[preset_id]


async def set_paused(ctx: Ctx, paused: bool) -> PoolStatus:
    """Stop (or restart) reconciliation site-wide: the pool stays as it is meanwhile, and
    claims go on taking what is ready."""
    async with ctx.write() as store:
        try:
            await store.upsert_site_config(PAUSED_KEY, "true" if paused else "false")
        except Forbidden:
            raise Forbidden("only site owners may pause or resume the prebuild pool") from None
    await ctx.publish(messages.PREBUILDS, messages.PrebuildsChanged())
    return await pool_status(ctx)
