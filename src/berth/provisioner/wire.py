"""The wire format of the standalone provisioner protocol (:mod:`berth.provisioner.remote`).

Shared by the server's routes (``berth.api.routes.provisioner``) and the worker; the
job itself travels as :class:`berth.provisioner.jobs.AcquiredJob`.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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


class ShutdownRequest(_Request):
    worker_id: str = Field(min_length=1, max_length=128)
    wait_seconds: float = Field(default=0.0, ge=0.0, le=MAX_WAIT_SECONDS)
    """Hold the answer until the agents' stop scripts are done, at most this long."""


class ShutdownOut(BaseModel):
    done: bool
    """``true``: the apply may tear the sandbox down; ``false``: ask again."""


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
