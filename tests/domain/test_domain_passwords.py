"""Password hashes: scrypt with a per-password salt, self-describing, checked in constant time."""

from __future__ import annotations

import base64
import hashlib

import pytest

from berth.domain import passwords
from berth.errors import InvalidInput


def test_a_hash_verifies_its_password_only() -> None:
    stored = passwords.hash_password("correct horse")
    assert stored.startswith(f"scrypt${passwords.N}${passwords.R}${passwords.P}$")
    assert passwords.verify(stored, "correct horse")
    assert not passwords.verify(stored, "correct hors")
    assert not passwords.verify(stored, "correct horse ")
    assert not passwords.needs_rehash(stored)


def test_equal_passwords_get_unequal_hashes() -> None:
    assert passwords.hash_password("same password") != passwords.hash_password("same password")


def test_weaker_parameters_still_verify_and_ask_for_a_rehash() -> None:
    salt = bytes(range(16))
    key = hashlib.scrypt(b"pw-123456", salt=salt, n=1024, r=8, p=1, dklen=32)
    weak = f"scrypt$1024$8$1${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"
    assert passwords.verify(weak, "pw-123456")
    assert passwords.needs_rehash(weak)


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "",
        "sha256$abc",
        "scrypt$1000$8$1$AA==$AA==",
        "scrypt$x$8$1$AA==$AA==",
        "scrypt$1048576$64$1$AA==$AA==",
    ],  # not a power of two, not a number, too costly
)
def test_a_missing_or_malformed_hash_matches_nothing(stored: str | None) -> None:
    assert not passwords.verify(stored, "anything-at-all")


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "at least 8"),
        ("x" * (passwords.MAX_LENGTH + 1), "at most"),
        ("has\x00nul-inside", "NUL"),
        ("lone\ud800surrogate", "Unicode"),
    ],
)
def test_unacceptable_passwords_are_refused_naming_the_rule(password: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        passwords.hash_password(password)
    assert [v.field for v in raised.value.validations] == ["password"]
    assert problem in raised.value.validations[0].detail


def test_an_overlong_or_unencodable_guess_is_simply_wrong() -> None:
    stored = passwords.hash_password("a-good-password")
    assert not passwords.verify(stored, "x" * 100_000)
    assert not passwords.verify(stored, "\ud800")
