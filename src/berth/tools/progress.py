"""Progress of the long chat tools (DESIGN §8): what a create, start or stop waits on.

Beside the tool, not inside its waits: :func:`reporting` runs a watcher for as long as
the tool runs. The watcher follows the chat on the event bus — which workspace the chat
is bound to, that workspace's builds, agents and script output, the current build's
log — re-reads what changed through the services as the ``chat-tools`` actor, and says
each new step once: the build queued (how many are ahead of it), running, its log
lines, the agent connecting, its startup scripts' output, ready. When nothing new
happens for :data:`HEARTBEAT_SECONDS` it says the latest step again (and re-reads, in
case an event was lost), so a client whose timeout restarts on progress — the MCP
SDKs' can — never gives up during a long build, and the count only grows.

Reporting never fails a tool: an error in the watcher (a client that went away, a
read that failed) is logged and ends the reports; the tool goes on.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager

from berth.domain.enums import AgentLifecycle, AgentStatus, JobStatus, Transition
from berth.events import Subscription, listening, messages
from berth.records import WorkspaceAgent
from berth.services import chats, workspace_views
from berth.services.chats import ChatWorkspace
from berth.tools.context import ChatContext
from berth.tools.waits import status_of

__all__ = ["HEARTBEAT_SECONDS", "PROGRESS_TOOLS", "SendProgress", "reporting"]

log = logging.getLogger("berth.tools.progress")

SendProgress = Callable[[float, str], Awaitable[None]]
"""Sends one progress notification: the count so far and a short message."""

PROGRESS_TOOLS = {
    "create_workspace": "creating the workspace",
    "start_workspace": "starting the workspace",
    "stop_workspace": "stopping the workspace",
}
"""The tools that report progress, and what each says first."""

HEARTBEAT_SECONDS = 0.8
"""The longest silence: under a second, as DESIGN §8 asks, with room for a slow loop."""
LINES_PER_STEP = 3
"""The most new log lines said at once (the newest): a chatty build is summarized."""
MESSAGE_MAX_CHARS = 200


@asynccontextmanager
async def reporting(
    chat: ChatContext, tool: str, send: SendProgress | None
) -> AsyncGenerator[None]:
    """Report the progress of ``tool`` through ``send`` while the block runs.

    Nothing happens without ``send`` (the client asked for no progress) or for a tool
    that does not wait. When the block ends normally, what it waited for (the agent
    ready, the build done) is said last: the tool may see it a moment before the
    watcher does.
    """
    first = PROGRESS_TOOLS.get(tool)
    if send is None or first is None:
        yield
        return
    reporter = _Reporter(chat, send)
    task = asyncio.create_task(reporter.run(first), name=f"progress-{tool}")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.wait([task])
    await reporter.last_word()


class _Reporter:
    """The notifications of one tool call: a growing count, each step said once.

    It also keeps where it is in the logs it reports (per build).
    """

    def __init__(self, chat: ChatContext, send: SendProgress) -> None:
        self.chat = chat
        self._send = send
        self._count = 0
        self._last = ""
        self._sent_at = 0.0
        self._said: set[str] = set()
        self.build_id: uuid.UUID | None = None
        self.job_log_id = 0
        self.agent_log_id = 0

    async def say(self, message: str) -> None:
        """Send ``message`` unless it was sent before."""
        message = _short(message)
        if message not in self._said:
            self._said.add(message)
            await self._emit(message)

    async def _emit(self, message: str) -> None:
        self._count += 1
        self._last = message
        self._sent_at = asyncio.get_running_loop().time()
        await self._send(float(self._count), message)

    async def run(self, first: str) -> None:
        try:
            await self.say(first)
            await self._watch()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("progress reports of chat %s stopped", self.chat.chat_id, exc_info=True)

    async def _watch(self) -> None:
        chat = self.chat
        while True:
            channels = _channels(chat, await chats.chat_workspace(chat.services, chat.chat_id))
            async with listening(chat.bus, *channels) as events:
                # Read again once subscribed: no change between a read and a wait is missed.
                while True:
                    view = await chats.chat_workspace(chat.services, chat.chat_id)
                    if _channels(chat, view) != channels:
                        break  # another workspace or build: follow its channels instead
                    await _describe(view, self)
                    if self._quiet() >= HEARTBEAT_SECONDS:
                        await self._emit(self._last)  # the heartbeat
                    await _next(events, HEARTBEAT_SECONDS - self._quiet())

    def _quiet(self) -> float:
        """Seconds since the last notification."""
        return asyncio.get_running_loop().time() - self._sent_at

    async def last_word(self) -> None:
        """Say what the tool saw last, if it is new (bounded; errors only logged)."""
        try:
            async with asyncio.timeout(HEARTBEAT_SECONDS):
                await _describe(
                    await chats.chat_workspace(self.chat.services, self.chat.chat_id), self
                )
        except Exception:
            log.warning(
                "the last progress report of chat %s failed", self.chat.chat_id, exc_info=True
            )


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MESSAGE_MAX_CHARS else line[: MESSAGE_MAX_CHARS - 1] + "…"


def _channels(chat: ChatContext, view: ChatWorkspace) -> tuple[str, ...]:
    channels = [messages.chat(chat.chat_id)]
    if view.workspace is not None:
        channels.append(messages.workspace(view.workspace.id))
    if view.job is not None:
        channels += [messages.job(view.job.id), messages.job_logs(view.job.id)]
    return tuple(channels)


async def _next(events: Subscription | None, within: float) -> None:
    """Until an event arrives or ``within`` seconds pass (the heartbeat is due)."""
    within = max(within, 0.0)
    if events is None:
        await asyncio.sleep(within)
    else:
        await events.get(timeout=within)


async def _describe(view: ChatWorkspace, r: _Reporter) -> None:
    """Say what is new in ``view``."""
    build, job, workspace = view.build, view.job, view.workspace
    if workspace is None or build is None or job is None:
        return
    chat = r.chat
    if build.id != r.build_id:
        r.build_id, r.job_log_id = build.id, 0
    name = f"build #{build.build_number} ({build.transition})"
    since = build.created_at
    match job.status:
        case JobStatus.PENDING:
            ahead = await workspace_views.jobs_ahead(chat.services, job)
            waiting = f"{ahead} ahead of it" if ahead else "next to run"
            await r.say(f"{name} queued: {waiting}")
        case JobStatus.RUNNING | JobStatus.CANCELING:
            await r.say(f"{name} running")
            _, lines = await workspace_views.build_logs(
                chat.services, workspace.id, after_id=r.job_log_id
            )
            if lines:
                r.job_log_id = lines[-1].id
            for line in lines[-LINES_PER_STEP:]:
                await r.say(f"{name}: {line.output}")
            if build.transition != Transition.START.value:  # the stop scripts' output
                await _script_lines(workspace.id, since, r)
        case JobStatus.SUCCEEDED if build.transition == Transition.START.value:
            await r.say(f"{name} succeeded")
            await _describe_agents(workspace.id, since, view.agents, r)
        case JobStatus.SUCCEEDED:
            await r.say(f"{name} succeeded")
        case _:
            await r.say(f"{name} {job.status}: {job.error or 'no error text'}")


async def _describe_agents(
    workspace_id: uuid.UUID, since: dt.datetime, agents: list[WorkspaceAgent], r: _Reporter
) -> None:
    """Each agent connecting and starting, the scripts' new lines, then where each ended."""
    for agent in agents:
        if status_of(r.chat, agent) is not AgentStatus.CONNECTED and not agent.first_connected_at:
            await r.say(f"waiting for agent {agent.name} to connect")
        elif agent.lifecycle_state in _STARTING:
            await r.say(f"agent {agent.name} connected: running its startup scripts")
    await _script_lines(workspace_id, since, r)
    for agent in agents:
        if agent.lifecycle_state == AgentLifecycle.READY:
            await r.say(f"agent {agent.name} is ready")
        elif agent.first_connected_at and agent.lifecycle_state not in _STARTING:
            await r.say(f"agent {agent.name}: {agent.lifecycle_state}")


async def _script_lines(workspace_id: uuid.UUID, since: dt.datetime, r: _Reporter) -> None:
    """The newest lines the agents' scripts wrote since ``since`` (the build began)."""
    lines = await workspace_views.script_logs(
        r.chat.services, workspace_id, after_id=r.agent_log_id
    )
    if lines:
        r.agent_log_id = lines[-1].log.id
    for line in [line for line in lines if line.log.created_at >= since][-LINES_PER_STEP:]:
        script = line.script or "agent"
        await r.say(f"agent {line.agent}: {script}: {line.log.output}")


_STARTING = (AgentLifecycle.CREATED, AgentLifecycle.STARTING)
