"""read_file (spec §13.2), write_file and stat, called as the dispatcher calls them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from berth.agent.context import AgentContext
from tests.support.agents import call, call_error


def test_read_file_numbers_lines(ctx: AgentContext, workdir: Path) -> None:
    (workdir / "a.txt").write_text("one\ntwo\nthree\n")
    result = call(ctx, "read_file", {"path": "a.txt"})
    assert result == {
        "content": "1\tone\n2\ttwo\n3\tthree",
        "file_size": 14,
        "total_lines": 3,
        "lines_read": 3,
    }


def test_read_file_offset_and_limit(ctx: AgentContext, workdir: Path) -> None:
    (workdir / "n.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    page = call(ctx, "read_file", {"path": "n.txt", "offset": 4, "limit": 3})
    assert page["content"] == "4\tline 4\n5\tline 5\n6\tline 6"
    assert (page["total_lines"], page["lines_read"]) == (10, 3)
    tail = call(ctx, "read_file", {"path": "n.txt", "offset": 9})
    assert tail["content"] == "9\tline 9\n10\tline 10"
    defaults = call(ctx, "read_file", {"path": "n.txt", "offset": 0, "limit": 0})
    assert defaults["lines_read"] == 10
    past = call_error(ctx, "read_file", {"path": "n.txt", "offset": 12})
    assert (past.code, past.message) == (
        "failed",
        "offset 12 is beyond the file length of 10 lines",
    )


def test_read_file_edge_cases(ctx: AgentContext, workdir: Path) -> None:
    (workdir / "empty").write_bytes(b"")
    assert call(ctx, "read_file", {"path": "empty"}) == {
        "content": "",
        "file_size": 0,
        "total_lines": 0,
        "lines_read": 0,
    }
    (workdir / "no-eol").write_text("a\nb")
    assert call(ctx, "read_file", {"path": "no-eol"})["content"] == "1\ta\n2\tb"
    (workdir / "bin").write_bytes(b"ok\xff\xfe\n\x00x\n")
    binary = call(ctx, "read_file", {"path": "bin"})
    assert binary["content"] == "1\tok\ufffd\ufffd\n2\t\x00x"


def test_read_file_errors(ctx: AgentContext, workdir: Path) -> None:
    missing = call_error(ctx, "read_file", {"path": "nope.txt"})
    assert (missing.code, missing.message) == (
        "not_found",
        f"{workdir / 'nope.txt'}: no such file or directory",
    )
    assert call_error(ctx, "read_file", {}).message == "path is required"
    assert call_error(ctx, "read_file", {"path": ""}).message == "path is required"
    assert call_error(ctx, "read_file", {"path": "x", "offset": "2"}).message == (
        "offset must be an integer"
    )
    os.mkfifo(workdir / "fifo")  # opening it would block the worker forever
    fifo = call_error(ctx, "read_file", {"path": "fifo"})
    assert (fifo.code, fifo.message) == ("failed", f"{workdir / 'fifo'}: not a regular file")


def test_read_file_resolves_home_and_absolute(
    ctx: AgentContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "h.txt").write_text("home\n")
    monkeypatch.setenv("HOME", str(home))
    assert call(ctx, "read_file", {"path": "~/h.txt"})["content"] == "1\thome"
    assert call(ctx, "read_file", {"path": str(home / "h.txt")})["content"] == "1\thome"


def test_read_directory(ctx: AgentContext, workdir: Path) -> None:
    (workdir / "b.txt").write_text("12345")
    (workdir / "a-dir").mkdir()
    (workdir / "c.txt").write_text("")
    result = call(ctx, "read_file", {"path": "."})
    assert result == {
        "content": "1\ta-dir/\n2\tb.txt\n3\tc.txt",
        "is_directory": True,
        "absolute_path": str(workdir),
        "entries": [
            {"name": "a-dir", "is_dir": True, "size": 0},
            {"name": "b.txt", "is_dir": False, "size": 5},
            {"name": "c.txt", "is_dir": False, "size": 0},
        ],
        "entries_read": 3,
        "total_entries": 3,
        "truncated": False,
    }
    page = call(ctx, "read_file", {"path": str(workdir), "offset": 2, "limit": 1})
    assert page["content"] == "2\tb.txt"
    assert (page["entries_read"], page["total_entries"], page["truncated"]) == (1, 3, True)
    past = call_error(ctx, "read_file", {"path": ".", "offset": 5})
    assert past.message == "offset 5 is beyond the directory length of 3 entries"


def test_read_empty_directory(ctx: AgentContext, workdir: Path) -> None:
    (workdir / "empty").mkdir()
    result = call(ctx, "read_file", {"path": "empty"})
    assert (result["content"], result["total_entries"], result["truncated"]) == ("", 0, False)


def test_write_file_creates_parents(ctx: AgentContext, workdir: Path) -> None:
    assert call(ctx, "write_file", {"path": "deep/er/new.txt", "content": "héllo\n"}) == {
        "ok": True
    }
    target = workdir / "deep" / "er" / "new.txt"
    assert target.read_text(encoding="utf-8") == "héllo\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in target.parent.iterdir()) == ["new.txt"]  # no temp left


def test_write_file_is_atomic_and_keeps_the_mode(ctx: AgentContext, workdir: Path) -> None:
    target = workdir / "run.sh"
    target.write_text("old")
    target.chmod(0o750)
    before = target.stat().st_ino
    call(ctx, "write_file", {"path": "run.sh", "content": "new"})
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    assert target.stat().st_ino != before  # replaced by rename, not rewritten in place
    assert sorted(p.name for p in workdir.iterdir()) == ["run.sh"]


def test_write_file_writes_through_a_symlink(ctx: AgentContext, workdir: Path) -> None:
    (workdir / "real.txt").write_text("old")
    (workdir / "link.txt").symlink_to("real.txt")
    call(ctx, "write_file", {"path": "link.txt", "content": "new"})
    assert (workdir / "link.txt").is_symlink()
    assert (workdir / "real.txt").read_text() == "new"


def test_write_file_errors(ctx: AgentContext, workdir: Path) -> None:
    assert call_error(ctx, "write_file", {"content": "x"}).message == "path is required"
    assert call_error(ctx, "write_file", {"path": "a", "content": 1}).message == (
        "content must be a string"
    )
    (workdir / "d").mkdir()
    err = call_error(ctx, "write_file", {"path": "d", "content": "x"})
    assert (err.code, err.message) == ("failed", f"{workdir / 'd'}: Is a directory")


def test_stat(ctx: AgentContext, workdir: Path) -> None:
    (workdir / "f").write_text("abc")
    (workdir / "f").chmod(0o640)
    info = call(ctx, "stat", {"path": "f"})
    assert info["exists"] is True
    assert info["is_dir"] is False
    assert (info["size"], info["mode"]) == (3, 0o640)
    assert info["mtime"] == (workdir / "f").stat().st_mtime
    assert info["absolute_path"] == str(workdir / "f")
    assert call(ctx, "stat", {"path": "."})["is_dir"] is True
    assert call(ctx, "stat", {"path": "missing"}) == {
        "exists": False,
        "is_dir": False,
        "size": 0,
        "mode": 0,
        "mtime": 0.0,
        "absolute_path": str(workdir / "missing"),
    }
