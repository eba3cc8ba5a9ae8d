"""Helpers shared by the backend tests: build specs, a stand-in agent, bounded waits."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from berth.domain.template import TemplateDoc
from berth.provisioner.spec import AgentSpec, BuildSpec
from tests.support.waiting import until

STAND_IN_AGENT = r"""
import json, os, socket, sys, time
from urllib.parse import urlsplit

home = os.environ["HOME"]
name = os.environ["BERTH_AGENT_NAME"]


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
}
tmp = os.path.join(home, ".marker-%s.tmp" % name)
with open(tmp, "w") as f:
    json.dump(report, f)
os.rename(tmp, os.path.join(home, "marker-%s.json" % name))
while True:
    time.sleep(3600)
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
    return AgentSpec(
        id=uuid.uuid4(),
        name=name,
        token=f"token-{uuid.uuid4().hex}",
        directory="",
        env=dict(env),
        external=external,
    )


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
