"""Start, claim and stop scripts, and the lifecycle state the server waits on.

The chat tools wait for ``ready`` before they run anything (spec §3.2), so the state
must be exact and must reach the server even across a reconnect: every state change
is sent at once (after the logs so far), and the current state is sent again after
every manifest. One worker thread runs the work in order: a new manifest generation
queues a start, a ``shutdown`` queues the stop scripts. Both first cancel whatever
run is in progress (its script is killed), because a shutdown or a re-personalized
manifest makes the old run pointless.

A claimed prebuild gets a manifest with ``phase: claim``. If this process already ran
the start scripts they are not run again (the workspace is set up; only the new
owner's part is missing), so the run is just the claim scripts. A process that has not
(it was restarted after the claim, or the prebuild's start was cut short) runs the
start scripts and then the claim scripts as one run, ending where a claimed prebuild
would.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import threading
from dataclasses import dataclass
from typing import Any, Callable, cast

from .context import AgentContext, manifest_env
from .logs import LogShipper
from .processes import SHELL
from .protocol import SCRIPT_RUN_ON

log = logging.getLogger("berth.agent")

Sender = Callable[[dict[str, Any]], bool]
# After a script exits, how long its output may take to drain (a daemon it started
# keeps the pipe open; its lines keep flowing to the logs, but nobody waits for them).
EOF_GRACE_SECONDS = 0.5
KILL_GRACE_SECONDS = 2.0


@dataclass(frozen=True)
class Script:
    """One manifest script (see the Script shape in :mod:`berth.agent.protocol`)."""

    id: str
    display_name: str
    run_on: str
    blocks_login: bool
    timeout_seconds: float
    script: str


def parse_scripts(manifest: dict[str, Any]) -> list[Script]:
    """The manifest's scripts; malformed ones are skipped (and logged), never fatal."""
    raw = manifest.get("scripts")
    scripts: list[Script] = []
    if not isinstance(raw, list):
        return scripts
    for index, item in enumerate(cast(list[Any], raw)):
        if not isinstance(item, dict):
            log.warning("manifest script %d is not an object; skipped", index)
            continue
        doc = cast(dict[str, Any], item)
        body, run_on, timeout = (
            doc.get("script"),
            doc.get("run_on", "start"),
            doc.get("timeout_seconds", 0),
        )
        if not isinstance(body, str) or run_on not in SCRIPT_RUN_ON:
            log.warning("manifest script %d has no script text or a bad run_on; skipped", index)
            continue
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            timeout = 0
        script_id = doc.get("id")
        name = doc.get("display_name")
        scripts.append(
            Script(
                id=script_id if isinstance(script_id, str) and script_id else str(index),
                display_name=name if isinstance(name, str) and name else f"script {index}",
                run_on=cast(str, run_on),
                blocks_login=doc.get("blocks_login") is True,
                timeout_seconds=float(timeout),
                script=body,
            )
        )
    return scripts


class Run:
    """A cancellable run of scripts; one condition serves cancel and process exit."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.canceled = False

    def cancel(self) -> None:
        with self.cond:
            self.canceled = True
            self.cond.notify_all()


class Lifecycle:
    """Runs scripts on one worker thread and reports the state through ``send``."""

    def __init__(self, ctx: AgentContext, logs: LogShipper, send: Sender) -> None:
        self._ctx = ctx
        self._logs = logs
        self._send = send
        self._lock = threading.Lock()
        self.state = "created"
        self.generation: object = None
        self._started = False
        # The start scripts have run to their outcome and no stop scripts since; a
        # claim then runs only the claim scripts. Only the worker thread touches it.
        self._set_up = False
        self._stopping = False
        self._latest: object = None
        self._manifest: dict[str, Any] = {}
        self._run = Run()
        self._jobs: queue.Queue[tuple[str, dict[str, Any], Run] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="lifecycle", daemon=True)

    def start(self) -> None:
        self._worker.start()

    def close(self) -> None:
        """Cancel the current run and stop the worker."""
        self._run.cancel()
        self._jobs.put(None)
        self._worker.join(timeout=10)

    # -- events from the connection ------------------------------------------------

    def on_manifest(self, manifest: dict[str, Any]) -> None:
        """Adopt a manifest; re-send the state; queue a start for a new generation."""
        directory = manifest.get("directory")
        self._ctx.configure(directory if isinstance(directory, str) else "", manifest_env(manifest))
        generation = manifest.get("generation")
        with self._lock:
            self._manifest = manifest
            new = not self._started or generation != self._latest
            if new:
                self._started, self._latest, self._stopping = True, generation, False
                # The state re-sent below keeps the generation of the run it came
                # from (the server drops it as stale); ``starting`` brings the new one.
                if self.state == "created":
                    self.generation = generation
        self.announce()
        if new:
            self._queue("start", manifest)

    def on_shutdown(self) -> None:
        """Queue the stop scripts (cancelling a start still in progress), once."""
        with self._lock:
            manifest, repeated = self._manifest, self._stopping
            self._stopping = True
        if repeated:
            self.announce()
            return
        self._queue("shutdown", manifest)

    def announce(self) -> None:
        """Send the current state (after any queued logs)."""
        self._logs.flush()
        with self._lock:
            self._send({"type": "lifecycle", "state": self.state, "generation": self.generation})

    # -- the worker ---------------------------------------------------------------------

    def _queue(self, kind: str, manifest: dict[str, Any]) -> None:
        with self._lock:
            self._run.cancel()
            run = self._run = Run()
        self._jobs.put((kind, manifest, run))

    def _set(self, state: str, generation: object) -> None:
        self._logs.flush()
        with self._lock:
            self.state, self.generation = state, generation
            self._send({"type": "lifecycle", "state": state, "generation": generation})

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            kind, manifest, run = job
            try:
                if kind == "start":
                    self._start(manifest, run)
                else:
                    self._shutdown(manifest, run)
            except Exception:
                log.exception("the %s scripts failed unexpectedly", kind)

    def _start(self, manifest: dict[str, Any], run: Run) -> None:
        """One start run: ``starting``, the blocking scripts of each kind, the outcome."""
        if run.canceled:
            return
        generation = manifest.get("generation")
        if manifest.get("phase") != "claim":
            kinds: tuple[str, ...] = ("start",)
        elif self._set_up:
            kinds = ("claim",)
        else:
            kinds = ("start", "claim")
        scripts = parse_scripts(manifest)
        self._set("starting", generation)
        outcome = "ready"
        for kind in kinds:
            blocking = [s for s in scripts if s.run_on == kind and s.blocks_login]
            result = self._run_in_order(blocking, run)
            if result == "canceled":
                return
            if kind == "start":
                self._set_up = True
            if result != "ok":
                outcome = "start_timeout" if result == "timeout" else "start_error"
                break
        self._set(outcome, generation)
        rest = [s for kind in kinds for s in scripts if s.run_on == kind and not s.blocks_login]
        if rest:
            threading.Thread(
                target=self._background, args=(rest, run), name="start-scripts", daemon=True
            ).start()

    def _background(self, scripts: list[Script], run: Run) -> None:
        for script in scripts:
            if self._run_script(script, run) == "canceled":
                return

    def _run_in_order(self, scripts: list[Script], run: Run) -> str:
        """Run scripts until one does not succeed: its result, or ``ok`` for all."""
        for script in scripts:
            result = self._run_script(script, run)
            if result != "ok":
                return result
        return "ok"

    def _shutdown(self, manifest: dict[str, Any], run: Run) -> None:
        # The stop scripts undo the setup: a later claim must set up again.
        self._set_up = False
        generation = manifest.get("generation")
        self._set("shutting_down", generation)
        stop = [s for s in parse_scripts(manifest) if s.run_on == "stop"]
        result = self._run_in_order(stop, run)
        if result == "canceled":
            return
        outcome = {"ok": "off", "timeout": "shutdown_timeout"}.get(result, "shutdown_error")
        self._set(outcome, generation)

    # -- one script -----------------------------------------------------------------------

    def _run_script(self, script: Script, run: Run) -> str:
        """Run one script to the end: ``ok``, ``error``, ``timeout`` or ``canceled``."""
        directory = self._ctx.directory()
        try:
            os.makedirs(directory, exist_ok=True)
            proc = subprocess.Popen(
                [SHELL, "-c", script.script],
                cwd=directory,
                env=self._ctx.env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as err:
            self._logs.add(script.id, f"{script.display_name}: could not start: {err}", "error")
            return "error"
        eof = threading.Event()
        exited: list[int] = []
        threading.Thread(
            target=self._pump, args=(proc, script.id, eof), name=f"script-{script.id}", daemon=True
        ).start()

        def reap() -> None:
            code = proc.wait()
            with run.cond:
                exited.append(code)
                run.cond.notify_all()

        threading.Thread(target=reap, name=f"reap-{script.id}", daemon=True).start()
        limit = script.timeout_seconds or None
        with run.cond:
            run.cond.wait_for(lambda: bool(exited) or run.canceled, timeout=limit)
            canceled, finished = run.canceled, bool(exited)
        if not finished:
            _kill_group(proc, run, exited)
            if canceled:
                return "canceled"
            self._logs.add(
                script.id,
                f"{script.display_name}: timed out after {script.timeout_seconds:g}s; killed",
                "error",
            )
            return "timeout"
        eof.wait(EOF_GRACE_SECONDS)
        code = exited[0]
        if code != 0:
            shown = f"signal {-code}" if code < 0 else f"code {code}"
            self._logs.add(script.id, f"{script.display_name}: exited with {shown}", "error")
            return "error"
        return "ok"

    def _pump(self, proc: subprocess.Popen[bytes], script_id: str, eof: threading.Event) -> None:
        stream = proc.stdout
        if stream is None:  # pragma: no cover - started with stdout=PIPE
            eof.set()
            return
        try:
            for raw in iter(lambda: stream.readline(65536), b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                self._logs.add(script_id, line)
        except (OSError, ValueError):
            pass
        finally:
            stream.close()
            eof.set()


def _kill_group(proc: subprocess.Popen[bytes], run: Run, exited: list[int]) -> None:
    """TERM a script's process group, then KILL it if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        with run.cond:
            if run.cond.wait_for(lambda: bool(exited), timeout=KILL_GRACE_SECONDS):
                return
