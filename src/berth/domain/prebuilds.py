"""What the prebuild reconciler should do next (DESIGN §10), as a pure function.

The reconciler (a background loop acting as ``as_prebuilds_reconciler``) reads the
desired pools — the presets of active template versions with ``prebuilds.instances`` —
and the prebuilt workspaces that exist, and asks :func:`plan` what to change. Keeping
the decision here, away from the database and the event bus, lets every rule be tested
with plain values and keeps the loop a thin read → plan → act cycle that is safe to run
again at any time (a plan made from the same state is the same plan).

The rules:

* A prebuild whose preset is not a pool any more (an older version, a preset removed or
  set to 0 instances) is deleted once no build of it is in progress.
* A failed prebuild — its build failed, or its agent ended in a state other than
  ``ready`` (``start_error``, ``start_timeout``, …) — is deleted, and its pool waits
  :func:`backoff` after the last failure before it builds again.
* A pool with fewer live prebuilds (ready or still building) than it wants builds the
  rest, unless it is backing off; the site's cap (``BERTH_PREBUILDS_MAX``) bounds all
  live prebuilds together, pools taken in a stable order.
* A pool with more than it wants deletes the surplus, idle ones first, newest first.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "BACKOFF_FIRST",
    "BACKOFF_MAX",
    "Failures",
    "Plan",
    "Pool",
    "Prebuild",
    "backoff",
    "plan",
]

BACKOFF_FIRST = dt.timedelta(seconds=10)
"""The wait after a pool's first failed prebuild; each further failure doubles it."""
BACKOFF_MAX = dt.timedelta(minutes=5)
"""The longest wait between a pool's attempts."""


@dataclass(frozen=True, slots=True)
class Pool:
    """A preset of a template's active version that asks for ``desired`` prebuilds."""

    preset_id: uuid.UUID
    desired: int


@dataclass(frozen=True, slots=True)
class Prebuild:
    """A workspace the ``prebuilds`` user owns, as the reconciler sees it.

    ``building``: its latest build has not settled (no other build can be queued on it
    yet). ``failed``: it settled in a state that can never become claimable.
    """

    workspace_id: uuid.UUID
    preset_id: uuid.UUID | None
    created_at: dt.datetime
    building: bool = False
    failed: bool = False


@dataclass(frozen=True, slots=True)
class Failures:
    """A pool's consecutive failed prebuilds and when the last one failed."""

    count: int
    last_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do: build ``create[preset]`` more, delete ``delete``; ``waiting`` says
    until when a pool backs off (for its status and the next wake-up)."""

    create: Mapping[uuid.UUID, int] = field(default_factory=dict[uuid.UUID, int])
    delete: Sequence[uuid.UUID] = ()
    waiting: Mapping[uuid.UUID, dt.datetime] = field(default_factory=dict[uuid.UUID, dt.datetime])

    @property
    def empty(self) -> bool:
        return not self.create and not self.delete


def backoff(failures: int) -> dt.timedelta:
    """10 s after one failure, doubling with each further one, at most 5 min."""
    if failures <= 0:
        return dt.timedelta(0)
    return min(BACKOFF_FIRST * 2 ** min(failures - 1, 16), BACKOFF_MAX)


def plan(
    pools: Sequence[Pool],
    prebuilds: Sequence[Prebuild],
    *,
    failures: Mapping[uuid.UUID, Failures],
    now: dt.datetime,
    site_max: int,
) -> Plan:
    """The changes that move ``prebuilds`` toward ``pools`` (see the module's rules)."""
    wanted = {p.preset_id: p.desired for p in pools if p.desired > 0}
    delete: list[uuid.UUID] = []
    live: dict[uuid.UUID, list[Prebuild]] = {preset: [] for preset in wanted}
    for prebuild in prebuilds:
        pool = live.get(prebuild.preset_id) if prebuild.preset_id is not None else None
        if prebuild.failed or pool is None:
            if not prebuild.building:
                delete.append(prebuild.workspace_id)
            continue
        pool.append(prebuild)

    create: dict[uuid.UUID, int] = {}
    waiting: dict[uuid.UUID, dt.datetime] = {}
    room = site_max - sum(len(members) for members in live.values())
    for preset in sorted(wanted, key=str):
        members, desired = live[preset], wanted[preset]
        if len(members) > desired:
            # Idle before building (a building one is nearly ready), newest first.
            surplus = sorted(members, key=lambda p: (p.building, -p.created_at.timestamp()))
            delete.extend(p.workspace_id for p in surplus[: len(members) - desired])
            continue
        missing = desired - len(members)
        failed = failures.get(preset)
        if missing and failed is not None and failed.count > 0:
            retry_at = failed.last_at + backoff(failed.count)
            if now < retry_at:
                waiting[preset] = retry_at
                continue
        count = min(missing, max(room, 0))
        if count:
            create[preset] = count
            room -= count
    return Plan(create=create, delete=delete, waiting=waiting)
