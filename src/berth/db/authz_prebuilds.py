"""AuthzStore's half for prebuilt workspaces, their failures and leases.

The pool is the ``prebuilds`` system user's: the reconciler reads and changes it, the
site owner reads it. A claim is checked twice, like Coder's ``ClaimPrebuiltWorkspace``:
the caller must be allowed to create a workspace for the new owner, and the workspace
must belong to the ``prebuilds`` system user — so a claim cannot take anyone else's
workspace. The claim's other steps (the claim job completed, resources handed to it,
agents re-personalized) are the reconciler's to make.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from berth.db.authz_base import AuthzBase, not_found
from berth.db.policy import Action, Kind, Resource
from berth.domain.actors import PREBUILDS_USERNAME
from berth.errors import Forbidden
from berth.records import (
    PrebuildFailure,
    PrebuildPool,
    Workspace,
    WorkspaceAgent,
    WorkspaceState,
)

_POOL = Resource(Kind.PREBUILDS)
_LEASES = Resource(Kind.LEASE)


class PrebuildAuthz(AuthzBase):
    async def list_prebuild_pools(self) -> list[PrebuildPool]:
        pools = await self._inner.list_prebuild_pools()
        return [
            p
            for p in pools
            if self._can(Action.READ, Resource(Kind.TEMPLATE, organization_id=p.organization_id))
        ]

    async def list_workspace_states(
        self, owner_id: uuid.UUID | None, *, template_id: uuid.UUID | None = None
    ) -> list[WorkspaceState]:
        states = await self._inner.list_workspace_states(owner_id, template_id=template_id)
        return [
            s
            for s in states
            if self._can(
                Action.READ,
                Resource(Kind.WORKSPACE, s.workspace.organization_id, s.workspace.owner_id),
            )
        ]

    async def lock_prebuilt_workspace(
        self, workspace_id: uuid.UUID, owner_id: uuid.UUID
    ) -> Workspace | None:
        self._require(Action.UPDATE, Resource(Kind.WORKSPACE, owner_id=owner_id))
        return await self._inner.lock_prebuilt_workspace(workspace_id, owner_id)

    async def claim_prebuilt_workspace(
        self,
        workspace_id: uuid.UUID,
        *,
        from_owner_id: uuid.UUID,
        owner_id: uuid.UUID,
        name: str,
        ttl_ms: int | None,
        deadline: dt.datetime | None,
    ) -> Workspace | None:
        workspace = await self._inner.get_workspace_by_id(workspace_id)
        if workspace is None:
            raise not_found(Kind.WORKSPACE)
        self._require(Action.CREATE, Resource(Kind.WORKSPACE, workspace.organization_id, owner_id))
        source = await self._inner.get_user_by_id(from_owner_id)
        if source is None or not source.is_system or source.username != PREBUILDS_USERNAME:
            raise Forbidden("only a prebuilt workspace can be claimed")
        return await self._inner.claim_prebuilt_workspace(
            workspace_id,
            from_owner_id=from_owner_id,
            owner_id=owner_id,
            name=name,
            ttl_ms=ttl_ms,
            deadline=deadline,
        )

    async def move_workspace_resources(self, from_job_id: uuid.UUID, to_job_id: uuid.UUID) -> int:
        self._require(Action.UPDATE, Resource(Kind.JOB))
        return await self._inner.move_workspace_resources(from_job_id, to_job_id)

    async def personalize_workspace_agent(
        self,
        agent_id: uuid.UUID,
        *,
        directory: str,
        env: dict[str, str],
        scripts: Sequence[dict[str, Any]],
        claimed_at: dt.datetime,
    ) -> WorkspaceAgent | None:
        self._require(Action.UPDATE, Resource(Kind.AGENT))
        return await self._inner.personalize_workspace_agent(
            agent_id, directory=directory, env=env, scripts=scripts, claimed_at=claimed_at
        )

    async def list_prebuild_failures(self) -> list[PrebuildFailure]:
        if not self._can(Action.READ, _POOL):
            raise Forbidden("only site owners may see the prebuild pool")
        return await self._inner.list_prebuild_failures()

    async def set_prebuild_failure(
        self,
        preset_id: uuid.UUID,
        *,
        count: int,
        last_error: str,
        last_failed_at: dt.datetime | None,
    ) -> None:
        self._require(Action.UPDATE, _POOL)
        await self._inner.set_prebuild_failure(
            preset_id, count=count, last_error=last_error, last_failed_at=last_failed_at
        )

    async def acquire_lease(self, name: str, holder: str, *, until: dt.datetime) -> bool:
        self._require(Action.UPDATE, _LEASES)
        return await self._inner.acquire_lease(name, holder, until=until)

    async def release_lease(self, name: str, holder: str) -> None:
        self._require(Action.UPDATE, _LEASES)
        await self._inner.release_lease(name, holder)
