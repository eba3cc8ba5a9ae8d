"""The Docker backend: one container per workspace, a named volume for its home.

For workspace ``W`` owned by ``alice``:

* container ``berth-W`` from the template's image, the volume ``berth-home-W`` mounted
  at ``/home/alice``, labels ``berth.workspace_id``, ``berth.build_id``,
  ``berth.owner``; restart policy ``unless-stopped`` (it comes back with the engine,
  like the workspace would). It runs as ``alice``, uid/gid 1000 (added to the image's
  ``/etc/passwd``), never root: no capabilities, ``no-new-privileges``, the root of
  the home volume owned by that user (``_docker_sdk.prime``). Before it starts, the
  agent's and the supervisor's zipapps (``_supervisor_zip``) are copied in under
  ``/opt/berth``; the container's PID 1 is ``python3 -I
  /opt/berth/berth-supervisor.pyz inner`` (its config comes in the command, not the
  container's environment: see ``_BOOT``), which workspace code can neither stop nor
  kill. It starts one agent per non-external agent, restarts crashed or stuck ones and
  hands each its token on a control socket (the token is in no agent's environment).
  Agents run with ``HOME`` on the volume and the image's environment plus their own.
* limits from the template: ``cpus``, ``memory``, ``pids``, ``tmp_size`` (``/tmp`` and
  ``/dev/shm``), see ``_docker_limits``.
* networking (``_docker_net``): ``network: true`` is the berth bridge network, whose
  containers cannot reach the host's own addresses nor each other; ``network: false``
  is no network at all. The agents reach the server directly when they can, else
  through a relay: the sidecar ``berth-relay-W`` (host network, the supervisor's host
  relay) and the volume ``berth-relay-W`` holding its Unix socket.
* ``prepare`` runs first in a one-shot container ``berth-prepare-W`` (same image,
  user, volume, network and limits), removed afterwards; a non-zero exit fails the
  build with its output, which is also streamed to the build log line by line.

Stop removes the containers and the relay volume and keeps the home volume; delete
removes that too. The same build applied twice finds its running container and leaves
it; another build replaces it. All SDK calls are blocking and run in worker threads.

Handles: ``{"kind": "container", "id", "name", "workspace_id", "build_id"}`` and
``{"kind": "volume", "name", "workspace_id"}`` (the relay's too).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
from docker.models.containers import Container

from berth.domain.enums import Transition
from berth.errors import BuildFailed
from berth.provisioner.backends import _supervisor
from berth.provisioner.backends._bwrap import INSIDE_ID, RELAY_DIR, SUPERVISOR_PATH, sandbox_user
from berth.provisioner.backends._docker_limits import LIMITS_UNAVAILABLE, Limits
from berth.provisioner.backends._docker_net import (
    FIREWALL_ENV,
    AgentRoute,
    ensure_host_firewall,
    ensure_network,
    firewall_mode,
    plan_route,
)
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
    volume_record,
)
from berth.provisioner.backends._docker_steps import (
    DOCKER_UNAVAILABLE,
    HARDENED,
    IMAGE_NOT_FOUND,
    Names,
    ensure_image,
    remove_relay,
    run_prepare,
    sdk,
    start_relay,
    unreachable,
)
from berth.provisioner.places import LABEL_MAX, place_id
from berth.provisioner.spec import BuildSpec, LogSink, Place, ResourceRecord, ResourceState

__all__ = [
    "DOCKER_UNAVAILABLE",
    "HOST_FIREWALL_UNAVAILABLE",
    "IMAGE_NOT_FOUND",
    "LIMITS_UNAVAILABLE",
    "DockerBackend",
]

HOST_FIREWALL_UNAVAILABLE = "HOST_FIREWALL_UNAVAILABLE"
_PLACE_RETRY = 30.0
"""Seconds before asking an engine that did not answer for its identity again."""
_BOOT = (
    "import os, sys; os.execve(sys.executable, "
    f"[sys.executable, '-I', {SUPERVISOR_PATH!r}, 'inner'], "
    f"dict(os.environ, {_supervisor.CONFIG_ENV}=sys.argv[1]))"
)
"""The container's command: hand the supervisor its config (``argv[1]``) in its environment.

Not in the container's environment: ``docker exec`` gives that to every process it
starts, and such a process (an administrator's shell, a probe) is dumpable, runs as the
workspace user and would show every agent token to workspace code in
``/proc/<pid>/environ``. The command survives a restart of the container as the
environment would, and ``docker inspect`` shows it as it showed the environment, to
whoever may use the engine (root on its host anyway). Inside, ``/proc/1/cmdline``
shows the config only until the ``execve``, before any agent (hence any workspace
code) exists; the supervisor then makes itself non-dumpable, which makes its
``/proc/1/environ`` root's.
"""


class DockerBackend:
    """Workspaces as Docker containers. Connects lazily, on the first build."""

    name = "docker"

    def __init__(
        self,
        client: docker.DockerClient | None = None,
        *,
        pull_missing: bool = True,
        stop_timeout: int = 10,
        host_firewall: str | None = None,
    ) -> None:
        """``pull_missing``: pull an image that is not on the engine (else fail the build).

        ``host_firewall``: ``iptables`` (berth keeps the rule that keeps bridge
        containers off the host's addresses; the default) or ``external`` (the
        administrator keeps it on the engine's host); default from
        ``BERTH_DOCKER_HOST_FIREWALL``.
        """
        self._docker = client
        self._pull_missing = pull_missing
        self._stop_timeout = stop_timeout
        self._firewall = firewall_mode(host_firewall)
        self._locks: dict[str, asyncio.Lock] = {}
        self._info: dict[str, Any] | None = None
        self._place: Place | None = None
        self._place_failed_at: float | None = None

    async def _client(self) -> docker.DockerClient:
        failure: BuildFailed | None = None
        try:
            if self._docker is None:
                self._docker = await asyncio.to_thread(docker.from_env)
            await asyncio.to_thread(self._docker.ping)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as err:
            failure = unreachable(err)  # raised below, without the SDK's exception chain
        if failure is not None or self._docker is None:
            raise failure or unreachable(RuntimeError("no client"))
        return self._docker

    async def _engine_info(self, client: docker.DockerClient) -> dict[str, Any]:
        if self._info is None:
            self._info = await sdk(client.info)
        return self._info

    # --- the protocol ----------------------------------------------------------

    async def place(self, state_dir: Path) -> Place | None:
        """The engine, by the ID ``docker info`` reports: its containers and volumes are
        reachable from every provisioner that uses it, wherever that runs. ``None``
        while the engine does not answer (asked again after ``_PLACE_RETRY`` seconds)."""
        if self._place is not None:
            return self._place
        failed = self._place_failed_at
        if failed is not None and time.monotonic() - failed < _PLACE_RETRY:
            return None
        try:
            info = await self._engine_info(await self._client())
        except BuildFailed:
            self._place_failed_at = time.monotonic()
            return None
        engine = str(info.get("ID") or "")
        if not engine:
            self._place_failed_at = time.monotonic()
            return None
        label = f"Docker engine {info.get('Name') or '?'} ({engine[:12]})"
        self._place = Place(place_id("docker", engine), label[:LABEL_MAX])
        return self._place

    async def apply(
        self, spec: BuildSpec, transition: Transition, log: LogSink
    ) -> list[ResourceRecord]:
        client = await self._client()
        names = Names(str(spec.workspace_id))
        async with self._locks.setdefault(names.workspace, asyncio.Lock()):
            existing = await sdk(find_container, client, names.container)
            if transition is Transition.START:
                return await self._start(client, spec, existing, log)
            if existing is not None:
                await log(f"removing container {existing.name}")
                await sdk(remove, existing, self._stop_timeout)
            await remove_relay(client, names)
            await sdk(remove_by_name, client, names.prepare, 0)
            volume = await sdk(find_volume, client, names.home)
            if transition is Transition.STOP:
                return [] if volume is None else [volume_record(spec, volume)]
            if volume is not None:
                await sdk(volume.remove, force=True)
                await log(f"removed volume {volume.name}")
            return []

    async def inspect(self, handle: dict[str, Any]) -> ResourceState:
        client = await self._client()
        if handle.get("kind") == "volume":
            volume = await sdk(find_volume, client, str(handle["name"]))
            found = volume is not None
            return ResourceState(exists=found, running=False, detail="volume" if found else "")
        container = await sdk(find_container, client, str(handle["id"]))
        if container is None:
            return ResourceState(exists=False, running=False)
        running = container.status == "running"
        return ResourceState(exists=True, running=running, detail=container.status)

    async def destroy(self, handle: dict[str, Any]) -> None:
        client = await self._client()
        if handle.get("kind") == "volume":
            volume = await sdk(find_volume, client, str(handle["name"]))
            if volume is not None:
                await sdk(volume.remove, force=True)
            return
        container = await sdk(find_container, client, str(handle["id"]))
        if container is not None:
            await sdk(remove, container, self._stop_timeout)

    # --- start -----------------------------------------------------------------

    async def _start(
        self,
        client: docker.DockerClient,
        spec: BuildSpec,
        existing: Container | None,
        log: LogSink,
    ) -> list[ResourceRecord]:
        names = Names(str(spec.workspace_id))
        backend = spec.template.backend
        route = await asyncio.to_thread(plan_route, spec.server_url, network=backend.network)
        same_build = existing is not None and existing.labels.get("berth.build_id") == str(
            spec.build_id
        )
        if existing is not None and same_build and existing.status == "running":
            await log(f"container {existing.name} of this build is already running")
            home = await sdk(find_volume, client, names.home)
            records = [container_record(spec, existing)]
            records += [volume_record(spec, home)] if home is not None else []
            if route.relay is not None:
                records += await start_relay(client, spec, route, self._labels(spec), log)
            return records
        image = spec.template.backend.image or ""
        await ensure_image(client, image, log, pull_missing=self._pull_missing)
        limits = await self._limits(client, spec, log)
        network = await self._network(client, spec, log)
        if existing is not None:
            await log(f"replacing container {existing.name}")
            await sdk(remove, existing, self._stop_timeout)
        labels = self._labels(spec)
        home = await sdk(find_volume, client, names.home)
        if home is None:
            home = await sdk(client.volumes.create, names.home, labels=labels)
        relay_records: list[ResourceRecord] = []
        if route.relay is not None:
            relay_records = await start_relay(client, spec, route, labels, log)
        owner = sandbox_user(spec.owner_name)
        user = User(owner, INSIDE_ID, INSIDE_ID, f"/home/{owner}")
        common: dict[str, Any] = {
            "labels": labels,
            "volumes": {home.name: {"bind": user.home, "mode": "rw"}},
            "working_dir": user.home,
            "user": user.spec,
            "hostname": spec.workspace_name[:63],
            **network,
            **HARDENED,
            **limits,
        }
        base_env = {
            "HOME": user.home,
            "USER": user.name,
            "LOGNAME": user.name,
            "BERTH_WORKSPACE_NAME": spec.workspace_name,
        }
        if spec.template.prepare.strip():
            options = {**common, "environment": base_env}
            await run_prepare(client, spec, image, Prime(user, (user.home,)), options, log)
        container = await self._run_workspace(client, spec, image, route, user, common, base_env)
        await log(f"started container {container.name} ({container.short_id}) from {image}")
        return [container_record(spec, container), volume_record(spec, home), *relay_records]

    def _labels(self, spec: BuildSpec) -> dict[str, str]:
        return {
            **spec.labels,
            "berth.workspace_id": str(spec.workspace_id),
            "berth.build_id": str(spec.build_id),
            "berth.owner": spec.owner_name,
        }

    async def _run_workspace(
        self,
        client: docker.DockerClient,
        spec: BuildSpec,
        image: str,
        route: AgentRoute,
        user: User,
        common: dict[str, Any],
        base_env: dict[str, str],
    ) -> Container:
        names = Names(str(spec.workspace_id))
        agents = [
            {
                "name": a.name,
                "argv": ["python3", "/opt/berth/berth-agent.pyz"],
                "cwd": user.home,
                "env": {
                    **{k: v for k, v in a.env.items() if k != "BERTH_AGENT_TOKEN"},
                    **base_env,
                    "BERTH_AGENT_URL": route.agent_url,
                    "BERTH_AGENT_NAME": a.name,
                },
                # On the agent's control socket, once it is protected (see _supervisor).
                "token": a.token,
            }
            for a in spec.agents
            if not a.external
        ]
        config = json.dumps({"agents": agents, "relay": route.inner_relay})
        options = dict(common)
        if route.relay is not None:
            options["volumes"] = {
                **common["volumes"],
                names.relay: {"bind": RELAY_DIR, "mode": "ro"},
            }
        if route.host_alias:
            options["extra_hosts"] = {route.host_alias: "127.0.0.1"}
        zipapp = await asyncio.to_thread(spec.agent_zipapp.read_bytes)
        return await sdk(
            create_and_start,
            client,
            image,
            Prime(user, (user.home,), await asyncio.to_thread(opt_files, zipapp)),
            name=names.container,
            command=["python3", "-I", "-c", _BOOT, config],
            environment=base_env,
            restart_policy={"Name": "unless-stopped"},
            **options,
        )

    async def _limits(
        self, client: docker.DockerClient, spec: BuildSpec, log: LogSink
    ) -> dict[str, Any]:
        """The container options of the template's limits; refuse what cannot hold."""
        limits = Limits.of(spec.template.backend)
        info = await self._engine_info(client)
        missing = limits.unenforceable(info)
        if missing and not limits.best_effort:
            raise BuildFailed(
                "the Docker engine cannot enforce these limits: "
                + "; ".join(missing)
                + " (the template may say limits: best-effort to run without them)",
                code=LIMITS_UNAVAILABLE,
            )
        for problem in missing:
            await log(f"limits: best-effort: not enforced: {problem}", level="warn")
        return limits.container_options(info)

    async def _network(
        self, client: docker.DockerClient, spec: BuildSpec, log: LogSink
    ) -> dict[str, Any]:
        """The network options: none, or the berth bridge behind the host firewall rule."""
        if not spec.template.backend.network:
            return {"network_mode": "none"}
        if self._firewall not in ("iptables", "external"):
            raise BuildFailed(
                f"{FIREWALL_ENV} must be iptables or external, not {self._firewall!r}",
                code=HOST_FIREWALL_UNAVAILABLE,
            )
        network = await sdk(ensure_network, client)
        if self._firewall == "external":
            await log(
                f"{FIREWALL_ENV}=external: the engine host's firewall is trusted to keep "
                "workspaces off its own addresses"
            )
        elif (problem := await asyncio.to_thread(ensure_host_firewall)) is not None:
            raise BuildFailed(
                f"cannot keep network: true workspaces off the host's own addresses: "
                f"{problem}. Run the provisioner as root on the Docker engine's host, or "
                f"add the rule there yourself and set {FIREWALL_ENV}=external",
                code=HOST_FIREWALL_UNAVAILABLE,
            )
        return {"network_mode": str(network.id)}
