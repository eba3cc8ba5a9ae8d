"""The typed, synchronous client for berth's HTTP API (``/api/v1``).

One :class:`Client` per server and token; it holds an :class:`httpx.Client` (a
connection pool), so use it as a context manager or call :meth:`Client.close`.

Errors: a 4xx/5xx answer raises :class:`~berth.client.errors.ApiError` with the
server's envelope; no answer raises :class:`~berth.client.errors.ConnectionFailed`.
A 503 (the server's "retry later") is retried for idempotent requests (GET, PUT,
DELETE), at most ``retries`` times, waiting what ``Retry-After`` asks for (capped at
``max_retry_wait`` seconds); a POST is never repeated, because it may have happened.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar, cast
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from berth.client.errors import (
    ApiError,
    ConnectionFailed,
    InvalidArgument,
    InvalidResponse,
    InvalidURL,
)
from berth.client.files import read_template_folder
from berth.client.models import (
    ConfigValue,
    Health,
    NewToken,
    Organization,
    PushResult,
    Template,
    TemplateDetail,
    Token,
    User,
    Version,
)

__all__ = ["API_PREFIX", "Client", "normalize_url"]

API_PREFIX = "/api/v1"
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
_M = TypeVar("_M", bound=BaseModel)


def normalize_url(url: str) -> str:
    """The server's base URL in one spelling: ``scheme://host[:port][/prefix]``.

    Trailing slashes and a trailing ``/api/v1`` are dropped, so the URL printed by
    ``berth server``, the API base and a browser's copy of either all work.
    """
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidURL(f"invalid server URL {url!r}: expected http://HOST:PORT or https://HOST")
    if parts.query or parts.fragment:
        raise InvalidURL(f"invalid server URL {url!r}: a server URL has no query or fragment")
    path = parts.path.rstrip("/")
    if path.endswith(API_PREFIX):
        path = path[: -len(API_PREFIX)]
    return f"{parts.scheme}://{parts.netloc}{path}"


def _segment(value: str) -> str:
    """One URL path segment: names and ids are quoted, so ``a/b`` cannot change the route."""
    if not value.strip():
        raise InvalidArgument("a name or id must not be empty")
    return quote(value, safe="")


def _go_duration(value: str | dt.timedelta) -> str:
    if isinstance(value, str):
        return value
    seconds = value.total_seconds()
    return f"{int(seconds)}s" if seconds.is_integer() else f"{seconds}s"


def _user_agent() -> str:
    try:
        version = metadata.version("berth")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"berth-client/{version}"


class Client:
    """A berth server at ``url`` (``http://HOST:PORT``), as the user whose ``token`` it is.

    ``transport`` replaces httpx's network transport (for example
    :class:`httpx.MockTransport`, or an ASGI/WSGI transport in tests).
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        retries: int = 2,
        max_retry_wait: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = normalize_url(url)
        self.retries = max(retries, 0)
        self.max_retry_wait = max_retry_wait
        self._sleep = sleep
        headers = {"Accept": "application/json", "User-Agent": _user_agent()}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.url + API_PREFIX,
            headers=headers,
            timeout=timeout,
            transport=transport,
        )

    def __repr__(self) -> str:  # never shows the token
        return f"Client({self.url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool; the client cannot be used afterwards."""
        self._http.close()

    # --- server -------------------------------------------------------------

    def health(self) -> Health:
        """``GET /health``: the server is up (needs no token)."""
        return self._get(Health, "/health")

    # --- users and tokens ---------------------------------------------------

    def me(self) -> User:
        """The user the token belongs to."""
        return self._get(User, "/users/me")

    def list_users(self) -> list[User]:
        return self._get_list(User, "/users")

    def create_user(
        self,
        username: str,
        *,
        email: str | None = None,
        name: str | None = None,
        roles: Sequence[str] | None = None,
        organization: str | None = None,
    ) -> User:
        """Create a user; ``roles`` from ``owner``, ``template-admin``, ``member``;
        ``organization`` is a name or id (the default organization when omitted)."""
        body: dict[str, Any] = {"username": username}
        if email is not None:
            body["email"] = email
        if name is not None:
            body["name"] = name
        if roles is not None:
            body["roles"] = list(roles)
        if organization is not None:
            body["organization"] = organization
        return self._parse(User, self._request("POST", "/users", json=body))

    def list_tokens(self, user: str = "me") -> list[Token]:
        """A user's tokens (``me``, a username or an id); secrets are never listed."""
        return self._get_list(Token, f"/users/{_segment(user)}/tokens")

    def create_token(
        self, name: str, lifetime: str | dt.timedelta | None = None, user: str = "me"
    ) -> NewToken:
        """A new token; ``lifetime`` is a Go duration (``"720h"``) or a timedelta, and
        None means it never expires. The secret is in ``.token``, and only here."""
        body: dict[str, Any] = {"name": name}
        if lifetime is not None:
            body["lifetime"] = _go_duration(lifetime)
        response = self._request("POST", f"/users/{_segment(user)}/tokens", json=body)
        return self._parse(NewToken, response)

    def delete_token(self, token: str, user: str = "me") -> None:
        """Revoke a token by id or name."""
        self._request("DELETE", f"/users/{_segment(user)}/tokens/{_segment(token)}")

    # --- organizations ------------------------------------------------------

    def list_organizations(self) -> list[Organization]:
        return self._get_list(Organization, "/organizations")

    # --- templates ----------------------------------------------------------

    def list_templates(self, organization: str | None = None) -> list[Template]:
        """Templates in ``organization`` (name or id), or in every organization visible."""
        return self._get_list(Template, "/templates", params=_org(organization))

    def push_template(
        self,
        template: str | os.PathLike[str] | Mapping[str, str],
        organization: str | None = None,
    ) -> PushResult:
        """Push a template folder (or its files: ``{"template.yaml": …, "README.md": …}``).

        The first push creates the template; every push creates a version and makes it
        active. An invalid document raises :class:`ApiError` (422) whose validations
        name the file's fields.
        """
        if isinstance(template, Mapping):
            files = dict(template)
        else:
            files = read_template_folder(Path(template))
        body: dict[str, Any] = {"files": files}
        if organization is not None:
            body["organization"] = organization
        return self._parse(PushResult, self._request("POST", "/templates", json=body))

    def get_template(self, template: str, organization: str | None = None) -> TemplateDetail:
        """A template by id or name (names are looked up in ``organization`` or the default
        organization), with its active version, parameters and presets."""
        path = f"/templates/{_segment(template)}"
        return self._get(TemplateDetail, path, params=_org(organization))

    def delete_template(self, template: str, organization: str | None = None) -> None:
        path = f"/templates/{_segment(template)}"
        self._request("DELETE", path, params=_org(organization))

    def list_template_versions(
        self, template: str, organization: str | None = None
    ) -> list[Version]:
        path = f"/templates/{_segment(template)}/versions"
        return self._get_list(Version, path, params=_org(organization))

    # --- site configuration -------------------------------------------------

    def get_config(self, key: str) -> ConfigValue:
        """A site setting: ``chat-workspace-ttl`` or ``chat-template-allowlist``."""
        return self._get(ConfigValue, f"/config/{_segment(key)}")

    def set_config(self, key: str, value: str) -> ConfigValue:
        """Set a site setting; the answer holds the value as stored (canonical form)."""
        response = self._request("PUT", f"/config/{_segment(key)}", json={"value": value})
        return self._parse(ConfigValue, response)

    # --- plumbing -----------------------------------------------------------

    def _get(self, model: type[_M], path: str, params: dict[str, str] | None = None) -> _M:
        return self._parse(model, self._request("GET", path, params=params))

    def _get_list(
        self, model: type[_M], path: str, params: dict[str, str] | None = None
    ) -> list[_M]:
        response = self._request("GET", path, params=params)
        data = _json(response)
        if not isinstance(data, list):
            raise _unreadable(response, "expected a list")
        items = cast("list[object]", data)
        return [_validate(model, item, response) for item in items]

    def _parse(self, model: type[_M], response: httpx.Response) -> _M:
        return _validate(model, _json(response), response)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: object = None,
    ) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, params=params, json=json)
            except httpx.TimeoutException as exc:
                raise ConnectionFailed(self.url, _reason(exc), timed_out=True) from None
            except httpx.TransportError as exc:
                raise ConnectionFailed(self.url, _reason(exc)) from None
            if response.is_success:
                return response
            error = ApiError.from_response(response)
            if error.retryable and method in _IDEMPOTENT and attempt < self.retries:
                attempt += 1
                wait = error.retry_after if error.retry_after is not None else 2.0**attempt
                self._sleep(min(wait, self.max_retry_wait))
                continue
            raise error


def _org(organization: str | None) -> dict[str, str] | None:
    return None if organization is None else {"organization": organization}


def _json(response: httpx.Response) -> object:
    try:
        return cast("object", response.json())
    except (json.JSONDecodeError, UnicodeDecodeError):
        kind = response.headers.get("content-type", "no content type")
        raise InvalidResponse(
            f"{_what(response)} answered {response.status_code} with {kind}, not JSON:"
            " is this URL a berth server?"
        ) from None


def _validate(model: type[_M], data: object, response: httpx.Response) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(object)'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise _unreadable(response, problems) from None


def _unreadable(response: httpx.Response, problems: str) -> InvalidResponse:
    return InvalidResponse(
        f"{_what(response)} answered with something this client cannot read ({problems}):"
        " is the client older than the server, or the URL not a berth server?"
    )


def _what(response: httpx.Response) -> str:
    request = response.request
    return f"{request.method} {request.url.copy_with(query=None)}"


def _reason(exc: httpx.TransportError) -> str:
    """A short cause without httpx's nesting: ``[Errno 111] Connection refused``."""
    cause: BaseException = exc
    while cause.__context__ is not None and not str(cause):
        cause = cause.__context__
    return str(cause) or type(exc).__name__
