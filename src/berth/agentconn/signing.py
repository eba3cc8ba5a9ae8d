"""The mesh signature on relayed requests: who may call a replica's relay endpoint.

Every replica reads the same mesh secret from the database; it is never sent. A
relayed request carries, in :data:`RELAY_HEADER`::

    v1;<target replica id>;<unix time>;<nonce>;<hex HMAC-SHA256>

where the HMAC (keyed with the secret) covers the version, the target, the time, the
nonce and the body. A replica accepts a request only when the HMAC matches (not forged),
the target is itself (not replayed to another replica), the time is within
:data:`WINDOW` seconds of its clock and the nonce is new to it within that window (not
replayed to it). What it refuses it answers exactly like an unknown path.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

RELAY_PATH = "/api/v1/internal/relay"
RELAY_HEADER = "X-Berth-Relay"
WINDOW = 30.0
"""Seconds a signed request stays valid either side of the receiver's clock."""
_VERSION = "v1"


def _mac(secret: str, target: uuid.UUID, stamp: str, nonce: str, body: bytes) -> str:
    head = f"{_VERSION}\n{target}\n{stamp}\n{nonce}\n".encode()
    return hmac.new(secret.encode(), head + body, hashlib.sha256).hexdigest()


def sign(secret: str, target: uuid.UUID, body: bytes, *, now: float | None = None) -> str:
    """The header value for a request of ``body`` to replica ``target``."""
    stamp = f"{time.time() if now is None else now:.3f}"
    nonce = secrets.token_hex(16)
    return ";".join((_VERSION, str(target), stamp, nonce, _mac(secret, target, stamp, nonce, body)))


class Verifier:
    """One replica's check of incoming relayed requests (it remembers recent nonces)."""

    def __init__(
        self, replica_id: uuid.UUID, secret: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._replica_id = replica_id
        self._secret = secret
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def plausible(self, header: str | None) -> bool:
        """The cheap checks, before a body is read: well formed, for this replica, in time."""
        return self._parse(header) is not None

    def verify(self, header: str | None, body: bytes) -> bool:
        """Whether the request is genuine, meant for this replica, and new; a genuine one
        is remembered, so the same request a second time is refused."""
        parsed = self._parse(header)
        if parsed is None:
            return False
        stamp, nonce, mac = parsed
        expected = _mac(self._secret, self._replica_id, stamp, nonce, body)
        if not hmac.compare_digest(mac, expected):
            return False
        now = self._clock()
        self._forget_before(now - 2 * WINDOW)
        if nonce in self._seen:
            return False
        self._seen[nonce] = now
        return True

    def _parse(self, header: str | None) -> tuple[str, str, str] | None:
        parts = (header or "").split(";")
        if len(parts) != 5 or parts[0] != _VERSION or parts[1] != str(self._replica_id):
            return None
        _, _, stamp, nonce, mac = parts
        try:
            when = float(stamp)
        except ValueError:
            return None
        if not abs(self._clock() - when) <= WINDOW or not nonce or not mac:
            return None
        return stamp, nonce, mac

    def _forget_before(self, cutoff: float) -> None:
        # Nonces are remembered in arrival order, so the expired ones lead.
        while self._seen:
            nonce, seen_at = next(iter(self._seen.items()))
            if seen_at >= cutoff:
                return
            del self._seen[nonce]
