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
import re
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar, cast
from urllib.parse import quote, urlsplit

import httpx
import httpx_sse
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
    AgentToken,
    Build,
    Chat,
    ConfigValue,
    ExecResult,
    Health,
    Job,
    LogEntry,
    NewToken,
    Organization,
    PushResult,
    Template,
    TemplateDetail,
    Token,
    User,
    Version,
    WatchEvent,
    Workspace,
)

__all__ = ["API_PREFIX", "Client", "normalize_url", "parse_duration"]

API_PREFIX = "/api/v1"
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
# What an exec's HTTP request waits beyond the command's own timeout.
EXEC_MARGIN_SECONDS = 30.0
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
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


def parse_duration(text: str) -> dt.timedelta:
    """A Go duration (``"8h"``, ``"1h30m"``, ``"90s"``, ``"0"``) as a timedelta.

    Raises :class:`InvalidArgument` with a message for a person when ``text`` is not one.
    """
    value = text.strip()
    body = value[1:] if value[:1] in ("+", "-") else value
    if body == "0":
        return dt.timedelta(0)
    seconds, position = 0.0, 0
    while body and position < len(body):
        match = _GO_PART.match(body, position)
        if match is None:
            break
        seconds += float(match[1]) * _GO_UNITS[match[2]]
        position = match.end()
    if not body or position < len(body):
        raise InvalidArgument(
            f"invalid duration {text!r}: use a number and a unit, such as 30s, 15m, 8h or 1h30m"
        )
    return dt.timedelta(seconds=-seconds if value.startswith("-") else seconds)


def _seconds(value: str | dt.timedelta) -> float | None:
    """A duration in seconds; None if unreadable (the server then says what is wrong)."""
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    try:
        return parse_duration(value).total_seconds()
    except InvalidArgument:
        return None


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

    # --- workspaces ---------------------------------------------------------

    def create_workspace(
        self,
        name: str,
        template: str,
        *,
        parameters: Mapping[str, str] | None = None,
        preset_id: str | None = None,
        ttl: str | dt.timedelta | None = None,
        organization: str | None = None,
        owner: str | None = None,
    ) -> Workspace:
        """Create a workspace from ``template`` (name or id) and start its first build.

        Returns at once, while the build runs (``status`` ``pending``/``starting``);
        follow it with :meth:`watch_workspace`. ``ttl`` is a Go duration (``"8h"``, ``"0"``
        for never) or a timedelta; omitted, the template's default applies. ``owner`` is
        ``me`` (the default), a username or an id.
        """
        body: dict[str, Any] = {"name": name, "template": template}
        if parameters:
            body["parameters"] = dict(parameters)
        if preset_id is not None:
            body["preset_id"] = preset_id
        if ttl is not None:
            body["ttl"] = _go_duration(ttl)
        if organization is not None:
            body["organization"] = organization
        if owner is not None:
            body["owner"] = owner
        return self._parse(Workspace, self._request("POST", "/workspaces", json=body))

    def list_workspaces(self, all_users: bool = False) -> list[Workspace]:
        """Your workspaces, or with ``all_users`` every workspace you may see."""
        params = {"all": "true"} if all_users else None
        return self._get_list(Workspace, "/workspaces", params=params)

    def get_workspace(self, workspace: str) -> Workspace:
        """A workspace by id or name (yours)."""
        return self._get(Workspace, f"/workspaces/{_segment(workspace)}")

    def start_workspace(self, workspace: str) -> Build:
        """Start a workspace: a new ``start`` build (or, if it is running, the latest)."""
        return self._build(workspace, "start")

    def stop_workspace(self, workspace: str) -> Build:
        """Stop a workspace (its home is kept): a new ``stop`` build (or the latest if
        it is stopped already)."""
        return self._build(workspace, "stop")

    def delete_workspace(self, workspace: str) -> Build:
        """Delete a workspace and its home: the ``delete`` build that does it."""
        response = self._request("DELETE", f"/workspaces/{_segment(workspace)}")
        return self._parse(Build, response)

    def cancel_build(self, workspace: str) -> Job:
        """Cancel the build in progress; its job is ``canceled``, or ``canceling`` while
        the provisioner stops."""
        response = self._request("POST", f"/workspaces/{_segment(workspace)}/cancel")
        return self._parse(Job, response)

    def external_agent_token(self, workspace: str, agent: str) -> AgentToken:
        """A new token for an external agent of the workspace (the old one stops working)."""
        path = f"/workspaces/{_segment(workspace)}/agents/{_segment(agent)}/token"
        return self._parse(AgentToken, self._request("POST", path))

    def set_workspace_ttl(self, workspace: str, ttl: str | dt.timedelta | None) -> Workspace:
        """Set the autostop TTL (a Go duration or a timedelta); None or ``"0"``: never."""
        body = {"ttl": "0" if ttl is None else _go_duration(ttl)}
        response = self._request("PUT", f"/workspaces/{_segment(workspace)}/ttl", json=body)
        return self._parse(Workspace, response)

    def workspace_logs(self, workspace: str, after: int = 0) -> list[LogEntry]:
        """The latest build's log lines with an id above ``after``."""
        path = f"/workspaces/{_segment(workspace)}/logs"
        return self._get_list(LogEntry, path, params={"after": str(after)})

    def watch_workspace(self, workspace: str, after: int = 0) -> Generator[WatchEvent]:
        """Follow the latest build: its log lines (above ``after``) and the workspace
        each time it changes, until the build is done and its agents have started (or
        failed to). The first ``workspace`` event comes at once, then one at least every
        few seconds. Close the iterator (or leave the loop) to stop early.
        """
        path = f"/workspaces/{_segment(workspace)}/watch"
        opened = False
        try:
            # Connection: close: a stream the server broke off must not go back to the pool.
            with httpx_sse.connect_sse(
                self._http,
                "GET",
                path,
                params={"after": str(after)},
                headers={"Connection": "close"},
            ) as source:
                response = source.response
                if not response.is_success:
                    response.read()
                    raise ApiError.from_response(response)
                for sse in source.iter_sse():
                    event = _watch_event(sse, response)
                    if event is not None:
                        opened = opened or event.workspace is not None
                        yield event
        except httpx_sse.SSEError as exc:
            raise InvalidResponse(f"{_what_path(path)} did not answer with events: {exc}") from None
        except httpx.TimeoutException as exc:
            raise ConnectionFailed(self.url, _reason(exc), timed_out=True) from None
        except httpx.TransportError as exc:
            raise ConnectionFailed(self.url, _reason(exc)) from None
        if not opened:
            # A stream always starts with the workspace; one that ended without it was
            # refused after it began (a workspace that does not exist): say why.
            self.get_workspace(workspace)

    def exec(
        self,
        workspace: str,
        command: str,
        *,
        timeout: str | dt.timedelta = "60s",
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        """Run ``command`` with ``sh -c`` in the workspace's chat agent and wait for it.

        ``timeout`` is a Go duration or timedelta (at most 4h); a command that outlives
        it is killed and the result says ``timed_out``. stdout and stderr come back apart.
        """
        body: dict[str, Any] = {"command": command, "timeout": _go_duration(timeout)}
        if workdir is not None:
            body["workdir"] = workdir
        if env:
            body["env"] = dict(env)
        path = f"/workspaces/{_segment(workspace)}/exec"
        response = self._request("POST", path, json=body, timeout=self._exec_wait(timeout))
        return self._parse(ExecResult, response)

    def _exec_wait(self, timeout: str | dt.timedelta) -> float | None:
        """How long an exec's answer may take: the command's timeout and a margin."""
        read = self._http.timeout.read
        seconds = _seconds(timeout)
        if read is None or seconds is None:
            return None
        return max(read, max(seconds, 0.0) + EXEC_MARGIN_SECONDS)

    def _build(self, workspace: str, transition: str) -> Build:
        path = f"/workspaces/{_segment(workspace)}/builds"
        return self._parse(Build, self._request("POST", path, json={"transition": transition}))

    # --- chats ----------------------------------------------------------------

    def create_chat(self, *, title: str = "", organization: str | None = None) -> Chat:
        """A new chat; its MCP endpoint is ``<url><chat.mcp_path>``."""
        body: dict[str, Any] = {"title": title}
        if organization is not None:
            body["organization"] = organization
        return self._parse(Chat, self._request("POST", "/chats", json=body))

    def list_chats(self) -> list[Chat]:
        """Your chats, newest first."""
        return self._get_list(Chat, "/chats")

    def get_chat(self, chat: str) -> Chat:
        """A chat by id."""
        return self._get(Chat, f"/chats/{_segment(chat)}")

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
        timeout: float | None = None,
    ) -> httpx.Response:
        attempt = 0
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        while True:
            try:
                response = self._http.request(method, path, params=params, json=json, **extra)
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


def _watch_event(sse: httpx_sse.ServerSentEvent, response: httpx.Response) -> WatchEvent | None:
    """A typed event, or None for an event type this client does not know."""
    if sse.event not in ("log", "workspace"):
        return None
    try:
        data = cast("object", json.loads(sse.data))
    except json.JSONDecodeError:
        raise _unreadable(response, f"a {sse.event} event that is not JSON") from None
    if sse.event == "log":
        return WatchEvent("log", log=_validate(LogEntry, data, response))
    return WatchEvent("workspace", workspace=_validate(Workspace, data, response))


def _what_path(path: str) -> str:
    return f"GET {API_PREFIX}{path}"
