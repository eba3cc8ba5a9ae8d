"""The FastAPI application and its lifespan: migrate, bootstrap, serve, shut down."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI

import berth
from berth.api.deps import Runtime
from berth.api.errors import install_error_handlers
from berth.api.routes import system, templates, users
from berth.db.engine import Database, create_engine
from berth.db.migrate import migrate
from berth.events import bus_for_url
from berth.services.bootstrap import Bootstrapped, bootstrap
from berth.settings import Settings

log = logging.getLogger("berth.server")

API_PREFIX = "/api/v1"


@dataclass
class StartupReport:
    """What the lifespan did, for the CLI to print."""

    bootstrapped: Bootstrapped | None = None


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
        try:
            report = await prepare(db, settings)
            await bus.start()
            runtime = Runtime(settings=settings, db=db, bus=bus)
            app.state.runtime = runtime
            if on_started is not None:
                on_started(runtime, report)
            yield
        finally:
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
    install_error_handlers(app)
    api = APIRouter(prefix=API_PREFIX)
    for module in (system, users, templates):
        api.include_router(module.router)
    app.include_router(api)
    return app
