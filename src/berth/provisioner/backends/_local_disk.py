"""A home of bounded size (``backend.disk``), and how much of its disk a home uses.

The home gets an ext4 file system of its own in ``homes/<workspace_id>.img`` (sparse),
loop-mounted on the home directory; that needs the server to run as root and
e2fsprogs on the host. The file system is grown when the template asks for more, and
never shrunk.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

from berth.provisioner.backends._local_files import Paths, remove_tree

__all__ = ["DiskError", "disk_tools_missing", "home_usage", "mount_disk_home", "unmount_disk_home"]

_TAIL_CHARS = 4000


class DiskError(Exception):
    """The home's size cannot be what the template asks (the message says why)."""


def disk_tools_missing() -> list[str]:
    """What a loop-mounted home needs and this host lacks."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    needed = ("mkfs.ext4", "e2fsck", "resize2fs", "mount", "umount")
    return [name for name in needed if shutil.which(name, path=path) is None]


def _tool(name: str) -> str:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which(name, path=path) or name


def _run(*argv: str) -> None:
    done = subprocess.run(
        [_tool(argv[0]), *argv[1:]], capture_output=True, text=True, check=False, timeout=600
    )
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()[-_TAIL_CHARS:]
        raise DiskError(f"{' '.join(argv[:2])} failed: {detail}")


def mount_disk_home(
    paths: Paths, size: int, owner: tuple[int, int]
) -> tuple[list[str], str | None]:
    """Give the home a file system of its own, ``size`` bytes, loop-mounted.

    Returns notes for the build log and a problem (or None): the image is
    ``homes/<workspace_id>.img`` (sparse); a home that has files already is copied
    into a new image; an image smaller than ``size`` is grown; one larger is kept
    (shrinking could lose files), which is the problem. Raises :class:`DiskError`.
    """
    notes: list[str] = []
    image = paths.disk_image
    if os.path.ismount(paths.home):
        _run("umount", str(paths.home))
    if not image.exists():
        fresh = image.with_suffix(".new")
        with open(fresh, "wb") as f:
            f.truncate(size)
        uid, gid = owner
        _run("mkfs.ext4", "-q", "-F", "-m", "0", "-E", f"root_owner={uid}:{gid}", str(fresh))
        if any(paths.home.iterdir()):
            _copy_into(paths, fresh)
            notes.append("moved the existing home into a file system of its own")
        fresh.rename(image)
    current = image.stat().st_size
    if size > current:
        with open(image, "r+b") as f:
            f.truncate(size)
        _run("e2fsck", "-f", "-p", str(image))
        _run("resize2fs", str(image))
        notes.append(f"grew the home to {size} bytes")
    _run("mount", "-o", "loop,nosuid,nodev", str(image), str(paths.home))
    with contextlib.suppress(OSError):
        (paths.home / "lost+found").rmdir()
    if size < current:
        return notes, (
            f"disk: the home is {current} bytes and is not shrunk to {size} (that could lose files)"
        )
    return notes, None


def _copy_into(paths: Paths, image: Path) -> None:
    staging = paths.run / "home-staging"
    staging.mkdir(mode=0o700, exist_ok=True)
    _run("mount", "-o", "loop", str(image), str(staging))
    try:
        _run("cp", "-a", f"{paths.home}/.", str(staging))
        with contextlib.suppress(OSError):
            (staging / "lost+found").rmdir()
    finally:
        _run("umount", str(staging))
        staging.rmdir()
    for entry in list(paths.home.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            remove_tree(entry)
        else:
            entry.unlink()


def unmount_disk_home(home: Path) -> None:
    """Unmount a loop-mounted home (lazily if something still holds it)."""
    if not os.path.ismount(home):
        return
    try:
        _run("umount", str(home))
    except DiskError:
        _run("umount", "-l", str(home))


def home_usage(home: Path) -> int:
    """Bytes the home uses on disk (its file system's, when it has one of its own)."""
    if os.path.ismount(home):
        vfs = os.statvfs(home)
        return (vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize
    seen: set[tuple[int, int]] = set()
    total = 0
    stack = [str(home)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            total += info.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
    return total
