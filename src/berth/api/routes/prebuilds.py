"""The prebuild pool (site owners): every prebuild and preset pool, pause and resume.

Anyone else gets a 403, on the ``GET`` too. The OpenAPI document declares a 403 for
changes only (:func:`berth.api.errors.error_statuses`), so the ``GET`` declares its own.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from berth.api.deps import CtxDep
from berth.api.schemas import ErrorEnvelope, PrebuildPoolOut
from berth.services import prebuild_pool

router = APIRouter(tags=["prebuilds"])

_OWNERS_ONLY: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorEnvelope, "description": "Only site owners see the prebuild pool"}
}


@router.get("/prebuilds", responses=_OWNERS_ONLY)
async def get_prebuilds(ctx: CtxDep) -> PrebuildPoolOut:
    """Every prebuilt workspace and every preset's pool, and whether reconciling is paused."""
    return PrebuildPoolOut.of(await prebuild_pool.pool_status(ctx))


@router.post("/prebuilds/pause")
async def pause_prebuilds(ctx: CtxDep) -> PrebuildPoolOut:
    """Stop reconciling site-wide: no prebuild is created or deleted until resumed (claims
    still take what is ready). The pool as it is now."""
    return PrebuildPoolOut.of(await prebuild_pool.set_paused(ctx, True))


@router.post("/prebuilds/resume")
async def resume_prebuilds(ctx: CtxDep) -> PrebuildPoolOut:
    """Reconcile again: the pool is filled and cleaned up from the next cycle on."""
    return PrebuildPoolOut.of(await prebuild_pool.set_paused(ctx, False))
