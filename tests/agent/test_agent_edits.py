"""edit_files (spec §13.4): every error string, all-or-nothing, replace_all, diffs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from berth.agent import edits
from berth.agent.context import AgentContext
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


def test_diff_marks_a_missing_final_newline() -> None:
    diff = edits.unified_diff("f", "a\nb", "a\nc")
    assert diff == (
        "--- f\n+++ f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n"
        "+c\n\\ No newline at end of file\n"
    )
