"""What a provisioner worker is handed, where it comes from, and what it reports back.

A worker (:mod:`berth.provisioner.worker`) runs jobs from a :class:`JobSource`: the
server's own database when it runs inside ``berth server``
(:class:`berth.services.builds.LocalJobs`), or the server's HTTP API when it runs in a
standalone ``berth provisioner`` (:class:`berth.provisioner.remote_client.RemoteJobs`,
whose server side calls the same ``LocalJobs``). Either way the job arrives as an
:class:`AcquiredJob` — claimed and prepared by the server (quota checked, agent rows and
fresh tokens made) — and becomes a :class:`~berth.provisioner.spec.BuildSpec` for this
host's backend with :meth:`AcquiredJob.build_spec`, the one place that happens.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from berth.domain.enums import Transition
from berth.domain.template import validate_template_data
from berth.provisioner.spec import (
    AgentSpec,
    Backend,
    BuildSpec,
    LogSink,
    Place,
    ResourceRecord,
)


class AgentWire(BaseModel):
    id: uuid.UUID
    name: str
    token: str
    directory: str
    env: dict[str, str]
    external: bool = False


class SpecWire(BaseModel):
    """A :class:`BuildSpec` without the paths, which are the worker's own."""

    workspace_id: uuid.UUID
    workspace_name: str
    owner_name: str
    build_id: uuid.UUID
    build_number: int
    template: dict[str, Any]
    """The build's rendered template document, as stored."""
    agents: list[AgentWire]
    server_url: str
    labels: dict[str, str]


class AcquiredJob(BaseModel):
    """A claimed, prepared job: everything a worker needs to apply it (also the wire format)."""

    job_id: uuid.UUID
    transition: Transition
    spec: SpecWire

    def build_spec(self, *, agent_zipapp: Path, state_dir: Path) -> BuildSpec:
        """The spec for this host's backend; the template is validated here, on this host."""
        s = self.spec
        doc = validate_template_data(s.template, filename=f"build {s.build_number}")
        return BuildSpec(
            workspace_id=s.workspace_id,
            workspace_name=s.workspace_name,
            owner_name=s.owner_name,
            build_id=s.build_id,
            build_number=s.build_number,
            template=doc,
            agents=[
                AgentSpec(
                    id=a.id,
                    name=a.name,
                    token=a.token,
                    directory=a.directory,
                    env=dict(a.env),
                    external=a.external,
                )
                for a in s.agents
            ],
            server_url=s.server_url,
            agent_zipapp=agent_zipapp,
            state_dir=state_dir,
            labels=dict(s.labels),
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an apply ended, as reported to :meth:`JobSource.complete`."""

    status: Literal["succeeded", "failed", "canceled"]
    error: str | None = None
    error_code: str | None = None
    resources: Sequence[ResourceRecord] = ()


CANCELED = Outcome("canceled", "the build was canceled")


@dataclass(frozen=True, slots=True)
class Host:
    """What this host offers builds: its backends, the agent zipapp, a state directory."""

    backends: Mapping[str, Backend]
    agent_zipapp: Path
    state_dir: Path
    """Where backends keep per-workspace state on this host (homes, pid files)."""

    def spec(self, job: AcquiredJob) -> BuildSpec:
        return job.build_spec(agent_zipapp=self.agent_zipapp, state_dir=self.state_dir)

    async def places(self) -> dict[str, Place]:
        """Where each backend's sandboxes live, by backend name (those that can tell)."""
        found: dict[str, Place] = {}
        for name, backend in sorted(self.backends.items()):
            place = await backend.place(self.state_dir)
            if place is not None:
                found[name] = place
        return found


class JobSource(Protocol):
    """Jobs for workers, and the reports on them. Every wait is bounded by ``wait`` seconds.

    ``heartbeat`` and ``complete`` raise :class:`~berth.errors.JobLost` when the job is
    gone or no longer this worker's; a source that cannot be reached raises
    :class:`~berth.errors.Unavailable` or :class:`~berth.errors.RemoteError`.
    """

    async def acquire(
        self,
        worker_id: str,
        *,
        wait: float,
        backends: Collection[str],
        places: Mapping[str, Place] | None = None,
    ) -> AcquiredJob | None:
        """Claim and prepare the most urgent pending job; ``None`` if none came in time.

        ``places``: where this worker's backends keep their sandboxes, by backend name.
        A job of a workspace whose resources are in a place is only handed to a worker
        that names it; a worker that names none (an older one) gets only jobs of
        workspaces tied to no place. A job that cannot be prepared (quota, a backend
        this worker lacks) is failed at the source and never handed out.
        """
        ...

    async def heartbeat(self, job_id: uuid.UUID, worker_id: str, *, wait: float) -> str:
        """Record that the worker still runs the job; answer its status as soon as it is
        not ``running`` any more (``canceling``: stop the apply), or after ``wait``."""
        ...

    async def shutdown_agents(self, job_id: uuid.UUID, worker_id: str, *, wait: float) -> bool:
        """Before a stop or delete build's apply: ask the workspace's agents to run their
        stop scripts, and wait up to ``wait``; ``True`` once they are done (or gave up,
        or cannot be reached): the apply may tear the sandbox down."""
        ...

    def log_sink(self, job_id: uuid.UUID, worker_id: str) -> LogSink:
        """Where the backend's output for this job goes (stored in order, streamed)."""
        ...

    async def complete(self, job_id: uuid.UUID, worker_id: str, outcome: Outcome) -> str:
        """Record the outcome (the resources of a success) and complete the job."""
        ...
