"""One exception tree for berth's domain.

::

    BerthError                       anything berth raises on purpose
    ├── NotFound          (404)      missing, or not visible to the actor: the two are
    │                                indistinguishable on purpose (authorization §4)
    ├── Unauthenticated   (401)      no credentials, or credentials that are not valid
    ├── Forbidden         (403)      a change to something the actor may see but not change
    ├── Conflict          (409)      the request contradicts current state (a name taken)
    ├── InvalidInput      (422)      a request or document failed validation
    └── Unavailable       (503)      a retryable condition (database busy, lock timeout)

Every error carries a human ``message`` and optional ``detail`` and ``validations``,
the fields of the HTTP error envelope ``{message, detail?, validations?}``. The API
maps the classes to status codes in one place; services never think about HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Validation:
    """One field-level problem: ``field`` names the input, ``detail`` says the rule."""

    field: str
    detail: str


class BerthError(Exception):
    """Base class of every error berth raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        detail: str | None = None,
        validations: Sequence[Validation] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.validations: tuple[Validation, ...] = tuple(validations)

    def __str__(self) -> str:
        return self.message


class NotFound(BerthError):
    """The thing does not exist, or the actor may not see it."""


class Unauthenticated(BerthError):
    """The request carries no valid credentials."""


class Forbidden(BerthError):
    """The actor may see the thing but not make this change to it."""


class Conflict(BerthError):
    """The request contradicts the current state, such as a name already taken."""


class InvalidInput(BerthError):
    """A request field or a document failed validation."""


class Unavailable(BerthError):
    """A retryable condition; the caller may try again after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int = 1, detail: str | None = None) -> None:
        super().__init__(message, detail=detail)
        self.retry_after = retry_after
