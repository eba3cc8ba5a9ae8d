"""The FastAPI application and its lifespan: migrate, bootstrap, serve, shut down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, FastAPI
from starlette.routing import Route

import berth
from berth.agentconn import AgentGateway
from berth.api.deps import Runtime
from berth.api.errors import install_error_handlers
from berth.api.mcp_endpoint import MCP_PATH, ChatMCPEndpoint, session_manager
from berth.api.routes import agents, chats, quotas, system, templates, users, workspaces
from berth.api.routes import provisioner as provisioner_routes
from berth.db.engine import Database, create_engine
from berth.db.migrate import migrate
from berth.events import bus_for_url
from berth.provisioner.backends.registry import make_backends
from berth.provisioner.service import Provisioner
from berth.services.bootstrap import Bootstrapped, bootstrap
from berth.settings import Settings

log = logging.getLogger("berth.server")

API_PREFIX = "/api/v1"


@dataclass
class StartupReport:
    """What the lifespan did, for the CLI to print."""

    bootstrapped: Bootstrapped | None = None


def agent_zipapp(data_dir: Path) -> Path:
    """Build the agent zipapp into the data dir (content-addressed, so rebuilt on upgrade)."""
    from berth.agent.build import build_zipapp

    return build_zipapp(data_dir / "agent" / "berth-agent.pyz")


async def prepare(db: Database, settings: Settings) -> StartupReport:
    """Migrate the database and, when it is empty, bootstrap it. Safe to repeat."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    await migrate(db.engine)
    return StartupReport(
        bootstrapped=await bootstrap(db, install_examples=settings.install_examples)
    )


def create_app(
    settings: Settings,
    *,
    on_started: Callable[[Runtime, StartupReport], None] | None = None,
) -> FastAPI:
    """The berth server app; the database is migrated and bootstrapped on start."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncGenerator[None]:
        url = settings.resolved_database_url()
        db = Database(create_engine(url))
        bus = bus_for_url(url)
        provisioner: Provisioner | None = None
        try:
            report = await prepare(db, settings)
            await bus.start()
            zipapp = await asyncio.to_thread(agent_zipapp, settings.data_dir)
            runtime = Runtime(
                settings=settings,
                db=db,
                bus=bus,
                gateway=AgentGateway(db, bus),
                agent_zipapp=zipapp,
            )
            provisioner = Provisioner(
                db,
                bus,
                make_backends(),
                server_url=settings.resolved_access_url(),
                state_dir=settings.data_dir / "workspaces",
                agent_zipapp=lambda: zipapp,
                workers=settings.provisioner_workers,
                timing=Provisioner.stale_after(settings.job_stale_after_seconds),
            )
            provisioner.start()
            app.state.runtime = runtime
            async with mcp_manager.run():
                if on_started is not None:
                    on_started(runtime, report)
                yield
        finally:
            if provisioner is not None:
                await provisioner.stop()
            await bus.close()
            await db.dispose()

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
    app.router.routes.append(
        Route(MCP_PATH, endpoint=ChatMCPEndpoint(mcp_manager), methods=["GET", "POST", "DELETE"])
    )
    api = APIRouter(prefix=API_PREFIX)
    for module in (system, users, quotas, templates, workspaces, chats, agents):
        api.include_router(module.router)
    api.include_router(provisioner_routes.router)
    app.include_router(api)
    return app
