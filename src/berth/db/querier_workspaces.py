"""Queries on workspaces, builds, jobs, resources, agents and template ranking.

The signatures of :mod:`berth.db.querier`; the implementations are in
:mod:`berth.db.store`, the documentation with them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

from berth.records import (
    AgentLog,
    AgentScript,
    BuildParameter,
    JobLog,
    ProvisionerJob,
    ProvisionerKey,
    TemplateRankingSignals,
    Workspace,
    WorkspaceAgent,
    WorkspaceBuild,
    WorkspaceResource,
)


class WorkspaceQuerier(Protocol):
    """Workspaces, builds, build parameters and quota figures."""

    async def insert_workspace(
        self,
        *,
        owner_id: uuid.UUID,
        organization_id: uuid.UUID,
        template_id: uuid.UUID,
        name: str,
        ttl_ms: int | None,
    ) -> Workspace: ...

    async def get_workspace_by_id(self, workspace_id: uuid.UUID) -> Workspace | None: ...

    async def get_workspace_by_owner_and_name(
        self, owner_id: uuid.UUID, name: str
    ) -> Workspace | None: ...

    async def list_workspaces(
        self, *, owner_id: uuid.UUID | None = None, template_id: uuid.UUID | None = None
    ) -> list[Workspace]: ...

    async def list_workspaces_due(self, now: dt.datetime) -> list[Workspace]: ...

    async def get_next_workspace_deadline(self, now: dt.datetime) -> dt.datetime | None: ...

    async def update_workspace(
        self, workspace_id: uuid.UUID, **fields: Any
    ) -> Workspace | None: ...

    async def insert_workspace_build(
        self,
        *,
        workspace_id: uuid.UUID,
        build_number: int,
        transition: str,
        template_version_id: uuid.UUID,
        preset_id: uuid.UUID | None,
        initiator_id: uuid.UUID,
        reason: str,
        daily_cost: int,
        job_id: uuid.UUID,
        rendered: dict[str, Any] | None,
    ) -> WorkspaceBuild: ...

    async def get_workspace_build_by_id(self, build_id: uuid.UUID) -> WorkspaceBuild | None: ...

    async def get_workspace_build_by_job_id(self, job_id: uuid.UUID) -> WorkspaceBuild | None: ...

    async def get_latest_workspace_build_by_workspace_id(
        self, workspace_id: uuid.UUID
    ) -> WorkspaceBuild | None: ...

    async def list_workspace_builds(self, workspace_id: uuid.UUID) -> list[WorkspaceBuild]: ...

    async def insert_workspace_build_parameters(
        self, build_id: uuid.UUID, values: Mapping[str, str]
    ) -> None: ...

    async def list_workspace_build_parameters(
        self, build_id: uuid.UUID
    ) -> list[BuildParameter]: ...

    async def get_quota_allowance(
        self, user_id: uuid.UUID, organization_id: uuid.UUID
    ) -> int | None: ...

    async def get_quota_consumed(
        self,
        user_id: uuid.UUID,
        organization_id: uuid.UUID,
        *,
        exclude_workspace_ids: Sequence[uuid.UUID] = (),
    ) -> int: ...


class JobQuerier(Protocol):
    """Provisioner jobs, their logs, workspace resources and provisioner keys."""

    async def insert_provisioner_job(
        self,
        *,
        type: str,
        organization_id: uuid.UUID,
        initiator_id: uuid.UUID,
        input: dict[str, Any],
        priority: int,
        required_place: str | None = None,
    ) -> ProvisionerJob: ...

    async def get_provisioner_job_by_id(self, job_id: uuid.UUID) -> ProvisionerJob | None: ...

    async def count_provisioner_jobs_ahead(self, job: ProvisionerJob) -> int: ...

    async def acquire_provisioner_job(
        self,
        worker_id: str,
        *,
        organization_id: uuid.UUID | None = None,
        places: Collection[str] = (),
    ) -> ProvisionerJob | None: ...

    async def update_provisioner_job_heartbeat(
        self, job_id: uuid.UUID, worker_id: str
    ) -> ProvisionerJob | None: ...

    async def complete_provisioner_job(
        self,
        job_id: uuid.UUID,
        *,
        status: str,
        error: str | None = None,
        error_code: str | None = None,
    ) -> ProvisionerJob | None: ...

    async def request_provisioner_job_cancel(self, job_id: uuid.UUID) -> ProvisionerJob | None: ...

    async def list_stale_provisioner_jobs(
        self, heartbeat_before: dt.datetime
    ) -> list[ProvisionerJob]: ...

    async def insert_provisioner_job_logs(
        self, job_id: uuid.UUID, entries: Sequence[tuple[str, str, str]]
    ) -> list[JobLog]: ...

    async def list_provisioner_job_logs(
        self, job_id: uuid.UUID, *, after_id: int = 0
    ) -> list[JobLog]: ...

    async def insert_workspace_resource(
        self, *, job_id: uuid.UUID, type: str, name: str, handle: dict[str, Any]
    ) -> WorkspaceResource: ...

    async def update_workspace_resource_handle(
        self, resource_id: uuid.UUID, handle: dict[str, Any]
    ) -> WorkspaceResource | None: ...

    async def list_workspace_resources_by_job(
        self, job_id: uuid.UUID
    ) -> list[WorkspaceResource]: ...

    async def insert_provisioner_key(
        self, *, key_id: str, organization_id: uuid.UUID, name: str, hashed_secret: bytes
    ) -> ProvisionerKey: ...

    async def get_provisioner_key_by_id(self, key_id: str) -> ProvisionerKey | None: ...

    async def list_provisioner_keys(
        self, *, organization_id: uuid.UUID | None = None
    ) -> list[ProvisionerKey]: ...

    async def delete_provisioner_key(self, key_id: str) -> bool: ...


class AgentQuerier(Protocol):
    """Workspace agents, their scripts and logs."""

    async def insert_workspace_agent(
        self,
        *,
        resource_id: uuid.UUID,
        name: str,
        display_order: int,
        chat: bool,
        external: bool,
        directory: str,
        env: dict[str, str],
        auth_token_hash: bytes,
        connection_timeout_seconds: int,
        parent_id: uuid.UUID | None = None,
    ) -> WorkspaceAgent: ...

    async def insert_workspace_agent_scripts(self, rows: Sequence[dict[str, Any]]) -> None: ...

    async def list_workspace_agent_scripts(self, agent_id: uuid.UUID) -> list[AgentScript]: ...

    async def get_workspace_agent_by_id(self, agent_id: uuid.UUID) -> WorkspaceAgent | None: ...

    async def get_workspace_agent_by_token_hash(
        self, token_hash: bytes
    ) -> WorkspaceAgent | None: ...

    async def list_workspace_agents_by_job(self, job_id: uuid.UUID) -> list[WorkspaceAgent]: ...

    async def get_workspace_id_by_agent_id(self, agent_id: uuid.UUID) -> uuid.UUID | None: ...

    async def update_workspace_agent_connection(
        self,
        agent_id: uuid.UUID,
        *,
        first_connected_at: dt.datetime | None = None,
        last_connected_at: dt.datetime | None = None,
        disconnected_at: dt.datetime | None = None,
        replica_id: uuid.UUID | None = None,
        if_replica: uuid.UUID | None = None,
    ) -> WorkspaceAgent | None: ...

    async def update_workspace_agent_token(
        self, agent_id: uuid.UUID, token_hash: bytes
    ) -> WorkspaceAgent | None: ...

    async def update_workspace_agent_lifecycle(
        self, agent_id: uuid.UUID, state: str, *, claimed: bool | None = None
    ) -> WorkspaceAgent | None: ...

    async def insert_workspace_agent_logs(
        self, agent_id: uuid.UUID, entries: Sequence[tuple[uuid.UUID | None, str, str]]
    ) -> None: ...

    async def list_workspace_agent_logs(
        self,
        agent_id: uuid.UUID,
        *,
        after_id: int = 0,
        script_id: uuid.UUID | None = None,
        level: str | None = None,
        last: int | None = None,
    ) -> list[AgentLog]: ...


class AffinityQuerier(Protocol):
    """Template ranking signals and workspace activity."""

    async def get_template_ranking_signals(
        self,
        *,
        owner_id: uuid.UUID,
        organization_id: uuid.UUID,
        template_ids: Sequence[uuid.UUID],
        since: dt.datetime,
    ) -> list[TemplateRankingSignals]: ...

    async def touch_workspace(
        self, workspace_id: uuid.UUID, now: dt.datetime
    ) -> Workspace | None: ...
