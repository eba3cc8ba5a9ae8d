"""Host affinity (DESIGN §6): a workspace's builds run where its resources are.

A bwrap sandbox and its home live on one host, under one state directory; a container
and its volume on one Docker engine. A stop or delete that ran anywhere else would
find nothing there, report success, and leave the sandbox running. So:

* the first start build of a workspace ties it to the place of the worker that
  prepares it (:func:`place_for`, stored on the workspace as ``place`` and
  ``place_label``), before the backend creates anything;
* every later build's job requires that place (:func:`queue_note`, on the job as
  ``required_place``), and a worker claims only jobs that require none or one of its
  own places (``acquire_provisioner_job``), like Coder's provisioner tags;
* while such a job is pending it says what it waits for: a line in its log when it is
  queued, and :func:`waiting_for` in the workspace's view.

Workspaces built before host affinity, or by workers too old to name their places,
are tied to no place and build anywhere, as before.
"""

from __future__ import annotations

from collections.abc import Mapping

from berth.db.authz import AuthzStore
from berth.domain.actors import as_provisioner
from berth.domain.enums import JobStatus, Transition
from berth.errors import BuildFailed
from berth.provisioner.spec import Place
from berth.records import ProvisionerJob, Workspace

PLACE_UNKNOWN = "PLACE_UNKNOWN"


def label_of(workspace: Workspace) -> str | None:
    """Where the workspace's resources live, for a person; ``None``: tied to no place."""
    if workspace.place is None:
        return None
    return workspace.place_label or workspace.place


def waiting_for(workspace: Workspace, job: ProvisionerJob | None) -> str | None:
    """The place a pending job of the workspace waits for a provisioner of, if any."""
    if job is None or job.status != JobStatus.PENDING.value or job.required_place is None:
        return None
    if job.required_place == workspace.place:
        return label_of(workspace)
    return job.required_place


async def queue_note(store: AuthzStore, workspace: Workspace, job: ProvisionerJob) -> None:
    """Say in the new job's log that it waits for a worker where the resources are."""
    label = label_of(workspace)
    if job.required_place is None or label is None:
        return
    line = f"waiting for a provisioner that serves {label}, where this workspace's resources are"
    await store.acting_as(as_provisioner()).insert_provisioner_job_logs(
        job.id, [("queue", "info", line)]
    )


def place_for(
    workspace: Workspace,
    transition: Transition,
    backend: str,
    places: Mapping[str, Place] | None,
    *,
    where: str,
) -> Place | None:
    """The place a start build ties a workspace tied to none yet to; ``None``: keep it
    as it is (tied already, not a start, or a worker that names no places at all).

    A worker that names its places but none for ``backend`` (an engine that does not
    answer) must not build there untied: the build fails instead, to be retried.
    """
    if places is None or workspace.place is not None or transition is not Transition.START:
        return None
    place = places.get(backend)
    if place is None:
        raise BuildFailed(
            f"this {where} cannot tell where its {backend!r} backend keeps workspaces "
            "right now (is its engine reachable?); start the workspace again",
            code=PLACE_UNKNOWN,
        )
    return place


async def tie(store: AuthzStore, workspace: Workspace, place: Place) -> None:
    """Record that the workspace's resources live at ``place`` from now on."""
    await store.update_workspace(workspace.id, place=place.id, place_label=place.label)


def reachable(workspace: Workspace, places: Mapping[str, Place]) -> bool:
    """Whether a host with ``places`` can reach the workspace's resources."""
    return workspace.place is None or workspace.place in {p.id for p in places.values()}
