"""One exception tree for berth's domain.

::

    BerthError                       anything berth raises on purpose
    ├── NotFound          (404)      missing, or not visible to the actor: the two are
    │                                indistinguishable on purpose (authorization §4)
    ├── Unauthenticated   (401)      no credentials, or credentials that are not valid
    ├── Forbidden         (403)      a change to something the actor may see but not change
    ├── Conflict          (409)      the request contradicts current state (a name taken)
    ├── InvalidInput      (422)      a request or document failed validation
    ├── Unavailable       (503)      a retryable condition (database busy, lock timeout)
    │   └── AgentUnavailable         the workspace agent is not reachable, or went away
    ├── AgentCallError               the workspace agent answered an RPC with an error
    ├── BuildFailed                  a build that cannot complete, or did not succeed;
    │                                ``code`` is the job's error code (INSUFFICIENT_QUOTA)
    ├── ToolError                    a chat tool's early return: its text is the tool's
    │                                text error (spec conventions)
    ├── JobLost                      a provisioner job is gone, or no longer this worker's;
    │   ├── JobGone      (+NotFound)   as the server's job source says it: the API then
    │   └── JobTaken     (+Conflict)   answers 404 or 409, the worker drops the job
    └── RemoteError                  a standalone provisioner's call to the server failed
        ├── KeyRefused               the server does not accept the provisioner key
        └── ServerUnreachable        no answer from the server

Every error carries a human ``message`` and optional ``detail`` and ``validations``,
the fields of the HTTP error envelope ``{message, detail?, validations?}``. The API
maps the classes to status codes in one place; services never think about HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

INSUFFICIENT_QUOTA = "INSUFFICIENT_QUOTA"
"""The error code of a start build that would exceed the owner's quota (DESIGN §10)."""


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


class AgentUnavailable(Unavailable):
    """The workspace agent is not connected to this server, or went away mid-call."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after=2)


class AgentCallError(BerthError):
    """The workspace agent answered an RPC with an error; ``code`` is the agent's."""

    def __init__(self, message: str, code: str = "failed") -> None:
        super().__init__(message)
        self.code = code


class BuildFailed(BerthError):
    """A build that cannot complete, or did not succeed.

    ``message`` becomes (or is) the job's ``error``, ``code`` its ``error_code``.
    """

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class ToolError(BerthError):
    """A chat tool's early return: the tool answers with ``message`` as a text error."""


class JobLost(BerthError):
    """The provisioner job is gone, or no longer this worker's: the worker drops it."""


class JobGone(JobLost, NotFound):
    """The job does not exist (or belongs to another organization than the key's)."""


class JobTaken(JobLost, Conflict):
    """The job is run by another worker, or is not running any more."""


class RemoteError(BerthError):
    """A standalone provisioner's call to the server failed; ``str()`` is for a person."""


class KeyRefused(RemoteError):
    """The server does not accept the provisioner key (wrong, or deleted)."""


class ServerUnreachable(RemoteError):
    """No answer from the server (not running, wrong URL, network)."""
