"""``list_templates`` reads the database in a constant number of statements, however many
templates there are (issue 12): the page's READMEs are one read, not one per template."""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from typing import Any, cast

import pytest
from sqlalchemy import event

from berth.clock import FakeClock
from berth.db.engine import Database
from berth.tools.registry import call_tool
from tests.support.chats import Org, add_template, add_workspace, make_org, payload

pytestmark = pytest.mark.anyio


@contextmanager
def statements(db: Database) -> Generator[list[str]]:
    """The SQL statements the database runs inside the block."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def _list(org: Org) -> tuple[dict[str, Any], int]:
    with statements(org.db) as seen:
        result = payload(await call_tool(org.ctx(), "list_templates", {}))
    return result, len(seen)


async def test_the_statement_count_does_not_grow_with_the_templates(
    db: Database, clock: FakeClock
) -> None:
    org = await make_org(db, clock)
    first = await add_template(org, "t000", readme="# t000\n\nThe README of t000.")
    await add_workspace(org, first, "w0", owner=org.owner)
    one, with_one = await _list(org)
    assert [t["name"] for t in one["templates"]] == ["t000"]
    for i in range(1, 25):  # more than a page (10)
        await add_template(org, f"t{i:03d}", readme=f"# t{i:03d}\n\nThe README of t{i:03d}.")
    many, with_many = await _list(org)
    assert with_many == with_one
    items = cast(list[dict[str, Any]], many["templates"])
    assert len(items) == 10
    assert many["next_page"] == 2
    for item in items:  # each README is its own template's
        assert item["readme_excerpt"].endswith(f"The README of {item['name']}.")
