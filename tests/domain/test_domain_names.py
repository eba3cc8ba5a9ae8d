"""Name rules and generated names [names.*]."""

from __future__ import annotations

import random
import re

import pytest

from berth.domain.names import (
    ADJECTIVES,
    SURNAMES,
    generate_name,
    is_valid_name,
    name_error,
    random_name,
    random_name_with_digit,
)

SUFFIX = r"-[0-9a-f]{4}"


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("a", None),
        ("my-project-1", None),
        ("New", None),
        ("A1-b2-C3", None),
        ("a" * 32, None),
        ("", "must be >= 1 character"),
        ("a" * 33, "must be <= 32 characters"),
        ("é" * 17, "must be <= 32 characters"),  # 34 bytes: Go counts bytes
        ("new", 'cannot use "new" as a name'),
        ("create", 'cannot use "create" as a name'),
        ("-a", "must be alphanumeric with hyphens"),
        ("a-", "must be alphanumeric with hyphens"),
        ("a--b", "must be alphanumeric with hyphens"),
        ("a_b", "must be alphanumeric with hyphens"),
        ("a b", "must be alphanumeric with hyphens"),
        ("abc\n", "must be alphanumeric with hyphens"),
        ("é", "must be alphanumeric with hyphens"),
    ],
)
def test_name_error(name: str, error: str | None) -> None:
    """[names.valid] the rules and their exact messages."""
    assert name_error(name) == error
    assert is_valid_name(name) is (error is None)


def test_generated_name_spec_example() -> None:
    """[names.generate] `My Project!` becomes `myproject-` and four hex digits."""
    assert re.fullmatch(r"myproject" + SUFFIX, generate_name("My Project!"))


@pytest.mark.parametrize(
    ("seed", "pattern"),
    [
        ("python", "python" + SUFFIX),
        ("  Python  ", "python" + SUFFIX),
        ("alice@example.com", "alice" + SUFFIX),
        ("a.b@c@example.com", "abc" + SUFFIX),
        # blank is not a valid name, so (as in the reference) it gets a random base
        ("", r"[a-z]+-[a-z]+" + SUFFIX),
        ("   ", r"[a-z]+-[a-z]+" + SUFFIX),
        ("a" * 32, "a" * 27 + SUFFIX),
        ("a" * 40, r"[a-z]+-[a-z]+" + SUFFIX),  # too long to be a name at all
        ("a" * 26 + "-bbbbb", "a" * 26 + SUFFIX),  # cut at 27 bytes, trailing hyphen trimmed
        ("!!!", r"[a-z]+-[a-z]+" + SUFFIX),  # nothing usable: a random adjective-surname base
        ("new", r"[a-z]+-[a-z]+" + SUFFIX),
    ],
)
def test_generated_names(seed: str, pattern: str) -> None:
    """[names.generate] derivation from the seed."""
    name = generate_name(seed, random.Random(7))
    assert re.fullmatch(pattern, name), name
    assert is_valid_name(name)


def test_generated_name_is_reproducible_with_rng() -> None:
    assert generate_name("python", random.Random(3)) == generate_name("python", random.Random(3))


def test_generated_names_vary() -> None:
    rng = random.Random(11)
    assert len({generate_name("python", rng) for _ in range(50)}) > 40


def test_random_names() -> None:
    rng = random.Random(5)
    for _ in range(200):
        name = random_name(rng)
        adjective, surname = name.split("-")
        assert adjective in ADJECTIVES
        assert surname in SURNAMES
        assert name != "boring-wozniak"
        digit = random_name_with_digit(rng)
        assert re.fullmatch(r"[a-z]+-[a-z]+[0-9]", digit)
        assert is_valid_name(digit)


def test_every_random_name_fits() -> None:
    longest = max(map(len, ADJECTIVES)) + 1 + max(map(len, SURNAMES)) + 1
    assert longest <= 32
    assert all(re.fullmatch("[a-z]+", w) for w in ADJECTIVES + SURNAMES)
