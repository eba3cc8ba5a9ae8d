"""Request and response bodies of the HTTP API, and their construction from records.

Request bodies forbid unknown fields, so a typo is a 422 naming the field instead of
a silently ignored setting.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from berth import records
from berth.domain.durations import format_duration


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- requests -------------------------------------------------------------------------


class CreateUserRequest(Request):
    username: str = Field(min_length=1, max_length=64)
    email: str = Field(default="", max_length=320)
    name: str = Field(default="", max_length=128)
    roles: list[str] = Field(default_factory=list[str])
    organization: str | None = None


class CreateOrganizationRequest(Request):
    name: str = Field(min_length=1, max_length=64)
    display_name: str = Field(default="", max_length=128)
    description: str = Field(default="", max_length=10_000)


class CreateTokenRequest(Request):
    name: str = Field(min_length=1, max_length=64)
    lifetime: str | None = None


class PushTemplateRequest(Request):
    organization: str | None = None
    files: dict[str, str]


class SetConfigRequest(Request):
    value: str = Field(max_length=100_000)


# --- responses ------------------------------------------------------------------------


class Health(BaseModel):
    status: str
    version: str


class UserOut(BaseModel):
    id: uuid.UUID
    username: str
    email: str
    name: str
    status: str
    roles: list[str]
    organization_ids: list[uuid.UUID]
    created_at: dt.datetime

    @classmethod
    def of(cls, user: records.User, organization_ids: list[uuid.UUID]) -> UserOut:
        return cls(
            id=user.id,
            username=user.username,
            email=user.email,
            name=user.name,
            status=user.status,
            roles=user.roles,
            organization_ids=organization_ids,
            created_at=user.created_at,
        )


class TokenOut(BaseModel):
    id: str
    name: str
    user_id: uuid.UUID
    scopes: list[str]
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    created_at: dt.datetime

    @classmethod
    def of(cls, key: records.ApiKey) -> TokenOut:
        return cls(
            id=key.id,
            name=key.name,
            user_id=key.user_id,
            scopes=key.scopes,
            expires_at=key.expires_at,
            last_used_at=key.last_used_at,
            created_at=key.created_at,
        )


class NewTokenOut(TokenOut):
    token: str
    """The secret; shown once."""


class OrganizationOut(BaseModel):
    id: uuid.UUID
    name: str
    display_name: str
    description: str
    is_default: bool
    created_at: dt.datetime

    @classmethod
    def of(cls, org: records.Organization) -> OrganizationOut:
        return cls(
            id=org.id,
            name=org.name,
            display_name=org.display_name,
            description=org.description,
            is_default=org.is_default,
            created_at=org.created_at,
        )


class TemplateOut(BaseModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    display_name: str
    description: str
    icon: str
    active_version_id: uuid.UUID | None
    deprecated: str
    default_ttl: str
    daily_cost: int
    require_active_version: bool
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def fields_of(cls, t: records.Template) -> dict[str, object]:
        return {
            "id": t.id,
            "organization_id": t.organization_id,
            "name": t.name,
            "display_name": t.display_name,
            "description": t.description,
            "icon": t.icon,
            "active_version_id": t.active_version_id,
            "deprecated": t.deprecated,
            "default_ttl": format_duration(dt.timedelta(milliseconds=t.default_ttl_ms)),
            "daily_cost": t.daily_cost,
            "require_active_version": t.require_active_version,
            "created_at": t.created_at,
            "updated_at": t.updated_at,
        }

    @classmethod
    def of(cls, t: records.Template) -> TemplateOut:
        return cls.model_validate(cls.fields_of(t))


class VersionOut(BaseModel):
    id: uuid.UUID
    template_id: uuid.UUID
    name: str
    readme: str
    has_external_agent: bool
    created_at: dt.datetime
    created_by: uuid.UUID

    @classmethod
    def of(cls, v: records.TemplateVersion) -> VersionOut:
        return cls(
            id=v.id,
            template_id=v.template_id,
            name=v.name,
            readme=v.readme,
            has_external_agent=v.has_external_agent,
            created_at=v.created_at,
            created_by=v.created_by,
        )


class OptionOut(BaseModel):
    name: str
    value: str
    description: str = ""
    icon: str = ""


class ParameterOut(BaseModel):
    name: str
    display_name: str
    description: str
    type: str
    form_type: str
    default: str
    required: bool
    mutable: bool
    ephemeral: bool
    options: list[OptionOut]
    validation_regex: str
    validation_error: str
    validation_min: float | None
    validation_max: float | None
    validation_monotonic: str

    @classmethod
    def of(cls, p: records.TemplateVersionParameter) -> ParameterOut:
        return cls(
            name=p.name,
            display_name=p.display_name,
            description=p.description,
            type=p.type,
            form_type=p.form_type,
            default=p.default_value,
            required=p.required,
            mutable=p.mutable,
            ephemeral=p.ephemeral,
            options=[OptionOut.model_validate(o) for o in p.options],
            validation_regex=p.validation_regex,
            validation_error=p.validation_error,
            validation_min=p.validation_min,
            validation_max=p.validation_max,
            validation_monotonic=p.validation_monotonic,
        )


class NameValue(BaseModel):
    name: str
    value: str


class PresetOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    icon: str
    default: bool
    desired_prebuild_instances: int | None
    parameters: list[NameValue]

    @classmethod
    def of(
        cls, p: records.TemplateVersionPreset, values: list[records.PresetParameter]
    ) -> PresetOut:
        return cls(
            id=p.id,
            name=p.name,
            description=p.description,
            icon=p.icon,
            default=p.is_default,
            desired_prebuild_instances=p.desired_prebuild_instances,
            parameters=[NameValue(name=v.name, value=v.value) for v in values],
        )


class TemplateDetailOut(TemplateOut):
    active_version: VersionOut | None
    parameters: list[ParameterOut]
    presets: list[PresetOut]


class PushedOut(BaseModel):
    template: TemplateOut
    version: VersionOut
    created: bool


class ConfigOut(BaseModel):
    key: str
    value: str


# --- workspaces -----------------------------------------------------------------------


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


class JobOut(BaseModel):
    id: uuid.UUID
    status: str
    error: str | None
    error_code: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    completed_at: dt.datetime | None

    @classmethod
    def of(cls, j: records.ProvisionerJob) -> JobOut:
        return cls(
            id=j.id,
            status=j.status,
            error=j.error,
            error_code=j.error_code,
            created_at=j.created_at,
            started_at=j.started_at,
            completed_at=j.completed_at,
        )


class BuildOut(BaseModel):
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
        return cls(
            id=b.id,
            build_number=b.build_number,
            transition=b.transition,
            reason=b.reason,
            template_version_id=b.template_version_id,
            daily_cost=b.daily_cost,
            job=job and JobOut.of(job),
            created_at=b.created_at,
        )


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
    ready_at: dt.datetime | None


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


class LogOut(BaseModel):
    id: int
    created_at: dt.datetime
    stage: str
    level: str
    output: str

    @classmethod
    def of(cls, entry: records.JobLog) -> LogOut:
        return cls(
            id=entry.id,
            created_at=entry.created_at,
            stage=entry.stage,
            level=entry.level,
            output=entry.output,
        )


# --- chats ----------------------------------------------------------------------------


class CreateChatRequest(Request):
    title: str = Field(default="", max_length=256)
    organization: str | None = None


class ChatOut(BaseModel):
    id: uuid.UUID
    owner_id: uuid.UUID
    organization_id: uuid.UUID
    title: str
    workspace_id: uuid.UUID | None
    build_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    mcp_path: str
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, c: records.Chat) -> ChatOut:
        return cls(
            id=c.id,
            owner_id=c.owner_id,
            organization_id=c.organization_id,
            title=c.title,
            workspace_id=c.workspace_id,
            build_id=c.build_id,
            agent_id=c.agent_id,
            mcp_path=f"/api/v1/chats/{c.id}/mcp",
            created_at=c.created_at,
            updated_at=c.updated_at,
        )


# --- quotas ---------------------------------------------------------------------------


class QuotaOut(BaseModel):
    credits_consumed: int
    budget: int | None
    """``None``: no allowance anywhere, so no limit."""


class GroupOut(BaseModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    quota_allowance: int

    @classmethod
    def of(cls, g: records.Group) -> GroupOut:
        return cls(
            id=g.id,
            organization_id=g.organization_id,
            name=g.name,
            quota_allowance=g.quota_allowance,
        )


class GroupUpdateRequest(Request):
    quota_allowance: int


class AgentTokenOut(BaseModel):
    agent_id: uuid.UUID
    agent_name: str
    token: str
    """Shown once; run the agent with ``berth agent --url URL --token TOKEN``."""
    command: str
