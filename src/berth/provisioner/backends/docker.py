"""The Docker backend: one container per workspace, a named volume for its home.

For workspace ``W`` owned by ``alice``:

* container ``berth-W`` from the template's image, the volume ``berth-home-W`` mounted
  at ``/home/alice``, labels ``berth.workspace_id``, ``berth.build_id``,
  ``berth.owner``; ``nano_cpus``/``mem_limit`` from ``cpus``/``memory``; restart
  policy ``unless-stopped`` (it comes back with the engine, like the workspace would).
  Before it starts, the agent zipapp and the supervisor (``_supervisor``, which starts
  one agent per non-external agent, restarts crashed ones and reaps as PID 1) are
  copied in under ``/opt/berth``; the command is ``python3 -I
  /opt/berth/supervisor.py inner``. Agents run as the image's user with ``HOME`` on
  the volume and the image's environment plus their own.
* ``prepare`` runs first in a one-shot container ``berth-prepare-W`` (same image,
  volume and network), removed afterwards; a non-zero exit fails the build with its
  output, which is also streamed to the build log line by line.

Networking: with ``network: true`` the container is on the default bridge, unless the
server URL's host is loopback (``localhost``, ``127.0.0.1``, ``::1``): a bridge
container could not reach that, so it gets ``network_mode="host"``. ``network:
false`` is ``network_mode="none"``; the agents then cannot reach the server (the log
warns), unlike the local backend there is no relay yet.

Stop removes the container and keeps the volume; delete removes both. The same build
applied twice finds its running container and leaves it; another build replaces it.
All SDK calls are blocking and run in worker threads.

Handles: ``{"kind": "container", "id", "name", "workspace_id", "build_id"}`` and
``{"kind": "volume", "name", "workspace_id"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import traceback
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import docker
import docker.errors
import requests
from docker.models.containers import Container
from docker.utils import parse_repository_tag

from berth.domain.enums import Transition
from berth.errors import BuildFailed
from berth.provisioner.backends import _supervisor
from berth.provisioner.backends._bwrap import sandbox_user
from berth.provisioner.backends._docker_sdk import (
    container_record,
    create_and_start,
    find_container,
    find_volume,
    opt_archive,
    remove,
    remove_by_name,
    run_to_end,
    volume_record,
)
from berth.provisioner.spec import BuildSpec, LogSink, ResourceRecord, ResourceState

__all__ = ["DOCKER_UNAVAILABLE", "IMAGE_NOT_FOUND", "DockerBackend"]

DOCKER_UNAVAILABLE = "DOCKER_UNAVAILABLE"
IMAGE_NOT_FOUND = "IMAGE_NOT_FOUND"
PREPARE_FAILED = "PREPARE_FAILED"
_TAIL_LINES = 40
_TAIL_CHARS = 4000
T = TypeVar("T")


def _unreachable(err: BaseException) -> BuildFailed:
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


async def _sdk(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking SDK call in a thread; turn engine errors into build errors.

    The build error is raised outside the ``except`` block, without the SDK's exception
    as its context: that chain holds docker-py's half-open socket alive for as long as
    the build error is kept (a job record, a test's ``excinfo``).
    """
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except requests.exceptions.ConnectionError as err:
        failure = _unreachable(err)
    except docker.errors.APIError as err:
        failure = BuildFailed(f"Docker: {err.explanation or err}")
    raise failure


def _network(spec: BuildSpec) -> str | None:
    """The network mode: None for the default bridge."""
    if not spec.template.backend.network:
        return "none"
    host = urlsplit(spec.server_url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return "host" if loopback else None


class DockerBackend:
    """Workspaces as Docker containers. Connects lazily, on the first build."""

    name = "docker"

    def __init__(
        self,
        client: docker.DockerClient | None = None,
        *,
        pull_missing: bool = True,
        stop_timeout: int = 10,
    ) -> None:
        """``pull_missing``: pull an image that is not on the engine (else fail the build)."""
        self._docker = client
        self._pull_missing = pull_missing
        self._stop_timeout = stop_timeout
        self._locks: dict[str, asyncio.Lock] = {}

    async def _client(self) -> docker.DockerClient:
        failure: BuildFailed | None = None
        try:
            if self._docker is None:
                self._docker = await asyncio.to_thread(docker.from_env)
            await asyncio.to_thread(self._docker.ping)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as err:
            failure = _unreachable(err)  # raised below, without the SDK's exception chain
        if failure is not None or self._docker is None:
            raise failure or _unreachable(RuntimeError("no client"))
        return self._docker

    # --- the protocol ----------------------------------------------------------

    async def apply(
        self, spec: BuildSpec, transition: Transition, log: LogSink
    ) -> list[ResourceRecord]:
        client = await self._client()
        ws = str(spec.workspace_id)
        async with self._locks.setdefault(ws, asyncio.Lock()):
            existing = await _sdk(find_container, client, f"berth-{ws}")
            if transition is Transition.START:
                return await self._start(client, spec, existing, log)
            if existing is not None:
                await log(f"removing container {existing.name}")
                await _sdk(remove, existing, self._stop_timeout)
            await _sdk(remove_by_name, client, f"berth-prepare-{ws}", 0)
            volume = await _sdk(find_volume, client, f"berth-home-{ws}")
            if transition is Transition.STOP:
                return [] if volume is None else [volume_record(spec, volume)]
            if volume is not None:
                await _sdk(volume.remove, force=True)
                await log(f"removed volume {volume.name}")
            return []

    async def inspect(self, handle: dict[str, Any]) -> ResourceState:
        client = await self._client()
        if handle.get("kind") == "volume":
            volume = await _sdk(find_volume, client, str(handle["name"]))
            found = volume is not None
            return ResourceState(exists=found, running=False, detail="volume" if found else "")
        container = await _sdk(find_container, client, str(handle["id"]))
        if container is None:
            return ResourceState(exists=False, running=False)
        running = container.status == "running"
        return ResourceState(exists=True, running=running, detail=container.status)

    async def destroy(self, handle: dict[str, Any]) -> None:
        client = await self._client()
        if handle.get("kind") == "volume":
            volume = await _sdk(find_volume, client, str(handle["name"]))
            if volume is not None:
                await _sdk(volume.remove, force=True)
            return
        container = await _sdk(find_container, client, str(handle["id"]))
        if container is not None:
            await _sdk(remove, container, self._stop_timeout)

    # --- start -----------------------------------------------------------------

    async def _start(
        self,
        client: docker.DockerClient,
        spec: BuildSpec,
        existing: Container | None,
        log: LogSink,
    ) -> list[ResourceRecord]:
        ws = str(spec.workspace_id)
        same_build = existing is not None and existing.labels.get("berth.build_id") == str(
            spec.build_id
        )
        if existing is not None and same_build and existing.status == "running":
            await log(f"container {existing.name} of this build is already running")
            volume = await _sdk(find_volume, client, f"berth-home-{ws}")
            records = [container_record(spec, existing)]
            return records + ([volume_record(spec, volume)] if volume is not None else [])
        image = spec.template.backend.image or ""
        await self._ensure_image(client, image, log)
        if existing is not None:
            await log(f"replacing container {existing.name}")
            await _sdk(remove, existing, self._stop_timeout)
        labels = {
            **spec.labels,
            "berth.workspace_id": ws,
            "berth.build_id": str(spec.build_id),
            "berth.owner": spec.owner_name,
        }
        volume = await _sdk(find_volume, client, f"berth-home-{ws}")
        if volume is None:
            volume = await _sdk(client.volumes.create, f"berth-home-{ws}", labels=labels)
        network = _network(spec)
        if network == "none" and any(not a.external for a in spec.agents):
            await log(
                "network: false: the agents cannot reach the server from this container",
                level="warn",
            )
        owner = sandbox_user(spec.owner_name)
        home = f"/home/{owner}"
        common: dict[str, Any] = {
            "labels": labels,
            "volumes": {volume.name: {"bind": home, "mode": "rw"}},
            "working_dir": home,
            "network_mode": network,
            "hostname": None if network == "host" else spec.workspace_name[:63],
        }
        if spec.template.backend.cpus:
            common["nano_cpus"] = int(spec.template.backend.cpus * 1e9)
        if spec.template.backend.memory_bytes:
            common["mem_limit"] = spec.template.backend.memory_bytes
        base_env = {"HOME": home, "USER": owner, "BERTH_WORKSPACE_NAME": spec.workspace_name}
        if spec.template.prepare.strip():
            await self._prepare(client, spec, image, {**common, "environment": base_env}, log)
        agents = [
            {
                "name": a.name,
                "argv": ["python3", "/opt/berth/berth-agent.pyz"],
                "cwd": home,
                "env": {
                    **a.env,
                    **base_env,
                    "BERTH_AGENT_URL": spec.server_url,
                    "BERTH_AGENT_TOKEN": a.token,
                    "BERTH_AGENT_NAME": a.name,
                },
            }
            for a in spec.agents
            if not a.external
        ]
        config = json.dumps({"agents": agents, "relay": None})
        archive = opt_archive(await asyncio.to_thread(spec.agent_zipapp.read_bytes))
        container = await _sdk(
            create_and_start,
            client,
            image,
            archive,
            name=f"berth-{ws}",
            command=["python3", "-I", "/opt/berth/supervisor.py", "inner"],
            environment={**base_env, _supervisor.CONFIG_ENV: config},
            restart_policy={"Name": "unless-stopped"},
            **common,
        )
        await log(f"started container {container.name} ({container.short_id}) from {image}")
        return [container_record(spec, container), volume_record(spec, volume)]

    async def _ensure_image(self, client: docker.DockerClient, image: str, log: LogSink) -> None:
        try:
            await asyncio.to_thread(client.images.get, image)
            return
        except docker.errors.ImageNotFound:
            pass
        except requests.exceptions.ConnectionError as err:
            raise _unreachable(err) from None
        if not self._pull_missing:
            raise BuildFailed(
                f"the image {image} is not on the Docker engine", code=IMAGE_NOT_FOUND
            )
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

    async def _prepare(
        self,
        client: docker.DockerClient,
        spec: BuildSpec,
        image: str,
        options: dict[str, Any],
        log: LogSink,
    ) -> None:
        """Run ``prepare`` in a one-shot container, streaming its output line by line."""
        await log("running prepare")
        name = f"berth-prepare-{spec.workspace_id}"
        await _sdk(remove_by_name, client, name, 0)
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()

        def emit(line: str | None) -> None:
            loop.call_soon_threadsafe(lines.put_nowait, line)

        command = ["/bin/sh", "-c", spec.template.prepare]
        run = asyncio.ensure_future(
            _sdk(run_to_end, client, image, command, emit, name=name, **options)
        )
        tail: list[str] = []
        try:
            while (line := await lines.get()) is not None:
                tail = [*tail[-(_TAIL_LINES - 1) :], line]
                await log(line, stage="prepare")
            code = await run
        except BaseException:
            await asyncio.shield(_sdk(remove_by_name, client, name, 0))
            raise
        if code != 0:
            output = "\n".join(tail)[-_TAIL_CHARS:]
            raise BuildFailed(f"prepare exited with status {code}:\n{output}", code=PREPARE_FAILED)
