"""What a backend is given and what it gives back. A backend never sees the database.

The build runner renders the template for one build, mints a token per agent and
hands the backend a :class:`BuildSpec`. The backend makes the world match the
transition and returns the :class:`ResourceRecord` s it created, whose ``handle`` is
all it needs later to inspect or destroy them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from berth.domain.enums import Transition
from berth.domain.template import TemplateDoc


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """One agent to start inside the workspace (external agents are not started)."""

    id: uuid.UUID
    name: str
    token: str
    directory: str
    env: dict[str, str]
    external: bool = False


@dataclass(frozen=True, slots=True)
class BuildSpec:
    """One build of one workspace, rendered."""

    workspace_id: uuid.UUID
    workspace_name: str
    owner_name: str
    build_id: uuid.UUID
    build_number: int
    template: TemplateDoc
    """The rendered template document of this build."""
    agents: list[AgentSpec]
    server_url: str
    """The URL agents dial (``<server_url>/api/v1/agent/connect``)."""
    agent_zipapp: Path
    """The agent zipapp on the provisioner's disk; the backend installs it."""
    state_dir: Path
    """Where a backend keeps per-workspace state on this host (homes, pid files)."""
    labels: dict[str, str] = field(default_factory=lambda: {})


@dataclass(frozen=True, slots=True)
class ResourceRecord:
    """A thing a backend created: a sandbox, a container, a volume."""

    type: str
    name: str
    handle: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Place:
    """Where a backend's sandboxes live, as seen from one provisioner.

    A workspace's resources stay where its first build made them (a bwrap sandbox and
    its home on one host, a container and its volume on one Docker engine), so its later
    builds may only run on a provisioner that can reach them: one whose backend reports
    the same ``id``. ``id`` is short and stable (``<backend>:<32 hex>``, what the
    database matches on); ``label`` names it for a person (``host:/path``).
    """

    id: str
    label: str


@dataclass(frozen=True, slots=True)
class ResourceState:
    """What :meth:`Backend.inspect` found."""

    exists: bool
    running: bool
    detail: str = ""


class LogSink(Protocol):
    """Where a backend streams build output; stored in order and published live."""

    async def __call__(self, output: str, *, stage: str = "apply", level: str = "info") -> None: ...


class Backend(Protocol):
    """A place workspaces run. Idempotent per build: applying twice leaves one sandbox."""

    name: str

    async def apply(
        self, spec: BuildSpec, transition: Transition, log: LogSink
    ) -> list[ResourceRecord]:
        """Make the workspace match ``transition``; raise :class:`~berth.errors.BuildFailed`.

        ``start``: create or reuse the persistent home, run ``prepare`` (non-zero exit:
        BuildFailed with its output), start the sandbox with one agent process per
        non-external agent. ``stop``: stop every process, keep the home. ``delete``:
        remove the sandbox and the home. Returns the resources now existing.
        """
        ...

    async def inspect(self, handle: dict[str, Any]) -> ResourceState:
        """Whether a resource from an earlier ``apply`` still exists and runs."""
        ...

    async def destroy(self, handle: dict[str, Any]) -> None:
        """Remove a resource for good (reconciling after a crash); idempotent."""
        ...

    async def place(self, state_dir: Path) -> Place | None:
        """Where this backend's sandboxes live when it keeps its state in ``state_dir``.

        Two provisioners whose backends answer the same id can reach the same sandboxes.
        ``None`` when it cannot tell right now (an engine that does not answer): the
        worker then takes only builds of workspaces that are not tied to a place.
        """
        ...
