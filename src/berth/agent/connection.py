"""The one WebSocket to the server: dial, session, heartbeats, reconnect forever.

The agent dials out (no inbound port in the workspace), so it is the agent's job to
stay connected: any failure — refused, reset, a 5xx from a restarting server — is
retried with exponential backoff and jitter, forever, while the agent's own state
(running scripts, background processes, queued logs) carries on untouched. Only a
refused token stops it — 401/403 at the handshake, or close code 4401/4403 from a
server that accepted first: retrying cannot fix that.

The WebSocket is the agent's own small client (:mod:`.wsclient`). The main thread is
its one reader: it waits on ``recv`` with a timeout that doubles as the heartbeat clock,
and answers the server's pings as it reads; every other thread sends through
:class:`Link`. Each heartbeat also sends a WebSocket ping; three unanswered ones mean
the server is gone even if TCP has not noticed, and the agent reconnects.

Under berth's supervisor the agent also has a control socket, the
:class:`~.supervisor_link.SupervisorLink` it got its token on. The main thread beats on
it every :data:`~.supervisor_link.BEAT_SECONDS` (connected or not), so a supervisor
that hears nothing for a while knows the agent is stuck and restarts it; the process
table hands its processes over on it.
"""

from __future__ import annotations

import logging
import os
import platform
import random
import socket
import threading
import time
from typing import Any, Callable

from . import rpc
from .context import AgentContext
from .lifecycle import Lifecycle
from .logs import LogShipper
from .protocol import (
    AUTH_FAILED_EXIT_CODE,
    BACKOFF_INITIAL_SECONDS,
    BACKOFF_MAX_SECONDS,
    CONNECT_PATH,
    HEARTBEAT_SECONDS,
    PROTOCOL_VERSION,
    decode,
    encode,
)
from .supervisor_link import BEAT_SECONDS, SupervisorLink
from .wsclient import ConnectionClosed, HandshakeError, WebSocket, connect

log = logging.getLogger("berth.agent")

MAX_FRAME_BYTES = 64 * 1024 * 1024  # write_file content arrives in one frame
MISSED_PONGS = 3
REFUSED_STATUSES = (401, 403)
REFUSED_CLOSE_CODES = (4401, 4403)  # the same refusals, after the server accepted
USER_AGENT = f"berth-agent/{PROTOCOL_VERSION} Python/{platform.python_version()}"


class AuthRejected(Exception):
    """The server refused the token (HTTP 401/403, or close code 4401/4403)."""


def connect_url(base: str) -> str:
    """The WebSocket URL for a server base URL: http(s) → ws(s), plus the connect path."""
    url = base.strip().rstrip("/")
    scheme, sep, rest = url.partition("://")
    schemes = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
    if not sep or scheme.lower() not in schemes or not rest:
        raise ValueError(
            f"the server URL must start with http://, https://, ws:// or wss://: {base!r}"
        )
    url = f"{schemes[scheme.lower()]}://{rest}"
    return url if url.endswith(CONNECT_PATH) else url + CONNECT_PATH


class Backoff:
    """Exponential delays with jitter: half fixed, half random, doubling up to a cap."""

    def __init__(
        self,
        initial: float = BACKOFF_INITIAL_SECONDS,
        maximum: float = BACKOFF_MAX_SECONDS,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.initial, self.maximum, self._rand = initial, maximum, rand
        self._current = initial

    def next(self) -> float:
        delay = self._current
        self._current = min(self.maximum, self._current * 2)
        return delay / 2 + delay / 2 * self._rand()

    def reset(self) -> None:
        self._current = self.initial


class Link:
    """The current connection, if any. Every frame the agent sends goes through here."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ws: WebSocket | None = None

    def attach(self, ws: WebSocket) -> None:
        with self._lock:
            self._ws = ws

    def detach(self, ws: WebSocket) -> None:
        with self._lock:
            if self._ws is ws:
                self._ws = None

    def send(self, message: dict[str, Any]) -> bool:
        """Send one frame; ``False`` (not an exception) when there is no live connection."""
        text = encode(message)
        with self._lock:
            ws = self._ws
            if ws is None:
                return False
            try:
                ws.send(text)
            except (ConnectionClosed, OSError) as err:
                log.debug("send failed: %s", err)
                return False
        return True


class Agent:
    """The agent process: state that outlives connections, and the connect loop."""

    def __init__(
        self,
        url: str,
        token: str,
        heartbeat: float = HEARTBEAT_SECONDS,
        supervisor: SupervisorLink | None = None,
    ) -> None:
        self.url = connect_url(url)
        self._token = token
        self._heartbeat = heartbeat
        self._stop = threading.Event()
        self.ctx = AgentContext()
        self.link = Link()
        self.logs = LogShipper(self.link.send)
        self.lifecycle = Lifecycle(self.ctx, self.logs, self.link.send)
        self._ws: WebSocket | None = None
        self.supervisor = supervisor
        if supervisor is not None:
            processes = self.ctx.processes
            processes.watcher = supervisor
            supervisor.on_exit = processes.exited
            processes.adopt(supervisor.handed)
            supervisor.handed = []
            supervisor.listen()

    def _beat(self) -> None:
        if self.supervisor is not None:
            self.supervisor.beat()

    def _wait(self, seconds: float) -> None:
        """Wait ``seconds`` (or until stopped), beating to the supervisor meanwhile."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            self._beat()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._stop.wait(min(left, BEAT_SECONDS))

    def stop(self) -> None:
        """Ask :meth:`run` to return (thread-safe; not from a signal handler)."""
        self._stop.set()
        ws = self._ws
        if ws is not None:
            ws.close()

    def run(self) -> int:
        """Connect and serve until stopped; the exit code (2 when the token is refused)."""
        self.logs.start()
        self.lifecycle.start()
        backoff = Backoff()
        try:
            while not self._stop.is_set():
                try:
                    if self._connect_once():
                        backoff.reset()
                except AuthRejected as err:
                    log.error("%s", err)
                    return AUTH_FAILED_EXIT_CODE
                if not self._stop.is_set():
                    self._wait(backoff.next())
            return 0
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        """Release everything: the socket, the script worker, every process group."""
        self._stop.set()
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.close()
        self.lifecycle.close()
        self.logs.stop()
        self.ctx.processes.kill_all()

    def _connect_once(self) -> bool:
        """One connection, start to end; ``True`` if it got as far as a manifest."""
        try:
            ws = connect(
                self.url,
                headers={"Authorization": f"Bearer {self._token}"},
                user_agent=USER_AGENT,
                open_timeout=15,
                close_timeout=2,
                max_size=MAX_FRAME_BYTES,
            )
        except HandshakeError as err:
            if err.status in REFUSED_STATUSES:
                raise self._rejected(f"HTTP {err.status}") from err
            log.warning("cannot connect to %s: %s; retrying", self.url, err)
            return False
        except OSError as err:  # refused, unreachable, TLS, timed out
            log.warning("cannot connect to %s: %s; retrying", self.url, err)
            return False
        self._ws = ws
        try:
            return self._session(ws)
        except ConnectionClosed as err:
            if err.code in REFUSED_CLOSE_CODES:
                raise self._rejected(f"close code {err.code}") from err
            log.warning("connection lost: %s", err)
            return False
        except OSError as err:
            log.warning("connection lost: %s", err)
            return False
        finally:
            self.link.detach(ws)
            self._ws = None
            ws.close()

    def _rejected(self, how: str) -> AuthRejected:
        return AuthRejected(
            f"the server rejected the agent token ({how}) at {self.url}; "
            "check BERTH_AGENT_TOKEN / --token"
        )

    def _session(self, ws: WebSocket) -> bool:
        hello = {
            "type": "hello",
            "version": PROTOCOL_VERSION,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "python": platform.python_version(),
        }
        ws.send(encode(hello))
        self.link.attach(ws)
        log.info("connected to %s", self.url)
        got_manifest = False
        next_beat: float | None = None
        pong: threading.Event | None = None
        missed = 0
        while not self._stop.is_set():
            self._beat()
            timeout = None if next_beat is None else max(0.0, next_beat - time.monotonic())
            if self.supervisor is not None:
                timeout = BEAT_SECONDS if timeout is None else min(timeout, BEAT_SECONDS)
            try:
                data = ws.recv(timeout=timeout)
            except TimeoutError:
                if next_beat is None or time.monotonic() < next_beat:
                    continue
                missed = missed + 1 if pong is not None and not pong.is_set() else 0
                if missed >= MISSED_PONGS:
                    log.warning("the server stopped answering pings; reconnecting")
                    return got_manifest
                self.link.send({"type": "heartbeat"})
                pong = ws.ping()
                next_beat = max(next_beat + self._heartbeat, time.monotonic())
                continue
            except ConnectionClosed as err:
                if err.code in REFUSED_CLOSE_CODES:
                    raise
                log.warning("disconnected: %s", err)
                return got_manifest
            if not isinstance(data, str):
                continue
            try:
                frame = decode(data)
            except ValueError as err:
                log.warning("ignoring a bad frame: %s", err)
                continue
            kind = frame["type"]
            if kind == "manifest":
                self.lifecycle.on_manifest(frame)
                if next_beat is None:
                    next_beat = time.monotonic()
                got_manifest = True
            elif kind == "request":
                rpc.serve_request(self.ctx, frame, self.link.send)
            elif kind == "shutdown":
                self.lifecycle.on_shutdown()
            else:
                log.debug("ignoring a %r frame", kind)
        return got_manifest
