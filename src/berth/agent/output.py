"""Bounded output: the head and the tail of a stream, cut on UTF-8 boundaries.

A command's output is kept as its first and its last bytes only, so a process that
prints for days costs bounded memory; a cut never splits a UTF-8 sequence, so the text
the server gets decodes cleanly.
"""

from __future__ import annotations

from .protocol import PROCESS_BUFFER_BYTES

_SLACK = 4  # bytes kept beyond the limit so a cut can see the next UTF-8 byte


def _is_continuation(byte: int) -> bool:
    return byte & 0xC0 == 0x80


def utf8_head(data: bytes, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes from the start, not ending inside a UTF-8 sequence."""
    if len(data) <= limit:
        return data, False
    cut = limit
    while cut > 0 and cut > limit - 3 and _is_continuation(data[cut]):
        cut -= 1
    return data[:cut], True


def utf8_tail(data: bytes, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes from the end, not starting inside a UTF-8 sequence."""
    if len(data) <= limit:
        return data, False
    start = len(data) - limit
    while start < len(data) and start < len(data) - limit + 3 and _is_continuation(data[start]):
        start += 1
    return data[start:], True


class OutputBuffer:
    """The head and the tail of a stream, each bounded; not thread-safe on its own."""

    def __init__(self, keep: int = PROCESS_BUFFER_BYTES) -> None:
        self.keep = keep
        self.total = 0
        self._head = bytearray()
        self._tail = bytearray()

    def append(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.keep + _SLACK - len(self._head)
        if room > 0:
            self._head += chunk[:room]
        self._tail += chunk
        excess = len(self._tail) - (self.keep + _SLACK)
        if excess > 0:
            del self._tail[:excess]

    def head(self, limit: int) -> tuple[str, bool]:
        """The first ``limit`` bytes as text, and whether there was more."""
        data, cut = utf8_head(bytes(self._head), min(limit, self.keep))
        return data.decode("utf-8", errors="replace"), cut or self.total > len(self._head)

    def tail(self, limit: int) -> tuple[str, bool]:
        """The last ``limit`` bytes as text, and whether there was more before them."""
        data, cut = utf8_tail(bytes(self._tail), min(limit, self.keep))
        return data.decode("utf-8", errors="replace"), cut or self.total > len(self._tail)
