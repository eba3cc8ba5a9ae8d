"""``edit_files`` (spec §13.4): search/replace edits, all-or-nothing across files.

A chat that edits three files to rename a function must never leave the workspace
with one file renamed and two not. So every edit is applied in memory first (edits to
the same file in order, each seeing the result of the previous one); only when all of
them succeed are the new contents written, each to a temp file beside its target, and
then renamed over the targets one by one. If a rename fails, the files already
replaced get their old contents back. Every error names the edit and the file, and
ends with ``\\nNo edits were applied.`` so the model knows nothing changed.

The work is bounded so one call cannot wedge the agent: at most
:data:`EDIT_MAX_EDITS` edits, files (and results) of at most
:data:`EDIT_FILE_MAX_BYTES` (:data:`EDIT_TOTAL_MAX_BYTES` for all of a call's files) —
a result's size is computed from the match count before anything is replaced — and
every step is linear in the size of the files: the diffs come from :mod:`.diffs`,
each cut at :data:`EDIT_DIFF_MAX_BYTES` (:data:`EDIT_DIFFS_MAX_BYTES` for the whole
result). The closest-line hint for a missing ``old_text`` compares at most
:data:`_COMPARE_CHARS` of each line and gives up after :data:`_CLOSEST_SECONDS`. The
handler runs on an RPC thread (see :mod:`.rpc`), never on the connection's reader.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from .diffs import unified_diff
from .files import file_mode, fsync_dir, write_temp
from .params import Params, Result, RpcError, decode_text, get_list, path_problem, size_text
from .protocol import (
    EDIT_DIFF_MAX_BYTES,
    EDIT_DIFFS_MAX_BYTES,
    EDIT_FILE_MAX_BYTES,
    EDIT_MAX_EDITS,
    EDIT_TOTAL_MAX_BYTES,
    NO_EDITS_APPLIED,
)

if TYPE_CHECKING:
    from .context import AgentContext

_SHOWN_LINE_CHARS = 200
_COMPARE_CHARS = 1000  # of a line and of old_text, for the closest-line hint
_CLOSEST_SECONDS = 2.0


def _fail(code: str, message: str) -> RpcError:
    return RpcError(code, message + NO_EDITS_APPLIED)


@dataclass
class _Edit:
    number: int
    path: str
    old_text: str
    new_text: str
    replace_all: bool


@dataclass
class _File:
    path: str  # as the first edit named it
    target: str  # the real path that is replaced
    original: str
    current: str
    mode: int
    size: int  # of current, in UTF-8 bytes


def _parse(number: int, raw: object) -> _Edit:
    if not isinstance(raw, dict):
        raise _fail("invalid_params", f"edit {number}: must be an object")
    item = cast(dict[str, Any], raw)
    path = item.get("path")
    if not isinstance(path, str):
        raise _fail("invalid_params", f"edit {number}: path is required")
    problem = path_problem("path", path)
    if problem is not None:
        raise _fail("invalid_params", f"edit {number}: {problem}")
    texts: list[str] = []
    for name in ("old_text", "new_text"):
        value = item.get(name)
        try:
            texts.append(decode_text(name, value))
        except RpcError as err:
            raise _fail("invalid_params", f"edit {number}: {err.message}") from None
    replace_all = item.get("replace_all", False)
    if replace_all is None:
        replace_all = False
    if not isinstance(replace_all, bool):
        raise _fail("invalid_params", f"edit {number}: replace_all must be a boolean")
    if not texts[0]:
        raise _fail(
            "invalid_params",
            f"edit {number}: old_text must not be empty; use write_file to create "
            f"or replace a whole file",
        )
    return _Edit(number, path, texts[0], texts[1], replace_all)


def _load(ctx: AgentContext, edit: _Edit, loaded: int) -> _File:
    """Read the file an edit names; ``loaded`` is what the call has read so far."""
    target = os.path.realpath(ctx.resolve(edit.path))
    if not os.path.exists(target):
        raise _fail("not_found", f"edit {edit.number}: file not found: {edit.path}")
    if os.path.isdir(target):
        raise _fail("failed", f"edit {edit.number}: {edit.path} is a directory, not a file")
    if not os.path.isfile(target):
        raise _fail("failed", f"edit {edit.number}: {edit.path} is not a regular file")
    try:
        with open(target, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            if size > EDIT_FILE_MAX_BYTES:
                raise _too_big(edit, f"{edit.path} is {size} bytes")
            if loaded + size > EDIT_TOTAL_MAX_BYTES:
                raise _too_many(edit)
            data = stream.read(EDIT_FILE_MAX_BYTES + 1)
    except OSError as err:
        message = f"edit {edit.number}: cannot read {edit.path}: {err.strerror or err}"
        raise _fail("failed", message) from err
    if len(data) > EDIT_FILE_MAX_BYTES:  # it grew while we looked
        raise _too_big(edit, f"{edit.path} is over {EDIT_FILE_MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail("failed", f"edit {edit.number}: {edit.path} is not a UTF-8 text file") from None
    return _File(edit.path, target, text, text, file_mode(target), len(data))


def _too_big(edit: _Edit, what: str) -> RpcError:
    return _fail(
        "failed",
        f"edit {edit.number}: {what}; edit_files edits files of at most "
        f"{size_text(EDIT_FILE_MAX_BYTES)}, before and after "
        f"the edits; change larger files with execute (a script, sed)",
    )


def _too_many(edit: _Edit) -> RpcError:
    return _fail(
        "failed",
        f"edit {edit.number}: the files of one edit_files call may hold at most "
        f"{size_text(EDIT_TOTAL_MAX_BYTES)} together, before "
        f"and after the edits; split the edits into several calls",
    )


def closest_line(
    text: str, old_text: str, seconds: float = _CLOSEST_SECONDS
) -> tuple[int, str] | None:
    """The 1-based number and text of the file line most like ``old_text``'s first line.

    Lines (and old_text) are compared by their first :data:`_COMPARE_CHARS` characters,
    and the search stops after ``seconds`` with the best line so far: it is a hint.
    """
    wanted = next((line.strip() for line in old_text.split("\n") if line.strip()), "")
    if not wanted:
        return None
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(wanted[:_COMPARE_CHARS])
    best: tuple[float, int, str] | None = None
    deadline = time.monotonic() + seconds
    for number, line in enumerate(text.split("\n"), start=1):
        if time.monotonic() > deadline:
            break
        stripped = line.strip()[:_COMPARE_CHARS]
        if not stripped:
            continue
        matcher.set_seq1(stripped)
        floor = best[0] if best else 0.0
        if matcher.real_quick_ratio() <= floor or matcher.quick_ratio() <= floor:
            continue
        ratio = matcher.ratio()
        if ratio > floor:
            best = (ratio, number, line.rstrip("\r"))
    return None if best is None else (best[1], best[2])


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _apply(file: _File, edit: _Edit, total: int) -> None:
    """Apply one edit; ``total`` is the size of all the call's files now."""
    old, new = edit.old_text, edit.new_text
    count = file.current.count(old)
    if count == 0 and "\r\n" in file.current and "\n" in old and "\r\n" not in old:
        # The model writes LF; the file has CRLF. Match it, and keep the file's endings.
        old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
        count = file.current.count(old)
    if count == 0:
        message = f"edit {edit.number}: old_text was not found in {edit.path}."
        near = closest_line(file.current, edit.old_text)
        if near is None:
            message += " The file has no similar line."
        else:
            number, line = near
            if len(line) > _SHOWN_LINE_CHARS:
                line = line[:_SHOWN_LINE_CHARS] + "…"
            message += f"\nThe closest line is line {number}:\n{line}"
        raise _fail("failed", message)
    if count > 1 and not edit.replace_all:
        raise _fail(
            "failed",
            f"edit {edit.number}: old_text matches {count} times in {edit.path}. Include "
            f"more surrounding context in old_text to make the match unique, or set "
            f"replace_all to true to replace all {count} matches.",
        )
    replaced = count if edit.replace_all else 1
    size = file.size + replaced * (_utf8_len(new) - _utf8_len(old))
    if size > EDIT_FILE_MAX_BYTES:
        raise _too_big(edit, f"the result in {edit.path} would be {size} bytes")
    if total + size - file.size > EDIT_TOTAL_MAX_BYTES:
        raise _too_many(edit)
    file.current = (
        file.current.replace(old, new) if edit.replace_all else file.current.replace(old, new, 1)
    )
    file.size = size


def _commit(files: list[_File]) -> None:
    """Write every changed file, or none: temp files first, then renames, else restore."""
    changed = [f for f in files if f.current != f.original]
    temps: list[tuple[_File, str]] = []
    for file in changed:
        try:
            temps.append((file, write_temp(file.target, file.current.encode("utf-8"), file.mode)))
        except OSError as err:
            for _, temp in temps:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
            raise _fail("failed", f"cannot write {file.path}: {err.strerror or err}") from err
    done: list[_File] = []
    for index, (file, temp) in enumerate(temps):
        try:
            os.replace(temp, file.target)
        except OSError as err:
            for _, left in temps[index:]:
                with contextlib.suppress(OSError):
                    os.unlink(left)
            unrestored = _restore(done)
            message = f"cannot replace {file.path}: {err.strerror or err}"
            if unrestored:
                message += f"; could not restore {', '.join(unrestored)}"
            raise _fail("failed", message) from err
        done.append(file)
    for directory in sorted({os.path.dirname(f.target) for f in changed}):
        fsync_dir(directory)


def _restore(done: list[_File]) -> list[str]:
    """Put back the old contents of files already replaced; the paths that failed."""
    failed: list[str] = []
    for file in done:
        try:
            temp = write_temp(file.target, file.original.encode("utf-8"), file.mode)
            os.replace(temp, file.target)
        except OSError:
            failed.append(file.path)
    return failed


def edit_files(ctx: AgentContext, params: Params) -> Result:
    """``edit_files``: apply every edit, or none, and return a diff per file."""
    try:
        raw_edits = get_list(params, "edits")
    except RpcError as err:
        raise _fail(err.code, err.message) from None
    if not raw_edits:
        raise _fail("invalid_params", "Add at least one edit to edits")
    if len(raw_edits) > EDIT_MAX_EDITS:
        raise _fail(
            "invalid_params",
            f"edits must be <= {EDIT_MAX_EDITS} per call, got {len(raw_edits)}; split them "
            f"into several calls",
        )
    edits = [_parse(number, raw) for number, raw in enumerate(raw_edits, start=1)]
    files: dict[str, _File] = {}
    total = 0
    for edit in edits:
        target = os.path.realpath(ctx.resolve(edit.path))
        file = files.get(target)
        if file is None:
            file = files[target] = _load(ctx, edit, total)
            total += file.size
        before = file.size
        _apply(file, edit, total)
        total += file.size - before
    ordered = list(files.values())
    _commit(ordered)
    results: list[Result] = []
    left = EDIT_DIFFS_MAX_BYTES
    for file in ordered:
        diff, cut = unified_diff(
            file.path, file.original, file.current, min(EDIT_DIFF_MAX_BYTES, left)
        )
        left = max(left - _utf8_len(diff), 0)
        item: Result = {"path": file.path, "diff": diff}
        if cut:
            item["diff_truncated"] = True
        results.append(item)
    return {"ok": True, "files": results}
