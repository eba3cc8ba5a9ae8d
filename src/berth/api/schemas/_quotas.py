"""Quotas: a user's consumption and budget, and the groups that grant allowances."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from berth.api.schemas._base import RecordOut, Request

__all__ = ["GroupOut", "GroupUpdateRequest", "QuotaOut"]


class QuotaOut(BaseModel):
    credits_consumed: int
    budget: int | None
    """``None``: no allowance anywhere, so no limit."""


class GroupOut(RecordOut):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    quota_allowance: int


class GroupUpdateRequest(Request):
    quota_allowance: int
