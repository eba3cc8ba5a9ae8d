"""Queueing a build: the next build of a workspace, rendered, with its pending job.

Every build is inserted with its pending job in one transaction (DESIGN §6) by
:func:`insert_build` — a job that must run where the workspace's resources are says so
(:mod:`berth.services.placement`) — whoever asks for it — a create, a start/stop/delete, the
autostop, the prebuild reconciler, a claim — and announced by :func:`published` once
that transaction has committed. The rendered template document is stored on the build,
so a build is reproducible and the backend never needs the template again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from berth.db.authz import AuthzStore
from berth.db.dialects import is_unique_violation
from berth.domain.enums import BuildReason, JobStatus, JobType, Transition
from berth.domain.render import render_template
from berth.domain.template import TemplateDoc, validate_template_data
from berth.errors import Conflict
from berth.events import messages
from berth.records import (
    ProvisionerJob,
    Template,
    TemplateVersion,
    User,
    Workspace,
    WorkspaceBuild,
)
from berth.services import placement
from berth.services.base import Ctx

PRIORITY_HUMAN = 1
PRIORITY_PREBUILD = 0
IN_PROGRESS = (JobStatus.PENDING.value, JobStatus.RUNNING.value, JobStatus.CANCELING.value)


@dataclass(frozen=True, slots=True)
class Started:
    """A workspace and the build a call started (or found, when ``new_build`` is false)."""

    workspace: Workspace
    build: WorkspaceBuild
    job: ProvisionerJob
    new_build: bool = True
    rendered: TemplateDoc | None = None
    """The document rendered for a build this call inserted (what ``build.rendered``
    holds as JSON), for a caller that goes on with it (a claim's agents)."""


def version_doc(version: TemplateVersion) -> TemplateDoc:
    return validate_template_data(version.document, filename=f"template version {version.name}")


def _context(
    workspace_name: str, workspace_id: uuid.UUID, owner: User, template: Template
) -> dict[str, dict[str, object]]:
    return {
        "workspace": {"name": workspace_name, "id": str(workspace_id), "owner": owner.username},
        "owner": {
            "name": owner.name or owner.username,
            "username": owner.username,
            "email": owner.email,
        },
        "template": {"name": template.name, "id": str(template.id)},
    }


async def insert_build(
    store: AuthzStore,
    *,
    workspace: Workspace,
    owner: User,
    template: Template,
    version: TemplateVersion,
    doc: TemplateDoc,
    transition: Transition,
    parameters: Mapping[str, str],
    preset_id: uuid.UUID | None = None,
    reason: BuildReason = BuildReason.INITIATOR,
    priority: int = PRIORITY_HUMAN,
    build_number: int | None = None,
) -> Started:
    """Render the template and insert the next build with its pending job.

    ``build_number``: the number the caller's checks were made against (the latest
    build it read, plus one). A build inserted concurrently since then takes that
    number first, so this insert fails as a Conflict instead of queueing a second
    build on a state the caller never checked. Default: the latest build's plus one.
    """
    initiator = store.actor.user_id or owner.id
    rendered = render_template(
        doc,
        parameters=parameters,
        **_context(workspace.name, workspace.id, owner, template),  # pyright: ignore[reportArgumentType]
    )
    if build_number is None:
        latest = await store.get_latest_workspace_build_by_workspace_id(workspace.id)
        build_number = (latest.build_number if latest else 0) + 1
    job = await store.insert_provisioner_job(
        type=JobType.WORKSPACE_BUILD.value,
        organization_id=workspace.organization_id,
        initiator_id=initiator,
        input={"workspace_id": str(workspace.id)},
        priority=priority,
        required_place=workspace.place,  # its resources are there (services.placement)
    )
    try:
        build = await store.insert_workspace_build(
            workspace_id=workspace.id,
            build_number=build_number,
            transition=transition.value,
            template_version_id=version.id,
            preset_id=preset_id,
            initiator_id=initiator,
            reason=reason.value,
            daily_cost=template.daily_cost if transition is Transition.START else 0,
            job_id=job.id,
            rendered=rendered.model_dump(mode="json"),
        )
    except Exception as exc:
        if is_unique_violation(exc):
            raise Conflict("Another build of this workspace started at the same time.") from exc
        raise
    await store.insert_workspace_build_parameters(build.id, parameters)
    if reason is not BuildReason.CLAIM:  # a claim's build is complete at once
        await placement.queue_note(store, workspace, job)
    return Started(workspace=workspace, build=build, job=job, rendered=rendered)


async def published(ctx: Ctx, started: Started) -> Started:
    """Announce a new build after its transaction committed (a no-op for a found one)."""
    if started.new_build:
        await ctx.publish(messages.JOBS, messages.JobQueued(job_id=started.job.id))
        await ctx.publish(
            messages.workspace(started.workspace.id),
            messages.BuildStatusChanged(build_id=started.build.id, status=started.job.status),
        )
    return started
