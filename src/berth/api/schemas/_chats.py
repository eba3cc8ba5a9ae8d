"""Chats: each with its own workspace binding and MCP endpoint."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field

from berth import records
from berth.api.schemas._base import Out, Request

__all__ = ["ChatOut", "CreateChatRequest"]


class CreateChatRequest(Request):
    title: str = Field(default="", max_length=256)
    organization: str | None = None


class ChatOut(Out):
    id: uuid.UUID
    owner_id: uuid.UUID
    organization_id: uuid.UUID
    title: str
    workspace_id: uuid.UUID | None
    build_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    mcp_path: str
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, c: records.Chat) -> ChatOut:
        return cls.read(c, mcp_path=f"/api/v1/chats/{c.id}/mcp")
