"""The server's health and the site settings."""

from __future__ import annotations

from pydantic import BaseModel, Field

from berth.api.schemas._base import Request

__all__ = ["ConfigOut", "Health", "SetConfigRequest"]


class SetConfigRequest(Request):
    value: str = Field(max_length=100_000)


class Health(BaseModel):
    status: str
    version: str


class ConfigOut(BaseModel):
    key: str
    value: str
