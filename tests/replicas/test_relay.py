"""Two ``berth server`` processes on one Postgres act as one server (DESIGN §7).

An agent dials the replica whose worker built its workspace, so the module makes one
workspace held by each replica; every tool and ``berth exec`` is called through both
replicas for both, and must answer the same. The relay endpoint is probed without,
with a forged and with a replayed mesh signature, and the secret is looked for in
everything the servers printed, the API answered and the workspace sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import subprocess
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
import sqlalchemy as sa

from berth.agentconn.signing import RELAY_HEADER, RELAY_PATH, sign
from berth.db.engine import create_engine
from tests.conftest import SharedDatabases, destroy_sandboxes
from tests.support.processes import BERTH
from tests.support.replicas import (
    ISOLATION,
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

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.postgres,
    pytest.mark.xdist_group("replicas"),  # one cluster for the module, on one worker
    pytest.mark.skipif(not BERTH.exists(), reason="the berth console script is not installed"),
]


@dataclass
class Cluster:
    a: Replica
    b: Replica
    token: str
    database_url: str
    chats: dict[str, str]
    """Replica name → a chat whose workspace's agent that replica holds."""
    workspaces: dict[str, str]

    @property
    def replicas(self) -> dict[str, Replica]:
        return {"a": self.a, "b": self.b}

    def api(self, replica: Replica) -> httpx.AsyncClient:
        return api(replica.url, self.token)


@pytest.fixture(scope="module")
def cluster_database(shared_databases: SharedDatabases) -> str:
    return shared_databases.url("postgres")


@pytest.fixture(scope="module")
async def cluster(
    cluster_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncGenerator[Cluster]:
    """Replica ``a`` holds the agent of workspace ``a``, ``b`` that of ``b``.

    An agent dials the replica whose worker built its workspace, so each workspace is
    created while only its replica runs: ``a`` alone first, then ``b`` alone (``a``
    stopped), then ``a`` again on its old port, where its agent reconnects.
    """
    root = tmp_path_factory.mktemp("replicas")
    address = {name: f"127.0.0.1:{free_port()}" for name in ("a", "b")}
    running: list[Replica] = []

    def start(name: str) -> Replica:
        replica = Replica(root / name, cluster_database, address=address[name])
        running.append(replica)
        return replica

    try:
        a = start("a")
        cluster = Cluster(a, a, admin_token(a), cluster_database, {}, {})
        template_id = await push_template(a.url, cluster.token)
        await create_in(cluster, a, "a", template_id)
        a.stop()
        b = start("b")
        await create_in(cluster, b, "b", template_id)
        cluster.a, cluster.b = start("a"), b
        ids = await replica_ids(cluster)
        await wait_until_held(cluster_database, cluster.workspaces["a"], {ids["a"]})
        yield cluster
    finally:
        for replica in running:
            replica.stop()
        for name in ("a", "b"):
            destroy_sandboxes(root / name)


async def create_in(cluster: Cluster, replica: Replica, name: str, template_id: str) -> None:
    chat_id, workspace = await create_in_new_chat(replica.url, cluster.token, template_id)
    cluster.chats[name], cluster.workspaces[name] = chat_id, workspace


async def holder(cluster: Cluster, workspace: str) -> uuid.UUID | None:
    return (await agent_row(cluster.database_url, workspace))[1]


def berth_cli(replica: Replica, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``berth ARGS…`` against ``replica``; the connection options go before any ``--``."""
    head, sep, tail = list(args), [], []
    if "--" in args:
        cut = args.index("--")
        head, sep, tail = list(args[:cut]), ["--"], list(args[cut + 1 :])
    argv = [str(BERTH), *head, "--url", replica.url, "--token", token, *sep, *tail]
    return subprocess.run(argv, capture_output=True, text=True, timeout=180)


async def replica_ids(cluster: Cluster) -> dict[str, uuid.UUID]:
    """Replica name → its registered id (by relay URL)."""
    async with cluster.api(cluster.a) as client:
        listed = (await client.get("/replicas")).json()
    by_url = {r["relay_url"]: uuid.UUID(r["id"]) for r in listed}
    return {name: by_url[r.url] for name, r in cluster.replicas.items()}


async def test_each_workspace_is_held_by_the_replica_it_was_created_through(
    cluster: Cluster,
) -> None:
    ids = await replica_ids(cluster)
    for name, workspace in cluster.workspaces.items():
        assert await holder(cluster, workspace) == ids[name]


async def test_the_replicas_list_shows_both_live(cluster: Cluster) -> None:
    async with cluster.api(cluster.b) as client:
        listed = (await client.get("/replicas")).json()
    assert sorted(r["relay_url"] for r in listed) == sorted([cluster.a.url, cluster.b.url])
    assert all(r["live"] for r in listed), listed
    assert all(r["version"] and r["hostname"] for r in listed), listed
    argv = [str(BERTH), "replicas", "list", "-o", "json"]
    out = await anyio.run_process([*argv, "--url", cluster.b.url, "--token", cluster.token])
    assert sorted(r["relay_url"] for r in json.loads(out.stdout.decode())) == sorted(
        [cluster.a.url, cluster.b.url]
    )


@pytest.mark.parametrize("held_by", ["a", "b"])
async def test_every_workspace_tool_answers_the_same_through_either_replica(
    cluster: Cluster, held_by: str
) -> None:
    chat, token = cluster.chats[held_by], cluster.token
    here, there = cluster.a.url, cluster.b.url

    async def both(name: str, arguments: dict[str, object]) -> tuple[dict[str, object], ...]:
        results = await asyncio.gather(
            call_tool(here, token, chat, name, arguments),
            call_tool(there, token, chat, name, arguments),
        )
        return tuple(structured(r) for r in results)

    first, second = await both("execute", {"command": "echo $((6*7)); pwd"})
    assert first["output"] == second["output"]
    assert "42" in str(first["output"]), first
    assert first["exit_code"] == second["exit_code"] == 0

    path = f"relay-{held_by}.txt"
    wrote = structured(
        await call_tool(here, token, chat, "write_file", {"path": path, "content": "one\ntwo\n"})
    )
    assert not wrote.get("error"), wrote
    first, second = await both("read_file", {"path": path})
    assert first == second
    assert "two" in str(first["content"]), first

    edit = {"edits": [{"path": path, "old_text": "two", "new_text": "deux"}]}
    edited = await call_tool(there, token, chat, "edit_files", edit)
    assert not edited.is_error, text(edited)
    first, second = await both("read_file", {"path": path})
    assert first == second
    assert "deux" in str(first["content"]), first

    # A background process started through one replica is the other's too.
    started = structured(
        await call_tool(
            here,
            token,
            chat,
            "execute",
            {"command": "echo bg-out; sleep 600", "run_in_background": True},
        )
    )
    process_id = started["background_process_id"]
    first, second = await both("process_list", {})
    assert first == second
    assert process_id in json.dumps(first)
    output = structured(
        await call_tool(
            there, token, chat, "process_output", {"process_id": process_id, "wait_timeout": "1s"}
        )
    )
    assert "bg-out" in str(output["output"]), output
    signalled = await call_tool(
        there, token, chat, "process_signal", {"process_id": process_id, "signal": "kill"}
    )
    assert not signalled.is_error, text(signalled)


@pytest.mark.parametrize("held_by", ["a", "b"])
async def test_berth_exec_works_through_either_replica(cluster: Cluster, held_by: str) -> None:
    outputs: list[str] = []
    command = ["sh", "-c", "echo out-$((40+2)); echo err >&2; exit 3"]
    for replica in (cluster.a, cluster.b):
        done = await asyncio.to_thread(
            berth_cli, replica, cluster.token, "exec", cluster.workspaces[held_by], "--", *command
        )
        assert done.returncode == 3, done.stderr
        assert done.stderr.strip().endswith("err"), done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] == "out-42\n"


async def test_a_large_write_passes_through_the_relay(cluster: Cluster) -> None:
    """6 MiB of content for an agent replica a holds, through replica b."""
    chat, size = cluster.chats["a"], 6 * 1024 * 1024
    content = "0123456789abcde\n" * (size // 16)
    wrote = await call_tool(
        cluster.b.url, cluster.token, chat, "write_file", {"path": "big.txt", "content": content}
    )
    assert not wrote.is_error, text(wrote)
    counted = structured(
        await call_tool(
            cluster.a.url,
            cluster.token,
            chat,
            "execute",
            {"command": "wc -c < big.txt; md5sum big.txt"},
        )
    )
    assert str(counted["output"]).split()[0] == str(size)
    assert hashlib.md5(content.encode()).hexdigest() in str(counted["output"])  # noqa: S324


# --- the relay endpoint -------------------------------------------------------------------


async def mesh_secret(cluster: Cluster) -> str:
    engine = create_engine(cluster.database_url)
    try:
        async with engine.connect() as conn:
            row = await conn.execute(
                sa.text("SELECT value FROM site_config WHERE key = 'mesh_secret'")
            )
            return str(row.scalar_one())
    finally:
        await engine.dispose()


async def test_the_relay_is_a_404_without_a_genuine_mesh_signature(cluster: Cluster) -> None:
    ids = await replica_ids(cluster)
    body = json.dumps({"agent_id": str(uuid.uuid4()), "op": "call", "method": "ping"}).encode()
    async with httpx.AsyncClient(base_url=cluster.b.url, timeout=30) as http:
        unknown = await http.post("/api/v1/internal/nothing-here", content=body)
        assert unknown.status_code == 404

        def same_as_unknown(response: httpx.Response) -> None:
            assert response.status_code == 404
            assert response.content == unknown.content
            assert response.headers.get("content-type") == unknown.headers.get("content-type")

        same_as_unknown(await http.post(RELAY_PATH, content=body))
        same_as_unknown(await http.get(RELAY_PATH))
        same_as_unknown(await http.delete(RELAY_PATH))
        forged = sign("not-the-secret", ids["b"], body)
        same_as_unknown(await http.post(RELAY_PATH, content=body, headers={RELAY_HEADER: forged}))
        # An admin's token is no mesh signature either.
        admin = {"Authorization": f"Bearer {cluster.token}"}
        same_as_unknown(await http.post(RELAY_PATH, content=body, headers=admin))

        secret = await mesh_secret(cluster)
        genuine = sign(secret, ids["b"], body)
        # Meant for the other replica: refused here.
        for_a = sign(secret, ids["a"], body)
        same_as_unknown(await http.post(RELAY_PATH, content=body, headers={RELAY_HEADER: for_a}))
        # The body changed after signing: refused.
        tampered = body.replace(b"ping", b"exec")
        same_as_unknown(
            await http.post(RELAY_PATH, content=tampered, headers={RELAY_HEADER: genuine})
        )
        # Genuine: answered, here "not here" (no such agent on this replica) …
        answered = await http.post(RELAY_PATH, content=body, headers={RELAY_HEADER: genuine})
        assert answered.status_code == 200
        assert answered.json() == {"not_here": True}
        # … once: the same request again is a replay.
        same_as_unknown(await http.post(RELAY_PATH, content=body, headers={RELAY_HEADER: genuine}))
        # Too old a signature is refused too.
        stale = sign(secret, ids["b"], body, now=0.0)
        same_as_unknown(await http.post(RELAY_PATH, content=body, headers={RELAY_HEADER: stale}))


async def test_the_mesh_secret_is_in_no_log_answer_or_workspace(cluster: Cluster) -> None:
    secret = await mesh_secret(cluster)
    seen: list[str] = []
    for replica in (cluster.a, cluster.b):
        async with cluster.api(replica) as client:
            for path in ("/replicas", "/workspaces", "/templates", "/chats", "/users/me"):
                seen.append((await client.get(path)).text)
            for workspace in cluster.workspaces.values():
                seen.append((await client.get(f"/workspaces/{workspace}")).text)
            seen.append((await client.get("/config/mesh_secret")).text)
    for chat in cluster.chats.values():
        env = await call_tool(
            cluster.a.url,
            cluster.token,
            chat,
            "execute",
            {"command": "env; cat /proc/*/environ /proc/*/cmdline 2>/dev/null | tr '\\0' '\\n'"},
        )
        seen.append(text(env))
    seen.extend(cluster.a.output + cluster.b.output)
    assert len(secret) >= 32
    assert not [s for s in seen if secret in s]


# --- stop and delete through the replica that did not build (host affinity) -------------
# These end the module's workspaces, so they come last (one worker runs the module).


def sandbox_processes(home: Path) -> list[str]:
    """Command lines of the processes running a sandbox over ``home`` (its bwrap binds it)."""
    found: list[str] = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                args = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if str(home) in args:
                    found.append(args)
    return found


async def workspace_json(cluster: Cluster, name: str) -> dict[str, object]:
    async with cluster.api(cluster.a) as client:
        response = await client.get(f"/workspaces/{name}")
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.skipif(ISOLATION != "bwrap", reason="bubblewrap is not installed")
async def test_stop_and_delete_through_the_replica_that_did_not_build(cluster: Cluster) -> None:
    """Workspace ``a`` lives under replica a's data dir, ``b`` under b's: a stop of ``a``
    through b and a delete of ``b`` through a run on the host that holds each."""
    for name, other, owner in (("a", cluster.b, cluster.a), ("b", cluster.a, cluster.b)):
        workspace = cluster.workspaces[name]
        shown = await workspace_json(cluster, workspace)
        home = owner.data_dir / "workspaces" / "homes" / str(shown["id"])
        assert home.is_dir()
        assert sandbox_processes(home), f"workspace {name}'s sandbox is not running"
        assert str(owner.data_dir) in str(shown["host"]), shown
        verb, *flags = ["stop"] if name == "a" else ["delete", "--yes"]
        done = await asyncio.to_thread(
            berth_cli, other, cluster.token, "workspaces", verb, workspace, *flags
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert sandbox_processes(home) == [], f"{verb} left workspace {name}'s sandbox running"
        if verb == "delete":
            assert not home.exists(), "the delete left the home on disk"
        else:
            assert (await workspace_json(cluster, workspace))["status"] == "stopped"
            assert home.is_dir(), "a stop keeps the home"
