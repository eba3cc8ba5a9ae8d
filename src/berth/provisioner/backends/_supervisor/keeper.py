"""The supervisor's modes on the host: ``keeper``, ``oneshot`` and ``join``.

``keeper`` (local backend). The server starts it with its config as JSON on stdin. It
detaches (fork + ``setsid``) so that it, and the sandbox under it, survive a server
restart; moves itself into the workspace's ``agent`` cgroups (see ``_cgroups``);
reports ``{"ok": true, "keeper_pid", "keeper_start", "init_pid", "init_start",
"pid_ns"}`` (or ``{"ok": false, "error"}``) as one JSON line on stdout; then sends its
own and the sandbox's output to the workspace's log file. With a ``bwrap`` command it
runs that (the sandbox runs this package again as ``inner``, as its PID 1) and exits
when it exits; the inner config (which holds the agent tokens) goes to the sandbox on
a pipe, never in an environment. Without one (``isolation: none``) it runs the agents
itself. With a ``relay`` it also serves the host half of :mod:`.relay`; with a ``net``
the sandbox gets :mod:`.network`.

``oneshot``: the template's ``prepare`` in a sandbox of its own, in the workspace's
``workload`` cgroups, with the network of the workspace; its output is this process's,
and its exit code too. It belongs to the build: it dies with the server that started
it (``PR_SET_PDEATHSIG``; bwrap's ``--die-with-parent`` then takes the sandbox along,
and slirp4netns goes when its exit pipe closes).

``join``: enter the given cgroups, then execute the given command (``prepare`` with
``isolation: none``).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from typing import Any, cast

from . import CONFIG_FD_ENV
from .process import become_subreaper, say, start_time
from .relay import host_relay
from .sandbox import Sandbox, join_cgroups, tail
from .supervision import supervise

__all__ = ["join", "keeper", "oneshot"]


def _report(payload: dict[str, Any]) -> None:
    os.write(1, (json.dumps(payload) + "\n").encode())


def _config_pipe(data: bytes) -> int:
    """A pipe whose read end (returned) yields ``data``; written by a thread, then closed."""
    read_end, write_end = os.pipe()

    def write() -> None:
        with contextlib.suppress(OSError):
            view = memoryview(data)
            while view:
                view = view[os.write(write_end, view) :]
        os.close(write_end)

    threading.Thread(target=write, daemon=True).start()
    return read_end


def keeper(config: dict[str, Any]) -> int:
    """Detach, report, then run the sandbox (or the agents) until it ends."""
    if os.fork():
        os._exit(0)
    os.setsid()
    become_subreaper()  # orphans of the sandbox or of the agents come to us
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    log_path = str(config["log"])
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    me = {"keeper_pid": os.getpid(), "keeper_start": start_time(os.getpid())}
    fds = [int(fd) for fd in cast("list[Any]", config.get("fds") or [])]
    cgroup = cast("dict[str, Any]", config.get("cgroup") or {})
    workload_fds = [int(fd) for fd in cast("list[Any]", cgroup.get("workload_fds") or [])]
    try:
        join_cgroups([str(p) for p in cast("list[Any]", cgroup.get("join") or [])])
        if config.get("relay"):
            host_relay(cast("dict[str, Any]", config["relay"]))
        if not config.get("bwrap"):
            _report(dict(me, ok=True, init_pid=None, init_start=None, pid_ns=None))
            _detach_output(log_fd)
            agents = cast("list[dict[str, Any]]", config["agents"])
            return supervise(agents, workload_fds)
        offset = os.lseek(log_fd, 0, os.SEEK_END)
        config_fd = _config_pipe(json.dumps(config["inner"]).encode())
        env = dict(cast("dict[str, str]", config["bwrap_env"]))
        env[CONFIG_FD_ENV] = str(config_fd)
        try:
            sandbox = Sandbox(
                config,
                stdout=log_fd,
                stderr=log_fd,
                env=env,
                pass_fds=[config_fd, *fds, *workload_fds],
                log_fd=log_fd,
            )
        finally:
            os.close(config_fd)
            for fd in (*fds, *workload_fds):
                os.close(fd)
        info = sandbox.info
        if info is None:
            code = sandbox.wait()
            error = f"bwrap exited with {code}: {tail(log_path, offset)}"
            _report({"ok": False, "error": error})
            return 1
        if sandbox.network is not None:
            sandbox.network.follow_host_addresses()
        init_pid = int(info["child-pid"])
        init = {"init_pid": init_pid, "init_start": start_time(init_pid)}
        _report(dict(me, ok=True, pid_ns=int(info["pid-namespace"]), **init))
    except Exception as err:  # report anything; the server shows it as the build error
        _report({"ok": False, "error": f"{type(err).__name__}: {err}"})
        return 1
    _detach_output(log_fd)
    code = sandbox.wait()
    _reap_orphans()
    return code


def oneshot(config: dict[str, Any]) -> int:
    """Run one sandboxed command (``prepare``) with the workspace's limits and network.

    The caller has made this process die with its parent already (before reading the
    config); ``parent_pid`` in the config closes the race of a server that died before
    that took effect.
    """
    parent = config.get("parent_pid")
    if parent is not None and os.getppid() != int(parent):
        say("the build that started this prepare is gone")
        return 125
    cgroup = cast("dict[str, Any]", config.get("cgroup") or {})
    fds = [int(fd) for fd in cast("list[Any]", config.get("fds") or [])]
    quiet = os.open(os.devnull, os.O_WRONLY)  # slirp4netns chatter is not prepare's output
    try:
        join_cgroups([str(p) for p in cast("list[Any]", cgroup.get("join") or [])])
        sandbox = Sandbox(
            config,
            stdout=None,
            stderr=None,
            env=cast("dict[str, str]", config["bwrap_env"]),
            pass_fds=fds,
            log_fd=quiet,
        )
    except Exception as err:
        say(f"could not start the sandbox: {type(err).__name__}: {err}")
        return 125
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
    return sandbox.wait()


def join(argv: list[str]) -> int:
    """``join CGROUP_PROCS... -- COMMAND...``: enter those cgroups, then become COMMAND."""
    split = argv.index("--")
    join_cgroups(argv[:split])
    command = argv[split + 1 :]
    os.execvp(command[0], command)  # noqa: S606 - the command is ours (prepare)


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


def _detach_output(log_fd: int) -> None:
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
