"""The supervisor package (:mod:`._supervisor`) as one zipapp: what runs it, everywhere.

The keeper, ``prepare``'s one-shot sandbox and the supervisor inside each sandbox run
``python3 -I berth-supervisor.pyz MODE`` — on the host with the server's Python, in a
sandbox with the workspace's (≥ 3.9). The archive holds the package under the name
``berth_supervisor`` (its modules import each other relatively) and a ``__main__.py``;
no other part of berth. As the agent's (:mod:`berth.agent.build`), each ``.py`` has
an unchecked hash-based ``.pyc`` beside it for the building interpreter, and the bytes
are reproducible: entries sorted, times fixed, modes normalized.

So they are named by their hash: :func:`ensure_archive` writes
``berth-supervisor-<hash>.pyz`` once, and never changes or removes it, so a keeper
started by an older server keeps the file it runs from. In a sandbox the same bytes
are bound read-only at ``_bwrap.SUPERVISOR_PATH``; the Docker backend copies them into
its containers (:func:`archive_bytes`).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
import zipfile
from pathlib import Path

from berth.agent.build import compile_pyc
from berth.provisioner.backends import _supervisor

__all__ = ["ARCHIVE_PACKAGE", "archive_bytes", "build_archive", "ensure_archive"]

ARCHIVE_PACKAGE = "berth_supervisor"
"""The package's name inside the archive (``sys.path.insert(0, archive)`` imports it)."""
_PREFIX = "berth-supervisor-"
_DIGEST_CHARS = 16
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_MAIN = f"from {ARCHIVE_PACKAGE}.main import run\n\nrun()\n".encode()

_memo_lock = threading.Lock()
_memo: bytes | None = None


def _sources(package_dir: Path) -> list[tuple[str, bytes]]:
    """``(archive name, source)`` of each module of the package, sorted."""
    return sorted(
        (f"{ARCHIVE_PACKAGE}/{path.name}", path.read_bytes())
        for path in package_dir.glob("*.py")
        if not path.name.startswith(".")
    )


def build_archive(package_dir: Path | None = None) -> bytes:
    """The archive's bytes, built afresh from the package's sources."""
    root = package_dir or Path(_supervisor.__file__).resolve().parent
    entries = [("__main__.py", _MAIN), *_sources(root)]
    entries += [(name + "c", compile_pyc(name, data)) for name, data in entries]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.create_system = 3  # Unix, so the mode below is honoured
            info.external_attr = (0o100644 & 0xFFFF) << 16
            zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return out.getvalue()


def archive_bytes() -> bytes:
    """This supervisor's archive, built on the first call of the process and kept."""
    global _memo
    with _memo_lock:
        if _memo is None:
            _memo = build_archive()
        return _memo


def ensure_archive(directory: Path) -> Path:
    """``directory/berth-supervisor-<hash>.pyz`` for this supervisor, written if missing."""
    data = archive_bytes()
    target = directory / f"{_PREFIX}{hashlib.sha256(data).hexdigest()[:_DIGEST_CHARS]}.pyz"
    if target.is_file():
        return target
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            os.fchmod(stream.fileno(), 0o644)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target
