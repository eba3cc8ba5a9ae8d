"""The client's transport: the connection pool, requests with their retries, and reading
answers into models. The resource parts (``_accounts``, ``_templates``, …) build on
:class:`ClientCore`; :class:`berth.client.Client` composes them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from importlib import metadata
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

__all__ = [
    "API_PREFIX",
    "ClientCore",
    "connection_failed",
    "given",
    "normalize_url",
    "org_params",
    "segment",
    "unreadable",
    "validate",
]

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


def segment(value: str) -> str:
    """One URL path segment: names and ids are quoted, so ``a/b`` cannot change the route."""
    if not value.strip():
        raise InvalidArgument("a name or id must not be empty")
    return quote(value, safe="")


def given(**fields: object) -> dict[str, Any]:
    """The fields of a request body that were given (not None), in order."""
    return {name: value for name, value in fields.items() if value is not None}


def org_params(organization: str | None) -> dict[str, str] | None:
    return None if organization is None else {"organization": organization}


def _user_agent() -> str:
    try:
        version = metadata.version("berth")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"berth-client/{version}"


class ClientCore:
    """The connection to one server as one user; what every resource part builds on."""

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

    def _get(self, model: type[_M], path: str, params: dict[str, str] | None = None) -> _M:
        return self._parse(model, self._request("GET", path, params=params))

    def _get_list(
        self, model: type[_M], path: str, params: dict[str, str] | None = None
    ) -> list[_M]:
        response = self._request("GET", path, params=params)
        data = _json(response)
        if not isinstance(data, list):
            raise unreadable(response, "expected a list")
        items = cast("list[object]", data)
        return [validate(model, item, response) for item in items]

    def _parse(self, model: type[_M], response: httpx.Response) -> _M:
        return validate(model, _json(response), response)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: object = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        attempt = 0
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        while True:
            try:
                response = self._http.request(method, path, params=params, json=json, **extra)
            except httpx.TransportError as exc:
                raise connection_failed(self.url, exc) from None
            if response.is_success:
                return response
            error = ApiError.from_response(response)
            if error.retryable and method in _IDEMPOTENT and attempt < self.retries:
                attempt += 1
                wait = error.retry_after if error.retry_after is not None else 2.0**attempt
                self._sleep(min(wait, self.max_retry_wait))
                continue
            raise error


def connection_failed(url: str, exc: httpx.TransportError) -> ConnectionFailed:
    """No answer from ``url``: a timeout says so, anything else says why."""
    timed_out = isinstance(exc, httpx.TimeoutException)
    return ConnectionFailed(url, _reason(exc), timed_out=timed_out)


def _json(response: httpx.Response) -> object:
    try:
        return cast("object", response.json())
    except (json.JSONDecodeError, UnicodeDecodeError):
        kind = response.headers.get("content-type", "no content type")
        raise InvalidResponse(
            f"{_what(response)} answered {response.status_code} with {kind}, not JSON:"
            " is this URL a berth server?"
        ) from None


def validate(model: type[_M], data: object, response: httpx.Response) -> _M:
    """``data`` from ``response`` as ``model``, or :class:`InvalidResponse` saying why not."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(object)'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise unreadable(response, problems) from None


def unreadable(response: httpx.Response, problems: str) -> InvalidResponse:
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
