"""Password hashes for the web UI's login: scrypt, self-describing, compared in constant time.

Unlike API tokens (192 random bits, so a fast SHA-256 suffices), passwords are chosen
by people and guessable, so a stolen hash must be expensive to attack: scrypt is
memory-hard (each guess costs ``128 * n * r`` bytes of RAM, here 32 MiB), which takes
GPUs and ASICs out of the game. It is in the standard library, so no native dependency.

A stored hash names its parameters, ``scrypt$<n>$<r>$<p>$<salt>$<key>`` (base64), so
they can be raised later without invalidating existing passwords: :func:`verify` reads
them from the hash, and :func:`needs_rehash` says when one is below today's. Each
password gets its own 16-byte random salt, so equal passwords have unequal hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading

from berth.errors import InvalidInput, Validation

N, R, P = 2**15, 8, 1
"""scrypt's cost (CPU and memory), block size and parallelism: 32 MiB and roughly 0.1 s
per hash on one core of a laptop."""
KEY_BYTES = 32
SALT_BYTES = 16
MIN_LENGTH = 8
MAX_LENGTH = 256
"""Long enough for any passphrase; bounded so a request cannot make the server hash
megabytes (scrypt's first step reads the whole password)."""
_SCHEME = "scrypt"
_MAX_MEMORY = 256 * 1024 * 1024
"""The most a stored hash may make us allocate (``n`` and ``r`` come from the row)."""

_hashing = threading.BoundedSemaphore(2)
"""At most two hashes at once per process, each in its own thread: a burst of logins
queues instead of asking for 32 MiB per request all at once."""


def validate(password: str, field: str = "password") -> bytes:
    """``password`` as UTF-8 if it is acceptable; :class:`InvalidInput` naming ``field``."""
    problem = None
    if len(password) < MIN_LENGTH:
        problem = f"must be at least {MIN_LENGTH} characters"
    elif len(password) > MAX_LENGTH:
        problem = f"must be at most {MAX_LENGTH} characters"
    elif "\x00" in password:
        problem = "must not contain a NUL character"
    try:
        encoded = password.encode()
    except UnicodeEncodeError:
        problem = "must be valid Unicode text"
        encoded = b""
    if problem:
        raise InvalidInput("Invalid password.", validations=[Validation(field, problem)])
    return encoded


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _derive(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    with _hashing:
        return hashlib.scrypt(
            password, salt=salt, n=n, r=r, p=p, maxmem=_MAX_MEMORY, dklen=KEY_BYTES
        )


def hash_password(password: str) -> str:
    """A new hash of ``password`` (validated first). Blocking: call it in a thread."""
    encoded = validate(password)
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(encoded, salt, N, R, P)
    return f"{_SCHEME}${N}${R}${P}${_b64(salt)}${_b64(key)}"


_DUMMY = f"{_SCHEME}${N}${R}${P}${_b64(bytes(SALT_BYTES))}${_b64(bytes(KEY_BYTES))}"


def verify(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored``; blocking, call it in a thread.

    With no stored hash (an unknown user, or one without a password) it still spends
    one hash's time, so the answer's timing does not tell which usernames exist.
    """
    try:
        encoded = password.encode()
    except UnicodeEncodeError:
        encoded = b""
    if len(password) > MAX_LENGTH:
        encoded = b""
    parsed = _parse(stored) if stored else None
    n, r, p, salt, key = parsed or _parse(_DUMMY) or (N, R, P, b"", b"")
    candidate = _derive(encoded, salt, n, r, p)
    return parsed is not None and bool(encoded) and hmac.compare_digest(candidate, key)


def needs_rehash(stored: str) -> bool:
    """Whether ``stored`` uses weaker parameters than new hashes do."""
    parsed = _parse(stored)
    return parsed is None or (parsed[0], parsed[1], parsed[2]) < (N, R, P)


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != _SCHEME:
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, key = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5])
    except ValueError:
        return None
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or 128 * n * r * p > _MAX_MEMORY // 2:
        return None
    return n, r, p, salt, key
