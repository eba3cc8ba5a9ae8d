"""First start: default org, system users, ``admin`` with a token, example templates."""

from __future__ import annotations

import asyncio

import pytest

from berth.db.engine import Database, create_engine
from berth.domain.actors import as_system
from berth.services.accounts import authenticate
from berth.services.bootstrap import Bootstrapped, bootstrap

pytestmark = pytest.mark.anyio


async def test_first_start_creates_admin_org_and_examples(db: Database) -> None:
    result = await bootstrap(db)
    assert result is not None
    assert sorted(result.templates) == ["python", "python-docker"]
    actor = await authenticate(db, result.token)
    assert actor.username == "admin"
    assert actor.is_site_owner
    async with db.read(as_system()) as store:
        org = await store.get_default_organization()
        assert org is not None
        assert actor.is_member_of(org.id)
        users = {u.username: u for u in await store.list_users(include_system=True)}
        assert set(users) == {"admin", "prebuilds", "system"}
        assert users["prebuilds"].is_system
        everyone = await store.get_everyone_group(org.id)
        assert everyone is not None
    assert await bootstrap(db) is None, "a second start must not bootstrap again"


async def test_two_servers_bootstrapping_one_database_create_one_admin(database_url: str) -> None:
    databases = [Database(create_engine(database_url)) for _ in range(2)]
    try:
        results = await asyncio.gather(*(bootstrap(d) for d in databases))
        created = [r for r in results if isinstance(r, Bootstrapped)]
        assert len(created) == 1
        async with databases[0].read(as_system()) as raw:
            users = await raw.list_users()
            templates = await raw.list_templates()
        assert [u.username for u in users] == ["admin"]
        assert sorted(t.name for t in templates) == ["python", "python-docker"]
    finally:
        for d in databases:
            await d.dispose()
