"""Build the agent zipapp: the agent, stdlib only, sources and bytecode in one file.

A workspace image is only promised ``python3`` (≥ 3.9), so the agent ships as a
zipapp that needs nothing installed: ``python3 berth-agent.pyz --url … --token …``.
The archive holds ``berth/agent`` (without caches or this builder) under a stub
``berth/__init__.py``, so it never imports the rest of berth, plus a ``__main__.py``.

Each ``.py`` has its ``.pyc`` beside it, compiled by the Python that builds the archive
(PEP 552 unchecked-hash bytecode: no timestamps, nothing to validate). zipimport uses
a ``.pyc`` when its magic number is the running interpreter's and falls back to
compiling the ``.py`` otherwise, so a workspace on the builder's Python version starts
without compiling the agent, and any other version (3.9 on) still runs it.

The output is byte-for-byte reproducible for a given Python version — entries sorted,
timestamps fixed at 1980-01-01, permissions normalized, one compression level, and
bytecode that embeds archive names, never paths, times or the builder's state — so it
is named by its hash: :func:`ensure_zipapp` builds the bytes once per process and
writes ``berth-agent-<hash>.pyz`` only when no such file exists; the server serves it
with that hash as a strong ETag (:func:`zipapp_digest`), and an unchanged agent is
never downloaded again by a provisioner that has it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import marshal
import os
import tempfile
import threading
import zipapp
import zipfile
from pathlib import Path

ZIPAPP_NAME = "berth-agent.pyz"
ZIPAPP_PREFIX = "berth-agent-"
DIGEST_CHARS = 16
"""Hex digits of the archive's SHA-256 in its file name and ETag."""
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

_memo_lock = threading.Lock()
_memo: bytes | None = None


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


def compile_pyc(name: str, source: bytes) -> bytes:
    """``source`` as an unchecked hash-based ``.pyc`` (PEP 552) for this interpreter.

    The code's file name is ``name``, the archive name (tracebacks still show source
    lines: they come from the zipimporter). Marshal format 2, because formats 3 and up
    depend on the state of the building process — whether an object has other
    references, whether a string happens to be interned — so the same source could
    give different bytes; format 2 has no references and loads as fast.
    """
    code = compile(source, name, "exec", dont_inherit=True, optimize=0)
    flags = (0b01).to_bytes(4, "little")  # hash-based, not checked against the source
    return (
        importlib.util.MAGIC_NUMBER
        + flags
        + importlib.util.source_hash(source)
        + marshal.dumps(code, 2)
    )


def _entry(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, so the mode below is honoured
    info.external_attr = (0o100644 & 0xFFFF) << 16
    zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


def build_zipapp_bytes(package_dir: Path | None = None) -> bytes:
    """The zipapp's bytes (shebang line included), built afresh."""
    entries: list[tuple[str, bytes]] = [
        ("__main__.py", _MAIN),
        ("berth/__init__.py", _ROOT_INIT),
    ]
    entries += [(name, path.read_bytes()) for name, path in agent_files(package_dir)]
    entries += [
        (name + "c", compile_pyc(name, data)) for name, data in entries if name.endswith(".py")
    ]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in sorted(entries):
            _entry(zf, name, data)
    archive.seek(0)
    out = io.BytesIO()
    zipapp.create_archive(archive, out, interpreter=INTERPRETER)
    return out.getvalue()


def zipapp_bytes() -> bytes:
    """This agent's zipapp, built on the first call of the process and kept."""
    global _memo
    with _memo_lock:
        if _memo is None:
            _memo = build_zipapp_bytes()
        return _memo


def digest(data: bytes) -> str:
    """The hash that names a zipapp: the start of its SHA-256, in hex."""
    return hashlib.sha256(data).hexdigest()[:DIGEST_CHARS]


def ensure_zipapp(directory: Path) -> Path:
    """``directory/berth-agent-<hash>.pyz`` for this agent, written only if missing.

    The bytes are built once per process (:func:`zipapp_bytes`); an existing file of
    that name already holds them, since the name is their hash.
    """
    data = zipapp_bytes()
    target = directory / f"{ZIPAPP_PREFIX}{digest(data)}.pyz"
    if not target.is_file():
        _write(target, data)
    return target


def zipapp_digest(path: Path) -> str:
    """The hash of a zipapp file: read from the name :func:`ensure_zipapp` gave it, or
    computed for a file named otherwise."""
    middle = path.name[len(ZIPAPP_PREFIX) : -len(".pyz")]
    named = path.name.startswith(ZIPAPP_PREFIX) and path.name.endswith(".pyz")
    if named and len(middle) == DIGEST_CHARS and all(c in "0123456789abcdef" for c in middle):
        return middle
    return digest(path.read_bytes())


def build_zipapp(dest: Path) -> Path:
    """Write the zipapp to ``dest`` (a file, or a directory to put ``berth-agent.pyz`` in).

    Returns the path written. :func:`ensure_zipapp` is what servers use.
    """
    target = dest / ZIPAPP_NAME if dest.is_dir() else dest
    _write(target, zipapp_bytes())
    return target


def _write(target: Path, data: bytes) -> None:
    """Replace ``target`` atomically (mode 0755), so no reader ever sees half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            os.fchmod(stream.fileno(), 0o755)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
