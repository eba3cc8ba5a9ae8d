"""The diffs of edit_files (:mod:`berth.agent.diffs`): valid, as difflib's, linear, cut."""

from __future__ import annotations

import difflib
import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from berth.agent.diffs import diff_opcodes, split_lines, unified_diff


def test_diff_marks_a_missing_final_newline() -> None:
    diff, cut = unified_diff("f", "a\nb", "a\nc")
    assert not cut
    assert diff == (
        "--- f\n+++ f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n"
        "+c\n\\ No newline at end of file\n"
    )


def _apply_diff(old: str, diff: str) -> str:
    """Apply a unified diff (as unified_diff writes it) to ``old``; checks every hunk."""
    source = split_lines(old)
    out: list[str] = []
    lines = diff.splitlines(keepends=True)
    if not lines:
        return old
    assert lines[0].startswith("--- ")
    assert lines[1].startswith("+++ ")
    at, index = 0, 2
    while index < len(lines):
        found = re.match(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@\n", lines[index])
        assert found, lines[index]
        start, count = int(found[1]), int(found[2] if found[2] is not None else 1)
        first = start - 1 if count else start
        out.extend(source[at:first])
        at = first
        index += 1
        taken = 0
        while index < len(lines) and not lines[index].startswith("@@"):
            line = lines[index]
            body = line[1:]
            if index + 1 < len(lines) and lines[index + 1] == "\\ No newline at end of file\n":
                body = body.removesuffix("\n")
                index += 1
            if line[0] in " -":
                assert source[at] == body
                at += 1
                taken += 1
            if line[0] in " +":
                out.append(body)
            index += 1
        assert taken == count
    out.extend(source[at:])
    return "".join(out)


_texts = st.lists(
    st.sampled_from(["a\n", "b\n", "c\n", "}\n", "\n", "x", "a", "d\r\n"]), max_size=40
)


@settings(max_examples=300, deadline=None)
@given(old=_texts, new=_texts)
def test_diffs_turn_old_into_new(old: list[str], new: list[str]) -> None:
    """Whatever the texts, the diff is a valid unified diff from old to new."""
    before, after = "".join(old), "".join(new)
    diff, cut = unified_diff("f", before, after)
    assert not cut
    assert _apply_diff(before, diff) == after
    assert (diff == "") == (before == after)


@settings(max_examples=50, deadline=None)
@given(
    seed=st.lists(st.integers(0, 30), min_size=1, max_size=300),
    changes=st.sets(st.integers(0, 299), max_size=60),
)
def test_large_diffs_use_anchors_and_stay_valid(seed: list[int], changes: set[int]) -> None:
    """Past the small-gap size the patience anchors take over; still a valid diff."""
    old = [f"line {n}\n" for n in seed] * 12
    new = [f"changed {i}\n" if i in changes else line for i, line in enumerate(old)]
    before, after = "".join(old), "".join(new)
    diff, _ = unified_diff("f", before, after)
    assert _apply_diff(before, diff) == after


def test_diff_of_a_small_change_matches_difflib() -> None:
    old = "".join(f"line {i}\n" for i in range(100))
    new = old.replace("line 50\n", "line fifty\nextra\n")
    lines = split_lines(old), split_lines(new)
    expected = "".join(difflib.unified_diff(*lines, "f", "f"))
    assert unified_diff("f", old, new) == (expected, False)


def test_lines_split_after_newlines_only() -> None:
    """A ``\\r``, a form feed or U+2028 inside a line is part of it, as in the file."""
    assert split_lines("a\rb\x0cc\n\u2028d\r\ne") == ["a\rb\x0cc\n", "\u2028d\r\n", "e"]
    assert split_lines("a\nb\n") == ["a\n", "b\n"]
    assert split_lines("") == []
    diff, _ = unified_diff("f", "a\rb\nc\n", "a\rB\nc\n")
    assert diff == "--- f\n+++ f\n@@ -1,2 +1,2 @@\n-a\rb\n+a\rB\n c\n"


def test_opcodes_of_the_issue_8_file_are_linear() -> None:
    """Issue 8's file: 80,000 lines, every other one changed. difflib took minutes; the
    anchors (the unchanged lines, each unique) make it one pass."""
    old = [f"line {i} foo\n" if i % 2 else f"line {i}\n" for i in range(80_000)]
    new = [line.replace("foo", "z" * 100) for line in old]
    started = time.monotonic()
    codes = diff_opcodes(old, new)
    assert time.monotonic() - started < 10
    assert len(codes) == 80_000
    assert codes[:2] == [("equal", 0, 1, 0, 1), ("replace", 1, 2, 1, 2)]
    assert codes[-1] == ("replace", 79_999, 80_000, 79_999, 80_000)


def test_a_cut_diff_ends_on_a_character_and_says_so() -> None:
    old = "".join(f"{i} é\n" for i in range(1000))
    new = old.replace("é", "ü")
    full, cut = unified_diff("f", old, new)
    assert not cut
    for limit in (0, 1, 17, 1001, 1002, 1003, len(full.encode()) - 1):
        diff, cut = unified_diff("f", old, new, limit)
        assert cut
        body, note = diff.split("... diff truncated", 1)
        assert note == f" at {limit} bytes; read the file to see the rest\n"
        assert len(body.encode()) <= limit + 1  # the cut line ends with a newline
        assert body == "" or body.endswith("\n")
        assert full.startswith(body.removesuffix("\n"))
        assert "\n\n" not in body
    assert unified_diff("f", old, new, len(full.encode())) == (full, False)
