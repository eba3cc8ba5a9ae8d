"""Failover behind nginx: the replica an agent is on dies, and the tools carry on.

nginx (Debian's package) runs ``examples/deploy/nginx-berth.conf`` as shipped, with its
three ports rewritten, in front of two ``berth server`` processes on one Postgres whose
access URL is nginx, so the agent dials nginx too. The replica holding the agent is
killed (SIGKILL: no clean shutdown). The next tool call through nginx must fail with a
clear, retryable message or succeed; within 10 s calls succeed again, through the
survivor, and the background process started before the kill keeps its id.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Generator
from pathlib import Path

import anyio
import httpx
import pytest

from berth.events import bus_for_url, messages
from berth.settings import async_database_url
from tests.conftest import SharedDatabases, destroy_sandboxes
from tests.support.processes import BERTH
from tests.support.replicas import (
    Replica,
    admin_token,
    agent_row,
    api,
    call_tool,
    create_in_new_chat,
    free_port,
    push_template,
    structured,
    text,
    wait_until_held,
)

NGINX = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
EXAMPLE = Path(__file__).parents[2] / "examples" / "deploy" / "nginx-berth.conf"
RECOVERY = 10.0
"""Seconds from the kill within which tool calls must succeed again (issue 11)."""

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.postgres,
    pytest.mark.skipif(not BERTH.exists(), reason="the berth console script is not installed"),
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (Debian: apt install nginx)"),
]


@contextlib.contextmanager
def nginx(directory: Path, listen: int, upstreams: tuple[int, int]) -> Generator[str]:
    """nginx with the shipped site config (ports rewritten); its URL."""
    assert NGINX is not None
    site = EXAMPLE.read_text()
    site = site.replace("listen 127.0.0.1:7080;", f"listen 127.0.0.1:{listen};")
    site = site.replace("127.0.0.1:7081", f"127.0.0.1:{upstreams[0]}")
    site = site.replace("127.0.0.1:7082", f"127.0.0.1:{upstreams[1]}")
    assert re.findall(r"127\.0\.0\.1:(\d+)", site) == [str(p) for p in (*upstreams, listen)]
    (directory / "berth.conf").write_text(site)
    temp = "\n".join(
        f"    {kind}_temp_path {directory}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (directory / "nginx.conf").write_text(
        f"worker_processes 1;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log;\n"
        f"events {{ worker_connections 512; }}\n"
        f"http {{\n    access_log off;\n{temp}\n    include {directory}/berth.conf;\n}}\n"
    )
    argv = [NGINX, "-p", str(directory), "-c", str(directory / "nginx.conf")]
    subprocess.run([*argv, "-t", "-q"], check=True, capture_output=True, timeout=30)
    proc = subprocess.Popen([*argv, "-g", "daemon off;"], stderr=subprocess.PIPE)
    try:
        yield f"http://127.0.0.1:{listen}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()


async def healthy(url: str) -> None:
    """The first answer through nginx (httpx retries the connect while nginx starts)."""
    transport = httpx.AsyncHTTPTransport(retries=6)
    async with httpx.AsyncClient(transport=transport, timeout=30) as client:
        assert (await client.get(f"{url}/api/v1/health")).status_code == 200


async def test_tools_recover_within_seconds_when_the_agents_replica_dies(
    shared_databases: SharedDatabases, tmp_path: Path
) -> None:
    database_url = shared_databases.url("postgres")
    ports = (free_port(), free_port())
    front = free_port()
    (tmp_path / "nginx").mkdir()
    replicas: dict[uuid.UUID, Replica] = {}
    started: list[Replica] = []
    with nginx(tmp_path / "nginx", front, ports) as url:
        try:
            for name, port in zip("ab", ports, strict=True):
                started.append(
                    Replica(
                        tmp_path / name,
                        database_url,
                        address=f"127.0.0.1:{port}",
                        args=["--access-url", url],
                    )
                )
            await healthy(url)
            token = admin_token(*started)
            async with api(url, token) as client:
                listed = (await client.get("/replicas")).json()
            by_url = {r.direct_url: r for r in started}
            replicas = {uuid.UUID(r["id"]): by_url[r["relay_url"]] for r in listed}
            assert len(replicas) == 2

            template_id = await push_template(url, token)
            chat, workspace = await create_in_new_chat(url, token, template_id)
            background = structured(
                await call_tool(
                    url,
                    token,
                    chat,
                    "execute",
                    {"command": "echo survivor; sleep 600", "run_in_background": True},
                )
            )
            process_id = background["background_process_id"]
            doomed_id = await wait_until_held(database_url, workspace, set(replicas))
            survivor_id = next(r for r in replicas if r != doomed_id)
            agent_id, _ = await agent_row(database_url, workspace)

            replicas[doomed_id].stop(kill=True)
            killed_at = time.monotonic()
            first = await call_tool(url, token, chat, "execute", {"command": "echo after"})
            if first.is_error:  # the agent has not reconnected yet: a clear, retryable error
                message = text(first)
                assert "try again" in message or "not connected" in message, message
            else:
                assert "after" in str(structured(first)["output"])

            recovered = await succeed_again(database_url, agent_id, url, token, chat)
            assert recovered - killed_at <= RECOVERY, recovered - killed_at
            assert (await agent_row(database_url, workspace))[1] == survivor_id
            listed_processes = structured(await call_tool(url, token, chat, "process_list"))
            assert process_id in str(listed_processes), listed_processes
            output = structured(
                await call_tool(
                    url,
                    token,
                    chat,
                    "process_output",
                    {"process_id": process_id, "wait_timeout": "1s"},
                )
            )
            assert "survivor" in str(output["output"]), output
        finally:
            for replica in started:
                replica.stop(kill=True)
            for name in "ab":
                destroy_sandboxes(tmp_path / name)


async def succeed_again(
    database_url: str, agent_id: uuid.UUID, url: str, token: str, chat: str
) -> float:
    """Call ``execute`` through nginx after each connection event of the agent (or each
    second) until it succeeds; when it did (monotonic time)."""
    bus = bus_for_url(async_database_url(database_url))
    await bus.start()
    try:
        async with bus.subscribe(messages.agent(agent_id)) as events:
            with anyio.fail_after(2 * RECOVERY):
                while True:
                    result = await call_tool(url, token, chat, "execute", {"command": "echo back"})
                    if not result.is_error:
                        assert "back" in str(structured(result)["output"])
                        return time.monotonic()
                    await events.get(timeout=1.0)
    finally:
        await bus.close()
