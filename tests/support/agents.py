"""Helpers for the agent's tests: call an RPC as the agent's dispatcher does; find the
interpreters the built agent runs on."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
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


SYSTEM_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
"""The Python workspaces run the agent on (outside the venv)."""


def python39() -> str | None:
    """A working Python 3.9, if this machine has one (``BERTH_TEST_PYTHON39`` first)."""
    candidates = [os.environ.get("BERTH_TEST_PYTHON39", ""), shutil.which("python3.9") or ""]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3")))
    check = "import sys; sys.exit(sys.version_info[:2] != (3, 9))"
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", check], capture_output=True, check=False)
        if probe.returncode == 0:
            return candidate
    return None
