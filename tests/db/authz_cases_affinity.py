"""Authorization cases: template ranking signals and workspace activity."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from berth.db.authz import AuthzStore
from berth.db.engine import Database
from berth.domain.actors import as_chat_tools, as_system
from berth.errors import Forbidden, NotFound
from berth.records import TemplateRankingSignals
from tests.db.authz_cases_workspaces import alice_workspace
from tests.db.authz_world import World, as_, case, denied, uid


async def _signals(
    store: AuthzStore, w: World, owner: uuid.UUID, org: uuid.UUID
) -> list[TemplateRankingSignals]:
    return await store.get_template_ranking_signals(
        owner_id=owner,
        organization_id=org,
        template_ids=[w.template.id],
        since=w.template.created_at - dt.timedelta(days=60),
    )


@case("get_template_ranking_signals")
async def _(db: Database, w: World) -> None:
    await alice_workspace(db, w)
    alice_id, bob_id, org_a, org_b = uid(w.alice), uid(w.bob), w.org_a.id, w.org_b.id
    async with db.read(as_system()) as s:
        # Another user's usage is not theirs to read, in or out of the organization.
        await denied(_signals(as_(s, w.bob), w, alice_id, org_a))
        await denied(_signals(as_(s, w.tadmin), w, alice_id, org_a))
        # Nor their own, in an organization they are not a member of.
        await denied(_signals(as_(s, w.bob), w, bob_id, org_a))
        # In their own organization, templates they cannot see are left out.
        assert await _signals(as_(s, w.bob), w, bob_id, org_b) == []
        (mine,) = await _signals(as_(s, w.alice), w, alice_id, org_a)
        # Alice's one workspace is starting (its build is pending): active, one developer.
        assert (mine.template_id, mine.active_count, mine.org_developers) == (w.template.id, 1, 1)
        assert await _signals(as_(s, as_chat_tools()), w, alice_id, org_a) == [mine]


@case("touch_workspace")
async def _(db: Database, w: World) -> None:
    b = await alice_workspace(db, w)
    later = db.clock.now() + dt.timedelta(hours=1)
    async with db.write(as_system()) as s:
        with pytest.raises(NotFound):
            await as_(s, w.bob).touch_workspace(b.workspace.id, later)
        # The chat-tools actor may read the workspace but not change it.
        with pytest.raises(Forbidden):
            await as_(s, as_chat_tools()).touch_workspace(b.workspace.id, later)
        touched = await as_(s, w.alice).touch_workspace(b.workspace.id, later)
        assert touched is not None
        assert touched.last_used_at == later
