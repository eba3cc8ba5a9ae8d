"""The supervisor as shipped: its zipapp, stdlib only, and a ``prepare`` that dies with its build.

The keeper, ``prepare`` and the supervisor inside each sandbox all run from the
zipapp that ``_supervisor_zip`` packs from the ``_supervisor`` package; the backend
tests drive it through real sandboxes. Here: what is in the archive and what it needs,
the packet filter's rules, and that a ``oneshot`` (``prepare``) is gone as soon as the
process that started it is — the guarantee a server killed mid-build relies on
(``test_crash_recovery``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

from berth.provisioner.backends import _supervisor
from berth.provisioner.backends._supervisor import firewall
from berth.provisioner.backends._supervisor_zip import (
    ARCHIVE_PACKAGE,
    archive_bytes,
    build_archive,
    ensure_archive,
)
from tests.support.waiting import until_sync

PACKAGE_DIR = Path(_supervisor.__file__).resolve().parent


def test_the_archive_holds_the_package_and_is_named_by_its_bytes(tmp_path: Path) -> None:
    assert build_archive() == archive_bytes()  # reproducible
    path = ensure_archive(tmp_path / "supervisor")
    assert path.read_bytes() == archive_bytes()
    assert path.name.startswith("berth-supervisor-")
    assert ensure_archive(tmp_path / "supervisor") == path
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
    modules = {f"{ARCHIVE_PACKAGE}/{p.name}" for p in PACKAGE_DIR.glob("*.py")}
    assert {n for n in names if n.endswith(".py")} == {"__main__.py", *modules}
    assert {n for n in names if n.endswith(".pyc")} == {f"{n}c" for n in names if n.endswith(".py")}


def test_the_archive_runs_on_the_standard_library_alone(tmp_path: Path) -> None:
    path = ensure_archive(tmp_path)
    # -I -S: no environment, no site-packages (so nothing of berth), only the archive.
    usage = subprocess.run(
        [sys.executable, "-I", "-S", str(path), "nonsense"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert usage.returncode == 2
    assert "usage:" in usage.stderr
    names = sorted(p.stem for p in PACKAGE_DIR.glob("*.py") if p.stem != "__init__")
    script = (
        f"import json, sys; sys.path.insert(0, {str(path)!r}); "
        f"import {', '.join(f'{ARCHIVE_PACKAGE}.{n}' for n in names)}; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('berth'))))"
    )
    imported = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(imported.stdout) == [
        ARCHIVE_PACKAGE,
        *(f"{ARCHIVE_PACKAGE}.{n}" for n in names),
    ]


FIB_TRIE = """\
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.1
              /32 host LOCAL
     |-- 192.0.2.7
        /32 host LOCAL
     |-- 192.0.2.255
        /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
     |-- 192.0.2.7
        /32 host LOCAL
"""


def test_the_filter_rejects_every_host_address_loopback_and_metadata() -> None:
    addresses = firewall.host_addresses(FIB_TRIE)
    assert addresses == ["127.0.0.1", "192.0.2.7"]
    rules = firewall.firewall_rules(addresses).splitlines()
    assert "-A OUTPUT -o lo -j ACCEPT" in rules
    for net in ("192.0.2.7/32", "127.0.0.0/8", "169.254.0.0/16", _supervisor.SLIRP_NET):
        assert f"-A OUTPUT -d {net} -p tcp -j REJECT --reject-with tcp-reset" in rules
    dns = f"-A OUTPUT -d {_supervisor.SLIRP_DNS}/32 -p udp --dport 53 -j ACCEPT"
    assert rules.index(dns) < rules.index(
        f"-A OUTPUT -d {_supervisor.SLIRP_NET} -j REJECT --reject-with icmp-admin-prohibited"
    )
    assert ":OUTPUT DROP [0:0]" in firewall.FIREWALL6  # no IPv6 at all


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


FAKE_BWRAP = """
import os, sys
# bwrap's part, as the oneshot uses it: report a child on --info-fd, then run.
with open(os.environ["PID_FILE"], "w") as f:
    f.write(str(os.getpid()))
os.write(int(sys.argv[2]), b'{"child-pid": %d}' % os.getpid())
os.execvp("sleep", ["sleep", "600"])
"""

BUILD = """
import json, subprocess, sys
archive, config = sys.argv[1], json.loads(sys.argv[2])
child = subprocess.Popen([sys.executable, "-I", archive, "oneshot"], stdin=subprocess.PIPE)
config["parent_pid"] = __import__("os").getpid()
child.stdin.write(json.dumps(config).encode())
child.stdin.close()
print(child.pid, flush=True)
sys.stdin.read()  # until the test kills this "server"
"""


def test_a_prepare_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    archive = ensure_archive(tmp_path / "supervisor")
    bwrap = tmp_path / "bwrap"
    bwrap.write_text(f"#!{sys.executable}{FAKE_BWRAP}")
    bwrap.chmod(0o755)
    pid_file = tmp_path / "sandbox.pid"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PID_FILE": str(pid_file)}
    config = {"bwrap": [str(bwrap)], "bwrap_env": env}
    server = subprocess.Popen(
        [sys.executable, "-I", "-c", BUILD, str(archive), json.dumps(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    sandbox: int | None = None
    try:
        assert server.stdout is not None
        oneshot = int(server.stdout.readline())
        until_sync(pid_file.exists, what="the sandbox to start", within=30)
        sandbox = int(until_sync(lambda: pid_file.read_text().strip(), within=30))
        assert not _gone(oneshot)

        server.kill()  # SIGKILL: no code of the "server" runs
        server.wait(timeout=30)
        until_sync(lambda: _gone(oneshot), what="the oneshot to die with its parent", within=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)
        if server.stdin is not None:
            server.stdin.close()
        if server.stdout is not None:
            server.stdout.close()
        if sandbox is not None and not _gone(sandbox):
            os.kill(sandbox, signal.SIGKILL)


def test_a_prepare_whose_build_is_gone_before_it_starts_does_not_run(tmp_path: Path) -> None:
    archive = ensure_archive(tmp_path / "supervisor")
    config = {"parent_pid": 1 if os.getpid() != 1 else 2, "bwrap": ["/nonexistent"]}
    done = subprocess.run(
        [sys.executable, "-I", str(archive), "oneshot"],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 125
    assert "the build that started this prepare is gone" in done.stderr
