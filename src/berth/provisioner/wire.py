"""The wire format of the standalone provisioner protocol (:mod:`berth.provisioner.remote`).

Shared by the server's routes (``berth.api.routes.provisioner``) and the worker.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from berth.domain.enums import Transition
from berth.domain.template import validate_template_data
from berth.provisioner.runner import PreparedBuild
from berth.provisioner.spec import (
    AgentSpec,
    BuildSpec,
    ResourceRecord,
)

log = logging.getLogger("berth.provisioner")


API_PREFIX = "/api/v1"
PROVISIONER_PREFIX = "/provisioner"
ZIPAPP_PATH = "/agent/berth-agent.pyz"
MAX_WAIT_SECONDS = 30.0
"""The longest an acquire or heartbeat request is held open by the server."""
COMPLETE_ATTEMPTS = 5
"""How often a worker tries to report a result while the server cannot be reached."""


# --- the wire format (the server's routes use these models too) ------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AcquireRequest(_Request):
    worker_id: str = Field(min_length=1, max_length=128)
    wait_seconds: float = Field(default=0.0, ge=0.0, le=MAX_WAIT_SECONDS)
    backends: list[str] | None = None
    """The backend types this worker offers; a job needing another fails at once."""


class HeartbeatRequest(_Request):
    worker_id: str = Field(min_length=1, max_length=128)
    wait_seconds: float = Field(default=0.0, ge=0.0, le=MAX_WAIT_SECONDS)
    """Hold the answer until the job's status changes, at most this long."""


class JobStatusOut(BaseModel):
    status: str


class LogEntryIn(_Request):
    stage: str = Field(default="apply", min_length=1, max_length=64)
    level: str = Field(default="info", min_length=1, max_length=16)
    output: str = Field(max_length=1_000_000)


class LogsRequest(_Request):
    worker_id: str | None = Field(default=None, max_length=128)
    """When given, the job must be this worker's."""
    entries: list[LogEntryIn] = Field(max_length=1_000)


class ResourceIn(_Request):
    type: str = Field(min_length=1, max_length=128)
    name: str = Field(max_length=256)
    handle: dict[str, Any]


class CompleteRequest(_Request):
    worker_id: str | None = Field(default=None, max_length=128)
    """When given, the job must be this worker's."""
    status: Literal["succeeded", "failed", "canceled"]
    error: str | None = Field(default=None, max_length=100_000)
    error_code: str | None = Field(default=None, max_length=128)
    resources: list[ResourceIn] = Field(default_factory=list[ResourceIn])


class KeyOut(BaseModel):
    id: str
    name: str
    organization_id: uuid.UUID


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
    """What ``jobs/acquire`` answers: the job and everything needed to apply it."""

    job_id: uuid.UUID
    transition: Transition
    spec: SpecWire

    @classmethod
    def of(cls, prepared: PreparedBuild, *, server_url: str) -> AcquiredJob:
        return cls(
            job_id=prepared.job_id,
            transition=prepared.transition,
            spec=SpecWire(
                workspace_id=prepared.workspace.id,
                workspace_name=prepared.workspace.name,
                owner_name=prepared.owner_name,
                build_id=prepared.build.id,
                build_number=prepared.build.build_number,
                template=prepared.build.rendered or {},
                agents=[
                    AgentWire(
                        id=a.id,
                        name=a.name,
                        token=a.token,
                        directory=a.directory,
                        env=a.env,
                        external=a.external,
                    )
                    for a in prepared.agents
                ],
                server_url=server_url,
                labels=prepared.labels,
            ),
        )

    def build_spec(self, *, agent_zipapp: Path, state_dir: Path) -> BuildSpec:
        """The spec for this host's backend; the template is validated again here."""
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


# --- the client -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an apply ended, as reported to ``jobs/{id}/complete``."""

    status: Literal["succeeded", "failed", "canceled"]
    error: str | None = None
    error_code: str | None = None
    resources: Sequence[ResourceRecord] = ()
