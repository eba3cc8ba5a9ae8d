"""read_file (spec §13.2), write_file and stat, called as the dispatcher calls them."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from berth.agent.context import AgentContext
from berth.agent.protocol import READ_FILE_MAX_BYTES, WRITE_FILE_MAX_BYTES
from berth.agent.rpc import serve_request
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
    for name in ("offset", "limit"):
        for bad in (0, -1):
            refused = call_error(ctx, "read_file", {"path": "n.txt", name: bad})
            assert (refused.code, refused.message) == ("invalid_params", f"{name} must be >= 1")
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


def test_read_file_caps_a_page_of_lines(ctx: AgentContext, workdir: Path) -> None:
    """A page stops before the line that would pass the cap, and says where to go on."""
    (workdir / "wide.txt").write_text("".join(f"{i:0200d}\n" for i in range(1, 5001)))
    first = call(ctx, "read_file", {"path": "wide.txt"})
    assert len(first["content"].encode()) <= READ_FILE_MAX_BYTES
    shown = first["lines_read"]
    assert 1000 < shown < 2000
    assert first["truncated"] is True
    assert first["next_offset"] == shown + 1
    assert "next_byte_offset" not in first
    assert first["total_lines"] == 5000
    assert first["note"] == (
        f"Output capped at {READ_FILE_MAX_BYTES} bytes: this shows lines 1-{shown} of 5000. "
        f"Call read_file with offset={shown + 1} to read on."
    )
    second = call(ctx, "read_file", {"path": "wide.txt", "offset": first["next_offset"]})
    assert second["content"].startswith(f"{shown + 1}\t{shown + 1:0200d}")
    small = call(ctx, "read_file", {"path": "wide.txt", "offset": 10, "limit": 5})
    assert set(small) == {"content", "file_size", "total_lines", "lines_read"}


def test_read_file_pages_through_one_huge_line(ctx: AgentContext, workdir: Path) -> None:
    """A 2 MB line comes in byte ranges cut on character boundaries, which join up."""
    line = ("é" * 999 + "x") * 1000
    (workdir / "one.txt").write_text(line + "\nafter\n")
    page = call(ctx, "read_file", {"path": "one.txt"})
    assert len(page["content"].encode()) <= READ_FILE_MAX_BYTES
    assert (page["total_lines"], page["lines_read"], page["next_offset"]) == (2, 1, 1)
    assert page["note"].startswith(f"Output capped at {READ_FILE_MAX_BYTES} bytes: line 1 is")
    assert f"offset=1 and byte_offset={page['next_byte_offset']}" in page["note"]
    text, pages = page["content"].removeprefix("1\t"), 1
    while "next_byte_offset" in page:
        args = {"offset": page["next_offset"], "byte_offset": page["next_byte_offset"]}
        page = call(ctx, "read_file", {"path": "one.txt", "limit": 1, **args})
        assert "\ufffd" not in page["content"]
        text += page["content"].removeprefix("1\t")
        pages += 1
    assert text == line
    assert pages == 8  # 1,999,000 bytes in pieces of just under 256 KiB
    end = call(ctx, "read_file", {"path": "one.txt", "offset": 1, "byte_offset": 1_999_000})
    assert (end["content"], end["lines_read"]) == ("1\t\n2\tafter", 2)
    beyond = call_error(ctx, "read_file", {"path": "one.txt", "byte_offset": 10**9})
    assert beyond.message == (
        f"byte_offset 1000000000 is beyond the length of line 1 ({len(line.encode())} bytes)"
    )
    assert call_error(ctx, "read_file", {"path": "one.txt", "byte_offset": -1}).message == (
        "byte_offset must be >= 0"
    )
    assert call_error(ctx, "read_file", {"path": ".", "byte_offset": 1}).message == (
        "byte_offset applies to files, not to directories"
    )


def _json_size(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"\x01" * 2_000_000, "\x01" * 2_000_000),  # six bytes each as \u0001
        (b"\xff" * 2_000_000, "\ufffd" * 2_000_000),  # not UTF-8: U+FFFD, three bytes
        (
            b'a"\\\t\x1f\xc3\xa9\xf0\x9f\x99\x82\xfe' * 150_000,
            'a"\\\t\x1f\u00e9\U0001f642\ufffd' * 150_000,
        ),
    ],
    ids=["controls", "invalid", "mixed"],
)
def test_read_file_caps_the_result_as_sent(
    ctx: AgentContext, workdir: Path, data: bytes, text: str
) -> None:
    """The cap is on the content as the result carries it (JSON escapes, U+FFFD for
    bytes that are not UTF-8), so a 2 MB line of control characters or binary is as
    bounded as one of letters; its pages still join up to the whole line."""
    (workdir / "odd.bin").write_bytes(data + b"\nend\n")
    page = call(ctx, "read_file", {"path": "odd.bin", "limit": 1})
    joined, pages = page["content"].removeprefix("1\t"), 1
    while "next_byte_offset" in page:
        # A full page: the next character (six bytes at most) did not fit.
        assert READ_FILE_MAX_BYTES - 6 < _json_size(page["content"]) <= READ_FILE_MAX_BYTES
        args = {"offset": page["next_offset"], "byte_offset": page["next_byte_offset"]}
        page = call(ctx, "read_file", {"path": "odd.bin", "limit": 1, **args})
        joined += page["content"].removeprefix("1\t")
        pages += 1
    assert _json_size(page["content"]) <= READ_FILE_MAX_BYTES
    assert joined == text
    assert pages > 1
    lines = call(ctx, "read_file", {"path": "odd.bin", "byte_offset": len(data) - 10})
    assert lines["content"].endswith("\n2\tend")


def test_read_file_pages_of_short_escaped_lines_are_capped(
    ctx: AgentContext, workdir: Path
) -> None:
    (workdir / "esc.txt").write_text(("\x02" * 100 + "\n") * 2000)
    page = call(ctx, "read_file", {"path": "esc.txt"})
    assert page["truncated"] is True
    assert READ_FILE_MAX_BYTES - 620 < _json_size(page["content"]) <= READ_FILE_MAX_BYTES
    assert page["next_offset"] == page["lines_read"] + 1 < 500


def test_read_directory_caps_the_listing(ctx: AgentContext, workdir: Path) -> None:
    (workdir / "many").mkdir()
    for i in range(1200):
        (workdir / "many" / f"{i:04d}{'n' * 240}").touch()
    listing = call(ctx, "read_file", {"path": "many"})
    assert len(listing["content"].encode()) <= READ_FILE_MAX_BYTES
    shown = listing["entries_read"]
    assert shown < 1200
    assert listing["truncated"] is True
    assert listing["next_offset"] == shown + 1
    assert listing["note"].endswith(f"Call read_file with offset={shown + 1} to read on.")


def test_read_directory_names_that_are_not_utf8(ctx: AgentContext, workdir: Path) -> None:
    os.mkdir(os.path.join(os.fsencode(workdir), b"odd"))
    open(os.path.join(os.fsencode(workdir), b"odd", b"caf\xe9"), "w").close()
    listing = call(ctx, "read_file", {"path": "odd"})
    assert listing["content"] == "1\tcaf\ufffd"
    assert listing["entries"][0]["name"] == "caf\ufffd"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("a\0b", "path must not contain NUL bytes"),
        ("\ud800", "path must be valid UTF-8 text"),
        ("x" * 4097, "path must be <= 4096 bytes, got 4097"),
        ("d/" + "y" * 256, "path must not have a component longer than 255 bytes, got one of 256"),
        ("a/" * 2000, "path must be <= 256 levels deep, got 2000"),
        ("   ", "path is required"),
    ],
)
@pytest.mark.parametrize("method", ["read_file", "write_file", "stat"])
def test_bad_paths_are_invalid_params(
    ctx: AgentContext, method: str, path: str, message: str
) -> None:
    err = call_error(ctx, method, {"path": path, "content": "x"})
    assert (err.code, err.message) == ("invalid_params", message)


def test_write_file_takes_base64_content(ctx: AgentContext, workdir: Path) -> None:
    text = "\x00\x01 héllo\n"
    encoded = base64.b64encode(text.encode()).decode()
    call(ctx, "write_file", {"path": "b.txt", "content": {"base64": encoded}})
    assert (workdir / "b.txt").read_bytes() == text.encode()
    for bad in ({"base64": "!!"}, {"base64": base64.b64encode(b"\xff").decode()}):
        err = call_error(ctx, "write_file", {"path": "b.txt", "content": bad})
        assert err.message == "content is not valid base64 UTF-8 text"
    odd = call_error(ctx, "write_file", {"path": "b.txt", "content": {"hex": "00"}})
    assert odd.message == "content must be a string"
    assert (workdir / "b.txt").read_bytes() == text.encode()


def test_write_file_refuses_content_over_the_limit(ctx: AgentContext, workdir: Path) -> None:
    size = WRITE_FILE_MAX_BYTES + 1
    err = call_error(ctx, "write_file", {"path": "big", "content": "x" * size})
    assert (err.code, err.message) == (
        "invalid_params",
        f"content must be <= {WRITE_FILE_MAX_BYTES} bytes (32 MiB), got {size} bytes",
    )
    assert not (workdir / "big").exists()
    call(ctx, "write_file", {"path": "big", "content": "x" * WRITE_FILE_MAX_BYTES})
    assert (workdir / "big").stat().st_size == WRITE_FILE_MAX_BYTES


def test_a_result_that_cannot_be_sent_is_still_answered(ctx: AgentContext) -> None:
    """A response frame that cannot be encoded (text that is not UTF-8) becomes an
    ``internal`` error response, so the server is answered rather than left waiting."""
    sent: list[dict[str, Any]] = []

    def send(frame: dict[str, Any]) -> None:
        if "error" not in frame:
            "\ud800".encode()  # what the socket does with such text
        sent.append(frame)

    serve_request(ctx, {"id": 7, "method": "ping"}, send).join(10)
    (frame,) = sent
    assert frame["id"] == 7
    assert frame["error"]["code"] == "internal"
    assert frame["error"]["message"].startswith("internal error: the response cannot be sent:")
