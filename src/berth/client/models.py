"""The API's objects as the client sees them.

Tolerant readers: every model allows extra fields (a newer server may add some) and
gives defaults to fields an older server might not send, so upgrading the server never
breaks a client. Durations stay Go strings (``"8h0m0s"``) exactly as the server sends
them; times are parsed into aware :class:`~datetime.datetime` values.

Each model keeps the JSON object it was read from: :attr:`ApiModel.raw` is what the
server sent, byte for byte in meaning (the CLI's ``-o json`` prints it), while the
typed fields are for code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal, Self, cast

from pydantic import BaseModel, ConfigDict, ModelWrapValidatorHandler, PrivateAttr, model_validator

__all__ = [
    "BUILDING_STATUSES",
    "Agent",
    "AgentLogEntry",
    "AgentToken",
    "ApiModel",
    "Build",
    "Chat",
    "ConfigValue",
    "ExecResult",
    "Health",
    "HomeDisk",
    "Job",
    "LogEntry",
    "NewToken",
    "Organization",
    "Parameter",
    "ParameterOption",
    "Prebuild",
    "PrebuildPool",
    "PrebuildPreset",
    "Preset",
    "PresetParameter",
    "PushResult",
    "Replica",
    "Template",
    "TemplateDetail",
    "Token",
    "User",
    "Version",
    "WatchEvent",
    "Workspace",
]


class ApiModel(BaseModel):
    """Base of every API object: extra fields allowed and kept, source JSON kept."""

    model_config = ConfigDict(extra="allow")

    _raw: dict[str, Any] | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_raw(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        model = handler(data)
        if isinstance(data, dict):
            model._raw = cast("dict[str, Any]", data)
        return model

    @property
    def raw(self) -> dict[str, Any]:
        """The JSON object as the server sent it (or this model's JSON if built locally)."""
        if self._raw is not None:
            return self._raw
        return self.model_dump(mode="json")


class Health(ApiModel):
    status: str
    version: str = ""


class Replica(ApiModel):
    """A server replica sharing the database; ``live``: it heart-beat recently."""

    id: str
    hostname: str
    relay_url: str
    version: str = ""
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    live: bool


class User(ApiModel):
    id: str
    username: str
    email: str = ""
    name: str = ""
    status: str = "active"
    roles: list[str] = []
    organization_ids: list[str] = []
    created_at: dt.datetime | None = None


class Token(ApiModel):
    """An API token's metadata; the secret is only ever in :class:`NewToken`."""

    id: str
    name: str
    user_id: str = ""
    scopes: list[str] = []
    expires_at: dt.datetime | None = None
    last_used_at: dt.datetime | None = None
    created_at: dt.datetime | None = None


class NewToken(Token):
    """A token just created: ``token`` is its secret, shown this once."""

    token: str


class Organization(ApiModel):
    id: str
    name: str
    display_name: str = ""
    description: str = ""
    is_default: bool = False
    created_at: dt.datetime | None = None


class Template(ApiModel):
    id: str
    organization_id: str = ""
    name: str
    display_name: str = ""
    description: str = ""
    icon: str = ""
    active_version_id: str | None = None
    deprecated: str | bool = ""
    """The deprecation message (empty: not deprecated); a bool from servers that send one."""
    default_ttl: str = "0s"
    daily_cost: int = 0
    require_active_version: bool = False
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    @property
    def is_deprecated(self) -> bool:
        return bool(self.deprecated)


class Version(ApiModel):
    id: str
    template_id: str = ""
    name: str = ""
    readme: str = ""
    has_external_agent: bool = False
    created_at: dt.datetime | None = None
    created_by: str | None = None


class ParameterOption(ApiModel):
    name: str
    value: Any = None
    description: str = ""
    icon: str = ""


class Parameter(ApiModel):
    name: str
    display_name: str = ""
    description: str = ""
    type: str = "string"
    form_type: str = ""
    default: Any = None
    required: bool = False
    mutable: bool = False
    ephemeral: bool = False
    options: list[ParameterOption] = []
    validation_regex: str | None = None
    validation_error: str | None = None
    validation_min: float | None = None
    validation_max: float | None = None
    validation_monotonic: str | None = None


class PresetParameter(ApiModel):
    name: str
    value: Any = None


class Preset(ApiModel):
    id: str = ""
    name: str
    description: str = ""
    icon: str = ""
    default: bool = False
    desired_prebuild_instances: int | None = None
    parameters: list[PresetParameter] = []


class TemplateDetail(Template):
    """A template with its active version, parameters and presets (``GET /templates/{t}``)."""

    active_version: Version | None = None
    parameters: list[Parameter] = []
    presets: list[Preset] = []


class PushResult(ApiModel):
    """What a push did: ``created`` is true when the template itself is new."""

    template: Template
    version: Version
    created: bool = False


class ConfigValue(ApiModel):
    key: str
    value: str


# --- workspaces -----------------------------------------------------------------------

BUILDING_STATUSES = frozenset({"pending", "starting", "stopping", "deleting", "canceling"})
"""Workspace statuses while a build is in progress."""


class Job(ApiModel):
    """The provisioner job of a build: ``pending``, ``running``, ``succeeded``,
    ``failed`` (with ``error`` and ``error_code``), ``canceling`` or ``canceled``."""

    id: str
    status: str
    error: str | None = None
    error_code: str | None = None
    created_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None


class Build(ApiModel):
    """One build of a workspace: a ``start``, ``stop`` or ``delete`` transition."""

    id: str
    build_number: int = 0
    transition: str = ""
    reason: str = ""
    template_version_id: str = ""
    daily_cost: int = 0
    job: Job | None = None
    created_at: dt.datetime | None = None


class Agent(ApiModel):
    """A workspace agent. ``status`` is its connection (``connecting``, ``connected``,
    ``disconnected``, ``timeout``); ``lifecycle_state`` how far its start scripts got
    (``created``, ``starting``, ``ready``, ``start_error``, ``start_timeout``, …)."""

    id: str
    name: str
    status: str = ""
    lifecycle_state: str = ""
    chat: bool = False
    external: bool = False
    directory: str = ""
    first_connected_at: dt.datetime | None = None
    last_connected_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    ready_at: dt.datetime | None = None
    claimed_at: dt.datetime | None = None
    """When a user claimed the prebuilt workspace this agent runs in."""


class HomeDisk(ApiModel):
    """The home's disk use, as the workspace's latest build measured it;
    ``limit_bytes`` is the ``backend.disk`` quota where one is enforced."""

    used_bytes: int
    limit_bytes: int | None = None
    measured_at: dt.datetime | None = None


class Workspace(ApiModel):
    """A workspace; ``status`` follows its latest build (``pending``, ``starting``,
    ``running``, ``stopping``, ``stopped``, ``deleting``, ``deleted``, ``failed``,
    ``canceling``, ``canceled``)."""

    id: str
    name: str
    owner_id: str = ""
    owner_name: str = ""
    organization_id: str = ""
    template_id: str = ""
    template_name: str = ""
    status: str = ""
    ttl: str | None = None
    """The autostop TTL as a Go duration; None: never stops by itself."""
    deadline: dt.datetime | None = None
    last_used_at: dt.datetime | None = None
    created_at: dt.datetime | None = None
    latest_build: Build | None = None
    agents: list[Agent] = []
    home_disk: HomeDisk | None = None
    """Set when one workspace is asked for (not in listings) and its backend measures it."""
    host: str | None = None
    """Where its resources live (a host and state dir, a Docker engine); its builds run
    only on provisioners there. None until its first build."""
    waiting_for_host: str | None = None
    """While its build is pending: the host it waits for a provisioner of."""

    @property
    def building(self) -> bool:
        """A build is in progress."""
        return self.status in BUILDING_STATUSES

    @property
    def job(self) -> Job | None:
        """The latest build's job."""
        return self.latest_build.job if self.latest_build else None


class LogEntry(ApiModel):
    """One line of a build's log."""

    id: int
    created_at: dt.datetime | None = None
    stage: str = ""
    level: str = "info"
    output: str = ""


class AgentLogEntry(ApiModel):
    """One line of an agent's output: a script's (``script`` is its display name) or the
    agent's own (``script`` is None)."""

    id: int
    created_at: dt.datetime | None = None
    agent_id: str = ""
    agent: str = ""
    script: str | None = None
    level: str = "info"
    output: str = ""


class ExecResult(ApiModel):
    """What a command run with :meth:`Client.exec` did. ``exit_code`` is -1 when it timed
    out (``timed_out``); ``truncated`` when stdout or stderr was cut."""

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    truncated: bool = False
    wall_duration_ms: int = 0


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One event of :meth:`Client.watch_workspace`: a build ``log`` line, an
    ``agent-log`` line of a script's output, or the ``workspace`` as it is now. Exactly
    one of ``log``, ``agent_log`` and ``workspace`` is set."""

    type: Literal["log", "agent-log", "workspace"]
    log: LogEntry | None = None
    agent_log: AgentLogEntry | None = None
    workspace: Workspace | None = None


class Chat(ApiModel):
    """A chat: its own workspace binding and MCP endpoint (``mcp_path``)."""

    id: str
    owner_id: str
    organization_id: str
    title: str = ""
    workspace_id: str | None = None
    build_id: str | None = None
    agent_id: str | None = None
    mcp_path: str = ""
    created_at: dt.datetime
    updated_at: dt.datetime


class AgentToken(ApiModel):
    """A fresh token for an external agent; ``command`` runs the agent with it."""

    agent_id: str
    agent_name: str
    token: str
    command: str


# --- prebuilds ------------------------------------------------------------------------


class Prebuild(ApiModel):
    """A prebuilt workspace; ``ready``: running with every agent ready (claimable)."""

    workspace_id: str
    workspace_name: str = ""
    template_id: str = ""
    template_name: str = ""
    preset_id: str | None = None
    preset_name: str = ""
    template_version_id: str = ""
    status: str = ""
    ready: bool = False
    created_at: dt.datetime | None = None


class PrebuildPreset(ApiModel):
    """A preset's pool: ``actual`` counts prebuilds ready or on their way; ``retry_at``
    is set while it backs off after ``failures`` (in a row)."""

    preset_id: str
    preset_name: str = ""
    template_id: str = ""
    template_name: str = ""
    template_version_id: str = ""
    desired: int = 0
    actual: int = 0
    ready: int = 0
    failures: int = 0
    last_error: str = ""
    last_failed_at: dt.datetime | None = None
    retry_at: dt.datetime | None = None


class PrebuildPool(ApiModel):
    """The whole prebuild pool (``GET /prebuilds``, and what pause and resume answer)."""

    paused: bool = False
    presets: list[PrebuildPreset] = []
    prebuilds: list[Prebuild] = []
