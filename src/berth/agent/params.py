"""RPC errors and typed access to request params.

The server is trusted but not infallible: a request with a missing or mistyped param
must come back as an ``invalid_params`` error that says which param and why, never as
a crashed worker thread. Every handler reads its params through these helpers so the
messages are uniform (``path is required``, ``offset must be an integer``).
"""

from __future__ import annotations

from typing import Any, cast

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
