"""Health, organizations and site configuration."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

import berth
from berth.api.deps import CtxDep
from berth.api.schemas import (
    ConfigOut,
    CreateOrganizationRequest,
    ErrorEnvelope,
    Health,
    OrganizationOut,
    ReplicaOut,
    SetConfigRequest,
)
from berth.services import accounts, replicas, siteconfig

router = APIRouter()


@router.get("/health", tags=["system"])
async def health() -> Health:
    return Health(status="ok", version=berth.__version__)


_OWNERS_ONLY: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorEnvelope, "description": "Only site owners see the replicas"}
}


@router.get("/replicas", tags=["system"], responses=_OWNERS_ONLY)
async def list_replicas(ctx: CtxDep) -> list[ReplicaOut]:
    """The server replicas sharing this database, live or stale (site owners)."""
    return [ReplicaOut.read(v.replica, live=v.live) for v in await replicas.list_replicas(ctx)]


@router.get("/organizations", tags=["organizations"])
async def list_organizations(ctx: CtxDep) -> list[OrganizationOut]:
    return [OrganizationOut.of(o) for o in await accounts.list_organizations(ctx)]


@router.post("/organizations", tags=["organizations"], status_code=status.HTTP_201_CREATED)
async def create_organization(body: CreateOrganizationRequest, ctx: CtxDep) -> OrganizationOut:
    org = await accounts.create_organization(
        ctx, name=body.name, display_name=body.display_name, description=body.description
    )
    return OrganizationOut.of(org)


@router.get("/config/{key}", tags=["config"])
async def get_config(key: str, ctx: CtxDep) -> ConfigOut:
    return ConfigOut(key=key, value=await siteconfig.get_config(ctx, key))


@router.put("/config/{key}", tags=["config"])
async def set_config(key: str, body: SetConfigRequest, ctx: CtxDep) -> ConfigOut:
    return ConfigOut(key=key, value=await siteconfig.set_config(ctx, key, body.value))
