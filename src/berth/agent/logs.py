"""Script output to the server as ``logs`` frames: batched, ordered, kept across outages.

A script can print thousands of lines a second; one frame per line would flood the
socket, and one frame per script would show nothing until it ends. So lines are queued
and a thread sends them in batches at least every :data:`LOG_FLUSH_SECONDS`. While
the agent is disconnected the lines stay queued (up to :data:`MAX_QUEUED` — then the
oldest go, and a note says how many), so a reconnecting server still gets the output
of the scripts that ran meanwhile. :meth:`LogShipper.flush` sends everything at once;
lifecycle changes call it first, so the server has a script's output before it learns
that the script finished.
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Callable

from .processes import now_iso
from .protocol import LOG_FLUSH_SECONDS

MAX_QUEUED = 50_000
MAX_BATCH = 1_000
MAX_LINE_CHARS = 64 * 1024

Entry = dict[str, Any]
Sender = Callable[[dict[str, Any]], bool]


class LogShipper:
    """Queues log entries and sends them as ``logs`` frames through ``send``."""

    def __init__(self, send: Sender, interval: float = LOG_FLUSH_SECONDS) -> None:
        self._send = send
        self._interval = interval
        self._lock = threading.Lock()  # guards the queue
        self._send_lock = threading.Lock()  # keeps batches in order
        self._queue: collections.deque[Entry] = collections.deque()
        self._dropped = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def add(self, script_id: str, output: str, level: str = "info") -> None:
        """Queue one line of output."""
        if len(output) > MAX_LINE_CHARS:
            output = output[:MAX_LINE_CHARS] + "…"
        entry: Entry = {
            "script_id": script_id,
            "created_at": now_iso(),
            "level": level,
            "output": output,
        }
        with self._lock:
            self._queue.append(entry)
            if len(self._queue) > MAX_QUEUED:
                self._queue.popleft()
                self._dropped += 1

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def flush(self) -> bool:
        """Send everything queued now; ``False`` if the link is down (entries are kept)."""
        with self._send_lock:
            while True:
                with self._lock:
                    if self._dropped:
                        note = f"[{self._dropped} log lines were dropped while disconnected]"
                        self._queue.appendleft(
                            {
                                "script_id": self._queue[0]["script_id"] if self._queue else "",
                                "created_at": now_iso(),
                                "level": "error",
                                "output": note,
                            }
                        )
                        self._dropped = 0
                    batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
                if not batch:
                    return True
                if not self._send({"type": "logs", "entries": batch}):
                    with self._lock:
                        self._queue.extendleft(reversed(batch))
                    return False

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush()
        self.flush()
