"""The backends a provisioner offers, by the name templates use in ``backend.type``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from berth.domain.enums import Transition
from berth.provisioner.spec import Backend, BuildSpec, LogSink, Place, ResourceRecord, ResourceState


def make_backends(*, fake: bool = False) -> dict[str, Backend]:
    """Every real backend; each reports its own missing prerequisite (bwrap, Docker) per build.

    ``fake`` adds the fake backend, which starts nothing: for tests, never a default.
    """
    from berth.provisioner.backends.local import LocalBackend

    backends: dict[str, Backend] = {"local": LocalBackend(), "docker": Deferred("docker", _docker)}
    if fake:
        from berth.provisioner.backends.fake import FakeBackend

        backends["fake"] = FakeBackend()
    return backends


def _docker() -> Backend:
    from berth.provisioner.backends.docker import DockerBackend

    return DockerBackend()


class Deferred:
    """A backend made on its first use, in a worker thread: the Docker backend's module
    and the Docker SDK (~0.1 s of imports) load when something first asks Docker, not
    when the server starts, and without holding up the event loop."""

    def __init__(self, name: str, make: Callable[[], Backend]) -> None:
        self.name = name
        self._make = make
        self._made: Backend | None = None
        self._making = asyncio.Lock()

    async def backend(self) -> Backend:
        if self._made is None:
            async with self._making:
                if self._made is None:
                    self._made = await asyncio.to_thread(self._make)
        return self._made

    async def apply(
        self, spec: BuildSpec, transition: Transition, log: LogSink
    ) -> list[ResourceRecord]:
        return await (await self.backend()).apply(spec, transition, log)

    async def inspect(self, handle: dict[str, Any]) -> ResourceState:
        return await (await self.backend()).inspect(handle)

    async def destroy(self, handle: dict[str, Any]) -> None:
        await (await self.backend()).destroy(handle)

    async def place(self, state_dir: Path) -> Place | None:
        return await (await self.backend()).place(state_dir)
