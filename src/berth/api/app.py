"""The FastAPI application; its lifespan opens the server's runtime and closes it after.

The routes are thin: they resolve refs, call services and shape responses. Everything
long-lived — the database, the event bus, the agent gateway, the provisioner loops —
is :class:`berth.services.runtime.Runtime`, opened by :func:`open_runtime`.

The MCP endpoint (:mod:`berth.api.mcp_endpoint`: the ``mcp`` SDK and the chat tools,
~0.3 s of imports) is mounted by :class:`LazyMCP`, which loads it in a worker thread once
the server is up: ``berth server`` is healthy without waiting for it, and an MCP request
that comes before it is ready waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

import berth
from berth.api.errors import document_errors, install_error_handlers
from berth.api.hosts import AllowedHosts
from berth.api.relay_endpoint import relay_route
from berth.api.routes import (
    agents,
    chats,
    prebuilds,
    quotas,
    system,
    templates,
    users,
    workspaces,
)
from berth.api.routes import provisioner as provisioner_routes
from berth.services.runtime import Runtime, open_runtime
from berth.settings import Settings
from berth.web import install as install_web

if TYPE_CHECKING:
    from berth.api.mcp_endpoint import ChatMCPEndpoint

log = logging.getLogger("berth.server")

API_PREFIX = "/api/v1"
MCP_PATH = f"{API_PREFIX}/chats/{{chat_id}}/mcp"
""":data:`berth.api.mcp_endpoint.MCP_PATH`, known here without importing the endpoint
(tests/api/test_api_lazy_start.py checks they are the same)."""


class LazyMCP:
    """The MCP endpoint's route, loaded off the event loop after start-up.

    :meth:`serve` runs for the app's life (its lifespan starts it): it imports the
    endpoint in a worker thread, runs its session manager, and releases the requests
    that came first. If the load fails, or once the app stops, an MCP request is a 500
    (the load's traceback is in the log) rather than a wait.
    """

    def __init__(self, hosts: AllowedHosts) -> None:
        self._hosts = hosts
        self._ready = asyncio.Event()
        self._endpoint: ChatMCPEndpoint | None = None
        self._failure: BaseException | None = None

    async def serve(self) -> None:
        try:
            endpoint = await asyncio.to_thread(_load_mcp, self._hosts)
            async with endpoint.manager.run():
                self._endpoint = endpoint
                self._ready.set()
                await asyncio.Event().wait()  # until the lifespan ends and cancels it
        except Exception as exc:
            log.exception("the MCP endpoint failed")
            self._failure = exc
            raise
        finally:  # a request that comes later (or waited) is not left waiting
            self._endpoint = None
            self._ready.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._ready.wait()
        if self._endpoint is None:
            raise RuntimeError("the MCP endpoint is not running") from self._failure
        await self._endpoint(scope, receive, send)


def _load_mcp(hosts: AllowedHosts) -> ChatMCPEndpoint:
    from berth.api.mcp_endpoint import ChatMCPEndpoint, session_manager

    return ChatMCPEndpoint(session_manager(), hosts)


def agent_zipapp(data_dir: Path) -> Path:
    """The agent zipapp in the data dir, ``agent/berth-agent-<hash>.pyz``: built once per
    process, written only when that file is missing (a new agent gets a new name)."""
    from berth.agent.build import ensure_zipapp

    return ensure_zipapp(data_dir / "agent")


def create_app(
    settings: Settings,
    *,
    on_started: Callable[[Runtime], None] | None = None,
) -> FastAPI:
    """The berth server app; the database is migrated and bootstrapped on start."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncGenerator[None]:
        zipapp = await asyncio.to_thread(agent_zipapp, settings.data_dir)
        async with open_runtime(settings, agent_zipapp=zipapp) as runtime:
            app.state.runtime = runtime
            serving = asyncio.create_task(mcp.serve(), name="mcp")
            try:
                if on_started is not None:
                    on_started(runtime)
                yield
            finally:
                serving.cancel()
                await asyncio.gather(serving, return_exceptions=True)

    app = FastAPI(
        title="berth",
        version=berth.__version__,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    document_errors(app)
    mcp = LazyMCP(AllowedHosts.of(settings))
    app.router.routes.append(Route(MCP_PATH, endpoint=mcp, methods=["GET", "POST", "DELETE"]))
    app.router.routes.append(relay_route)
    api = APIRouter(prefix=API_PREFIX)
    for module in (system, users, quotas, templates, workspaces, chats, agents, prebuilds):
        api.include_router(module.router)
    api.include_router(provisioner_routes.router)
    app.include_router(api)
    install_web(app, settings)  # everything outside /api: pages, static files, their errors
    return app
