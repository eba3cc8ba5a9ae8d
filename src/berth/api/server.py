"""Run the server: uvicorn around :func:`berth.api.app.create_app`.

On first start it writes the admin token to ``<data-dir>/admin-token`` (mode 0600)
and prints where the server is, where the MCP endpoint is and how to log in.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from berth.api.app import StartupReport, create_app, prepare
from berth.api.deps import Runtime
from berth.db.engine import Database, create_engine
from berth.errors import BerthError
from berth.settings import Settings

ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 - a file name


def write_secret(path: Path, secret: str) -> None:
    """Write ``secret`` to ``path`` readable by the owner only, never wider."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(secret + "\n")


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


def startup_message(runtime: Runtime, report: StartupReport) -> str:
    settings = runtime.settings
    url = settings.resolved_access_url()
    lines = [f"berth is running at {url}"]
    lines.append(f"MCP endpoint:   {url}/api/v1/chats/<chat-id>/mcp")
    lines.append(f"Database:       {runtime.db.dialect}")
    token_path = settings.data_dir / ADMIN_TOKEN_FILE
    if report.bootstrapped is not None:
        lines.append(f"Created the first user 'admin'; its API token is in {token_path}")
        if report.bootstrapped.templates:
            lines.append(f"Installed example templates: {', '.join(report.bootstrapped.templates)}")
    lines.append(f'Log in with:    berth login {url} --token "$(cat {token_path})"')
    return "\n".join(lines)


async def _prepare(settings: Settings) -> StartupReport:
    db = Database(create_engine(settings.resolved_database_url()))
    try:
        return await prepare(db, settings)
    finally:
        await db.dispose()


def serve(settings: Settings, *, echo: Callable[[str], None] = print) -> None:
    """Run until interrupted (Ctrl-C stops cleanly).

    The database is migrated and bootstrapped before the HTTP server starts, so a
    database that cannot be reached is one clear :class:`StartupError`, not a
    traceback from inside the ASGI lifespan.
    """
    host, port = split_address(settings.address)
    try:
        first = asyncio.run(_prepare(settings))
    except (OSError, SQLAlchemyError, BerthError) as exc:
        raise StartupError(f"cannot open the database: {_reason(exc)}") from exc
    if first.bootstrapped is not None:
        write_secret(settings.data_dir / ADMIN_TOKEN_FILE, first.bootstrapped.token)

    def on_started(runtime: Runtime, _: StartupReport) -> None:
        echo(startup_message(runtime, first))

    app = create_app(settings, on_started=on_started)
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on")
