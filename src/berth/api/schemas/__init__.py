"""Request and response bodies of the HTTP API, and their construction from records.

Request bodies forbid unknown fields, so a typo is a 422 naming the field instead of
a silently ignored setting. Response bodies are read from records
(:mod:`berth.records`) by attribute name: ``XOut.of(record)`` where every field is the
record's attribute of the same name, and a converter of a few lines where a field is
computed or renamed (``XOut.read(record, field=value)``).

One module per resource; import from here.
"""

from berth.api.schemas._accounts import (
    CreateOrganizationRequest,
    CreateTokenRequest,
    CreateUserRequest,
    NewTokenOut,
    OrganizationOut,
    SetPasswordRequest,
    SetRolesRequest,
    TokenOut,
    UserOut,
)
from berth.api.schemas._base import Out, RecordOut, Request
from berth.api.schemas._chats import ChatOut, CreateChatRequest
from berth.api.schemas._errors import ErrorEnvelope, ValidationOut
from berth.api.schemas._prebuilds import PrebuildOut, PrebuildPoolOut, PrebuildPresetOut
from berth.api.schemas._quotas import GroupOut, GroupUpdateRequest, QuotaOut
from berth.api.schemas._system import ConfigOut, Health, ReplicaOut, SetConfigRequest
from berth.api.schemas._templates import (
    NameValue,
    OptionOut,
    ParameterOut,
    PresetOut,
    PushedOut,
    PushTemplateRequest,
    TemplateDetailOut,
    TemplateOut,
    VersionOut,
)
from berth.api.schemas._workspaces import (
    AgentLogOut,
    AgentOut,
    AgentTokenOut,
    BuildOut,
    BuildRequest,
    CreateWorkspaceRequest,
    ExecOut,
    ExecRequest,
    HomeDiskOut,
    JobOut,
    LogOut,
    TTLRequest,
    WorkspaceOut,
)

__all__ = [
    "AgentLogOut",
    "AgentOut",
    "AgentTokenOut",
    "BuildOut",
    "BuildRequest",
    "ChatOut",
    "ConfigOut",
    "CreateChatRequest",
    "CreateOrganizationRequest",
    "CreateTokenRequest",
    "CreateUserRequest",
    "CreateWorkspaceRequest",
    "ErrorEnvelope",
    "ExecOut",
    "ExecRequest",
    "GroupOut",
    "GroupUpdateRequest",
    "Health",
    "HomeDiskOut",
    "JobOut",
    "LogOut",
    "NameValue",
    "NewTokenOut",
    "OptionOut",
    "OrganizationOut",
    "Out",
    "ParameterOut",
    "PrebuildOut",
    "PrebuildPoolOut",
    "PrebuildPresetOut",
    "PresetOut",
    "PushTemplateRequest",
    "PushedOut",
    "QuotaOut",
    "RecordOut",
    "ReplicaOut",
    "Request",
    "SetConfigRequest",
    "SetPasswordRequest",
    "SetRolesRequest",
    "TTLRequest",
    "TemplateDetailOut",
    "TemplateOut",
    "TokenOut",
    "UserOut",
    "ValidationOut",
    "VersionOut",
    "WorkspaceOut",
]
