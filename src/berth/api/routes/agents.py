"""The agent side of the API: the agent's WebSocket and the agent zipapp download.

Agent tokens are accepted here and nowhere else; user tokens are refused here. The
connection's session lives in the gateway; what it reports is recorded by
:class:`berth.services.agents.AgentReports`.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from starlette.websockets import WebSocketDisconnected

from berth.agent.build import zipapp_digest
from berth.agent.protocol import CONNECT_PATH, ZIPAPP_PATH
from berth.api.deps import RuntimeDep, get_runtime
from berth.domain.actors import as_agent_gateway
from berth.services import agents

router = APIRouter(tags=["agents"])

_PREFIX = "/api/v1"


@router.get(ZIPAPP_PATH.removeprefix(_PREFIX), response_class=FileResponse)
async def agent_zipapp(runtime: RuntimeDep, request: Request) -> Response:
    """The agent, as one file: ``python3 berth-agent.pyz --url URL --token TOKEN``.

    The file is content-addressed, so its hash is a strong ETag: a client that has it
    sends ``If-None-Match`` and gets a 304. ``no-cache`` (keep it, but revalidate),
    not ``immutable``: this URL stays the same when an upgraded server serves a new
    agent.
    """
    path = runtime.agent_zipapp
    etag = f'"{await asyncio.to_thread(zipapp_digest, path)}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    wanted = [
        tag.strip().removeprefix("W/")
        for tag in request.headers.get("if-none-match", "").split(",")
    ]
    if etag in wanted or wanted == ["*"]:
        return Response(status_code=304, headers=headers)
    return FileResponse(
        path, media_type="application/zip", filename="berth-agent.pyz", headers=headers
    )


@router.websocket(CONNECT_PATH.removeprefix(_PREFIX))
async def agent_connect(websocket: WebSocket) -> None:
    runtime = get_runtime(websocket)
    header = websocket.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    ctx = runtime.ctx(as_agent_gateway())
    agent = None
    if scheme.lower() == "bearer" and token:
        agent = await agents.authenticate(ctx, token.strip())
    if agent is None:
        await websocket.close(code=4401, reason="invalid agent token")
        return
    await websocket.accept()
    reports = agents.AgentReports(ctx, agent.id, runtime.gateway.replica_id)
    # The agent went: while reading (WebSocketDisconnect), or after a send found it gone
    # and the socket was closed under the read (WebSocketDisconnected).
    with contextlib.suppress(WebSocketDisconnect, WebSocketDisconnected):
        await runtime.gateway.serve(agent.id, websocket, reports)
