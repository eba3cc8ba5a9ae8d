"""The Docker backend's blocking side: SDK calls that run in worker threads, and records.

Split from :mod:`berth.provisioner.backends.docker` to keep each module small; nothing
here touches the event loop.

Before a container starts, :func:`prime` writes into it (``put_archive`` works on a
created container, through its volumes): the user it runs as, appended to the image's
``/etc/passwd`` and ``/etc/group`` when the uid is not there yet (so ``whoami``, git
and ssh know the user); the directories it must own (the root of the home volume),
chowned by the archive's headers, so no root container is needed to hand a new volume
to an unprivileged user; and the files berth puts under ``/opt/berth``.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.volumes import Volume

from berth.provisioner.backends._bwrap import SUPERVISOR_PATH
from berth.provisioner.backends._supervisor_zip import archive_bytes
from berth.provisioner.spec import BuildSpec, ResourceRecord

__all__ = [
    "Prime",
    "User",
    "container_record",
    "create_and_start",
    "find_container",
    "find_volume",
    "opt_files",
    "prime",
    "remove",
    "remove_by_name",
    "run_to_end",
    "volume_record",
]


_START_ATTEMPTS = 5
_RETRY_PAUSE_SECONDS = 0.2
"""Times the attempt number: the engine's concurrent removals get a moment to finish."""


@dataclass(frozen=True, slots=True)
class User:
    """Who a container's processes run as."""

    name: str
    uid: int
    gid: int
    home: str

    @property
    def spec(self) -> str:
        return f"{self.uid}:{self.gid}"


@dataclass(frozen=True, slots=True)
class Prime:
    """What :func:`prime` writes into a container before it starts."""

    user: User
    owned_dirs: tuple[str, ...] = ()
    files: tuple[tuple[str, bytes], ...] = ()
    """Absolute paths and their contents (mode 0644, owned by root)."""


def opt_files(zipapp: bytes | None) -> tuple[tuple[str, bytes], ...]:
    """The supervisor's zipapp (and the agent's, if given) under /opt/berth.

    Blocking: the supervisor's archive is built on the first call of the process.
    """
    files = [(SUPERVISOR_PATH, archive_bytes())]
    if zipapp is not None:
        files.append(("/opt/berth/berth-agent.pyz", zipapp))
    return tuple(files)


def _read_file(container: Container, path: str) -> bytes:
    try:
        chunks, _ = container.get_archive(path)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]  # untyped in the stubs
    except docker.errors.NotFound:
        return b""
    raw = b"".join(chunks)  # pyright: ignore[reportUnknownArgumentType]
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        member = next((m for m in tar.getmembers() if m.isfile()), None)
        extracted = tar.extractfile(member) if member is not None else None
        return extracted.read() if extracted is not None else b""


def _with_entry(table: bytes, entry: str, key: int) -> bytes:
    """``table`` (passwd or group) with ``entry`` appended unless id ``key`` is there."""
    text = table.decode(errors="replace")
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[2] == str(key):
            return table
    if text and not text.endswith("\n"):
        text += "\n"
    return (text + entry + "\n").encode()


def prime(container: Container, plan: Prime) -> tuple[str, bytes]:
    """Write the user, its directories and berth's files into a created container; the
    last file written, to read back (:func:`_primed`)."""
    user = plan.user
    passwd = _with_entry(
        _read_file(container, "/etc/passwd"),
        f"{user.name}:x:{user.uid}:{user.gid}:{user.name}:{user.home}:/bin/sh",
        user.uid,
    )
    group = _with_entry(_read_file(container, "/etc/group"), f"{user.name}:x:{user.gid}:", user.gid)
    files = [("/etc/passwd", passwd), ("/etc/group", group), *plan.files]
    buffer = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buffer, mode="w") as tar:  # Docker makes missing parents
        for path, data in files:
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o644, now
            tar.addfile(info, io.BytesIO(data))
        for path in plan.owned_dirs:
            info = tarfile.TarInfo(path.strip("/"))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
            info.uid, info.gid = user.uid, user.gid
            tar.addfile(info)
    container.put_archive("/", buffer.getvalue())  # pyright: ignore[reportUnknownMemberType]  # untyped in the stubs
    return files[-1]


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
    client: docker.DockerClient, image: str, plan: Prime, **options: Any
) -> Container:
    """Create a container, :func:`prime` it and start it (see :func:`_started`)."""
    container = _started(client, image, plan, options)
    container.reload()
    return container


def _started(
    client: docker.DockerClient, image: str, plan: Prime, options: dict[str, Any]
) -> Container:
    """Create, prime and start a container; a fresh one again if the engine lost its root.

    Docker 20.10's overlay2 (Debian 12's engine, on a recent kernel) sometimes loses a
    created container's root file system while another container is being removed
    (which happens all the time on a shared engine; a plain ``docker create`` /
    ``start`` / ``rm -f`` loop on a few threads shows it). Then the files :func:`prime`
    wrote are not in the container, or an archive call fails, or ``start`` does ("exec:
    python3: executable file not found"). So any of these makes a fresh container, up
    to :data:`_START_ATTEMPTS` in all. A real error (an image without ``python3``)
    fails the same way each time, quickly, and the last error is the one raised.
    """
    for attempt in range(1, _START_ATTEMPTS + 1):
        container = client.containers.create(image, **options)
        try:
            if not _primed(container, prime(container, plan)):
                raise docker.errors.APIError(
                    f"the Docker engine lost the files written into {container.name} before "
                    f"it started ({attempt} times)"
                )
            container.start()
        except docker.errors.APIError:
            container.remove(force=True)
            if attempt == _START_ATTEMPTS:
                raise
            time.sleep(_RETRY_PAUSE_SECONDS * attempt)  # a worker thread, not the loop
        except BaseException:
            container.remove(force=True)
            raise
        else:
            return container
    raise AssertionError("unreachable")  # the last attempt returns or raises


def _primed(container: Container, written: tuple[str, bytes]) -> bool:
    """Whether the last file :func:`prime` wrote reads back whole (see :func:`_started`).

    Always a file ``prime`` wrote — at least the user's ``/etc/group`` — so a container
    with no files of berth's (``prepare``) is checked too: without its user entry and
    home ownership it would run as a stranger to its own home.
    """
    path, data = written
    try:
        return _read_file(container, path) == data
    except docker.errors.APIError:  # the engine lost the root while reading it
        return False


def run_to_end(
    client: docker.DockerClient,
    image: str,
    command: list[str],
    emit: Callable[[str | None], None],
    plan: Prime,
    **options: Any,
) -> int:
    """Run a container to its end, sending each output line to ``emit``; its exit status."""
    container: Container | None = None
    try:
        container = _started(client, image, plan, {"command": command, **options})
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
