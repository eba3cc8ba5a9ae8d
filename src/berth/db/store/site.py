"""Queries on site-wide settings, chats and the workspace rows templates care about."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from berth.db import tables as t
from berth.db.dialects import BOOTSTRAP_LOCK_KEY, take_transaction_lock, upsert
from berth.db.store.base import StoreBase, key
from berth.records import Chat

_CHAT_BY_ID = t.chats.select().where(t.chats.c.id == key())


class SiteQueries(StoreBase):
    async def get_site_config(self, key: str) -> str | None:
        s = t.site_config
        stmt = sa.select(s.c.value).where(s.c.key == key)
        return (await self._execute(stmt)).scalar_one_or_none()

    async def upsert_site_config(self, key: str, value: str) -> None:
        await self._execute(
            upsert(self.dialect, t.site_config, {"key": key, "value": value}, key=["key"])
        )

    async def take_bootstrap_lock(self) -> None:
        """Serialize first-start setup across servers until the transaction ends."""
        await take_transaction_lock(self._conn, BOOTSTRAP_LOCK_KEY)

    async def count_live_workspaces_by_template(self, template_id: uuid.UUID) -> int:
        """Live workspaces of the template that people own: prebuilds (the system user's)
        do not hold a template up; the reconciler deletes them with it."""
        w, u = t.workspaces, t.users
        stmt = (
            sa.select(sa.func.count())
            .select_from(w.join(u, u.c.id == w.c.owner_id))
            .where(w.c.template_id == template_id, w.c.deleted.is_(False), u.c.is_system.is_(False))
        )
        return int((await self._execute(stmt)).scalar_one())


class ChatQueries(StoreBase):
    async def insert_chat(
        self, *, owner_id: uuid.UUID, organization_id: uuid.UUID, title: str = ""
    ) -> Chat:
        now = self._now()
        return await self._insert(
            Chat,
            t.chats,
            id=uuid.uuid4(),
            owner_id=owner_id,
            organization_id=organization_id,
            title=title,
            workspace_id=None,
            build_id=None,
            agent_id=None,
            created_at=now,
            updated_at=now,
        )

    async def get_chat_by_id(self, chat_id: uuid.UUID) -> Chat | None:
        return await self._one(Chat, _CHAT_BY_ID, {"key": chat_id})

    async def try_lock_chat(self, chat_id: uuid.UUID, holder: str, expires_at: dt.datetime) -> bool:
        """Take or extend the chat's workspace lease; ``False`` while another holds it.

        A lease, not a transaction-long row lock: the call it guards waits minutes for
        builds, and an open write transaction that long would stall SQLite's single
        writer (the provisioner among them). Expired leases are taken over, so a
        crashed holder blocks the chat only until its lease runs out.
        """
        c = t.chats
        now = self._now()
        result = await self._execute(
            c.update()
            .where(
                c.c.id == chat_id,
                sa.or_(
                    c.c.lock_holder.is_(None),
                    c.c.lock_holder == holder,
                    c.c.lock_expires_at < now,
                ),
            )
            .values(lock_holder=holder, lock_expires_at=expires_at)
        )
        return result.rowcount > 0

    async def release_chat_lock(self, chat_id: uuid.UUID, holder: str) -> None:
        c = t.chats
        await self._execute(
            c.update()
            .where(c.c.id == chat_id, c.c.lock_holder == holder)
            .values(lock_holder=None, lock_expires_at=None)
        )

    async def get_chat_by_owner_and_workspace(
        self, owner_id: uuid.UUID, workspace_id: uuid.UUID
    ) -> Chat | None:
        """The owner's chat bound to the workspace (the newest, were there several)."""
        c = t.chats
        return await self._one(
            Chat,
            c.select()
            .where(c.c.owner_id == owner_id, c.c.workspace_id == workspace_id)
            .order_by(c.c.created_at.desc(), c.c.id)
            .limit(1),
        )

    async def list_chats_by_owner(self, owner_id: uuid.UUID) -> list[Chat]:
        c = t.chats
        return await self._all(
            Chat, c.select().where(c.c.owner_id == owner_id).order_by(c.c.created_at.desc(), c.c.id)
        )

    async def update_chat_workspace_binding(
        self,
        chat_id: uuid.UUID,
        *,
        workspace_id: uuid.UUID | None,
        build_id: uuid.UUID | None,
        agent_id: uuid.UUID | None,
    ) -> Chat | None:
        c = t.chats
        return await self._update_one(
            Chat,
            c,
            c.c.id == chat_id,
            workspace_id=workspace_id,
            build_id=build_id,
            agent_id=agent_id,
            updated_at=self._now(),
        )
