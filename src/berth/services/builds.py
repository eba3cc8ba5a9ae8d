"""The build pipeline's database steps: claim, prepare, log, record, finish, reap.

Every build runs the same steps, wherever its worker runs (see
:mod:`berth.provisioner.jobs`); :class:`berth.services.jobs.LocalJobs` chains them for
workers:

1. :func:`claim` the most urgent pending job (humans first, then the oldest).
2. :func:`prepare` it: load the build, check the backend exists, check the quota,
   insert the sandbox resource and the agents with fresh tokens. The result, an
   :class:`~berth.provisioner.jobs.AcquiredJob`, is made by :func:`_acquired` alone —
   for a build and for the reaper's clean-up alike — and is all a backend sees.
3. The worker applies it, streaming output into :class:`JobLog`.
4. :func:`record` what the backend created and move the workspace (deleted, deadline);
   :func:`finish` the job (or :func:`fail` it) and publish its new state.

:func:`reap` fails jobs whose worker stopped heart-beating and stops the sandbox such a
start build may have left running. Every step acts as the ``provisioner`` system actor.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from berth.db.authz import AuthzStore
from berth.domain.actors import as_provisioner
from berth.domain.credentials import hash_secret, new_agent_token
from berth.domain.enums import JobStatus, Transition
from berth.domain.template import AgentDoc, TemplateDoc, validate_template_data
from berth.errors import BuildFailed, InvalidInput
from berth.events import messages
from berth.provisioner.jobs import AcquiredJob, AgentWire, Host, SpecWire
from berth.provisioner.spec import Place, ResourceRecord
from berth.records import ProvisionerJob, Workspace, WorkspaceAgent, WorkspaceBuild
from berth.services import placement
from berth.services.base import Ctx
from berth.services.quotas import check_quota

log = logging.getLogger("berth.provisioner")

SANDBOX_RESOURCE = "sandbox"


def provisioner(ctx: Ctx) -> Ctx:
    return ctx.acting_as(as_provisioner())


class JobLog:
    """The :class:`~berth.provisioner.spec.LogSink` of one job: stored in order, published."""

    def __init__(self, ctx: Ctx, job_id: uuid.UUID) -> None:
        self._ctx = provisioner(ctx)
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
        async with self._ctx.write() as store:
            logs = await store.insert_provisioner_job_logs(self._job_id, rows)
        if logs:
            await self._ctx.publish(
                messages.job_logs(self._job_id), messages.JobLogsAppended(last_id=logs[-1].id)
            )


async def claim(
    ctx: Ctx,
    worker_id: str,
    *,
    organization_id: uuid.UUID | None = None,
    places: Mapping[str, Place] | None = None,
) -> ProvisionerJob | None:
    """Step 1: the most urgent pending job the worker can reach (its ``places``: see
    :mod:`berth.services.placement`), now running for ``worker_id``."""
    ctx = provisioner(ctx)
    ids = [p.id for p in (places or {}).values()]
    async with ctx.write() as store:
        job = await store.acquire_provisioner_job(
            worker_id, organization_id=organization_id, places=ids
        )
    if job is not None:
        await ctx.publish(messages.job(job.id), messages.JobStatusChanged(status=job.status))
    return job


async def prepare(
    ctx: Ctx,
    job_id: uuid.UUID,
    *,
    server_url: str,
    backends: Collection[str] | None = None,
    places: Mapping[str, Place] | None = None,
    where: str = "server",
) -> AcquiredJob:
    """Step 2: the job made ready for a backend; :class:`BuildFailed` when it cannot run.

    ``backends`` are the backend types the worker offers (``None``: do not check);
    ``places`` where they build (a first start ties the workspace to its backend's);
    ``where`` names the worker in the error when the template's is missing.
    """
    ctx = provisioner(ctx)
    sink = JobLog(ctx, job_id)
    build, workspace = await _load(ctx, job_id)
    await sink(f"build {build.build_number}: {build.transition} {workspace.name}", stage="init")
    doc = _document(build)
    transition = Transition(build.transition)
    if backends is not None and doc.backend.type.value not in backends:
        raise BuildFailed(f"no {doc.backend.type.value!r} backend is configured on this {where}")
    place = placement.place_for(workspace, transition, doc.backend.type.value, places, where=where)
    agents: list[AgentWire] = []
    async with ctx.write() as store:
        owner = await store.get_user_by_id(workspace.owner_id)
        if transition is Transition.START:
            await check_quota(store, workspace, build)
            if place is not None:
                await placement.tie(store, workspace, place)
            resource = await store.insert_workspace_resource(
                job_id=job_id, type=SANDBOX_RESOURCE, name=workspace.name, handle={}
            )
            agents = await _insert_agents(store, resource.id, doc)
    if place is not None:
        await sink(f"this workspace's resources live on {place.label}", stage="init")
    if agents:
        await sink(f"agents: {', '.join(a.name for a in agents)}", stage="init")
    owner_name = owner.username if owner else "user"
    return _acquired(job_id, build, workspace, owner_name, transition, agents, server_url)


def _acquired(
    job_id: uuid.UUID,
    build: WorkspaceBuild,
    workspace: Workspace,
    owner_name: str,
    transition: Transition,
    agents: list[AgentWire],
    server_url: str,
) -> AcquiredJob:
    """The one place a build row becomes what a backend is given."""
    return AcquiredJob(
        job_id=job_id,
        transition=transition,
        spec=SpecWire(
            workspace_id=workspace.id,
            workspace_name=workspace.name,
            owner_name=owner_name,
            build_id=build.id,
            build_number=build.build_number,
            template=build.rendered or {},
            agents=agents,
            server_url=server_url,
            labels={"berth.workspace_id": str(workspace.id), "berth.build_id": str(build.id)},
        ),
    )


def _document(build: WorkspaceBuild) -> TemplateDoc:
    if build.rendered is None:
        raise BuildFailed("the build has no rendered template")
    return validate_template_data(build.rendered, filename=f"build {build.build_number}")


async def _load(ctx: Ctx, job_id: uuid.UUID) -> tuple[WorkspaceBuild, Workspace]:
    async with ctx.read() as store:
        build = await store.get_workspace_build_by_job_id(job_id)
        workspace = build and await store.get_workspace_by_id(build.workspace_id)
    if build is None or not workspace:
        raise BuildFailed("the job's workspace build no longer exists")
    return build, workspace


async def _insert_agents(
    store: AuthzStore, resource_id: uuid.UUID, doc: TemplateDoc
) -> list[AgentWire]:
    """The template's agents, each with a fresh token of which only the hash is kept."""
    agents: list[AgentWire] = []
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
            [{"agent_id": agent.id, **row} for row in script_rows(agent_doc)]
        )
        agents.append(
            AgentWire(
                id=agent.id,
                name=agent.name,
                token=token,
                directory=agent.directory,
                env=dict(agent_doc.env),
                external=agent_doc.external,
            )
        )
    return agents


def script_rows(agent: AgentDoc) -> list[dict[str, Any]]:
    """An agent's scripts as ``workspace_agent_scripts`` rows (without ``agent_id``)."""
    return [
        {
            "display_name": s.display_name,
            "script": s.script,
            "run_on": s.run_on,
            "blocks_login": s.blocks_login,
            "timeout_seconds": int(s.timeout.total_seconds()),
            "display_order": i,
        }
        for i, s in enumerate(agent.scripts)
    ]


async def record(ctx: Ctx, job_id: uuid.UUID, records: Sequence[ResourceRecord]) -> None:
    """Step 4a, after a successful apply: keep the resources, move the workspace."""
    ctx = provisioner(ctx)
    async with ctx.write() as store:
        build = await store.get_workspace_build_by_job_id(job_id)
        workspace = build and await store.get_workspace_by_id(build.workspace_id)
        if build is None or not workspace:
            raise BuildFailed("the job's workspace build no longer exists")
        transition = Transition(build.transition)
        if transition is Transition.START:
            handle = {
                "records": [{"type": r.type, "name": r.name, "handle": r.handle} for r in records]
            }
            for resource in await store.list_workspace_resources_by_job(job_id):
                if resource.type == SANDBOX_RESOURCE:
                    await store.update_workspace_resource_handle(resource.id, handle)
        elif transition is Transition.STOP:  # what a stopped workspace keeps: its home
            for r in records:  # the handle holds what matters; the row's columns are short
                await store.insert_workspace_resource(
                    job_id=job_id, type=r.type[:64], name=r.name[:128], handle=r.handle
                )
        if transition is Transition.DELETE:
            await store.update_workspace(workspace.id, deleted=True, deadline=None)
        elif transition is Transition.START and workspace.ttl_ms:
            deadline = ctx.clock.now() + dt.timedelta(milliseconds=workspace.ttl_ms)
            await store.update_workspace(workspace.id, deadline=deadline)
        elif transition is Transition.STOP:
            await store.update_workspace(workspace.id, deadline=None)


async def fail(ctx: Ctx, job_id: uuid.UUID, exc: BuildFailed) -> ProvisionerJob | None:
    """Step 4b, for a build that cannot complete: log the reason, fail the job."""
    await JobLog(ctx, job_id)(exc.message, stage="error", level="error")
    return await finish(ctx, job_id, JobStatus.FAILED, error=exc.message, error_code=exc.code)


async def finish(
    ctx: Ctx,
    job_id: uuid.UUID,
    status: JobStatus,
    *,
    error: str | None = None,
    error_code: str | None = None,
) -> ProvisionerJob | None:
    """Complete the job (unless it is terminal already) and publish its new state.

    Returns the completed job, or ``None`` when it was terminal already.
    """
    ctx = provisioner(ctx)
    async with ctx.write() as store:
        job = await store.complete_provisioner_job(
            job_id, status=status.value, error=error, error_code=error_code
        )
        build = job and await store.get_workspace_build_by_job_id(job_id)
    if job is not None:
        await ctx.publish(messages.job(job_id), messages.JobStatusChanged(status=job.status))
        if build:
            await ctx.publish(
                messages.workspace(build.workspace_id),
                messages.BuildStatusChanged(build_id=build.id, status=job.status),
            )
            # A start sets a deadline, a stop clears it, any build settling may let the
            # autostop act on a workspace it had to leave alone.
            await ctx.publish(
                messages.DEADLINES, messages.DeadlinesChanged(workspace_id=build.workspace_id)
            )
            # The reconciler counts prebuilds that settle (and replaces failed ones).
            await ctx.publish(messages.PREBUILDS, messages.PrebuildsChanged())
    return job


STOP_SCRIPT_CAP = dt.timedelta(minutes=5)
"""How long a stop script without a timeout of its own may hold a stop up."""
SHUTDOWN_GRACE = dt.timedelta(seconds=10)
"""Beyond the stop scripts' timeouts, for the agent to report and the stop to go on."""


@dataclass(frozen=True, slots=True)
class Shutdown:
    """The agents a stop or delete build asks to run their stop scripts, and until when."""

    agents: list[WorkspaceAgent]
    until: dt.datetime
    """Past this, the stop goes on whatever the agents do."""


async def shutdown_plan(ctx: Ctx, job_id: uuid.UUID) -> Shutdown:
    """The agents of the workspace's running start build that have stop scripts."""
    ctx = provisioner(ctx)
    async with ctx.read() as store:
        job = await store.get_provisioner_job_by_id(job_id)
        build = await store.get_workspace_build_by_job_id(job_id)
        if job is None or build is None or build.transition == Transition.START.value:
            return Shutdown([], ctx.clock.now())
        earlier = [
            b
            for b in await store.list_workspace_builds(build.workspace_id)
            if b.build_number < build.build_number
        ]
        start = max(earlier, key=lambda b: b.build_number, default=None)
        if start is None or start.transition != Transition.START.value:
            return Shutdown([], ctx.clock.now())
        agents: list[WorkspaceAgent] = []
        budget = dt.timedelta(0)
        for agent in await store.list_workspace_agents_by_job(start.job_id):
            scripts = [
                s for s in await store.list_workspace_agent_scripts(agent.id) if s.run_on == "stop"
            ]
            if scripts:
                agents.append(agent)
                each = (_script_budget(s.timeout_seconds) for s in scripts)
                budget = max(budget, sum(each, dt.timedelta(0)))
    started = job.started_at or ctx.clock.now()
    return Shutdown(agents, started + budget + SHUTDOWN_GRACE)


def _script_budget(timeout_seconds: int) -> dt.timedelta:
    return dt.timedelta(seconds=timeout_seconds) if timeout_seconds else STOP_SCRIPT_CAP


async def reap(ctx: Ctx, host: Host, *, stale_after: dt.timedelta, server_url: str) -> int:
    """Fail every running job whose worker has not heart-beaten for ``stale_after``.

    A start build among them may have left a sandbox running: it is stopped through
    ``host``'s backend (the home stays) before the job fails. Returns how many.
    """
    ctx = provisioner(ctx)
    async with ctx.write() as store:
        stale = await store.list_stale_provisioner_jobs(ctx.clock.now() - stale_after)
    seconds = int(stale_after.total_seconds())
    for job in stale:
        message = (
            f"the provisioner running this build ({job.worker_id}) stopped responding: "
            f"no heartbeat for {seconds}s"
        )
        log.warning("reaping job %s: %s", job.id, message)
        await _stop_leftovers(ctx, host, job.id, server_url)
        await finish(ctx, job.id, JobStatus.FAILED, error=message)
    return len(stale)


async def _stop_leftovers(ctx: Ctx, host: Host, job_id: uuid.UUID, server_url: str) -> None:
    """Stop the sandbox a half-done start build may have created, as a stop build would."""
    try:
        build, workspace = await _load(ctx, job_id)
    except BuildFailed:
        return
    if build.transition != Transition.START.value or build.rendered is None:
        return
    if not placement.reachable(workspace, await host.places()):
        label = placement.label_of(workspace)
        await JobLog(ctx, job_id)(
            f"reconcile: the sandbox is on {label}, out of this server's reach; "
            "the workspace's next build there stops it",
            stage="reap",
        )
        return
    stop = _acquired(job_id, build, workspace, "", Transition.STOP, [], server_url)
    sink = JobLog(ctx, job_id)
    try:
        spec = host.spec(stop)
        backend = host.backends.get(spec.template.backend.type.value)
        if backend is not None:
            await backend.apply(spec, Transition.STOP, sink)
    except (BuildFailed, InvalidInput) as exc:
        await sink(f"reconcile: {exc.message}", stage="reap", level="error")
