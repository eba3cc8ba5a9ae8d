"""Every workspace tool driven with random and adversarial arguments against a real agent.

Issue 8: whatever a chat sends — NUL bytes, lone surrogates, 2,000-level or 5,000-byte
paths, offsets of ±2⁶⁴, wrong types, megabytes of control characters, edits that
would blow a file up — the answer is a result or a clear text error: never an
``internal error`` (a bug in the agent), never a ``<tool> failed: …`` (an exception out
of the tool, a server error), never a traceback in the agent's log, and the agent
stays connected. Each property runs a bounded number of examples, so the module takes
seconds.

Commands are random only inside a harmless grammar (random text is always a quoted
argument of ``printf``), and writes stay inside the project directory: the agent runs
on the test machine, as the test's user.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from berth.agent.protocol import READ_FILE_MAX_BYTES
from berth.tools.result import ToolResult
from tests.support.live_agents import Live, LivePool

pytestmark = pytest.mark.anyio

PROPERTIES = settings(
    max_examples=40,
    deadline=None,
    database=None,  # nothing written into the tree
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one shared workspace for all examples
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

# What only a bug, a crashed tool or a lost agent says.
BROKEN = (
    "internal error",
    "did not answer within",
    "the workspace agent is unreachable",
    "lost the connection",
)

# Any character at all: NUL and other controls, lone surrogates, astral planes.
NASTY = st.one_of(st.text(max_size=40), st.text(st.characters(exclude_categories=()), max_size=40))


@pytest.fixture
async def ws(live_pool: LivePool) -> Live:
    workspace = await live_pool.get(__name__, "sqlite")
    _populate(workspace.project)
    return workspace


def _texts(project: Path) -> None:
    """The text files the edits look for (again, as an earlier example changed them)."""
    home = project / "h"
    (home / "a.txt").write_text("alpha\nbeta\nfoo line\nbeta\n")
    (home / "lines.txt").write_text("".join(f"line {i} foo\n" for i in range(5000)))
    (home / "long.txt").write_text("é" * 200_000 + "x")


def _populate(project: Path) -> None:
    """Files for reads and edits to find: text, one long line, binary, a FIFO, a link."""
    home = project / "h"
    (home / "sub" / "deeper").mkdir(parents=True)
    _texts(project)
    (home / "bin").write_bytes(b"\xff\xfe\x00\x01foo\n")
    (home / "empty").write_bytes(b"")
    (home / "link").symlink_to("a.txt")
    os.mkfifo(home / "fifo")
    for i in range(30):
        (home / "sub" / f"entry-{i}").write_text(str(i))


async def check(ws: Live, tool: str, arguments: Any) -> ToolResult:
    """Call ``tool``; fail on a broken answer, a traceback or a lost agent."""
    log_size = ws.log.stat().st_size
    result = await ws.call(tool, arguments)
    event("error: " + " ".join(result.text.split()[:3]) if result.is_error else "ok")
    if result.is_error:
        assert not result.text.startswith(f"{tool} failed:"), result.text[:500]
        for marker in BROKEN:
            assert marker not in result.text, result.text[:500]
    else:
        assert isinstance(result.structured, dict)
    with ws.log.open("rb") as log:
        log.seek(log_size)
        assert b"Traceback" not in log.read()
    assert ws.process.returncode is None
    assert ws.server.runtime.gateway.holds(ws.agent.id)
    return result


FILES = [
    "h/a.txt",
    "h/lines.txt",
    "h/long.txt",
    "h/bin",
    "h/empty",
    "h/link",
    "h/fifo",
    "h/sub",
    "h/",
]
ADVERSARIAL_PATHS = [
    "",
    " ",
    "\0",
    "h/a\0b",
    "a/" * 2000,
    "x" * 5000,
    "h/" + "n" * 256,
    "h/" + "d/" * 255 + "f",
    "h/" + "d/" * 254 + "f",
    "h/a.txt/",
    "h/a\nb",
    "\udc80",
    "h/\ud800",
]


def _inside(text: str) -> str:
    """A path under the project's ``h/`` that cannot climb out of it."""
    return "h/" + text.replace("..", "__")


WRITE_PATHS = st.one_of(
    st.sampled_from(FILES),
    st.sampled_from(ADVERSARIAL_PATHS).map(
        lambda path: path if path.startswith("h/") else _inside(path)
    ),
    NASTY.map(_inside),
    st.lists(st.sampled_from(["d", "é", " x", "\t"]), max_size=300).map(
        lambda parts: _inside("/".join(parts))
    ),
)
READ_PATHS = st.one_of(
    st.sampled_from(FILES),
    st.sampled_from([*ADVERSARIAL_PATHS, ".", "..", "~", "/", "/etc/hostname"]),
    WRITE_PATHS,
)
NUMBERS = st.one_of(st.none(), st.integers(-2, 60), st.integers(-(2**64), 2**64))
TEXTS = st.one_of(
    NASTY,
    st.text(max_size=300),
    st.sampled_from(["a", "foo", "beta", "line", "\n", "é", "é" * 200_000, "x" * (1 << 20)]),
    st.sampled_from(["\0", "\x01\x1f", "\ud800"]).map(lambda text: text * 50_000),
)
WRONG_TYPES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


def _arguments(
    required: dict[str, st.SearchStrategy[Any]] | None = None, **optional: st.SearchStrategy[Any]
) -> st.SearchStrategy[dict[str, Any]]:
    """The ``required`` arguments and any subset of the ``optional`` ones."""
    return st.fixed_dictionaries(required or {}, optional=optional)


@PROPERTIES
@given(
    arguments=_arguments({"path": READ_PATHS}, offset=NUMBERS, limit=NUMBERS, byte_offset=NUMBERS)
)
async def test_read_file(ws: Live, arguments: dict[str, Any]) -> None:
    result = await check(ws, "read_file", arguments)
    if not result.is_error:
        assert result.structured is not None
        content: str = result.structured["content"]  # the cap holds for it as JSON
        assert len(json.dumps(content, ensure_ascii=False).encode()) - 2 <= READ_FILE_MAX_BYTES


@PROPERTIES
@given(arguments=_arguments({"path": WRITE_PATHS}, content=TEXTS))
async def test_write_file(ws: Live, arguments: dict[str, Any]) -> None:
    result = await check(ws, "write_file", arguments)
    if not result.is_error:
        written = ws.project / arguments["path"]
        content = arguments.get("content", "")
        assert written.read_bytes() == content.encode()


EDIT = st.fixed_dictionaries(
    {
        "path": st.one_of(st.sampled_from(FILES[:3]), WRITE_PATHS),
        "old_text": st.one_of(
            st.sampled_from(["alpha", "foo line", "line 42 foo\n", "é", "foo", "beta\n"]), TEXTS
        ),
        "new_text": TEXTS,
    },
    optional={"replace_all": st.one_of(st.booleans(), st.none())},
)
MATCHES: list[tuple[str, str, bool | None]] = [
    ("h/a.txt", "foo line", False),
    ("h/a.txt", "alpha\n", None),
    ("h/a.txt", "beta\n", True),
    ("h/lines.txt", "line 42 foo\n", False),
    ("h/lines.txt", "foo", True),
    ("h/long.txt", "x", False),
    ("h/long.txt", "é", True),
]


def _matching(target: tuple[str, str, bool | None], new_text: str) -> dict[str, Any]:
    path, old_text, replace_all = target
    return {"path": path, "old_text": old_text, "new_text": new_text, "replace_all": replace_all}


MATCHING_EDIT = st.builds(_matching, st.sampled_from(MATCHES), TEXTS)
MANY_EDITS = st.lists(
    st.fixed_dictionaries(
        {
            "path": st.sampled_from(FILES[:2]),
            "old_text": st.just("foo"),
            "new_text": st.just("bar"),
        },
        optional={"replace_all": st.just(True)},
    ),
    min_size=99,
    max_size=102,
)


@PROPERTIES
@given(
    arguments=_arguments(
        edits=st.one_of(
            st.lists(MATCHING_EDIT, min_size=1, max_size=3),
            st.lists(st.one_of(MATCHING_EDIT, EDIT), max_size=4),
            MANY_EDITS,
        )
    )
)
async def test_edit_files(ws: Live, arguments: dict[str, Any]) -> None:
    _texts(ws.project)
    await check(ws, "edit_files", arguments)


SAFE_COMMANDS = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "&",
            " & ",
            "&&",
            "true &&",
            "echo hi &",
            "exit 3",
            "kill -9 $$",
            "sleep 0.2",
            "printf '\\000\\377\\376'",
            "head -c 100000 /dev/zero",
            "yes | head -c 2000000",
            "cat h/a.txt",
            "echo a\0b",
            "#" * 140_000,
            "echo $BERTH_CHAT_AGENT",
        ]
    ),
    NASTY.map(lambda text: "printf '%s' " + shlex.quote(text)),
)
DURATIONS = st.one_of(
    st.none(),
    st.sampled_from(["1s", "0s", "-1s", "100ms", "abc", "1d", "4h", "5h", "1e9h", "", "\0"]),
    NASTY,
)


@PROPERTIES
@given(
    arguments=_arguments(
        {"command": SAFE_COMMANDS},
        timeout=DURATIONS,
        workdir=st.one_of(st.sampled_from(["", ".", "h", "h/sub", "h/a.txt"]), READ_PATHS),
        run_in_background=st.one_of(st.none(), st.booleans()),
    )
)
async def test_execute(ws: Live, arguments: dict[str, Any]) -> None:
    await check(ws, "execute", arguments)


PROCESS_IDS = st.one_of(st.sampled_from(["REAL", "proc-nope", "p" * 300, "", " "]), NASTY)
WAITS = st.one_of(st.none(), st.sampled_from(["0s", "-5s", "100ms", "1000h", "abc"]), NASTY)
SIGNALS = st.one_of(st.sampled_from(["TERM", "KILL", "INT", "HUP", "sigint", ""]), NASTY)
_real: dict[str, str] = {}


async def _real_process(ws: Live) -> str:
    """A background process of this workspace (it exits at once), started once."""
    if "id" not in _real:
        started = await ws.call("execute", {"command": "echo done", "run_in_background": True})
        assert started.structured is not None
        _real["id"] = str(started.structured["background_process_id"])
    return _real["id"]


@PROPERTIES
@given(
    call=st.one_of(
        st.tuples(
            st.just("process_output"),
            _arguments({"process_id": PROCESS_IDS}, wait_timeout=WAITS),
        ),
        st.tuples(
            st.just("process_signal"),
            _arguments({"process_id": PROCESS_IDS}, signal=SIGNALS),
        ),
        st.tuples(st.just("process_list"), st.just({})),
    )
)
async def test_process_tools(ws: Live, call: tuple[str, dict[str, Any]]) -> None:
    tool, arguments = call
    if arguments.get("process_id") == "REAL":
        arguments["process_id"] = await _real_process(ws)
    await check(ws, tool, arguments)


TOOLS = {
    "read_file": ["path", "offset", "limit", "byte_offset"],
    "write_file": ["path", "content"],
    "edit_files": ["edits"],
    "execute": ["command", "timeout", "workdir", "run_in_background"],
    "process_output": ["process_id", "wait_timeout"],
    "process_signal": ["process_id", "signal"],
    "process_list": [],
}


@st.composite
def _mistyped(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A tool and arguments of the wrong types, wrong shapes or unknown names."""
    tool = draw(st.sampled_from(sorted(TOOLS)))
    names = st.sampled_from([*TOOLS[tool], "bogus", "", "Path"])
    arguments = draw(st.dictionaries(names, WRONG_TYPES, max_size=3))
    if tool == "edit_files" and draw(st.booleans()):
        item = st.dictionaries(
            st.sampled_from(["path", "old_text", "new_text", "replace_all", "x"]), WRONG_TYPES
        )
        arguments["edits"] = draw(st.lists(st.one_of(item, WRONG_TYPES), max_size=3))
    return tool, arguments


@PROPERTIES
@given(call=_mistyped())
async def test_wrong_types_and_shapes(ws: Live, call: tuple[str, dict[str, Any]]) -> None:
    tool, arguments = call
    await check(ws, tool, arguments)
