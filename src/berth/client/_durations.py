"""Go durations (``"8h"``, ``"1h30m"``, ``"0"``), the form the API speaks."""

from __future__ import annotations

import datetime as dt
import re

from berth.client.errors import InvalidArgument

__all__ = ["go_duration", "parse_duration", "seconds"]

_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def go_duration(value: str | dt.timedelta) -> str:
    """A duration as the API takes it: a string as is, a timedelta in seconds."""
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


def seconds(value: str | dt.timedelta) -> float | None:
    """A duration in seconds; None if unreadable (the server then says what is wrong)."""
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    try:
        return parse_duration(value).total_seconds()
    except InvalidArgument:
        return None
