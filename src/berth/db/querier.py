"""The Store's interface: every query, by name, with its signature (Coder's ``querier``).

Two classes implement :class:`Querier`: :class:`~berth.db.store.Store`, the queries,
and :class:`~berth.db.authz.AuthzStore`, the same queries with the actor authorized on
each. AuthzStore *holds* a Store (composition), so nothing reaches the database
through it unchecked. pyright proves both complete (:func:`_conforms`): a query added to
the Store but not to this protocol, or to the protocol but not authorized, is a type
error; ``tests/db/test_authz.py`` checks that the protocol names exactly the Store's
public methods and that each has an authorization test.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Protocol

from berth.db.querier_accounts import AccountQuerier, ChatQuerier, SiteQuerier, TemplateQuerier
from berth.db.querier_prebuilds import PrebuildQuerier
from berth.db.querier_replicas import ReplicaQuerier
from berth.db.querier_web import WebQuerier
from berth.db.querier_workspaces import (
    AffinityQuerier,
    AgentQuerier,
    JobQuerier,
    WorkspaceQuerier,
)

if TYPE_CHECKING:
    from berth.db.authz import AuthzStore
    from berth.db.store import Store


class Querier(
    AccountQuerier,
    TemplateQuerier,
    SiteQuerier,
    ChatQuerier,
    WorkspaceQuerier,
    JobQuerier,
    AgentQuerier,
    AffinityQuerier,
    PrebuildQuerier,
    ReplicaQuerier,
    WebQuerier,
    Protocol,
):
    """Every query. Implementations never commit: the caller's transaction does."""

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        ...


def query_names() -> frozenset[str]:
    """The names of every query of :class:`Querier`."""
    return frozenset(
        name
        for name, _ in inspect.getmembers(Querier, inspect.iscoroutinefunction)
        if not name.startswith("_")
    )


def _conforms(store: Store, authorized: AuthzStore) -> tuple[Querier, Querier]:  # pyright: ignore[reportUnusedFunction]
    """Never called: pyright checks that both implement every query of the protocol."""
    return store, authorized
