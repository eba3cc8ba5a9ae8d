"""The Store: one named async method per query, composed from one mixin per area.

Store methods take plain values, return frozen records (:mod:`berth.records`) or
``None`` for a missing row, and never commit: the service that opened the transaction
(:class:`berth.db.engine.Database`) owns it. Authorization is not here; it wraps the
Store once, in :mod:`berth.db.authz`.
"""

from __future__ import annotations

from berth.db.store.accounts import AccountQueries
from berth.db.store.affinity import AffinityQueries
from berth.db.store.agents import AgentQueries
from berth.db.store.jobs import JobQueries
from berth.db.store.prebuilds import PrebuildQueries
from berth.db.store.replicas import ReplicaQueries
from berth.db.store.site import ChatQueries, SiteQueries
from berth.db.store.templates import TemplateQueries
from berth.db.store.web import WebQueries
from berth.db.store.workspaces import WorkspaceQueries


class Store(
    AccountQueries,
    TemplateQueries,
    WorkspaceQueries,
    JobQueries,
    AgentQueries,
    SiteQueries,
    ChatQueries,
    AffinityQueries,
    PrebuildQueries,
    ReplicaQueries,
    WebQueries,
):
    """All queries, bound to one connection inside one transaction."""


__all__ = ["Store"]
