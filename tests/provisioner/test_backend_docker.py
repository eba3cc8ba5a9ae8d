"""The Docker backend for real: containers, volumes, the stand-in agent inside.

Tests marked ``docker`` are skipped, with the reason, when the engine is not reachable
or the image ``berth-python:latest`` is missing (``scripts/build-test-image.sh``
builds it without a registry). The refusal for an unreachable engine, and the retry of
a container whose root the engine lost, are tested always.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import docker
import docker.errors
import pytest
from docker.models.containers import Container

from berth.domain.enums import Transition
from berth.errors import BuildFailed
from berth.provisioner.backends import _docker_sdk
from berth.provisioner.backends.docker import DOCKER_UNAVAILABLE, IMAGE_NOT_FOUND, DockerBackend
from berth.provisioner.places import place_id
from berth.provisioner.spec import BuildSpec
from tests.support.backends import (
    LogLines,
    agent,
    build_spec,
    next_build,
    template,
    write_stand_in_agent,
)
from tests.support.waiting import until

pytestmark = pytest.mark.anyio
IMAGE = "berth-python:latest"


@functools.cache
def _engine_problem() -> str | None:
    """Why the Docker tests cannot run here, or None."""
    with warnings.catch_warnings():
        # docker-py leaves the socket of a failed connect to the garbage collector.
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            probe = docker.from_env()
        except docker.errors.DockerException as err:
            problem: str | None = f"the Docker engine is not reachable: {err}"
        else:
            try:
                probe.images.get(IMAGE)
                problem = None
            except docker.errors.ImageNotFound:
                problem = f"the image {IMAGE} is missing: run scripts/build-test-image.sh"
            finally:
                probe.close()
        gc.collect()
    return problem


@contextlib.contextmanager
def engine_client() -> Generator[docker.DockerClient]:
    """A client of the engine, or the test skipped saying why there is none."""
    problem = _engine_problem()
    if problem is not None:
        pytest.skip(problem)
    made = docker.from_env()
    yield made
    made.close()


@contextlib.asynccontextmanager
async def cleaning_backend(client: docker.DockerClient) -> AsyncGenerator[DockerBackend]:
    """A backend that removes what its workspaces left behind when the test ends."""
    made = DockerBackend(client, pull_missing=False, stop_timeout=1)
    created: list[str] = []
    original = made.apply

    async def tracking(spec: BuildSpec, transition: Transition, log: Any) -> Any:
        created.append(str(spec.workspace_id))
        return await original(spec, transition, log)

    made.apply = tracking  # type: ignore[method-assign]
    yield made
    for ws in set(created):
        for name in (f"berth-{ws}", f"berth-prepare-{ws}", f"berth-relay-{ws}"):
            with contextlib.suppress(docker.errors.NotFound):
                await asyncio.to_thread(client.containers.get(name).remove, force=True)
        for name in (f"berth-home-{ws}", f"berth-relay-{ws}"):
            with contextlib.suppress(docker.errors.NotFound):
                await asyncio.to_thread(client.volumes.get(name).remove, force=True)


@pytest.fixture
def client() -> Iterator[docker.DockerClient]:
    with engine_client() as made:
        yield made


@pytest.fixture
async def backend(client: docker.DockerClient) -> AsyncIterator[DockerBackend]:
    async with cleaning_backend(client) as made:
        yield made


@pytest.fixture
def zipapp(tmp_path: Path) -> Path:
    return write_stand_in_agent(tmp_path)


def spec_for(zipapp: Path, tmp_path: Path, **kwargs: Any) -> BuildSpec:
    backend = {"type": "docker", "image": IMAGE, **kwargs.pop("backend", {})}
    return build_spec(template(**backend), state_dir=tmp_path, zipapp=zipapp, **kwargs)


async def read_in(container: Container, path: str) -> str:
    """Wait until ``path`` exists in the container and return its text."""
    found: list[str] = []

    async def check() -> bool:
        code, output = await asyncio.to_thread(container.exec_run, ["cat", path])
        if code == 0:
            found.append(cast("bytes", output).decode())
        return code == 0

    await until(check, within=60.0, every=0.05)
    return found[0]


async def marker(client: docker.DockerClient, spec: BuildSpec, name: str = "main") -> Any:
    container = await asyncio.to_thread(client.containers.get, f"berth-{spec.workspace_id}")
    return json.loads(await read_in(container, f"/home/alice/marker-{name}.json"))


async def pong_server() -> tuple[asyncio.Server, int]:
    """A stand-in server on the host's loopback: it answers ``ping`` with ``pong``."""

    async def pong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await reader.readline() == b"ping\n":
            writer.write(b"pong\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(pong, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


def exists(client: docker.DockerClient, kind: str, name: str) -> bool:
    try:
        (client.containers if kind == "container" else client.volumes).get(name)
    except docker.errors.NotFound:
        return False
    return True


# docker-py's UnixHTTPConnection.connect does not close the socket of a failed connect;
# the backend frees it at once and gc.collect() makes sure its warning lands here.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_an_unreachable_engine_fails_the_build_saying_so(
    monkeypatch: pytest.MonkeyPatch, zipapp: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(BuildFailed) as failed:
        await DockerBackend().apply(spec_for(zipapp, tmp_path), Transition.START, LogLines())
    assert failed.value.code == DOCKER_UNAVAILABLE
    assert "cannot reach the Docker engine" in failed.value.message
    del failed
    gc.collect()


class FlakyEngine:
    """A client whose containers fail as a racing engine makes them: a lost root, a failed start."""

    def __init__(self, *failures: str) -> None:
        self.failures = list(failures)
        self.made: list[FlakyContainer] = []
        self.containers = self

    def create(self, image: str, **options: Any) -> FlakyContainer:
        failure = self.failures.pop(0) if self.failures else ""
        self.made.append(FlakyContainer(f"c{len(self.made)}", failure))
        return self.made[-1]


class FlakyContainer:
    def __init__(self, name: str, failure: str) -> None:
        self.name, self.failure, self.removed = name, failure, False

    def start(self) -> None:
        if self.failure == "start":
            raise docker.errors.APIError('exec: "python3": executable file not found in $PATH')

    def remove(self, force: bool) -> None:
        self.removed = force

    def reload(self) -> None:
        pass


def test_a_container_whose_root_the_engine_lost_is_made_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The engine can lose a created container's root (``_docker_sdk._started``): it is
    made again, up to ``_START_ATTEMPTS`` times in all."""

    def primed(container: FlakyContainer, plan: object) -> bool:
        return container.failure != "lost"

    def prime(container: FlakyContainer, plan: object) -> None:
        pass

    monkeypatch.setattr(_docker_sdk, "prime", prime)
    monkeypatch.setattr(_docker_sdk, "_primed", primed)
    monkeypatch.setattr(_docker_sdk, "_RETRY_PAUSE_SECONDS", 0.0)
    attempts = _docker_sdk._START_ATTEMPTS  # pyright: ignore[reportPrivateUsage]
    plan = _docker_sdk.Prime(_docker_sdk.User("alice", 1000, 1000, "/home/alice"))
    engine = FlakyEngine("lost", "start")
    started = _docker_sdk.create_and_start(cast("docker.DockerClient", engine), IMAGE, plan)
    assert started is engine.made[2]
    assert [c.removed for c in engine.made] == [True, True, False]

    engine = FlakyEngine(*["start", "lost"] * (attempts // 2), "start")
    with pytest.raises(docker.errors.APIError, match="executable file not found"):
        _docker_sdk.create_and_start(cast("docker.DockerClient", engine), IMAGE, plan)
    assert [c.removed for c in engine.made] == [True] * attempts  # every attempt, none left


@pytest.mark.docker
async def test_the_place_is_the_engine_wherever_the_state_dir_is(
    backend: DockerBackend, client: docker.DockerClient, tmp_path: Path
) -> None:
    """Host affinity: every provisioner on this engine reaches its containers."""
    info = await asyncio.to_thread(client.info)
    place = await backend.place(tmp_path / "a")
    assert place is not None
    assert place == await DockerBackend(client).place(tmp_path / "b")
    assert place.id == place_id("docker", info["ID"])
    assert place.label == f"Docker engine {info['Name']} ({info['ID'][:12]})"


@pytest.mark.docker
async def test_a_missing_image_fails_the_build_naming_it(
    backend: DockerBackend, zipapp: Path, tmp_path: Path
) -> None:
    spec = spec_for(zipapp, tmp_path, backend={"image": "berth-no-such-image:1"})
    with pytest.raises(BuildFailed) as failed:
        await backend.apply(spec, Transition.START, LogLines())
    assert failed.value.code == IMAGE_NOT_FOUND
    assert "berth-no-such-image:1" in failed.value.message


@pytest.mark.docker
async def test_start_runs_the_agents_in_a_labelled_limited_container(
    backend: DockerBackend, client: docker.DockerClient, zipapp: Path, tmp_path: Path
) -> None:
    server, port = await pong_server()
    agents = [agent("main", PING="1"), agent("second"), agent("far", external=True)]
    tokens = json.dumps([a.token[::-1] for a in agents])  # reversed: see the stand-in agent
    agents[0] = replace(agents[0], env={**agents[0].env, "SECRETS": tokens})
    spec = spec_for(
        zipapp,
        tmp_path,
        backend={"cpus": 1.5, "memory": "256m"},
        agents=agents,
        server_url=f"http://localhost:{port}",
    )
    async with server:
        records = await backend.apply(spec, Transition.START, LogLines())
        main = await marker(client, spec)
        second = await marker(client, spec, "second")
    ws = str(spec.workspace_id)
    assert [r.type for r in records] == [
        "docker_container",
        "docker_volume",
        "docker_container",
        "docker_volume",
    ]
    names = [f"berth-{ws}", f"berth-home-{ws}", f"berth-relay-{ws}", f"berth-relay-{ws}"]
    assert [r.name for r in records] == names
    assert all([(await backend.inspect(records[i].handle)).running for i in (0, 2)])
    env = main["env"]
    # Each agent has its token from the supervisor, and no process can read any token.
    assert (main["token"], second["token"]) == (agents[0].token, agents[1].token)
    assert "BERTH_AGENT_TOKEN" not in env
    assert main["secrets_seen"] == []
    assert (env["BERTH_AGENT_NAME"], env["BERTH_WORKSPACE_NAME"]) == ("main", "my-workspace")
    assert (env["HOME"], env["USER"], main["cwd"]) == ("/home/alice", "alice", "/home/alice")
    assert (main["uid"], main["gid"]) == (1000, 1000)
    assert env["BERTH_AGENT_URL"] == spec.server_url  # localhost: the relay's port is the same
    assert main["argv"] == ["/opt/berth/berth-agent.pyz"]
    assert main["ping"] == "pong"  # a loopback server URL: through the relay
    container = await asyncio.to_thread(client.containers.get, f"berth-{ws}")
    # Every process `docker exec` starts gets the container's environment: no token there.
    code, environ = await asyncio.to_thread(container.exec_run, ["cat", "/proc/self/environ"])
    assert code == 0
    env_text = json.dumps(container.attrs["Config"]["Env"])
    assert [a.name for a in agents if a.token.encode() in environ or a.token in env_text] == []
    volume = await asyncio.to_thread(client.volumes.get, f"berth-home-{ws}")
    for labels in (container.labels, volume.attrs["Labels"]):
        assert labels["berth.workspace_id"] == ws
        assert labels["berth.build_id"] == str(spec.build_id)
        assert labels["berth.owner"] == "alice"
    host_config = container.attrs["HostConfig"]
    assert (host_config["NanoCpus"], host_config["Memory"]) == (1_500_000_000, 256 << 20)
    assert host_config["PidsLimit"] == 1024  # the default
    assert host_config["Tmpfs"]["/tmp"].startswith("rw,nosuid,nodev,size=1073741824")
    assert host_config["ShmSize"] == 1 << 30
    assert host_config["NetworkMode"] not in ("host", "bridge", "default")
    assert (host_config["CapDrop"], host_config["SecurityOpt"]) == (["ALL"], ["no-new-privileges"])
    assert container.attrs["Config"]["User"] == "1000:1000"
    relay = await asyncio.to_thread(client.containers.get, f"berth-relay-{ws}")
    assert relay.attrs["HostConfig"]["NetworkMode"] == "host"
    assert relay.attrs["Config"]["User"] == "65534:65534"
    assert relay.attrs["HostConfig"]["CapDrop"] == ["ALL"]
    assert "berth.role" not in container.labels
    assert relay.labels["berth.role"] == "relay"


@pytest.mark.docker
async def test_network_false_leaves_only_loopback_and_the_relay(
    backend: DockerBackend, client: docker.DockerClient, zipapp: Path, tmp_path: Path
) -> None:
    server, port = await pong_server()
    spec = spec_for(
        zipapp,
        tmp_path,
        backend={"network": False},
        agents=[agent("main", PING="1")],
        server_url=f"http://127.0.0.1:{port}",
    )
    async with server:
        await backend.apply(spec, Transition.START, LogLines())
        main = await marker(client, spec)
    assert main["interfaces"] == ["lo"]
    assert main["ping"] == "pong"
    container = await asyncio.to_thread(client.containers.get, f"berth-{spec.workspace_id}")
    assert container.attrs["HostConfig"]["NetworkMode"] == "none"


@pytest.mark.docker
async def test_apply_twice_keeps_one_container_and_a_new_build_replaces_it(
    backend: DockerBackend, client: docker.DockerClient, zipapp: Path, tmp_path: Path
) -> None:
    spec = spec_for(zipapp, tmp_path)
    first = await backend.apply(spec, Transition.START, LogLines())
    assert await backend.apply(spec, Transition.START, LogLines()) == first
    later = await backend.apply(next_build(spec), Transition.START, LogLines())
    assert later[0].handle["id"] != first[0].handle["id"]
    assert not (await backend.inspect(first[0].handle)).exists
    assert (await backend.inspect(later[0].handle)).running
    assert later[1] == first[1]  # the same volume


@pytest.mark.docker
async def test_stop_keeps_the_volume_delete_removes_everything_both_idempotent(
    backend: DockerBackend, client: docker.DockerClient, zipapp: Path, tmp_path: Path
) -> None:
    spec = spec_for(zipapp, tmp_path, backend={"prepare": "echo kept > /home/alice/kept.txt"})
    ws = str(spec.workspace_id)
    started = await backend.apply(spec, Transition.START, LogLines())
    await marker(client, spec)
    for _ in range(2):
        stopped = await backend.apply(next_build(spec), Transition.STOP, LogLines())
        assert [r.type for r in stopped] == ["docker_volume"]
    assert not exists(client, "container", f"berth-{ws}")
    assert not exists(client, "container", f"berth-relay-{ws}")
    assert not exists(client, "volume", f"berth-relay-{ws}")
    assert exists(client, "volume", f"berth-home-{ws}")
    assert not (await backend.inspect(started[0].handle)).exists

    again = next_build(spec, template=template(type="docker", image=IMAGE))  # no prepare
    await backend.apply(again, Transition.START, LogLines())
    container = await asyncio.to_thread(client.containers.get, f"berth-{ws}")
    assert await read_in(container, "/home/alice/kept.txt") == "kept\n"

    for _ in range(2):
        assert await backend.apply(next_build(spec), Transition.DELETE, LogLines()) == []
    for kind, name in [("container", "berth"), ("container", "berth-relay")]:
        assert not exists(client, kind, f"{name}-{ws}")
    for name in ("berth-home", "berth-relay"):
        assert not exists(client, "volume", f"{name}-{ws}")


@pytest.mark.docker
async def test_a_failing_prepare_fails_the_build_with_its_output(
    backend: DockerBackend, client: docker.DockerClient, zipapp: Path, tmp_path: Path
) -> None:
    script = "echo step one; echo broken >&2; exit 4"
    spec = spec_for(zipapp, tmp_path, backend={"prepare": script})
    log = LogLines()
    with pytest.raises(BuildFailed) as failed:
        await backend.apply(spec, Transition.START, log)
    assert "status 4" in failed.value.message
    # stdout and stderr are separate streams in Docker: their relative order is not kept.
    assert "step one" in failed.value.message
    assert "broken" in failed.value.message
    assert sorted(log.of("prepare")) == ["broken", "step one"]
    ws = str(spec.workspace_id)
    assert not exists(client, "container", f"berth-{ws}")
    assert not exists(client, "container", f"berth-prepare-{ws}")


@pytest.mark.docker
async def test_a_new_backend_finds_the_container_and_destroy_is_idempotent(
    backend: DockerBackend, client: docker.DockerClient, zipapp: Path, tmp_path: Path
) -> None:
    spec = spec_for(zipapp, tmp_path)
    records = await backend.apply(spec, Transition.START, LogLines())
    await marker(client, spec)  # the supervisor is up: it takes the stop signal
    container, volume, *relay = (r.handle for r in records)
    after_restart = DockerBackend(client)
    assert (await after_restart.inspect(container)).running
    for _ in range(2):
        await after_restart.destroy(container)
    assert not (await after_restart.inspect(container)).exists
    assert (await after_restart.inspect(volume)).exists
    for handle in [volume, *relay]:
        for _ in range(2):
            await after_restart.destroy(handle)
        assert not (await after_restart.inspect(handle)).exists
    await until(lambda: not exists(client, "volume", volume["name"]))
