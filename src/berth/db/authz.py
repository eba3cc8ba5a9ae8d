"""``AuthzStore``: the Store wrapped once, with the actor checked on every call.

Every public Store method is overridden here (checked when this module is imported,
and by a test that also demands an authorization test per method). Reads of things the
actor may not see return ``None`` or leave them out of lists, exactly as if they did
not exist; writes the actor may not make raise :class:`~berth.errors.NotFound` with
the same message a missing row gets (:func:`not_found`), or
:class:`~berth.errors.Forbidden` when the actor can see the thing but not change it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from berth.db.authz_affinity import AffinityAuthz
from berth.db.authz_base import (
    SITE,
    chat_resource,
    not_found,
    template_resource,
    user_resource,
)
from berth.db.authz_prebuilds import PrebuildAuthz
from berth.db.authz_replicas import ReplicaAuthz
from berth.db.authz_web import WebAuthz
from berth.db.authz_workspaces import WorkspaceAuthz
from berth.db.policy import Action, Kind, Resource
from berth.db.querier import query_names
from berth.db.store.replicas import MESH_SECRET_KEY
from berth.errors import Forbidden
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

__all__ = ["AuthzStore", "Forbidden", "not_found", "unwrapped_store_methods"]


class AuthzStore(WorkspaceAuthz, AffinityAuthz, PrebuildAuthz, ReplicaAuthz, WebAuthz):
    """The Store's interface, with ``actor`` authorized on every call."""

    # --- organizations ----------------------------------------------------------------

    async def insert_organization(self, **kw: Any) -> Organization:
        self._require(Action.CREATE, Resource(Kind.ORGANIZATION))
        return await self._inner.insert_organization(**kw)

    async def get_organization_by_id(self, organization_id: uuid.UUID) -> Organization | None:
        org = await self._inner.get_organization_by_id(organization_id)
        return self._visible(org, org and Resource(Kind.ORGANIZATION, organization_id=org.id))

    async def get_organization_by_name(self, name: str) -> Organization | None:
        org = await self._inner.get_organization_by_name(name)
        return self._visible(org, org and Resource(Kind.ORGANIZATION, organization_id=org.id))

    async def get_default_organization(self) -> Organization | None:
        org = await self._inner.get_default_organization()
        return self._visible(org, org and Resource(Kind.ORGANIZATION, organization_id=org.id))

    async def list_organizations(self) -> list[Organization]:
        return [
            o
            for o in await self._inner.list_organizations()
            if self._can(Action.READ, Resource(Kind.ORGANIZATION, organization_id=o.id))
        ]

    # --- users ------------------------------------------------------------------------

    async def insert_user(self, **kw: Any) -> User:
        self._require(Action.CREATE, Resource(Kind.USER))
        return await self._inner.insert_user(**kw)

    async def get_user_by_id(self, user_id: uuid.UUID) -> User | None:
        user = await self._inner.get_user_by_id(user_id)
        return self._visible(user, user and user_resource(user))

    async def get_user_by_username(self, username: str) -> User | None:
        user = await self._inner.get_user_by_username(username)
        return self._visible(user, user and user_resource(user))

    async def list_users(self, *, include_system: bool = False) -> list[User]:
        users = await self._inner.list_users(include_system=include_system)
        return [u for u in users if self._can(Action.READ, user_resource(u))]

    async def count_human_users(self) -> int:
        self._require(Action.READ, Resource(Kind.USER))
        return await self._inner.count_human_users()

    async def update_user_status(self, user_id: uuid.UUID, status: str) -> User | None:
        self._require(Action.UPDATE, Resource(Kind.USER, owner_id=user_id))
        return await self._inner.update_user_status(user_id, status)

    async def update_user_roles(self, user_id: uuid.UUID, roles: list[str]) -> User | None:
        self._require(Action.UPDATE, Resource(Kind.USER, owner_id=user_id))
        return await self._inner.update_user_roles(user_id, roles)

    async def insert_organization_member(self, **kw: Any) -> OrganizationMember:
        self._require(Action.CREATE, Resource(Kind.USER))
        return await self._inner.insert_organization_member(**kw)

    async def list_organization_members_by_user(
        self, user_id: uuid.UUID
    ) -> list[OrganizationMember]:
        self._require(Action.READ, Resource(Kind.USER, owner_id=user_id))
        return await self._inner.list_organization_members_by_user(user_id)

    # --- groups -----------------------------------------------------------------------

    async def insert_group(self, *, organization_id: uuid.UUID, **kw: Any) -> Group:
        self._require(Action.CREATE, Resource(Kind.GROUP, organization_id=organization_id))
        return await self._inner.insert_group(organization_id=organization_id, **kw)

    async def get_everyone_group(self, organization_id: uuid.UUID) -> Group | None:
        group = await self._inner.get_everyone_group(organization_id)
        return self._visible(group, Resource(Kind.GROUP, organization_id=organization_id))

    async def list_groups_by_organization(self, organization_id: uuid.UUID) -> list[Group]:
        if not self._can(Action.READ, Resource(Kind.GROUP, organization_id=organization_id)):
            return []
        return await self._inner.list_groups_by_organization(organization_id)

    async def insert_group_member(self, *, group_id: uuid.UUID, user_id: uuid.UUID) -> None:
        self._require(Action.UPDATE, Resource(Kind.GROUP))
        await self._inner.insert_group_member(group_id=group_id, user_id=user_id)

    async def update_group_quota_allowance(
        self, group_id: uuid.UUID, quota_allowance: int
    ) -> Group | None:
        self._require(Action.UPDATE, Resource(Kind.GROUP))
        return await self._inner.update_group_quota_allowance(group_id, quota_allowance)

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
        self._require(Action.CREATE, Resource(Kind.API_KEY, owner_id=user_id))
        return await self._inner.insert_api_key(
            key_id=key_id,
            user_id=user_id,
            name=name,
            hashed_secret=hashed_secret,
            scopes=scopes,
            expires_at=expires_at,
        )

    async def get_api_key_by_id(self, key_id: str) -> ApiKey | None:
        key = await self._inner.get_api_key_by_id(key_id)
        return self._visible(key, key and Resource(Kind.API_KEY, owner_id=key.user_id))

    async def list_api_keys_by_user(self, user_id: uuid.UUID) -> list[ApiKey]:
        if not self._can(Action.READ, Resource(Kind.API_KEY, owner_id=user_id)):
            return []
        return await self._inner.list_api_keys_by_user(user_id)

    async def delete_api_key(self, key_id: str) -> bool:
        key = await self._inner.get_api_key_by_id(key_id)
        if key is None:
            return False
        self._require(Action.DELETE, Resource(Kind.API_KEY, owner_id=key.user_id))
        return await self._inner.delete_api_key(key_id)

    async def update_api_key_last_used(self, key_id: str) -> None:
        key = await self._inner.get_api_key_by_id(key_id)
        if key is None:
            return
        self._require(Action.UPDATE, Resource(Kind.API_KEY, owner_id=key.user_id))
        await self._inner.update_api_key_last_used(key_id)

    # --- templates --------------------------------------------------------------------

    async def insert_template(
        self, *, organization_id: uuid.UUID, name: str, created_by: uuid.UUID, **fields: Any
    ) -> Template:
        self._require(Action.CREATE, Resource(Kind.TEMPLATE, organization_id=organization_id))
        return await self._inner.insert_template(
            organization_id=organization_id, name=name, created_by=created_by, **fields
        )

    async def get_template_by_id(self, template_id: uuid.UUID) -> Template | None:
        tpl = await self._inner.get_template_by_id(template_id)
        return self._visible(tpl, tpl and template_resource(tpl))

    async def list_templates_by_ids(self, template_ids: Sequence[uuid.UUID]) -> list[Template]:
        templates = await self._inner.list_templates_by_ids(template_ids)
        return [t for t in templates if self._can(Action.READ, template_resource(t))]

    async def get_template_by_organization_and_name(
        self, organization_id: uuid.UUID, name: str
    ) -> Template | None:
        tpl = await self._inner.get_template_by_organization_and_name(organization_id, name)
        return self._visible(tpl, tpl and template_resource(tpl))

    async def list_templates(
        self, *, organization_ids: Sequence[uuid.UUID] | None = None
    ) -> list[Template]:
        templates = await self._inner.list_templates(organization_ids=organization_ids)
        return [t for t in templates if self._can(Action.READ, template_resource(t))]

    async def update_template(self, template_id: uuid.UUID, **fields: Any) -> Template | None:
        self._require(Action.UPDATE, await self._template_resource(template_id))
        return await self._inner.update_template(template_id, **fields)

    async def mark_template_deleted(self, template_id: uuid.UUID) -> Template | None:
        self._require(Action.DELETE, await self._template_resource(template_id))
        return await self._inner.mark_template_deleted(template_id)

    async def insert_template_version(
        self, *, template_id: uuid.UUID, **kw: Any
    ) -> TemplateVersion:
        self._require(Action.UPDATE, await self._template_resource(template_id))
        return await self._inner.insert_template_version(template_id=template_id, **kw)

    async def get_template_version_by_id(self, version_id: uuid.UUID) -> TemplateVersion | None:
        version = await self._inner.get_template_version_by_id(version_id)
        return self._visible(version, await self._version_resource(version_id))

    async def list_template_versions_by_ids(
        self, version_ids: Sequence[uuid.UUID]
    ) -> list[TemplateVersion]:
        """The versions whose template the actor may read: two queries, however many."""
        versions = await self._inner.list_template_versions_by_ids(version_ids)
        if not versions:
            return []
        templates = await self._inner.list_templates_by_ids(list({v.template_id for v in versions}))
        readable = {t.id for t in templates if self._can(Action.READ, template_resource(t))}
        return [v for v in versions if v.template_id in readable]

    async def list_template_versions(self, template_id: uuid.UUID) -> list[TemplateVersion]:
        tpl = await self.get_template_by_id(template_id)
        return [] if tpl is None else await self._inner.list_template_versions(template_id)

    async def count_template_versions(self, template_id: uuid.UUID) -> int:
        tpl = await self.get_template_by_id(template_id)
        return 0 if tpl is None else await self._inner.count_template_versions(template_id)

    async def insert_template_version_parameters(
        self, rows: Sequence[TemplateVersionParameter]
    ) -> None:
        for version_id in {r.template_version_id for r in rows}:
            resource = await self._version_resource(version_id)
            self._require(Action.UPDATE, resource or Resource(Kind.TEMPLATE))
        await self._inner.insert_template_version_parameters(rows)

    async def list_template_version_parameters(
        self, version_id: uuid.UUID
    ) -> list[TemplateVersionParameter]:
        resource = await self._version_resource(version_id)
        if resource is None or not self._can(Action.READ, resource):
            return []
        return await self._inner.list_template_version_parameters(version_id)

    async def insert_template_version_preset(
        self, *, template_version_id: uuid.UUID, **kw: Any
    ) -> TemplateVersionPreset:
        resource = await self._version_resource(template_version_id)
        self._require(Action.UPDATE, resource or Resource(Kind.TEMPLATE))
        return await self._inner.insert_template_version_preset(
            template_version_id=template_version_id, **kw
        )

    async def get_template_version_preset_by_id(
        self, preset_id: uuid.UUID
    ) -> TemplateVersionPreset | None:
        preset = await self._inner.get_template_version_preset_by_id(preset_id)
        if preset is None:
            return None
        return self._visible(preset, await self._version_resource(preset.template_version_id))

    async def list_template_version_presets(
        self, version_id: uuid.UUID
    ) -> list[TemplateVersionPreset]:
        resource = await self._version_resource(version_id)
        if resource is None or not self._can(Action.READ, resource):
            return []
        return await self._inner.list_template_version_presets(version_id)

    async def list_preset_parameters(
        self, preset_ids: Sequence[uuid.UUID]
    ) -> list[PresetParameter]:
        visible = [p for p in preset_ids if await self.get_template_version_preset_by_id(p)]
        return await self._inner.list_preset_parameters(visible) if visible else []

    # --- site config and workspaces ---------------------------------------------------

    async def get_site_config(self, key: str) -> str | None:
        self._require(Action.READ, SITE)
        if key == MESH_SECRET_KEY:  # only through ensure_mesh_secret, for the mesh actor
            return None
        return await self._inner.get_site_config(key)

    async def upsert_site_config(self, key: str, value: str) -> None:
        self._require(Action.UPDATE, SITE)
        if key == MESH_SECRET_KEY:
            raise not_found(Kind.SITE_CONFIG)
        await self._inner.upsert_site_config(key, value)

    async def take_bootstrap_lock(self) -> None:
        self._require(Action.UPDATE, SITE)
        await self._inner.take_bootstrap_lock()

    async def count_live_workspaces_by_template(self, template_id: uuid.UUID) -> int:
        self._require(Action.READ, await self._template_resource(template_id))
        return await self._inner.count_live_workspaces_by_template(template_id)

    # --- chats ------------------------------------------------------------------------

    async def insert_chat(
        self, *, owner_id: uuid.UUID, organization_id: uuid.UUID, title: str = ""
    ) -> Chat:
        resource = Resource(Kind.CHAT, organization_id=organization_id, owner_id=owner_id)
        self._require(Action.CREATE, resource)
        return await self._inner.insert_chat(
            owner_id=owner_id, organization_id=organization_id, title=title
        )

    async def get_chat_by_id(self, chat_id: uuid.UUID) -> Chat | None:
        chat = await self._inner.get_chat_by_id(chat_id)
        return self._visible(chat, chat and chat_resource(chat))

    async def try_lock_chat(self, chat_id: uuid.UUID, holder: str, expires_at: dt.datetime) -> bool:
        chat = await self._inner.get_chat_by_id(chat_id)
        if chat is None:
            raise not_found(Kind.CHAT)
        self._require(Action.UPDATE, chat_resource(chat))
        return await self._inner.try_lock_chat(chat_id, holder, expires_at)

    async def release_chat_lock(self, chat_id: uuid.UUID, holder: str) -> None:
        chat = await self._inner.get_chat_by_id(chat_id)
        if chat is None:
            return
        self._require(Action.UPDATE, chat_resource(chat))
        await self._inner.release_chat_lock(chat_id, holder)

    async def get_chat_by_owner_and_workspace(
        self, owner_id: uuid.UUID, workspace_id: uuid.UUID
    ) -> Chat | None:
        chat = await self._inner.get_chat_by_owner_and_workspace(owner_id, workspace_id)
        return self._visible(chat, chat and chat_resource(chat))

    async def list_chats_by_owner(self, owner_id: uuid.UUID) -> list[Chat]:
        chats = await self._inner.list_chats_by_owner(owner_id)
        return [c for c in chats if self._can(Action.READ, chat_resource(c))]

    async def update_chat_workspace_binding(
        self,
        chat_id: uuid.UUID,
        *,
        workspace_id: uuid.UUID | None,
        build_id: uuid.UUID | None,
        agent_id: uuid.UUID | None,
    ) -> Chat | None:
        chat = await self._inner.get_chat_by_id(chat_id)
        if chat is None:
            return None
        self._require(Action.UPDATE, chat_resource(chat))
        return await self._inner.update_chat_workspace_binding(
            chat_id, workspace_id=workspace_id, build_id=build_id, agent_id=agent_id
        )


def unwrapped_store_methods() -> list[str]:
    """Queries of the protocol that AuthzStore does not define (pyright forbids any)."""
    return sorted(name for name in query_names() if not callable(getattr(AuthzStore, name, None)))
