"""Rows read back as the ``system`` actor, for assertions (both worlds of the tests use it)."""

from __future__ import annotations

import uuid

from berth.db.engine import Database
from berth.domain.actors import as_system
from berth.records import ProvisionerJob, Workspace, WorkspaceBuild


class Rows:
    """Reads of a test world's database; a missing row fails the test."""

    db: Database

    async def job(self, job_id: uuid.UUID) -> ProvisionerJob:
        async with self.db.read(as_system()) as store:
            job = await store.get_provisioner_job_by_id(job_id)
        assert job is not None
        return job

    async def workspace(self, workspace_id: uuid.UUID) -> Workspace:
        async with self.db.read(as_system()) as store:
            workspace = await store.get_workspace_by_id(workspace_id)
        assert workspace is not None
        return workspace

    async def build(self, build_id: uuid.UUID) -> WorkspaceBuild:
        async with self.db.read(as_system()) as store:
            build = await store.get_workspace_build_by_id(build_id)
        assert build is not None
        return build

    async def builds(self, workspace_id: uuid.UUID) -> list[WorkspaceBuild]:
        async with self.db.read(as_system()) as store:
            return await store.list_workspace_builds(workspace_id)
