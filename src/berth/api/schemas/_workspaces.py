"""Workspaces, their builds, jobs, agents and logs, and commands run in them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, Field

from berth import records
from berth.api.schemas._base import Out, RecordOut, Request
from berth.services.workspace_views import ScriptLog

__all__ = [
    "AgentLogOut",
    "AgentOut",
    "AgentTokenOut",
    "BuildOut",
    "BuildRequest",
    "CreateWorkspaceRequest",
    "ExecOut",
    "ExecRequest",
    "HomeDiskOut",
    "JobOut",
    "LogOut",
    "TTLRequest",
    "WorkspaceOut",
]


class CreateWorkspaceRequest(Request):
    template: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=64)
    parameters: dict[str, str] = Field(default_factory=dict[str, str])
    preset_id: str | None = None
    ttl: str | None = None
    """Go duration; ``0`` = never autostop; omitted = the template's default."""
    organization: str | None = None
    owner: str = "me"


class BuildRequest(Request):
    transition: Literal["start", "stop", "delete"]


class TTLRequest(Request):
    ttl: str


class ExecRequest(Request):
    command: str = Field(min_length=1, max_length=1 << 20)
    timeout: str = "60s"
    workdir: str | None = None
    env: dict[str, str] = Field(default_factory=dict[str, str])


class ExecOut(BaseModel):
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool
    truncated: bool
    wall_duration_ms: int


class JobOut(RecordOut):
    id: uuid.UUID
    status: str
    error: str | None
    error_code: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    completed_at: dt.datetime | None


class BuildOut(Out):
    id: uuid.UUID
    build_number: int
    transition: str
    reason: str
    template_version_id: uuid.UUID
    daily_cost: int
    job: JobOut | None
    created_at: dt.datetime

    @classmethod
    def of(cls, b: records.WorkspaceBuild, job: records.ProvisionerJob | None) -> BuildOut:
        return cls.read(b, job=job)


class AgentOut(BaseModel):
    id: uuid.UUID
    name: str
    status: str
    lifecycle_state: str
    chat: bool
    external: bool
    directory: str
    first_connected_at: dt.datetime | None
    last_connected_at: dt.datetime | None
    started_at: dt.datetime | None
    ready_at: dt.datetime | None
    claimed_at: dt.datetime | None
    """When a user claimed the prebuilt workspace this agent runs in."""


class HomeDiskOut(RecordOut):
    """The home's disk use as its latest build measured it (``backend.disk`` quota in
    ``limit_bytes`` where one is enforced)."""

    used_bytes: int
    limit_bytes: int | None
    measured_at: dt.datetime


class WorkspaceOut(BaseModel):
    id: uuid.UUID
    name: str
    owner_id: uuid.UUID
    owner_name: str
    organization_id: uuid.UUID
    template_id: uuid.UUID
    template_name: str
    status: str
    ttl: str | None
    deadline: dt.datetime | None
    last_used_at: dt.datetime | None
    created_at: dt.datetime
    latest_build: BuildOut | None
    agents: list[AgentOut]
    home_disk: HomeDiskOut | None = None
    """In the answers about one workspace; null in listings and where not measured."""
    host: str | None = None
    """Where its resources live (``host:/state/dir`` for local sandboxes, a Docker
    engine); its builds run only on provisioners there. Null until its first build."""
    waiting_for_host: str | None = None
    """While its build is pending: the host it waits for a provisioner of (null when any
    provisioner may take it, and once it runs)."""


class LogOut(RecordOut):
    id: int
    created_at: dt.datetime
    stage: str
    level: str
    output: str


class AgentLogOut(Out):
    """A line of an agent's output: a script's (``script`` is its display name) or the
    agent's own (``script`` null)."""

    id: int
    created_at: dt.datetime
    agent_id: uuid.UUID
    agent: str
    script: str | None
    level: str
    output: str

    @classmethod
    def of(cls, line: ScriptLog) -> AgentLogOut:
        return cls.read(line.log, agent=line.agent, script=line.script)


class AgentTokenOut(BaseModel):
    agent_id: uuid.UUID
    agent_name: str
    token: str
    """Shown once; run the agent with ``berth agent --url URL --token TOKEN``."""
    command: str
