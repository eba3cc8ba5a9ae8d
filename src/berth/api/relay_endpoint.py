"""The relay endpoint: agent RPCs that other replicas pass to the agents held here.

Only other replicas may call it: a request must carry the mesh signature
(:mod:`berth.agentconn.signing`). Anything else — no signature, a forged or replayed
one, another method — gets exactly the 404 of a path that does not exist, so the
endpoint cannot even be found without the secret. The signature's cheap checks run
before the body is read, and the body is read up to the relay's limit only.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from berth.agentconn import RELAY_HEADER, RELAY_PATH, answer_relayed
from berth.agentconn.relay import MAX_BODY_BYTES
from berth.services.runtime import Runtime

_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def _relay(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    header = request.headers.get(RELAY_HEADER)
    if request.method != "POST" or not runtime.relay_verifier.plausible(header):
        raise HTTPException(404)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(404)
    if not runtime.relay_verifier.verify(header, bytes(body)):
        raise HTTPException(404)
    answer = await answer_relayed(runtime.gateway, bytes(body))
    if answer is None:
        raise HTTPException(400, "Not a relayed agent call.")
    return Response(json.dumps(answer, separators=(",", ":")), media_type="application/json")


relay_route = Route(RELAY_PATH, endpoint=_relay, methods=_ANY_METHOD)
