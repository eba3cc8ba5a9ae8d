"""Helpers of the prebuild pool tests: a template whose preset asks for prebuilds, and
the wait for its pool to fill.

The template is on the fake backend with no agents, so a prebuild is ready as soon as
its build succeeds. Nothing announces the pool's changes over the API (there is no
stream of it), so :func:`wait_for_pool` polls ``GET /prebuilds``, bounded, through the
one polling helper (:func:`tests.support.waiting.until_sync`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.waiting import until_sync

PRESET = "warm"

FILL_WITHIN = 60.0
"""Seconds for the reconciler to fill a pool on the fake backend. It normally takes well
under one: a push wakes it, and so does each prebuild's settled build."""


def pooled_template_yaml(name: str, instances: int = 2) -> str:
    """A template with one preset, :data:`PRESET`, that asks for ``instances`` prebuilds."""
    return (
        f"name: {name}\n"
        "backend: {type: fake}\n"
        "parameters:\n"
        "  - {name: size, type: string, default: small}\n"
        "presets:\n"
        f"  - name: {PRESET}\n"
        "    parameters: {size: large}\n"
        f"    prebuilds: {{instances: {instances}}}\n"
    )


def pool_is_full(body: dict[str, Any], count: int, preset: str = PRESET) -> bool:
    """The pool of ``preset`` holds ``count`` prebuilds, all ready, and nothing else."""
    rows = [p for p in body["prebuilds"] if p["preset_name"] == preset]
    pools = [p for p in body["presets"] if p["preset_name"] == preset]
    return (
        len(rows) == count
        and all(p["ready"] for p in rows)
        and len(pools) == 1
        and pools[0]["actual"] == pools[0]["ready"] == count
    )


def wait_for_pool(
    read: Callable[[], dict[str, Any]], count: int, preset: str = PRESET
) -> dict[str, Any]:
    """The body of ``GET /prebuilds`` (``read``) once the pool of ``preset`` is full."""
    # Polled: no event stream of the pool exists to wait on (see the module's docstring).
    return until_sync(
        read,
        lambda body: pool_is_full(body, count, preset),
        within=FILL_WITHIN,
        what=f"{count} ready prebuilds of preset {preset!r}",
    )
