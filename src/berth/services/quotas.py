"""Quotas (DESIGN §10): group allowances and what a user has consumed.

A user's budget in an organization is the sum of their groups' allowances; no
allowance anywhere means unlimited (``budget`` is then ``None``). Consumption is the
``daily_cost`` of their live workspaces whose latest build starts. The provisioner
enforces it when a start build runs (``INSUFFICIENT_QUOTA``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from berth.db.authz import AuthzStore, not_found
from berth.db.policy import Kind
from berth.domain.enums import BuildReason
from berth.errors import INSUFFICIENT_QUOTA, BuildFailed, InvalidInput, Validation
from berth.records import Group, Workspace, WorkspaceBuild
from berth.services.base import Ctx, parse_uuid
from berth.services.refs import organization_in

MAX_ALLOWANCE = 1_000_000


@dataclass(frozen=True, slots=True)
class Quota:
    credits_consumed: int
    budget: int | None


async def get_quota(ctx: Ctx, user_id: uuid.UUID, organization_id: uuid.UUID) -> Quota:
    """What the user consumes in the organization, and their budget there."""
    async with ctx.read() as store:
        budget = await store.get_quota_allowance(user_id, organization_id)
        consumed = await store.get_quota_consumed(user_id, organization_id)
    return Quota(credits_consumed=consumed, budget=budget)


async def list_groups(ctx: Ctx, organization: str | None) -> list[Group]:
    async with ctx.read() as store:
        org = await organization_in(store, organization)
        return await store.list_groups_by_organization(org.id)


async def set_quota_allowance(
    ctx: Ctx, group_ref: str, organization: str | None, allowance: int
) -> Group:
    if not 0 <= allowance <= MAX_ALLOWANCE:
        raise InvalidInput(
            "Invalid quota allowance.",
            validations=[Validation("quota_allowance", f"must be between 0 and {MAX_ALLOWANCE}")],
        )
    async with ctx.write() as store:
        org = await organization_in(store, organization)
        group_id: uuid.UUID | None = parse_uuid(group_ref)
        groups = await store.list_groups_by_organization(org.id)
        group = next((g for g in groups if g.id == group_id or g.name == group_ref), None)
        if group is None:
            raise not_found(Kind.GROUP)
        updated = await store.update_group_quota_allowance(group.id, allowance)
    if updated is None:
        raise not_found(Kind.GROUP)
    return updated


async def check_quota(store: AuthzStore, workspace: Workspace, build: WorkspaceBuild) -> None:
    """Refuse a start build that would take the owner over their budget (the build
    step that enforces it, :func:`berth.services.builds.prepare`)."""
    if build.reason == BuildReason.PREBUILD.value:
        return  # prebuilds count against no user's quota; a claim checks the claimer's
    over = await over_quota(
        store, workspace.owner_id, workspace.organization_id, build.daily_cost, workspace.id
    )
    if over is not None:
        consumed, budget = over
        raise BuildFailed(
            f"insufficient quota: this workspace costs {build.daily_cost} credits a day, "
            f"{consumed} of {budget} are in use",
            code=INSUFFICIENT_QUOTA,
        )


async def over_quota(
    store: AuthzStore,
    owner_id: uuid.UUID,
    organization_id: uuid.UUID,
    cost: int,
    workspace_id: uuid.UUID | None = None,
) -> tuple[int, int] | None:
    """``(consumed, budget)`` when a workspace costing ``cost`` a day would take the owner
    over their budget (``workspace_id``'s own cost not counted twice); else ``None``."""
    if cost == 0:
        return None
    budget = await store.get_quota_allowance(owner_id, organization_id)
    if budget is None:
        return None
    exclude = [workspace_id] if workspace_id is not None else []
    consumed = await store.get_quota_consumed(
        owner_id, organization_id, exclude_workspace_ids=exclude
    )
    return (consumed, budget) if consumed + cost > budget else None
