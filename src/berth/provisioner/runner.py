"""Run one workspace-build job: quota, agents and tokens, the backend, completion.

A build runs in three steps around the backend's ``apply``, kept apart so that they
work the same in-process and over HTTP (a standalone ``berth provisioner``, whose
server runs the database steps for it, see :mod:`berth.provisioner.remote`):

1. :meth:`BuildSteps.prepare` (database): load the build, check the backend exists,
   check the quota, insert the sandbox resource and the agents with fresh tokens.
   The result, a :class:`PreparedBuild`, is the only place a build row becomes a
   :class:`BuildSpec`; the backend sees the rendered document, the agent tokens and
   nothing of the database.
2. ``backend.apply``, wherever the worker runs.
3. :meth:`BuildSteps.record` and :meth:`BuildSteps.finish` (database): store what the
   backend created, move the workspace (deleted, deadline), complete the job and
   publish its new state.

:class:`BuildRunner` chains them for the built-in workers.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from berth.clock import Clock
from berth.db.authz import AuthzStore
from berth.db.engine import Database
from berth.domain.actors import as_provisioner
from berth.domain.credentials import hash_secret, new_agent_token
from berth.domain.enums import JobStatus, Transition
from berth.domain.template import TemplateDoc, validate_template_data
from berth.events import EventBus, publish_quietly
from berth.provisioner.spec import AgentSpec, Backend, BuildFailed, BuildSpec, ResourceRecord
from berth.records import ProvisionerJob, Workspace, WorkspaceBuild

log = logging.getLogger("berth.provisioner")

INSUFFICIENT_QUOTA = "INSUFFICIENT_QUOTA"
SANDBOX_RESOURCE = "sandbox"


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    server_url: str
    state_dir: Path
    agent_zipapp: Callable[[], Path]
    """Returns the path of the agent zipapp, building it on first use."""


class JobLog:
    """The :class:`~berth.provisioner.spec.LogSink` of one job: stored in order, published."""

    def __init__(self, db: Database, bus: EventBus | None, job_id: uuid.UUID) -> None:
        self._db = db
        self._bus = bus
        self._job_id = job_id

    async def __call__(self, output: str, *, stage: str = "apply", level: str = "info") -> None:
        await self.append([(stage, level, output)])

    async def append(self, entries: Sequence[tuple[str, str, str]]) -> None:
        """Store ``(stage, level, output)`` entries, one row per line, in one transaction."""
        rows = [
            (stage, level, line)
            for stage, level, output in entries
            for line in output.splitlines() or [""]
        ]
        if not rows:
            return
        async with self._db.write() as raw:
            logs = await AuthzStore(raw, as_provisioner()).insert_provisioner_job_logs(
                self._job_id, rows
            )
        if logs:
            await publish_quietly(
                self._bus, f"job:{self._job_id}", {"type": "log", "last_id": logs[-1].id}
            )


@dataclass(frozen=True, slots=True)
class PreparedBuild:
    """A claimed job made ready for a backend (step 1): what :meth:`spec` needs."""

    job_id: uuid.UUID
    workspace: Workspace
    build: WorkspaceBuild
    template: TemplateDoc
    """The rendered template document of this build."""
    transition: Transition
    owner_name: str
    agents: list[AgentSpec]
    """The agents of a ``start`` build, with their fresh tokens (empty otherwise)."""

    @property
    def backend_type(self) -> str:
        return self.template.backend.type.value

    @property
    def labels(self) -> dict[str, str]:
        return {
            "berth.workspace_id": str(self.workspace.id),
            "berth.build_id": str(self.build.id),
        }

    def spec(self, *, server_url: str, agent_zipapp: Path, state_dir: Path) -> BuildSpec:
        return BuildSpec(
            workspace_id=self.workspace.id,
            workspace_name=self.workspace.name,
            owner_name=self.owner_name,
            build_id=self.build.id,
            build_number=self.build.build_number,
            template=self.template,
            agents=list(self.agents),
            server_url=server_url,
            agent_zipapp=agent_zipapp,
            state_dir=state_dir,
            labels=self.labels,
        )


class BuildSteps:
    """The database side of a build: prepare, record, finish (and the job's log)."""

    def __init__(self, db: Database, bus: EventBus | None) -> None:
        self._db = db
        self._bus = bus

    @property
    def clock(self) -> Clock:
        return self._db.clock

    def log(self, job_id: uuid.UUID) -> JobLog:
        return JobLog(self._db, self._bus, job_id)

    async def prepare(
        self,
        job_id: uuid.UUID,
        *,
        backends: Collection[str] | None = None,
        where: str = "server",
    ) -> PreparedBuild:
        """Step 1: raise :class:`BuildFailed` when the build cannot run.

        ``backends`` are the backend types the worker offers (``None``: do not check);
        ``where`` names the worker in the error when the template's is missing.
        """
        sink = self.log(job_id)
        build, workspace = await self._load(job_id)
        await sink(f"build {build.build_number}: {build.transition} {workspace.name}", stage="init")
        if build.rendered is None:
            raise BuildFailed("the build has no rendered template")
        doc = validate_template_data(build.rendered, filename=f"build {build.build_number}")
        transition = Transition(build.transition)
        if backends is not None and doc.backend.type.value not in backends:
            raise BuildFailed(
                f"no {doc.backend.type.value!r} backend is configured on this {where}"
            )
        agents: list[AgentSpec] = []
        async with self._db.write() as raw:
            store = AuthzStore(raw, as_provisioner())
            owner = await store.get_user_by_id(workspace.owner_id)
            owner_name = owner.username if owner else "user"
            if transition is Transition.START:
                await self._check_quota(store, workspace, build)
                resource = await store.insert_workspace_resource(
                    job_id=job_id, type=SANDBOX_RESOURCE, name=workspace.name, handle={}
                )
                agents = await _insert_agents(store, resource.id, doc)
        if agents:
            await sink(f"agents: {', '.join(a.name for a in agents)}", stage="init")
        return PreparedBuild(
            job_id=job_id,
            workspace=workspace,
            build=build,
            template=doc,
            transition=transition,
            owner_name=owner_name,
            agents=agents,
        )

    async def _load(self, job_id: uuid.UUID) -> tuple[WorkspaceBuild, Workspace]:
        async with self._db.read() as raw:
            store = AuthzStore(raw, as_provisioner())
            build = await store.get_workspace_build_by_job_id(job_id)
            workspace = build and await store.get_workspace_by_id(build.workspace_id)
        if build is None or not workspace:
            raise BuildFailed("the job's workspace build no longer exists")
        return build, workspace

    async def _check_quota(
        self, store: AuthzStore, workspace: Workspace, build: WorkspaceBuild
    ) -> None:
        budget = await store.get_quota_allowance(workspace.owner_id, workspace.organization_id)
        if budget is None or build.daily_cost == 0:
            return
        consumed = await store.get_quota_consumed(
            workspace.owner_id, workspace.organization_id, exclude_workspace_ids=[workspace.id]
        )
        if consumed + build.daily_cost > budget:
            raise BuildFailed(
                f"insufficient quota: this workspace costs {build.daily_cost} credits a day, "
                f"{consumed} of {budget} are in use",
                code=INSUFFICIENT_QUOTA,
            )

    async def record(self, job_id: uuid.UUID, records: Sequence[ResourceRecord]) -> None:
        """Step 3a, after a successful apply: keep the resources, move the workspace."""
        async with self._db.write() as raw:
            store = AuthzStore(raw, as_provisioner())
            build = await store.get_workspace_build_by_job_id(job_id)
            workspace = build and await store.get_workspace_by_id(build.workspace_id)
            if build is None or not workspace:
                raise BuildFailed("the job's workspace build no longer exists")
            transition = Transition(build.transition)
            if transition is Transition.START:
                handle = {
                    "records": [
                        {"type": r.type, "name": r.name, "handle": r.handle} for r in records
                    ]
                }
                for resource in await store.list_workspace_resources_by_job(job_id):
                    if resource.type == SANDBOX_RESOURCE:
                        await store.update_workspace_resource_handle(resource.id, handle)
            now = self.clock.now()
            if transition is Transition.DELETE:
                await store.update_workspace(workspace.id, deleted=True, deadline=None)
            elif transition is Transition.START and workspace.ttl_ms:
                await store.update_workspace(
                    workspace.id, deadline=now + dt.timedelta(milliseconds=workspace.ttl_ms)
                )
            elif transition is Transition.STOP:
                await store.update_workspace(workspace.id, deadline=None)

    async def fail(self, job_id: uuid.UUID, exc: BuildFailed) -> ProvisionerJob | None:
        """Step 3b, for a build that cannot complete: log the reason, fail the job."""
        await self.log(job_id)(exc.message, stage="error", level="error")
        return await self.finish(job_id, JobStatus.FAILED, error=exc.message, error_code=exc.code)

    async def finish(
        self,
        job_id: uuid.UUID,
        status: JobStatus,
        *,
        error: str | None = None,
        error_code: str | None = None,
    ) -> ProvisionerJob | None:
        """Complete the job (if it is not terminal yet) and publish its new state.

        Returns the completed job, or ``None`` when it was already terminal.
        """
        async with self._db.write() as raw:
            store = AuthzStore(raw, as_provisioner())
            job = await store.complete_provisioner_job(
                job_id, status=status.value, error=error, error_code=error_code
            )
            build = job and await store.get_workspace_build_by_job_id(job_id)
        if job is not None:
            await publish_quietly(
                self._bus, f"job:{job_id}", {"type": "status", "status": job.status}
            )
            if build:
                await publish_quietly(
                    self._bus,
                    f"workspace:{build.workspace_id}",
                    {"type": "build", "build_id": str(build.id), "status": job.status},
                )
        return job


class BuildRunner:
    """Turns a claimed job into a finished one, in-process: prepare, apply, record."""

    def __init__(
        self,
        db: Database,
        bus: EventBus | None,
        backends: Mapping[str, Backend],
        config: RunnerConfig,
    ) -> None:
        self._db = db
        self._backends = backends
        self._config = config
        self.steps = BuildSteps(db, bus)

    @property
    def backends(self) -> Mapping[str, Backend]:
        return self._backends

    @property
    def config(self) -> RunnerConfig:
        return self._config

    @property
    def clock(self) -> Clock:
        return self._db.clock

    async def run(self, job: ProvisionerJob) -> None:
        """Run ``job`` to a terminal state. Cancellation marks it canceled."""
        sink = self.steps.log(job.id)
        try:
            prepared = await self.steps.prepare(job.id, backends=self._backends)
            spec = prepared.spec(
                server_url=self._config.server_url,
                agent_zipapp=self._config.agent_zipapp(),
                state_dir=self._config.state_dir,
            )
            backend = self._backends[prepared.backend_type]
            records = await backend.apply(spec, prepared.transition, sink)
            await self.steps.record(job.id, records)
        except BuildFailed as exc:
            await self.steps.fail(job.id, exc)
        except BaseException as exc:
            if isinstance(exc, Exception):
                log.exception("job %s failed unexpectedly", job.id)
                await self.finish(job.id, JobStatus.FAILED, error=f"internal error: {exc}")
                return
            await self.finish(job.id, JobStatus.CANCELED, error="the build was canceled")
            raise
        else:
            await self.finish(job.id, JobStatus.SUCCEEDED)

    async def finish(
        self,
        job_id: uuid.UUID,
        status: JobStatus,
        *,
        error: str | None = None,
        error_code: str | None = None,
    ) -> None:
        """Complete the job (if it is not terminal yet) and publish its new state."""
        await self.steps.finish(job_id, status, error=error, error_code=error_code)


async def _insert_agents(
    store: AuthzStore, resource_id: uuid.UUID, doc: TemplateDoc
) -> list[AgentSpec]:
    specs: list[AgentSpec] = []
    for agent_doc in doc.agents:
        token = new_agent_token()
        agent = await store.insert_workspace_agent(
            resource_id=resource_id,
            name=agent_doc.name,
            display_order=agent_doc.display_order,
            chat=agent_doc.chat,
            external=agent_doc.external,
            directory=agent_doc.directory,
            env=dict(agent_doc.env),
            auth_token_hash=hash_secret(token),
            connection_timeout_seconds=int(agent_doc.connection_timeout.total_seconds()),
        )
        await store.insert_workspace_agent_scripts(
            [
                {
                    "agent_id": agent.id,
                    "display_name": s.display_name,
                    "script": s.script,
                    "run_on": s.run_on,
                    "blocks_login": s.blocks_login,
                    "timeout_seconds": int(s.timeout.total_seconds()),
                    "display_order": i,
                }
                for i, s in enumerate(agent_doc.scripts)
            ]
        )
        specs.append(
            AgentSpec(
                id=agent.id,
                name=agent.name,
                token=token,
                directory=agent.directory,
                env=dict(agent_doc.env),
                external=agent_doc.external,
            )
        )
    return specs
