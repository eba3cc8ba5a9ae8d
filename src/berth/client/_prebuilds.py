"""The prebuild pool (site owners): every prebuild and preset pool, pause and resume."""

from __future__ import annotations

from berth.client._core import ClientCore
from berth.client.models import PrebuildPool

__all__ = ["PrebuildsApi"]


class PrebuildsApi(ClientCore):
    def prebuilds(self) -> PrebuildPool:
        """``GET /prebuilds``: every prebuilt workspace, each preset's pool (desired,
        actual, ready, failures) and whether reconciling is paused. Site owners only:
        anyone else gets :class:`ApiError` 403."""
        return self._get(PrebuildPool, "/prebuilds")

    def pause_prebuilds(self) -> PrebuildPool:
        """Stop reconciling site-wide (no prebuild is created or deleted; claims still
        take what is ready); the pool as it is now."""
        return self._parse(PrebuildPool, self._request("POST", "/prebuilds/pause"))

    def resume_prebuilds(self) -> PrebuildPool:
        """Reconcile again from the next cycle on; the pool as it is now."""
        return self._parse(PrebuildPool, self._request("POST", "/prebuilds/resume"))
