"""``python3 -I berth-supervisor.pyz MODE``: which mode runs (the zipapp's entry point)."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, cast

from .inner import inner
from .keeper import join, keeper, oneshot
from .process import die_with_parent, say

__all__ = ["main", "run"]


def main(argv: list[str]) -> int:
    if argv[1:2] == ["join"] and "--" in argv:
        return join(argv[2:])
    if argv[1:] == ["keeper"]:
        return keeper(cast("dict[str, Any]", json.load(sys.stdin)))
    if argv[1:] == ["oneshot"]:
        die_with_parent()  # before the config: the build may be gone by then
        return oneshot(cast("dict[str, Any]", json.load(sys.stdin)))
    if argv[1:] == ["inner"]:
        return inner()
    say(f"usage: {argv[0]} keeper|oneshot|join|inner")
    return 2


def run() -> None:
    """Run :func:`main` on ``sys.argv`` and exit with its code."""
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main(sys.argv))
