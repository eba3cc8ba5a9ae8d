"""AuthzStore: every Store method has an authorization test, or a listed reason.

The cases live in ``authz_cases_*.py``; each runs a method once as an actor who may
and once as one who may not. Not-allowed must look exactly like not-found.
"""

from __future__ import annotations

import inspect

import pytest

from berth.db.authz import AuthzStore, unwrapped_store_methods
from berth.db.engine import Database
from berth.db.querier import query_names
from berth.db.store import Store
from berth.domain.actors import Actor, as_system
from tests.db import (
    authz_cases_accounts,
    authz_cases_affinity,
    authz_cases_prebuilds,
    authz_cases_replicas,
    authz_cases_web,
    authz_cases_workspaces,
)
from tests.db.authz_world import CASES, as_, denied, make_world

pytestmark = pytest.mark.anyio

CASE_MODULES = (
    authz_cases_accounts,
    authz_cases_workspaces,
    authz_cases_affinity,
    authz_cases_prebuilds,
    authz_cases_replicas,
    authz_cases_web,
)

# --- the coverage check -----------------------------------------------------------------

REASONS: dict[str, str] = {}
"""Store methods deliberately without an authorization case, with the reason."""


def _store_methods() -> set[str]:
    return {
        name
        for name, _ in inspect.getmembers(Store, inspect.iscoroutinefunction)
        if not name.startswith("_")
    }


def test_the_querier_protocol_names_exactly_the_store_methods() -> None:
    # pyright proves Store and AuthzStore implement the protocol; this proves the
    # protocol is the Store's whole interface, so a new query cannot skip authorization.
    assert set(query_names()) == _store_methods()


def test_every_store_method_is_wrapped() -> None:
    assert unwrapped_store_methods() == []


def test_the_authorized_store_holds_the_store_instead_of_being_one() -> None:
    assert not issubclass(AuthzStore, Store)
    assert not any(
        name.startswith(("_one", "_all", "_insert", "_conn")) for name in dir(AuthzStore)
    )


def test_every_store_method_has_an_authorization_test() -> None:
    methods = _store_methods()
    missing = sorted(methods - set(CASES) - set(REASONS))
    stale = sorted((set(CASES) | set(REASONS)) - methods)
    assert missing == [], f"Store methods without an authorization test: {missing}"
    assert stale == [], f"authorization tests for methods that no longer exist: {stale}"


@pytest.mark.parametrize("method", sorted(CASES))
async def test_authorization(method: str, db: Database) -> None:
    await CASES[method](db, await make_world(db))


async def test_no_actor_is_refused(db: Database) -> None:
    w = await make_world(db)
    nobody = Actor(user_id=None, username="anonymous")
    async with db.read(as_system()) as s:
        store = as_(s, nobody)
        assert await store.get_template_by_id(w.template.id) is None
        assert await store.list_templates() == []
        assert await store.get_chat_by_id(w.chat.id) is None
        await denied(store.count_human_users())
