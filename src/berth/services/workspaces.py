"""Workspaces: create, start, stop, delete (each a build), list, show, TTL.

A workspace changes state only through builds (DESIGN §6), each queued by
:mod:`berth.services.build_queue`; provisioner workers pick the job up. The version's
document is parsed once per call and handed down. A create with a preset that keeps
prebuilt workspaces claims a ready one instead (:mod:`berth.services.claims`).

Callers name the workspace by its record or id (an edge resolves a user's ref with
:mod:`berth.services.refs`); a create names its template, owner and organization by
ref, resolved inside the create's transaction after its input is validated.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from berth.db.authz import AuthzStore, not_found
from berth.db.dialects import is_unique_violation
from berth.db.policy import Kind
from berth.domain import credentials
from berth.domain.enums import BuildReason, JobStatus, Transition
from berth.domain.names import name_error
from berth.domain.parameters import preset_then_explicit, validate_parameter_values
from berth.domain.template import TemplateDoc
from berth.errors import Conflict, InvalidInput, Validation
from berth.events import messages
from berth.records import ProvisionerJob, Template, TemplateVersion, User, Workspace
from berth.services import claims
from berth.services.base import Ctx
from berth.services.build_queue import (
    IN_PROGRESS,
    PRIORITY_HUMAN,
    PRIORITY_PREBUILD,
    Started,
    insert_build,
    published,
    version_doc,
)
from berth.services.refs import (
    invalid_preset,
    live_workspace_in,
    name_taken,
    preset_id,
    template_in,
    user_in,
)

__all__ = [
    "ACTIVITY_EVERY",
    "IN_PROGRESS",
    "PRIORITY_HUMAN",
    "PRIORITY_PREBUILD",
    "AgentToken",
    "Started",
    "activity_due",
    "cancel_build",
    "create_workspace",
    "insert_build",
    "issue_external_agent_token",
    "published",
    "record_activity",
    "transition_in",
    "transition_workspace",
    "update_ttl",
    "version_doc",
]


async def _resolve_parameters(
    store: AuthzStore,
    doc: TemplateDoc,
    version: TemplateVersion,
    parameters: Mapping[str, str],
    preset: uuid.UUID | None,
) -> dict[str, str]:
    preset_values: dict[str, str] = {}
    if preset is not None:
        found = await store.get_template_version_preset_by_id(preset)
        if found is None or found.template_version_id != version.id:
            raise invalid_preset()
        preset_values = {p.name: p.value for p in await store.list_preset_parameters([found.id])}
    merged = preset_then_explicit(preset_values, parameters)
    return validate_parameter_values(doc.parameters, merged)


async def create_workspace(
    ctx: Ctx,
    *,
    template: str,
    name: str,
    owner: str = "me",
    parameters: Mapping[str, str] | None = None,
    preset_ref: str | None = None,
    ttl_ms: int | None = None,
    organization: str | None = None,
    reason: BuildReason = BuildReason.INITIATOR,
    priority: int = PRIORITY_HUMAN,
) -> Started:
    """Insert the workspace, build 1 (``start``) and its job in one transaction — or,
    with a preset that keeps prebuilt workspaces, claim a ready one instead.

    ``template`` is an id, or a name in ``organization`` (default organization);
    ``owner`` is ``me``, an id or a username. The prebuild reconciler creates with
    ``reason=prebuild`` at prebuild ``priority`` (its builds queue behind humans').
    """
    name = name.strip()
    if problem := name_error(name):
        raise InvalidInput("Invalid workspace name.", validations=[Validation("name", problem)])
    if ttl_ms is not None and ttl_ms < 0:
        raise InvalidInput("Invalid TTL.", validations=[Validation("ttl_ms", "must be >= 0")])
    preset = preset_id(preset_ref)
    claimed: claims.Claimed | None = None
    started: Started | None = None
    async with ctx.write() as store:
        tpl = await template_in(store, template, organization)
        user = await user_in(store, owner)
        if tpl.active_version_id is None:
            raise Conflict(f"Template {tpl.name!r} has no active version.")
        version = await store.get_template_version_by_id(tpl.active_version_id)
        if version is None:
            raise not_found(Kind.TEMPLATE)
        if await store.get_workspace_by_owner_and_name(user.id, name) is not None:
            raise name_taken(name)
        doc = version_doc(version)
        values = await _resolve_parameters(store, doc, version, parameters or {}, preset)
        if preset is not None and reason is BuildReason.INITIATOR:
            request = claims.ClaimRequest(
                tpl, version, doc, preset, values, user, name, ttl_ms, ctx.clock.now()
            )
            claimed = await claims.claim_in(store, request)
        if claimed is None:
            started = await _insert_new(
                store, tpl, version, doc, user, name, values, preset, ttl_ms, reason, priority
            )
    if claimed is not None:
        return await claims.published(ctx, claimed)
    assert started is not None
    return await published(ctx, started)


async def _insert_new(
    store: AuthzStore,
    tpl: Template,
    version: TemplateVersion,
    doc: TemplateDoc,
    user: User,
    name: str,
    values: Mapping[str, str],
    preset: uuid.UUID | None,
    ttl_ms: int | None,
    reason: BuildReason,
    priority: int,
) -> Started:
    try:
        workspace = await store.insert_workspace(
            owner_id=user.id,
            organization_id=tpl.organization_id,
            template_id=tpl.id,
            name=name,
            ttl_ms=ttl_ms if ttl_ms is not None else (tpl.default_ttl_ms or None),
        )
    except Exception as exc:
        if is_unique_violation(exc):
            raise name_taken(name) from exc
        raise
    return await insert_build(
        store,
        workspace=workspace,
        owner=user,
        template=tpl,
        version=version,
        doc=doc,
        transition=Transition.START,
        parameters=values,
        preset_id=preset,
        reason=reason,
        priority=priority,
    )


async def transition_workspace(
    ctx: Ctx,
    workspace_id: uuid.UUID,
    transition: Transition,
    *,
    reason: BuildReason = BuildReason.INITIATOR,
) -> Started:
    """Start, stop or delete: a new build, or the current one when nothing changes.

    A build already in progress is a 409. Starting a running workspace and stopping a
    stopped one are answered with the latest build and no new one.
    """
    async with ctx.write() as store:
        workspace = await live_workspace_in(store, workspace_id)
        started = await transition_in(store, workspace, transition, reason)
    return await published(ctx, started)


async def transition_in(
    store: AuthzStore, workspace: Workspace, transition: Transition, reason: BuildReason
) -> Started:
    latest = await store.get_latest_workspace_build_by_workspace_id(workspace.id)
    if latest is None:
        raise not_found(Kind.WORKSPACE)
    job = await store.get_provisioner_job_by_id(latest.job_id)
    if job is None:
        raise not_found(Kind.JOB)
    if job.status in IN_PROGRESS:
        raise Conflict(
            f"Workspace {workspace.name!r} is already building.",
            detail=f"Build {latest.build_number} ({latest.transition}) is {job.status}; "
            "wait for it or cancel it first.",
        )
    succeeded = job.status == JobStatus.SUCCEEDED.value
    if succeeded and latest.transition == transition.value and transition is not Transition.DELETE:
        return Started(workspace=workspace, build=latest, job=job, new_build=False)
    tpl = await store.get_template_by_id(workspace.template_id)
    owner = await store.get_user_by_id(workspace.owner_id)
    if tpl is None or owner is None:
        raise not_found(Kind.WORKSPACE)
    version_id = latest.template_version_id
    if transition is Transition.START and tpl.require_active_version and tpl.active_version_id:
        version_id = tpl.active_version_id
    version = await store.get_template_version_by_id(version_id)
    if version is None:
        raise not_found(Kind.TEMPLATE)
    previous = {p.name: p.value for p in await store.list_workspace_build_parameters(latest.id)}
    doc = version_doc(version)
    values = previous
    if version.id != latest.template_version_id:
        values = validate_parameter_values(doc.parameters, {}, previous=previous)
    return await insert_build(
        store,
        workspace=workspace,
        owner=owner,
        template=tpl,
        version=version,
        doc=doc,
        transition=transition,
        parameters=values,
        preset_id=latest.preset_id,
        reason=reason,
        build_number=latest.build_number + 1,
    )


async def cancel_build(ctx: Ctx, workspace_id: uuid.UUID) -> ProvisionerJob:
    """Cancel the in-progress build: pending → canceled, running → canceling."""
    async with ctx.write() as store:
        workspace = await live_workspace_in(store, workspace_id)
        latest = await store.get_latest_workspace_build_by_workspace_id(workspace.id)
        job = latest and await store.request_provisioner_job_cancel(latest.job_id)
        if latest is None or job is None:
            raise Conflict(f"Workspace {workspace.name!r} has no build in progress.")
    await ctx.publish(messages.job(job.id), messages.JobStatusChanged(status=job.status))
    await ctx.publish(messages.JOBS, messages.JobQueued(job_id=job.id, cancel=True))
    return job


async def update_ttl(ctx: Ctx, workspace_id: uuid.UUID, ttl_ms: int | None) -> Workspace:
    """Set the workspace's TTL (0 or ``None``: never stops by itself) and move its deadline.

    A running workspace's deadline becomes its last activity (or now) plus the new TTL; a
    workspace that is not running gets its deadline from its next start build.
    """
    if ttl_ms is not None and ttl_ms < 0:
        raise InvalidInput("Invalid TTL.", validations=[Validation("ttl_ms", "must be >= 0")])
    async with ctx.write() as store:
        workspace = await live_workspace_in(store, workspace_id)
        deadline: dt.datetime | None = None
        if ttl_ms and await _running(store, workspace.id):
            since = workspace.last_used_at or ctx.clock.now()
            deadline = since + dt.timedelta(milliseconds=ttl_ms)
        updated = await store.update_workspace(
            workspace.id, ttl_ms=ttl_ms or None, deadline=deadline
        )
    if updated is None:
        raise not_found(Kind.WORKSPACE)
    await ctx.publish(messages.DEADLINES, messages.DeadlinesChanged(workspace_id=updated.id))
    return updated


async def _running(store: AuthzStore, workspace_id: uuid.UUID) -> bool:
    """Whether the workspace's latest build is a start that succeeded."""
    latest = await store.get_latest_workspace_build_by_workspace_id(workspace_id)
    if latest is None or latest.transition != Transition.START.value:
        return False
    job = await store.get_provisioner_job_by_id(latest.job_id)
    return job is not None and job.status == JobStatus.SUCCEEDED.value


ACTIVITY_EVERY = dt.timedelta(seconds=5)
"""Activity is written at most this often per workspace (a tool call is a read then)."""


def activity_due(workspace: Workspace, now: dt.datetime) -> bool:
    """Whether a use of ``workspace`` (as last read) is to be written now."""
    return workspace.last_used_at is None or now - workspace.last_used_at >= ACTIVITY_EVERY


async def record_activity(ctx: Ctx, workspace_id: uuid.UUID) -> None:
    """Count a use of the workspace: ``last_used_at``, and a running workspace's autostop
    deadline moves to ``now + ttl``. Written at most every :data:`ACTIVITY_EVERY`
    (callers that hold the workspace's row skip the call with :func:`activity_due`)."""
    now = ctx.clock.now()
    async with ctx.read() as store:
        workspace = await store.get_workspace_by_id(workspace_id)
    if workspace is None:
        raise not_found(Kind.WORKSPACE)
    if not activity_due(workspace, now):
        return
    async with ctx.write() as store:
        touched = await store.touch_workspace(workspace_id, now)
    if touched is not None and touched.deadline != workspace.deadline:
        await ctx.publish(messages.DEADLINES, messages.DeadlinesChanged(workspace_id=workspace_id))


@dataclass(frozen=True, slots=True)
class AgentToken:
    agent_id: uuid.UUID
    agent_name: str
    token: str


async def issue_external_agent_token(
    ctx: Ctx, workspace_id: uuid.UUID, agent_name: str
) -> AgentToken:
    """A fresh token for an external agent of the workspace's latest build.

    External agents run on hosts the user manages (``berth agent --url … --token …``),
    so the owner needs their token; berth keeps only its hash, hence a new one each time.
    """
    async with ctx.write() as store:
        workspace = await live_workspace_in(store, workspace_id)
        latest = await store.get_latest_workspace_build_by_workspace_id(workspace.id)
        agents = await store.list_workspace_agents_by_job(latest.job_id) if latest else []
        agent = next((a for a in agents if a.name == agent_name), None)
        if agent is None:
            raise not_found(Kind.AGENT)
        if not agent.external:
            raise Conflict(
                f"Agent {agent_name!r} is started by berth; only external agents take a token."
            )
        token = credentials.new_agent_token()
        await store.update_workspace_agent_token(agent.id, credentials.hash_secret(token))
    return AgentToken(agent_id=agent.id, agent_name=agent.name, token=token)
