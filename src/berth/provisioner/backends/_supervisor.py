"""The process berth leaves running for each workspace: it starts the agents and keeps them up.

This file is a standalone script (standard library only, Python >= 3.9, because it
runs under the workspace's own ``python3``). It has two modes:

``keeper`` (on the host; local backend). The server starts it with its config as JSON
on stdin. It detaches (fork + ``setsid``) so that it, and the sandbox under it,
survive a server restart; reports ``{"ok": true, "keeper_pid", "keeper_start",
"init_pid", "init_start", "pid_ns"}`` (or ``{"ok": false, "error"}``) as one JSON line
on stdout; then sends its own and the sandbox's output to the workspace's log file.
With a ``bwrap`` command it runs that (the sandbox runs this file again as ``inner``)
and exits when it exits. Without one (``isolation: none``) it runs the agents itself.
With a ``relay`` it also accepts connections on a Unix socket, which is bound into a
sandbox that has no network, and forwards each to the server's TCP address.

``inner`` (inside a bwrap sandbox or a Docker container). Its config arrives in the
environment variable ``BERTH_SANDBOX_CONFIG`` and is removed before any agent starts.
With a ``relay`` it listens on ``127.0.0.1:<port>`` in the sandbox's own network
namespace and forwards each connection to the Unix socket the keeper serves.

In both modes the supervisor starts one process per agent, restarts an agent that
exits with an error (1 s backoff, doubling to 30 s; an agent that exits 0 meant to),
forwards SIGTERM/SIGINT/SIGHUP to the agents and exits once they have, and reaps every
child so it can serve as a container's PID 1. With no agents it waits for a signal.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, cast

CONFIG_ENV = "BERTH_SANDBOX_CONFIG"
_RESTART_FIRST = 1.0
_RESTART_MAX = 30.0
_HEALTHY_AFTER = 60.0


def _say(message: str) -> None:
    sys.stderr.write(f"berth-supervisor: {message}\n")
    sys.stderr.flush()


def _start_time(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        raw = f.read()
    return int(raw[raw.rindex(")") + 2 :].split()[19])


# --- agents ---------------------------------------------------------------------


class _Agent:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.name = str(spec["name"])
        self.argv = [str(a) for a in cast("list[Any]", spec["argv"])]
        # The agent inherits the supervisor's environment (a container image's PATH, LANG,
        # ...) with its own variables on top.
        self.env = dict(os.environ)
        self.env.update({str(k): str(v) for k, v in cast("dict[str, Any]", spec["env"]).items()})
        self.cwd = str(spec.get("cwd") or "/")
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.backoff = _RESTART_FIRST
        self.restart_at: float | None = None
        self.done = False

    def start(self) -> None:
        self.restart_at = None
        self.started_at = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL
            )
        except OSError as err:
            _say(f"cannot start agent {self.name}: {err}")
            self.proc = None
            self._schedule_restart()

    def exited(self, status: int, stopping: bool) -> None:
        code = os.waitstatus_to_exitcode(status)
        if self.proc is not None:
            self.proc.returncode = code  # reaped by us, not by Popen.wait
        self.proc = None
        if code == 0 or stopping:
            _say(f"agent {self.name} exited with {code}")
            self.done = True
            return
        if time.monotonic() - self.started_at >= _HEALTHY_AFTER:
            self.backoff = _RESTART_FIRST
        _say(f"agent {self.name} exited with {code}; restarting in {self.backoff:g}s")
        self._schedule_restart()

    def _schedule_restart(self) -> None:
        self.restart_at = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, _RESTART_MAX)


def supervise(specs: list[dict[str, Any]]) -> int:
    """Run the agents until they finish or a stop signal arrives; return the exit code."""
    agents = [_Agent(s) for s in specs]
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    stopping: list[bool] = []

    def on_stop(signum: int, _frame: object) -> None:
        stopping.append(True)
        for agent in agents:
            if agent.proc is not None:
                # Not Popen.send_signal: it polls, and would reap an agent that already
                # died behind _reap's back, leaving it "running" forever.
                with contextlib.suppress(OSError):
                    os.kill(agent.proc.pid, signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_stop)
    signal.signal(signal.SIGCHLD, lambda _s, _f: None)  # wake select on child exit
    for agent in agents:
        if not stopping:
            agent.start()
    while True:
        _reap(agents, bool(stopping))
        running = [a for a in agents if a.proc is not None]
        if stopping:
            if not running:
                _kill_descendants()
                return 0
        else:
            now = time.monotonic()
            for agent in agents:
                if agent.restart_at is not None and agent.restart_at <= now:
                    agent.start()
            if agents and all(a.done for a in agents):
                return 0
        due = [a.restart_at for a in agents if a.restart_at is not None and not stopping]
        timeout = max(0.0, min(due) - time.monotonic()) if due else None
        try:
            select.select([wake_r], [], [], timeout)
            os.read(wake_r, 4096)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EINTR):
                raise


def _kill_descendants() -> None:
    """SIGKILL what the agents left behind, even in sessions of their own.

    As a keeper (``isolation: none``) this process is a child subreaper, so orphans
    of the agents are re-parented to it and are found here; in a container it is PID 1.
    """
    me = os.getpid()
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    raw = f.read()
            except OSError:
                continue
            parents[int(name)] = int(raw[raw.rindex(")") + 2 :].split()[1])
    for pid in parents:
        ancestor, hops = parents.get(pid), 0
        while ancestor and ancestor != me and hops < 256:
            ancestor, hops = parents.get(ancestor), hops + 1
        if ancestor == me:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _reap(agents: list[_Agent], stopping: bool) -> None:
    by_pid = {a.proc.pid: a for a in agents if a.proc is not None}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        agent = by_pid.get(pid)
        if agent is not None:
            agent.exited(status, stopping)


# --- relay ----------------------------------------------------------------------


def _pump(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until both sides are done, then close both."""
    open_ends = {a: b, b: a}
    try:
        while open_ends:
            readable, _, _ = select.select(list(open_ends), [], [])
            for src in readable:
                data = src.recv(65536)
                dst = open_ends[src]
                if data:
                    dst.sendall(data)
                else:
                    del open_ends[src]
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        a.close()
        b.close()


def _serve(listener: socket.socket, connect: Callable[[], socket.socket]) -> None:
    while True:
        conn, _ = listener.accept()
        try:
            upstream = connect()
        except OSError as err:
            _say(f"relay cannot reach the server: {err}")
            conn.close()
            continue
        threading.Thread(target=_pump, args=(conn, upstream), daemon=True).start()


def _start_relay(listener: socket.socket, connect: Callable[[], socket.socket]) -> None:
    threading.Thread(target=_serve, args=(listener, connect), daemon=True).start()


def _host_relay(relay: dict[str, Any]) -> None:
    path = str(relay["socket"])
    host, port = str(relay["connect"][0]), int(relay["connect"][1])
    # A socket path is limited to ~100 bytes and state dirs can be deep: bind by a
    # relative name from inside the directory (the keeper's cwd matters to nothing else).
    directory, name = os.path.split(path)
    os.chdir(directory)
    if os.path.lexists(name):
        os.unlink(name)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(name)
    os.chmod(name, 0o666)  # noqa: S103 - the sandbox user must connect to it
    listener.listen(64)
    _start_relay(listener, lambda: socket.create_connection((host, port)))


def _sandbox_relay(relay: dict[str, Any]) -> None:
    path = str(relay["socket"])

    def connect() -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        return s

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(relay["listen"])))
    listener.listen(64)
    _start_relay(listener, connect)


# --- modes ----------------------------------------------------------------------


def _report(payload: dict[str, Any]) -> None:
    os.write(1, (json.dumps(payload) + "\n").encode())


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


def _tail(path: str, offset: int, limit: int = 2000) -> str:
    with open(path, "rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace").strip()
    return text[-limit:]


def keeper(config: dict[str, Any]) -> int:
    """Detach, report, then run the sandbox (or the agents) until it ends."""
    if os.fork():
        os._exit(0)
    os.setsid()
    _become_subreaper()  # orphans of the sandbox or of the agents come to us
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    log_path = str(config["log"])
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    me = {"keeper_pid": os.getpid(), "keeper_start": _start_time(os.getpid())}
    fds = [int(fd) for fd in cast("list[Any]", config.get("fds") or [])]
    try:
        if config.get("relay"):
            _host_relay(cast("dict[str, Any]", config["relay"]))
        bwrap = cast("list[str] | None", config.get("bwrap"))
        if not bwrap:
            _report(dict(me, ok=True, init_pid=None, init_start=None, pid_ns=None))
            _detach_output(log_fd)
            return supervise(cast("list[dict[str, Any]]", config["agents"]))
        info_r, info_w = os.pipe()
        offset = os.lseek(log_fd, 0, os.SEEK_END)
        proc = subprocess.Popen(
            [bwrap[0], "--info-fd", str(info_w), *bwrap[1:]],
            env=cast("dict[str, str]", config["bwrap_env"]),
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            pass_fds=[info_w, *fds],
        )
        os.close(info_w)
        for fd in fds:
            os.close(fd)
        info = _read_json(info_r)
        os.close(info_r)
        if info is None:
            code = proc.wait()
            error = f"bwrap exited with {code}: {_tail(log_path, offset)}"
            _report({"ok": False, "error": error})
            return 1
        init_pid = int(info["child-pid"])
        init = {"init_pid": init_pid, "init_start": _start_time(init_pid)}
        _report(dict(me, ok=True, pid_ns=int(info["pid-namespace"]), **init))
    except Exception as err:  # report anything; the server shows it as the build error
        _report({"ok": False, "error": f"{type(err).__name__}: {err}"})
        return 1
    _detach_output(log_fd)
    code = proc.wait()
    _reap_orphans()
    return code


def _reap_orphans() -> None:
    """Wait for the sandbox's init, which bwrap may leave behind for us (we are its subreaper).

    Without this it would end as a zombie under the host's PID 1, which on some hosts
    (containers, minimal VMs) never reaps.
    """
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def _become_subreaper() -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _detach_output(log_fd: int) -> None:
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)


def inner(config: dict[str, Any]) -> int:
    """Run inside the sandbox or container: the relay (if any) and the agents."""
    os.closerange(3, 1024)  # nothing the sandbox inherited (bwrap's fds) goes further
    if config.get("relay"):
        _sandbox_relay(cast("dict[str, Any]", config["relay"]))
    return supervise(cast("list[dict[str, Any]]", config["agents"]))


def main(argv: list[str]) -> int:
    if argv[1:] == ["keeper"]:
        return keeper(cast("dict[str, Any]", json.load(sys.stdin)))
    if argv[1:] == ["inner"]:
        return inner(cast("dict[str, Any]", json.loads(os.environ.pop(CONFIG_ENV))))
    _say(f"usage: {argv[0]} keeper|inner")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
