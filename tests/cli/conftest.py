"""Every CLI test runs as on a fresh machine: no login file, no ``BERTH_URL``/
``BERTH_TOKEN`` from the developer's shell, and tables wide enough not to wrap."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The config directory the CLI uses (empty)."""
    folder = tmp_path / "berth-config"
    monkeypatch.setenv("BERTH_CONFIG_DIR", str(folder))
    monkeypatch.delenv("BERTH_URL", raising=False)
    monkeypatch.delenv("BERTH_TOKEN", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return folder
