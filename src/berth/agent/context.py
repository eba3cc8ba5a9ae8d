"""What the RPC handlers and scripts share: the agent directory and environment.

Both come from the latest manifest, which can change while requests are running (a
prebuilt workspace claimed by a user gets a new manifest), so they are read under a
lock and handed out as copies. Relative paths in every RPC resolve against the agent
directory; ``~`` expands to ``$HOME`` of the agent process.
"""

from __future__ import annotations

import os
import threading
from typing import Any, cast

from .processes import ProcessTable

# The agent's own secret must not leak into the commands it runs for the chat.
_PRIVATE_ENV = ("BERTH_AGENT_TOKEN",)


def expand(path: str) -> str:
    """``~`` and ``~user`` expanded."""
    return os.path.expanduser(path)


class AgentContext:
    """The manifest-derived settings and the process table, shared by all threads."""

    def __init__(self, directory: str = "", env: dict[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._directory = directory
        self._env: dict[str, str] = dict(env or {})
        self.processes = ProcessTable()

    def configure(self, directory: str, env: dict[str, str]) -> None:
        """Adopt a manifest's directory and env."""
        with self._lock:
            self._directory = directory
            self._env = dict(env)

    def directory(self) -> str:
        """The agent directory, absolute (``$HOME`` when the manifest names none)."""
        with self._lock:
            directory = self._directory
        home = os.path.expanduser("~")
        if not directory:
            return home
        return os.path.abspath(os.path.join(home, expand(directory)))

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment for a child: the agent's own, the manifest's, then ``extra``."""
        env = {k: v for k, v in os.environ.items() if k not in _PRIVATE_ENV}
        with self._lock:
            env.update(self._env)
        if extra:
            env.update(extra)
        return env

    def resolve(self, path: str) -> str:
        """An absolute, normalized path: ``~`` expanded, relative to the agent directory."""
        return os.path.abspath(os.path.join(self.directory(), expand(path)))


def manifest_env(manifest: dict[str, Any]) -> dict[str, str]:
    """The manifest's ``env``, keeping only string values under valid names."""
    raw = manifest.get("env")
    env: dict[str, str] = {}
    if isinstance(raw, dict):
        for key, value in cast(dict[Any, Any], raw).items():
            if not isinstance(key, str) or not isinstance(value, str):
                continue
            if key and "=" not in key and "\0" not in key and "\0" not in value:
                env[key] = value
    return env
