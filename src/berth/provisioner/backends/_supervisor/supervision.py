"""The supervisor's loop: it starts the agents, keeps them up, and stops with them.

It forwards stop signals to the agents and exits once they have, and reaps every
child: its agents, and the background processes they handed over (whose exit it tells
their agent). As a sandbox's PID 1 it cannot be stopped or killed from inside (the
kernel ignores SIGSTOP and SIGKILL sent to a namespace's init from within it), and it
honours SIGTERM, SIGINT and SIGHUP only from outside (the sender's pid, as the sandbox
sees it, is 0), so workspace code cannot take it down.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from typing import Any

from . import WATCHDOG_SECONDS
from .agents import Agent
from .process import say, stat_fields

__all__ = ["block_stop_signals", "supervise"]

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class _StopSignals:
    """Where stop signals arrive: a handler (on the host), or a checked wait (as PID 1)."""

    def __init__(self, from_outside_only: bool) -> None:
        self.received: list[int] = []
        self.wake_r, self.wake_w = os.pipe()
        for fd in (self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda _s, _f: None)  # wakes select on child exit
        if from_outside_only:
            # Blocked in every thread (they inherit the mask) and taken by one thread
            # that knows who sent each: the agents unblock them for themselves.
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
            threading.Thread(target=self._wait_checked, daemon=True).start()
        else:
            for sig in _STOP_SIGNALS:
                signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        self.received.append(signum)

    def _wait_checked(self) -> None:
        while True:
            info = signal.sigwaitinfo(_STOP_SIGNALS)
            if info.si_pid != 0:
                say(f"ignoring signal {info.si_signo} from pid {info.si_pid} in the workspace")
                continue
            self.received.append(info.si_signo)
            with contextlib.suppress(OSError):
                os.write(self.wake_w, b"s")


def block_stop_signals() -> None:
    """As PID 1: take stop signals only from outside (call before any thread starts)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)


def supervise(
    specs: list[dict[str, Any]],
    cgroup_fds: list[int] | None = None,
    *,
    from_outside_only: bool = False,
    watchdog: float = WATCHDOG_SECONDS,
) -> int:
    """Run the agents until they finish or a stop signal arrives; return the exit code."""
    agents = [Agent(s, list(cgroup_fds or []), watchdog) for s in specs]
    signals = _StopSignals(from_outside_only)
    stopping = False
    forwarded = 0
    for agent in agents:
        agent.start()
    while True:
        if len(signals.received) > forwarded:
            stopping = True
            for signum in signals.received[forwarded:]:
                for agent in agents:
                    if agent.proc is not None:
                        # Not Popen.send_signal: it polls, and would reap an agent that
                        # already died behind _reap's back, leaving it "running" forever.
                        with contextlib.suppress(OSError):
                            os.kill(agent.proc.pid, signum)
            forwarded = len(signals.received)
        _reap(agents, stopping)
        running = [a for a in agents if a.proc is not None]
        now = time.monotonic()
        due: list[float] = []
        if stopping:
            if not running:
                _kill_descendants()
                return 0
        else:
            for agent in agents:
                if agent.restart_at is not None and agent.restart_at <= now:
                    agent.start()
            if agents and all(a.done for a in agents):
                return 0
            due += [a.restart_at for a in agents if a.restart_at is not None]
            due += [d for d in (a.check(now) for a in agents) if d is not None]
        timeout = max(0.0, min(due) - time.monotonic()) if due else None
        readers = [signals.wake_r] + [a.sock for a in agents if a.sock is not None]
        writers = [a.sock for a in agents if a.sock is not None and a.outbox]
        try:
            readable, writable, _ = select.select(readers, writers, [], timeout)
        except InterruptedError:
            continue
        if signals.wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(signals.wake_r, 4096)
        for agent in agents:
            if agent.sock is not None and agent.sock in readable:
                agent.readable()
            if agent.sock is not None and agent.sock in writable:
                agent.flush()


def _kill_descendants() -> None:
    """SIGKILL what the agents left behind, even in sessions of their own.

    As a keeper (``isolation: none``) this process is a child subreaper, so orphans
    of the agents are re-parented to it and are found here; in a sandbox or a
    container it is PID 1.
    """
    me = os.getpid()
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                parents[int(name)] = int(stat_fields(int(name))[1])
            except (OSError, IndexError, ValueError):
                continue
    for pid in parents:
        ancestor, hops = parents.get(pid), 0
        while ancestor and ancestor != me and hops < 256:
            ancestor, hops = parents.get(ancestor), hops + 1
        if ancestor == me:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _reap(agents: list[Agent], stopping: bool) -> None:
    by_pid = {a.proc.pid: a for a in agents if a.proc is not None}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG | os.WUNTRACED)
        except ChildProcessError:
            return
        if pid == 0:
            return
        agent = by_pid.get(pid)
        if os.WIFSTOPPED(status):
            if agent is not None and not stopping:
                say(f"agent {agent.name} was stopped; continuing it")
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGCONT)
            continue
        if agent is not None:
            agent.exited(status, stopping)
            continue
        code = os.waitstatus_to_exitcode(status)
        for other in agents:
            other.orphan_exited(pid, code)
