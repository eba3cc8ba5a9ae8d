"""Lifecycle and scripts, logs batching, backoff and URLs, without a server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.agent.connection import Backoff, connect_url
from berth.agent.context import AgentContext
from berth.agent.lifecycle import Lifecycle, parse_scripts
from berth.agent.logs import LogShipper

Frame = dict[str, Any]
WAIT = 20.0


class Recorder:
    """A fake link: records frames; ``up`` says whether sends succeed."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.frames: list[Frame] = []
        self.up = True

    def send(self, frame: Frame) -> bool:
        with self.cond:
            if not self.up:
                return False
            self.frames.append(frame)
            self.cond.notify_all()
            return True

    def wait(self, predicate: Callable[[list[Frame]], bool]) -> list[Frame]:
        with self.cond:
            assert self.cond.wait_for(lambda: predicate(self.frames), timeout=WAIT), self.frames
            return list(self.frames)

    def states(self) -> list[str]:
        with self.cond:
            return [f["state"] for f in self.frames if f["type"] == "lifecycle"]

    def wait_state(self, state: str, count: int = 1) -> list[str]:
        self.wait(lambda frames: self.states().count(state) >= count)
        return self.states()

    def log_lines(self) -> list[tuple[str, str, str]]:
        with self.cond:
            return [
                (e["script_id"], e["level"], e["output"])
                for f in self.frames
                if f["type"] == "logs"
                for e in f["entries"]
            ]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def lifecycle(recorder: Recorder, tmp_path: Path) -> Iterator[Lifecycle]:
    ctx = AgentContext()
    logs = LogShipper(recorder.send)
    logs.start()
    life = Lifecycle(ctx, logs, recorder.send)
    life.start()
    yield life
    life.close()
    logs.stop()


def script(body: str, *, sid: str = "s", blocks: bool = True, **extra: Any) -> Frame:
    return {
        "id": sid,
        "display_name": sid,
        "run_on": "start",
        "blocks_login": blocks,
        "script": body,
        **extra,
    }


def manifest(tmp_path: Path, scripts: list[Frame], generation: object = 1, **extra: Any) -> Frame:
    return {
        "type": "manifest",
        "directory": str(tmp_path / "agent-dir"),
        "env": {"GREETING": "hi"},
        "scripts": scripts,
        "generation": generation,
        **extra,
    }


def test_blocking_scripts_then_ready(
    lifecycle: Lifecycle, recorder: Recorder, tmp_path: Path
) -> None:
    lifecycle.on_manifest(
        manifest(
            tmp_path,
            [
                script('echo "$GREETING from $(pwd)"; echo err >&2', sid="one"),
                script("echo two", sid="two"),
            ],
        )
    )
    assert recorder.wait_state("ready") == ["created", "starting", "ready"]
    lines = recorder.log_lines()
    assert lines == [
        ("one", "info", f"hi from {tmp_path / 'agent-dir'}"),
        ("one", "info", "err"),
        ("two", "info", "two"),
    ]
    frames = recorder.wait(lambda f: True)
    ready = frames.index({"type": "lifecycle", "state": "ready", "generation": 1})
    assert all(f["type"] != "logs" for f in frames[ready:])  # logs before the state


def test_failing_script_is_start_error(
    lifecycle: Lifecycle, recorder: Recorder, tmp_path: Path
) -> None:
    lifecycle.on_manifest(
        manifest(
            tmp_path, [script("echo before; exit 7", sid="bad"), script("echo never", sid="n")]
        )
    )
    assert recorder.wait_state("start_error") == ["created", "starting", "start_error"]
    assert recorder.log_lines() == [
        ("bad", "info", "before"),
        ("bad", "error", "bad: exited with code 7"),
    ]


def test_slow_script_is_start_timeout(
    lifecycle: Lifecycle, recorder: Recorder, tmp_path: Path
) -> None:
    lifecycle.on_manifest(
        manifest(tmp_path, [script("exec sleep 300", sid="slow", timeout_seconds=0.2)])
    )
    assert recorder.wait_state("start_timeout") == ["created", "starting", "start_timeout"]
    assert recorder.log_lines() == [("slow", "error", "slow: timed out after 0.2s; killed")]


def test_background_scripts_run_after_ready(
    lifecycle: Lifecycle, recorder: Recorder, tmp_path: Path
) -> None:
    lifecycle.on_manifest(
        manifest(
            tmp_path, [script("echo later", sid="bg", blocks=False), script("echo first", sid="fg")]
        )
    )
    recorder.wait(lambda frames: ("bg", "info", "later") in recorder.log_lines())
    assert recorder.states() == ["created", "starting", "ready"]
    assert recorder.log_lines() == [("fg", "info", "first"), ("bg", "info", "later")]


def test_generations(lifecycle: Lifecycle, recorder: Recorder, tmp_path: Path) -> None:
    first = manifest(tmp_path, [script("echo gen1", sid="s")], generation="a")
    lifecycle.on_manifest(first)
    recorder.wait_state("ready")
    lifecycle.on_manifest(first)  # a reconnect: same generation, state re-sent, no re-run
    recorder.wait_state("ready", 2)
    lifecycle.on_manifest(manifest(tmp_path, [script("echo gen2", sid="s")], generation="b"))
    recorder.wait_state("ready", 4)
    lifecycle_frames = [f for f in recorder.frames if f["type"] == "lifecycle"]
    assert [(f["state"], f["generation"]) for f in lifecycle_frames] == [
        ("created", "a"),
        ("starting", "a"),
        ("ready", "a"),
        ("ready", "a"),
        ("ready", "a"),
        ("starting", "b"),
        ("ready", "b"),
    ]
    assert [line for _, _, line in recorder.log_lines()] == ["gen1", "gen2"]


def test_shutdown_runs_stop_scripts(
    lifecycle: Lifecycle, recorder: Recorder, tmp_path: Path
) -> None:
    stop = {"id": "stop", "display_name": "stop", "run_on": "stop", "script": "echo bye"}
    lifecycle.on_manifest(manifest(tmp_path, [script("true"), stop]))
    recorder.wait_state("ready")
    lifecycle.on_shutdown()
    assert recorder.wait_state("off")[-2:] == ["shutting_down", "off"]
    assert ("stop", "info", "bye") in recorder.log_lines()


def test_shutdown_cancels_a_running_start(
    lifecycle: Lifecycle, recorder: Recorder, tmp_path: Path
) -> None:
    stop = {"id": "stop", "run_on": "stop", "script": "exit 1"}
    lifecycle.on_manifest(manifest(tmp_path, [script("echo up; exec sleep 300"), stop]))
    recorder.wait(lambda frames: ("s", "info", "up") in recorder.log_lines())
    lifecycle.on_shutdown()
    assert recorder.wait_state("shutdown_error") == [
        "created",
        "starting",
        "shutting_down",
        "shutdown_error",
    ]


def test_parse_scripts_skips_bad_entries() -> None:
    parsed = parse_scripts(
        {
            "scripts": [
                "nope",
                {"run_on": "start"},
                {"script": "x", "run_on": "sometimes"},
                {"script": "true", "timeout_seconds": -3, "blocks_login": "yes"},
            ]
        }
    )
    assert len(parsed) == 1
    assert (parsed[0].id, parsed[0].display_name, parsed[0].timeout_seconds) == (
        "3",
        "script 3",
        0.0,
    )
    assert parsed[0].blocks_login is False
    assert parse_scripts({}) == []


def test_log_shipper_keeps_lines_while_down(recorder: Recorder) -> None:
    shipper = LogShipper(recorder.send)
    recorder.up = False
    shipper.add("s", "one")
    shipper.add("s", "two")
    assert shipper.flush() is False
    assert shipper.pending() == 2
    recorder.up = True
    assert shipper.flush() is True
    assert [e["output"] for f in recorder.frames for e in f["entries"]] == ["one", "two"]
    assert recorder.frames[0]["entries"][0]["created_at"].endswith("Z")


def test_backoff_doubles_to_the_cap_with_jitter() -> None:
    backoff = Backoff(rand=lambda: 1.0)
    assert [round(backoff.next(), 3) for _ in range(9)] == [
        0.1,
        0.2,
        0.4,
        0.8,
        1.6,
        3.2,
        6.4,
        10.0,
        10.0,
    ]
    backoff.reset()
    assert backoff.next() == pytest.approx(0.1)
    assert Backoff(rand=lambda: 0.0).next() == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("http://h:8080", "ws://h:8080/api/v1/agent/connect"),
        ("https://h/", "wss://h/api/v1/agent/connect"),
        ("HTTPS://h/base", "wss://h/base/api/v1/agent/connect"),
        ("ws://h/api/v1/agent/connect", "ws://h/api/v1/agent/connect"),
    ],
)
def test_connect_url(base: str, url: str) -> None:
    assert connect_url(base) == url


def test_connect_url_rejects_other_schemes() -> None:
    with pytest.raises(ValueError, match="must start with"):
        connect_url("ftp://h")
