"""File RPCs: ``write_file`` (atomic) and ``stat``; ``read_file`` is in :mod:`.reads`.

Writes go to a temporary file in the same directory, are fsynced and renamed over the
target, so a reader (or a crash) sees either the old file or the new one, never half
of it; the target keeps its permission bits, and a new file gets the usual
``0666 & ~umask``. ``write_file`` takes at most :data:`WRITE_FILE_MAX_BYTES` of
content, as a string or as ``{"base64": …}``.
"""

from __future__ import annotations

import contextlib
import os
import stat as stat_mod
import tempfile
from typing import TYPE_CHECKING

from .params import Params, Result, RpcError, get_path, get_text, invalid, too_large
from .protocol import WRITE_FILE_MAX_BYTES

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
    raw = get_path(params)
    data = get_text(params, "content").encode("utf-8", errors="replace")
    if len(data) > WRITE_FILE_MAX_BYTES:
        raise invalid(too_large("content", WRITE_FILE_MAX_BYTES, len(data)))
    path = ctx.resolve(raw)
    try:
        atomic_write(path, data)
    except OSError as err:
        raise os_error(err, path) from err
    return {"ok": True}


def stat_path(ctx: AgentContext, params: Params) -> Result:
    """``stat``: whether a path exists, and what it is."""
    raw = get_path(params)
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
