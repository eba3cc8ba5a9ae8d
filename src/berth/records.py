"""Rows as the Store returns them: frozen dataclasses, one per table (and a few read models).

Field names equal column names, so the Store builds any record from a SQLAlchemy row
(:func:`berth.db.store.base.from_row`). Plain data with no database code, so every layer
may hold them, including the ones that may not import :mod:`berth.db` (tools, api, mcp).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Organization:
    id: uuid.UUID
    name: str
    display_name: str
    description: str
    is_default: bool
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class User:
    id: uuid.UUID
    username: str
    email: str
    name: str
    status: str
    roles: list[str]
    is_system: bool
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class OrganizationMember:
    organization_id: uuid.UUID
    user_id: uuid.UUID
    roles: list[str]
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Group:
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    quota_allowance: int
    is_everyone: bool
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    user_id: uuid.UUID
    name: str
    hashed_secret: bytes
    scopes: list[str]
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Template:
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    display_name: str
    description: str
    icon: str
    active_version_id: uuid.UUID | None
    deprecated: str
    deleted: bool
    default_ttl_ms: int
    daily_cost: int
    require_active_version: bool
    created_by: uuid.UUID
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class TemplateVersion:
    id: uuid.UUID
    template_id: uuid.UUID
    name: str
    document: dict[str, Any]
    source: str
    readme: str
    has_external_agent: bool
    created_by: uuid.UUID
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class TemplateVersionParameter:
    template_version_id: uuid.UUID
    name: str
    display_order: int
    display_name: str
    description: str
    type: str
    form_type: str
    default_value: str
    required: bool
    mutable: bool
    ephemeral: bool
    options: list[dict[str, str]]
    validation_regex: str
    validation_error: str
    validation_min: float | None
    validation_max: float | None
    validation_monotonic: str


@dataclass(frozen=True, slots=True)
class TemplateVersionPreset:
    id: uuid.UUID
    template_version_id: uuid.UUID
    name: str
    description: str
    icon: str
    is_default: bool
    desired_prebuild_instances: int | None


@dataclass(frozen=True, slots=True)
class PresetParameter:
    preset_id: uuid.UUID
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Workspace:
    id: uuid.UUID
    owner_id: uuid.UUID
    organization_id: uuid.UUID
    template_id: uuid.UUID
    name: str
    deleted: bool
    ttl_ms: int | None
    deadline: dt.datetime | None
    last_used_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    place: str | None = None
    """Where its resources live (a :class:`~berth.provisioner.spec.Place` id); ``None``
    until a worker that names its places runs its first build."""
    place_label: str | None = None


@dataclass(frozen=True, slots=True)
class Chat:
    id: uuid.UUID
    owner_id: uuid.UUID
    organization_id: uuid.UUID
    title: str
    workspace_id: uuid.UUID | None
    build_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    lock_holder: str | None
    lock_expires_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ProvisionerKey:
    id: str
    organization_id: uuid.UUID
    name: str
    hashed_secret: bytes
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class WorkspaceBuild:
    id: uuid.UUID
    workspace_id: uuid.UUID
    build_number: int
    transition: str
    template_version_id: uuid.UUID
    preset_id: uuid.UUID | None
    initiator_id: uuid.UUID
    reason: str
    daily_cost: int
    job_id: uuid.UUID
    rendered: dict[str, Any] | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class BuildParameter:
    build_id: uuid.UUID
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class ProvisionerJob:
    id: uuid.UUID
    type: str
    organization_id: uuid.UUID
    initiator_id: uuid.UUID
    input: dict[str, Any]
    status: str
    error: str | None
    error_code: str | None
    worker_id: str | None
    priority: int
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None
    heartbeat_at: dt.datetime | None
    completed_at: dt.datetime | None
    canceled_at: dt.datetime | None
    required_place: str | None = None
    """Only a worker serving this place may take the job (its workspace's resources are
    there); ``None``: any worker with the backend."""


@dataclass(frozen=True, slots=True)
class JobLog:
    id: int
    job_id: uuid.UUID
    created_at: dt.datetime
    stage: str
    level: str
    output: str


@dataclass(frozen=True, slots=True)
class WorkspaceResource:
    id: uuid.UUID
    job_id: uuid.UUID
    type: str
    name: str
    handle: dict[str, Any]
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class WorkspaceAgent:
    id: uuid.UUID
    resource_id: uuid.UUID
    parent_id: uuid.UUID | None
    name: str
    display_order: int
    chat: bool
    external: bool
    directory: str
    env: dict[str, str]
    auth_token_hash: bytes
    connection_timeout_seconds: int
    first_connected_at: dt.datetime | None
    last_connected_at: dt.datetime | None
    disconnected_at: dt.datetime | None
    last_connected_replica_id: uuid.UUID | None
    lifecycle_state: str
    started_at: dt.datetime | None
    ready_at: dt.datetime | None
    claimed_at: dt.datetime | None
    """When a user claimed the prebuilt workspace this agent runs in (``None``: never)."""
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class AgentScript:
    id: uuid.UUID
    agent_id: uuid.UUID
    display_name: str
    script: str
    run_on: str
    blocks_login: bool
    timeout_seconds: int
    display_order: int


@dataclass(frozen=True, slots=True)
class AgentLog:
    id: int
    agent_id: uuid.UUID
    script_id: uuid.UUID | None
    created_at: dt.datetime
    level: str
    output: str


@dataclass(frozen=True, slots=True)
class TemplateRankingSignals:
    """What ranks one template for one owner (zeros when there is nothing to count)."""

    template_id: uuid.UUID
    active_count: int = 0
    """The owner's live workspaces of the template whose latest build starts it."""
    deleted_recent_count: int = 0
    """The owner's workspaces of the template deleted since the lookback cutoff."""
    last_used_at: dt.datetime | None = None
    """The owner's latest use of any workspace of the template since the cutoff."""
    org_developers: int = 0
    """Distinct (non-system) owners of live workspaces of the template in the org."""


@dataclass(frozen=True, slots=True)
class PrebuildPool:
    """A preset of a template's active version that asks for prebuilt workspaces."""

    preset_id: uuid.UUID
    preset_name: str
    desired: int
    template_id: uuid.UUID
    template_name: str
    organization_id: uuid.UUID
    template_version_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class PrebuildFailure:
    """A preset's consecutive failed prebuilds and the last one's error."""

    preset_id: uuid.UUID
    count: int
    last_error: str
    last_failed_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class WorkspaceState:
    """A live workspace with its latest build, that build's job and the job's agents."""

    workspace: Workspace
    build: WorkspaceBuild
    job: ProvisionerJob
    agents: tuple[WorkspaceAgent, ...]


@dataclass(frozen=True, slots=True)
class Replica:
    """A running server process, as it registered itself (DESIGN §7)."""

    id: uuid.UUID
    hostname: str
    relay_url: str
    """Where the other replicas reach its relay endpoint."""
    version: str
    started_at: dt.datetime
    heartbeat_at: dt.datetime


@dataclass(frozen=True, slots=True)
class WebSession:
    """A web UI login (DESIGN §14): valid until ``expires_at`` unless revoked."""

    id_hash: bytes
    """The SHA-256 of the cookie's secret id; the id itself is never stored."""
    user_id: uuid.UUID
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class LatestBuild:
    """A workspace with its latest build and that build's job and agents, read together
    (:meth:`~berth.db.authz.AuthzStore.get_workspace_with_latest_build`); ``job`` is
    ``None`` without a build, ``agents`` empty without a job."""

    workspace: Workspace
    build: WorkspaceBuild | None
    job: ProvisionerJob | None
    agents: list[WorkspaceAgent]
