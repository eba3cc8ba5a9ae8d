"""AuthzStore's half for template ranking signals and workspace activity.

Ranking signals are the owner's own usage plus an organization-wide developer count:
the actor must be allowed to read the owner's workspaces in the organization, and only
templates the actor can see are ranked (the others come back as if they did not
exist). Touching a workspace (recording activity) is a workspace update.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from berth.db.authz_base import AuthzBase, not_found, template_resource
from berth.db.policy import Action, Kind, Resource
from berth.records import TemplateRankingSignals, Workspace


class AffinityAuthz(AuthzBase):
    async def get_template_ranking_signals(
        self,
        *,
        owner_id: uuid.UUID,
        organization_id: uuid.UUID,
        template_ids: Sequence[uuid.UUID],
        since: dt.datetime,
    ) -> list[TemplateRankingSignals]:
        self._require(Action.READ, Resource(Kind.WORKSPACE, organization_id, owner_id))
        # The signals count workspaces of this organization only, so a template of
        # another organization has none: the organization's visible templates, in one
        # query however many are asked about, are all that can have any.
        readable = {
            t.id
            for t in await self._inner.list_templates(organization_ids=[organization_id])
            if self._can(Action.READ, template_resource(t))
        }
        visible = [template_id for template_id in template_ids if template_id in readable]
        return await self._inner.get_template_ranking_signals(
            owner_id=owner_id, organization_id=organization_id, template_ids=visible, since=since
        )

    async def touch_workspace(self, workspace_id: uuid.UUID, now: dt.datetime) -> Workspace | None:
        workspace = await self._inner.get_workspace_by_id(workspace_id)
        if workspace is None:
            raise not_found(Kind.WORKSPACE)
        self._require(
            Action.UPDATE,
            Resource(Kind.WORKSPACE, workspace.organization_id, workspace.owner_id),
        )
        return await self._inner.touch_workspace(workspace_id, now)
