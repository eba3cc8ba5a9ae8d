"""Run one workspace-build job: quota, agents and tokens, the backend, completion.

The runner is the only place that turns a build row into a :class:`BuildSpec`; the
backend sees the rendered document, the agent tokens and nothing of the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from berth.clock import Clock
from berth.db.authz import AuthzStore
from berth.db.engine import Database
from berth.db.records import ProvisionerJob, Workspace, WorkspaceBuild
from berth.domain.actors import as_provisioner
from berth.domain.enums import JobStatus, Transition
from berth.domain.template import TemplateDoc, validate_template_data
from berth.events import EventBus
from berth.provisioner.spec import AgentSpec, Backend, BuildFailed, BuildSpec, ResourceRecord

log = logging.getLogger("berth.provisioner")

INSUFFICIENT_QUOTA = "INSUFFICIENT_QUOTA"
SANDBOX_RESOURCE = "sandbox"


def hash_agent_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


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
        lines = output.splitlines() or [""]
        async with self._db.write() as raw:
            logs = await AuthzStore(raw, as_provisioner()).insert_provisioner_job_logs(
                self._job_id, [(stage, level, line) for line in lines]
            )
        if self._bus is not None and logs:
            await _publish(
                self._bus, f"job:{self._job_id}", {"type": "log", "last_id": logs[-1].id}
            )


async def _publish(bus: EventBus, channel: str, payload: Mapping[str, object]) -> None:
    try:
        await bus.publish(channel, payload)
    except Exception:
        log.warning("could not publish on %s", channel, exc_info=True)


class BuildRunner:
    """Turns a claimed job into a finished one."""

    def __init__(
        self,
        db: Database,
        bus: EventBus | None,
        backends: Mapping[str, Backend],
        config: RunnerConfig,
    ) -> None:
        self._db = db
        self._bus = bus
        self._backends = backends
        self._config = config

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
        sink = JobLog(self._db, self._bus, job.id)
        try:
            build, workspace = await self._load(job)
            await sink(
                f"build {build.build_number}: {build.transition} {workspace.name}", stage="init"
            )
            await self._execute(job, build, workspace, sink)
        except BuildFailed as exc:
            await sink(exc.message, stage="error", level="error")
            await self.finish(job.id, JobStatus.FAILED, error=exc.message, error_code=exc.code)
        except BaseException as exc:
            if isinstance(exc, Exception):
                log.exception("job %s failed unexpectedly", job.id)
                await self.finish(job.id, JobStatus.FAILED, error=f"internal error: {exc}")
                return
            await self.finish(job.id, JobStatus.CANCELED, error="the build was canceled")
            raise
        else:
            await self.finish(job.id, JobStatus.SUCCEEDED)

    async def _load(self, job: ProvisionerJob) -> tuple[WorkspaceBuild, Workspace]:
        async with self._db.read() as raw:
            store = AuthzStore(raw, as_provisioner())
            build = await store.get_workspace_build_by_job_id(job.id)
            workspace = build and await store.get_workspace_by_id(build.workspace_id)
        if build is None or not workspace:
            raise BuildFailed("the job's workspace build no longer exists")
        return build, workspace

    async def _execute(
        self, job: ProvisionerJob, build: WorkspaceBuild, workspace: Workspace, sink: JobLog
    ) -> None:
        if build.rendered is None:
            raise BuildFailed("the build has no rendered template")
        doc = validate_template_data(build.rendered, filename=f"build {build.build_number}")
        transition = Transition(build.transition)
        backend = self._backends.get(doc.backend.type.value)
        if backend is None:
            raise BuildFailed(f"no {doc.backend.type.value!r} backend is configured on this server")
        agents: list[AgentSpec] = []
        resource_id: uuid.UUID | None = None
        owner_name = ""
        async with self._db.write() as raw:
            store = AuthzStore(raw, as_provisioner())
            owner = await store.get_user_by_id(workspace.owner_id)
            owner_name = owner.username if owner else "user"
            if transition is Transition.START:
                await self._check_quota(store, workspace, build)
                resource = await store.insert_workspace_resource(
                    job_id=job.id, type=SANDBOX_RESOURCE, name=workspace.name, handle={}
                )
                resource_id = resource.id
                agents = await _insert_agents(store, resource.id, doc)
        if agents:
            await sink(f"agents: {', '.join(a.name for a in agents)}", stage="init")
        spec = BuildSpec(
            workspace_id=workspace.id,
            workspace_name=workspace.name,
            owner_name=owner_name,
            build_id=build.id,
            build_number=build.build_number,
            template=doc,
            agents=agents,
            server_url=self._config.server_url,
            agent_zipapp=self._config.agent_zipapp(),
            state_dir=self._config.state_dir,
            labels={"berth.workspace_id": str(workspace.id), "berth.build_id": str(build.id)},
        )
        records = await backend.apply(spec, transition, sink)
        await self._record(workspace, transition, resource_id, records)

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

    async def _record(
        self,
        workspace: Workspace,
        transition: Transition,
        resource_id: uuid.UUID | None,
        records: list[ResourceRecord],
    ) -> None:
        async with self._db.write() as raw:
            store = AuthzStore(raw, as_provisioner())
            if resource_id is not None:
                handle = {
                    "records": [
                        {"type": r.type, "name": r.name, "handle": r.handle} for r in records
                    ]
                }
                await store.update_workspace_resource_handle(resource_id, handle)
            now = self.clock.now()
            if transition is Transition.DELETE:
                await store.update_workspace(workspace.id, deleted=True, deadline=None)
            elif transition is Transition.START and workspace.ttl_ms:
                await store.update_workspace(
                    workspace.id, deadline=now + dt.timedelta(milliseconds=workspace.ttl_ms)
                )
            elif transition is Transition.STOP:
                await store.update_workspace(workspace.id, deadline=None)

    async def finish(
        self,
        job_id: uuid.UUID,
        status: JobStatus,
        *,
        error: str | None = None,
        error_code: str | None = None,
    ) -> None:
        """Complete the job (if it is not terminal yet) and publish its new state."""
        async with self._db.write() as raw:
            store = AuthzStore(raw, as_provisioner())
            job = await store.complete_provisioner_job(
                job_id, status=status.value, error=error, error_code=error_code
            )
            build = job and await store.get_workspace_build_by_job_id(job_id)
        if self._bus is not None and job is not None:
            await _publish(self._bus, f"job:{job_id}", {"type": "status", "status": job.status})
            if build:
                await _publish(
                    self._bus,
                    f"workspace:{build.workspace_id}",
                    {"type": "build", "build_id": str(build.id), "status": job.status},
                )


async def _insert_agents(
    store: AuthzStore, resource_id: uuid.UUID, doc: TemplateDoc
) -> list[AgentSpec]:
    specs: list[AgentSpec] = []
    for agent_doc in doc.agents:
        token = secrets.token_urlsafe(32)
        agent = await store.insert_workspace_agent(
            resource_id=resource_id,
            name=agent_doc.name,
            display_order=agent_doc.display_order,
            chat=agent_doc.chat,
            external=agent_doc.external,
            directory=agent_doc.directory,
            env=dict(agent_doc.env),
            auth_token_hash=hash_agent_token(token),
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
