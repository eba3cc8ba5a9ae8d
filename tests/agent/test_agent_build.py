"""The zipapp: reproducible, self-contained, Python 3.9 syntax, runnable without berth."""

from __future__ import annotations

import ast
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from berth.agent.build import ZIPAPP_NAME, build_zipapp, build_zipapp_bytes
from berth.agent.main import main

SYSTEM_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


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
        assert {"__main__.py", "berth/__init__.py", "berth/agent/main.py"} <= set(names)
        assert "berth/agent/_vendor/websockets/LICENSE" in names
        assert "berth/agent/_vendor/websockets/sync/client.py" in names
        assert not [n for n in names if "__pycache__" in n or n.endswith((".so", ".c", ".pyc"))]
        assert "berth/agent/build.py" not in names
        assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert archive.read("berth/__init__.py").startswith(b'"""berth: only the workspace')
        for name in names:
            if name.endswith(".py"):
                ast.parse(archive.read(name), filename=name, feature_version=(3, 9))


def test_runs_on_the_system_python_without_berth(tmp_path: Path) -> None:
    pyz = build_zipapp(tmp_path)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    shown = subprocess.run(
        [SYSTEM_PYTHON, str(pyz), "--help"], capture_output=True, env=env, cwd=tmp_path, check=False
    )
    assert shown.returncode == 0, shown.stderr
    assert b"usage: berth-agent" in shown.stdout
    bare = subprocess.run(
        [SYSTEM_PYTHON, str(pyz)], capture_output=True, env=env, cwd=tmp_path, check=False
    )
    assert bare.returncode == 2
    assert bare.stderr == b"berth-agent: BERTH_AGENT_URL (or --url) is not set\n"


def test_main_checks_its_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("BERTH_AGENT_URL", raising=False)
    monkeypatch.setenv("BERTH_AGENT_TOKEN", "secret")
    assert main([]) == 2
    assert "BERTH_AGENT_URL (or --url) is not set" in capsys.readouterr().err
    assert "BERTH_AGENT_TOKEN" not in os.environ  # read once, then hidden from children
    assert main(["--url", "http://h"]) == 2
    assert "BERTH_AGENT_TOKEN (or --token) is not set" in capsys.readouterr().err
    assert main(["--url", "ftp://h", "--token", "t"]) == 2
    assert "must start with http://, https://, ws:// or wss://" in capsys.readouterr().err
