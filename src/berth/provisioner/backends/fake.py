"""An in-memory backend for logic tests: no processes, no sleeps, fully scriptable.

The provisioner, the services and the chat tools are tested against this backend, so it
must behave like a real one where logic depends on it (idempotent per build, ``stop``
keeps the home, ``delete`` removes it, ``inspect`` tells the truth) and let a test
script the outcome of each build without touching the clock:

* per call, with :meth:`FakeBackend.plan` (a queue of :class:`FakeOutcome`, consumed
  first-in first-out by the next matching ``apply``), or
* per template, with ``backend.fake`` in the template document. Its top-level keys
  (``fail``, ``code``, ``hang``, ``logs``) script the ``start`` transition; the keys
  ``start``, ``stop`` and ``delete`` may hold a mapping of the same keys for that
  transition. Example: ``{"fail": "no capacity", "code": "X"}`` or
  ``{"stop": {"hang": true}}``.

An outcome runs in this order: emit its log lines, hang on its gate until a test
releases it (or the build is cancelled), then fail or succeed. A failed apply changes
nothing. Every apply and destroy is recorded in :attr:`FakeBackend.applies` and
:attr:`FakeBackend.destroys` for assertions.

Handles: ``{"kind": "sandbox", "workspace_id", "build_id"}`` for the running sandbox
and ``{"kind": "home", "workspace_id"}`` for the persistent home.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from berth.domain.enums import Transition
from berth.errors import BuildFailed
from berth.provisioner.places import host_place, place_id
from berth.provisioner.spec import BuildSpec, LogSink, Place, ResourceRecord, ResourceState

__all__ = ["DEFAULT_GATE", "FakeApply", "FakeBackend", "FakeOutcome", "FakeWorkspace"]

DEFAULT_GATE = "default"
_OUTCOME_KEYS = frozenset({"fail", "code", "hang", "logs"})
_TRANSITION_KEYS = frozenset(t.value for t in Transition)


@dataclass(frozen=True, slots=True)
class FakeOutcome:
    """How one ``apply`` ends. The default outcome succeeds at once.

    ``hang`` is ``False``, ``True`` (wait on the default gate) or a gate name.
    ``transition`` limits a planned outcome to applies of that transition.
    """

    fail: str | None = None
    code: str | None = None
    hang: bool | str = False
    logs: tuple[str, ...] = ()
    transition: Transition | None = None

    @property
    def gate(self) -> str | None:
        """The gate this outcome waits on, or None if it does not hang."""
        if self.hang is True:
            return DEFAULT_GATE
        return self.hang or None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], transition: Transition) -> FakeOutcome:
        """The outcome ``template.backend.fake`` scripts for ``transition``."""
        unknown = set(settings) - _OUTCOME_KEYS - _TRANSITION_KEYS
        if unknown:
            names = ", ".join(sorted(unknown))
            raise BuildFailed(f"unknown fake backend setting(s): {names}", code="FAKE_SETTINGS")
        chosen: Mapping[str, Any] = settings if transition is Transition.START else {}
        nested = settings.get(transition.value)
        if isinstance(nested, Mapping):
            chosen = cast("Mapping[str, Any]", nested)
        fail = chosen.get("fail")
        code = chosen.get("code")
        hang = chosen.get("hang", False)
        logs = chosen.get("logs", ())
        return cls(
            fail=None if fail is None else str(fail),
            code=None if code is None else str(code),
            hang=hang if isinstance(hang, bool | str) else bool(hang),
            logs=tuple(str(line) for line in cast("list[Any]", logs)),
        )


@dataclass(slots=True)
class FakeApply:
    """One recorded ``apply``; ``result`` is updated as it runs."""

    spec: BuildSpec
    transition: Transition
    outcome: FakeOutcome
    result: Literal["running", "hanging", "succeeded", "failed", "canceled"] = "running"


@dataclass(slots=True)
class FakeWorkspace:
    """What exists for one workspace: its home and, while running, its sandbox."""

    workspace_id: uuid.UUID
    home: bool = False
    sandbox_build: uuid.UUID | None = None
    sandboxes_started: int = 0
    """How many sandboxes were ever created (reuse by the same build does not count)."""


@dataclass(slots=True)
class FakeBackend:
    """The fake backend. Not thread-safe; use it from one event loop."""

    name: str = "fake"
    place_name: str | None = None
    """Names this backend's place (``fake:<name>``); default: the host's state directory,
    as for the local backend, so two hosts with different state dirs are two places."""
    workspaces: dict[uuid.UUID, FakeWorkspace] = field(default_factory=lambda: {})
    applies: list[FakeApply] = field(default_factory=lambda: [])
    destroys: list[dict[str, Any]] = field(default_factory=lambda: [])
    hang_started: asyncio.Event = field(default_factory=asyncio.Event)
    """Set whenever an apply starts hanging (clear it to wait for the next one)."""
    _planned: deque[FakeOutcome] = field(default_factory=lambda: deque[FakeOutcome]())
    _gates: dict[str, asyncio.Event] = field(default_factory=lambda: {})

    # --- scripting -------------------------------------------------------------

    def plan(self, *outcomes: FakeOutcome) -> None:
        """Queue outcomes for the next applies; they win over ``template.backend.fake``."""
        self._planned.extend(outcomes)

    def gate(self, name: str = DEFAULT_GATE) -> asyncio.Event:
        """The event hanging applies of gate ``name`` wait on (created on first use)."""
        return self._gates.setdefault(name, asyncio.Event())

    def release(self, name: str = DEFAULT_GATE) -> None:
        """Let every apply hanging on ``name`` (and later ones) go on."""
        self.gate(name).set()

    @property
    def hanging(self) -> list[FakeApply]:
        """The applies waiting on a gate right now."""
        return [a for a in self.applies if a.result == "hanging"]

    def running(self, workspace_id: uuid.UUID) -> bool:
        """True if the workspace has a sandbox now."""
        ws = self.workspaces.get(workspace_id)
        return ws is not None and ws.sandbox_build is not None

    # --- the protocol ----------------------------------------------------------

    async def apply(
        self, spec: BuildSpec, transition: Transition, log: LogSink
    ) -> list[ResourceRecord]:
        outcome = self._outcome_for(spec, transition)
        call = FakeApply(spec=spec, transition=transition, outcome=outcome)
        self.applies.append(call)
        try:
            for line in outcome.logs:
                await log(line)
            if outcome.gate is not None:
                call.result = "hanging"
                self.hang_started.set()
                await self.gate(outcome.gate).wait()
                call.result = "running"
            if outcome.fail is not None:
                call.result = "failed"
                raise BuildFailed(outcome.fail, code=outcome.code)
        except asyncio.CancelledError:
            call.result = "canceled"
            raise
        records = self._make_it_so(spec, transition)
        call.result = "succeeded"
        return records

    async def inspect(self, handle: dict[str, Any]) -> ResourceState:
        ws = self.workspaces.get(uuid.UUID(str(handle["workspace_id"])))
        if handle.get("kind") == "home":
            found = ws is not None and ws.home
            return ResourceState(exists=found, running=False, detail="home" if found else "")
        ours = ws is not None and str(ws.sandbox_build) == str(handle.get("build_id"))
        return ResourceState(exists=ours, running=ours, detail="sandbox" if ours else "")

    async def destroy(self, handle: dict[str, Any]) -> None:
        self.destroys.append(dict(handle))
        ws = self.workspaces.get(uuid.UUID(str(handle["workspace_id"])))
        if ws is None:
            return
        if handle.get("kind") == "home":
            ws.home = False
        elif str(ws.sandbox_build) == str(handle.get("build_id")):
            ws.sandbox_build = None

    async def place(self, state_dir: Path) -> Place:
        if self.place_name is not None:
            return Place(place_id("fake", self.place_name), f"fake:{self.place_name}")
        return host_place("fake", state_dir, prefix="fake:")

    # --- internals -------------------------------------------------------------

    def _outcome_for(self, spec: BuildSpec, transition: Transition) -> FakeOutcome:
        for i, planned in enumerate(self._planned):
            if planned.transition is None or planned.transition is transition:
                del self._planned[i]
                return planned
        settings = spec.template.backend.fake
        return FakeOutcome.from_settings(settings, transition) if settings else FakeOutcome()

    def _make_it_so(self, spec: BuildSpec, transition: Transition) -> list[ResourceRecord]:
        ws = self.workspaces.setdefault(spec.workspace_id, FakeWorkspace(spec.workspace_id))
        if transition is Transition.DELETE:
            ws.home = False
            ws.sandbox_build = None
            return []
        if transition is Transition.STOP:
            ws.sandbox_build = None
            return [_home_record(spec)] if ws.home else []
        ws.home = True
        if ws.sandbox_build != spec.build_id:
            ws.sandbox_build = spec.build_id
            ws.sandboxes_started += 1
        sandbox = ResourceRecord(
            type="fake_sandbox",
            name=f"berth-{spec.workspace_id}",
            handle={
                "kind": "sandbox",
                "workspace_id": str(spec.workspace_id),
                "build_id": str(spec.build_id),
            },
        )
        return [sandbox, _home_record(spec)]


def _home_record(spec: BuildSpec) -> ResourceRecord:
    return ResourceRecord(
        type="fake_home",
        name=f"berth-home-{spec.workspace_id}",
        handle={"kind": "home", "workspace_id": str(spec.workspace_id)},
    )
