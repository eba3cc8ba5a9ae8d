"""Build ``berth-agent.pyz``: the agent and its vendored websockets in one file.

A workspace image is only promised ``python3`` (≥ 3.9), so the agent ships as a
zipapp that needs nothing installed: ``python3 berth-agent.pyz --url … --token …``.
The archive holds ``berth/agent`` (without caches or this builder) under a stub
``berth/__init__.py``, so it never imports the rest of berth, plus a ``__main__.py``.

The output is byte-for-byte reproducible — entries sorted, timestamps fixed at
1980-01-01, permissions normalized, one compression level — so the server can name
and cache it by its hash and an unchanged agent is never re-uploaded to a workspace.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipapp
import zipfile
from pathlib import Path

ZIPAPP_NAME = "berth-agent.pyz"
INTERPRETER = "/usr/bin/env python3"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = {".pyc", ".pyo", ".so", ".c", ".pyi"}
_SKIP_FILES = {"build.py"}  # the builder is not needed inside a workspace

_ROOT_INIT = b'"""berth: only the workspace agent is in this archive."""\n'
_MAIN = b"""import sys

from berth.agent.main import main

sys.exit(main())
"""


def agent_files(package_dir: Path | None = None) -> list[tuple[str, Path]]:
    """``(archive name, file)`` for every file of the agent package, sorted by name."""
    root = package_dir or Path(__file__).resolve().parent
    found: list[tuple[str, Path]] = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in filenames:
            path = Path(directory) / name
            rel = path.relative_to(root)
            if path.suffix in _SKIP_SUFFIXES or name.startswith("."):
                continue
            if len(rel.parts) == 1 and name in _SKIP_FILES:
                continue
            found.append(("berth/agent/" + rel.as_posix(), path))
    return sorted(found)


def _entry(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, so the mode below is honoured
    info.external_attr = (0o100644 & 0xFFFF) << 16
    zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


def build_zipapp_bytes(package_dir: Path | None = None) -> bytes:
    """The zipapp's bytes (shebang line included)."""
    entries: list[tuple[str, bytes]] = [
        ("__main__.py", _MAIN),
        ("berth/__init__.py", _ROOT_INIT),
    ]
    entries += [(name, path.read_bytes()) for name, path in agent_files(package_dir)]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in sorted(entries):
            _entry(zf, name, data)
    archive.seek(0)
    out = io.BytesIO()
    zipapp.create_archive(archive, out, interpreter=INTERPRETER)
    return out.getvalue()


def build_zipapp(dest: Path) -> Path:
    """Write the zipapp to ``dest`` (a file, or a directory to put ``berth-agent.pyz`` in).

    The file is replaced atomically, so a server serving it never sends half of one.
    Returns the path written.
    """
    target = dest / ZIPAPP_NAME if dest.is_dir() else dest
    target.parent.mkdir(parents=True, exist_ok=True)
    data = build_zipapp_bytes()
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            os.fchmod(stream.fileno(), 0o755)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target
