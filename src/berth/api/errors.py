"""One error envelope, ``{message, detail?, validations?}``, and one mapping to it.

Domain errors map to status codes here and nowhere else. Unexpected exceptions are
logged with their traceback and answered with a plain 500 that shows none of it. A body
that is not JSON at all, or a URL with a NUL character, is a 400; a JSON body of the
wrong shape is a 422 naming the fields. A 405 lists in ``Allow`` every method of the
path, not just one route's.

The OpenAPI document declares the same answers (:func:`document_errors`): each
operation lists the error statuses it can answer with, all with the envelope's schema.
"""

from __future__ import annotations

import logging
import urllib.parse
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from berth.api.schemas import ErrorEnvelope
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
    errors = exc.errors()
    malformed = [err for err in errors if err.get("type") == "json_invalid"]
    if malformed:
        # Not JSON at all: a malformed request (400), not a field that failed a rule.
        validations = tuple(_validation(err) for err in malformed)
        body = envelope("The request body is not valid JSON.", None, validations)
        return JSONResponse(body, status_code=400)
    validations = tuple(_validation(err) for err in errors)
    return JSONResponse(envelope("Invalid request.", None, validations), status_code=422)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(routes: list[BaseRoute], request: Request) -> list[str]:
    """Every method some route serves at the request's path.

    A path's GET and DELETE are two routes, and Starlette's 405 names only the first
    one's methods; asking every route about every method finds them all (routers
    nest, so a route's own ``methods`` would not).
    """
    scope = {**request.scope, "type": "http"}
    return [
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    ]


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    exc = cast(StarletteHTTPException, exc)  # registered for it only
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (methods := allowed_methods(request.app.router.routes, request)):
        headers["Allow"] = ", ".join(methods)
    return JSONResponse(envelope(str(exc.detail)), status_code=exc.status_code, headers=headers)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(envelope("Internal server error."), status_code=500)


class RejectNulURLs:
    """ASGI middleware: a URL whose path or query holds a NUL character is malformed (400).

    No name, id or setting contains one, and PostgreSQL cannot even compare text with
    one; refusing it here keeps it away from every route.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope.get("path", "")
            or b"\x00" in urllib.parse.unquote_to_bytes(scope.get("query_string", b""))
        ):
            body = envelope("Malformed URL.", "The path or query holds a NUL character.")
            await JSONResponse(body, status_code=400)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BerthError, _on_berth_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
    app.add_middleware(RejectNulURLs)


# --- the OpenAPI document ------------------------------------------------------------------

_ENVELOPE_REF = {"$ref": "#/components/schemas/ErrorEnvelope"}

_DESCRIPTIONS = {
    400: "Malformed: the body is not JSON or the URL holds a NUL character; or the"
    " operation could not be carried out",
    401: "No bearer token, or one that is not valid",
    403: "The caller may see this but not change it",
    404: "Not found, or not visible to the caller (the two look the same)",
    409: "The request contradicts the current state (a name taken, a build in progress)",
    422: "Invalid input: ``validations`` names each field and its rule",
    503: "Temporarily unavailable (the database is busy, the agent is unreachable); retry",
}

_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "``Bearer``"}},
    503: {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait"}},
}


def error_statuses(method: str, operation: dict[str, Any]) -> list[int]:
    """The error statuses an operation can answer with, from what it takes.

    Any request can be malformed (400: a NUL in the URL, a body that is not JSON); any
    operation with parameters or a body can fail validation (422). An authenticated
    one can meet a bad token (401), a resource that is missing or hidden (404) and a
    busy database (503); one that changes something can also be refused (403),
    contradict the current state (409) or fail (400).
    """
    statuses: set[int] = {400}
    if operation.get("parameters") or "requestBody" in operation:
        statuses.add(422)
    if operation.get("security"):
        statuses |= {401, 404, 503}
        if method != "get":
            statuses |= {403, 409}
    return sorted(statuses)


def declare_errors(schema: dict[str, Any]) -> None:
    """Add the error responses of every operation to an OpenAPI document, in place."""
    components: dict[str, Any] = schema.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    envelope_schema = ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(envelope_schema.pop("$defs", {}))
    schemas["ErrorEnvelope"] = envelope_schema
    for methods in cast("dict[str, dict[str, Any]]", schema.get("paths", {})).values():
        for method, operation in methods.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            statuses = set(error_statuses(method, operation))
            if "422" in responses:
                statuses.add(422)
            for status in sorted(statuses):
                response: dict[str, Any] = {
                    "description": _DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": _ENVELOPE_REF}},
                }
                if status in _HEADERS:
                    response["headers"] = _HEADERS[status]
                responses[str(status)] = response  # FastAPI's own 422 is not our body
    # FastAPI's validation-error bodies are never sent: drop them.
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def document_errors(app: FastAPI) -> None:
    """Make the app's OpenAPI document declare the error responses (built once)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()  # FastAPI keeps it as app.openapi_schema
        declare_errors(schema)
        return schema

    app.openapi = openapi
