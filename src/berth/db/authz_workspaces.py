"""AuthzStore's half for workspaces, builds, jobs, resources and agents.

A workspace is the owner's; its builds, parameters and agents are visible to whoever
may see the workspace. Jobs are driven by the provisioner; users see a job through
the workspace it builds. Agents report through the gateway actor only. Provisioner
keys are the site owner's to manage; the provisioner actor reads them to authenticate.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from berth.db.authz_base import AuthzBase, not_found
from berth.db.policy import Action, Kind, Resource
from berth.records import (
    AgentLog,
    AgentScript,
    BuildParameter,
    JobLog,
    LatestBuild,
    ProvisionerJob,
    ProvisionerKey,
    Workspace,
    WorkspaceAgent,
    WorkspaceBuild,
    WorkspaceResource,
)

_JOBS = Resource(Kind.JOB)
_AGENTS = Resource(Kind.AGENT)


def workspace_resource(w: Workspace, kind: Kind = Kind.WORKSPACE) -> Resource:
    return Resource(kind, organization_id=w.organization_id, owner_id=w.owner_id)


class WorkspaceAuthz(AuthzBase):
    # --- helpers ----------------------------------------------------------------------

    async def _workspace(self, workspace_id: uuid.UUID) -> Workspace:
        workspace = await self._inner.get_workspace_by_id(workspace_id)
        if workspace is None:
            raise not_found(Kind.WORKSPACE)
        return workspace

    async def _build_workspace(self, build_id: uuid.UUID) -> Workspace | None:
        build = await self._inner.get_workspace_build_by_id(build_id)
        return None if build is None else await self._inner.get_workspace_by_id(build.workspace_id)

    async def _can_read_job(self, job: ProvisionerJob) -> bool:
        if self._can(Action.READ, Resource(Kind.JOB, job.organization_id, job.initiator_id)):
            return True
        build = await self._inner.get_workspace_build_by_job_id(job.id)
        if build is None:
            return False
        workspace = await self._inner.get_workspace_by_id(build.workspace_id)
        return workspace is not None and self._can(Action.READ, workspace_resource(workspace))

    async def _job_visible(self, job_id: uuid.UUID) -> bool:
        job = await self._inner.get_provisioner_job_by_id(job_id)
        return job is not None and await self._can_read_job(job)

    async def _agent_visible(self, agent_id: uuid.UUID) -> bool:
        if self._can(Action.READ, _AGENTS):
            return True
        workspace_id = await self._inner.get_workspace_id_by_agent_id(agent_id)
        workspace = workspace_id and await self._inner.get_workspace_by_id(workspace_id)
        return bool(workspace) and self._can(
            Action.READ,
            workspace_resource(workspace, Kind.AGENT),  # pyright: ignore[reportArgumentType]
        )

    # --- workspaces -------------------------------------------------------------------

    async def insert_workspace(
        self,
        *,
        owner_id: uuid.UUID,
        organization_id: uuid.UUID,
        template_id: uuid.UUID,
        name: str,
        ttl_ms: int | None,
    ) -> Workspace:
        self._require(Action.CREATE, Resource(Kind.WORKSPACE, organization_id, owner_id))
        return await self._inner.insert_workspace(
            owner_id=owner_id,
            organization_id=organization_id,
            template_id=template_id,
            name=name,
            ttl_ms=ttl_ms,
        )

    async def get_workspace_by_id(self, workspace_id: uuid.UUID) -> Workspace | None:
        w = await self._inner.get_workspace_by_id(workspace_id)
        return self._visible(w, w and workspace_resource(w))

    async def get_workspace_by_owner_and_name(
        self, owner_id: uuid.UUID, name: str
    ) -> Workspace | None:
        w = await self._inner.get_workspace_by_owner_and_name(owner_id, name)
        return self._visible(w, w and workspace_resource(w))

    async def list_workspaces(
        self, *, owner_id: uuid.UUID | None = None, template_id: uuid.UUID | None = None
    ) -> list[Workspace]:
        found = await self._inner.list_workspaces(owner_id=owner_id, template_id=template_id)
        return [w for w in found if self._can(Action.READ, workspace_resource(w))]

    async def list_workspaces_due(self, now: dt.datetime) -> list[Workspace]:
        found = await self._inner.list_workspaces_due(now)
        return [w for w in found if self._can(Action.READ, workspace_resource(w))]

    async def get_next_workspace_deadline(self, now: dt.datetime) -> dt.datetime | None:
        self._require(Action.READ, Resource(Kind.WORKSPACE))
        return await self._inner.get_next_workspace_deadline(now)

    async def update_workspace(self, workspace_id: uuid.UUID, **fields: Any) -> Workspace | None:
        self._require(Action.UPDATE, workspace_resource(await self._workspace(workspace_id)))
        return await self._inner.update_workspace(workspace_id, **fields)

    # --- builds -----------------------------------------------------------------------

    async def insert_workspace_build(self, *, workspace_id: uuid.UUID, **kw: Any) -> WorkspaceBuild:
        self._require(Action.UPDATE, workspace_resource(await self._workspace(workspace_id)))
        return await self._inner.insert_workspace_build(workspace_id=workspace_id, **kw)

    async def get_workspace_build_by_id(self, build_id: uuid.UUID) -> WorkspaceBuild | None:
        build = await self._inner.get_workspace_build_by_id(build_id)
        workspace = build and await self._inner.get_workspace_by_id(build.workspace_id)
        return self._visible(build, workspace and workspace_resource(workspace))

    async def get_workspace_build_by_job_id(self, job_id: uuid.UUID) -> WorkspaceBuild | None:
        build = await self._inner.get_workspace_build_by_job_id(job_id)
        workspace = build and await self._inner.get_workspace_by_id(build.workspace_id)
        return self._visible(build, workspace and workspace_resource(workspace))

    async def get_latest_workspace_build_by_workspace_id(
        self, workspace_id: uuid.UUID
    ) -> WorkspaceBuild | None:
        if await self.get_workspace_by_id(workspace_id) is None:
            return None
        return await self._inner.get_latest_workspace_build_by_workspace_id(workspace_id)

    async def get_workspace_with_latest_build(self, workspace_id: uuid.UUID) -> LatestBuild | None:
        """The workspace, its latest build, the build's job and agents, with one check.

        A build, its job and its agents are visible exactly when their workspace is
        (see :meth:`_can_read_job`), so once the workspace is, they are read without
        the check each one's own method makes (which reads the workspace or the job
        again): four statements for what the tools and the pages read on every call."""
        workspace = await self.get_workspace_by_id(workspace_id)
        if workspace is None:
            return None
        build = await self._inner.get_latest_workspace_build_by_workspace_id(workspace_id)
        job = None if build is None else await self._inner.get_provisioner_job_by_id(build.job_id)
        agents = [] if job is None else await self._inner.list_workspace_agents_by_job(job.id)
        return LatestBuild(workspace, build, job, agents)

    async def list_workspace_builds(self, workspace_id: uuid.UUID) -> list[WorkspaceBuild]:
        if await self.get_workspace_by_id(workspace_id) is None:
            return []
        return await self._inner.list_workspace_builds(workspace_id)

    async def insert_workspace_build_parameters(
        self, build_id: uuid.UUID, values: Mapping[str, str]
    ) -> None:
        workspace = await self._build_workspace(build_id)
        if workspace is None:
            raise not_found(Kind.WORKSPACE)
        self._require(Action.UPDATE, workspace_resource(workspace))
        await self._inner.insert_workspace_build_parameters(build_id, values)

    async def list_workspace_build_parameters(self, build_id: uuid.UUID) -> list[BuildParameter]:
        if await self.get_workspace_build_by_id(build_id) is None:
            return []
        return await self._inner.list_workspace_build_parameters(build_id)

    async def get_quota_allowance(
        self, user_id: uuid.UUID, organization_id: uuid.UUID
    ) -> int | None:
        self._require(Action.READ, Resource(Kind.WORKSPACE, organization_id, user_id))
        return await self._inner.get_quota_allowance(user_id, organization_id)

    async def get_quota_consumed(
        self,
        user_id: uuid.UUID,
        organization_id: uuid.UUID,
        *,
        exclude_workspace_ids: Sequence[uuid.UUID] = (),
    ) -> int:
        self._require(Action.READ, Resource(Kind.WORKSPACE, organization_id, user_id))
        return await self._inner.get_quota_consumed(
            user_id, organization_id, exclude_workspace_ids=exclude_workspace_ids
        )

    # --- jobs -------------------------------------------------------------------------

    async def insert_provisioner_job(
        self, *, organization_id: uuid.UUID, initiator_id: uuid.UUID, **kw: Any
    ) -> ProvisionerJob:
        self._require(Action.CREATE, Resource(Kind.JOB, organization_id, initiator_id))
        return await self._inner.insert_provisioner_job(
            organization_id=organization_id, initiator_id=initiator_id, **kw
        )

    async def get_provisioner_job_by_id(self, job_id: uuid.UUID) -> ProvisionerJob | None:
        job = await self._inner.get_provisioner_job_by_id(job_id)
        return job if job is not None and await self._can_read_job(job) else None

    async def count_provisioner_jobs_ahead(self, job: ProvisionerJob) -> int:
        # A count names no other job, so whoever may read this one may know its place.
        if not await self._can_read_job(job):
            raise not_found(Kind.JOB)
        return await self._inner.count_provisioner_jobs_ahead(job)

    async def acquire_provisioner_job(
        self,
        worker_id: str,
        *,
        organization_id: uuid.UUID | None = None,
        places: Collection[str] = (),
    ) -> ProvisionerJob | None:
        self._require(Action.UPDATE, _JOBS)
        return await self._inner.acquire_provisioner_job(
            worker_id, organization_id=organization_id, places=places
        )

    async def update_provisioner_job_heartbeat(
        self, job_id: uuid.UUID, worker_id: str
    ) -> ProvisionerJob | None:
        self._require(Action.UPDATE, _JOBS)
        return await self._inner.update_provisioner_job_heartbeat(job_id, worker_id)

    async def complete_provisioner_job(
        self,
        job_id: uuid.UUID,
        *,
        status: str,
        error: str | None = None,
        error_code: str | None = None,
    ) -> ProvisionerJob | None:
        self._require(Action.UPDATE, _JOBS)
        return await self._inner.complete_provisioner_job(
            job_id, status=status, error=error, error_code=error_code
        )

    async def request_provisioner_job_cancel(self, job_id: uuid.UUID) -> ProvisionerJob | None:
        if not self._can(Action.UPDATE, _JOBS):
            build = await self._inner.get_workspace_build_by_job_id(job_id)
            if build is None:
                raise not_found(Kind.JOB)
            self._require(
                Action.UPDATE, workspace_resource(await self._workspace(build.workspace_id))
            )
        return await self._inner.request_provisioner_job_cancel(job_id)

    async def list_stale_provisioner_jobs(
        self, heartbeat_before: dt.datetime
    ) -> list[ProvisionerJob]:
        self._require(Action.UPDATE, _JOBS)
        return await self._inner.list_stale_provisioner_jobs(heartbeat_before)

    async def insert_provisioner_job_logs(
        self, job_id: uuid.UUID, entries: Sequence[tuple[str, str, str]]
    ) -> list[JobLog]:
        self._require(Action.UPDATE, _JOBS)
        return await self._inner.insert_provisioner_job_logs(job_id, entries)

    async def list_provisioner_job_logs(
        self, job_id: uuid.UUID, *, after_id: int = 0
    ) -> list[JobLog]:
        if not await self._job_visible(job_id):
            return []
        return await self._inner.list_provisioner_job_logs(job_id, after_id=after_id)

    # --- provisioner keys -------------------------------------------------------------

    async def insert_provisioner_key(
        self, *, key_id: str, organization_id: uuid.UUID, name: str, hashed_secret: bytes
    ) -> ProvisionerKey:
        self._require(Action.CREATE, Resource(Kind.PROVISIONER_KEY, organization_id))
        return await self._inner.insert_provisioner_key(
            key_id=key_id, organization_id=organization_id, name=name, hashed_secret=hashed_secret
        )

    async def get_provisioner_key_by_id(self, key_id: str) -> ProvisionerKey | None:
        key = await self._inner.get_provisioner_key_by_id(key_id)
        return self._visible(key, key and Resource(Kind.PROVISIONER_KEY, key.organization_id))

    async def list_provisioner_keys(
        self, *, organization_id: uuid.UUID | None = None
    ) -> list[ProvisionerKey]:
        keys = await self._inner.list_provisioner_keys(organization_id=organization_id)
        return [
            k
            for k in keys
            if self._can(Action.READ, Resource(Kind.PROVISIONER_KEY, k.organization_id))
        ]

    async def delete_provisioner_key(self, key_id: str) -> bool:
        key = await self._inner.get_provisioner_key_by_id(key_id)
        if key is None:
            return False
        self._require(Action.DELETE, Resource(Kind.PROVISIONER_KEY, key.organization_id))
        return await self._inner.delete_provisioner_key(key_id)

    # --- resources and agents ---------------------------------------------------------

    async def insert_workspace_resource(self, **kw: Any) -> WorkspaceResource:
        self._require(Action.UPDATE, _JOBS)
        return await self._inner.insert_workspace_resource(**kw)

    async def update_workspace_resource_handle(
        self, resource_id: uuid.UUID, handle: dict[str, Any]
    ) -> WorkspaceResource | None:
        self._require(Action.UPDATE, _JOBS)
        return await self._inner.update_workspace_resource_handle(resource_id, handle)

    async def list_workspace_resources_by_job(self, job_id: uuid.UUID) -> list[WorkspaceResource]:
        if not await self._job_visible(job_id):
            return []
        return await self._inner.list_workspace_resources_by_job(job_id)

    async def insert_workspace_agent(self, **kw: Any) -> WorkspaceAgent:
        self._require(Action.CREATE, _AGENTS)
        return await self._inner.insert_workspace_agent(**kw)

    async def insert_workspace_agent_scripts(self, rows: Sequence[dict[str, Any]]) -> None:
        self._require(Action.CREATE, _AGENTS)
        await self._inner.insert_workspace_agent_scripts(rows)

    async def list_workspace_agent_scripts(self, agent_id: uuid.UUID) -> list[AgentScript]:
        if not await self._agent_visible(agent_id):
            return []
        return await self._inner.list_workspace_agent_scripts(agent_id)

    async def get_workspace_agent_by_id(self, agent_id: uuid.UUID) -> WorkspaceAgent | None:
        agent = await self._inner.get_workspace_agent_by_id(agent_id)
        return agent if agent is not None and await self._agent_visible(agent_id) else None

    async def get_workspace_agent_by_token_hash(self, token_hash: bytes) -> WorkspaceAgent | None:
        if not self._can(Action.READ, _AGENTS):
            return None
        return await self._inner.get_workspace_agent_by_token_hash(token_hash)

    async def list_workspace_agents_by_job(self, job_id: uuid.UUID) -> list[WorkspaceAgent]:
        if not await self._job_visible(job_id):
            return []
        return await self._inner.list_workspace_agents_by_job(job_id)

    async def get_workspace_id_by_agent_id(self, agent_id: uuid.UUID) -> uuid.UUID | None:
        if not await self._agent_visible(agent_id):
            return None
        return await self._inner.get_workspace_id_by_agent_id(agent_id)

    async def update_workspace_agent_connection(
        self, agent_id: uuid.UUID, **kw: Any
    ) -> WorkspaceAgent | None:
        self._require(Action.UPDATE, _AGENTS)
        return await self._inner.update_workspace_agent_connection(agent_id, **kw)

    async def update_workspace_agent_token(
        self, agent_id: uuid.UUID, token_hash: bytes
    ) -> WorkspaceAgent | None:
        """The workspace's owner may replace an agent's token (external agents)."""
        workspace_id = await self._inner.get_workspace_id_by_agent_id(agent_id)
        if workspace_id is None:
            raise not_found(Kind.AGENT)
        self._require(Action.UPDATE, workspace_resource(await self._workspace(workspace_id)))
        return await self._inner.update_workspace_agent_token(agent_id, token_hash)

    async def update_workspace_agent_lifecycle(
        self, agent_id: uuid.UUID, state: str, *, claimed: bool | None = None
    ) -> WorkspaceAgent | None:
        self._require(Action.UPDATE, _AGENTS)
        return await self._inner.update_workspace_agent_lifecycle(agent_id, state, claimed=claimed)

    async def insert_workspace_agent_logs(
        self, agent_id: uuid.UUID, entries: Sequence[tuple[uuid.UUID | None, str, str]]
    ) -> None:
        self._require(Action.UPDATE, _AGENTS)
        await self._inner.insert_workspace_agent_logs(agent_id, entries)

    async def list_workspace_agent_logs(
        self,
        agent_id: uuid.UUID,
        *,
        after_id: int = 0,
        script_id: uuid.UUID | None = None,
        level: str | None = None,
        last: int | None = None,
    ) -> list[AgentLog]:
        if not await self._agent_visible(agent_id):
            return []
        return await self._inner.list_workspace_agent_logs(
            agent_id, after_id=after_id, script_id=script_id, level=level, last=last
        )
