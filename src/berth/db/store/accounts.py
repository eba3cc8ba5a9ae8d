"""Queries on organizations, users, memberships, groups and API keys."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from berth.db import tables as t
from berth.db.store.base import StoreBase, key
from berth.records import ApiKey, Group, Organization, OrganizationMember, User

_USER_BY_ID = t.users.select().where(t.users.c.id == key())
_API_KEY_BY_ID = t.api_keys.select().where(t.api_keys.c.id == key())
_MEMBERS_BY_USER = t.organization_members.select().where(t.organization_members.c.user_id == key())


class AccountQueries(StoreBase):
    # --- organizations ----------------------------------------------------------------

    async def insert_organization(
        self, *, name: str, display_name: str = "", description: str = "", is_default: bool = False
    ) -> Organization:
        now = self._now()
        return await self._insert(
            Organization,
            t.organizations,
            id=uuid.uuid4(),
            name=name,
            display_name=display_name,
            description=description,
            is_default=is_default,
            created_at=now,
            updated_at=now,
        )

    async def get_organization_by_id(self, organization_id: uuid.UUID) -> Organization | None:
        o = t.organizations
        return await self._one(Organization, o.select().where(o.c.id == organization_id))

    async def get_organization_by_name(self, name: str) -> Organization | None:
        o = t.organizations
        return await self._one(Organization, o.select().where(o.c.name == name))

    async def get_default_organization(self) -> Organization | None:
        o = t.organizations
        return await self._one(Organization, o.select().where(o.c.is_default))

    async def list_organizations(self) -> list[Organization]:
        o = t.organizations
        return await self._all(Organization, o.select().order_by(o.c.name))

    # --- users ------------------------------------------------------------------------

    async def insert_user(
        self,
        *,
        username: str,
        email: str = "",
        name: str = "",
        roles: list[str] | None = None,
        is_system: bool = False,
    ) -> User:
        now = self._now()
        return await self._insert(
            User,
            t.users,
            id=uuid.uuid4(),
            username=username,
            email=email,
            name=name,
            status="active",
            roles=sorted(roles or []),
            is_system=is_system,
            created_at=now,
            updated_at=now,
        )

    async def get_user_by_id(self, user_id: uuid.UUID) -> User | None:
        return await self._one(User, _USER_BY_ID, {"key": user_id})

    async def get_user_by_username(self, username: str) -> User | None:
        u = t.users
        return await self._one(
            User, u.select().where(sa.func.lower(u.c.username) == username.lower())
        )

    async def list_users(self, *, include_system: bool = False) -> list[User]:
        u = t.users
        stmt = u.select().order_by(u.c.username)
        if not include_system:
            stmt = stmt.where(u.c.is_system.is_(False))
        return await self._all(User, stmt)

    async def count_human_users(self) -> int:
        u = t.users
        stmt = sa.select(sa.func.count()).select_from(u).where(u.c.is_system.is_(False))
        return int((await self._execute(stmt)).scalar_one())

    async def update_user_status(self, user_id: uuid.UUID, status: str) -> User | None:
        """Set a user's status (``active``, ``suspended``); ``None`` when there is no such user."""
        u = t.users
        return await self._update_one(
            User, u, u.c.id == user_id, status=status, updated_at=self._now()
        )

    async def update_user_roles(self, user_id: uuid.UUID, roles: list[str]) -> User | None:
        """Replace a user's site roles; ``None`` when there is no such user."""
        u = t.users
        return await self._update_one(
            User, u, u.c.id == user_id, roles=sorted(roles), updated_at=self._now()
        )

    # --- organization membership ------------------------------------------------------

    async def insert_organization_member(
        self, *, organization_id: uuid.UUID, user_id: uuid.UUID, roles: list[str] | None = None
    ) -> OrganizationMember:
        now = self._now()
        return await self._insert(
            OrganizationMember,
            t.organization_members,
            organization_id=organization_id,
            user_id=user_id,
            roles=sorted(roles or []),
            created_at=now,
            updated_at=now,
        )

    async def list_organization_members_by_user(
        self, user_id: uuid.UUID
    ) -> list[OrganizationMember]:
        return await self._all(OrganizationMember, _MEMBERS_BY_USER, {"key": user_id})

    # --- groups -----------------------------------------------------------------------

    async def insert_group(
        self,
        *,
        organization_id: uuid.UUID,
        name: str,
        quota_allowance: int = 0,
        is_everyone: bool = False,
    ) -> Group:
        now = self._now()
        return await self._insert(
            Group,
            t.groups,
            id=uuid.uuid4(),
            organization_id=organization_id,
            name=name,
            quota_allowance=quota_allowance,
            is_everyone=is_everyone,
            created_at=now,
            updated_at=now,
        )

    async def get_everyone_group(self, organization_id: uuid.UUID) -> Group | None:
        g = t.groups
        return await self._one(
            Group, g.select().where(g.c.organization_id == organization_id, g.c.is_everyone)
        )

    async def list_groups_by_organization(self, organization_id: uuid.UUID) -> list[Group]:
        g = t.groups
        return await self._all(
            Group, g.select().where(g.c.organization_id == organization_id).order_by(g.c.name)
        )

    async def insert_group_member(self, *, group_id: uuid.UUID, user_id: uuid.UUID) -> None:
        await self._execute(t.group_members.insert().values(group_id=group_id, user_id=user_id))

    async def update_group_quota_allowance(
        self, group_id: uuid.UUID, quota_allowance: int
    ) -> Group | None:
        g = t.groups
        return await self._update_one(
            Group, g, g.c.id == group_id, quota_allowance=quota_allowance, updated_at=self._now()
        )

    # --- API keys ---------------------------------------------------------------------

    async def insert_api_key(
        self,
        *,
        key_id: str,
        user_id: uuid.UUID,
        name: str,
        hashed_secret: bytes,
        scopes: list[str],
        expires_at: dt.datetime | None = None,
    ) -> ApiKey:
        now = self._now()
        return await self._insert(
            ApiKey,
            t.api_keys,
            id=key_id,
            user_id=user_id,
            name=name,
            hashed_secret=hashed_secret,
            scopes=scopes,
            expires_at=expires_at,
            last_used_at=None,
            created_at=now,
            updated_at=now,
        )

    async def get_api_key_by_id(self, key_id: str) -> ApiKey | None:
        return await self._one(ApiKey, _API_KEY_BY_ID, {"key": key_id})

    async def list_api_keys_by_user(self, user_id: uuid.UUID) -> list[ApiKey]:
        k = t.api_keys
        return await self._all(
            ApiKey, k.select().where(k.c.user_id == user_id).order_by(k.c.created_at, k.c.id)
        )

    async def delete_api_key(self, key_id: str) -> bool:
        k = t.api_keys
        result = await self._execute(k.delete().where(k.c.id == key_id))
        return result.rowcount > 0

    async def update_api_key_last_used(self, key_id: str) -> None:
        k = t.api_keys
        await self._execute(k.update().where(k.c.id == key_id).values(last_used_at=self._now()))
