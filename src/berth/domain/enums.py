"""The closed vocabularies of berth's data model (Coder's names, kept as strings)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """Roles a user can hold. ``owner`` is the site administrator."""

    OWNER = "owner"
    TEMPLATE_ADMIN = "template-admin"
    MEMBER = "member"


class UserStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETED = "deleted"


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELING = "canceling"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)


class JobType(StrEnum):
    WORKSPACE_BUILD = "workspace_build"


class Transition(StrEnum):
    START = "start"
    STOP = "stop"
    DELETE = "delete"


class BuildReason(StrEnum):
    INITIATOR = "initiator"
    AUTOSTOP = "autostop"
    CLAIM = "claim"
    PREBUILD = "prebuild"


class AgentStatus(StrEnum):
    """Connection status, derived from timestamps (spec §8)."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    TIMEOUT = "timeout"


class AgentLifecycle(StrEnum):
    """The startup/shutdown lifecycle an agent reports (spec §8)."""

    CREATED = "created"
    STARTING = "starting"
    START_TIMEOUT = "start_timeout"
    START_ERROR = "start_error"
    READY = "ready"
    SHUTTING_DOWN = "shutting_down"
    SHUTDOWN_TIMEOUT = "shutdown_timeout"
    SHUTDOWN_ERROR = "shutdown_error"
    OFF = "off"


class ParameterType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    BOOL = "bool"
    LIST_STRING = "list(string)"


class FormType(StrEnum):
    INPUT = "input"
    TEXTAREA = "textarea"
    DROPDOWN = "dropdown"
    RADIO = "radio"
    CHECKBOX = "checkbox"
    SWITCH = "switch"
    MULTI_SELECT = "multi-select"
    TAG_SELECT = "tag-select"


class BackendType(StrEnum):
    LOCAL = "local"
    DOCKER = "docker"
    KUBERNETES = "kubernetes"
    FAKE = "fake"


class Isolation(StrEnum):
    BWRAP = "bwrap"
    NONE = "none"
