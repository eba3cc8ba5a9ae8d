"""The fake backend: what the provisioner's logic tests rely on it to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from berth.domain.enums import Transition
from berth.errors import BuildFailed
from berth.provisioner.backends.fake import FakeBackend, FakeOutcome
from berth.provisioner.spec import BuildSpec
from tests.support.backends import LogLines, build_spec, next_build, template

pytestmark = pytest.mark.anyio


def _spec(**fake: Any) -> BuildSpec:
    doc = template(type="fake", fake=fake or None)
    return build_spec(doc, state_dir=Path("/nonexistent"), zipapp=Path("/nonexistent"))


async def test_start_creates_one_sandbox_per_build_and_replaces_it_for_the_next() -> None:
    backend = FakeBackend()
    spec = _spec()
    first = await backend.apply(spec, Transition.START, LogLines())
    again = await backend.apply(spec, Transition.START, LogLines())
    assert [r.type for r in first] == ["fake_sandbox", "fake_home"]
    assert again == first
    ws = backend.workspaces[spec.workspace_id]
    assert ws.sandboxes_started == 1
    assert (await backend.inspect(first[0].handle)).running

    later = await backend.apply(next_build(spec), Transition.START, LogLines())
    assert ws.sandboxes_started == 2
    assert not (await backend.inspect(first[0].handle)).exists
    assert (await backend.inspect(later[0].handle)).running


async def test_stop_keeps_the_home_and_delete_removes_it_both_idempotent() -> None:
    backend = FakeBackend()
    spec = _spec()
    started = await backend.apply(spec, Transition.START, LogLines())
    sandbox, home = (r.handle for r in started)
    for _ in range(2):
        stopped = await backend.apply(next_build(spec), Transition.STOP, LogLines())
        assert [r.type for r in stopped] == ["fake_home"]
        assert not backend.running(spec.workspace_id)
        assert not (await backend.inspect(sandbox)).exists
        assert (await backend.inspect(home)).exists
    for _ in range(2):
        assert await backend.apply(next_build(spec), Transition.DELETE, LogLines()) == []
        assert not (await backend.inspect(home)).exists
    assert [a.transition for a in backend.applies] == [Transition.START] + [Transition.STOP] * 2 + [
        Transition.DELETE
    ] * 2
    assert all(a.result == "succeeded" for a in backend.applies)


async def test_template_settings_fail_the_start_with_message_and_code() -> None:
    backend = FakeBackend()
    spec = _spec(fail="no capacity", code="NO_CAPACITY", logs=["one", "two"])
    log = LogLines()
    with pytest.raises(BuildFailed) as failed:
        await backend.apply(spec, Transition.START, log)
    assert (failed.value.message, failed.value.code) == ("no capacity", "NO_CAPACITY")
    assert log.of("apply") == ["one", "two"]
    assert backend.applies[0].result == "failed"
    assert not backend.running(spec.workspace_id)
    # The top-level settings script only start; stop goes through.
    assert await backend.apply(spec, Transition.STOP, LogLines()) == []


async def test_per_transition_settings_and_unknown_settings() -> None:
    backend = FakeBackend()
    spec = _spec(stop={"fail": "stuck", "code": "STUCK"})
    await backend.apply(spec, Transition.START, LogLines())
    with pytest.raises(BuildFailed, match="stuck"):
        await backend.apply(spec, Transition.STOP, LogLines())
    assert backend.running(spec.workspace_id)  # a failed apply changes nothing

    with pytest.raises(BuildFailed, match=r"unknown fake backend setting.*fial") as bad:
        await backend.apply(_spec(fial="typo"), Transition.START, LogLines())
    assert bad.value.code == "FAKE_SETTINGS"


async def test_planned_outcomes_win_over_the_template_in_order() -> None:
    backend = FakeBackend()
    spec = _spec(fail="from the template")
    backend.plan(
        FakeOutcome(transition=Transition.STOP, fail="planned stop failure"),
        FakeOutcome(),
        FakeOutcome(fail="second", code="X"),
    )
    await backend.apply(spec, Transition.START, LogLines())  # the 2nd outcome: succeed
    with pytest.raises(BuildFailed, match="second"):
        await backend.apply(spec, Transition.START, LogLines())
    with pytest.raises(BuildFailed, match="planned stop failure"):
        await backend.apply(spec, Transition.STOP, LogLines())
    with pytest.raises(BuildFailed, match="from the template"):
        await backend.apply(spec, Transition.START, LogLines())


async def test_hang_until_released() -> None:
    backend = FakeBackend()
    spec = _spec(hang=True, logs=["waiting"])
    log = LogLines()
    results: list[int] = []

    async def run() -> None:
        results.append(len(await backend.apply(spec, Transition.START, log)))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await backend.hang_started.wait()
            assert [a.result for a in backend.hanging] == ["hanging"]
            assert log.of("apply") == ["waiting"]
            assert not backend.running(spec.workspace_id)
            backend.release()
    assert results == [2]
    assert backend.applies[0].result == "succeeded"


async def test_hang_on_a_named_gate_then_fail_and_cancel() -> None:
    backend = FakeBackend()
    failing = _spec(hang="gate-a", fail="after the wait")
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                with pytest.raises(BuildFailed, match="after the wait"):
                    await backend.apply(failing, Transition.START, LogLines())

            tg.start_soon(run)
            await backend.hang_started.wait()
            backend.release("gate-a")
    assert backend.applies[0].result == "failed"

    backend.hang_started.clear()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(backend.apply, _spec(hang=True), Transition.START, LogLines())
            await backend.hang_started.wait()
            tg.cancel_scope.cancel()
    assert backend.applies[1].result == "canceled"


async def test_destroy_is_recorded_precise_and_idempotent() -> None:
    backend = FakeBackend()
    spec = _spec()
    old = await backend.apply(spec, Transition.START, LogLines())
    new = await backend.apply(next_build(spec), Transition.START, LogLines())
    await backend.destroy(old[0].handle)  # a stale sandbox: the running one stays
    assert (await backend.inspect(new[0].handle)).running
    for _ in range(2):
        await backend.destroy(new[0].handle)
        await backend.destroy(new[1].handle)
    assert not (await backend.inspect(new[0].handle)).exists
    assert not (await backend.inspect(new[1].handle)).exists
    assert len(backend.destroys) == 5
