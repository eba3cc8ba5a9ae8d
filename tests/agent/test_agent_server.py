"""The agent's side of the real berth server: the zipapp download and the connect route.

``live_server`` (``tests/conftest.py``) is the real app on uvicorn in a thread, on a
fresh database of each kind. The agent's WebSocket client dials its
``/api/v1/agent/connect``; waits are the server's ``watch`` stream or bounded reads.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from berth.agent.build import ensure_zipapp, zipapp_bytes, zipapp_digest
from berth.agent.connection import connect_url
from berth.agent.protocol import PROTOCOL_VERSION, ZIPAPP_PATH, decode, encode
from berth.agent.wsclient import HandshakeError, connect
from tests.conftest import LiveServer
from tests.support.agents import SYSTEM_PYTHON

WAIT = 60.0
TEMPLATE = """\
name: byo
backend:
  type: fake
agents:
  - name: laptop
    external: true
"""


def test_the_zipapp_is_served_by_its_hash(live_server: LiveServer) -> None:
    path = live_server.runtime.agent_zipapp
    assert path == ensure_zipapp(live_server.data_dir / "agent")
    with httpx.Client(base_url=live_server.url, timeout=WAIT) as http:
        got = http.get(ZIPAPP_PATH)
        assert got.status_code == 200
        assert got.content == path.read_bytes() == zipapp_bytes()
        etag = got.headers["etag"]
        assert etag == f'"{zipapp_digest(path)}"'
        assert got.headers["cache-control"] == "no-cache"
        for tag in (etag, f"W/{etag}", f'"older", {etag}', "*"):
            again = http.get(ZIPAPP_PATH, headers={"If-None-Match": tag})
            assert (again.status_code, again.content) == (304, b""), tag
            assert again.headers["etag"] == etag
        stale = http.get(ZIPAPP_PATH, headers={"If-None-Match": '"older"'})
        assert stale.status_code == 200
        assert stale.content == got.content


def test_a_wrong_token_is_refused_at_the_handshake(live_server: LiveServer, tmp_path: Path) -> None:
    url = connect_url(live_server.url)
    with pytest.raises(HandshakeError) as refused:
        connect(url, headers={"Authorization": "Bearer not-a-token"}, open_timeout=WAIT)
    # The route closes with 4401 before accepting; uvicorn answers that with a 403.
    assert refused.value.status == 403
    agent = subprocess.run(
        [SYSTEM_PYTHON, str(live_server.runtime.agent_zipapp), "--url", live_server.url],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "BERTH_AGENT_TOKEN": "nope"},
        cwd=tmp_path,
        capture_output=True,
        timeout=WAIT,
        check=False,
    )
    assert agent.returncode == 2
    assert b"rejected the agent token (HTTP 403)" in agent.stderr


def test_an_agent_token_opens_a_session(live_server: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {live_server.admin_token}"}
    with httpx.Client(base_url=f"{live_server.url}/api/v1", headers=headers, timeout=WAIT) as api:
        pushed = api.post("/templates", json={"files": {"template.yaml": TEMPLATE}})
        assert pushed.status_code == 201, pushed.text
        created = api.post("/workspaces", json={"template": "byo", "name": "mine"})
        assert created.status_code == 201, created.text
        with api.stream("GET", "/workspaces/mine/watch") as watched:  # ends once built
            assert watched.status_code == 200
            for _ in watched.iter_lines():
                pass
        assert api.get("/workspaces/mine").json()["status"] == "running"
        issued = api.post("/workspaces/mine/agents/laptop/token").json()
    ws = connect(
        connect_url(live_server.url),
        headers={"Authorization": f"Bearer {issued['token']}"},
        open_timeout=WAIT,
    )
    try:
        hello = {"type": "hello", "version": PROTOCOL_VERSION, "pid": 1, "hostname": "h"}
        ws.send(encode({**hello, "python": "3.9.0"}))
        text = ws.recv(timeout=WAIT)
        assert isinstance(text, str)
        frame = decode(text)
        assert frame["type"] == "manifest"
        assert frame["name"] == "laptop"
        assert frame["agent_id"] == issued["agent_id"]
    finally:
        ws.close()
    assert ws.closed is not None
    assert ws.closed.code == 1000
