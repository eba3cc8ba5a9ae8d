"""Claiming a prebuilt workspace (DESIGN §10, spec §5 [cw.prebuild]).

A create with a preset whose pool holds a ready prebuild takes it instead of building:
in the create's own transaction the prebuild moves to the caller — owner, name, TTL and
deadline — and a ``start`` build with reason ``claim`` records it. The claim's job is
complete at once: no backend runs, the sandbox is already up. The prebuild's resources
move to that job (so the agents are the new build's), and each agent's manifest is
rendered again for the new owner and workspace; the agent gets it over its live
connection (:data:`~berth.events.messages.AGENT_MANIFESTS`), runs its ``claim`` scripts
and reports ``ready`` again, which is what the create's waiters wait for.

Two claims never take the same prebuild: each candidate is locked before it is
checked (``FOR UPDATE SKIP LOCKED`` on Postgres, so a concurrent claim moves on to the
next one instead of queueing; SQLite has one writer). The reconciler takes the same
lock before it deletes a prebuild, so a claim that races a delete finds the prebuild
gone and falls back to a build — never to an error.

A prebuild is claimable when its latest build is a succeeded ``start`` of the active
version with the same preset and exactly the parameters this create resolved to, and
every agent is connected and ``ready``. The claim is refused (a normal build follows,
which then reports the quota error) when the workspace would not fit the new owner's
quota.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from berth.db.authz import AuthzStore
from berth.db.dialects import is_unique_violation
from berth.domain.actors import PREBUILDS_USERNAME, as_prebuilds_reconciler
from berth.domain.enums import AgentLifecycle, AgentStatus, BuildReason, JobStatus, Transition
from berth.domain.template import TemplateDoc
from berth.events import messages
from berth.records import Template, TemplateVersion, User, WorkspaceAgent, WorkspaceState
from berth.services.base import Ctx
from berth.services.build_queue import Started, insert_build
from berth.services.builds import script_rows
from berth.services.quotas import over_quota
from berth.services.refs import name_taken
from berth.services.workspace_views import view_agent


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claim: the ``claim`` build, and the agents whose manifest it rewrote."""

    started: Started
    agent_ids: tuple[uuid.UUID, ...]


def claimable(
    state: WorkspaceState,
    *,
    template_id: uuid.UUID,
    version_id: uuid.UUID,
    preset_id: uuid.UUID | None,
    now: dt.datetime,
) -> bool:
    """Whether a prebuild is ready to be claimed (see the module's rule)."""
    build, job = state.build, state.job
    return (
        state.workspace.template_id == template_id
        and build.transition == Transition.START.value
        and build.template_version_id == version_id
        and build.preset_id == preset_id
        and job.status == JobStatus.SUCCEEDED.value
        and all(agent_ready(a, now) for a in state.agents)
    )


def agent_ready(agent: WorkspaceAgent, now: dt.datetime) -> bool:
    """A prebuild's agent is connected and ``ready``."""
    return (
        agent.lifecycle_state == AgentLifecycle.READY.value
        and view_agent(agent, now).status is AgentStatus.CONNECTED
    )


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """A create that may claim: its template's active version, the preset, the
    parameters it resolved to, and the new owner, name and TTL."""

    template: Template
    version: TemplateVersion
    doc: TemplateDoc
    preset_id: uuid.UUID
    values: Mapping[str, str]
    owner: User
    name: str
    ttl_ms: int | None
    now: dt.datetime


async def claim_in(store: AuthzStore, request: ClaimRequest) -> Claimed | None:
    """Claim a ready prebuild for the request's owner in the caller's transaction;
    ``None`` when there is none (the caller builds instead)."""
    system = store.acting_as(as_prebuilds_reconciler())
    pool_owner = await system.get_user_by_username(PREBUILDS_USERNAME)
    if pool_owner is None:
        return None
    template, version = request.template, request.version
    for state in await system.list_workspace_states(pool_owner.id, template_id=template.id):
        if not claimable(
            state,
            template_id=template.id,
            version_id=version.id,
            preset_id=request.preset_id,
            now=request.now,
        ):
            continue
        if await system.lock_prebuilt_workspace(state.workspace.id, pool_owner.id) is None:
            continue  # another claim (or the reconciler) holds it
        latest = await system.get_latest_workspace_build_by_workspace_id(state.workspace.id)
        if latest is None or latest.id != state.build.id:
            continue  # a build of it committed since the read
        built = {p.name: p.value for p in await system.list_workspace_build_parameters(latest.id)}
        if built != dict(request.values):
            continue
        if await over_quota(
            system, request.owner.id, template.organization_id, template.daily_cost
        ):
            return None  # the build that follows reports the quota
        return await _claim(store, system, state, pool_owner, request)
    return None


async def _claim(
    store: AuthzStore,
    system: AuthzStore,
    state: WorkspaceState,
    pool_owner: User,
    request: ClaimRequest,
) -> Claimed | None:
    template, owner, name, now = request.template, request.owner, request.name, request.now
    ttl_ms = request.ttl_ms
    ttl = ttl_ms if ttl_ms is not None else (template.default_ttl_ms or None)
    deadline = now + dt.timedelta(milliseconds=ttl) if ttl else None
    try:
        workspace = await store.claim_prebuilt_workspace(
            state.workspace.id,
            from_owner_id=pool_owner.id,
            owner_id=owner.id,
            name=name,
            ttl_ms=ttl or None,
            deadline=deadline,
        )
    except Exception as exc:
        if is_unique_violation(exc):
            raise name_taken(name) from exc
        raise
    if workspace is None:
        return None
    started = await insert_build(
        store,
        workspace=workspace,
        owner=owner,
        template=template,
        version=request.version,
        doc=request.doc,
        transition=Transition.START,
        parameters=request.values,
        preset_id=state.build.preset_id,
        reason=BuildReason.CLAIM,
        build_number=state.build.build_number + 1,
    )
    job = await system.complete_provisioner_job(started.job.id, status=JobStatus.SUCCEEDED.value)
    await system.move_workspace_resources(state.build.job_id, started.job.id)
    assert started.rendered is not None  # insert_build renders every build it inserts
    docs = {a.name: a for a in started.rendered.agents}
    personalized: list[uuid.UUID] = []
    for agent in state.agents:
        doc = docs.get(agent.name)
        if doc is None:
            continue
        personalized.append(agent.id)
        await system.personalize_workspace_agent(
            agent.id,
            directory=doc.directory,
            env=dict(doc.env),
            scripts=script_rows(doc),
            claimed_at=now,
        )
    await system.insert_provisioner_job_logs(
        started.job.id,
        [
            (
                "claim",
                "info",
                f"claimed prebuilt workspace {state.workspace.name} "
                f"(built {state.workspace.created_at:%Y-%m-%d %H:%M:%S} UTC)",
            )
        ],
    )
    claimed = Started(workspace=workspace, build=started.build, job=job or started.job)
    return Claimed(claimed, tuple(personalized))


async def published(ctx: Ctx, claimed: Claimed) -> Started:
    """Announce a claim after its transaction: the build settled, the agents' manifests
    changed, the pool lost a member, the workspace may have a deadline."""
    started = claimed.started
    await ctx.publish(
        messages.job(started.job.id), messages.JobStatusChanged(status=started.job.status)
    )
    await ctx.publish(
        messages.workspace(started.workspace.id),
        messages.BuildStatusChanged(build_id=started.build.id, status=started.job.status),
    )
    for agent_id in claimed.agent_ids:
        await ctx.publish(messages.AGENT_MANIFESTS, messages.ManifestChanged(agent_id=agent_id))
    await ctx.publish(messages.PREBUILDS, messages.PrebuildsChanged())
    await ctx.publish(
        messages.DEADLINES, messages.DeadlinesChanged(workspace_id=started.workspace.id)
    )
    return started
