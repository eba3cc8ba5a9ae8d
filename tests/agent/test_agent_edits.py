"""edit_files (spec §13.4): every error string, all-or-nothing, replace_all, limits."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import Any

import pytest

from berth.agent import edits
from berth.agent.context import AgentContext
from berth.agent.protocol import EDIT_DIFF_MAX_BYTES, EDIT_MAX_EDITS
from tests.support.agents import call, call_error

SUFFIX = "\nNo edits were applied."


def edit(path: str, old: str, new: str, **extra: Any) -> dict[str, Any]:
    return {"path": path, "old_text": old, "new_text": new, **extra}


def test_single_edit_and_diff(ctx: AgentContext, workdir: Path) -> None:
    (workdir / "app.py").write_text("def main():\n    return 1\n")
    result = call(ctx, "edit_files", {"edits": [edit("app.py", "return 1", "return 2")]})
    assert (workdir / "app.py").read_text() == "def main():\n    return 2\n"
    assert result == {
        "ok": True,
        "files": [
            {
                "path": "app.py",
                "diff": (
                    "--- app.py\n+++ app.py\n@@ -1,2 +1,2 @@\n def main():\n"
                    "-    return 1\n+    return 2\n"
                ),
            }
        ],
    }


def test_edits_to_one_file_apply_in_order(ctx: AgentContext, workdir: Path) -> None:
    (workdir / "f.txt").write_text("alpha\n")
    call(
        ctx,
        "edit_files",
        {"edits": [edit("f.txt", "alpha", "beta"), edit(str(workdir / "f.txt"), "beta", "gamma")]},
    )
    assert (workdir / "f.txt").read_text() == "gamma\n"


def test_replace_all(ctx: AgentContext, workdir: Path) -> None:
    (workdir / "f.txt").write_text("x = 1\ny = x + x\n")
    call(ctx, "edit_files", {"edits": [edit("f.txt", "x", "z", replace_all=True)]})
    assert (workdir / "f.txt").read_text() == "z = 1\ny = z + z\n"


def test_multiple_matches_without_replace_all(ctx: AgentContext, workdir: Path) -> None:
    (workdir / "f.txt").write_text("x = 1\ny = x + x\n")
    err = call_error(ctx, "edit_files", {"edits": [edit("f.txt", "x", "z")]})
    assert err.code == "failed"
    assert err.message == (
        "edit 1: old_text matches 3 times in f.txt. Include more surrounding context in "
        "old_text to make the match unique, or set replace_all to true to replace all 3 "
        "matches." + SUFFIX
    )
    assert (workdir / "f.txt").read_text() == "x = 1\ny = x + x\n"


def test_not_found_shows_the_closest_line(ctx: AgentContext, workdir: Path) -> None:
    (workdir / "f.py").write_text("import os\n\ndef compute(value):\n    return value\n")
    err = call_error(
        ctx, "edit_files", {"edits": [edit("f.py", "def compute(valeu):\n    pass", "x")]}
    )
    assert err.code == "failed"
    assert err.message == (
        "edit 1: old_text was not found in f.py.\nThe closest line is line 3:\n"
        "def compute(value):" + SUFFIX
    )


def test_not_found_in_an_empty_file(ctx: AgentContext, workdir: Path) -> None:
    (workdir / "empty").write_text("")
    err = call_error(ctx, "edit_files", {"edits": [edit("empty", "anything", "x")]})
    assert err.message == (
        "edit 1: old_text was not found in empty. The file has no similar line." + SUFFIX
    )


def test_empty_list_and_missing_file(ctx: AgentContext) -> None:
    empty = call_error(ctx, "edit_files", {"edits": []})
    assert (empty.code, empty.message) == (
        "invalid_params",
        "Add at least one edit to edits" + SUFFIX,
    )
    absent = call_error(ctx, "edit_files", {})
    assert absent.message == "Add at least one edit to edits" + SUFFIX
    missing = call_error(ctx, "edit_files", {"edits": [edit("nope.txt", "a", "b")]})
    assert (missing.code, missing.message) == (
        "not_found",
        "edit 1: file not found: nope.txt" + SUFFIX,
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not a list", "edits must be a list"),
        ([3], "edit 1: must be an object"),
        ([{"old_text": "a", "new_text": "b"}], "edit 1: path is required"),
        ([{"path": "f", "old_text": 1, "new_text": "b"}], "edit 1: old_text must be a string"),
        ([{"path": "f", "old_text": "a"}], "edit 1: new_text must be a string"),
        ([edit("f", "a", "b", replace_all="yes")], "edit 1: replace_all must be a boolean"),
        (
            [edit("f", "", "b")],
            "edit 1: old_text must not be empty; use write_file to create or replace a whole file",
        ),
    ],
)
def test_invalid_edits(ctx: AgentContext, raw: object, message: str) -> None:
    err = call_error(ctx, "edit_files", {"edits": raw})
    assert (err.code, err.message) == ("invalid_params", message + SUFFIX)


def test_all_or_nothing_across_files(ctx: AgentContext, workdir: Path) -> None:
    (workdir / "a.txt").write_text("first\n")
    (workdir / "b.txt").write_text("second\n")
    batch = [edit("a.txt", "first", "FIRST"), edit("b.txt", "missing", "x")]
    err = call_error(ctx, "edit_files", {"edits": batch})
    assert err.message.startswith("edit 2: old_text was not found in b.txt.")
    assert err.message.endswith(SUFFIX)
    assert (workdir / "a.txt").read_text() == "first\n"
    assert (workdir / "b.txt").read_text() == "second\n"
    ok = call(ctx, "edit_files", {"edits": [batch[0], edit("b.txt", "second", "SECOND")]})
    assert [f["path"] for f in ok["files"]] == ["a.txt", "b.txt"]
    assert (workdir / "a.txt").read_text() == "FIRST\n"
    assert (workdir / "b.txt").read_text() == "SECOND\n"


def test_a_failed_rename_restores_the_files_already_replaced(
    ctx: AgentContext, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "a.txt").write_text("a\n")
    (workdir / "b.txt").write_text("b\n")
    (workdir / "a.txt").chmod(0o600)
    real_replace = os.replace
    failed: list[str] = []

    def flaky_replace(src: str, dst: str) -> None:
        if dst.endswith("b.txt") and not failed:
            failed.append(dst)
            raise PermissionError(13, "Permission denied")
        real_replace(src, dst)

    monkeypatch.setattr(edits.os, "replace", flaky_replace)
    batch = [edit("a.txt", "a", "A"), edit("b.txt", "b", "B")]
    err = call_error(ctx, "edit_files", {"edits": batch})
    assert err.message == "cannot replace b.txt: Permission denied" + SUFFIX
    assert (workdir / "a.txt").read_text() == "a\n"
    assert (workdir / "a.txt").stat().st_mode & 0o777 == 0o600
    assert (workdir / "b.txt").read_text() == "b\n"
    assert sorted(p.name for p in workdir.iterdir()) == ["a.txt", "b.txt"]


def test_keeps_crlf_line_endings(ctx: AgentContext, workdir: Path) -> None:
    (workdir / "w.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    call(ctx, "edit_files", {"edits": [edit("w.txt", "one\ntwo", "1\n2")]})
    assert (workdir / "w.txt").read_bytes() == b"1\r\n2\r\nthree\r\n"


def test_refuses_binary_files(ctx: AgentContext, workdir: Path) -> None:
    (workdir / "b.bin").write_bytes(b"\xff\xfe")
    err = call_error(ctx, "edit_files", {"edits": [edit("b.bin", "a", "b")]})
    assert err.message == "edit 1: b.bin is not a UTF-8 text file" + SUFFIX


def test_huge_replace_all_is_fast_and_its_diff_is_cut(ctx: AgentContext, workdir: Path) -> None:
    """Issue 8: a 1 MB file where every other line changes, a long replacement. difflib
    took minutes on it; now it is linear, and the diff is cut with a note."""
    text = "".join(f"line {i} foo\n" if i % 2 else f"line {i}\n" for i in range(80_000))
    (workdir / "big.txt").write_text(text)
    started = time.monotonic()
    result = call(
        ctx, "edit_files", {"edits": [edit("big.txt", "foo", "z" * 100, replace_all=True)]}
    )
    assert time.monotonic() - started < 10
    assert (workdir / "big.txt").read_text() == text.replace("foo", "z" * 100)
    (item,) = result["files"]
    assert item["diff_truncated"] is True
    assert len(item["diff"].encode()) <= EDIT_DIFF_MAX_BYTES + 100
    # One hunk (no run of equal lines is longer than the context), cut short.
    head = "--- big.txt\n+++ big.txt\n@@ -1,80000 +1,80000 @@\n line 0\n-line 1 foo\n+line 1 zz"
    assert item["diff"].startswith(head)
    assert item["diff"].endswith(
        f"\n... diff truncated at {EDIT_DIFF_MAX_BYTES} bytes; read the file to see the rest\n"
    )


def test_the_result_size_is_checked_before_replacing(
    ctx: AgentContext, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(edits, "EDIT_FILE_MAX_BYTES", 1000)
    (workdir / "a.txt").write_text("a" * 100)
    err = call_error(ctx, "edit_files", {"edits": [edit("a.txt", "a", "bb" * 6, replace_all=True)]})
    assert err.message == (
        "edit 1: the result in a.txt would be 1200 bytes; edit_files edits files of at most "
        "1000 bytes, before and after the edits; change larger files with execute (a script, "
        "sed)" + SUFFIX
    )
    (workdir / "big.txt").write_text("b" * 1001)
    big = call_error(ctx, "edit_files", {"edits": [edit("big.txt", "b", "c")]})
    assert big.message.startswith("edit 1: big.txt is 1001 bytes; edit_files edits files of")
    assert big.message.endswith(SUFFIX)
    assert (workdir / "a.txt").read_text() == "a" * 100


def test_all_files_of_a_call_are_bounded_together(
    ctx: AgentContext, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(edits, "EDIT_TOTAL_MAX_BYTES", 150)
    for name in ("a.txt", "b.txt"):
        (workdir / name).write_text("x" * 100)
    both = [edit(name, "x", "y", replace_all=True) for name in ("a.txt", "b.txt")]
    err = call_error(ctx, "edit_files", {"edits": both})
    assert err.message.startswith("edit 2: the files of one edit_files call may hold at most 150")
    assert err.message.endswith(SUFFIX)
    grow = call_error(ctx, "edit_files", {"edits": [edit("a.txt", "x", "yy", replace_all=True)]})
    assert grow.message.startswith("edit 1: the files of one edit_files call")


def test_too_many_edits(ctx: AgentContext, workdir: Path) -> None:
    (workdir / "a.txt").write_text("a")
    many = [edit("a.txt", "a", "a")] * (EDIT_MAX_EDITS + 1)
    err = call_error(ctx, "edit_files", {"edits": many})
    assert err.message == (
        f"edits must be <= {EDIT_MAX_EDITS} per call, got {EDIT_MAX_EDITS + 1}; split them into "
        "several calls" + SUFFIX
    )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("a\0b", "path must not contain NUL bytes"),
        ("a/" * 2000, "path must be <= 256 levels deep, got 2000"),
        ("x" * 5000, "path must be <= 4096 bytes, got 5000"),
    ],
)
def test_bad_paths(ctx: AgentContext, path: str, message: str) -> None:
    err = call_error(ctx, "edit_files", {"edits": [edit(path, "a", "b")]})
    assert (err.code, err.message) == ("invalid_params", f"edit 1: {message}" + SUFFIX)


def test_texts_may_come_as_base64(ctx: AgentContext, workdir: Path) -> None:
    (workdir / "c.txt").write_text("a\x01b\n")
    old = {"base64": base64.b64encode(b"\x01").decode()}
    call(ctx, "edit_files", {"edits": [{"path": "c.txt", "old_text": old, "new_text": "-"}]})
    assert (workdir / "c.txt").read_text() == "a-b\n"
    broken = {"path": "c.txt", "old_text": {"base64": "%"}, "new_text": "-"}
    bad = call_error(ctx, "edit_files", {"edits": [broken]})
    assert bad.message == "edit 1: old_text is not valid base64 UTF-8 text" + SUFFIX


def test_the_closest_line_hint_is_bounded_in_time() -> None:
    text = "".join(f"{i} " * 50 + "\n" for i in range(20_000))
    started = time.monotonic()
    assert edits.closest_line(text, "17 " * 50, seconds=0.0) is None
    assert time.monotonic() - started < 1
    assert edits.closest_line("x\n" + "y" * 3_000_000, "y" * 2000 + "z") == (2, "y" * 3_000_000)
