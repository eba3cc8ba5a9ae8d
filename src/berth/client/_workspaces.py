"""Workspaces: create, start, stop and delete them, follow their builds, run commands."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Generator, Mapping
from typing import cast

import httpx
import httpx_sse

from berth.client._core import (
    API_PREFIX,
    ClientCore,
    connection_failed,
    given,
    segment,
    unreadable,
    validate,
)
from berth.client._durations import go_duration, seconds
from berth.client.errors import ApiError, InvalidResponse
from berth.client.models import (
    AgentLogEntry,
    AgentToken,
    Build,
    ExecResult,
    Job,
    LogEntry,
    WatchEvent,
    Workspace,
)

__all__ = ["EXEC_MARGIN_SECONDS", "WorkspacesApi"]

# What an exec's HTTP request waits beyond the command's own timeout.
EXEC_MARGIN_SECONDS = 30.0


class WorkspacesApi(ClientCore):
    def create_workspace(
        self,
        name: str,
        template: str,
        *,
        parameters: Mapping[str, str] | None = None,
        preset_id: str | None = None,
        ttl: str | dt.timedelta | None = None,
        organization: str | None = None,
        owner: str | None = None,
    ) -> Workspace:
        """Create a workspace from ``template`` (name or id) and start its first build.

        Returns at once, while the build runs (``status`` ``pending``/``starting``);
        follow it with :meth:`watch_workspace`. ``ttl`` is a Go duration (``"8h"``, ``"0"``
        for never) or a timedelta; omitted, the template's default applies. ``owner`` is
        ``me`` (the default), a username or an id.
        """
        body = {
            "name": name,
            "template": template,
            **given(
                parameters=dict(parameters) if parameters else None,
                preset_id=preset_id,
                ttl=None if ttl is None else go_duration(ttl),
                organization=organization,
                owner=owner,
            ),
        }
        return self._parse(Workspace, self._request("POST", "/workspaces", json=body))

    def list_workspaces(self, all_users: bool = False) -> list[Workspace]:
        """Your workspaces, or with ``all_users`` every workspace you may see."""
        params = {"all": "true"} if all_users else None
        return self._get_list(Workspace, "/workspaces", params=params)

    def get_workspace(self, workspace: str) -> Workspace:
        """A workspace by id or name (yours)."""
        return self._get(Workspace, f"/workspaces/{segment(workspace)}")

    def start_workspace(self, workspace: str) -> Build:
        """Start a workspace: a new ``start`` build (or, if it is running, the latest)."""
        return self._build(workspace, "start")

    def stop_workspace(self, workspace: str) -> Build:
        """Stop a workspace (its home is kept): a new ``stop`` build (or the latest if
        it is stopped already)."""
        return self._build(workspace, "stop")

    def delete_workspace(self, workspace: str) -> Build:
        """Delete a workspace and its home: the ``delete`` build that does it."""
        response = self._request("DELETE", f"/workspaces/{segment(workspace)}")
        return self._parse(Build, response)

    def cancel_build(self, workspace: str) -> Job:
        """Cancel the build in progress; its job is ``canceled``, or ``canceling`` while
        the provisioner stops."""
        response = self._request("POST", f"/workspaces/{segment(workspace)}/cancel")
        return self._parse(Job, response)

    def external_agent_token(self, workspace: str, agent: str) -> AgentToken:
        """A new token for an external agent of the workspace (the old one stops working)."""
        path = f"/workspaces/{segment(workspace)}/agents/{segment(agent)}/token"
        return self._parse(AgentToken, self._request("POST", path))

    def set_workspace_ttl(self, workspace: str, ttl: str | dt.timedelta | None) -> Workspace:
        """Set the autostop TTL (a Go duration or a timedelta); None or ``"0"``: never."""
        body = {"ttl": "0" if ttl is None else go_duration(ttl)}
        response = self._request("PUT", f"/workspaces/{segment(workspace)}/ttl", json=body)
        return self._parse(Workspace, response)

    def workspace_logs(self, workspace: str, after: int = 0) -> list[LogEntry]:
        """The latest build's log lines with an id above ``after``."""
        path = f"/workspaces/{segment(workspace)}/logs"
        return self._get_list(LogEntry, path, params={"after": str(after)})

    def workspace_agent_logs(self, workspace: str, after: int = 0) -> list[AgentLogEntry]:
        """The agents' script output with an id above ``after``: the agents of the latest
        build, or after a stop or delete those of the last start."""
        path = f"/workspaces/{segment(workspace)}/agent-logs"
        return self._get_list(AgentLogEntry, path, params={"after": str(after)})

    def watch_workspace(
        self, workspace: str, after: int = 0, after_agent_log: int = 0
    ) -> Generator[WatchEvent]:
        """Follow the latest build: its log lines (above ``after``), its agents' script
        output (above ``after_agent_log``) and the workspace each time it changes, until
        the build is done and its agents have started (or failed to). The first
        ``workspace`` event comes at once, then one at least every few seconds. Close the
        iterator (or leave the loop) to stop early.
        """
        path = f"/workspaces/{segment(workspace)}/watch"
        opened = False
        try:
            # Connection: close: a stream the server broke off must not go back to the pool.
            with httpx_sse.connect_sse(
                self._http,
                "GET",
                path,
                params={"after": str(after), "after_agent_log": str(after_agent_log)},
                headers={"Connection": "close"},
            ) as source:
                response = source.response
                if not response.is_success:
                    response.read()
                    raise ApiError.from_response(response)
                for sse in source.iter_sse():
                    event = _watch_event(sse, response)
                    if event is not None:
                        opened = opened or event.workspace is not None
                        yield event
        except httpx_sse.SSEError as exc:
            raise InvalidResponse(
                f"GET {API_PREFIX}{path} did not answer with events: {exc}"
            ) from None
        except httpx.TransportError as exc:
            raise connection_failed(self.url, exc) from None
        if not opened:
            # A stream always starts with the workspace; one that ended without it was
            # refused after it began (a workspace that does not exist): say why.
            self.get_workspace(workspace)

    def exec(
        self,
        workspace: str,
        command: str,
        *,
        timeout: str | dt.timedelta = "60s",
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        """Run ``command`` with ``sh -c`` in the workspace's chat agent and wait for it.

        ``timeout`` is a Go duration or timedelta (at most 4h); a command that outlives
        it is killed and the result says ``timed_out``. stdout and stderr come back apart.
        """
        body = {
            "command": command,
            "timeout": go_duration(timeout),
            **given(workdir=workdir, env=dict(env) if env else None),
        }
        path = f"/workspaces/{segment(workspace)}/exec"
        response = self._request("POST", path, json=body, timeout=self._exec_wait(timeout))
        return self._parse(ExecResult, response)

    def _exec_wait(self, timeout: str | dt.timedelta) -> float | None:
        """How long an exec's answer may take: the command's timeout and a margin."""
        read = self._http.timeout.read
        wait = seconds(timeout)
        if read is None or wait is None:
            return None
        return max(read, max(wait, 0.0) + EXEC_MARGIN_SECONDS)

    def _build(self, workspace: str, transition: str) -> Build:
        path = f"/workspaces/{segment(workspace)}/builds"
        return self._parse(Build, self._request("POST", path, json={"transition": transition}))


def _watch_event(sse: httpx_sse.ServerSentEvent, response: httpx.Response) -> WatchEvent | None:
    """A typed event, or None for an event type this client does not know."""
    if sse.event not in ("log", "agent-log", "workspace"):
        return None
    try:
        data = cast("object", json.loads(sse.data))
    except json.JSONDecodeError:
        raise unreadable(response, f"a {sse.event} event that is not JSON") from None
    if sse.event == "log":
        return WatchEvent("log", log=validate(LogEntry, data, response))
    if sse.event == "agent-log":
        return WatchEvent("agent-log", agent_log=validate(AgentLogEntry, data, response))
    return WatchEvent("workspace", workspace=validate(Workspace, data, response))
