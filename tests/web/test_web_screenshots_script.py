"""``scripts/screenshots.py`` runs: the README's pictures can be made again.

The script is the only thing that exercises the demo it stages (a workspace made from
the form, a chat's workspace made over MCP, a prebuild): if a page or a selector it
waits on changes, this fails here rather than the next time someone needs new pictures.
"""

from __future__ import annotations

import importlib.util
import shutil
import struct
from pathlib import Path
from types import ModuleType

import pytest

from tests.web.conftest import CHROMIUM

pytestmark = [
    pytest.mark.xdist_group("web-browser"),
    pytest.mark.bwrap,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not on PATH"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing"),
]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshots.py"
PAGES = {
    "login",
    "templates",
    "template",
    "workspace-new",
    "workspace",
    "workspaces",
    "chats",
    "chat",
    "admin",
}


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("berth_screenshots", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_the_script_makes_a_picture_of_every_page(tmp_path: Path) -> None:
    assert _load().main(["--out", str(tmp_path)]) == 0
    made = {p.stem: p for p in tmp_path.glob("*.png")}
    assert set(made) == PAGES
    for name, path in made.items():
        width, height = _png_size(path)
        assert width == 1280, name
        assert height >= 800, name
