"""The MCP endpoints answer only to the names the server is known by (DNS rebinding),
and the official MCP conformance suite's server scenarios pass against a live server.

A request whose ``Host`` or ``Origin`` names another server is a 403 in the error
envelope before anything else happens: before the token is checked, before the chat is
looked up. The names: the access URL, ``--address``, ``BERTH_ALLOWED_HOSTS``, and the
localhost forms (``localhost``, ``127.0.0.1``, ``[::1]`` with the port) for a server
on loopback.

The conformance suite is the npm package ``@modelcontextprotocol/conformance``
(0.1.12: later versions need a newer Node.js than 20). ``.ci/run`` installs it into
``$BERTH_MCP_CONFORMANCE_DIR`` (default ``~/.cache/berth-ci/mcp-conformance``); the
test is skipped, saying so, when Node.js or the package is missing. The suite knows no
credentials, so the test runs it under Node.js with a preloaded module that adds the
chat owner's bearer token to every request it sends (through undici's global
dispatcher, which both its MCP client and its raw requests use) and changes nothing
else: its ``Host`` and ``Origin`` reach the server as the suite wrote them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Scope

from berth.api.hosts import AllowedHosts
from berth.api.server import running_server
from berth.errors import Forbidden
from berth.settings import Settings
from tests.conftest import LiveServer
from tests.support.api import envelope, ok

CONFORMANCE_VERSION = "0.1.12"
SCENARIOS = ("server-initialize", "ping", "tools-list", "dns-rebinding-protection")
DEFAULT_CONFORMANCE_DIR = Path.home() / ".cache" / "berth-ci" / "mcp-conformance"
PACKAGE = Path("node_modules") / "@modelcontextprotocol" / "conformance"

AUTH_PRELOAD = """\
// Adds the chat owner's bearer token to every request undici sends; nothing else.
import { createRequire } from "node:module";
const require = createRequire(process.env.BERTH_CONFORMANCE_DIR + "/package.json");
const { Agent, setGlobalDispatcher } = require("undici");
const token = process.env.BERTH_CONFORMANCE_TOKEN;
const authorize = (dispatch) => (options, handler) => {
  const headers = Array.isArray(options.headers)
    ? [...options.headers, "authorization", `Bearer ${token}`]
    : { ...(options.headers || {}), authorization: `Bearer ${token}` };
  return dispatch({ ...options, headers }, handler);
};
setGlobalDispatcher(new Agent().compose(authorize));
"""


def settings(**values: Any) -> Settings:
    return Settings(data_dir=Path("/nonexistent"), **values)


def scope(host: str | None, origin: str | None = None, port: int = 7080) -> Scope:
    headers: list[tuple[bytes, bytes]] = []
    if host is not None:
        headers.append((b"host", host.encode()))
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return {"type": "http", "headers": headers, "server": ("127.0.0.1", port)}


def allowed(
    hosts: AllowedHosts, host: str | None, origin: str | None = None, port: int = 7080
) -> bool:
    try:
        hosts.check(scope(host, origin, port))
    except Forbidden:
        return False
    return True


# --- which names -------------------------------------------------------------------------


def test_a_loopback_server_answers_to_the_localhost_forms_at_its_port() -> None:
    hosts = AllowedHosts.of(settings(address="127.0.0.1:7080"))
    for host in ("127.0.0.1:7080", "localhost:7080", "[::1]:7080", "LOCALHOST:7080"):
        assert allowed(hosts, host), host
        assert allowed(hosts, host, origin=f"http://{host}"), host
    for host in ("evil.example", "evil.example:7080", "127.0.0.1:7081", "127.0.0.2:7080", ""):
        assert not allowed(hosts, host), host
    assert not allowed(hosts, None)
    # The port the request came in on counts too (a server bound to port 0).
    assert allowed(AllowedHosts.of(settings(address="127.0.0.1:0")), "localhost:4321", port=4321)
    # A browser on another site: a good Host, a foreign Origin.
    for origin in ("http://evil.example", "http://evil.example:7080", "null", "garbage"):
        assert not allowed(hosts, "127.0.0.1:7080", origin=origin), origin


def test_the_access_url_and_the_address_are_the_servers_names() -> None:
    hosts = AllowedHosts.of(
        settings(address="10.1.2.3:7080", access_url="https://berth.example.com")
    )
    assert allowed(hosts, "10.1.2.3:7080")
    # Behind a TLS proxy: the default port, given or not.
    for host in ("berth.example.com", "berth.example.com:443", "Berth.Example.COM"):
        assert allowed(hosts, host, origin="https://berth.example.com"), host
    assert not allowed(hosts, "berth.example.com:8443")
    assert not allowed(hosts, "localhost:7080"), "not a loopback server"
    assert not allowed(hosts, "10.1.2.3:7080", origin="https://evil.example")
    # Every address: reachable on loopback, so the localhost forms; other names of the
    # machine need the access URL or BERTH_ALLOWED_HOSTS.
    wildcard = AllowedHosts.of(settings(address="0.0.0.0:7080"))
    assert allowed(wildcard, "localhost:7080")
    assert not allowed(wildcard, "192.168.1.5:7080")
    assert not allowed(wildcard, "localhost:7080", origin="http://evil.example")
    v6 = AllowedHosts.of(settings(address="[::1]:7080"))
    assert allowed(v6, "[::1]:7080")
    assert allowed(v6, "localhost:7080")


def test_configured_extra_hosts() -> None:
    hosts = AllowedHosts.of(
        settings(allowed_hosts=["berth.internal", "proxy.example:8080", "https://ui.example"])
    )
    for host in ("berth.internal", "berth.internal:1234", "proxy.example:8080", "ui.example"):
        assert allowed(hosts, host), host
    assert not allowed(hosts, "proxy.example:8081")
    assert allowed(hosts, "127.0.0.1:7080", origin="https://ui.example")
    assert not allowed(hosts, "127.0.0.1:7080", origin="https://ui.example:444")
    anything = AllowedHosts.of(settings(allowed_hosts=["*"]))
    assert allowed(anything, "evil.example", origin="http://evil.example")


def test_extra_hosts_come_comma_separated_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BERTH_ALLOWED_HOSTS", "a.example, b.example:81 ,")
    assert settings().allowed_hosts == ["a.example", "b.example:81"]
    monkeypatch.delenv("BERTH_ALLOWED_HOSTS")
    assert settings().allowed_hosts == []


# --- a live server -----------------------------------------------------------------------


def mcp_post(url: str, headers: dict[str, str]) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    accept = {"Accept": "application/json, text/event-stream", **headers}
    return httpx.post(url, json=body, headers=accept, timeout=30)


def _chat(server: LiveServer) -> str:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    response = httpx.post(f"{server.url}/api/v1/chats", json={}, headers=headers, timeout=30)
    return str(ok(response, 201)["id"])


def test_a_foreign_host_or_origin_is_refused_before_anything_else(
    live_server: LiveServer,
) -> None:
    port = live_server.url.rsplit(":", 1)[1]
    url = f"{live_server.url}/api/v1/chats/{_chat(live_server)}/mcp"
    token = {"Authorization": f"Bearer {live_server.admin_token}"}
    # Refused whatever else is wrong: no token, a bad token, a chat that is not there.
    for target, headers in [
        (url, {"Host": "evil.example"}),
        (url, {"Host": f"evil.example:{port}", **token}),
        (url, {"Host": "evil.example", "Authorization": "Bearer nope"}),
        (f"{live_server.url}/api/v1/chats/not-a-chat/mcp", {"Host": "evil.example"}),
        (url, {"Origin": "http://evil.example", **token}),
        (url, {"Origin": "null", **token}),
    ]:
        body = envelope(mcp_post(target, headers), 403)
        assert "is not one this server answers to" in body["message"], body
        assert "BERTH_ALLOWED_HOSTS" in body["detail"]
    # The localhost forms at the server's port pass the check: then the token is.
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        envelope(mcp_post(url, {"Host": host}), 401)
        origin = {"Host": host, "Origin": f"http://{host}", **token}
        assert mcp_post(url, origin).status_code == 200, host


def test_a_server_answers_to_its_configured_hosts(database_url: str, tmp_path: Path) -> None:
    configured = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        address="127.0.0.1:0",
        access_url="https://berth.example.com",
        allowed_hosts=["berth.internal"],
    )
    with running_server(configured) as server:
        assert server.runtime.bootstrapped is not None
        token = {"Authorization": f"Bearer {server.runtime.bootstrapped.token}"}
        chat = ok(httpx.post(f"{server.url}/api/v1/chats", json={}, headers=token), 201)
        url = f"{server.url}/api/v1/chats/{chat['id']}/mcp"
        for host in ("berth.example.com", "berth.internal:9000", server.url.split("//")[1]):
            assert mcp_post(url, {"Host": host, **token}).status_code == 200, host
        envelope(mcp_post(url, {"Host": "evil.example", **token}), 403)


# --- the official conformance suite --------------------------------------------------------


def conformance() -> tuple[str, Path]:
    """Node.js and the suite's folder, or a skip that says what is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (the MCP conformance suite runs on it)")
    folder = Path(os.environ.get("BERTH_MCP_CONFORMANCE_DIR") or DEFAULT_CONFORMANCE_DIR)
    if not (folder / PACKAGE / "dist" / "index.js").exists():
        pytest.skip(
            f"@modelcontextprotocol/conformance is not installed in {folder}: npm install"
            f" --prefix {folder} @modelcontextprotocol/conformance@{CONFORMANCE_VERSION}"
            " (.ci/run does), or set BERTH_MCP_CONFORMANCE_DIR"
        )
    return node, folder


def run_scenario(
    node: str, folder: Path, preload: Path, url: str, token: str, scenario: str, results: Path
) -> list[str]:
    """Run one scenario of the suite; what failed, with the suite's output."""
    command = [
        node,
        "--import",
        preload.as_uri(),
        str(folder / PACKAGE / "dist" / "index.js"),
        "server",
        "--url",
        url,
        "--scenario",
        scenario,
        "--output-dir",
        str(results),
    ]
    env = {
        **os.environ,
        "BERTH_CONFORMANCE_DIR": str(folder),
        "BERTH_CONFORMANCE_TOKEN": token,
        "NO_COLOR": "1",
    }
    done = subprocess.run(
        command, env=env, cwd=results, capture_output=True, text=True, timeout=90, check=False
    )
    output = f"{done.stdout}\n{done.stderr}"
    reports = sorted(results.glob("*/checks.json"))
    if not reports:
        return [f"{scenario}: the suite wrote no checks:\n{output}"]
    checks: list[dict[str, Any]] = json.loads(reports[-1].read_text())
    failed = [c for c in checks if c.get("status") not in ("SUCCESS", "INFO")]
    if failed or not checks or done.returncode != 0:
        return [f"{scenario} (exit {done.returncode}): {json.dumps(failed, indent=2)}\n{output}"]
    return []


def test_the_mcp_conformance_suite_passes(live_server: LiveServer, tmp_path: Path) -> None:
    """server-initialize, ping, tools-list and dns-rebinding-protection: the server
    scenarios that need no tools of the suite's own test server."""
    node, folder = conformance()
    preload = tmp_path / "authorize.mjs"
    preload.write_text(AUTH_PRELOAD)
    url = f"{live_server.url}/api/v1/chats/{_chat(live_server)}/mcp"
    failures: list[str] = []
    for scenario in SCENARIOS:
        results = tmp_path / scenario
        results.mkdir()
        failures += run_scenario(
            node, folder, preload, url, live_server.admin_token, scenario, results
        )
    assert not failures, "\n\n".join(failures)
