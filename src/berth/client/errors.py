"""What the client raises.

::

    ClientError                 anything the client raises on purpose
    ├── ApiError                the server answered with an error (4xx/5xx): its envelope
    ├── ConnectionFailed        no answer: nothing listening, DNS, TLS, timeout
    ├── InvalidResponse         an answer that is not berth's API (a proxy page, an old server)
    ├── InvalidArgument         refused before sending, e.g. an empty name (also a ValueError)
    │   └── InvalidURL          a server URL the client cannot use
    └── TemplateFolderError     ``push_template`` could not read the template folder

``str()`` of each is written for a person: the CLI prints ``error: <str(exc)>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import httpx

__all__ = [
    "ApiError",
    "ClientError",
    "ConnectionFailed",
    "InvalidArgument",
    "InvalidResponse",
    "InvalidURL",
    "TemplateFolderError",
    "Validation",
]

_MAX_BODY_EXCERPT = 200


@dataclass(frozen=True, slots=True)
class Validation:
    """One field-level problem from the error envelope: ``field`` and the rule broken."""

    field: str
    detail: str


class ClientError(Exception):
    """Base class of every error the client raises on purpose."""


class ApiError(ClientError):
    """The server answered with an error status and (usually) the berth error envelope
    ``{message, detail?, validations?: [{field, detail}]}``.

    ``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one (503).
    """

    def __init__(
        self,
        status_code: int,
        message: str,
        detail: str | None = None,
        validations: list[Validation] | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.detail = detail
        self.validations: list[Validation] = list(validations or [])
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """True for 503: the same request may succeed later."""
        return self.status_code == 503

    def __str__(self) -> str:
        lines = [self.message]
        if self.detail:
            lines.append(self.detail)
        lines += [f"  {v.field}: {v.detail}" for v in self.validations]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"ApiError({self.status_code}, {self.message!r})"

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """Read the error envelope; a body that is not one still gives a useful error."""
        status = response.status_code
        retry_after = _retry_after(response)
        try:
            body: object = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if isinstance(body, dict):
            envelope = cast("dict[str, Any]", body)
            message = envelope.get("message")
            if isinstance(message, str) and message:
                detail = envelope.get("detail")
                return cls(
                    status,
                    message,
                    detail if isinstance(detail, str) and detail else None,
                    _validations(envelope.get("validations")),
                    retry_after=retry_after,
                )
        reason = response.reason_phrase or httpx.codes.get_reason_phrase(status)
        message = f"the server answered {status} {reason}".rstrip()
        text = response.text.strip() if body is None else json.dumps(body)
        if len(text) > _MAX_BODY_EXCERPT:
            text = text[:_MAX_BODY_EXCERPT] + "…"
        return cls(status, message, text or None, retry_after=retry_after)


class ConnectionFailed(ClientError):
    """The request got no answer from the server at ``url``."""

    def __init__(self, url: str, reason: str, *, timed_out: bool = False) -> None:
        self.url = url
        self.reason = reason
        self.timed_out = timed_out
        if timed_out:
            text = f"no answer from the berth server at {url} in time ({reason})"
        else:
            text = (
                f"could not connect to the berth server at {url}: {reason}"
                " (the server may not be running, or the URL may be wrong)"
            )
        super().__init__(text)


class InvalidResponse(ClientError):
    """The server answered successfully with something this client cannot read."""


class InvalidArgument(ClientError, ValueError):
    """An argument the client refuses before sending anything."""


class InvalidURL(InvalidArgument):
    """A server URL the client cannot use."""


class TemplateFolderError(ClientError):
    """A template folder that cannot be pushed: missing, unreadable, no template.yaml."""


def _validations(value: object) -> list[Validation]:
    if not isinstance(value, list):
        return []
    found: list[Validation] = []
    for item in cast("list[object]", value):
        if isinstance(item, dict):
            entry = cast("dict[str, Any]", item)
            found.append(Validation(str(entry.get("field", "")), str(entry.get("detail", ""))))
    return found


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds; the HTTP-date form is rare enough to ignore."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(seconds, 0.0)
