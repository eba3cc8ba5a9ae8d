"""The public Python client for berth's HTTP API.

::

    from berth.client import ApiError, Client

    with Client("http://127.0.0.1:7080", token) as berth:
        for template in berth.list_templates():
            print(template.name, template.default_ttl)
        try:
            berth.set_config("chat-workspace-ttl", "30s")
        except ApiError as exc:
            print(exc)          # message, detail, then "  field: detail" lines

        berth.create_workspace("w1", "python", ttl="8h")
        for event in berth.watch_workspace("w1"):   # ends when the build and agents are done
            if event.log:
                print(event.log.output)
        result = berth.exec("w1", "python3 --version", timeout="30s")
        print(result.exit_code, result.stdout, result.stderr)

Standalone on purpose: this package imports nothing else from berth (import-linter
enforces it), so it can be used, and later shipped, without the server's dependencies.
"""

from berth.client.client import Client, normalize_url, parse_duration
from berth.client.errors import (
    ApiError,
    ClientError,
    ConnectionFailed,
    InvalidArgument,
    InvalidResponse,
    InvalidURL,
    TemplateFolderError,
    Validation,
)
from berth.client.files import read_template_folder
from berth.client.models import (
    BUILDING_STATUSES,
    Agent,
    AgentLogEntry,
    AgentToken,
    ApiModel,
    Build,
    Chat,
    ConfigValue,
    ExecResult,
    Health,
    HomeDisk,
    Job,
    LogEntry,
    NewToken,
    Organization,
    Parameter,
    ParameterOption,
    Prebuild,
    PrebuildPool,
    PrebuildPreset,
    Preset,
    PresetParameter,
    PushResult,
    Replica,
    Template,
    TemplateDetail,
    Token,
    User,
    Version,
    WatchEvent,
    Workspace,
)

__all__ = [
    "BUILDING_STATUSES",
    "Agent",
    "AgentLogEntry",
    "AgentToken",
    "ApiError",
    "ApiModel",
    "Build",
    "Chat",
    "Client",
    "ClientError",
    "ConfigValue",
    "ConnectionFailed",
    "ExecResult",
    "Health",
    "HomeDisk",
    "InvalidArgument",
    "InvalidResponse",
    "InvalidURL",
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
    "TemplateFolderError",
    "Token",
    "User",
    "Validation",
    "Version",
    "WatchEvent",
    "Workspace",
    "normalize_url",
    "parse_duration",
    "read_template_folder",
]
