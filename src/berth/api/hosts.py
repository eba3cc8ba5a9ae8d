"""The names a request may give the server in ``Host`` and ``Origin`` (DNS rebinding).

A web page on ``evil.example`` whose name its owner points at 127.0.0.1 can make a
browser send requests to a berth server on the user's machine; they carry
``Host: evil.example`` (and ``Origin: http://evil.example``). The MCP specification
requires servers to refuse them, so the MCP endpoints answer only to the names the
server is known by:

- its access URL's host and port;
- its ``--address`` (when that is not a wildcard such as ``0.0.0.0``);
- for a server listening on loopback or on every address: ``localhost``, ``127.0.0.1``
  and ``[::1]`` with the port the request came in on (or the address's);
- the configured extra hosts (``BERTH_ALLOWED_HOSTS``): ``HOST`` (any port),
  ``HOST:PORT``, a URL, or ``*`` for any host (no protection).

A ``Host`` without a port matches a name whose port is its scheme's default (a server
behind a TLS proxy at ``https://berth.example`` gets ``Host: berth.example``).
``Origin`` is checked when present (browsers send it; other clients mostly do not).
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.types import Scope

from berth.errors import Forbidden
from berth.settings import Settings

__all__ = ["AllowedHosts"]

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
ANY_PORT = -1
NO_PORT = 0
"""A ``Host`` that names no port (port 0 is never one a client connects to)."""

_HINT = (
    "Name the server by its access URL or its address; allow other names with "
    "BERTH_ALLOWED_HOSTS (comma-separated HOST, HOST:PORT or URL)."
)


def _split(hostport: str) -> tuple[str, int] | None:
    """``host[:port]`` as ``(hostname, port)`` (``NO_PORT`` when none); None if malformed."""
    if not hostport or any(c in hostport for c in "/?#@ \t"):
        return None
    try:
        parts = urllib.parse.urlsplit(f"//{hostport}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), NO_PORT if port is None else port


def _url(url: str) -> tuple[str, int, int] | None:
    """A URL's ``(hostname, port, its scheme's default port)``; None if it has no host."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    default = DEFAULT_PORTS.get(parts.scheme.lower(), 80)
    return parts.hostname.lower(), default if port is None else port, default


def _is_wildcard_or_loopback(host: str) -> tuple[bool, bool]:
    if host in ("", "*", "0.0.0.0", "::"):  # noqa: S104 - comparing, not binding
        return True, False
    if host == "localhost":
        return False, True
    try:
        return False, ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False, False


@dataclass(frozen=True, slots=True)
class AllowedHosts:
    """The ``(hostname, port)`` pairs a request may name; see the module docstring."""

    names: frozenset[tuple[str, int]]
    loopback: bool
    """Also the localhost forms, at the port the request came in on."""
    loopback_ports: frozenset[int] = frozenset()
    any_host: bool = False

    @classmethod
    def of(cls, settings: Settings) -> AllowedHosts:
        names: set[tuple[str, int]] = set()
        loopback = False
        loopback_ports: set[int] = set()
        any_host = False

        def add_url(url: str) -> None:
            found = _url(url)
            if found is not None:
                host, port, default = found
                names.add((host, port))
                if port == default:
                    names.add((host, NO_PORT))

        add_url(settings.resolved_access_url())
        host, _, port_text = settings.address.rpartition(":")
        host = host.strip("[]").lower()
        port = int(port_text) if port_text.isdigit() else 0
        wildcard, is_loopback = _is_wildcard_or_loopback(host)
        if wildcard or is_loopback:
            loopback = True
            if port:
                loopback_ports.add(port)
        if not wildcard and port:
            names.add((host, port))
        for entry in settings.allowed_hosts:
            entry = entry.strip()
            if entry == "*":
                any_host = True
            elif "://" in entry:
                add_url(entry)
            elif (split := _split(entry)) is not None:
                name, entry_port = split
                names.add((name, ANY_PORT if entry_port == NO_PORT else entry_port))
        return cls(frozenset(names), loopback, frozenset(loopback_ports), any_host)

    def allows(self, host: str, port: int, server_ports: Iterable[int] = ()) -> bool:
        """Whether ``host:port`` (``NO_PORT``: none given) names this server."""
        if self.any_host or (host, port) in self.names or (host, ANY_PORT) in self.names:
            return True
        if self.loopback and host in LOOPBACK_NAMES:
            ports = self.loopback_ports | set(server_ports)
            return port in ports or (port == NO_PORT and 80 in ports)
        return False

    def check(self, scope: Scope) -> None:
        """Raise :class:`Forbidden` unless the request's ``Host`` (and ``Origin``, when
        sent) name this server."""
        if self.any_host:
            return
        headers = {
            key.decode("latin-1").lower(): value.decode("latin-1")
            for key, value in scope.get("headers", ())
        }
        server = scope.get("server")
        server_ports = [server[1]] if server and server[1] else []
        host = headers.get("host", "")
        split = _split(host)
        if split is None or not self.allows(*split, server_ports=server_ports):
            raise Forbidden(f"The host {host!r} is not one this server answers to.", detail=_HINT)
        origin = headers.get("origin")
        if origin is None:
            return
        found = _url(origin) if origin.lower() != "null" else None
        if found is not None:
            name, port, default = found
            if self.allows(name, port, server_ports) or (
                port == default and self.allows(name, NO_PORT, server_ports)
            ):
                return
        raise Forbidden(f"The origin {origin!r} is not one this server answers to.", detail=_HINT)
