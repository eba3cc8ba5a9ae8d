"""A small organization in a real database, for the chat tools' tests.

Rows are written as the ``system`` actor (which may do anything; the tools under test
read as the chat owner or the chat-tools actor, as in production).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from berth.clock import FakeClock
from berth.db.authz import AuthzStore
from berth.db.engine import Database
from berth.domain.actors import as_system
from berth.records import (
    Chat,
    Template,
    TemplateVersionParameter,
    User,
    Workspace,
    WorkspaceAgent,
)
from berth.services.accounts import add_user
from berth.tools.context import ChatContext
from berth.tools.result import ToolResult


@dataclass
class Org:
    """An organization with the chat's owner, a second developer, and the owner's chat."""

    db: Database
    clock: FakeClock
    org_id: uuid.UUID
    other_org_id: uuid.UUID
    admin: User
    owner: User
    other: User
    chat: Chat

    def ctx(self, **kw: Any) -> ChatContext:
        return ChatContext(
            db=self.db,
            chat_id=self.chat.id,
            organization_id=self.org_id,
            owner_id=self.owner.id,
            **kw,
        )


async def make_org(db: Database, clock: FakeClock) -> Org:
    async with db.write(as_system()) as store:
        org = await store.insert_organization(name="acme", is_default=True)
        other_org = await store.insert_organization(name="globex")
        for o in (org, other_org):
            await store.insert_group(organization_id=o.id, name="Everyone", is_everyone=True)
        admin = await add_user(store, username="admin", roles=["owner"], organization_id=org.id)
        owner = await add_user(store, username="dev", organization_id=org.id)
        other = await add_user(store, username="dev2", organization_id=org.id)
        chat = await store.insert_chat(owner_id=owner.id, organization_id=org.id)
    return Org(db, clock, org.id, other_org.id, admin, owner, other, chat)


async def add_template(
    org: Org,
    name: str,
    *,
    readme: str = "",
    organization_id: uuid.UUID | None = None,
    parameters: list[dict[str, Any]] | None = None,
    presets: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> Template:
    """A template with an active version; ``fields`` are template columns."""
    async with org.db.write(as_system()) as store:
        template = await store.insert_template(
            organization_id=organization_id or org.org_id, name=name, created_by=org.admin.id
        )
        version = await store.insert_template_version(
            template_id=template.id,
            name="v1",
            document={},
            source=f"name: {name}\n",
            readme=readme,
            has_external_agent=False,
            created_by=org.admin.id,
        )
        await _parameters(store, version.id, parameters or [])
        for preset in presets or []:
            await store.insert_template_version_preset(template_version_id=version.id, **preset)
        updated = await store.update_template(template.id, active_version_id=version.id, **fields)
    assert updated is not None
    return updated


async def _parameters(store: AuthzStore, version_id: uuid.UUID, rows: list[dict[str, Any]]) -> None:
    defaults: dict[str, Any] = {
        "display_name": "",
        "description": "",
        "type": "string",
        "form_type": "input",
        "default_value": "",
        "required": False,
        "mutable": False,
        "ephemeral": False,
        "options": [],
        "validation_regex": "",
        "validation_error": "",
        "validation_min": None,
        "validation_max": None,
        "validation_monotonic": "",
    }
    await store.insert_template_version_parameters(
        [
            TemplateVersionParameter(
                template_version_id=version_id, display_order=i, **{**defaults, **row}
            )
            for i, row in enumerate(rows)
        ]
    )


async def add_workspace(
    org: Org,
    template: Template,
    name: str,
    *,
    owner: User | None = None,
    status: str = "succeeded",
    transition: str = "start",
    deleted: bool = False,
    ttl_ms: int | None = None,
) -> Workspace:
    """A workspace whose only build has ``transition`` and a job in ``status``.

    ``last_used_at`` and (when deleted) the deletion time are the clock's now.
    """
    user = owner or org.owner
    async with org.db.write(as_system()) as store:
        workspace = await store.insert_workspace(
            owner_id=user.id,
            organization_id=template.organization_id,
            template_id=template.id,
            name=name,
            ttl_ms=ttl_ms,
        )
        job = await store.insert_provisioner_job(
            type="workspace_build",
            organization_id=template.organization_id,
            initiator_id=user.id,
            input={},
            priority=1,
        )
        assert template.active_version_id is not None
        await store.insert_workspace_build(
            workspace_id=workspace.id,
            build_number=1,
            transition=transition,
            template_version_id=template.active_version_id,
            preset_id=None,
            initiator_id=user.id,
            reason="initiator",
            daily_cost=0,
            job_id=job.id,
            rendered={},
        )
        if status != "pending":
            await store.complete_provisioner_job(job.id, status=status)
        if deleted:
            marked = await store.update_workspace(workspace.id, deleted=True)
            assert marked is not None
            workspace = marked
    return workspace


async def add_agent(
    org: Org,
    workspace: Workspace,
    name: str,
    *,
    chat: bool = False,
    parent_id: uuid.UUID | None = None,
    token_hash: bytes | None = None,
    directory: str = "",
    connection_timeout_seconds: int = 0,
    external: bool = False,
) -> WorkspaceAgent:
    """An agent on the resource of the workspace's latest build."""
    async with org.db.write(as_system()) as store:
        build = await store.get_latest_workspace_build_by_workspace_id(workspace.id)
        assert build is not None
        resources = await store.list_workspace_resources_by_job(build.job_id)
        resource = resources[0] if resources else None
        if resource is None:
            resource = await store.insert_workspace_resource(
                job_id=build.job_id, type="sandbox", name=workspace.name, handle={}
            )
        return await store.insert_workspace_agent(
            resource_id=resource.id,
            name=name,
            display_order=0,
            chat=chat,
            external=external,
            directory=directory,
            env={},
            auth_token_hash=token_hash or uuid.uuid4().bytes * 2,
            connection_timeout_seconds=connection_timeout_seconds,
            parent_id=parent_id,
        )


async def bind(org: Org, workspace: Workspace) -> None:
    """Bind the chat to ``workspace`` (and its latest build)."""
    async with org.db.write(as_system()) as store:
        build = await store.get_latest_workspace_build_by_workspace_id(workspace.id)
        await store.update_chat_workspace_binding(
            org.chat.id, workspace_id=workspace.id, build_id=build and build.id, agent_id=None
        )


def payload(result: ToolResult) -> dict[str, Any]:
    """A JSON result's object, checked against its text form."""
    assert not result.is_error, result.text
    assert result.structured is not None
    assert json.loads(result.text) == result.structured
    return result.structured


def error_text(result: ToolResult) -> str:
    """A text error's string."""
    assert result.is_error, result.text
    assert result.structured is None
    return result.text
