"""The chat pages: ``/chats`` and ``/chats/{id}`` (DESIGN §11, §14)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
