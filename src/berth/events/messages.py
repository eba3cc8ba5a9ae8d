"""Every channel berth publishes on, and every message, in one place.

Channels are named by the functions below, never spelled out elsewhere. Messages are
pydantic models with one ``type`` field each; they carry ids and states, never
secrets, and consumers treat them as hints and re-read the database (a lost message
only delays a waiter until its next re-check).

================================  ==================================================
channel                           messages, and who waits on them
================================  ==================================================
:data:`JOBS`                      :class:`JobQueued`: idle provisioner workers
:data:`DEADLINES`                 :class:`DeadlinesChanged`: the autostop timers
:func:`job` ``job:<id>``          :class:`JobStatusChanged`: build waiters, the
                                  worker's cancel watch, remote heartbeats
:func:`job_logs`                  :class:`JobLogsAppended`: log followers only, so a
                                  chatty build wakes no status waiter
:func:`workspace`                 :class:`BuildStatusChanged`, :class:`AgentConnection`,
                                  :class:`AgentLifecycle`, :class:`AgentLogsAppended`:
                                  workspace watchers (SSE, tool progress)
:func:`agent` ``agent:<id>``      :class:`AgentConnection`, :class:`AgentLifecycle`:
                                  the chat tools' agent waits
:data:`PREBUILDS`                 :class:`PrebuildsChanged`: the prebuild reconciler
:data:`AGENT_MANIFESTS`           :class:`ManifestChanged`: every replica's gateway,
                                  which re-sends the manifest if it holds the agent
:func:`chat` ``chat:<id>``        :class:`ChatUpdated`: chat watchers (SSE, UIs)
:func:`chat_lock`                 :class:`ChatLockReleased`: calls queued on the lease
================================  ==================================================
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from berth.events.core import Event, EventBus, publish_quietly

JOBS = "provisioner:jobs"
DEADLINES = "autostop:deadlines"
PREBUILDS = "prebuilds:pool"
AGENT_MANIFESTS = "agents:manifests"


def job(job_id: uuid.UUID) -> str:
    return f"job:{job_id}"


def job_logs(job_id: uuid.UUID) -> str:
    return f"job-logs:{job_id}"


def workspace(workspace_id: uuid.UUID) -> str:
    return f"workspace:{workspace_id}"


def agent(agent_id: uuid.UUID) -> str:
    return f"agent:{agent_id}"


def chat(chat_id: uuid.UUID) -> str:
    return f"chat:{chat_id}"


def chat_lock(chat_id: uuid.UUID) -> str:
    return f"chat-lock:{chat_id}"


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class JobQueued(_Message):
    """A job became pending, or (``cancel``) was asked to stop."""

    type: Literal["job-queued"] = "job-queued"
    job_id: uuid.UUID
    cancel: bool = False


class DeadlinesChanged(_Message):
    """A workspace's autostop deadline may have moved (set, pushed, cleared) or it settled."""

    type: Literal["deadlines"] = "deadlines"
    workspace_id: uuid.UUID


class JobStatusChanged(_Message):
    type: Literal["status"] = "status"
    status: str


class JobLogsAppended(_Message):
    type: Literal["log"] = "log"
    last_id: int
    """The id of the newest stored log line."""


class BuildStatusChanged(_Message):
    type: Literal["build"] = "build"
    build_id: uuid.UUID
    status: str


class AgentConnection(_Message):
    type: Literal["connection"] = "connection"
    agent_id: uuid.UUID
    state: Literal["connected", "disconnected"]


class AgentLifecycle(_Message):
    type: Literal["lifecycle"] = "lifecycle"
    agent_id: uuid.UUID
    state: str


class AgentLogsAppended(_Message):
    """An agent stored script output (only on the workspace's channel: no agent waiter
    wakes for it)."""

    type: Literal["agent-log"] = "agent-log"
    agent_id: uuid.UUID


class PrebuildsChanged(_Message):
    """Something the prebuild pool depends on changed: a push, a build settled, a
    prebuild's agent became ready or failed, a claim, pause or resume."""

    type: Literal["prebuilds"] = "prebuilds"


class ManifestChanged(_Message):
    """An agent's manifest was rewritten (a claim): its connection should get it anew."""

    type: Literal["manifest"] = "manifest"
    agent_id: uuid.UUID


class ChatUpdated(_Message):
    type: Literal["chat-updated"] = "chat-updated"


class ChatLockReleased(_Message):
    type: Literal["released"] = "released"


Message = Annotated[
    JobQueued
    | DeadlinesChanged
    | JobStatusChanged
    | JobLogsAppended
    | BuildStatusChanged
    | AgentConnection
    | AgentLifecycle
    | AgentLogsAppended
    | PrebuildsChanged
    | ManifestChanged
    | ChatUpdated
    | ChatLockReleased,
    Field(discriminator="type"),
]
_MESSAGE: TypeAdapter[Message] = TypeAdapter(Message)


async def publish(bus: EventBus | None, channel: str, *messages: Message) -> None:
    """Publish after commit, quietly: a bus hiccup must not fail a committed change."""
    for message in messages:
        await publish_quietly(bus, channel, message.model_dump(mode="json"))


def parse(event: Event) -> Message | None:
    """The message an event carries; ``None`` for a resync or an unknown payload."""
    try:
        return _MESSAGE.validate_python(event.payload)
    except ValidationError:
        return None
