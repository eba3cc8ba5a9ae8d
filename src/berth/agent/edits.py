"""``edit_files`` (spec §13.4): search/replace edits, all-or-nothing across files.

A chat that edits three files to rename a function must never leave the workspace
with one file renamed and two not. So every edit is applied in memory first (edits to
the same file in order, each seeing the result of the previous one); only when all of
them succeed are the new contents written, each to a temp file beside its target, and
then renamed over the targets one by one. If a rename fails, the files already
replaced get their old contents back. Every error names the edit and the file, and
ends with ``\\nNo edits were applied.`` so the model knows nothing changed.
"""

from __future__ import annotations

import contextlib
import difflib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from .files import file_mode, fsync_dir, write_temp
from .params import Params, Result, RpcError, get_list
from .protocol import NO_EDITS_APPLIED

if TYPE_CHECKING:
    from .context import AgentContext

_SHOWN_LINE_CHARS = 200


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


def _parse(number: int, raw: object) -> _Edit:
    if not isinstance(raw, dict):
        raise _fail("invalid_params", f"edit {number}: must be an object")
    item = cast(dict[str, Any], raw)
    path = item.get("path")
    if not isinstance(path, str) or not path:
        raise _fail("invalid_params", f"edit {number}: path is required")
    texts: list[str] = []
    for name in ("old_text", "new_text"):
        value = item.get(name)
        if not isinstance(value, str):
            raise _fail("invalid_params", f"edit {number}: {name} must be a string")
        texts.append(value)
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


def _load(ctx: AgentContext, edit: _Edit) -> _File:
    target = os.path.realpath(ctx.resolve(edit.path))
    if not os.path.exists(target):
        raise _fail("not_found", f"edit {edit.number}: file not found: {edit.path}")
    if os.path.isdir(target):
        raise _fail("failed", f"edit {edit.number}: {edit.path} is a directory, not a file")
    if not os.path.isfile(target):
        raise _fail("failed", f"edit {edit.number}: {edit.path} is not a regular file")
    try:
        with open(target, "rb") as stream:
            data = stream.read()
    except OSError as err:
        message = f"edit {edit.number}: cannot read {edit.path}: {err.strerror or err}"
        raise _fail("failed", message) from err
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail("failed", f"edit {edit.number}: {edit.path} is not a UTF-8 text file") from None
    return _File(edit.path, target, text, text, file_mode(target))


def closest_line(text: str, old_text: str) -> tuple[int, str] | None:
    """The 1-based number and text of the file line most like ``old_text``'s first line."""
    wanted = next((line.strip() for line in old_text.split("\n") if line.strip()), "")
    if not wanted:
        return None
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(wanted)
    best: tuple[float, int, str] | None = None
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
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


def _apply(file: _File, edit: _Edit) -> None:
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
    file.current = (
        file.current.replace(old, new) if edit.replace_all else file.current.replace(old, new, 1)
    )


def _lines(text: str) -> list[str]:
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def unified_diff(path: str, old: str, new: str) -> str:
    """A unified diff of two texts, with git's marker for a missing final newline."""
    out: list[str] = []
    for line in difflib.unified_diff(_lines(old), _lines(new), fromfile=path, tofile=path):
        out.append(line)
        if not line.endswith("\n"):
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)


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
    edits = [_parse(number, raw) for number, raw in enumerate(raw_edits, start=1)]
    files: dict[str, _File] = {}
    for edit in edits:
        target = os.path.realpath(ctx.resolve(edit.path))
        file = files.get(target)
        if file is None:
            file = files[target] = _load(ctx, edit)
        _apply(file, edit)
    ordered = list(files.values())
    _commit(ordered)
    return {
        "ok": True,
        "files": [
            {"path": f.path, "diff": unified_diff(f.path, f.original, f.current)} for f in ordered
        ],
    }
