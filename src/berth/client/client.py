"""The typed, synchronous client for berth's HTTP API (``/api/v1``).

One :class:`Client` per server and token; it holds an :class:`httpx.Client` (a
connection pool), so use it as a context manager or call :meth:`Client.close`.

Errors: a 4xx/5xx answer raises :class:`~berth.client.errors.ApiError` with the
server's envelope; no answer raises :class:`~berth.client.errors.ConnectionFailed`.
A 503 (the server's "retry later") is retried for idempotent requests (GET, PUT,
DELETE), at most ``retries`` times, waiting what ``Retry-After`` asks for (capped at
``max_retry_wait`` seconds); a POST is never repeated, because it may have happened.

The methods live in one part per resource (``_accounts``, ``_templates``,
``_workspaces``, ``_prebuilds``, ``_system``) over the transport of ``_core``; this class
is all of them.
"""

from __future__ import annotations

from berth.client._accounts import AccountsApi
from berth.client._core import API_PREFIX, normalize_url
from berth.client._durations import parse_duration
from berth.client._prebuilds import PrebuildsApi
from berth.client._system import SystemApi
from berth.client._templates import TemplatesApi
from berth.client._workspaces import EXEC_MARGIN_SECONDS, WorkspacesApi

__all__ = ["API_PREFIX", "EXEC_MARGIN_SECONDS", "Client", "normalize_url", "parse_duration"]


class Client(SystemApi, AccountsApi, TemplatesApi, WorkspacesApi, PrebuildsApi):
    """A berth server at ``url`` (``http://HOST:PORT``), as the user whose ``token`` it is.

    ``transport`` replaces httpx's network transport (for example
    :class:`httpx.MockTransport`, or an ASGI/WSGI transport in tests).
    """
