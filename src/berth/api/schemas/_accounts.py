"""Users, their API tokens, and organizations."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field

from berth import records
from berth.api.schemas._base import Out, RecordOut, Request

__all__ = [
    "CreateOrganizationRequest",
    "CreateTokenRequest",
    "CreateUserRequest",
    "NewTokenOut",
    "OrganizationOut",
    "SetPasswordRequest",
    "TokenOut",
    "UserOut",
]


class CreateUserRequest(Request):
    username: str = Field(min_length=1, max_length=64)
    email: str = Field(default="", max_length=320)
    name: str = Field(default="", max_length=128)
    roles: list[str] = Field(default_factory=list[str])
    organization: str | None = None
    password: str | None = Field(default=None, max_length=1024)
    """For the web UI's password login; hashed with scrypt, never stored or shown."""


class SetPasswordRequest(Request):
    password: str = Field(max_length=1024)
    """The new password (the service names the rules it breaks: length, NUL)."""


class SetRolesRequest(Request):
    roles: list[str] = Field(max_length=16)
    """The user's site roles, replacing the old ones (``owner``, ``template-admin``;
    ``member`` is implied)."""


class CreateOrganizationRequest(Request):
    name: str = Field(min_length=1, max_length=64)
    display_name: str = Field(default="", max_length=128)
    description: str = Field(default="", max_length=10_000)


class CreateTokenRequest(Request):
    name: str = Field(min_length=1, max_length=64)
    lifetime: str | None = None


class UserOut(Out):
    id: uuid.UUID
    username: str
    email: str
    name: str
    status: str
    roles: list[str]
    organization_ids: list[uuid.UUID]
    created_at: dt.datetime

    @classmethod
    def of(cls, user: records.User, organization_ids: list[uuid.UUID]) -> UserOut:
        return cls.read(user, organization_ids=organization_ids)


class TokenOut(RecordOut):
    id: str
    name: str
    user_id: uuid.UUID
    scopes: list[str]
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    created_at: dt.datetime


class NewTokenOut(TokenOut):
    token: str
    """The secret; shown once."""


class OrganizationOut(RecordOut):
    id: uuid.UUID
    name: str
    display_name: str
    description: str
    is_default: bool
    created_at: dt.datetime
