"""Helpers for the agent's tests: call an RPC as the agent's dispatcher does."""

from __future__ import annotations

from typing import Any

import pytest

from berth.agent.context import AgentContext
from berth.agent.params import RpcError
from berth.agent.rpc import handle


def call(ctx: AgentContext, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run an RPC the way the agent does, returning its result."""
    return handle(ctx, method, params or {})


def call_error(ctx: AgentContext, method: str, params: dict[str, Any] | None = None) -> RpcError:
    """Run an RPC that must fail; its error."""
    with pytest.raises(RpcError) as caught:
        handle(ctx, method, params or {})
    return caught.value
