"""Mount the web UI on the server's app: pages, static files, icons, headers, errors.

Everything outside ``/api`` is the web UI's. Its answers carry a strict
Content-Security-Policy (scripts and styles only from this server's own files, no
inline script, no framing, forms only to this server) and its errors are pages: an
unknown path is a 404 page, a missing or hidden object too, a bad form a page that
says what to do, an unexpected error a plain 500 page without its traceback. Under
``/api`` nothing changes: the API's own handlers answer with their JSON envelope.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from berth.api.errors import status_of
from berth.clock import SystemClock
from berth.errors import BerthError, NotFound
from berth.services.login_limits import LoginLimiter
from berth.settings import Settings
from berth.web import admin_pages, auth_pages, chat_pages, pages
from berth.web.render import ICON_DIR, STATIC_DIR, page
from berth.web.session import BadForm, LoginRequired, WebState, clear_session_cookie

log = logging.getLogger("berth.web")

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' https: data:",  # template icons may be any https URL
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]

Handler = Callable[[Request, Exception], Awaitable[Response]]


def is_page_path(path: str) -> bool:
    """Whether a path is the web UI's (everything but the API and its MCP endpoints)."""
    return path != "/api" and not path.startswith("/api/")


class SecurityHeaders:
    """ASGI middleware: the CSP and friends on every answer outside ``/api``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_page_path(scope.get("path", "")):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in _HEADERS if k not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def _error_page(status: int, heading: str, message: str, detail: str = "") -> Response:
    return page(
        "error.html.j2", status, title=heading, heading=heading, message=message, detail=detail
    )


def not_found_page() -> Response:
    return _error_page(404, "Not found", "There is nothing here, or it is not yours to see.", "")


async def _page_error(request: Request, exc: Exception) -> Response:
    """The page for an error raised while serving a page."""
    if isinstance(exc, LoginRequired):
        target = "/login?next=" + urllib.parse.quote(exc.next_path, safe="/")
        if exc.reason:
            target += f"&reason={exc.reason}"
        response = RedirectResponse(target, status_code=303)
        clear_session_cookie(request, response)
        return response
    if isinstance(exc, BadForm):
        return _error_page(403, "Form refused", exc.message, exc.detail or "")
    if isinstance(exc, HTTPException):
        if exc.status_code == 404:
            return not_found_page()
        return _error_page(exc.status_code, "Request refused", str(exc.detail))
    if isinstance(exc, NotFound):
        return not_found_page()
    if isinstance(exc, RequestValidationError):
        fields = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors())
        return _error_page(400, "Bad request", "The address has a value berth cannot use.", fields)
    if isinstance(exc, BerthError):
        status = status_of(exc)  # the API's status for the same error
        details = [exc.detail or ""] + [f"{v.field}: {v.detail}" for v in exc.validations]
        return _error_page(
            status, "That did not work", exc.message, " ".join(d for d in details if d)
        )
    log.exception("unhandled error on page %s %s", request.method, request.url.path, exc_info=exc)
    return _error_page(500, "Something went wrong", "berth could not show this page.", "")


def _pages_first(api_handler: Handler) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        if request.scope["type"] == "http" and is_page_path(request.url.path):
            return await _page_error(request, exc)
        return await api_handler(request, exc)

    return handle


def install(app: FastAPI, settings: Settings) -> None:
    """Add the web UI to ``app``; call it after the API's routes and error handlers."""
    app.state.web = WebState(
        limiter=LoginLimiter(SystemClock()),
        secure_cookies=settings.resolved_access_url().startswith("https://"),
    )
    app.include_router(auth_pages.router)
    app.include_router(pages.router)
    app.include_router(chat_pages.router)
    app.include_router(admin_pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount("/icon", StaticFiles(directory=ICON_DIR), name="icons")
    for kind in (HTTPException, BerthError, RequestValidationError, Exception):
        api_handler: Handler | None = app.exception_handlers.get(kind)  # pyright: ignore[reportAssignmentType]
        if api_handler is None:
            raise RuntimeError(f"install the API's error handlers first ({kind.__name__})")
        app.add_exception_handler(kind, _pages_first(api_handler))
    app.add_exception_handler(LoginRequired, _page_error)
    app.add_middleware(SecurityHeaders)
