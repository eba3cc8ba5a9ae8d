"""Agent tokens go on a command line (``berth agent --token …``): none may look like an
option, and each carries 256 random bits."""

from __future__ import annotations

import string

from berth.domain.credentials import hash_secret, new_agent_token


def test_agent_tokens_never_start_like_an_option_and_are_distinct() -> None:
    tokens = [new_agent_token() for _ in range(2000)]
    assert len(set(tokens)) == len(tokens)
    for token in tokens:
        assert len(token) == 64
        assert set(token) <= set(string.hexdigits.lower())
        assert not token.startswith("-")
    assert hash_secret(tokens[0]) != hash_secret(tokens[1])
