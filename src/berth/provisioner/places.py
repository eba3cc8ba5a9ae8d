"""Naming where sandboxes live, for host affinity (DESIGN §6).

A workspace's resources stay where its first build made them, so each backend names
that place (:meth:`berth.provisioner.spec.Backend.place`) and the server routes the
workspace's later builds only to workers that report the same id. An id is a digest of
what makes a place (a machine and a directory, an engine), so it is short and fixed in
length for the database, and never shows a path; the label shows it to a person.
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

from berth.provisioner.spec import Place

__all__ = ["host_place", "machine_identity", "place_id"]

_MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")
LABEL_MAX = 512


def place_id(backend: str, *parts: str) -> str:
    """``<backend>:<32 hex>``: the same parts give the same id, on every host."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]
    return f"{backend}:{digest}"


def machine_identity() -> str:
    """This machine's systemd/D-Bus machine id, else its host name.

    The machine id stays when the host is renamed and differs between machines that
    share a name; a host without one (a minimal container) falls back to its name.
    """
    for path in _MACHINE_ID_FILES:
        try:
            text = Path(path).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text:
            return f"machine-id:{text}"
    return f"hostname:{socket.gethostname()}"


def host_place(backend: str, state_dir: Path, *, prefix: str = "") -> Place:
    """Sandboxes kept under ``state_dir`` on this machine (the local backend's place).

    Two servers on one machine with the same state directory reach the same sandboxes
    (their keepers, pid files and homes are there); another directory or another
    machine does not.
    """
    resolved = state_dir.expanduser().resolve()
    label = f"{prefix}{socket.gethostname()}:{resolved}"
    return Place(place_id(backend, machine_identity(), str(resolved)), label[:LABEL_MAX])
