"""``list_templates`` (spec §11) on real databases: filtering, ranking, paging, items.

The clock is the test's :class:`FakeClock`, so recency decay is exact.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest

from berth.clock import FakeClock
from berth.db.engine import Database
from berth.domain import ranking
from berth.domain.actors import as_system
from berth.domain.ranking import Ranked, affinity_score, query_score, recommend
from berth.records import Template, TemplateRankingSignals
from berth.tools import templates as lt
from berth.tools.context import ChatContext
from berth.tools.registry import ListTemplatesArgs, call_tool, tool_by_name
from tests.support.chats import Org, add_template, add_workspace, error_text, make_org, payload

pytestmark = pytest.mark.anyio

DAY = dt.timedelta(days=1)
LN3, LN2 = math.log(3), math.log(2)


@pytest.fixture
async def org(db: Database, clock: FakeClock) -> Org:
    return await make_org(db, clock)


def _allow(*ids: uuid.UUID) -> Callable[[], Awaitable[frozenset[uuid.UUID]]]:
    async def read() -> frozenset[uuid.UUID]:
        return frozenset(ids)

    return read


async def _list(org: Org, **arguments: object) -> dict[str, Any]:
    return payload(await call_tool(org.ctx(), "list_templates", dict(arguments)))


def _items(result: dict[str, Any]) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], result["templates"])


def _names(result: dict[str, Any]) -> list[str]:
    return [str(t["name"]) for t in _items(result)]


# --- declaration ------------------------------------------------------------------------


@pytest.mark.spec("lt.decl")
def test_declaration() -> None:
    """[lt.decl] Name, description and argument descriptions verbatim; read-only."""
    spec = tool_by_name("list_templates")
    assert spec is not None
    assert spec.description == (
        "List workspace templates as a ranked shortlist, optionally filtered by a query "
        "matching template name, display name, or description. Each result includes a short "
        "README excerpt for routing context; call read_template for the full README and "
        "parameters. Follow the next_step field in the result. Returns 10 per page; fetch "
        "next_page only when no listed template fits the request."
    )
    props = spec.input_schema()["properties"]
    assert props["query"]["type"] == "string"
    assert props["query"]["description"] == (
        "Optional text to filter templates by name, display name, or description."
    )
    assert props["page"]["type"] == "integer"
    assert props["page"]["description"] == "Page number (starts at 1)."
    assert spec.input_schema().get("required", []) == []
    assert spec.args is ListTemplatesArgs
    assert spec.hints.read_only
    assert not spec.hints.destructive


@pytest.mark.spec("lt.decl")
async def test_owner_authorization_failure(org: Org) -> None:
    """[lt.decl] Runs as the owner; an owner that cannot be loaded is a text error."""
    gone = ChatContext(
        db=org.db, chat_id=org.chat.id, organization_id=org.org_id, owner_id=uuid.uuid4()
    )
    result = await call_tool(gone, "list_templates", {})
    assert error_text(result) == (
        "authorize list_templates owner: load user authorization: user not found"
    )


# --- filtering and query ---------------------------------------------------------------


@pytest.mark.spec("lt.query")
async def test_only_live_templates_of_the_chat_org_within_the_allowlist(org: Org) -> None:
    """[lt.query] Non-deleted, non-deprecated templates of the chat's org; allowlist applies."""
    keep = await add_template(org, "keep")
    await add_template(org, "other")
    await add_template(org, "old", deprecated="use keep instead")
    await add_template(org, "gone", deleted=True)
    await add_template(org, "foreign", organization_id=org.other_org_id)
    assert _names(await _list(org)) == ["keep", "other"]
    allowed = payload(await lt.list_templates(org.ctx(allowlist=_allow(keep.id))))
    assert _names(allowed) == ["keep"]
    empty = payload(await lt.list_templates(org.ctx(allowlist=_allow())))
    assert _names(empty) == ["keep", "other"]


def _tpl(name: str, display: str = "", description: str = "") -> Template:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return Template(
        id=uuid.uuid4(), organization_id=uuid.uuid4(), name=name, display_name=display,
        description=description, icon="", active_version_id=None, deprecated="", deleted=False,
        default_ttl_ms=0, daily_cost=0, require_active_version=False, created_by=uuid.uuid4(),
        created_at=now, updated_at=now,
    )  # fmt: skip


@pytest.mark.spec("lt.query")
def test_query_score_tiers() -> None:
    """[lt.query] Exact 4, prefix 3, contains 2 over name/display name; description 1."""
    go = _tpl("go-lang", "Go Language", "Compile Go programs")
    assert query_score(go, "go-lang") == 4
    assert query_score(go, "  GO-LANG ") == 4  # lower-cased and trimmed
    assert query_score(go, "golang") == 4  # compared with "-", " ", "_" removed
    assert query_score(go, "go language") == 4  # the display name
    assert query_score(go, "go_lang") == 4
    assert query_score(go, "go") == 3
    assert query_score(go, "golan") == 3
    assert query_score(go, "lang") == 2
    assert query_score(go, "langu age") == 2  # "language" contains "language"
    assert query_score(go, "programs") == 1
    assert query_score(go, "compilego") == 1
    assert query_score(go, "rust") == 0
    assert query_score(go, "   ") == 0
    assert query_score(go, " - ") == 0  # nothing left after removing separators


@pytest.mark.spec("lt.query", "lt.order")
async def test_query_filters_and_orders_by_score(org: Org) -> None:
    """[lt.query] [lt.order] A query drops non-matches; higher scores first."""
    await add_template(org, "python", description="Python 3 with pip")
    await add_template(org, "python-ml", description="Machine learning")
    await add_template(org, "data", display_name="Data Science", description="uses python")
    await add_template(org, "rust")
    result = await _list(org, query="python")
    assert _names(result) == ["python", "python-ml", "data"]
    assert "next_page" not in result


# --- affinity ---------------------------------------------------------------------------


@pytest.mark.spec("lt.affinity")
async def test_ranking_signals_count_what_the_spec_says(org: Org) -> None:
    """[lt.affinity] Active = live + latest build a start that succeeded or is in progress;
    recently deleted = within 60 days; last use = latest ``last_used_at`` within 60 days;
    developers = distinct owners of live workspaces in the org."""
    tpl = await add_template(org, "dev")
    await add_workspace(org, tpl, "old-deleted", deleted=True)  # deleted 61 days ago
    org.clock.advance(61 * DAY)
    await add_workspace(org, tpl, "running")
    await add_workspace(org, tpl, "starting", status="pending")
    await add_workspace(org, tpl, "failed", status="failed")
    await add_workspace(org, tpl, "stopped", transition="stop")
    await add_workspace(org, tpl, "deleted", deleted=True)
    await add_workspace(org, tpl, "theirs", owner=org.other)
    await add_workspace(org, tpl, "theirs-gone", owner=org.other, deleted=True)
    org.clock.advance(DAY)
    async with org.db.read(as_system()) as store:
        (signals,) = await store.get_template_ranking_signals(
            owner_id=org.owner.id,
            organization_id=org.org_id,
            template_ids=[tpl.id],
            since=org.clock.now() - ranking.LOOKBACK,
        )
    assert signals.active_count == 2
    assert signals.deleted_recent_count == 1
    assert signals.last_used_at == org.clock.now() - DAY
    assert signals.org_developers == 2


@pytest.mark.spec("lt.affinity")
def test_affinity_formula() -> None:
    """[lt.affinity] 10 × (active + 0.5 × deleted) × 0.5^(days/14) + ln(1 + developers)."""
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    tid = uuid.uuid4()
    used = TemplateRankingSignals(
        tid, active_count=2, deleted_recent_count=1, last_used_at=now - 14 * DAY, org_developers=4
    )
    assert affinity_score(used, now) == pytest.approx(10 * 2.5 * 0.5 + math.log(5))
    # Without a last use there is no personal part, whatever the counts say.
    unused = TemplateRankingSignals(tid, active_count=3, org_developers=1)
    assert affinity_score(unused, now) == pytest.approx(math.log(2))
    # A last use "in the future" counts as now.
    future = TemplateRankingSignals(tid, active_count=1, last_used_at=now + DAY)
    assert affinity_score(future, now) == pytest.approx(10.0)
    assert affinity_score(TemplateRankingSignals(tid), now) == 0.0


@pytest.mark.spec("lt.affinity", "lt.order")
async def test_affinity_orders_without_a_query(org: Org) -> None:
    """[lt.affinity] [lt.order] Recently used by the owner first, then popular, then by name."""
    popular = await add_template(org, "popular")
    mine = await add_template(org, "mine")
    await add_template(org, "a-unused")
    await add_template(org, "b-unused")
    await add_workspace(org, popular, "p1", owner=org.other)
    await add_workspace(org, popular, "p2")
    org.clock.advance(30 * DAY)
    await add_workspace(org, mine, "m1")
    result = await _list(org)
    # mine: 10 × 1 + ln 2; popular: 10 × 1 × 0.5^(30/14) + ln 3 — still below.
    assert _names(result) == ["mine", "popular", "a-unused", "b-unused"]


@pytest.mark.spec("lt.order")
def test_ties_break_by_name_then_id() -> None:
    """[lt.order] Equal scores: name ascending, then id ascending."""
    a1, a2, b = _tpl("a"), _tpl("a"), _tpl("b")
    ranked = lt.rank([Ranked(b), Ranked(a2), Ranked(a1)], "")
    expected_a = sorted([a1, a2], key=lambda t: str(t.id))
    assert [r.template for r in ranked] == [*expected_a, b]
    # With a query, the query score outranks affinity.
    strong, weak = Ranked(_tpl("x"), 2, affinity=0.0), Ranked(_tpl("y"), 1, affinity=99.0)
    assert [r.template.name for r in lt.rank([weak, strong], "q")] == ["x", "y"]
    assert [r.template.name for r in lt.rank([strong, weak], "")] == ["y", "x"]


# --- paging -----------------------------------------------------------------------------


@pytest.mark.spec("lt.page")
async def test_pages_of_ten(org: Org) -> None:
    """[lt.page] 10 per page, ``next_page`` only when more; page < 1 is page 1."""
    for i in range(23):
        await add_template(org, f"t{i:02d}")
    first = await _list(org)
    assert first["page"] == 1
    assert first["next_page"] == 2
    assert _names(first) == [f"t{i:02d}" for i in range(10)]
    assert _names(await _list(org, page=2)) == [f"t{i:02d}" for i in range(10, 20)]
    last = await _list(org, page=3)
    assert _names(last) == ["t20", "t21", "t22"]
    assert "next_page" not in last
    for page in (0, -4):
        again = await _list(org, page=page)
        assert again["page"] == 1
        assert _names(again) == _names(first)
    beyond = await _list(org, page=9)
    assert beyond["templates"] == []
    assert "next_page" not in beyond


# --- items ------------------------------------------------------------------------------

README = """---
title: Python
tags: [python]
---
# Python workspace

A **sandboxed** workspace with [pip](https://pip.pypa.io) and ![badge](https://x/b.svg) git.

```sh
pip install -r requirements.txt
```
"""


@pytest.mark.spec("lt.items")
async def test_item_fields_and_omissions(org: Org) -> None:
    """[lt.items] id, name, display_name?, description? (≤ 200, …), active_developers?,
    your_workspace_count?, last_used_by_you? (RFC 3339), readme_excerpt? (plain text)."""
    full = await add_template(
        org, "python", display_name="  Python 3  ", description="d" * 250, readme=README
    )
    bare = await add_template(org, "bare", display_name="   ", description="  ", readme=" \n ")
    org.clock.set(dt.datetime(2026, 6, 9, 10, 4, 18, 123456, tzinfo=dt.UTC))
    await add_workspace(org, full, "mine")
    await add_workspace(org, full, "theirs", owner=org.other)
    items = {str(i["name"]): i for i in _items(await _list(org))}
    item = items["python"]
    assert item == {
        "id": str(full.id),
        "name": "python",
        "display_name": "Python 3",
        "description": "d" * 199 + "…",
        "active_developers": 2,
        "your_workspace_count": 1,
        "last_used_by_you": "2026-06-09T10:04:18.123456Z",
        "readme_excerpt": "Python workspace\nA sandboxed workspace with pip and git.\n"
        "pip install -r requirements.txt",
    }
    assert items["bare"] == {"id": str(bare.id), "name": "bare"}


@pytest.mark.spec("lt.items")
async def test_readme_excerpt_is_cut_at_1000_characters(org: Org) -> None:
    """[lt.items] The excerpt is at most 1000 characters, ``…`` when cut."""
    await add_template(org, "long", readme="word " * 600)
    (item,) = _items(await _list(org))
    excerpt = item["readme_excerpt"]
    assert isinstance(excerpt, str)
    assert len(excerpt) == 1000
    assert excerpt.endswith("…")
    assert excerpt.startswith("word word")


# --- recommendation and next step -------------------------------------------------------


def _ranked(*entries: tuple[int, float]) -> list[Ranked]:
    return [Ranked(_tpl(f"t{i}"), score, affinity=aff) for i, (score, aff) in enumerate(entries)]


@pytest.mark.spec("lt.recommend")
def test_recommendation_rules() -> None:
    """[lt.recommend] Every branch of the confidence rules, with 1e-9 slack."""
    use, ask = ranking.NEXT_STEP_USE_RECOMMENDED, ranking.NEXT_STEP_ASK_USER
    # Nothing ranked.
    assert recommend([], 0) == (None, ranking.NEXT_STEP_NO_TEMPLATES)
    assert recommend([], 3) == (None, ranking.NEXT_STEP_NO_MATCHES)
    # The only visible template, ranked: it, whatever its scores.
    (only,) = _ranked((0, 0.0))
    assert recommend([only], 1) == (only.template.id, use)
    # One ranked of several visible, with no query: affinity decides.
    assert recommend(_ranked((0, 0.0)), 2) == (None, ask)
    # A decisive query score.
    top = _ranked((3, 0.0), (2, 50.0))
    assert recommend(top, 5) == (top[0].template.id, use)
    single = _ranked((1, 0.0))
    assert recommend(single, 5) == (single[0].template.id, use)
    # A query tie: only a clear affinity gap (ln 3 − ln 2) decides; no floor needed.
    gap = LN3 - LN2
    tie = _ranked((2, gap), (2, 0.0))
    assert recommend(tie, 5) == (tie[0].template.id, use)
    assert recommend(_ranked((2, gap - 1e-6), (2, 0.0)), 5) == (None, ask)
    assert recommend(_ranked((2, gap - 1e-10), (2, 0.0)), 5)[1] == use  # within the slack
    # No query: the top must reach ln 3 …
    assert recommend(_ranked((0, LN3 - 1e-6)), 5) == (None, ask)
    alone = _ranked((0, LN3 - 1e-10))
    assert recommend(alone, 5) == (alone[0].template.id, use)
    low_next = _ranked((0, LN3), (0, LN3 - 1e-6))
    assert recommend(low_next, 5)[1] == use  # … and a runner-up below ln 3 does not matter
    # … and a runner-up also at ln 3 or more needs the gap.
    assert recommend(_ranked((0, 5.0), (0, 5.0 - gap + 1e-6)), 5) == (None, ask)
    clear = _ranked((0, 5.0), (0, 5.0 - gap))
    assert recommend(clear, 5) == (clear[0].template.id, use)
    # Without ranking signals only a decisive query recommends.
    assert recommend(_ranked((0, 9.0), (0, 0.0)), 5, True) == (None, ask)


@pytest.mark.spec("lt.recommend")
async def test_two_developers_versus_one_recommends(org: Org) -> None:
    """[lt.recommend] With no query, ln(1+2) vs ln(1+1) is exactly the floor and the gap."""
    two = await add_template(org, "two")
    one = await add_template(org, "one")
    await add_workspace(org, two, "a", owner=org.other)
    await add_workspace(org, two, "b", owner=org.admin)
    await add_workspace(org, one, "c", owner=org.other)
    result = await _list(org)
    assert _names(result) == ["two", "one"]
    assert result["recommended_template_id"] == str(two.id)
    assert result["next_step"] == ranking.NEXT_STEP_USE_RECOMMENDED


@pytest.mark.spec("lt.next-step")
async def test_the_four_next_steps(org: Org) -> None:
    """[lt.next-step] Each next_step string, verbatim."""
    none = await _list(org)
    assert none == {
        "templates": [],
        "page": 1,
        "next_step": "No templates are available to this chat. Inform the user.",
    }
    only = await add_template(org, "only")
    single = await _list(org)
    assert single["recommended_template_id"] == str(only.id)
    assert single["next_step"] == (
        "Use recommended_template_id with create_workspace. Call read_template first only "
        "if you need parameter or preset details."
    )
    await add_template(org, "second")
    ask = await _list(org)
    assert "recommended_template_id" not in ask
    assert ask["next_step"] == (
        "Do not call create_workspace yet. Ask the user to choose a template, unless they "
        "already named one."
    )
    nothing = await _list(org, query="cobol")
    assert nothing["templates"] == []
    assert nothing["next_step"] == (
        "No templates matched the query. Retry without a query or ask the user."
    )
