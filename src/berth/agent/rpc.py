"""RPC dispatch: one request in, one ``response`` frame out, whatever happens.

Each request runs in its own thread (see :func:`serve_request`) so a ten-minute
``exec`` never delays a ``ping``, and the heavy ones — an ``edit_files`` over 32 MiB
files, a ``read_file`` counting the lines of a huge log — never hold up the
connection's reader, which only reads frames and hands requests here. Whatever a
handler raises becomes an error response: :class:`RpcError` keeps its code, an
unexpected exception is ``internal`` (and is logged with its traceback, because it is
a bug in the agent), so a bad request can never take the agent down. A result that
cannot be sent as a frame (text that is not UTF-8, say) is answered with an
``internal`` error instead of no answer at all.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, cast

from . import commands, files, reads
from .context import AgentContext
from .params import Params, Result, RpcError

log = logging.getLogger("berth.agent")

Handler = Callable[[AgentContext, Params], Result]


def ping(ctx: AgentContext, params: Params) -> Result:
    """``ping``: proves the agent is alive and its request loop is not stuck."""
    del ctx, params
    return {}


def edit_files(ctx: AgentContext, params: Params) -> Result:
    """``edit_files``, imported on its first call: its diffing and matching are a fifth
    of the agent's imports, and every workspace start would pay for them."""
    from . import edits

    return edits.edit_files(ctx, params)


HANDLERS: dict[str, Handler] = {
    "ping": ping,
    "exec": commands.exec_command,
    "process_output": commands.process_output,
    "process_list": commands.process_list,
    "process_signal": commands.process_signal,
    "read_file": reads.read_file,
    "write_file": files.write_file,
    "edit_files": edit_files,
    "stat": files.stat_path,
}


def handle(ctx: AgentContext, method: object, params: object) -> Result:
    """Run one RPC; returns its result or raises :class:`RpcError`."""
    if not isinstance(method, str) or method not in HANDLERS:
        raise RpcError("unknown_method", f"unknown method: {method!r}")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise RpcError("invalid_params", "params must be an object")
    return HANDLERS[method](ctx, cast(Params, params))


def respond(ctx: AgentContext, request: dict[str, Any]) -> dict[str, Any]:
    """The ``response`` frame for a ``request`` frame."""
    frame: dict[str, Any] = {"type": "response", "id": request.get("id")}
    try:
        frame["result"] = handle(ctx, request.get("method"), request.get("params"))
    except RpcError as err:
        frame["error"] = {"message": err.message, "code": err.code}
    except Exception as err:
        log.exception("request %r (%s) failed", request.get("id"), request.get("method"))
        frame["error"] = {"message": f"internal error: {err}", "code": "internal"}
    return frame


def serve_request(
    ctx: AgentContext, request: dict[str, Any], send: Callable[[dict[str, Any]], object]
) -> threading.Thread:
    """Answer ``request`` on a new daemon thread, handing the response to ``send``."""

    def run() -> None:
        frame = respond(ctx, request)
        try:
            send(frame)
        except (ValueError, TypeError) as err:  # not JSON, or not UTF-8
            log.exception("request %r (%s): the response cannot be sent", frame["id"], name)
            message = f"internal error: the response cannot be sent: {err}"
            error = {"message": message, "code": "internal"}
            send({"type": "response", "id": frame["id"], "error": error})

    name = f"rpc-{request.get('method')}-{request.get('id')}"
    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
