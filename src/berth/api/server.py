"""Run the server: uvicorn around :func:`berth.api.app.create_app`.

On first start it writes the admin token to ``<data-dir>/admin-token`` (mode 0600)
and prints where the server is, where the MCP endpoint is and how to log in.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError

from berth.api.app import create_app
from berth.errors import BerthError
from berth.services.bootstrap import Bootstrapped
from berth.services.runtime import Runtime, prepare_server
from berth.settings import Settings

ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 - a file name


def write_secret(path: Path, secret: str) -> None:
    """Write ``secret`` to ``path`` readable by the owner only, never wider."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(secret + "\n")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket with ``TCP_NODELAY``.

    Without it, a response written in two parts (headers, then body) waits for the
    client's delayed ACK: ~40 ms on every keep-alive request.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(512)
    except OSError:
        sock.close()
        raise
    return sock


class StartupError(Exception):
    """The server cannot start; the message says why, in one line."""


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).strip().splitlines()[0]


def split_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``[v6]:PORT``) as a pair; ValueError with a clear message."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"invalid address {address!r}: expected HOST:PORT, like 127.0.0.1:7080")
    return host.strip("[]"), int(port)


def join_address(host: str, port: int) -> str:
    """The inverse of :func:`split_address`."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def startup_message(runtime: Runtime, bootstrapped: Bootstrapped | None) -> str:
    settings = runtime.settings
    url = settings.resolved_access_url()
    lines = [f"berth is running at {url}"]
    lines.append(f"MCP endpoint:   {url}/api/v1/chats/<chat-id>/mcp")
    lines.append(f"Database:       {runtime.db.dialect}")
    token_path = settings.data_dir / ADMIN_TOKEN_FILE
    if bootstrapped is not None:
        lines.append(f"Created the first user 'admin'; its API token is in {token_path}")
        if bootstrapped.templates:
            lines.append(f"Installed example templates: {', '.join(bootstrapped.templates)}")
    lines.append(f'Log in with:    berth login {url} --token "$(cat {token_path})"')
    return "\n".join(lines)


def serve(
    settings: Settings,
    *,
    echo: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> None:
    """Run until interrupted (Ctrl-C stops cleanly), or until ``stop`` is set.

    The database is migrated and bootstrapped before the HTTP server starts, so a
    database that cannot be reached is one clear :class:`StartupError`, not a
    traceback from inside the ASGI lifespan. Port 0 picks a free port; the printed URL
    is the real one.
    """
    host, port = split_address(settings.address)
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        raise StartupError(f"cannot listen on {settings.address}: {exc.strerror or exc}") from exc
    with sock:
        bound = sock.getsockname()[1]
        if port == 0:  # the URLs derived from the address must name the real port
            settings = settings.model_copy(update={"address": join_address(host, bound)})
        try:
            first = asyncio.run(prepare_server(settings))
        except (OSError, SQLAlchemyError, BerthError) as exc:
            raise StartupError(f"cannot open the database: {_reason(exc)}") from exc
        if first is not None:
            write_secret(settings.data_dir / ADMIN_TOKEN_FILE, first.token)

        def on_started(runtime: Runtime) -> None:
            echo(startup_message(runtime, first))

        app = create_app(settings, on_started=on_started)
        server = _server(app)
        if stop is not None:
            threading.Thread(target=_stop_when_set, args=(stop, server), daemon=True).start()
        server.run(sockets=[sock])


class _Server(uvicorn.Server):
    """uvicorn's server, which first ends the requests that follow state for as long as
    their client stays (live pages, watches: :meth:`Runtime.follow`).

    uvicorn waits for every open request before it stops; without this, Ctrl-C with a
    workspace page open would wait until the browser left. The streams end cleanly, and
    the browser reconnects to the next server (or replica) that answers."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        runtime: Runtime | None = getattr(self._app.state, "runtime", None)
        if runtime is not None:
            runtime.stop_following()
        await super().shutdown(sockets)


def _server(app: FastAPI) -> uvicorn.Server:
    return _Server(uvicorn.Config(app, log_level="warning", lifespan="on"), app)


def _stop_when_set(stop: threading.Event, server: uvicorn.Server) -> None:
    stop.wait()
    server.should_exit = True


@dataclass
class RunningServer:
    """A server started by :func:`running_server`."""

    url: str
    runtime: Runtime


@contextlib.contextmanager
def running_server(settings: Settings, *, start_timeout: float = 60.0) -> Generator[RunningServer]:
    """Run a server on a free loopback port in a background thread (tests, benchmarks).

    The socket is bound before the thread starts, so the port is known at once and
    connections queue until the app is ready.
    """
    started = threading.Event()
    state: dict[str, Runtime] = {}

    def on_started(runtime: Runtime) -> None:
        state["runtime"] = runtime
        started.set()

    host, _ = split_address(settings.address)
    sock = bind_socket(host, 0)
    port = sock.getsockname()[1]
    # Agents and the other replicas must dial the port actually bound, not ":0".
    settings = settings.model_copy(update={"address": join_address(host, port)})
    url = f"http://{join_address(host, port)}"
    server = _server(create_app(settings, on_started=on_started))
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[sock])), name="berth-server", daemon=True
    )
    thread.start()
    try:
        if not started.wait(timeout=start_timeout):
            raise StartupError(f"the server did not start within {start_timeout:g}s")
        yield RunningServer(url, state["runtime"])
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
