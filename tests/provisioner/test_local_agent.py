"""The agent in a real local sandbox guards its token and comes back when it is stopped.

A real server in the test's loop, a real bubblewrap sandbox with the real agent, the
chat tools. The tokens are the ones the builds handed to the backend (the test spies
on :meth:`LocalBackend.apply`; the server keeps only their hashes).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import anyio
import pytest

from tests.support.backends import LocalChat, local_chat, processes_with
from tests.support.waiting import until

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.bwrap,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not on PATH"),
]

# Looks for the token (given reversed, so that the probe's own command line and
# environment do not hold it) everywhere a workspace process might read it.
PROBE = r"""
import json, os, stat, sys
secret = sys.argv[1][::-1].encode()
found, readable = [], []


def holds(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        return secret in os.read(fd, 1 << 22)
    except OSError:
        return False
    finally:
        os.close(fd)


for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    if pid == str(os.getpid()):
        continue
    for part in ("environ", "cmdline"):
        try:
            with open("/proc/%s/%s" % (pid, part), "rb") as f:
                data = f.read()
        except OSError:
            continue
        if part == "environ":
            readable.append(int(pid))
        if secret in data:
            found.append("/proc/%s/%s" % (pid, part))
    try:
        fds = os.listdir("/proc/%s/fd" % pid)
    except OSError:
        fds = []
    found += ["/proc/%s/fd/%s" % (pid, fd) for fd in fds if holds("/proc/%s/fd/%s" % (pid, fd))]
for top in ("/home", "/tmp", "/dev/shm", "/opt", "/run", "/etc", "/var"):
    for root, _, names in os.walk(top):
        found += [os.path.join(root, n) for n in names if holds(os.path.join(root, n))]
agents = []
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            if b"berth-agent.pyz" in f.read():
                agents.append(int(pid))
    except OSError:
        pass
print(json.dumps({"found": found, "environ_readable": readable, "agents": agents}))
"""


def _host_files_with(secret: str, root: Path) -> list[str]:
    found: list[str] = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                if secret.encode() in path.read_bytes():
                    found.append(str(path))
            except OSError:
                continue
    return found


async def test_no_workspace_process_can_read_the_agent_token(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with local_chat(database_url, tmp_path, monkeypatch, network=False) as chat:
        (token,) = chat.tokens
        (chat.home / "probe.py").write_text(PROBE)
        result = await chat.run(f"python3 ~/probe.py {token[::-1]}")
        assert result["exit_code"] == 0, result
        report = json.loads(result["output"])
        assert report["found"] == []
        # The agent's /proc files belong to root now; nothing else of berth is readable
        # either (the supervisor is not dumpable): only the probe's own shell.
        assert report["agents"], report
        assert set(report["agents"]).isdisjoint(report["environ_readable"])
        assert 1 not in report["environ_readable"]  # the supervisor
        # On the host: no environment, command line or file of berth's holds it.
        assert processes_with(token) == []
        assert _host_files_with(token, chat.state_dir) == []


async def _listed(chat: LocalChat) -> dict[str, dict[str, object]]:
    listing = await chat.ok("process_list")
    return {p["process_id"]: p for p in listing["processes"]}


async def test_a_stopped_agent_is_continued_and_a_killed_one_returns_with_its_processes(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with local_chat(database_url, tmp_path, monkeypatch, network=False) as chat:
        started = await chat.ok("execute", {"command": "sleep 600", "run_in_background": True})
        sleeper = started["background_process_id"]

        # SIGSTOP from inside: the supervisor continues the agent at once.
        with anyio.fail_after(30):
            await chat.run("kill -STOP $PPID; echo sent")
            alive = await chat.run("echo alive")
        assert alive["output"].strip() == "alive"

        # SIGKILL from inside: a new agent, with the old one's background process.
        old_agent = (await chat.run("echo $PPID"))["output"].strip()
        await chat.call("execute", {"command": "kill -KILL $PPID"})

        async def new_agent() -> str:
            result = await chat.call("execute", {"command": "echo $PPID"})
            return "" if result.is_error else str(result.structured and result.structured["output"])

        with anyio.fail_after(30):
            pid = await until(new_agent, lambda p: p.strip() not in ("", old_agent), within=30)
        assert pid.strip() != old_agent
        listed = await _listed(chat)
        assert listed[sleeper]["running"] is True
        assert listed[sleeper]["command"] == "sleep 600"

        signalled = await chat.call("process_signal", {"process_id": sleeper, "signal": "KILL"})
        assert not signalled.is_error, signalled.text

        async def now_listed() -> dict[str, dict[str, object]]:
            return await _listed(chat)

        def killed(procs: dict[str, dict[str, object]]) -> bool:
            return procs[sleeper]["running"] is False

        done: dict[str, dict[str, object]] = await until(now_listed, killed, within=30)
        assert done[sleeper]["exit_code"] == 137
