"""The backends a provisioner offers, by the name templates use in ``backend.type``."""

from __future__ import annotations

from berth.provisioner.spec import Backend


def make_backends() -> dict[str, Backend]:
    """Every backend; each reports its own missing prerequisite (bwrap, Docker) per build."""
    # Imported here: the Docker SDK is only loaded by a server that runs builds.
    from berth.provisioner.backends.docker import DockerBackend
    from berth.provisioner.backends.fake import FakeBackend
    from berth.provisioner.backends.local import LocalBackend

    return {
        "fake": FakeBackend(),
        "local": LocalBackend(),
        "docker": DockerBackend(),
    }
