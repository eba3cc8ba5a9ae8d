"""Fixtures of the HTTP API tests: real HTTP clients for a live server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.api import API, Connect, LiveServer


@pytest.fixture
def connect(live_server: LiveServer) -> Iterator[Connect]:
    clients: list[httpx.Client] = []

    def make(token: str | None) -> httpx.Client:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        client = httpx.Client(base_url=live_server.url + API, headers=headers, timeout=30.0)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def admin(live_server: LiveServer, connect: Connect) -> httpx.Client:
    return connect(live_server.admin_token)
