"""``read_file``, ``write_file`` and ``edit_files`` (spec §13.2–13.4) against a real agent."""

from __future__ import annotations

import time
from typing import Any

import pytest

from berth.agent.protocol import READ_FILE_MAX_BYTES, WRITE_FILE_MAX_BYTES
from berth.tools.registry import tool_by_name
from tests.support.chats import error_text, payload
from tests.support.live_agents import Live, LivePool

pytestmark = pytest.mark.anyio

NO_EDITS = "\nNo edits were applied."


@pytest.fixture
async def ws(live_pool: LivePool, database_kind: str) -> Live:
    return await live_pool.get(__name__, database_kind)


@pytest.mark.spec("rf.decl", "wf.decl", "ef.decl")
def test_declarations() -> None:
    """[rf.decl] [wf.decl] [ef.decl] Descriptions verbatim, arguments, MCP hints."""
    read, write, edit = (tool_by_name(n) for n in ("read_file", "write_file", "edit_files"))
    assert read is not None
    assert write is not None
    assert edit is not None
    assert read.description == (
        "Read a file from the workspace. Returns line-numbered content. When reading a "
        "directory, returns a non-recursive directory listing. The offset parameter is a "
        "1-based line number or directory entry (default: 1). The limit parameter is the "
        "number of lines or directory entries to return (default: 2000). For large files and "
        "directories, use offset and limit to paginate."
    )
    assert write.description == "Write a file to the workspace."
    assert edit.description == (
        "Edit files by replacing old_text with new_text. Edits to the same file apply in "
        "order. If any edit fails, no file is changed."
    )
    read_schema, write_schema = read.input_schema(), write.input_schema()
    assert set(read_schema["properties"]) == {"path", "offset", "limit", "byte_offset"}
    assert read_schema["properties"]["offset"]["type"] == "integer"
    assert read_schema["required"] == ["path"]
    assert set(write_schema["properties"]) == {"path", "content"}
    edit_schema = edit.input_schema()
    assert edit_schema["required"] == ["edits"]
    item = edit_schema["$defs"]["EditArg"]
    assert set(item["properties"]) == {"path", "old_text", "new_text", "replace_all"}
    assert item["required"] == ["path", "old_text", "new_text"]
    assert (read.hints.read_only, read.hints.destructive) == (True, False)
    assert (write.hints.read_only, write.hints.destructive) == (False, True)
    assert (edit.hints.read_only, edit.hints.destructive) == (False, True)


@pytest.mark.spec("rf.file")
async def test_read_file(ws: Live) -> None:
    """[rf.file] Line-numbered content, sizes and counts; offset/limit; relative paths;
    the agent's errors as text errors."""
    (ws.project / "notes.txt").write_text("one\ntwo\nthree\n")
    whole = payload(await ws.call("read_file", {"path": "notes.txt"}))
    assert whole == {
        "content": "1\tone\n2\ttwo\n3\tthree",
        "file_size": 14,
        "total_lines": 3,
        "lines_read": 3,
    }
    page = payload(await ws.call("read_file", {"path": "notes.txt", "offset": 2, "limit": 1}))
    assert page == {"content": "2\ttwo", "file_size": 14, "total_lines": 3, "lines_read": 1}
    absolute = payload(await ws.call("read_file", {"path": str(ws.project / "notes.txt")}))
    assert absolute["content"] == whole["content"]
    assert error_text(await ws.call("read_file", {})) == "path is required"
    assert error_text(await ws.call("read_file", {"path": " "})) == "path is required"
    missing = error_text(await ws.call("read_file", {"path": "nope.txt"}))
    assert missing == f"{ws.project}/nope.txt: no such file or directory"
    beyond = await ws.call("read_file", {"path": "notes.txt", "offset": 9})
    assert error_text(beyond) == "offset 9 is beyond the file length of 3 lines"


@pytest.mark.spec("rf.directory")
async def test_read_directory(ws: Live) -> None:
    """[rf.directory] A non-recursive listing, ``/`` after directories, paging fields."""
    (ws.project / "src" / "deep").mkdir(parents=True)
    (ws.project / "a.txt").write_text("a")
    (ws.project / "src" / "deep" / "hidden.txt").write_text("x")
    listing = payload(await ws.call("read_file", {"path": "."}))
    assert listing["is_directory"] is True
    assert listing["absolute_path"] == str(ws.project)
    assert listing["content"].splitlines() == ["1\ta.txt", "2\tsrc/"]
    assert listing["total_entries"] == 2
    assert listing["entries_read"] == 2
    assert listing["truncated"] is False
    assert [e["name"] for e in listing["entries"]] == ["a.txt", "src"]
    first = payload(await ws.call("read_file", {"path": ".", "limit": 1}))
    assert first["entries_read"] == 1
    assert first["truncated"] is True
    beyond = await ws.call("read_file", {"path": ".", "offset": 5})
    assert error_text(beyond) == "offset 5 is beyond the directory length of 2 entries"


@pytest.mark.spec("wf.write")
async def test_write_file(ws: Live) -> None:
    """[wf.write] Parents created, content written, ``{"ok": true}``; ``path is required``."""
    result = payload(
        await ws.call("write_file", {"path": "new/dir/file.txt", "content": "héllo\n"})
    )
    assert result == {"ok": True}
    assert (ws.project / "new" / "dir" / "file.txt").read_text() == "héllo\n"
    payload(await ws.call("write_file", {"path": "new/dir/file.txt", "content": ""}))
    assert (ws.project / "new" / "dir" / "file.txt").read_text() == ""
    assert error_text(await ws.call("write_file", {"content": "x"})) == "path is required"
    directory = error_text(await ws.call("write_file", {"path": "new", "content": "x"}))
    assert directory == f"{ws.project}/new: Is a directory"


def _edit(path: str, old: str, new: str, **kw: Any) -> dict[str, Any]:
    return {"path": path, "old_text": old, "new_text": new, **kw}


@pytest.mark.spec("ef.result")
async def test_edit_files_result(ws: Live) -> None:
    """[ef.result] In-order edits per file, ``replace_all``, a unified diff per file."""
    (ws.project / "a.py").write_text("x = 1\ny = 1\n")
    (ws.project / "b.py").write_text("print('hi')\n")
    edits = [
        _edit("a.py", "x = 1", "x = 2"),
        _edit("a.py", "x = 2", "x = 3"),
        _edit("a.py", "1", "9", replace_all=True),
        _edit("b.py", "hi", "bye"),
    ]
    result = payload(await ws.call("edit_files", {"edits": edits}))
    assert result["ok"] is True
    files = {f["path"]: f["diff"] for f in result["files"]}
    assert set(files) == {"a.py", "b.py"}
    assert "-x = 1\n" in files["a.py"]
    assert "+x = 3\n" in files["a.py"]
    assert "+y = 9\n" in files["a.py"]
    assert "+print('bye')\n" in files["b.py"]
    assert (ws.project / "a.py").read_text() == "x = 3\ny = 9\n"
    assert (ws.project / "b.py").read_text() == "print('bye')\n"


@pytest.mark.spec("ef.errors", "ef.atomic")
async def test_edit_files_errors_change_nothing(ws: Live) -> None:
    """[ef.errors] [ef.atomic] Each failure ends with "No edits were applied." and leaves
    every file as it was, even files whose edits succeeded before the failing one."""
    (ws.project / "a.txt").write_text("alpha\nbeta\nbeta\n")
    (ws.project / "b.txt").write_text("gamma\n")
    assert error_text(await ws.call("edit_files", {"edits": []})) == (
        "Add at least one edit to edits\nNo edits were applied."
    )
    assert error_text(await ws.call("edit_files", {})) == (
        "Add at least one edit to edits\nNo edits were applied."
    )
    missing = error_text(await ws.call("edit_files", {"edits": [_edit("nope.txt", "a", "b")]}))
    assert "nope.txt" in missing
    assert missing.endswith(NO_EDITS)
    not_found = error_text(
        await ws.call(
            "edit_files",
            {"edits": [_edit("b.txt", "gamma", "GAMMA"), _edit("a.txt", "alpah", "x")]},
        )
    )
    assert "old_text was not found in a.txt" in not_found
    assert "alpha" in not_found  # the closest line
    assert not_found.endswith(NO_EDITS)
    ambiguous = error_text(await ws.call("edit_files", {"edits": [_edit("a.txt", "beta", "x")]}))
    assert "2 times" in ambiguous
    assert "replace_all" in ambiguous
    assert ambiguous.endswith(NO_EDITS)
    assert (ws.project / "a.txt").read_text() == "alpha\nbeta\nbeta\n"
    assert (ws.project / "b.txt").read_text() == "gamma\n"


BAD_PATHS = [
    ("a\0b", "path must not contain NUL bytes"),
    ("a/" * 2000, "path must be <= 256 levels deep, got 2000"),
    ("x" * 5000, "path must be <= 4096 bytes, got 5000"),
    ("d/" + "n" * 300, "path must not have a component longer than 255 bytes, got one of 300"),
    ("\udc80", "path must be valid UTF-8 text"),
]


@pytest.mark.spec("rf.file", "wf.write", "ef.errors")
@pytest.mark.parametrize(("path", "message"), BAD_PATHS)
async def test_bad_paths_are_clear_tool_errors(ws: Live, path: str, message: str) -> None:
    """Issue 8: NUL bytes, 2,000 levels, overlong paths or names never reach the agent;
    each is a text error that says what is wrong."""
    if path == "\udc80":  # refused as an argument: it is not text
        read = await ws.call("read_file", {"path": path})
        assert error_text(read) == "invalid arguments: path: must be valid UTF-8 text"
        return
    assert error_text(await ws.call("read_file", {"path": path})) == message
    assert error_text(await ws.call("write_file", {"path": path, "content": "x"})) == message
    edits = {"edits": [_edit("ok.txt", "a", "b"), _edit(path, "a", "b")]}
    assert error_text(await ws.call("edit_files", edits)) == f"edit 2: {message}{NO_EDITS}"
    assert ws.server.runtime.gateway.holds(ws.agent.id)
    assert list(ws.project.iterdir()) == []


@pytest.mark.spec("rf.file", "rf.directory")
async def test_offsets_and_limits_below_one_are_refused(ws: Live) -> None:
    (ws.project / "f.txt").write_text("a\nb\n")
    for target in ("f.txt", "."):
        for name in ("offset", "limit"):
            for value in (0, -1, -(2**40)):
                result = await ws.call("read_file", {"path": target, name: value})
                assert error_text(result) == f"{name} must be >= 1"
    negative = await ws.call("read_file", {"path": "f.txt", "byte_offset": -1})
    assert error_text(negative) == "byte_offset must be >= 0"
    fine = payload(await ws.call("read_file", {"path": "f.txt", "offset": 2, "limit": 10**12}))
    assert fine["content"] == "2\tb"


@pytest.mark.spec("rf.file")
async def test_read_file_of_one_huge_line_is_capped_with_a_note(ws: Live) -> None:
    """Issue 8: a 2 MB single-line file comes back under 1 MB, saying how to page; so
    does one of control characters or bytes that are not UTF-8, which the result's
    JSON makes up to six times larger (the cap is on the content as sent)."""
    line = "0123456789abcdef" * (2 * 1024 * 1024 // 16)
    (ws.project / "one.txt").write_text(line)
    result = await ws.call("read_file", {"path": "one.txt"})
    assert len(result.text.encode()) < 1024 * 1024
    page = payload(result)
    assert len(page["content"].encode()) <= READ_FILE_MAX_BYTES
    assert (page["total_lines"], page["lines_read"], page["file_size"]) == (1, 1, len(line))
    assert page["truncated"] is True
    assert page["next_offset"] == 1
    shown = READ_FILE_MAX_BYTES - 3  # after "1\t", whose tab is two bytes in JSON
    assert page["next_byte_offset"] == shown
    assert f"byte_offset={shown}" in page["note"]
    rest = payload(
        await ws.call("read_file", {"path": "one.txt", "offset": 1, "byte_offset": shown})
    )
    assert rest["content"] == "1\t" + line[shown : 2 * shown]
    for name, data in (
        ("controls.bin", b"\x01\x1f" * 1_000_000),
        ("bytes.bin", b"\xff" * 2_000_000),
    ):
        (ws.project / name).write_bytes(data)
        odd = await ws.call("read_file", {"path": name})
        assert len(odd.text.encode()) < 1024 * 1024
        assert payload(odd)["truncated"] is True


@pytest.mark.spec("wf.write")
async def test_write_file_takes_8_mb_and_refuses_over_the_limit(ws: Live) -> None:
    """Issue 8: an 8 MB write succeeds; content over 32 MiB is a tool error naming the
    limit; text that JSON escapes heavily (control characters) goes through too."""
    content = "".join(f"line {i}\n" for i in range(1_000_000))[: 8 * 1024 * 1024]
    assert payload(await ws.call("write_file", {"path": "eight.txt", "content": content})) == {
        "ok": True
    }
    assert (ws.project / "eight.txt").read_text() == content
    controls = "\x00\x01\x1f" * (4 * 1024 * 1024)  # 12 MiB, 72 MiB as JSON \u00XX escapes
    payload(await ws.call("write_file", {"path": "controls.bin", "content": controls}))
    assert (ws.project / "controls.bin").read_bytes() == controls.encode()
    size = WRITE_FILE_MAX_BYTES + 1
    over = await ws.call("write_file", {"path": "over.txt", "content": "x" * size})
    assert error_text(over) == (
        f"content must be <= {WRITE_FILE_MAX_BYTES} bytes (32 MiB), got {size} bytes"
    )
    assert not (ws.project / "over.txt").exists()
    assert ws.server.runtime.gateway.holds(ws.agent.id)


@pytest.mark.spec("ef.result")
async def test_huge_replace_all_edit_returns_quickly_and_the_agent_stays(ws: Live) -> None:
    """Issue 8: one replace_all on a 1 MB file with a long replacement ran 50 s and
    dropped the agent. Now it answers within seconds, with a cut diff."""
    text = "".join(f"line {i} foo\n" if i % 2 else f"line {i}\n" for i in range(80_000))
    assert len(text) > 1_000_000
    (ws.project / "big.txt").write_text(text)
    started = time.monotonic()
    edit = _edit("big.txt", "foo", "replacement " * 20, replace_all=True)
    result = payload(await ws.call("edit_files", {"edits": [edit]}))
    assert time.monotonic() - started < 60
    assert (ws.project / "big.txt").read_text() == text.replace("foo", "replacement " * 20)
    (item,) = result["files"]
    assert item["diff_truncated"] is True
    assert "diff truncated at" in item["diff"]
    assert ws.server.runtime.gateway.holds(ws.agent.id)
    assert payload(await ws.call("execute", {"command": "echo alive"}))["output"] == "alive\n"
    huge = _edit("big.txt", "line", "x" * 1000, replace_all=True)
    refused = error_text(await ws.call("edit_files", {"edits": [huge]}))
    assert refused.startswith("edit 1: the result in big.txt would be ")
    assert "edit_files edits files of at most 33554432 bytes (32 MiB)" in refused
    assert refused.endswith(NO_EDITS)
