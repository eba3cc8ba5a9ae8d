"""The packet filter of a ``network: true`` sandbox: nothing of the host is reachable.

Installed in the sandbox's own network namespace before anything runs in it (see
:mod:`.network`), it rejects the host's own addresses (all of them, kept current as
they change), ``127.0.0.0/8``, ``169.254.0.0/16`` (cloud metadata) and slirp's network
apart from its DNS forwarder; IPv6 is off. The workspace user has no capabilities in
that namespace, so it cannot change the filter.
"""

from __future__ import annotations

from . import SLIRP_DNS, SLIRP_NET

__all__ = ["FIREWALL6", "firewall_rules", "host_addresses"]


def host_addresses(fib_trie: str | None = None) -> list[str]:
    """Every IPv4 address of this host's network namespace (``/proc/net/fib_trie``)."""
    if fib_trie is None:
        with open("/proc/net/fib_trie") as f:
            fib_trie = f.read()
    found: set[str] = set()
    last = ""
    for line in fib_trie.splitlines():
        text = line.strip()
        if text.startswith("|--"):
            last = text[3:].strip()
        elif text.startswith("/32 host LOCAL") and last:
            found.add(last)
    return sorted(found)


def firewall_rules(addresses: list[str]) -> str:
    """``iptables-restore`` input for the sandbox's namespace: nothing of the host."""
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines.append("-A OUTPUT -o lo -j ACCEPT")
    for proto in ("udp", "tcp"):
        lines.append(f"-A OUTPUT -d {SLIRP_DNS}/32 -p {proto} --dport 53 -j ACCEPT")
    blocked = [SLIRP_NET, "127.0.0.0/8", "169.254.0.0/16", *(f"{a}/32" for a in addresses)]
    for net in blocked:
        lines.append(f"-A OUTPUT -d {net} -p tcp -j REJECT --reject-with tcp-reset")
        lines.append(f"-A OUTPUT -d {net} -j REJECT --reject-with icmp-admin-prohibited")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


FIREWALL6 = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT DROP [0:0]\n" + (
    "-A INPUT -i lo -j ACCEPT\n-A OUTPUT -o lo -j ACCEPT\nCOMMIT\n"
)
