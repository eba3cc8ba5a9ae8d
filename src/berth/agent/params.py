"""RPC errors and typed access to request params.

The server is trusted but not infallible: a request with a missing or mistyped param
must come back as an ``invalid_params`` error that says which param and why, never as
a crashed worker thread. Every handler reads its params through these helpers so the
messages are uniform (``path is required``, ``offset must be an integer``).

:func:`path_problem` is also what the server's tools check path arguments with, so a
bad path gets the same text whichever side notices it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, cast

from .protocol import PATH_MAX_BYTES, PATH_MAX_DEPTH, PATH_NAME_MAX_BYTES

Params = dict[str, Any]
Result = dict[str, Any]


class RpcError(Exception):
    """An error answered to the server as ``{message, code}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message: str) -> RpcError:
    """An ``invalid_params`` error."""
    return RpcError("invalid_params", message)


def get_str(params: Params, name: str, *, required: bool = False, allow_empty: bool = True) -> str:
    """A string param; absent (or ``null``) is ``""`` unless required."""
    value = params.get(name)
    if value is None:
        if required:
            raise invalid(f"{name} is required")
        return ""
    if not isinstance(value, str):
        raise invalid(f"{name} must be a string")
    if not value and (required and not allow_empty):
        raise invalid(f"{name} is required")
    return value


def get_int(params: Params, name: str, default: int) -> int:
    """An integer param (a float with no fraction is accepted, a bool is not)."""
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        raise invalid(f"{name} must be an integer")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, int):
        raise invalid(f"{name} must be an integer")
    return value


def get_bool(params: Params, name: str, default: bool = False) -> bool:
    """A boolean param."""
    value = params.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(f"{name} must be a boolean")
    return value


def get_env(params: Params, name: str) -> dict[str, str]:
    """An object of string values (environment variables)."""
    value = params.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"{name} must be an object of strings")
    env: dict[str, str] = {}
    for key, item in cast(dict[Any, Any], value).items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise invalid(f"{name} must be an object of strings")
        if not key or "=" in key or "\0" in key or "\0" in item:
            raise invalid(f"{name} has an invalid variable: {key!r}")
        env[key] = item
    return env


def get_list(params: Params, name: str) -> list[Any] | None:
    """A list param, or ``None`` when absent."""
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, list):
        raise invalid(f"{name} must be a list")
    return cast(list[Any], value)


def path_problem(name: str, value: str) -> str | None:
    """Why ``value`` cannot be the path param ``name`` (the error text), or ``None``.

    Blank, a NUL byte (no system call takes one), lone surrogates (not UTF-8), more
    than :data:`PATH_MAX_BYTES` bytes, a component longer than
    :data:`PATH_NAME_MAX_BYTES` bytes, or more than :data:`PATH_MAX_DEPTH` levels.
    """
    if not value.strip():
        return f"{name} is required"
    if "\0" in value:
        return f"{name} must not contain NUL bytes"
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError:
        return f"{name} must be valid UTF-8 text"
    if len(data) > PATH_MAX_BYTES:
        return f"{name} must be <= {PATH_MAX_BYTES} bytes, got {len(data)}"
    parts = [part for part in data.split(b"/") if part and part != b"."]
    longest = max((len(part) for part in parts), default=0)
    if longest > PATH_NAME_MAX_BYTES:
        return (
            f"{name} must not have a component longer than {PATH_NAME_MAX_BYTES} bytes, "
            f"got one of {longest}"
        )
    if len(parts) > PATH_MAX_DEPTH:
        return f"{name} must be <= {PATH_MAX_DEPTH} levels deep, got {len(parts)}"
    return None


def get_path(params: Params, name: str = "path") -> str:
    """A required path param that :func:`path_problem` accepts."""
    value = get_str(params, name, required=True)
    problem = path_problem(name, value)
    if problem is not None:
        raise invalid(problem)
    return value


def get_text(params: Params, name: str) -> str:
    """A text param: a string, or ``{"base64": <UTF-8 as base64>}``; absent is ``""``."""
    value = params.get(name)
    if value is None:
        return ""
    return decode_text(name, value)


def decode_text(name: str, value: object) -> str:
    """The text of a string or ``{"base64": …}`` value (see :func:`get_text`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        item = cast(dict[str, Any], value)
        encoded = item.get("base64")
        if isinstance(encoded, str) and len(item) == 1:
            try:
                return base64.b64decode(encoded, validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                raise invalid(f"{name} is not valid base64 UTF-8 text") from None
    raise invalid(f"{name} must be a string")


def get_positive(params: Params, name: str, default: int) -> int:
    """An integer param that must be >= 1 when given (``offset must be >= 1``)."""
    value = get_int(params, name, default)
    if value < 1:
        raise invalid(f"{name} must be >= 1")
    return value


def size_text(size: int) -> str:
    """``33554432 bytes (32 MiB)``, ``262144 bytes (256 KiB)`` or ``1000 bytes``."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size} bytes ({size // scale} {unit})"
    return f"{size} bytes"


def too_large(name: str, limit: int, size: int) -> str:
    """``content must be <= 33554432 bytes (32 MiB), got 40000000 bytes``."""
    return f"{name} must be <= {size_text(limit)}, got {size} bytes"
