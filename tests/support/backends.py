"""Helpers shared by the backend tests: build specs, a stand-in agent, bounded waits, and
:func:`local_chat` — a server in the test's own loop with a real ``local`` workspace and
a chat bound to it, called through the chat tools."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.domain.actors import as_system
from berth.domain.enums import Transition
from berth.domain.template import TemplateDoc
from berth.provisioner.spec import AgentSpec, BuildSpec, LogSink, ResourceRecord
from berth.services.accounts import authenticate
from berth.services.base import Ctx
from berth.services.chats import create_chat
from berth.services.templates import push_template
from berth.tools.context import ChatContext
from berth.tools.registry import call_tool
from berth.tools.result import ToolResult
from tests.conftest import destroy_sandboxes
from tests.support.chats import payload
from tests.support.live_agents import Server, serving
from tests.support.waiting import until

STAND_IN_AGENT = r"""
import ctypes, json, os, signal, socket, sys, time
from urllib.parse import urlsplit

home = os.environ["HOME"]
name = os.environ["BERTH_AGENT_NAME"]
signal.pthread_sigmask(signal.SIG_SETMASK, [])  # as the real agent: stop signals work
token = os.environ.get("BERTH_AGENT_TOKEN")
control = None
if os.environ.get("BERTH_AGENT_CONTROL_FD"):  # as the real agent: protect, then ask
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
    control = socket.socket(fileno=int(os.environ.pop("BERTH_AGENT_CONTROL_FD")))
    control.send(json.dumps({"op": "hello"}).encode())
    config = json.loads(control.recv(1 << 17))
    token = config.get("token") or token


def probe(path):
    result = {"exists": os.path.lexists(path), "list": False, "read": False}
    try:
        os.listdir(path)
        result["list"] = True
    except OSError:
        pass
    try:
        with open(path, "rb") as f:
            f.read(1)
        result["read"] = True
    except OSError:
        pass
    return result


def writable(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return True
    except OSError:
        return False


def secrets_seen(secrets):
    seen = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        for part in ("environ", "cmdline"):
            try:
                with open("/proc/%s/%s" % (pid, part), "rb") as f:
                    data = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            seen += [s for s in secrets if s in data]
    return sorted(set(seen))


def ping_server():
    url = urlsplit(os.environ["BERTH_AGENT_URL"])
    try:
        with socket.create_connection((url.hostname, url.port), timeout=10) as s:
            s.sendall(b"ping\n")
            return s.makefile().readline().strip()
    except OSError as err:
        return "error: %s" % err


if os.environ.get("DETACH"):  # a background process in a session of its own
    import subprocess
    subprocess.Popen(["sleep", "1000"], start_new_session=True)
with open(os.path.join(home, "starts-%s.log" % name), "a") as f:
    f.write("%d\n" % os.getpid())
interfaces = [line.split(":")[0].strip() for line in open("/proc/net/dev").readlines()[2:]]
report = {
    "env": dict(os.environ),
    "uid": os.getuid(),
    "gid": os.getgid(),
    "hostname": socket.gethostname(),
    "cwd": os.getcwd(),
    "argv": sys.argv,
    "pids": [p for p in os.listdir("/proc") if p.isdigit()],
    "interfaces": interfaces,
    "probes": {p: probe(p) for p in json.loads(os.environ.get("PROBES", "[]"))},
    "writable": {p: writable(p) for p in json.loads(os.environ.get("WRITE_PROBES", "[]"))},
    # Given reversed, so that the probe's own environment does not contain them.
    "secrets_seen": secrets_seen([s[::-1] for s in json.loads(os.environ.get("SECRETS", "[]"))]),
    "ping": ping_server() if os.environ.get("PING") else None,
    "token": token,
}
tmp = os.path.join(home, ".marker-%s.tmp" % name)
with open(tmp, "w") as f:
    json.dump(report, f)
os.rename(tmp, os.path.join(home, "marker-%s.json" % name))
while True:
    time.sleep(5 if control else 3600)
    if control:
        control.send(b'{"op": "beat"}')
"""


def write_stand_in_agent(directory: Path) -> Path:
    """Save the stand-in agent where a zipapp would be (python3 runs a plain script too)."""
    path = directory / "berth-agent.pyz"
    path.write_text(STAND_IN_AGENT)
    return path


@dataclass
class LogLines:
    """A LogSink that remembers what it was given."""

    lines: list[tuple[str, str, str]] = field(default_factory=lambda: [])

    async def __call__(self, output: str, *, stage: str = "apply", level: str = "info") -> None:
        self.lines.append((stage, level, output))

    def of(self, stage: str) -> list[str]:
        return [text for s, _, text in self.lines if s == stage]


def template(**backend: Any) -> TemplateDoc:
    """A template document with the given backend section (and optional prepare)."""
    prepare = backend.pop("prepare", "")
    return TemplateDoc.model_validate({"name": "t", "backend": backend, "prepare": prepare})


def agent(name: str = "main", *, external: bool = False, **env: str) -> AgentSpec:
    """An agent spec; its env has a ``BERTH_TEST_AGENT`` mark its processes inherit."""
    return AgentSpec(
        id=uuid.uuid4(),
        name=name,
        token=f"token-{uuid.uuid4().hex}",
        directory="",
        env={"BERTH_TEST_AGENT": uuid.uuid4().hex, **env},
        external=external,
    )


def mark_of(spec: AgentSpec) -> str:
    """The mark in the environment of ``spec``'s agent process and of all it starts."""
    return f"BERTH_TEST_AGENT={spec.env['BERTH_TEST_AGENT']}"


def build_spec(
    doc: TemplateDoc,
    *,
    state_dir: Path,
    zipapp: Path,
    agents: list[AgentSpec] | None = None,
    workspace_id: uuid.UUID | None = None,
    owner: str = "alice",
    name: str = "my-workspace",
    server_url: str = "http://127.0.0.1:9",
) -> BuildSpec:
    return BuildSpec(
        workspace_id=workspace_id or uuid.uuid4(),
        workspace_name=name,
        owner_name=owner,
        build_id=uuid.uuid4(),
        build_number=1,
        template=doc,
        agents=[agent()] if agents is None else agents,
        server_url=server_url,
        agent_zipapp=zipapp,
        state_dir=state_dir,
    )


def next_build(spec: BuildSpec, **changes: Any) -> BuildSpec:
    """The same workspace's next build."""
    return replace(spec, build_id=uuid.uuid4(), build_number=spec.build_number + 1, **changes)


async def read_marker(home: Path, agent_name: str = "main", within: float = 30.0) -> dict[str, Any]:
    """Wait for the stand-in agent's report in ``home`` and return it."""
    marker = home / f"marker-{agent_name}.json"
    await until(marker.exists, within=within, what=f"{marker}")
    data: dict[str, Any] = json.loads(marker.read_text())
    return data


def processes_with(secret: str) -> list[int]:
    """Host pids whose environment or command line contains ``secret`` (alive, not zombies)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            data = (entry / "environ").read_bytes() + (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if state != "Z" and secret.encode() in data:
            found.append(int(entry.name))
    return found


def is_root() -> bool:
    return os.geteuid() == 0


# --- a chat on a real local workspace (a server in the test's loop, real agents) ---------------

LOCAL_TEMPLATE: dict[str, Any] = {
    "name": "sandbox",
    "description": "A local sandbox for the backend tests.",
    "agents": [
        {
            "name": "main",
            "chat": True,
            "directory": "~/project",
            "scripts": [
                {
                    "display_name": "setup",
                    "run_on": "start",
                    "blocks_login": True,
                    "script": "mkdir -p ~/project",
                }
            ],
        }
    ],
}


@dataclass
class LocalChat:
    """A chat bound to a running ``local`` workspace, called through the chat tools."""

    server: Server
    ctx: ChatContext
    workspace_id: uuid.UUID
    tokens: list[str]
    """Every agent token the builds handed to the local backend, oldest first."""

    @property
    def state_dir(self) -> Path:
        return self.server.runtime.settings.data_dir / "workspaces"

    @property
    def home(self) -> Path:
        return self.state_dir / "homes" / str(self.workspace_id)

    async def call(self, tool: str, arguments: dict[str, Any] | None = None) -> ToolResult:
        return await call_tool(self.ctx, tool, arguments or {})

    async def ok(self, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        return payload(await self.call(tool, arguments))

    async def run(self, command: str, time_limit: str = "60s") -> dict[str, Any]:
        """``execute`` in the foreground (``time_limit``: its ``timeout``); its result."""
        return await self.ok("execute", {"command": command, "timeout": time_limit})

    async def sandbox_handle(self) -> dict[str, Any]:
        state = self.state_dir / "sandboxes" / str(self.workspace_id) / "sandbox.json"
        data: dict[str, Any] = json.loads(await asyncio.to_thread(state.read_text))
        return data


@contextlib.asynccontextmanager
async def local_chat(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    **backend: Any,
) -> AsyncGenerator[LocalChat]:
    """A server, a ``local`` workspace with ``backend`` settings, and a chat bound to it."""
    from berth.provisioner.backends.local import LocalBackend

    tokens: list[str] = []
    real_apply = LocalBackend.apply

    async def apply(
        self: LocalBackend, spec: BuildSpec, transition: Transition, log: LogSink
    ) -> list[ResourceRecord]:
        tokens.extend(a.token for a in spec.agents)
        return await real_apply(self, spec, transition, log)

    monkeypatch.setattr(LocalBackend, "apply", apply)
    doc = {**LOCAL_TEMPLATE, "backend": {"type": "local", "isolation": "bwrap", **backend}}
    data_dir = tmp_path / "data"
    try:
        async with serving(database_url, data_dir) as server:
            runtime = server.runtime
            admin = await authenticate(runtime.db, server.admin_token)
            admin_ctx = Ctx(runtime.db, admin, runtime.bus)
            files = {"template.yaml": yaml.safe_dump(doc, sort_keys=False)}
            pushed = await push_template(admin_ctx, files, None)
            chat = await create_chat(admin_ctx)
            assert admin.user_id is not None
            ctx = ChatContext(
                db=runtime.db,
                chat_id=chat.id,
                organization_id=pushed.template.organization_id,
                owner_id=admin.user_id,
                bus=runtime.bus,
                gateway=runtime.gateway,
            )
            arguments = {"template_id": str(pushed.template.id), "name": "box"}
            created = payload(await call_tool(ctx, "create_workspace", arguments))
            assert created["created"] is True, created
            async with runtime.db.read(as_system()) as raw:
                workspace = await raw.get_workspace_by_owner_and_name(admin.user_id, "box")
            assert workspace is not None
            yield LocalChat(server, ctx, workspace.id, tokens)
    finally:
        await asyncio.to_thread(destroy_sandboxes, data_dir)
