"""The client's workspace methods: against a real server (fake backend), and the watch
stream's parsing and the exec request against a mock transport."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any, Protocol

import httpx
import pytest

from berth.client import (
    ApiError,
    Client,
    ConnectionFailed,
    InvalidArgument,
    InvalidResponse,
    WatchEvent,
    Workspace,
    parse_duration,
)


class LiveServer(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def admin_token(self) -> str: ...


@pytest.fixture
def admin(live_server: LiveServer) -> Iterator[Client]:
    with Client(live_server.url, live_server.admin_token) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def push(client: Client, backend: str, extra: str = "") -> str:
    name = unique("tpl")
    document = f"name: {name}\ndefault_ttl: 8h\nbackend: {backend}\n{extra}"
    client.push_template({"template.yaml": document})
    return name


def follow(client: Client, workspace: str) -> tuple[list[str], Workspace]:
    """Every log line and the last workspace of a watch, to its natural end."""
    lines: list[str] = []
    last: Workspace | None = None
    for event in client.watch_workspace(workspace):
        if event.log is not None:
            lines.append(event.log.output)
        else:
            assert event.workspace is not None
            last = event.workspace
    assert last is not None
    return lines, last


def test_workspace_lifecycle(admin: Client) -> None:
    template = push(admin, "{type: fake, fake: {logs: [one, two]}}")
    name = unique("ws")

    created = admin.create_workspace(name, template, ttl=dt.timedelta(hours=2))
    assert (created.name, created.template_name, created.ttl) == (name, template, "2h0m0s")
    assert created.building or created.status == "running"
    assert created.latest_build is not None
    assert created.latest_build.transition == "start"
    assert created.raw["id"] == created.id

    lines, final = follow(admin, name)
    assert lines[-2:] == ["one", "two"]
    assert (final.status, final.building, final.agents) == ("running", False, [])
    assert final.job is not None
    assert final.job.status == "succeeded"

    assert [w.name for w in admin.list_workspaces()] == [name]
    assert name in {w.name for w in admin.list_workspaces(all_users=True)}
    assert admin.get_workspace(final.id).name == name

    logs = admin.workspace_logs(name)
    assert [e.output for e in logs][-2:] == ["one", "two"]
    assert admin.workspace_logs(name, after=logs[-2].id) == logs[-1:]
    replay = [e.log.id for e in admin.watch_workspace(name, after=logs[-2].id) if e.log]
    assert replay == [logs[-1].id]

    assert admin.set_workspace_ttl(name, "90m").ttl == "1h30m0s"
    assert admin.set_workspace_ttl(name, None).ttl is None

    stop = admin.stop_workspace(name)
    assert (stop.transition, stop.build_number) == ("stop", 2)
    assert follow(admin, name)[1].status == "stopped"
    assert admin.stop_workspace(name).id == stop.id  # nothing to do: the latest build

    start = admin.start_workspace(name)
    assert (start.transition, start.build_number) == ("start", 3)
    assert follow(admin, name)[1].status == "running"

    deleted = admin.delete_workspace(name)
    assert deleted.transition == "delete"
    with contextlib.suppress(ApiError, ConnectionFailed):  # it ends with the workspace
        follow(admin, final.id)
    with pytest.raises(ApiError) as caught:
        admin.get_workspace(final.id)
    assert (caught.value.status_code, caught.value.message) == (404, "workspace not found")


def test_create_with_parameters_preset_owner_and_organization(admin: Client) -> None:
    template = push(
        admin,
        "{type: fake}",
        "parameters:\n  - {name: size, type: string, default: small}\n"
        "presets:\n  - {name: big, parameters: {size: large}}\n",
    )
    preset = admin.get_template(template).presets[0]
    created = admin.create_workspace(
        unique("ws"),
        template,
        parameters={"size": "medium"},
        preset_id=preset.id,
        ttl="0",
        organization="default",
        owner="admin",
    )
    assert created.ttl is None
    assert created.owner_name == "admin"
    with pytest.raises(ApiError) as caught:
        admin.create_workspace(unique("ws"), template, parameters={"colour": "red"})
    assert caught.value.status_code == 422


def test_cancel_a_hanging_build(admin: Client) -> None:
    template = push(admin, "{type: fake, fake: {hang: true}}")
    name = unique("ws")
    admin.create_workspace(name, template)
    job = admin.cancel_build(name)
    assert job.status in ("canceling", "canceled")
    assert follow(admin, name)[1].status == "canceled"
    with pytest.raises(ApiError) as caught:
        admin.cancel_build(name)
    assert caught.value.status_code == 409


def test_a_failed_build_carries_the_job_error(admin: Client) -> None:
    template = push(admin, "{type: fake, fake: {fail: out of disks, code: NO_DISK}}")
    name = unique("ws")
    admin.create_workspace(name, template)
    final = follow(admin, name)[1]
    assert final.status == "failed"
    assert final.job is not None
    assert (final.job.error, final.job.error_code) == ("out of disks", "NO_DISK")


def test_exec_errors(admin: Client) -> None:
    template = push(admin, "{type: fake}")
    name = unique("ws")
    admin.create_workspace(name, template)
    follow(admin, name)
    with pytest.raises(ApiError) as no_agent:
        admin.exec(name, "true")
    assert no_agent.value.status_code == 409
    assert "no eligible workspace agents found" in no_agent.value.message
    with pytest.raises(ApiError) as bad_timeout:
        admin.exec(name, "true", timeout="forever")
    assert bad_timeout.value.status_code == 422
    admin.stop_workspace(name)
    follow(admin, name)
    with pytest.raises(ApiError) as stopped:
        admin.exec(name, "true", timeout=dt.timedelta(seconds=5), workdir="/tmp", env={"A": "1"})
    assert (stopped.value.status_code, stopped.value.message) == (
        409,
        f"Workspace {name!r} is stopped, not running.",
    )
    with pytest.raises(ApiError) as missing:
        list(admin.watch_workspace("nope"))
    assert (missing.value.status_code, missing.value.message) == (404, "workspace not found")


def test_workspace_arguments_are_checked_before_sending(admin: Client) -> None:
    with pytest.raises(InvalidArgument):
        admin.get_workspace(" ")
    with pytest.raises(InvalidArgument):
        next(admin.watch_workspace(""))


# --- no server ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8h", dt.timedelta(hours=8)),
        ("1h30m", dt.timedelta(minutes=90)),
        ("1.5h", dt.timedelta(minutes=90)),
        (" 90s ", dt.timedelta(seconds=90)),
        ("250ms", dt.timedelta(milliseconds=250)),
        ("0", dt.timedelta(0)),
        ("-5m", dt.timedelta(minutes=-5)),
        (".5s", dt.timedelta(milliseconds=500)),
    ],
)
def test_parse_duration(text: str, expected: dt.timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "8", "h", "5x", "1h 30m", "forever", "--1s"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(InvalidArgument, match="use a number and a unit"):
        parse_duration(text)


WORKSPACE: dict[str, Any] = {"id": "w-1", "name": "w1", "status": "running", "agents": []}
LOG: dict[str, Any] = {"id": 7, "stage": "apply", "level": "info", "output": "hi"}


def sse(*events: tuple[str, object]) -> bytes:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


def mock(handler: Any) -> Client:
    return Client("http://berth.test", "t", transport=httpx.MockTransport(handler))


def test_watch_parses_log_and_workspace_events_and_skips_others() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = b": keep-alive\n\n" + sse(("log", LOG), ("ping", {}), ("workspace", WORKSPACE))
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    with mock(handler) as client:
        events = list(client.watch_workspace("w1", after=3))
    assert [e.type for e in events] == ["log", "workspace"]
    first, second = events
    assert isinstance(first, WatchEvent)
    assert first.log is not None
    assert (first.log.id, first.log.output, first.workspace) == (7, "hi", None)
    assert second.workspace is not None
    assert (second.workspace.name, second.workspace.raw) == ("w1", WORKSPACE)
    request = seen[0]
    assert (request.url.path, request.url.params["after"]) == ("/api/v1/workspaces/w1/watch", "3")
    assert request.headers["accept"] == "text/event-stream"


def test_watch_errors() -> None:
    def not_found(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"message": "workspace not found"})

    with mock(not_found) as client, pytest.raises(ApiError) as caught:
        list(client.watch_workspace("nope"))
    assert (caught.value.status_code, caught.value.message) == (404, "workspace not found")

    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>", headers={"content-type": "text/html"})

    with mock(html) as client, pytest.raises(InvalidResponse, match="did not answer with events"):
        list(client.watch_workspace("w1"))

    def garbage(request: httpx.Request) -> httpx.Response:
        body = b"event: log\ndata: {not json\n\n"
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    with mock(garbage) as client, pytest.raises(InvalidResponse, match="not JSON"):
        list(client.watch_workspace("w1"))

    def wrong_shape(request: httpx.Request) -> httpx.Response:
        body = sse(("workspace", {"name": "no id"}))
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    with mock(wrong_shape) as client, pytest.raises(InvalidResponse, match="id"):
        list(client.watch_workspace("w1"))

    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("peer closed connection", request=request)

    with mock(broken) as client, pytest.raises(ConnectionFailed, match="peer closed"):
        list(client.watch_workspace("w1"))


def test_exec_sends_the_command_and_waits_longer_than_its_timeout() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        result = {
            "exit_code": 3,
            "stdout": "o",
            "stderr": "e",
            "timed_out": False,
            "truncated": False,
            "wall_duration_ms": 12,
        }
        return httpx.Response(200, json=result)

    with mock(handler) as client:
        result = client.exec("w1", "ls", timeout="5m", workdir="src", env={"A": "1"})
        client.exec("w1", "ls", timeout=dt.timedelta(seconds=1))
        client.exec("w1", "ls", timeout="nonsense")  # the server says what is wrong
    assert (result.exit_code, result.stdout, result.stderr) == (3, "o", "e")
    bodies = [json.loads(r.content) for r in seen]
    assert bodies[0] == {"command": "ls", "timeout": "5m", "workdir": "src", "env": {"A": "1"}}
    assert bodies[1] == {"command": "ls", "timeout": "1s"}
    reads = [r.extensions["timeout"]["read"] for r in seen]
    assert reads == [330.0, 31.0, 30.0]  # the timeout and a margin, at least the default
