"""Request dependencies: the runtime, and the authenticated service context."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from berth.agentconn import AgentGateway
from berth.db.engine import Database
from berth.errors import Unauthenticated
from berth.events import EventBus
from berth.services.accounts import authenticate
from berth.services.base import Ctx
from berth.settings import Settings


@dataclass
class Runtime:
    """The server's long-lived parts, built in the app's lifespan."""

    settings: Settings
    db: Database
    bus: EventBus
    gateway: AgentGateway
    agent_zipapp: Path


def get_runtime(connection: HTTPConnection) -> Runtime:
    runtime: Runtime = connection.app.state.runtime
    return runtime


_bearer = HTTPBearer(auto_error=False)


async def get_ctx(
    runtime: Annotated[Runtime, Depends(get_runtime)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Ctx:
    """The caller's context; 401 with the error envelope when the token is missing or bad."""
    if credentials is None or not credentials.credentials:
        raise Unauthenticated(
            "Authentication required.", detail="Send an API token as 'Authorization: Bearer …'."
        )
    actor = await authenticate(runtime.db, credentials.credentials)
    return Ctx(runtime.db, actor, runtime.bus)


CtxDep = Annotated[Ctx, Depends(get_ctx)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
