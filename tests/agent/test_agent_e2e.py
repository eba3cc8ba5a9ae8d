"""The built zipapp against a real WebSocket peer: handshake, lifecycle, RPCs, reconnect.

The agent runs as a subprocess of the system Python (``/usr/bin/python3``, outside the
venv, with a minimal environment), and of a Python 3.9 when the machine has one, from
the zipapp written into the test's temp directory. The peer is a tiny server on the
venv's websockets library that speaks the protocol of :mod:`berth.agent.protocol`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any, cast

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from berth.agent.build import ensure_zipapp
from berth.agent.protocol import CONNECT_PATH, PROTOCOL_VERSION
from tests.support.agents import SYSTEM_PYTHON, python39

Frame = dict[str, Any]
WAIT = 20.0
TOKEN = "agent-token"

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["system", "python3.9"])
def interpreter(request: pytest.FixtureRequest) -> str:
    if request.param == "system":
        return SYSTEM_PYTHON
    found = python39()
    if found is None:
        pytest.skip("no Python 3.9 on this machine (set BERTH_TEST_PYTHON39 to one)")
    return found


@pytest.fixture
def zipapp(tmp_path: Path) -> Path:
    return ensure_zipapp(tmp_path / "dist")


class Peer:
    """The server's side of one agent connection."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.frames: list[Frame] = []
        self._ids = 0

    async def send(self, frame: Frame) -> None:
        await self.ws.send(json.dumps(frame))

    async def expect(self, match: str | Callable[[Frame], bool]) -> Frame:
        """The next frame that matches (a type, or a predicate); earlier ones are kept."""

        def wanted(frame: Frame) -> bool:
            return frame["type"] == match if isinstance(match, str) else match(frame)

        while True:
            text = await asyncio.wait_for(self.ws.recv(), WAIT)
            frame = cast(Frame, json.loads(text))
            self.frames.append(frame)
            if wanted(frame):
                return frame

    async def send_request(self, method: str, params: Frame | None = None) -> int:
        self._ids += 1
        await self.send(
            {"type": "request", "id": self._ids, "method": method, "params": params or {}}
        )
        return self._ids

    async def response(self, request_id: int) -> Frame:
        return await self.expect(lambda f: f["type"] == "response" and f["id"] == request_id)

    async def call(self, method: str, params: Frame | None = None) -> Frame:
        frame = await self.response(await self.send_request(method, params))
        assert "result" in frame, frame
        return cast(Frame, frame["result"])

    def states(self) -> list[str]:
        return [f["state"] for f in self.frames if f["type"] == "lifecycle"]

    def log_lines(self) -> list[str]:
        return [e["output"] for f in self.frames if f["type"] == "logs" for e in f["entries"]]


class FakeServer:
    """Accepts agents that present the right token; hands each connection to the test."""

    def __init__(self) -> None:
        self.peers: asyncio.Queue[Peer] = asyncio.Queue()
        self.port = 0
        self.close_code: int | None = None  # accept, then close with it after the hello

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path != CONNECT_PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, "no such endpoint\n")
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return connection.respond(HTTPStatus.UNAUTHORIZED, "bad agent token\n")
        return None

    async def handler(self, ws: ServerConnection) -> None:
        if self.close_code is not None:
            await ws.recv()
            await ws.close(self.close_code, "invalid agent token")
            return
        await self.peers.put(Peer(ws))
        await ws.wait_closed()

    async def accept(self) -> Peer:
        peer = await asyncio.wait_for(self.peers.get(), WAIT)
        hello = await peer.expect("hello")
        assert hello["version"] == PROTOCOL_VERSION
        return peer


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    fake = FakeServer()
    async with serve(fake.handler, "127.0.0.1", 0, process_request=fake.process_request) as ws:
        fake.port = ws.sockets[0].getsockname()[1]
        yield fake


@contextlib.asynccontextmanager
async def run_agent(
    interpreter: str, zipapp: Path, server: FakeServer, tmp_path: Path, token: str = TOKEN
) -> AsyncGenerator[subprocess.Popen[bytes]]:
    """The agent as a subprocess with a workspace-like environment; always reaped."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    argv = [interpreter, str(zipapp), "--url", f"http://127.0.0.1:{server.port}"]
    argv += ["--token", token, "--heartbeat-seconds", "0.2"]
    proc = await asyncio.to_thread(_spawn, argv, env, home, tmp_path / "agent.log")
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                await asyncio.to_thread(proc.wait, WAIT)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait, WAIT)


def _spawn(argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)


def manifest(tmp_path: Path, scripts: list[Frame], generation: int = 1) -> Frame:
    return {
        "type": "manifest",
        "agent_id": "a1",
        "name": "main",
        "directory": str(tmp_path / "project"),
        "env": {"GREETING": "hello"},
        "scripts": scripts,
        "owner": "alice",
        "workspace": "ws1",
        "generation": generation,
    }


SETUP = {
    "id": "setup",
    "display_name": "setup",
    "run_on": "start",
    "blocks_login": True,
    "timeout_seconds": 60,
    "script": 'echo "setup says $GREETING"\necho done >&2\n',
}
STOP = {"id": "stop", "display_name": "stop", "run_on": "stop", "script": "echo stopping"}


async def test_lifecycle_rpc_and_reconnect(
    interpreter: str, zipapp: Path, server: FakeServer, tmp_path: Path
) -> None:
    async with run_agent(interpreter, zipapp, server, tmp_path) as proc:
        peer = await server.accept()
        assert peer.frames[0]["pid"] == proc.pid
        await peer.send(manifest(tmp_path, [SETUP, STOP]))
        await peer.expect(lambda f: f.get("state") == "ready")
        assert peer.states() == ["created", "starting", "ready"]
        assert peer.log_lines() == ["setup says hello", "done"]  # all of them before ready
        await peer.expect("heartbeat")

        result = await peer.call("exec", {"command": "echo $GREETING; pwd"})
        assert result["output"] == f"hello\n{tmp_path / 'project'}\n"
        assert result["exit_code"] == 0

        # A slow exec does not hold up a ping.
        slow = await peer.send_request(
            "exec",
            {"command": "while [ ! -e go ]; do sleep 0.01; done; echo went", "timeout_ms": 20_000},
        )
        assert await peer.call("ping") == {}
        assert not any(f["type"] == "response" and f["id"] == slow for f in peer.frames)
        (tmp_path / "project" / "go").touch()
        assert (await peer.response(slow))["result"]["output"] == "went\n"

        background = await peer.call("exec", {"command": "exec sleep 300", "background": True})
        process_id = background["process_id"]

        await peer.ws.close()  # the server drops the connection; the agent comes back
        again = await server.accept()
        assert again.frames[0]["pid"] == proc.pid  # the same agent process
        await again.send(manifest(tmp_path, [SETUP, STOP]))
        resent = await again.expect("lifecycle")
        assert (resent["state"], resent["generation"]) == ("ready", 1)
        listed = (await again.call("process_list"))["processes"]
        assert [(p["process_id"], p["running"]) for p in listed] == [(process_id, True)]
        unknown = await again.response(await again.send_request("no_such_method"))
        assert unknown["error"]["code"] == "unknown_method"
        assert again.states() == ["ready"]  # no re-run of the start scripts

        await again.send({"type": "shutdown"})
        await again.expect(lambda f: f.get("state") == "off")
        assert again.states() == ["ready", "shutting_down", "off"]
        assert "stopping" in again.log_lines()


async def test_failing_blocking_script_is_start_error(
    interpreter: str, zipapp: Path, server: FakeServer, tmp_path: Path
) -> None:
    failing = {**SETUP, "script": "echo about to fail; exit 3"}
    async with run_agent(interpreter, zipapp, server, tmp_path):
        peer = await server.accept()
        await peer.send(manifest(tmp_path, [failing]))
        await peer.expect(lambda f: f.get("state") == "start_error")
        assert peer.states() == ["created", "starting", "start_error"]
        assert peer.log_lines() == ["about to fail", "setup: exited with code 3"]


async def test_rejected_token_exits_with_code_2(
    interpreter: str, zipapp: Path, server: FakeServer, tmp_path: Path
) -> None:
    async with run_agent(interpreter, zipapp, server, tmp_path, token="wrong") as proc:
        code = await asyncio.to_thread(proc.wait, WAIT)
    assert code == 2
    log = (tmp_path / "agent.log").read_text()
    assert "rejected the agent token (HTTP 401)" in log


async def test_a_token_refused_after_the_accept_exits_with_code_2(
    interpreter: str, zipapp: Path, server: FakeServer, tmp_path: Path
) -> None:
    server.close_code = 4401
    async with run_agent(interpreter, zipapp, server, tmp_path) as proc:
        code = await asyncio.to_thread(proc.wait, WAIT)
    assert code == 2
    log = (tmp_path / "agent.log").read_text()
    assert "rejected the agent token (close code 4401)" in log
