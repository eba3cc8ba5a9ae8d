"""The logged-in user of a page: the session cookie, CSRF checks and redirects to login.

The session cookie holds the session's random id (:mod:`berth.services.web_auth`) and
is ``HttpOnly`` (no script reads it), ``SameSite=Lax`` (other sites' forms and fetches
do not carry it) and ``Secure`` when the access URL is ``https``. Every form carries a
CSRF token besides: the session's own (an HMAC under its id), or, on the login page
where there is no session yet, a random one doubled in a cookie (so another site
cannot log a browser in as someone else).
"""

from __future__ import annotations

import secrets
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from starlette.requests import Request
from starlette.responses import Response

from berth.errors import BerthError, Unauthenticated
from berth.records import User
from berth.services import Ctx, web_auth
from berth.services.login_limits import LoginLimiter
from berth.services.runtime import Runtime

SESSION_COOKIE = "berth_session"
LOGIN_CSRF_COOKIE = "berth_login_csrf"
CSRF_FIELD = "csrf"
Fields = dict[str, list[str]]
"""A posted form: each field's values, in order."""


@dataclass
class WebState:
    """What the pages keep for the server's lifetime (``app.state.web``)."""

    limiter: LoginLimiter
    secure_cookies: bool


@dataclass(frozen=True, slots=True)
class PageSession:
    """The user a page acts for: a service context as them, their record, their CSRF."""

    ctx: Ctx
    user: User
    csrf: str
    secret: str

    @property
    def is_site_owner(self) -> bool:
        return self.ctx.actor.is_site_owner


class LoginRequired(BerthError):
    """No valid session: the page redirects to ``/login`` and comes back after."""

    def __init__(self, next_path: str, reason: str = "") -> None:
        super().__init__("Log in to continue.")
        self.next_path = next_path
        self.reason = reason


class BadForm(BerthError):
    """A form without the right CSRF token: shown as a 403 page that says what to do."""

    def __init__(self) -> None:
        super().__init__(
            "This form has expired or did not come from this page.",
            detail="Go back, reload the page and send it again.",
        )


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


def here(request: Request) -> str:
    """The request's path and query, to come back to after logging in."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def safe_next(value: str | None) -> str:
    """A local path to go to after login; anything else (another site) is ``/workspaces``."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/workspaces"
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme or parsed.netloc or any(c in value for c in "\r\n\x00"):
        return "/workspaces"
    return value


async def _page_session(request: Request) -> PageSession:
    secret = request.cookies.get(SESSION_COOKIE, "")
    if not secret:
        raise LoginRequired(here(request))
    runtime = runtime_of(request)
    try:
        session = await web_auth.session_for(runtime.db, secret)
    except Unauthenticated as exc:
        reason = "expired" if "expired" in exc.message else "ended"
        raise LoginRequired(here(request), reason) from exc
    return PageSession(runtime.ctx(session.actor), session.user, session.csrf, secret)


SessionDep = Annotated[PageSession, Depends(_page_session)]
"""The page's session; without a valid one the page redirects to ``/login``."""


async def optional_session(request: Request) -> PageSession | None:
    """The session when there is a valid one (the login page, error pages)."""
    try:
        return await _page_session(request)
    except LoginRequired:
        return None


MAX_FORM_FIELDS = 1000
"""A posted form's field limit: a multi-select or the allowlist's checkboxes post one
field per choice."""


async def read_fields(request: Request, *, max_fields: int = MAX_FORM_FIELDS) -> Fields:
    """A posted form's text fields, every value of each; a file in it, or more than
    ``max_fields`` fields, is a 400 page."""
    fields: Fields = {}
    async with request.form(max_files=0, max_fields=max_fields) as form:
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields.setdefault(key, []).append(value)
    return fields


async def read_form(request: Request, *, max_fields: int = 50) -> dict[str, str]:
    """A posted form's text fields, one value each (the last, as a form sent twice)."""
    return {k: v[-1] for k, v in (await read_fields(request, max_fields=max_fields)).items()}


def field_value(fields: Fields, name: str) -> str:
    """One value of a field (the last), ``""`` when the form has none."""
    return (fields.get(name) or [""])[-1]


def check_csrf(expected: str, form: Mapping[str, str]) -> None:
    """Refuse a form whose CSRF field is not ``expected`` (:class:`BadForm`)."""
    given = form.get(CSRF_FIELD)
    if not isinstance(given, str) or not web_auth.csrf_matches(expected, given):
        raise BadForm


def login_csrf(request: Request) -> str:
    """The login page's CSRF token: the cookie's, or a new one (set by the caller)."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)


def set_login_csrf(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="lax",
        secure=web_state(request).secure_cookies,
        path="/login",
    )


def set_session_cookie(request: Request, response: Response, secret: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(web_auth.SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=web_state(request).secure_cookies,
        path="/",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=web_state(request).secure_cookies,
    )
