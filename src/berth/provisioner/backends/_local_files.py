"""The local backend's state dir: where a workspace's files are, and reading and removing them.

See :mod:`berth.provisioner.backends.local` for the layout.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Paths", "is_uuid", "load_json", "read_state", "remove_tree", "write_state"]


@dataclass(frozen=True, slots=True)
class Paths:
    root: Path
    workspace_id: uuid.UUID

    @property
    def home(self) -> Path:
        return self.root / "homes" / str(self.workspace_id)

    @property
    def run(self) -> Path:
        return self.root / "sandboxes" / str(self.workspace_id)

    @property
    def state(self) -> Path:
        return self.run / "sandbox.json"

    @property
    def log(self) -> Path:
        return self.run / "sandbox.log"

    @property
    def supervisor_dir(self) -> Path:
        """Where the supervisor's zipapps are (``_supervisor_zip``), shared by all workspaces."""
        return self.root / "supervisor"

    @property
    def disk_image(self) -> Path:
        """The home's file system image, when the template sets ``disk``."""
        return self.root / "homes" / f"{self.workspace_id}.img"


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def load_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None  # pyright: ignore[reportUnknownVariableType]


def read_state(paths: Paths) -> dict[str, Any] | None:
    return load_json(paths.state)


def write_state(paths: Paths, handle: dict[str, Any]) -> None:
    tmp = paths.state.with_suffix(".tmp")
    tmp.write_text(json.dumps(handle))
    tmp.replace(paths.state)


def remove_tree(path: Path) -> None:
    """``rm -rf``, including files and directories the workspace made read-only."""

    def retry(func: Any, target: str, _exc: object) -> None:
        parent = os.path.dirname(target)
        with contextlib.suppress(OSError):
            os.chmod(parent, stat.S_IRWXU)
        with contextlib.suppress(OSError):
            if not os.path.islink(target):
                os.chmod(target, stat.S_IRWXU)
        func(target)

    if not path.exists() and not path.is_symlink():
        return
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=retry)
    else:
        shutil.rmtree(path, onerror=retry)
