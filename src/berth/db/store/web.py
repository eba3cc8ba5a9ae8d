"""Queries on the web UI's password hashes and login sessions (DESIGN §14)."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from berth.db import tables as t
from berth.db.dialects import upsert
from berth.db.store.base import StoreBase
from berth.records import WebSession


class WebQueries(StoreBase):
    # --- passwords --------------------------------------------------------------------

    async def set_user_password(self, user_id: uuid.UUID, password_hash: str) -> None:
        """Set or replace a user's password hash (made by :mod:`berth.domain.passwords`)."""
        values = {"user_id": user_id, "hash": password_hash, "updated_at": self._now()}
        await self._execute(upsert(self.dialect, t.user_passwords, values, key=["user_id"]))

    async def get_user_password(self, user_id: uuid.UUID) -> str | None:
        """The user's password hash, or ``None`` when they have none (token login only)."""
        p = t.user_passwords
        stmt = sa.select(p.c.hash).where(p.c.user_id == user_id)
        return (await self._execute(stmt)).scalar_one_or_none()

    # --- sessions ---------------------------------------------------------------------

    async def insert_web_session(
        self, *, id_hash: bytes, user_id: uuid.UUID, expires_at: dt.datetime
    ) -> WebSession:
        return await self._insert(
            WebSession,
            t.web_sessions,
            id_hash=id_hash,
            user_id=user_id,
            created_at=self._now(),
            expires_at=expires_at,
            revoked_at=None,
        )

    async def get_web_session(self, id_hash: bytes) -> WebSession | None:
        """The session, revoked and expired ones included (the caller decides)."""
        s = t.web_sessions
        return await self._one(WebSession, s.select().where(s.c.id_hash == id_hash))

    async def revoke_web_session(self, id_hash: bytes) -> bool:
        """Revoke one session (logout); ``False`` when it was not there or already revoked."""
        s = t.web_sessions
        stmt = (
            s.update()
            .where(s.c.id_hash == id_hash, s.c.revoked_at.is_(None))
            .values(revoked_at=self._now())
        )
        return (await self._execute(stmt)).rowcount > 0

    async def revoke_web_sessions_by_user(self, user_id: uuid.UUID) -> int:
        """Revoke every live session of a user (their password changed); how many."""
        s = t.web_sessions
        stmt = (
            s.update()
            .where(s.c.user_id == user_id, s.c.revoked_at.is_(None))
            .values(revoked_at=self._now())
        )
        return (await self._execute(stmt)).rowcount

    async def delete_web_sessions_expired_before(self, cutoff: dt.datetime) -> int:
        """Forget sessions that expired before ``cutoff`` (they can never be used again)."""
        s = t.web_sessions
        return (await self._execute(s.delete().where(s.c.expires_at < cutoff))).rowcount
