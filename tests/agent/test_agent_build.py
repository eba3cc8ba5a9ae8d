"""The zipapp: reproducible, content-addressed, self-contained, compiled ahead, runnable
without berth on Python 3.9 and later."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from berth.agent.build import (
    ZIPAPP_NAME,
    build_zipapp,
    build_zipapp_bytes,
    ensure_zipapp,
    zipapp_bytes,
    zipapp_digest,
)
from tests.support.agents import SYSTEM_PYTHON, python39


def test_build_is_reproducible(tmp_path: Path) -> None:
    first = build_zipapp(tmp_path / "one")  # a path that does not exist yet: the file
    (tmp_path / "two").mkdir()
    second = build_zipapp(tmp_path / "two")  # a directory: berth-agent.pyz inside it
    assert first == tmp_path / "one"
    assert second == tmp_path / "two" / ZIPAPP_NAME
    assert first.read_bytes() == second.read_bytes() == build_zipapp_bytes()
    assert stat.S_IMODE(second.stat().st_mode) == 0o755
    assert second.read_bytes().startswith(b"#!/usr/bin/env python3\n")


def test_archive_contents(tmp_path: Path) -> None:
    with zipfile.ZipFile(build_zipapp(tmp_path)) as archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        assert names == sorted(names)
        sources = [n for n in names if n.endswith(".py")]
        assert {"__main__.py", "berth/__init__.py", "berth/agent/main.py"} <= set(sources)
        assert "berth/agent/wsclient.py" in sources
        assert not [n for n in names if "_vendor" in n or "__pycache__" in n]
        assert "berth/agent/build.py" not in names
        assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert archive.read("berth/__init__.py").startswith(b'"""berth: only the workspace')
        # Every source, and beside it its bytecode for this Python: PEP 552, hash-based
        # and unchecked (flags 0b01), with the source's hash.
        assert sorted(sources + [n + "c" for n in sources]) == names
        for name in sources:
            source = archive.read(name)
            ast.parse(source, filename=name, feature_version=(3, 9))
            pyc = archive.read(name + "c")
            assert pyc[:4] == importlib.util.MAGIC_NUMBER
            assert pyc[4:8] == b"\x01\x00\x00\x00"
            assert pyc[8:16] == importlib.util.source_hash(source)


def test_the_build_does_not_depend_on_the_process() -> None:
    """Two fresh interpreters (hash seeds differ) build the same bytes as this one, and
    this one still does once more strings are interned (marshal ≥ 3 would differ)."""
    for char in map(chr, range(128)):
        sys.intern(char)
    assert build_zipapp_bytes() == zipapp_bytes()
    script = "import sys; from berth.agent.build import build_zipapp_bytes as b; "
    script += "sys.stdout.buffer.write(b())"
    builds = [
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    ]
    assert builds == [zipapp_bytes(), zipapp_bytes()]


def test_ensure_zipapp_is_content_addressed_and_built_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = zipapp_bytes()
    assert zipapp_bytes() is data  # built once per process
    path = ensure_zipapp(tmp_path / "agent")
    digest = hashlib.sha256(data).hexdigest()[:16]
    assert path == tmp_path / "agent" / f"berth-agent-{digest}.pyz"
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    assert zipapp_digest(path) == digest
    other = tmp_path / "renamed.pyz"
    other.write_bytes(data)
    assert zipapp_digest(other) == digest  # a file named otherwise is hashed
    # The file is there: it is neither rebuilt nor rewritten.
    monkeypatch.setattr("berth.agent.build.build_zipapp_bytes", _must_not_build)
    inode = path.stat().st_ino
    assert ensure_zipapp(tmp_path / "agent") == path
    assert path.stat().st_ino == inode
    assert [p.name for p in (tmp_path / "agent").iterdir()] == [path.name]


def _must_not_build(package_dir: Path | None = None) -> bytes:
    raise AssertionError("the zipapp was built again")


@pytest.mark.parametrize("python", ["system", "python3.9"])
def test_bytecode_is_used_when_it_matches_and_skipped_when_not(tmp_path: Path, python: str) -> None:
    """zipimport loads the ``.pyc`` on the builder's Python and the ``.py`` elsewhere."""
    interpreter = SYSTEM_PYTHON if python == "system" else python39()
    if interpreter is None:
        pytest.skip("no Python 3.9 on this machine (set BERTH_TEST_PYTHON39 to one)")
    pyz = ensure_zipapp(tmp_path)
    probe = "import sys, importlib.util as u; sys.path.insert(0, sys.argv[1]); "
    probe += "import berth.agent.main as m; print(m.__file__, u.MAGIC_NUMBER.hex())"
    shown = subprocess.run(
        [interpreter, "-c", probe, str(pyz)], capture_output=True, check=True, text=True
    )
    loaded, magic = shown.stdout.split()
    matches = bytes.fromhex(magic) == importlib.util.MAGIC_NUMBER
    assert loaded == f"{pyz}/berth/agent/main.py{'c' if matches else ''}"
    if python == "python3.9":
        assert not matches
