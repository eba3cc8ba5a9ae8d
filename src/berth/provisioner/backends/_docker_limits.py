"""What a Docker workspace may use: the template's limits as container settings.

=================  =============================================================
``cpus``           ``nano_cpus`` (CFS quota)
``memory``         ``mem_limit``, and ``memswap_limit`` the same (no swap on top)
``pids``           ``pids_limit``, default 1024 (threads count too)
``tmp_size``       the size of the ``/tmp`` tmpfs and of ``/dev/shm``, default 1g
``disk``           not enforceable: the home is a volume of the ``local`` driver
=================  =============================================================

The ``/tmp`` and ``/dev/shm`` tmpfs are charged to the container's memory, so with
``memory`` set they count against it too. When the memory limit is reached the kernel
kills the process of the container with the largest footprint, which is the process
that allocates, not the agent (all of the container's processes have the same
``oom_score_adj``, 0, and an unprivileged process cannot lower its own). A limit the
engine cannot enforce (``docker info`` says so, or ``disk``) fails the build, naming
it, unless the template says ``limits: best-effort``; then the build log warns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from berth.domain.template import BackendDoc

__all__ = ["LIMITS_UNAVAILABLE", "RELAY_LIMITS", "Limits"]

LIMITS_UNAVAILABLE = "LIMITS_UNAVAILABLE"
RELAY_LIMITS: dict[str, Any] = {"mem_limit": 64 << 20, "pids_limit": 64}
"""The relay sidecar's own (fixed) limits."""


@dataclass(frozen=True, slots=True)
class Limits:
    """One workspace's limits, read from its template (defaults applied)."""

    cpus: float | None
    memory: int | None
    pids: int
    tmp_size: int
    disk: int | None
    best_effort: bool

    @classmethod
    def of(cls, backend: BackendDoc) -> Limits:
        return cls(
            cpus=backend.cpus,
            memory=backend.memory_bytes,
            pids=backend.pids_limit,
            tmp_size=backend.tmp_size_bytes,
            disk=backend.disk_bytes,
            best_effort=backend.best_effort,
        )

    def unenforceable(self, info: dict[str, Any]) -> list[str]:
        """The limits asked for that this engine (``docker info``) cannot hold."""
        missing: list[str] = []
        if self.cpus and not info.get("CpuCfsQuota", True):
            missing.append("cpus (the engine has no CPU quota support)")
        if self.memory and not info.get("MemoryLimit", True):
            missing.append("memory (the engine has no memory limit support)")
        if not info.get("PidsLimit", True):
            missing.append("pids (the engine has no pids limit support)")
        if self.disk:
            missing.append("disk (a Docker volume of the local driver has no quota)")
        return missing

    def container_options(self, info: dict[str, Any]) -> dict[str, Any]:
        """The ``containers.create`` keyword arguments that apply these limits."""
        options: dict[str, Any] = {
            "pids_limit": self.pids,
            "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={self.tmp_size},mode=1777"},  # noqa: S108
            "shm_size": self.tmp_size,
        }
        if self.cpus:
            options["nano_cpus"] = int(self.cpus * 1e9)
        if self.memory:
            options["mem_limit"] = self.memory
            if info.get("SwapLimit", False):
                options["memswap_limit"] = self.memory
        return options
