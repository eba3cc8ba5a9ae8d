"""File RPCs: ``read_file`` (spec §13.2), ``write_file`` (atomic), ``stat``.

``read_file`` streams the file line by line, so paging through a multi-gigabyte log
costs memory for one page only; bytes that are not UTF-8 become U+FFFD rather than an
error, because a chat asking to read a file wants to see what is there. Writes go to a
temporary file in the same directory, are fsynced and renamed over the target, so a
reader (or a crash) sees either the old file or the new one, never half of it; the
target keeps its permission bits, and a new file gets the usual ``0666 & ~umask``.
"""

from __future__ import annotations

import contextlib
import os
import stat as stat_mod
import tempfile
from typing import TYPE_CHECKING

from .params import Params, Result, RpcError, get_int, get_str
from .protocol import READ_FILE_DEFAULT_LIMIT

if TYPE_CHECKING:
    from .context import AgentContext


def os_error(err: OSError, path: str) -> RpcError:
    """An OSError as an RPC error: a missing path is ``not_found``, the rest ``failed``."""
    reason = err.strerror or str(err)
    if isinstance(err, FileNotFoundError):
        return RpcError("not_found", f"{path}: no such file or directory")
    return RpcError("failed", f"{path}: {reason}")


def _umask() -> int:
    # Linux reports it; elsewhere os.umask can only be read by setting it (once, here).
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _umask()


def _page(params: Params) -> tuple[int, int]:
    offset = get_int(params, "offset", 1)
    limit = get_int(params, "limit", READ_FILE_DEFAULT_LIMIT)
    return (offset if offset > 0 else 1), (limit if limit > 0 else READ_FILE_DEFAULT_LIMIT)


def read_file(ctx: AgentContext, params: Params) -> Result:
    """``read_file``: numbered lines of a file, or a one-level directory listing."""
    raw = get_str(params, "path", required=True, allow_empty=False)
    offset, limit = _page(params)
    path = ctx.resolve(raw)
    try:
        if os.path.isdir(path):
            return _read_dir(path, offset, limit)
        return _read_lines(path, offset, limit)
    except OSError as err:
        raise os_error(err, path) from err


def _read_lines(path: str, offset: int, limit: int) -> Result:
    if not stat_mod.S_ISREG(os.stat(path).st_mode):
        # A FIFO or a device could block a worker forever, or never end.
        raise RpcError("failed", f"{path}: not a regular file")
    lines: list[str] = []
    total = 0
    with open(path, "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        for raw in stream:
            total += 1
            if offset <= total < offset + limit:
                line = raw.decode("utf-8", errors="replace")
                lines.append(f"{total}\t{line[:-1] if line.endswith(chr(10)) else line}")
    if offset > 1 and offset > total:
        raise RpcError("failed", f"offset {offset} is beyond the file length of {total} lines")
    return {
        "content": "\n".join(lines),
        "file_size": size,
        "total_lines": total,
        "lines_read": len(lines),
    }


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
    for number, entry in enumerate(page, start=offset):
        try:
            is_dir = entry.is_dir()
            size = 0 if is_dir else entry.stat().st_size
        except OSError:
            is_dir, size = False, 0
        lines.append(f"{number}\t{entry.name}{'/' if is_dir else ''}")
        entries.append({"name": entry.name, "is_dir": is_dir, "size": size})
    return {
        "content": "\n".join(lines),
        "is_directory": True,
        "absolute_path": path,
        "entries": entries,
        "entries_read": len(entries),
        "total_entries": total,
        "truncated": offset - 1 + len(entries) < total,
    }


def write_temp(target: str, data: bytes, mode: int) -> str:
    """Write ``data`` to a new fsynced temp file beside ``target``; returns its path."""
    directory, name = os.path.split(target)
    fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".berth-tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fchmod(stream.fileno(), mode)
            os.fsync(stream.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return temp


def fsync_dir(directory: str) -> None:
    """Make a rename in ``directory`` durable (best effort)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def file_mode(path: str) -> int:
    """The permission bits ``path`` has, or those a new file would get."""
    try:
        return stat_mod.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~UMASK


def atomic_write(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, creating parent directories."""
    target = os.path.realpath(path)  # write through a symlink, do not replace it
    if os.path.isdir(target):
        raise IsADirectoryError(21, "Is a directory", path)
    directory = os.path.dirname(target)
    os.makedirs(directory, exist_ok=True)
    temp = write_temp(target, data, file_mode(target))
    try:
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    fsync_dir(directory)


def write_file(ctx: AgentContext, params: Params) -> Result:
    """``write_file``: create or replace a file, atomically."""
    raw = get_str(params, "path", required=True, allow_empty=False)
    content = get_str(params, "content")
    path = ctx.resolve(raw)
    try:
        atomic_write(path, content.encode("utf-8", errors="replace"))
    except OSError as err:
        raise os_error(err, path) from err
    return {"ok": True}


def stat_path(ctx: AgentContext, params: Params) -> Result:
    """``stat``: whether a path exists, and what it is."""
    raw = get_str(params, "path", required=True, allow_empty=False)
    path = ctx.resolve(raw)
    result: Result = {
        "exists": False,
        "is_dir": False,
        "size": 0,
        "mode": 0,
        "mtime": 0.0,
        "absolute_path": path,
    }
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return result
    except OSError as err:
        raise os_error(err, path) from err
    result.update(
        exists=True,
        is_dir=stat_mod.S_ISDIR(info.st_mode),
        size=info.st_size,
        mode=stat_mod.S_IMODE(info.st_mode),
        mtime=info.st_mtime,
    )
    return result
