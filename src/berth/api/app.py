"""The FastAPI application; its lifespan opens the server's runtime and closes it after.

The routes are thin: they resolve refs, call services and shape responses. Everything
long-lived — the database, the event bus, the agent gateway, the provisioner loops —
is :class:`berth.services.runtime.Runtime`, opened by :func:`open_runtime`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable
from pathlib import Path

from fastapi import APIRouter, FastAPI
from starlette.routing import Route

import berth
from berth.api.errors import document_errors, install_error_handlers
from berth.api.hosts import AllowedHosts
from berth.api.mcp_endpoint import MCP_PATH, ChatMCPEndpoint, session_manager
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

log = logging.getLogger("berth.server")

API_PREFIX = "/api/v1"


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
            async with mcp_manager.run():
                if on_started is not None:
                    on_started(runtime)
                yield

    app = FastAPI(
        title="berth",
        version=berth.__version__,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    mcp_manager = session_manager()
    install_error_handlers(app)
    document_errors(app)
    mcp_endpoint = ChatMCPEndpoint(mcp_manager, AllowedHosts.of(settings))
    app.router.routes.append(
        Route(MCP_PATH, endpoint=mcp_endpoint, methods=["GET", "POST", "DELETE"])
    )
    app.router.routes.append(relay_route)
    api = APIRouter(prefix=API_PREFIX)
    for module in (system, users, quotas, templates, workspaces, chats, agents, prebuilds):
        api.include_router(module.router)
    api.include_router(provisioner_routes.router)
    app.include_router(api)
    install_web(app, settings)  # everything outside /api: pages, static files, their errors
    return app
