"""Queries on organizations, users, groups, API keys, templates, site config and chats.

The signatures of :mod:`berth.db.querier`; the implementations are in
:mod:`berth.db.store`, the documentation with them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from berth.records import (
    ApiKey,
    Chat,
    Group,
    Organization,
    OrganizationMember,
    PresetParameter,
    Template,
    TemplateVersion,
    TemplateVersionParameter,
    TemplateVersionPreset,
    User,
)


class AccountQuerier(Protocol):
    """Organizations, users, memberships, groups and API keys."""

    async def insert_organization(
        self, *, name: str, display_name: str = "", description: str = "", is_default: bool = False
    ) -> Organization: ...

    async def get_organization_by_id(self, organization_id: uuid.UUID) -> Organization | None: ...

    async def get_organization_by_name(self, name: str) -> Organization | None: ...

    async def get_default_organization(self) -> Organization | None: ...

    async def list_organizations(self) -> list[Organization]: ...

    async def insert_user(
        self,
        *,
        username: str,
        email: str = "",
        name: str = "",
        roles: list[str] | None = None,
        is_system: bool = False,
    ) -> User: ...

    async def get_user_by_id(self, user_id: uuid.UUID) -> User | None: ...

    async def get_user_by_username(self, username: str) -> User | None: ...

    async def list_users(self, *, include_system: bool = False) -> list[User]: ...

    async def count_human_users(self) -> int: ...

    async def update_user_status(self, user_id: uuid.UUID, status: str) -> User | None: ...

    async def update_user_roles(self, user_id: uuid.UUID, roles: list[str]) -> User | None: ...

    async def insert_organization_member(
        self, *, organization_id: uuid.UUID, user_id: uuid.UUID, roles: list[str] | None = None
    ) -> OrganizationMember: ...

    async def list_organization_members_by_user(
        self, user_id: uuid.UUID
    ) -> list[OrganizationMember]: ...

    async def insert_group(
        self,
        *,
        organization_id: uuid.UUID,
        name: str,
        quota_allowance: int = 0,
        is_everyone: bool = False,
    ) -> Group: ...

    async def get_everyone_group(self, organization_id: uuid.UUID) -> Group | None: ...

    async def list_groups_by_organization(self, organization_id: uuid.UUID) -> list[Group]: ...

    async def insert_group_member(self, *, group_id: uuid.UUID, user_id: uuid.UUID) -> None: ...

    async def update_group_quota_allowance(
        self, group_id: uuid.UUID, quota_allowance: int
    ) -> Group | None: ...

    async def insert_api_key(
        self,
        *,
        key_id: str,
        user_id: uuid.UUID,
        name: str,
        hashed_secret: bytes,
        scopes: list[str],
        expires_at: dt.datetime | None = None,
    ) -> ApiKey: ...

    async def get_api_key_by_id(self, key_id: str) -> ApiKey | None: ...

    async def list_api_keys_by_user(self, user_id: uuid.UUID) -> list[ApiKey]: ...

    async def delete_api_key(self, key_id: str) -> bool: ...

    async def update_api_key_last_used(self, key_id: str) -> None: ...


class TemplateQuerier(Protocol):
    """Templates, their versions, parameters and presets."""

    async def insert_template(
        self, *, organization_id: uuid.UUID, name: str, created_by: uuid.UUID, **fields: Any
    ) -> Template: ...

    async def get_template_by_id(self, template_id: uuid.UUID) -> Template | None: ...

    async def list_templates_by_ids(self, template_ids: Sequence[uuid.UUID]) -> list[Template]: ...

    async def get_template_by_organization_and_name(
        self, organization_id: uuid.UUID, name: str
    ) -> Template | None: ...

    async def list_templates(
        self, *, organization_ids: Sequence[uuid.UUID] | None = None
    ) -> list[Template]: ...

    async def update_template(self, template_id: uuid.UUID, **fields: Any) -> Template | None: ...

    async def mark_template_deleted(self, template_id: uuid.UUID) -> Template | None: ...

    async def insert_template_version(
        self,
        *,
        template_id: uuid.UUID,
        name: str,
        document: dict[str, Any],
        source: str,
        readme: str,
        has_external_agent: bool,
        created_by: uuid.UUID,
    ) -> TemplateVersion: ...

    async def get_template_version_by_id(self, version_id: uuid.UUID) -> TemplateVersion | None: ...

    async def list_template_versions_by_ids(
        self, version_ids: Sequence[uuid.UUID]
    ) -> list[TemplateVersion]: ...

    async def list_template_versions(self, template_id: uuid.UUID) -> list[TemplateVersion]: ...

    async def count_template_versions(self, template_id: uuid.UUID) -> int: ...

    async def insert_template_version_parameters(
        self, rows: Sequence[TemplateVersionParameter]
    ) -> None: ...

    async def list_template_version_parameters(
        self, version_id: uuid.UUID
    ) -> list[TemplateVersionParameter]: ...

    async def insert_template_version_preset(
        self,
        *,
        template_version_id: uuid.UUID,
        name: str,
        description: str,
        icon: str,
        is_default: bool,
        desired_prebuild_instances: int | None,
        parameters: dict[str, str],
    ) -> TemplateVersionPreset: ...

    async def get_template_version_preset_by_id(
        self, preset_id: uuid.UUID
    ) -> TemplateVersionPreset | None: ...

    async def list_template_version_presets(
        self, version_id: uuid.UUID
    ) -> list[TemplateVersionPreset]: ...

    async def list_preset_parameters(
        self, preset_ids: Sequence[uuid.UUID]
    ) -> list[PresetParameter]: ...


class SiteQuerier(Protocol):
    """Site configuration and the bootstrap lock."""

    async def get_site_config(self, key: str) -> str | None: ...

    async def upsert_site_config(self, key: str, value: str) -> None: ...

    async def take_bootstrap_lock(self) -> None: ...

    async def count_live_workspaces_by_template(self, template_id: uuid.UUID) -> int: ...


class ChatQuerier(Protocol):
    """Chats, their workspace binding and lease."""

    async def insert_chat(
        self, *, owner_id: uuid.UUID, organization_id: uuid.UUID, title: str = ""
    ) -> Chat: ...

    async def get_chat_by_id(self, chat_id: uuid.UUID) -> Chat | None: ...

    async def try_lock_chat(
        self, chat_id: uuid.UUID, holder: str, expires_at: dt.datetime
    ) -> bool: ...

    async def release_chat_lock(self, chat_id: uuid.UUID, holder: str) -> None: ...

    async def get_chat_by_owner_and_workspace(
        self, owner_id: uuid.UUID, workspace_id: uuid.UUID
    ) -> Chat | None: ...

    async def list_chats_by_owner(self, owner_id: uuid.UUID) -> list[Chat]: ...

    async def update_chat_workspace_binding(
        self,
        chat_id: uuid.UUID,
        *,
        workspace_id: uuid.UUID | None,
        build_id: uuid.UUID | None,
        agent_id: uuid.UUID | None,
    ) -> Chat | None: ...
