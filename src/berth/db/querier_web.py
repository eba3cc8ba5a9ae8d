"""Queries of the web UI's passwords and sessions (signatures; the implementations are
in :mod:`berth.db.store.web`, the documentation with them)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Protocol

from berth.records import WebSession


class WebQuerier(Protocol):
    """Password hashes and login sessions."""

    async def set_user_password(self, user_id: uuid.UUID, password_hash: str) -> None: ...

    async def get_user_password(self, user_id: uuid.UUID) -> str | None: ...

    async def insert_web_session(
        self, *, id_hash: bytes, user_id: uuid.UUID, expires_at: dt.datetime
    ) -> WebSession: ...

    async def get_web_session(self, id_hash: bytes) -> WebSession | None: ...

    async def revoke_web_session(self, id_hash: bytes) -> bool: ...

    async def revoke_web_sessions_by_user(self, user_id: uuid.UUID) -> int: ...

    async def delete_web_sessions_expired_before(self, cutoff: dt.datetime) -> int: ...
