"""Queries for prebuilt workspaces, their pools, failures and the reconciler's lease.

The signatures of :mod:`berth.db.querier`; the implementations are in
:mod:`berth.db.store.prebuilds`, the documentation with them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from berth.records import (
    PrebuildFailure,
    PrebuildPool,
    Workspace,
    WorkspaceAgent,
    WorkspaceState,
)


class PrebuildQuerier(Protocol):
    """Pools, workspace states, the claim, per-preset failures and leases."""

    async def list_prebuild_pools(self) -> list[PrebuildPool]: ...

    async def list_workspace_states(
        self, owner_id: uuid.UUID | None, *, template_id: uuid.UUID | None = None
    ) -> list[WorkspaceState]: ...

    async def lock_prebuilt_workspace(
        self, workspace_id: uuid.UUID, owner_id: uuid.UUID
    ) -> Workspace | None: ...

    async def claim_prebuilt_workspace(
        self,
        workspace_id: uuid.UUID,
        *,
        from_owner_id: uuid.UUID,
        owner_id: uuid.UUID,
        name: str,
        ttl_ms: int | None,
        deadline: dt.datetime | None,
    ) -> Workspace | None: ...

    async def move_workspace_resources(
        self, from_job_id: uuid.UUID, to_job_id: uuid.UUID
    ) -> int: ...

    async def personalize_workspace_agent(
        self,
        agent_id: uuid.UUID,
        *,
        directory: str,
        env: dict[str, str],
        scripts: Sequence[dict[str, Any]],
        claimed_at: dt.datetime,
    ) -> WorkspaceAgent | None: ...

    async def list_prebuild_failures(self) -> list[PrebuildFailure]: ...

    async def set_prebuild_failure(
        self,
        preset_id: uuid.UUID,
        *,
        count: int,
        last_error: str,
        last_failed_at: dt.datetime | None,
    ) -> None: ...

    async def acquire_lease(self, name: str, holder: str, *, until: dt.datetime) -> bool: ...

    async def release_lease(self, name: str, holder: str) -> None: ...
