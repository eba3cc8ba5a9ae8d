"""The backends a provisioner makes: Docker's is made on its first use, in a worker
thread (its module and the Docker SDK are not loaded at start), and then answers as
the Docker backend itself does."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from berth.domain.enums import Transition
from berth.provisioner.backends.docker import DockerBackend
from berth.provisioner.backends.fake import FakeBackend
from berth.provisioner.backends.registry import Deferred, make_backends
from berth.provisioner.spec import Backend
from tests.support.backends import LogLines, build_spec, template

pytestmark = pytest.mark.anyio


async def test_the_deferred_backend_is_made_once_off_the_loop_and_delegates() -> None:
    made: list[int] = []
    fake = FakeBackend()

    def make() -> Backend:
        made.append(threading.get_ident())
        return fake

    deferred = Deferred("fake", make)
    assert made == []
    spec = build_spec(
        template(type="fake"), state_dir=Path("/nonexistent"), zipapp=Path("/nonexistent")
    )
    first, again = await asyncio.gather(
        deferred.apply(spec, Transition.START, LogLines()),
        deferred.apply(spec, Transition.START, LogLines()),
    )
    assert made == [made[0]]
    assert made[0] != threading.get_ident()
    assert first == again
    assert fake.workspaces[spec.workspace_id].sandboxes_started == 1
    assert await deferred.inspect(first[0].handle) == await fake.inspect(first[0].handle)
    assert await deferred.place(Path("/nonexistent")) == await fake.place(Path("/nonexistent"))
    await deferred.destroy(first[0].handle)
    assert not (await fake.inspect(first[0].handle)).exists
    assert await deferred.backend() is fake


async def test_dockers_is_the_docker_backend(tmp_path: Path) -> None:
    backends = make_backends()
    docker = backends["docker"]
    assert isinstance(docker, Deferred)
    assert docker.name == "docker"
    assert isinstance(await docker.backend(), DockerBackend)
    # The engine's place, or None without one: the same answer as the backend's own.
    assert await docker.place(tmp_path) == await DockerBackend().place(tmp_path)
