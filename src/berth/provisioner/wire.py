"""The wire format of the standalone provisioner protocol (:mod:`berth.provisioner.remote`).

Shared by the server's routes (``berth.api.routes.provisioner``) and the worker; the
job itself travels as :class:`berth.provisioner.jobs.AcquiredJob`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from berth.provisioner.spec import Place

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


class PlaceIn(_Request):
    """Where one of the worker's backends keeps its sandboxes (:class:`Place`)."""

    backend: str = Field(min_length=1, max_length=64)
    id: str = Field(min_length=1, max_length=128, pattern=r"^[!-~]+$")
    """What the server matches on: printable ASCII, no spaces."""
    label: str = Field(default="", max_length=512)


class AcquireRequest(_Request):
    worker_id: str = Field(min_length=1, max_length=128)
    wait_seconds: float = Field(default=0.0, ge=0.0, le=MAX_WAIT_SECONDS)
    backends: list[str] | None = None
    """The backend types this worker offers; a job needing another fails at once."""
    places: list[PlaceIn] | None = Field(default=None, max_length=32)
    """Where its backends build, one per backend; only a worker naming a workspace's
    place gets that workspace's jobs. Absent (an older worker): it gets only the jobs of
    workspaces tied to no place."""

    @model_validator(mode="after")
    def _one_place_per_backend(self) -> AcquireRequest:
        names = [p.backend for p in self.places or ()]
        if len(set(names)) != len(names):
            raise ValueError("places: at most one place per backend")
        return self

    def place_map(self) -> dict[str, Place] | None:
        if self.places is None:
            return None
        return {p.backend: Place(p.id, p.label or p.id) for p in self.places}

    @classmethod
    def places_of(cls, places: Mapping[str, Place] | None) -> list[PlaceIn] | None:
        """The wire form of a worker's places (``None``, omitted, when it names none)."""
        if not places:
            return None
        return [PlaceIn(backend=b, id=p.id, label=p.label) for b, p in sorted(places.items())]


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
