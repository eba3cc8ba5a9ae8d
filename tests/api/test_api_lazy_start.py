"""Server start-up without what it does not need yet (issue 12: healthy ≤ 1.5 s): the
MCP endpoint loads once the server is up and its first request waits for it; Alembic
loads only to migrate; the Docker SDK only when something asks Docker."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from berth.api import mcp_endpoint
from berth.api.app import MCP_PATH
from berth.api.server import running_server
from berth.settings import Settings

LAZY = ("mcp", "alembic", "docker")


def _settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        address="127.0.0.1:0",
        fake_backend=True,
        install_examples=False,
        provisioner_workers=0,
    )


def test_the_route_is_the_endpoints_path() -> None:
    assert MCP_PATH == mcp_endpoint.MCP_PATH


def test_importing_the_server_and_making_its_backends_loads_none_of_them() -> None:
    probe = (
        "import json, sys\n"
        "import berth.api.server, berth.cli.app\n"
        "from berth.provisioner.backends.registry import make_backends\n"
        "make_backends(fake=True)\n"
        f"print(json.dumps([m for m in {LAZY!r} if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout) == []


_SERVER = """
import json, sys
from pathlib import Path
from berth.api.server import running_server
from berth.settings import Settings

settings = Settings(
    data_dir=Path(sys.argv[1]), address="127.0.0.1:0", fake_backend=True,
    install_examples=False, provisioner_workers=0,
)
with running_server(settings) as server:
    loaded = sorted(m for m in ("alembic", "docker") if m in sys.modules)
    print(json.dumps({"url": server.url, "loaded": loaded}), flush=True)
    sys.stdin.readline()  # the test's MCP calls happen here
print(json.dumps({"mcp": "mcp" in sys.modules}), flush=True)
"""


@pytest.fixture
def migrated(tmp_path: Path) -> tuple[Path, str]:
    """A data dir a first start migrated and bootstrapped, and the admin's token."""
    with running_server(_settings(tmp_path)) as server:
        assert server.runtime.bootstrapped is not None
        token = server.runtime.bootstrapped.token
    return tmp_path, token


async def list_templates(url: str, token: str, chat_id: str) -> bool:
    """One MCP ``list_templates`` call in a session of its own; whether it succeeded."""
    headers = {"Authorization": f"Bearer {token}"}
    endpoint = f"{url}/api/v1/chats/{chat_id}/mcp"
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(endpoint, http_client=http)) as client,
    ):
        result = await client.call_tool("list_templates", {})
    return not result.is_error


def test_a_second_start_serves_mcp_from_its_first_request(
    migrated: tuple[Path, str],
) -> None:
    """On a migrated database the server starts without Alembic or Docker, and an MCP
    call made the moment it is up answers (it waits for the endpoint to load)."""
    data_dir, token = migrated
    child = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        started = json.loads(child.stdout.readline())
        assert started["loaded"] == []
        url = started["url"]
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=60) as api:
            chat_id = api.post("/chats", json={}).raise_for_status().json()["id"]
        assert asyncio.run(list_templates(url, token, chat_id))
        child.stdin.close()
        assert json.loads(child.stdout.readline()) == {"mcp": True}
        assert child.wait(timeout=60) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        child.stdout.close()
