"""``read_file``, ``write_file`` and ``edit_files`` (spec §13.2–13.4) against a real agent."""

from __future__ import annotations

from typing import Any

import pytest

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
    assert set(read_schema["properties"]) == {"path", "offset", "limit"}
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
