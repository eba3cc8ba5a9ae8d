"""``/``, ``/login`` and ``/logout`` (DESIGN §11: the login page's two forms and their
inputs ``username`` + ``password`` and ``token`` are a contract).

Both login forms post to ``/login``; a form with a ``token`` field is a token login.
Failures count against the username and the client's address
(:class:`~berth.services.login_limits.LoginLimiter`); over the limit, the attempt is
refused before any password is checked. Logging out is a POST with the session's CSRF
token: ``GET /logout`` only asks, because a plain link or image (a README may hold one)
must not be able to end a session.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from berth.errors import Unauthenticated
from berth.services import web_auth
from berth.web.render import page
from berth.web.session import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    PageSession,
    check_csrf,
    clear_session_cookie,
    login_csrf,
    optional_session,
    read_form,
    runtime_of,
    safe_next,
    set_login_csrf,
    set_session_cookie,
    web_state,
)

router = APIRouter(include_in_schema=False)

OptionalSession = Annotated[PageSession | None, Depends(optional_session)]

_REASONS = {
    "expired": "Your session expired. Log in again.",
    "ended": "Your session has ended. Log in again.",
    "logged-out": "You are logged out.",
}
"""Why the login page is shown, by the ``reason`` query: fixed texts, so a link cannot
put words of its own on the page."""


def _see(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


@router.get("/")
async def home() -> Response:
    return _see("/workspaces")


def _login_page(
    request: Request,
    *,
    next_path: str,
    status: int = 200,
    error: str = "",
    username: str = "",
    notice: str = "",
) -> Response:
    token = login_csrf(request)
    response = page(
        "login.html.j2",
        status,
        title="Log in",
        csrf=token,
        csrf_field=CSRF_FIELD,
        next_path=next_path,
        error=error,
        notice=notice,
        username=username,
    )
    set_login_csrf(request, response, token)
    return response


@router.get("/login")
async def login_form(request: Request, session: OptionalSession) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    if session is not None:
        return _see(next_path)
    notice = _REASONS.get(request.query_params.get("reason", ""), "")
    return _login_page(request, next_path=next_path, notice=notice)


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    next_path = safe_next(form.get("next", ""))
    username = form.get("username", "").strip()
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not web_auth.csrf_matches(expected, form.get(CSRF_FIELD, "")):
        return _login_page(
            request,
            next_path=next_path,
            status=403,
            username=username,
            error="The login form expired. Log in again.",
        )
    limiter = web_state(request).limiter
    address = _address(request)
    with_token = "token" in form
    name = None if with_token else username
    if wait := limiter.retry_after(name, address):
        return _login_page(
            request,
            next_path=next_path,
            status=429,
            username=username,
            error=f"Too many failed logins. Try again in {wait} seconds.",
        )
    db = runtime_of(request).db
    try:
        if with_token:
            made = await web_auth.login_with_token(db, form.get("token", "").strip())
        else:
            made = await web_auth.login_with_password(db, username, form.get("password", ""))
    except Unauthenticated as exc:
        limiter.failed(name, address)
        error = exc.message if not with_token else "That API token is not valid."
        return _login_page(request, next_path=next_path, status=401, username=username, error=error)
    if name:
        limiter.succeeded(name)
    response = _see(next_path)
    set_session_cookie(request, response, made.secret)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.get("/logout")
async def logout_form(session: OptionalSession) -> Response:
    if session is None:
        return _see("/login")
    return page("logout.html.j2", title="Log out", session=session, csrf_field=CSRF_FIELD)


@router.post("/logout")
async def logout(request: Request, session: OptionalSession) -> Response:
    response = _see("/login?reason=logged-out")
    if session is not None:
        check_csrf(session.csrf, await read_form(request))
        await web_auth.logout(runtime_of(request).db, session.secret)
    clear_session_cookie(request, response)
    return response
