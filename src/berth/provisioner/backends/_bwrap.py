"""What a bubblewrap sandbox sees: the mounts, the generated files, the user it runs as.

The sandbox is built from an empty tmpfs root. It gets, read-only, the host's ``/usr``
(and ``/bin``, ``/sbin``, ``/lib*`` as they are on the host: symlinks into ``/usr`` on
merged-usr systems), a curated ``/etc`` (:data:`ETC_ENTRIES` plus generated ``passwd``,
``group``, ``hosts``, ``hostname`` and ``machine-id``; never ``shadow`` or keys), the
agent and the supervisor under ``/opt/berth``; read-write, only the workspace home at
``/home/<owner>``; and private ``/tmp``, ``/dev/shm``, ``/proc`` and ``/dev``.
Generated files are passed as memfds (``--ro-bind-data``), so nothing of the server's
own disk but the home is bound into the sandbox.

Users: inside, the workspace user is uid/gid 1000 with its home in ``/home/<owner>``.
A server running as an unprivileged user runs bwrap unprivileged (``--unshare-user``,
uid 1000 inside maps to the server's uid outside). A server running as root runs bwrap
privileged (mounts need no user namespace) and the sandbox's first command is
``setpriv``, which drops to the host uid/gid given as ``run_as`` (1000:1000 by default),
clears the capability bounding set and sets no-new-privs, so nothing inside runs as
root and set-uid programs from ``/usr`` gain nothing.

Network: every sandbox has a network namespace of its own. Without ``network`` it has
only ``lo``; with it, the keeper adds slirp4netns and a packet filter (see
``_supervisor``), and ``/etc/resolv.conf`` names slirp's DNS forwarder. Either way
agents reach the server through the relay (:func:`plan_relay`). ``/tmp`` and
``/dev/shm`` are tmpfs of ``tmp_size`` bytes each (bwrap ``--size``, where bwrap has it).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "AGENT_PATH",
    "ETC_ENTRIES",
    "INSIDE_ID",
    "RELAY_DIR",
    "RELAY_SOCKET",
    "SANDBOX_PATH",
    "SUPERVISOR_PATH",
    "MemFiles",
    "NetworkTools",
    "RelayPlan",
    "SandboxPlan",
    "bwrap_args",
    "bwrap_supports",
    "drop_privileges",
    "find_bwrap",
    "find_network_tools",
    "plan_relay",
    "sandbox_env",
    "sandbox_user",
]

AGENT_PATH = "/opt/berth/berth-agent.pyz"
SUPERVISOR_PATH = "/opt/berth/berth-supervisor.pyz"
RELAY_DIR = "/run/berth"
RELAY_SOCKET = "relay.sock"
INSIDE_ID = 1000
SLIRP_DNS = "10.0.2.3"
"""slirp4netns's DNS forwarder (kept in step with ``_supervisor.SLIRP_DNS``)."""
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"

ETC_ENTRIES = (
    "alternatives",
    "bash.bashrc",
    "ca-certificates",
    "ca-certificates.conf",
    "crypto-policies",
    "debian_version",
    "gai.conf",
    "gitconfig",
    "host.conf",
    "inputrc",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "locale.alias",
    "localtime",
    "mime.types",
    "nsswitch.conf",
    "os-release",
    "pki",
    "profile",
    "profile.d",
    "protocols",
    "services",
    "shells",
    "ssl",
    "terminfo",
    "timezone",
)
"""What programs need from the host's ``/etc`` (read-only, where present)."""

_SYSTEM_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_USER_NAME = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")


def find_bwrap(configured: str | None) -> str | None:
    """The bwrap executable: the configured path if it exists, else ``bwrap`` on PATH."""
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("bwrap")


@functools.cache
def bwrap_supports(bwrap: str, option: str) -> bool:
    """Whether this bwrap knows ``option`` (``--size`` came in 0.5, ``--as-pid-1`` in 0.4)."""
    try:
        shown = subprocess.run(
            [bwrap, "--help"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return f"{option} " in shown.stdout + shown.stderr


@dataclass(frozen=True, slots=True)
class NetworkTools:
    """What ``network: true`` needs on the host, found on PATH (and in /usr/sbin, /sbin)."""

    slirp4netns: str | None
    iptables_restore: str | None
    ip6tables_restore: str | None
    nsenter: str | None
    unshare: str | None

    def missing(self) -> list[str]:
        needed = {
            "slirp4netns": self.slirp4netns,
            "iptables-restore (iptables)": self.iptables_restore,
            "nsenter (util-linux)": self.nsenter,
            "unshare (util-linux)": self.unshare,
        }
        return [name for name, path in needed.items() if path is None]


def find_network_tools() -> NetworkTools:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])

    def which(name: str) -> str | None:
        return shutil.which(name, path=path)

    return NetworkTools(
        slirp4netns=which("slirp4netns"),
        iptables_restore=which("iptables-restore"),
        ip6tables_restore=which("ip6tables-restore"),
        nsenter=which("nsenter"),
        unshare=which("unshare"),
    )


def sandbox_user(owner: str) -> str:
    """The user name inside the sandbox: the owner's, if it is a valid POSIX name."""
    name = owner.lower()
    return name if _USER_NAME.fullmatch(name) else "user"


class MemFiles:
    """Generated files handed to bwrap as inheritable memfds; close them after spawning."""

    def __init__(self) -> None:
        self.fds: list[int] = []

    def add(self, name: str, data: bytes) -> int:
        fd = os.memfd_create(name, 0)  # inheritable: bwrap reads it
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
        self.fds.append(fd)
        return fd

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()

    def __enter__(self) -> MemFiles:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class RelayPlan:
    """How agents in a sandbox without network reach the server (see ``_supervisor``)."""

    agent_url: str
    """The URL agents dial inside: same host name (mapped to 127.0.0.1), relay port."""
    listen_port: int
    connect: tuple[str, int]
    """Where the host side of the relay connects: the server's own address."""
    host_alias: str | None
    """A host name to map to 127.0.0.1 in the sandbox's /etc/hosts."""


def plan_relay(server_url: str) -> RelayPlan:
    """Keep the URL's host name (TLS still verifies); use a port an unprivileged user may bind."""
    parts = urlsplit(server_url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    listen = port if port >= 1024 else 40000 + port
    try:
        ipaddress.ip_address(host)
        alias = None
        inside_host = "127.0.0.1"
    except ValueError:
        alias = None if host == "localhost" else host
        inside_host = host
    url = urlunsplit(parts._replace(netloc=f"{inside_host}:{listen}"))
    return RelayPlan(agent_url=url, listen_port=listen, connect=(host, port), host_alias=alias)


@dataclass(frozen=True, slots=True)
class SandboxPlan:
    """One sandbox of one workspace."""

    owner: str
    hostname: str
    machine_id: str
    home: Path
    network: bool
    run_as: tuple[int, int] | None
    """Host uid/gid to drop to (the server runs as root), or None (unprivileged bwrap)."""
    relay_dir: Path | None = None
    relay_alias: str | None = None
    tmp_size: int | None = None
    """Bytes of each of ``/tmp`` and ``/dev/shm`` (None: bwrap's default, half the RAM)."""
    workspace_id: str = ""

    @property
    def inside_home(self) -> str:
        return f"/home/{self.owner}"

    @property
    def uid_gid(self) -> tuple[int, int]:
        """The workspace user's uid/gid as seen inside."""
        return self.run_as or (INSIDE_ID, INSIDE_ID)


def _passwd(plan: SandboxPlan) -> bytes:
    uid, gid = plan.uid_gid
    return (
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"{plan.owner}:x:{uid}:{gid}:{plan.owner}:{plan.inside_home}:/bin/bash\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    ).encode()


def _group(plan: SandboxPlan) -> bytes:
    _, gid = plan.uid_gid
    return f"root:x:0:\n{plan.owner}:x:{gid}:\nnogroup:x:65534:\n".encode()


def _hosts(plan: SandboxPlan) -> bytes:
    lines = ["127.0.0.1\tlocalhost", f"127.0.1.1\t{plan.hostname}", "::1\tlocalhost ip6-localhost"]
    if plan.relay_alias:
        lines.append(f"127.0.0.1\t{plan.relay_alias}")
    if plan.network:
        with contextlib.suppress(OSError):
            lines.append(Path("/etc/hosts").read_text())
    return ("\n".join(lines) + "\n").encode()


def _system_mounts() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in _SYSTEM_DIRS:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def _etc_mounts(plan: SandboxPlan, files: MemFiles) -> list[str]:
    args = ["--perms", "0755", "--dir", "/etc"]
    names = [*ETC_ENTRIES, *(p.name for p in Path("/etc").glob("python3*"))]
    for name in names:
        if (Path("/etc") / name).exists():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    generated = {
        "passwd": _passwd(plan),
        "group": _group(plan),
        "hosts": _hosts(plan),
        "hostname": f"{plan.hostname}\n".encode(),
        "machine-id": f"{plan.machine_id}\n".encode(),
    }
    if plan.network:  # slirp4netns forwards DNS to the host's resolvers
        generated["resolv.conf"] = f"nameserver {SLIRP_DNS}\n".encode()
    for name, data in generated.items():
        fd = files.add(name, data)
        args += ["--perms", "0644", "--ro-bind-data", str(fd), f"/etc/{name}"]
    return args


def bwrap_args(
    bwrap: str,
    plan: SandboxPlan,
    files: MemFiles,
    *,
    opt_files: dict[str, bytes],
    die_with_parent: bool = False,
    as_pid_1: bool = False,
) -> list[str]:
    """The bwrap command line up to ``--`` (the caller appends the command).

    ``opt_files`` maps paths under ``/opt/berth`` to their contents. ``as_pid_1``: the
    command is the sandbox's PID 1 (the supervisor), which nothing inside may signal.
    """
    args = [bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net"]
    args += ["--new-session", "--hostname", plan.hostname]
    if as_pid_1:
        args.append("--as-pid-1")
    if plan.run_as is None:
        args += ["--unshare-user", "--uid", str(INSIDE_ID), "--gid", str(INSIDE_ID)]
    else:
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    if die_with_parent:
        args.append("--die-with-parent")
    args += _system_mounts()
    args += _etc_mounts(plan, files)
    args += ["--proc", "/proc", "--dev", "/dev"]
    # Private, per-sandbox temporary directories (tmpfs, gone with the sandbox).
    size = [] if plan.tmp_size is None else ["--size", str(plan.tmp_size)]
    args += ["--perms", "1777", *size, "--tmpfs", "/tmp"]  # noqa: S108
    args += ["--perms", "1777", *size, "--tmpfs", "/dev/shm"]  # noqa: S108
    args += ["--perms", "0755", "--dir", "/var", "--symlink", "../tmp", "/var/tmp"]  # noqa: S108
    args += ["--perms", "0755", "--dir", "/home", "--bind", str(plan.home), plan.inside_home]
    args += ["--perms", "0755", "--dir", "/opt/berth"]
    for path, data in opt_files.items():
        fd = files.add(Path(path).name, data)
        args += ["--perms", "0444", "--ro-bind-data", str(fd), path]
    if plan.relay_dir is not None:
        args += ["--perms", "0755", "--dir", "/run", "--ro-bind", str(plan.relay_dir), RELAY_DIR]
    # The root tmpfs (and /etc, /opt, /run in it) belongs to the sandbox user when bwrap
    # runs unprivileged: freeze it, so the home, /tmp and /dev/shm stay the only
    # writable places.
    args += ["--remount-ro", "/", "--chdir", plan.inside_home]
    return args


def drop_privileges(plan: SandboxPlan) -> list[str]:
    """The command prefix that leaves root inside a privileged sandbox (empty otherwise)."""
    if plan.run_as is None:
        return []
    uid, gid = plan.run_as
    return [
        "/usr/bin/setpriv",
        f"--reuid={uid}",
        f"--regid={gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]


def sandbox_env(plan: SandboxPlan, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a sandboxed process starts with (nothing of the server's)."""
    env = {
        "PATH": SANDBOX_PATH,
        "HOME": plan.inside_home,
        "USER": plan.owner,
        "LOGNAME": plan.owner,
        "SHELL": "/bin/bash" if Path("/bin/bash").exists() else "/bin/sh",
        "LANG": "C.UTF-8",
    }
    if plan.workspace_id:
        env["BERTH_WORKSPACE_ID"] = plan.workspace_id
    env.update(extra or {})
    return env
