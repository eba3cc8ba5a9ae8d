"""The Docker backend's blocking side: SDK calls that run in worker threads, and records.

Split from :mod:`berth.provisioner.backends.docker` to keep each module small; nothing
here touches the event loop.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.volumes import Volume

from berth.provisioner.backends import _supervisor
from berth.provisioner.spec import BuildSpec, ResourceRecord

__all__ = [
    "container_record",
    "create_and_start",
    "find_container",
    "find_volume",
    "opt_archive",
    "remove",
    "remove_by_name",
    "run_to_end",
    "volume_record",
]


def opt_archive(zipapp: bytes) -> bytes:
    """A tar of /opt/berth with the agent and the supervisor, for ``put_archive``."""
    buffer = io.BytesIO()
    supervisor = Path(_supervisor.__file__).read_bytes()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("opt", "opt/berth"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in (("berth-agent.pyz", zipapp), ("supervisor.py", supervisor)):
            info = tarfile.TarInfo(f"opt/berth/{name}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def find_container(client: docker.DockerClient, name_or_id: str) -> Container | None:
    try:
        return client.containers.get(name_or_id)
    except docker.errors.NotFound:
        return None


def find_volume(client: docker.DockerClient, name: str) -> Volume | None:
    try:
        return client.volumes.get(name)
    except docker.errors.NotFound:
        return None


def remove(container: Container, timeout: int) -> None:
    try:
        if timeout and container.status == "running":
            container.stop(timeout=timeout)
        container.remove(force=True)
    except docker.errors.NotFound:
        pass


def remove_by_name(client: docker.DockerClient, name: str, timeout: int) -> None:
    container = find_container(client, name)
    if container is not None:
        remove(container, timeout)


def create_and_start(
    client: docker.DockerClient, image: str, archive: bytes, **options: Any
) -> Container:
    container = client.containers.create(image, **options)
    try:
        container.put_archive("/", archive)  # pyright: ignore[reportUnknownMemberType]  # untyped in the stubs
        container.start()
        container.reload()
    except BaseException:
        container.remove(force=True)
        raise
    return container


def run_to_end(
    client: docker.DockerClient,
    image: str,
    command: list[str],
    emit: Callable[[str | None], None],
    **options: Any,
) -> int:
    """Run a container to its end, sending each output line to ``emit``; its exit status."""
    container: Container | None = None
    try:
        container = client.containers.create(image, command, **options)
        container.start()
        pending = b""
        stream = container.logs(stream=True, follow=True)
        try:
            for chunk in stream:
                pending += chunk
                *done, pending = pending.split(b"\n")
                for raw in done:
                    emit(raw.decode(errors="replace").rstrip("\r"))
        finally:
            stream.close()  # else its socket is left to the garbage collector
        if pending:
            emit(pending.decode(errors="replace"))
        return int(container.wait()["StatusCode"])
    finally:
        emit(None)
        if container is not None:
            remove(container, 0)


def container_record(spec: BuildSpec, container: Container) -> ResourceRecord:
    handle = {
        "kind": "container",
        "id": container.id,
        "name": container.name,
        "workspace_id": str(spec.workspace_id),
        "build_id": container.labels.get("berth.build_id", str(spec.build_id)),
    }
    return ResourceRecord(type="docker_container", name=str(container.name), handle=handle)


def volume_record(spec: BuildSpec, volume: Volume) -> ResourceRecord:
    name = volume.name
    handle = {"kind": "volume", "name": name, "workspace_id": str(spec.workspace_id)}
    return ResourceRecord(type="docker_volume", name=name, handle=handle)
