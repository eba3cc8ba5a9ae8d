"""What a chat tool returns, independent of the transport that carries it.

Conventions of the spec: a *text error* is ``is_error`` with only the string; a *JSON
result* is the object as JSON text with sorted keys (as the reference emits it) and
the same object as structured content. Build and quota failures are JSON results with
an ``error`` key and ``is_error`` false, on purpose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ToolResult:
    text: str
    structured: dict[str, Any] | None = None
    is_error: bool = False

    @classmethod
    def json(cls, value: dict[str, Any]) -> ToolResult:
        return cls(text=json.dumps(value, sort_keys=True, ensure_ascii=False), structured=value)

    @classmethod
    def error(cls, message: str) -> ToolResult:
        return cls(text=message, is_error=True)
