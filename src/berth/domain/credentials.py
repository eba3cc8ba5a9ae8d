"""Bearer credentials: API tokens, provisioner keys and agent tokens.

Prefixed credentials look like ``<prefix>_<id>_<secret>``: the id finds the row, the
secret is stored only as its SHA-256 (it carries 192 random bits, so a slow hash adds
nothing) and compared in constant time. Agent tokens are bare secrets found by hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Credential:
    """A freshly minted credential: ``value`` is shown once, ``hashed`` is stored."""

    id: str
    value: str
    hashed: bytes


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def secret_matches(hashed: bytes, secret: str) -> bool:
    return hmac.compare_digest(hashed, hash_secret(secret))


def mint(prefix: str) -> Credential:
    """A new ``<prefix>_<id>_<secret>`` credential."""
    key_id = secrets.token_hex(5)
    secret = secrets.token_urlsafe(24)
    return Credential(id=key_id, value=f"{prefix}_{key_id}_{secret}", hashed=hash_secret(secret))


def split(value: str, prefix: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a ``<prefix>_<id>_<secret>`` credential, or ``None``."""
    head, _, rest = value.strip().partition("_")
    key_id, _, secret = rest.partition("_")
    if head != prefix or not key_id or not secret:
        return None
    return key_id, secret


def new_agent_token() -> str:
    """256 random bits as hex: never a leading ``-``, which a URL-safe base64 token has
    one time in 64 and which ``berth agent --token -…`` would take for an option."""
    return secrets.token_hex(32)
