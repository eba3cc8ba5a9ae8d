"""The server's health, chats, and the site settings."""

from __future__ import annotations

from berth.client._core import ClientCore, given, segment
from berth.client.models import Chat, ConfigValue, Health, Replica

__all__ = ["SystemApi"]


class SystemApi(ClientCore):
    # --- server -------------------------------------------------------------

    def health(self) -> Health:
        """``GET /health``: the server is up (needs no token)."""
        return self._get(Health, "/health")

    def replicas(self) -> list[Replica]:
        """``GET /replicas``: the server replicas sharing the database (site owners)."""
        return self._get_list(Replica, "/replicas")

    # --- chats ----------------------------------------------------------------

    def create_chat(self, *, title: str = "", organization: str | None = None) -> Chat:
        """A new chat; its MCP endpoint is ``<url><chat.mcp_path>``."""
        body = {"title": title, **given(organization=organization)}
        return self._parse(Chat, self._request("POST", "/chats", json=body))

    def list_chats(self) -> list[Chat]:
        """Your chats, newest first."""
        return self._get_list(Chat, "/chats")

    def get_chat(self, chat: str) -> Chat:
        """A chat by id."""
        return self._get(Chat, f"/chats/{segment(chat)}")

    # --- site configuration -------------------------------------------------

    def get_config(self, key: str) -> ConfigValue:
        """A site setting: ``chat-workspace-ttl`` or ``chat-template-allowlist``."""
        return self._get(ConfigValue, f"/config/{segment(key)}")

    def set_config(self, key: str, value: str) -> ConfigValue:
        """Set a site setting; the answer holds the value as stored (canonical form)."""
        response = self._request("PUT", f"/config/{segment(key)}", json={"value": value})
        return self._parse(ConfigValue, response)
