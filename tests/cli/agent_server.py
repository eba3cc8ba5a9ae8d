"""A live server whose workspaces' agents can dial back, for end-to-end ``berth exec``.

The shared ``live_server`` fixture listens on a port picked at bind time while its
settings say ``127.0.0.1:0``, so the access URL handed to agents is unusable and
agents never connect. Here the socket is bound first and the access URL names its
port. Workspaces use the local backend with ``isolation: none`` (agents are host
processes), so every workspace is deleted before the server stops.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Generator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from berth.api.app import StartupReport, create_app
from berth.api.deps import Runtime
from berth.client import ApiError, Client, ClientError
from berth.settings import Settings

START_TIMEOUT = 60.0


@dataclass(frozen=True)
class AgentServer:
    url: str
    admin_token: str


@contextmanager
def serving_agents(database_url: str, data_dir: Path) -> Generator[AgentServer]:
    """A berth server on a free loopback port that agents can reach."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port: int = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        address=f"127.0.0.1:{port}",
        access_url=url,
    )
    started = threading.Event()
    tokens: list[str] = []

    def on_started(runtime: Runtime, report: StartupReport) -> None:
        del runtime
        assert report.bootstrapped is not None
        tokens.append(report.bootstrapped.token)
        started.set()

    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, on_started=on_started), log_level="warning")
    )
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[sock])), name="agent-server", daemon=True
    )
    thread.start()
    try:
        if not started.wait(timeout=START_TIMEOUT):
            raise RuntimeError(f"the test server did not start within {START_TIMEOUT:g}s")
        served = AgentServer(url, tokens[0])
        try:
            yield served
        finally:
            delete_every_workspace(served)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def delete_every_workspace(server: AgentServer) -> None:
    """Delete every workspace and wait for each delete build, so no agent outlives a test.

    Each wait is the server's watch stream, which ends when the build is done.
    """
    with Client(server.url, server.admin_token) as client:
        for workspace in client.list_workspaces(all_users=True):
            with suppress(ClientError):
                if workspace.building:
                    for _ in client.watch_workspace(workspace.id):
                        pass
                client.delete_workspace(workspace.id)
                for _ in client.watch_workspace(workspace.id):
                    pass
            with suppress(ApiError):
                gone = client.get_workspace(workspace.id)
                raise AssertionError(f"workspace {gone.name} is {gone.status} after delete")
