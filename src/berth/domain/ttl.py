"""The chat workspace TTL setting (spec §10), in Go duration syntax."""

from __future__ import annotations

import datetime as dt

from berth.domain.gocompat import (
    HOUR,
    MINUTE,
    DurationError,
    format_duration_ns,
    go_quote,
    parse_duration,
    parse_duration_ns,
)
from berth.errors import InvalidInput, Validation

MIN_CHAT_WORKSPACE_TTL = dt.timedelta(minutes=1)
MAX_CHAT_WORKSPACE_TTL = dt.timedelta(days=30)


def parse_chat_workspace_ttl(raw: str) -> dt.timedelta:
    """Read the stored ``chat_workspace_ttl`` setting (Coder's ``ParseChatWorkspaceTTL``).

    Empty means 0, which means "use the template's own TTL". A bad stored value raises
    :class:`ValueError`; the caller logs it and falls back to the template default.
    """
    if raw == "":
        return dt.timedelta(0)
    try:
        ttl = parse_duration(raw)
    except DurationError as err:
        raise ValueError(f"invalid duration {go_quote(raw)}: {err}") from err
    if ttl < dt.timedelta(0):
        raise ValueError("duration must be non-negative")
    return ttl


def _ttl_refused(message: str) -> InvalidInput:
    return InvalidInput(message, validations=[Validation(field="value", detail=message)])


def validate_chat_workspace_ttl(raw: str) -> str:
    """Check a TTL an admin is setting; return the canonical string to store.

    The limits (0 or 1 minute to 30 days) match the reference system's admin endpoint:
    below a minute a chat's workspace would stop between two tool calls, and more than
    30 days defeats the point of an autostop. Surrounding blanks are ignored because
    they come from shells and forms, never from intent.
    """
    text = raw.strip()
    if text == "":
        return "0s"
    try:
        ns = parse_duration_ns(text)  # exact, so "500ns" is refused rather than read as 0
    except DurationError as err:
        raise _ttl_refused(str(err)) from err
    if ns < 0:
        raise _ttl_refused("Workspace TTL must be non-negative.")
    if 0 < ns < MINUTE:
        raise _ttl_refused("Workspace TTL must not be less than 1 minute.")
    if ns > 30 * 24 * HOUR:
        raise _ttl_refused("Workspace TTL must not exceed 30 days.")
    return format_duration_ns(ns)
