"""Groups (quota allowances) and users' quota figures."""

from __future__ import annotations

from fastapi import APIRouter

from berth.api.deps import CtxDep, UserDep
from berth.api.schemas import GroupOut, GroupUpdateRequest, QuotaOut
from berth.services import quotas, refs

router = APIRouter(tags=["quotas"])


@router.get("/groups")
async def list_groups(ctx: CtxDep, organization: str | None = None) -> list[GroupOut]:
    return [GroupOut.of(g) for g in await quotas.list_groups(ctx, organization)]


@router.patch("/groups/{group}")
async def update_group(
    group: str, body: GroupUpdateRequest, ctx: CtxDep, organization: str | None = None
) -> GroupOut:
    return GroupOut.of(
        await quotas.set_quota_allowance(ctx, group, organization, body.quota_allowance)
    )


@router.get("/users/{user}/quota")
async def get_quota(user: UserDep, ctx: CtxDep, organization: str | None = None) -> QuotaOut:
    org = await refs.organization(ctx, organization)
    quota = await quotas.get_quota(ctx, user.id, org.id)
    return QuotaOut(credits_consumed=quota.credits_consumed, budget=quota.budget)
