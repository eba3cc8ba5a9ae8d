"""The server's health and the site settings."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, Field

from berth.api.schemas._base import Out, Request

__all__ = ["ConfigOut", "Health", "ReplicaOut", "SetConfigRequest"]


class SetConfigRequest(Request):
    value: str = Field(max_length=100_000)


class Health(BaseModel):
    status: str
    version: str


class ConfigOut(BaseModel):
    key: str
    value: str


class ReplicaOut(Out):
    """A server replica as it registered itself; ``live``: heard from recently."""

    id: uuid.UUID
    hostname: str
    relay_url: str
    version: str
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    live: bool
