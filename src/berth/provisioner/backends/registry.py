"""The backends a provisioner offers, by the name templates use in ``backend.type``."""

from __future__ import annotations

from berth.provisioner.spec import Backend


def make_backends(*, fake: bool = False) -> dict[str, Backend]:
    """Every real backend; each reports its own missing prerequisite (bwrap, Docker) per build.

    ``fake`` adds the fake backend, which starts nothing: for tests, never a default.
    """
    # Imported here: the Docker SDK is only loaded by a process that runs builds.
    from berth.provisioner.backends.docker import DockerBackend
    from berth.provisioner.backends.local import LocalBackend

    backends: dict[str, Backend] = {"local": LocalBackend(), "docker": DockerBackend()}
    if fake:
        from berth.provisioner.backends.fake import FakeBackend

        backends["fake"] = FakeBackend()
    return backends
