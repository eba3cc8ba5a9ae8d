"""Real ``berth server`` processes, for tests that need separate interpreters.

:func:`start_server` runs the console script on a free port and returns once the
server says where it runs; :class:`ServerProcesses` stops every one it started (kill or
terminate) and takes down the sandboxes their data dirs left behind.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

BERTH = Path(sys.executable).with_name("berth")
"""The console script of this environment (``pytest.mark.skipif`` when it is missing)."""
WAIT = 60.0


def start_server(
    data_dir: Path, *, database_url: str | None = None, env: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """A running ``berth server`` on 127.0.0.1 and its URL; fails the test if it won't start."""
    argv = [str(BERTH), "server", "--data-dir", str(data_dir), "--address", "127.0.0.1:0"]
    if database_url is not None:
        argv += ["--database-url", database_url]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None
    seen: list[str] = []
    # The server prints where it runs, or exits (and the loop ends); pytest's timeout
    # bounds a server that does neither — and then the server must not outlive the
    # test, which never got it to stop.
    try:
        for line in proc.stdout:
            seen.append(line)
            if match := re.search(r"berth is running at (\S+)", line):
                return proc, match.group(1)
        proc.wait(timeout=WAIT)
    except BaseException:
        stop_server(proc, kill=True)
        raise
    raise AssertionError("berth server did not start:\n" + "".join(seen))


def stop_server(proc: subprocess.Popen[str], *, kill: bool = False) -> None:
    """Stop a server process (SIGTERM, or SIGKILL), waiting for it; close its pipe."""
    if kill:
        proc.kill()
    else:
        proc.terminate()
    try:
        proc.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=WAIT)
    if proc.stdout is not None:
        proc.stdout.close()
