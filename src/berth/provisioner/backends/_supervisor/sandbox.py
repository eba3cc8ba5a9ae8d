"""Starting one bwrap sandbox: its info, its network, and the cgroups it starts in.

bwrap reports the sandbox's init pid and PID namespace on ``--info-fd``. A sandbox
with a network starts blocked (``--block-fd``) until :class:`~.network.Network` has
connected it and installed its packet filter, so nothing runs in it unfiltered.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from typing import Any, cast

from .network import Network

__all__ = ["Sandbox", "join_cgroups", "tail"]


def _read_json(fd: int) -> dict[str, Any] | None:
    """Read one JSON object from ``fd`` (bwrap's --info-fd), or None at EOF without one."""
    data = b""
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        data += chunk
        try:
            return cast("dict[str, Any]", json.loads(data))
        except ValueError:
            continue


def tail(path: str, offset: int, limit: int = 2000) -> str:
    """The end of the text ``path`` holds past ``offset`` (what bwrap said on failing)."""
    with open(path, "rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace").strip()
    return text[-limit:]


class Sandbox:
    """One bwrap sandbox: started blocked when it has a network, released once it is set up."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        stdout: int | None,
        stderr: int | None,
        env: dict[str, str],
        pass_fds: list[int],
        log_fd: int,
    ) -> None:
        bwrap = cast("list[str]", config["bwrap"])
        net = cast("dict[str, Any] | None", config.get("net"))
        info_r, info_w = os.pipe()
        argv = [bwrap[0], "--info-fd", str(info_w)]
        block_r = block_w = None
        if net:
            block_r, block_w = os.pipe()
            argv += ["--block-fd", str(block_r)]
        fds = [info_w, *pass_fds] + ([] if block_r is None else [block_r])
        self.network: Network | None = None
        try:
            self.proc = subprocess.Popen(
                [*argv, *bwrap[1:]],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                pass_fds=fds,
            )
        finally:
            os.close(info_w)
            if block_r is not None:
                os.close(block_r)
        info = _read_json(info_r)
        os.close(info_r)
        self.info = info
        if info is None or not net or block_w is None:
            if block_w is not None:
                os.close(block_w)
            return
        child = int(info["child-pid"])
        try:
            self.network = Network(net, child, log_fd)
            self.network.start()
        except BaseException:
            # Kill the blocked child before it may go on (closing block_w releases it).
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGKILL)
            os.close(block_w)
            self.proc.wait()
            if self.network is not None:
                self.network.stop()
            raise
        os.write(block_w, b"1")
        os.close(block_w)

    def wait(self) -> int:
        code = self.proc.wait()
        if self.network is not None:
            self.network.stop()
        return code


def join_cgroups(paths: list[str]) -> None:
    """Move this process into each ``cgroup.procs`` of ``paths`` (its children follow)."""
    for path in paths:
        with open(path, "w") as f:
            f.write("0")
