"""The prebuild pool: every prebuilt workspace, every preset's pool, and the pause."""

from __future__ import annotations

import datetime as dt
import uuid

from berth.api.schemas._base import RecordOut

__all__ = ["PrebuildOut", "PrebuildPoolOut", "PrebuildPresetOut"]


class PrebuildOut(RecordOut):
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


class PrebuildPresetOut(RecordOut):
    """One preset's pool: how many prebuilds it wants and has, and its failures."""

    preset_id: uuid.UUID
    preset_name: str
    template_id: uuid.UUID
    template_name: str
    template_version_id: uuid.UUID
    desired: int
    actual: int
    """Prebuilds ready or on their way (not failed, not being deleted)."""
    ready: int
    failures: int
    """Failed prebuilds in a row (0 once one is ready again)."""
    last_error: str
    last_failed_at: dt.datetime | None
    retry_at: dt.datetime | None
    """While backing off after failures: when the pool builds again."""


class PrebuildPoolOut(RecordOut):
    """``GET /prebuilds`` and what pause and resume answer: the whole pool."""

    paused: bool
    """Reconciliation is paused site-wide (claims still take what is ready)."""
    presets: list[PrebuildPresetOut]
    prebuilds: list[PrebuildOut]
