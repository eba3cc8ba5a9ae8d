"""One error envelope, ``{message, detail?, validations?}``, and one mapping to it.

Domain errors map to status codes here and nowhere else. Unexpected exceptions are
logged with their traceback and answered with a plain 500 that shows none of it.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from berth.errors import (
    BerthError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
    Unavailable,
    Validation,
)

log = logging.getLogger("berth.api")

_STATUS: list[tuple[type[BerthError], int]] = [
    (NotFound, 404),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (Conflict, 409),
    (InvalidInput, 422),
    (Unavailable, 503),
]


def envelope(
    message: str, detail: str | None = None, validations: tuple[Validation, ...] = ()
) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message}
    if detail:
        body["detail"] = detail
    if validations:
        body["validations"] = [{"field": v.field, "detail": v.detail} for v in validations]
    return body


def status_of(exc: BerthError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def error_response(exc: BerthError) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(exc, Unavailable):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(
        envelope(exc.message, exc.detail, exc.validations),
        status_code=status_of(exc),
        headers=headers,
    )


def _field(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or "body"


async def _on_berth_error(_: Request, exc: Exception) -> JSONResponse:
    return error_response(cast(BerthError, exc))  # registered for BerthError only


def _validation(err: dict[str, Any]) -> Validation:
    if err.get("type") == "json_invalid":
        # The location of a JSON syntax error is a character offset, not a field.
        reason = err.get("ctx", {}).get("error", "")
        return Validation("body", f"invalid JSON: {reason}" if reason else "invalid JSON")
    return Validation(_field(tuple(err.get("loc", ()))), str(err.get("msg", "invalid")))


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    exc = cast(RequestValidationError, exc)  # registered for it only
    validations = tuple(_validation(err) for err in exc.errors())
    return JSONResponse(envelope("Invalid request.", None, validations), status_code=422)


async def _on_http_error(_: Request, exc: Exception) -> JSONResponse:
    exc = cast(StarletteHTTPException, exc)  # registered for it only
    return JSONResponse(envelope(str(exc.detail)), status_code=exc.status_code, headers=exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(envelope("Internal server error."), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BerthError, _on_berth_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
