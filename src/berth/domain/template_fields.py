"""Field types of the template document: Go durations, names, string values, sizes.

Split from :mod:`berth.domain.template` so the document reads as a schema. Each type
validates one scalar and says what is wrong in a template author's words; the
messages end up, unchanged, in :class:`~berth.domain.template_yaml.TemplateError`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Annotated, cast

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

from berth.domain.gocompat import DurationError, format_duration, parse_duration
from berth.domain.names import name_error

__all__ = [
    "ENV_NAME",
    "GoDuration",
    "MemorySize",
    "Name",
    "ParameterName",
    "ScalarStr",
    "memory_bytes",
]


def _to_duration(value: object) -> object:
    if type(value) is int and value == 0:
        value = dt.timedelta(0)  # a bare YAML 0 means "none", as the Go string "0" does
    if isinstance(value, str):
        try:
            value = parse_duration(value)
        except DurationError as err:
            raise ValueError(f"{err} (use Go duration syntax such as 30s, 5m or 8h)") from err
    if not isinstance(value, dt.timedelta):
        raise ValueError("must be a duration such as 30s, 5m or 8h")
    if value < dt.timedelta(0):
        raise ValueError("must not be negative")
    return value


GoDuration = Annotated[
    dt.timedelta,
    BeforeValidator(_to_duration),
    PlainSerializer(format_duration, return_type=str),
]
"""A Go duration string (``8h``, ``90s``); a timedelta in Python, Go's canonical form in JSON."""


def _to_str(value: object) -> object:
    """YAML scalars as the strings berth keeps values in: ``2`` → ``"2"``, ``true`` → ``"true"``.

    A list becomes a JSON array, the form of ``list(string)`` parameter values.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return json.dumps([_to_str(v) for v in cast("list[object]", value)])
    return value


ScalarStr = Annotated[str, BeforeValidator(_to_str)]
"""A string that YAML authors may write as a bare number, boolean or list."""


def _valid_name(value: str) -> str:
    problem = name_error(value)
    if problem:
        raise ValueError(f"invalid name {json.dumps(value)}: {problem}")
    return value


Name = Annotated[str, AfterValidator(_valid_name)]
"""A template or agent name: the workspace-name rules of spec §6."""

_IDENTIFIER = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
ENV_NAME = _IDENTIFIER


def _valid_parameter_name(value: str) -> str:
    if not _IDENTIFIER.fullmatch(value):
        raise ValueError(
            f"invalid parameter name {json.dumps(value)}: must start with a letter or "
            "underscore and contain only letters, digits and underscores"
        )
    return value


ParameterName = Annotated[str, AfterValidator(_valid_parameter_name)]
"""An identifier, so it reads as ``{{ parameters.name }}`` in Jinja."""

_MEMORY = re.compile(r"(\d+(?:\.\d+)?) ?([kmgtp]?)(?:i?b)?", re.IGNORECASE)


def memory_bytes(size: str) -> int | None:
    """``2g`` → 2 GiB in bytes (binary multiples, as Docker reads them); None if not a size."""
    match = _MEMORY.fullmatch(size.strip())
    if match is None:
        return None
    power = "_kmgtp".index(match.group(2).lower() or "_")
    return int(float(match.group(1)) * 1024**power)


def _valid_memory(value: str) -> str:
    if not memory_bytes(value):
        raise ValueError(f"invalid memory size {json.dumps(value)}: use a size such as 512m or 2g")
    return value


MemorySize = Annotated[ScalarStr, AfterValidator(_valid_memory)]
"""A memory size such as ``512m`` or ``2g`` (kept as written)."""
