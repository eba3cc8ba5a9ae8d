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


def lifecycle_frames(recorder: Recorder) -> list[tuple[str, object]]:
    with recorder.cond:
        return [(f["state"], f["generation"]) for f in recorder.frames if f["type"] == "lifecycle"]


def wait_for(recorder: Recorder, state: str, generation: object) -> list[tuple[str, object]]:
    """Wait until ``state`` was reported for ``generation``; all lifecycle frames so far."""
    recorder.wait(lambda frames: (state, generation) in lifecycle_frames(recorder))
    return lifecycle_frames(recorder)


def claim(body: str, *, sid: str, blocks: bool = True) -> Frame:
    return script(body, sid=sid, blocks=blocks, run_on="claim")


def test_claim_after_a_start_runs_only_the_claim_scripts(
    lifecycle: Lifecycle, recorder: Recorder, tmp_path: Path
) -> None:
    scripts = [script("echo setup", sid="setup"), claim("echo hello $GREETING", sid="own")]
    lifecycle.on_manifest(manifest(tmp_path, scripts, generation=1))
    wait_for(recorder, "ready", 1)
    claimed = manifest(tmp_path, scripts, generation=2, phase="claim", env={"GREETING": "bob"})
    lifecycle.on_manifest(claimed)
    assert wait_for(recorder, "ready", 2) == [
        ("created", 1),
        ("starting", 1),
        ("ready", 1),
        ("ready", 1),  # the state on receipt still belongs to generation 1
        ("starting", 2),
        ("ready", 2),
    ]
    assert recorder.log_lines() == [("setup", "info", "setup"), ("own", "info", "hello bob")]


def test_a_failing_blocking_claim_script_is_start_error(
    lifecycle: Lifecycle, recorder: Recorder, tmp_path: Path
) -> None:
    scripts = [
        script("true", sid="setup"),
        claim("echo claiming; exit 3", sid="bad"),
        claim("echo never", sid="never"),
    ]
    lifecycle.on_manifest(manifest(tmp_path, scripts, generation="p"))
    wait_for(recorder, "ready", "p")
    lifecycle.on_manifest(manifest(tmp_path, scripts, generation="c", phase="claim"))
    assert wait_for(recorder, "start_error", "c")[-2:] == [("starting", "c"), ("start_error", "c")]
    assert recorder.log_lines() == [
        ("bad", "info", "claiming"),
        ("bad", "error", "bad: exited with code 3"),
    ]


def test_a_fresh_process_with_a_claim_manifest_runs_start_then_claim(
    lifecycle: Lifecycle, recorder: Recorder, tmp_path: Path
) -> None:
    scripts = [
        claim("echo claim-bg", sid="cb", blocks=False),
        claim("echo claim", sid="c"),
        script("echo start-bg", sid="sb", blocks=False),
        script("echo start", sid="s"),
    ]
    lifecycle.on_manifest(manifest(tmp_path, scripts, generation=5, phase="claim"))
    recorder.wait(lambda frames: ("cb", "info", "claim-bg") in recorder.log_lines())
    assert lifecycle_frames(recorder) == [("created", 5), ("starting", 5), ("ready", 5)]
    assert [line for _, _, line in recorder.log_lines()] == [
        "start",
        "claim",
        "start-bg",
        "claim-bg",
    ]


def test_a_claim_during_the_start_announces_the_old_generation(
    lifecycle: Lifecycle, recorder: Recorder, tmp_path: Path
) -> None:
    lifecycle.on_manifest(manifest(tmp_path, [script("echo up; exec sleep 300")], generation=1))
    recorder.wait(lambda frames: ("s", "info", "up") in recorder.log_lines())
    # The start was cut short, so the claim run sets the workspace up again first.
    again = [script("echo again"), claim("echo claimed", sid="c")]
    lifecycle.on_manifest(manifest(tmp_path, again, generation=2, phase="claim"))
    assert wait_for(recorder, "ready", 2) == [
        ("created", 1),
        ("starting", 1),
        ("starting", 1),  # stale: the server drops it, generation 2 being current
        ("starting", 2),
        ("ready", 2),
    ]
    assert [line for _, _, line in recorder.log_lines()] == ["up", "again", "claimed"]


def test_a_claim_after_a_shutdown_sets_up_again(
    lifecycle: Lifecycle, recorder: Recorder, tmp_path: Path
) -> None:
    scripts = [script("echo start"), claim("echo claim", sid="c")]
    lifecycle.on_manifest(manifest(tmp_path, scripts, generation=1))
    wait_for(recorder, "ready", 1)
    lifecycle.on_shutdown()
    wait_for(recorder, "off", 1)
    lifecycle.on_manifest(manifest(tmp_path, scripts, generation=2, phase="claim"))
    wait_for(recorder, "ready", 2)
    assert [line for _, _, line in recorder.log_lines()] == ["start", "start", "claim"]


def test_parse_scripts_takes_claim_scripts() -> None:
    parsed = parse_scripts({"scripts": [{"script": "x", "run_on": "claim"}]})
    assert [s.run_on for s in parsed] == ["claim"]


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
