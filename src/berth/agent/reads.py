"""``read_file`` (spec §13.2): numbered lines of a file, or a directory listing.

The file is streamed in bounded pieces, so paging through a multi-gigabyte log — or a
file that is one 2 GB line — costs memory for one page only; bytes that are not UTF-8
become U+FFFD rather than an error, because a chat asking to read a file wants to see
what is there. A page holds at most :data:`READ_FILE_MAX_BYTES` of content, measured
as the result carries it (:func:`json_size`: a control character is six bytes, an
undecodable byte three), so no file makes a larger result: whole lines while they
fit, and when the first line of a page alone is longer, a byte range of it; the
result then says so (``truncated``, ``note``) and where to go on (``next_offset``,
``next_byte_offset``, which ``offset`` and ``byte_offset`` take back). FIFOs and
devices are refused: they could block a worker forever, or never end.
"""

from __future__ import annotations

import json
import os
import re
import stat as stat_mod
from typing import TYPE_CHECKING, BinaryIO

from .files import os_error
from .params import Params, Result, RpcError, get_int, get_path, get_positive, invalid
from .protocol import READ_FILE_DEFAULT_LIMIT, READ_FILE_MAX_BYTES

if TYPE_CHECKING:
    from .context import AgentContext

_PIECE = 64 * 1024  # how much of a line one read takes
_COUNT_CHUNK = 1024 * 1024  # how much one read takes when only counting lines


def read_file(ctx: AgentContext, params: Params) -> Result:
    """``read_file``: numbered lines of a file, or a one-level directory listing."""
    raw = get_path(params)
    offset = get_positive(params, "offset", 1)
    limit = get_positive(params, "limit", READ_FILE_DEFAULT_LIMIT)
    byte_offset = get_int(params, "byte_offset", 0)
    if byte_offset < 0:
        raise invalid("byte_offset must be >= 0")
    path = ctx.resolve(raw)
    try:
        if os.path.isdir(path):
            if byte_offset:
                raise invalid("byte_offset applies to files, not to directories")
            return _read_dir(path, offset, limit)
        return _read_lines(path, offset, limit, byte_offset)
    except OSError as err:
        raise os_error(err, path) from err


def _utf8_cut(data: bytes, limit: int) -> int:
    """The largest cut at most ``limit`` into ``data`` that splits no UTF-8 character."""
    if limit >= len(data):
        return len(data)
    cut = limit
    while cut > 0 and limit - cut < 3 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut if cut > 0 and (data[cut] & 0xC0) != 0x80 else limit


def json_size(text: str) -> int:
    """The bytes ``text`` takes inside a JSON string (UTF-8, as the result is sent)."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8")) - 2


# What costs more in a JSON string than its UTF-8 bytes: escaped characters, and bytes
# that are not UTF-8 (decoded with surrogateescape; U+FFFD, three bytes, in the result).
_COSTLY = re.compile(r'[\x00-\x1f"\\\udc80-\udcff]')
_SHORT_ESCAPES = frozenset('"\\\n\r\t\b\f')


def _fitting(data: bytes, room: int) -> int:
    """The longest head of ``data`` (part of a line) whose text takes at most ``room``
    bytes in a JSON string, in bytes; it never splits a character."""
    cut = _utf8_cut(data, room)
    text = data[:cut].decode("utf-8", errors="surrogateescape")
    if not _COSTLY.search(text):  # each byte is one byte of the result
        return cut
    used = taken = 0
    for char in text:
        if char in _SHORT_ESCAPES:
            size, width = 2, 1
        elif char < " ":
            size, width = 6, 1
        elif "\udc80" <= char <= "\udcff":
            size, width = 3, 1
        else:
            size = width = len(char.encode("utf-8"))
        if used + size > room:
            break
        used += size
        taken += width
    return taken


def _count_lines(stream: BinaryIO) -> int:
    """The lines from here to the end (a last line without a newline counts)."""
    count, last = 0, b"\n"
    while True:
        chunk = stream.read(_COUNT_CHUNK)
        if not chunk:
            return count + (0 if last == b"\n" else 1)
        count += chunk.count(b"\n")
        last = chunk[-1:]


class _Line:
    """One line read in pieces: its length, and the bytes of it in a window."""

    def __init__(self, stream: BinaryIO, first: bytes, start: int, room: int) -> None:
        kept = bytearray()
        length = 0
        window_end = start + room + 4  # a few bytes more, to cut on a character boundary
        piece = first
        while True:
            ended = piece.endswith(b"\n")
            data = piece[:-1] if ended else piece
            low, high = max(start, length), min(length + len(data), window_end)
            if high > low:
                kept += data[low - length : high - length]
            length += len(data)
            if ended:
                break
            piece = stream.readline(_PIECE)
            if not piece:
                break
        self.length = length
        self.kept = bytes(kept)


def _skip_line(stream: BinaryIO, piece: bytes) -> None:
    while not piece.endswith(b"\n"):
        piece = stream.readline(_PIECE)
        if not piece:
            return


def _read_lines(path: str, offset: int, limit: int, byte_offset: int) -> Result:
    if not stat_mod.S_ISREG(os.stat(path).st_mode):
        # A FIFO or a device could block a worker forever, or never end.
        raise RpcError("failed", f"{path}: not a regular file")
    lines: list[str] = []
    used = 0
    cut: tuple[int, int | None] | None = None  # where a capped page goes on
    shown_from = 0  # the first byte of the first line shown
    with open(path, "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        total = 0
        while True:
            piece = stream.readline(_PIECE)
            if not piece:
                break
            total += 1
            if total < offset:
                _skip_line(stream, piece)
                continue
            prefix = f"{total}\t"
            start = byte_offset if total == offset else 0
            overhead = json_size(prefix) + (2 if lines else 0)  # and the "\n" before it
            room = READ_FILE_MAX_BYTES - used - overhead
            line = _Line(stream, piece, start, max(room, 0))
            if start > line.length:
                raise RpcError(
                    "failed",
                    f"byte_offset {start} is beyond the length of line {total} "
                    f"({line.length} bytes)",
                )
            text: str | None = None
            if line.length - start <= room:
                whole = line.kept[: line.length - start].decode("utf-8", errors="replace")
                text = whole if json_size(whole) <= room else None
            if text is None and not lines:  # the page's first line alone is over the cap
                keep = _fitting(line.kept, room)
                text = line.kept[:keep].decode("utf-8", errors="replace")
                cut, shown_from = (total, start + keep), start
            elif text is None:
                cut = (total, None)  # the page goes on at this line
            if text is not None:
                used += overhead + json_size(text)
                lines.append(prefix + text)
            if cut is not None or total >= offset + limit - 1:
                total += _count_lines(stream)
                break
    if offset > 1 and offset > total:
        raise RpcError("failed", f"offset {offset} is beyond the file length of {total} lines")
    if byte_offset and total < offset:
        raise RpcError(
            "failed", f"byte_offset {byte_offset} is beyond the length of line {offset} (0 bytes)"
        )
    result: Result = {
        "content": "\n".join(lines),
        "file_size": size,
        "total_lines": total,
        "lines_read": len(lines),
    }
    if cut is not None:
        result.update(_cut_note(offset, len(lines), total, cut, shown_from))
    return result


def _cut_note(
    offset: int, shown: int, total: int, cut: tuple[int, int | None], shown_from: int
) -> Result:
    line, byte = cut
    cap = f"Output capped at {READ_FILE_MAX_BYTES} bytes"
    if byte is None:
        note = (
            f"{cap}: this shows lines {offset}-{offset + shown - 1} of {total}. "
            f"Call read_file with offset={line} to read on."
        )
        return {"truncated": True, "next_offset": line, "note": note}
    note = (
        f"{cap}: line {line} is too long to return at once; this shows its bytes "
        f"{shown_from} to {byte - 1}. Call read_file with offset={line} and "
        f"byte_offset={byte} to read on."
    )
    return {"truncated": True, "next_offset": line, "next_byte_offset": byte, "note": note}


def _display_name(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 become U+FFFD."""
    return name.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def _read_dir(path: str, offset: int, limit: int) -> Result:
    with os.scandir(path) as scan:
        found = sorted(scan, key=lambda entry: entry.name)
    total = len(found)
    if offset > 1 and offset > total:
        raise RpcError(
            "failed", f"offset {offset} is beyond the directory length of {total} entries"
        )
    page = found[offset - 1 : offset - 1 + limit]
    entries: list[Result] = []
    lines: list[str] = []
    used = 0
    capped_at: int | None = None
    for number, entry in enumerate(page, start=offset):
        try:
            is_dir = entry.is_dir()
            size = 0 if is_dir else entry.stat().st_size
        except OSError:
            is_dir, size = False, 0
        name = _display_name(entry.name)
        line = f"{number}\t{name}{'/' if is_dir else ''}"
        cost = json_size(line) + (2 if lines else 0)
        if lines and used + cost > READ_FILE_MAX_BYTES:
            capped_at = number
            break
        used += cost
        lines.append(line)
        entries.append({"name": name, "is_dir": is_dir, "size": size})
    result: Result = {
        "content": "\n".join(lines),
        "is_directory": True,
        "absolute_path": path,
        "entries": entries,
        "entries_read": len(entries),
        "total_entries": total,
        "truncated": offset - 1 + len(entries) < total,
    }
    if capped_at is not None:
        result["next_offset"] = capped_at
        result["note"] = (
            f"Output capped at {READ_FILE_MAX_BYTES} bytes: this shows entries "
            f"{offset}-{capped_at - 1} of {total}. Call read_file with offset={capped_at} "
            f"to read on."
        )
    return result
