"""The agent side of the API: the agent's WebSocket and the agent zipapp download.

Agent tokens are accepted here and nowhere else; user tokens are refused here.
"""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse

from berth.agent.protocol import CONNECT_PATH, ZIPAPP_PATH
from berth.api.deps import RuntimeDep, get_runtime

router = APIRouter(tags=["agents"])

_PREFIX = "/api/v1"


@router.get(ZIPAPP_PATH.removeprefix(_PREFIX), response_class=FileResponse)
async def agent_zipapp(runtime: RuntimeDep) -> FileResponse:
    """The agent, as one file: ``python3 berth-agent.pyz --url URL --token TOKEN``."""
    return FileResponse(
        runtime.agent_zipapp,
        media_type="application/zip",
        filename="berth-agent.pyz",
    )


@router.websocket(CONNECT_PATH.removeprefix(_PREFIX))
async def agent_connect(websocket: WebSocket) -> None:
    runtime = get_runtime(websocket)
    header = websocket.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    agent = None
    if scheme.lower() == "bearer" and token:
        agent = await runtime.gateway.authenticate(token.strip())
    if agent is None:
        await websocket.close(code=4401, reason="invalid agent token")
        return
    await websocket.accept()
    with contextlib.suppress(WebSocketDisconnect):
        await runtime.gateway.serve(agent, websocket)
