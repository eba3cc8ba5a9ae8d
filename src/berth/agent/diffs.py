"""Unified diffs for ``edit_files``, in time linear in the size of the texts.

:mod:`difflib`'s matching is quadratic on large inputs: a 1 MB file whose every other
line changed took minutes, long enough to drop the agent. :func:`diff_opcodes` gives
the same kind of opcodes without that cost: it trims the common head and tail,
anchors on lines that occur once on each side (patience diff), recurses into the gaps
between anchors (at most :data:`_MAX_DEPTH` rounds) and leaves only small gaps
(:data:`_SMALL_GAP`) to :mod:`difflib`; a gap with no anchor is one ``replace``.
:func:`unified_diff` renders them as ``diff -u`` does (:data:`_CONTEXT` lines of
context, git's marker for a missing final newline) and cuts the text at a byte limit
with a note line. Lines are split after ``\\n`` only (:func:`split_lines`), so a
``\\r`` or a form feed inside a line never makes a hunk that does not apply.
"""

from __future__ import annotations

import bisect
import difflib
import itertools
import re
from collections import Counter
from collections.abc import Iterator

_CONTEXT = 3  # lines of context around a hunk, as diff -u
_SMALL_GAP = 2500  # len(a) * len(b) up to which difflib matches a gap itself
_MAX_DEPTH = 4  # rounds of anchoring inside gaps


# Line breaks str.splitlines knows beside "\n" (and "\r\n", which it keeps whole).
_OTHER_BREAKS = re.compile("\r(?!\n)|[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def split_lines(text: str) -> list[str]:
    """The lines of ``text``, split after each ``\\n`` only, each keeping its ``\\n``."""
    if not _OTHER_BREAKS.search(text):
        return text.splitlines(keepends=True)  # the same lines, much faster
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


Opcode = tuple[str, int, int, int, int]


def diff_opcodes(a: list[str], b: list[str]) -> list[Opcode]:
    """``difflib``-style opcodes turning ``a`` into ``b``, in time linear in their size."""
    codes: list[Opcode] = []
    _diff_range(a, 0, len(a), b, 0, len(b), codes, 0)
    merged: list[Opcode] = []
    for code in codes:
        if code[1] == code[2] and code[3] == code[4]:
            continue
        if merged and merged[-1][0] == code[0] == "equal":
            last = merged[-1]
            merged[-1] = ("equal", last[1], code[2], last[3], code[4])
        else:
            merged.append(code)
    return merged


def _diff_range(
    a: list[str],
    alo: int,
    ahi: int,
    b: list[str],
    blo: int,
    bhi: int,
    out: list[Opcode],
    depth: int,
) -> None:
    head_a, head_b = alo, blo
    while alo < ahi and blo < bhi and a[alo] == b[blo]:
        alo, blo = alo + 1, blo + 1
    if alo > head_a:
        out.append(("equal", head_a, alo, head_b, blo))
    tail_a, tail_b = ahi, bhi
    while ahi > alo and bhi > blo and a[ahi - 1] == b[bhi - 1]:
        ahi, bhi = ahi - 1, bhi - 1
    n, m = ahi - alo, bhi - blo
    if n == 0 and m:
        out.append(("insert", alo, ahi, blo, bhi))
    elif m == 0 and n:
        out.append(("delete", alo, ahi, blo, bhi))
    elif n == 1 and m == 1:
        out.append(("replace", alo, ahi, blo, bhi))
    elif n and m and n * m <= _SMALL_GAP:
        matcher = difflib.SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            out.append((tag, alo + i1, alo + i2, blo + j1, blo + j2))
    elif n and m:
        anchors = _anchors(a, alo, ahi, b, blo, bhi) if depth < _MAX_DEPTH else []
        if not anchors:
            out.append(("replace", alo, ahi, blo, bhi))
        else:
            i, j = alo, blo
            for ai, bj in anchors:
                _diff_range(a, i, ai, b, j, bj, out, depth + 1)
                out.append(("equal", ai, ai + 1, bj, bj + 1))
                i, j = ai + 1, bj + 1
            _diff_range(a, i, ahi, b, j, bhi, out, depth + 1)
    if ahi < tail_a:
        out.append(("equal", ahi, tail_a, bhi, tail_b))


def _anchors(
    a: list[str], alo: int, ahi: int, b: list[str], blo: int, bhi: int
) -> list[tuple[int, int]]:
    """Patience diff's anchors: the longest run, in order on both sides, of lines that
    occur exactly once in ``a[alo:ahi]`` and once in ``b[blo:bhi]``."""
    in_a = Counter(itertools.islice(a, alo, ahi))
    in_b = Counter(itertools.islice(b, blo, bhi))
    unique = {line for line, count in in_a.items() if count == 1 and in_b.get(line) == 1}
    if not unique:
        return []
    where_b = {b[j]: j for j in range(blo, bhi) if b[j] in unique}
    pairs = [(i, where_b[a[i]]) for i in range(alo, ahi) if a[i] in unique]
    # Longest increasing subsequence of the b positions (pairs are in a's order).
    tails: list[int] = []  # b position ending the best run of each length
    ends: list[int] = []  # index into pairs of that run's last pair
    back = [-1] * len(pairs)
    for index, (_, j) in enumerate(pairs):
        length = bisect.bisect_left(tails, j)
        if length:
            back[index] = ends[length - 1]
        if length == len(tails):
            tails.append(j)
            ends.append(index)
        else:
            tails[length], ends[length] = j, index
    run: list[tuple[int, int]] = []
    index = ends[-1] if ends else -1
    while index >= 0:
        run.append(pairs[index])
        index = back[index]
    run.reverse()
    return run


def _groups(codes: list[Opcode], context: int = _CONTEXT) -> Iterator[list[Opcode]]:
    """The hunks: changes with ``context`` equal lines around them (as difflib groups)."""
    if not codes:
        return
    codes = list(codes)
    if codes[0][0] == "equal":
        _, i1, i2, j1, j2 = codes[0]
        codes[0] = ("equal", max(i1, i2 - context), i2, max(j1, j2 - context), j2)
    if codes[-1][0] == "equal":
        _, i1, i2, j1, j2 = codes[-1]
        codes[-1] = ("equal", i1, min(i2, i1 + context), j1, min(j2, j1 + context))
    group: list[Opcode] = []
    for tag, i1, i2, j1, j2 in codes:
        if tag == "equal" and i2 - i1 > 2 * context:
            group.append((tag, i1, min(i2, i1 + context), j1, min(j2, j1 + context)))
            yield group
            group = []
            i1, j1 = max(i1, i2 - context), max(j1, j2 - context)
        group.append((tag, i1, i2, j1, j2))
    if group and not (len(group) == 1 and group[0][0] == "equal"):
        yield group


def _range(start: int, stop: int) -> str:
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start if length == 0 else start + 1},{length}"


def _diff_lines(path: str, a: list[str], b: list[str]) -> Iterator[str]:
    groups = _groups(diff_opcodes(a, b))
    first = next(groups, None)
    if first is None:
        return
    yield f"--- {path}\n"
    yield f"+++ {path}\n"
    for group in itertools.chain((first,), groups):
        yield f"@@ -{_range(group[0][1], group[-1][2])} +{_range(group[0][3], group[-1][4])} @@\n"
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                for index in range(i1, i2):
                    yield " " + a[index]
                continue
            if tag in ("replace", "delete"):
                for index in range(i1, i2):
                    yield "-" + a[index]
            if tag in ("replace", "insert"):
                for index in range(j1, j2):
                    yield "+" + b[index]


def unified_diff(path: str, old: str, new: str, limit: int | None = None) -> tuple[str, bool]:
    """A unified diff of two texts, with git's marker for a missing final newline; cut
    at ``limit`` bytes (with a note line) — and whether it was cut."""
    out: list[str] = []
    used = 0
    for line in _diff_lines(path, split_lines(old), split_lines(new)):
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        size = len(line.encode("utf-8"))
        if limit is not None and used + size > limit:
            room = max(limit - used, 0)
            piece = line.encode("utf-8")[:room].decode("utf-8", errors="ignore")
            if piece:  # the head of the line that fits, ended as a line
                out.append(piece if piece.endswith("\n") else piece + "\n")
            out.append(f"... diff truncated at {limit} bytes; read the file to see the rest\n")
            return "".join(out), True
        out.append(line)
        used += size
    return "".join(out), False
