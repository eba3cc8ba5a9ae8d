"""The Docker backend's async steps: SDK calls in threads, images, ``prepare``, the relay.

Split from :mod:`berth.provisioner.backends.docker`, which composes them into builds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import docker
import docker.errors
import requests
from docker.utils import parse_repository_tag

from berth.errors import BuildFailed
from berth.provisioner.backends._bwrap import RELAY_DIR
from berth.provisioner.backends._docker_limits import RELAY_LIMITS
from berth.provisioner.backends._docker_net import RELAY_COMMAND, RELAY_ENV, AgentRoute
from berth.provisioner.backends._docker_sdk import (
    Prime,
    User,
    container_record,
    create_and_start,
    find_container,
    find_volume,
    opt_files,
    remove,
    remove_by_name,
    run_to_end,
    volume_record,
)
from berth.provisioner.spec import BuildSpec, LogSink, ResourceRecord

__all__ = [
    "DOCKER_UNAVAILABLE",
    "HARDENED",
    "IMAGE_NOT_FOUND",
    "PREPARE_FAILED",
    "Names",
    "ensure_image",
    "remove_relay",
    "run_prepare",
    "sdk",
    "start_relay",
    "unreachable",
]

DOCKER_UNAVAILABLE = "DOCKER_UNAVAILABLE"
IMAGE_NOT_FOUND = "IMAGE_NOT_FOUND"
PREPARE_FAILED = "PREPARE_FAILED"
HARDENED: dict[str, Any] = {"cap_drop": ["ALL"], "security_opt": ["no-new-privileges"]}
"""Every container berth starts: no capabilities, no gaining any (set-uid files)."""
_NOBODY = User("nobody", 65534, 65534, "/nonexistent")
_TAIL_LINES = 40
_TAIL_CHARS = 4000
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Names:
    """The Docker names of one workspace's containers and volumes."""

    workspace: str

    @property
    def container(self) -> str:
        return f"berth-{self.workspace}"

    @property
    def prepare(self) -> str:
        return f"berth-prepare-{self.workspace}"

    @property
    def relay(self) -> str:
        """The relay sidecar, and the volume of its socket."""
        return f"berth-relay-{self.workspace}"

    @property
    def home(self) -> str:
        return f"berth-home-{self.workspace}"


def unreachable(err: BaseException) -> BuildFailed:
    """The build error for an engine that does not answer.

    docker-py leaves the socket of a failed connect in a local variable of a frame in
    the error's traceback chain; clearing those frames lets it be freed now rather than
    whenever the last reference to the error goes.
    """
    chain: BaseException | None = err
    while chain is not None:
        with contextlib.suppress(RuntimeError):  # a frame still running cannot be cleared
            traceback.clear_frames(chain.__traceback__)
        chain = chain.__cause__ or chain.__context__
    return BuildFailed(f"cannot reach the Docker engine: {err}", code=DOCKER_UNAVAILABLE)


async def sdk(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking SDK call in a thread; turn engine errors into build errors.

    The build error is raised outside the ``except`` block, without the SDK's exception
    as its context: that chain holds docker-py's half-open socket alive for as long as
    the build error is kept (a job record, a test's ``excinfo``).
    """
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except requests.exceptions.ConnectionError as err:
        failure = unreachable(err)
    except docker.errors.APIError as err:
        failure = BuildFailed(f"Docker: {err.explanation or err}")
    raise failure


async def ensure_image(
    client: docker.DockerClient, image: str, log: LogSink, *, pull_missing: bool
) -> None:
    try:
        await asyncio.to_thread(client.images.get, image)
        return
    except docker.errors.ImageNotFound:
        pass
    except requests.exceptions.ConnectionError as err:
        raise unreachable(err) from None
    if not pull_missing:
        raise BuildFailed(f"the image {image} is not on the Docker engine", code=IMAGE_NOT_FOUND)
    await log(f"pulling image {image}")
    repository, tag = parse_repository_tag(image)
    try:
        await asyncio.to_thread(client.images.pull, repository, tag=tag or "latest")
    except docker.errors.APIError as err:
        raise BuildFailed(
            f"the image {image} is not on the Docker engine and could not be pulled: "
            f"{err.explanation or err}",
            code=IMAGE_NOT_FOUND,
        ) from None


async def run_prepare(
    client: docker.DockerClient,
    spec: BuildSpec,
    image: str,
    plan: Prime,
    options: dict[str, Any],
    log: LogSink,
) -> None:
    """Run ``prepare`` in a one-shot container, streaming its output line by line."""
    await log("running prepare")
    name = Names(str(spec.workspace_id)).prepare
    await sdk(remove_by_name, client, name, 0)
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def emit(line: str | None) -> None:
        loop.call_soon_threadsafe(lines.put_nowait, line)

    command = ["/bin/sh", "-c", spec.template.prepare]
    run = asyncio.ensure_future(
        sdk(run_to_end, client, image, command, emit, plan, name=name, **options)
    )
    tail: list[str] = []
    try:
        while (line := await lines.get()) is not None:
            tail = [*tail[-(_TAIL_LINES - 1) :], line]
            await log(line, stage="prepare")
        code = await run
    except BaseException:
        await asyncio.shield(sdk(remove_by_name, client, name, 0))
        raise
    if code != 0:
        output = "\n".join(tail)[-_TAIL_CHARS:]
        raise BuildFailed(f"prepare exited with status {code}:\n{output}", code=PREPARE_FAILED)


async def start_relay(
    client: docker.DockerClient,
    spec: BuildSpec,
    route: AgentRoute,
    labels: dict[str, str],
    log: LogSink,
) -> list[ResourceRecord]:
    """Start (or keep) this build's relay sidecar and the volume of its socket."""
    names = Names(str(spec.workspace_id))
    labels = {**labels, "berth.role": "relay"}
    volume = await sdk(find_volume, client, names.relay)
    if volume is None:
        volume = await sdk(client.volumes.create, names.relay, labels=labels)
    sidecar = await sdk(find_container, client, names.relay)
    current = sidecar is not None and sidecar.labels.get("berth.build_id") == str(spec.build_id)
    if sidecar is None or not current or sidecar.status != "running":
        if sidecar is not None:
            await sdk(remove, sidecar, 0)
        sidecar = await sdk(
            create_and_start,
            client,
            spec.template.backend.image or "",
            Prime(_NOBODY, (RELAY_DIR,), await asyncio.to_thread(opt_files, None)),
            name=names.relay,
            command=RELAY_COMMAND,
            environment={RELAY_ENV: json.dumps(route.relay)},
            network_mode="host",  # the relay, and nothing of the workspace, runs here
            user=_NOBODY.spec,
            labels=labels,
            volumes={volume.name: {"bind": RELAY_DIR, "mode": "rw"}},
            restart_policy={"Name": "unless-stopped"},
            **HARDENED,
            **RELAY_LIMITS,
        )
        await log(f"started the relay {sidecar.name} to the server")
    return [container_record(spec, sidecar), volume_record(spec, volume)]


async def remove_relay(client: docker.DockerClient, names: Names) -> None:
    await sdk(remove_by_name, client, names.relay, 0)
    volume = await sdk(find_volume, client, names.relay)
    if volume is not None:
        await sdk(volume.remove, force=True)
