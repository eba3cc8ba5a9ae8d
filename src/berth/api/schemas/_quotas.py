"""Quotas: a user's consumption and budget, and the groups that grant allowances."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

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
    quota_allowance: int = Field(strict=True, json_schema_extra={"minimum": 0, "maximum": 10**6})
    """Credits a day; a JSON integer (``true`` is not 1), 0 to 1,000,000 (the service
    checks the range and names it)."""
