"""The wire protocol between the workspace agent and the server (shared by both).

One WebSocket per agent, dialled by the agent to ``<server>/api/v1/agent/connect``
with ``Authorization: Bearer <agent token>``. Every frame is a JSON text message with
a ``type``. Stdlib only: this module is imported by the agent (Python ≥ 3.9), so it
uses no ``match``, no ``X | Y`` at runtime and nothing outside the standard library.

A handshake answered 401 or 403 (or a connection the server closes with code 4401 or
4403) means the token is wrong or revoked: the agent exits with code 2 instead of
retrying. Any other failure (refused, 404, 5xx, a dropped
socket) is retried forever with exponential backoff and jitter
(:data:`BACKOFF_INITIAL_SECONDS` → :data:`BACKOFF_MAX_SECONDS`).

Agent → server
    ``hello``      ``{version, pid, hostname, python}``, first frame after connecting.
    ``lifecycle``  ``{state, generation}``: one of :data:`LIFECYCLE_STATES`, as scripts
                   progress, and the current state again after every manifest (so a
                   server that missed frames during a reconnect learns where the agent
                   is). ``generation`` is the manifest generation the state belongs to.
    ``logs``       ``{entries: [{script_id, created_at, level, output}]}``, batched:
                   one entry per output line of a script, flushed at least every
                   :data:`LOG_FLUSH_SECONDS`; ``created_at`` is ISO 8601 UTC with a
                   ``Z``; ``level`` is one of :data:`LOG_LEVELS` (``error`` for the
                   agent's own notes about a script, e.g. that it timed out). Entries
                   produced while disconnected are kept (bounded) and sent later.
    ``heartbeat``  ``{}`` every :data:`HEARTBEAT_SECONDS`; marks the agent connected.
    ``response``   ``{id, result}`` or ``{id, error: {message, code?}}`` to a request.

Server → agent
    ``manifest``   ``{agent_id, name, directory, env, scripts: [Script], owner, workspace,
                   generation, phase?}`` right after ``hello``; on every connect, including
                   re-personalization (a prebuilt workspace claimed by a user gets a new
                   manifest, with a new ``generation`` and ``phase: "claim"``). The
                   agent runs the start scripts once per manifest ``generation`` (a
                   string or integer, compared for equality; absent means "once per
                   agent process"): a manifest with a generation it has already run
                   only updates ``env``/``directory`` and re-sends the current
                   lifecycle state. ``phase`` is ``"start"`` (the default when absent)
                   or ``"claim"``: what a new generation runs (see Lifecycle).
                   ``directory`` is the agent directory ("" = ``$HOME``; ``~`` expands;
                   created if missing); ``env`` is added to the agent's own environment
                   for scripts and ``exec``.
    ``request``    ``{id, method, params}``: an RPC, answered by one ``response``.
    ``shutdown``   ``{}``: run the stop scripts, report ``shutting_down`` → ``off``.

Script (an element of ``manifest.scripts``)
    ``{id, display_name, run_on, blocks_login, timeout_seconds, script}``: ``id`` names
    the script in ``logs`` entries (default: its index in the list as a string);
    ``run_on`` is one of :data:`SCRIPT_RUN_ON` (``claim``: when a user claims a
    prebuilt workspace); ``timeout_seconds`` 0 = no limit;
    ``script`` runs under ``sh -c`` in the agent directory.

Lifecycle
    Start (new generation): ``created`` (only before the first run) → ``starting`` → run
    the ``blocks_login`` start scripts in order → ``ready``, or ``start_error`` at the
    first one that exits non-zero, or ``start_timeout`` at the first one that overruns
    its timeout (it is killed). Then the non-blocking start scripts run in order in the
    background; they do not change the state. ``shutdown``: running start scripts are
    killed, ``shutting_down``, the stop scripts run in order → ``off``, or
    ``shutdown_error`` / ``shutdown_timeout`` likewise.

    Claim (new generation with ``phase: "claim"``): the same states, but the scripts
    run are the ``claim`` ones when this agent process already ran its start scripts
    (to an outcome, with no shutdown since): the prebuild is set up, only the new
    owner's part is missing. An agent process that has not (say it restarted after the
    claim) runs both as one start: ``starting`` → the blocking start scripts, then the
    blocking claim scripts → ``ready`` or the first failure's state; then the
    non-blocking start scripts, then the non-blocking claim scripts, in the background.

    Each ``lifecycle`` frame carries the generation of the run it reports: on a new
    generation the re-sent current state keeps the generation it belongs to (only
    ``created`` takes the first one), and ``starting`` is the first frame with the new
    one, so the server can drop reports of a superseded run. A new manifest or a
    ``shutdown`` cancels the run in progress (its script and background scripts are
    killed).

RPC methods (``params`` → ``result``); relative paths resolve against the agent
directory and ``~`` expands; a path param with a NUL byte, lone surrogates, more than
:data:`PATH_MAX_BYTES` bytes, a component over :data:`PATH_NAME_MAX_BYTES` bytes or more
than :data:`PATH_MAX_DEPTH` levels is ``invalid_params`` (see ``params.path_problem``):
    ``ping``            ``{}`` → ``{}``
    ``exec``            ``{command, timeout_ms?, workdir?, env?, background?, output_limit?,
                        separate_stderr?}`` → ``{exit_code, output, truncated, timed_out,
                        wall_duration_ms, process_id?}``. ``sh -c`` in its own process
                        group, stdout and stderr interleaved, env = agent env + ``env``.
                        ``timeout_ms`` defaults to :data:`DEFAULT_EXEC_TIMEOUT_MS`;
                        ``output_limit`` to :data:`DEFAULT_OUTPUT_LIMIT` bytes (the head
                        of the output, cut on a UTF-8 boundary; at most
                        :data:`PROCESS_BUFFER_BYTES`).
                        On timeout the command keeps running as a background process:
                        ``timed_out: true``, ``exit_code: -1``, the output so far and
                        its ``process_id``. ``background: true`` returns at once with
                        ``exit_code: 0`` and ``process_id``. A command killed by signal
                        N exits ``128 + N``, as in a shell.
                        ``separate_stderr: true`` (default false) captures stdout and
                        stderr on separate pipes: the result has ``stdout`` and
                        ``stderr`` (the head of each, capped at ``output_limit`` like
                        ``output``; ``truncated`` if either was cut) instead of
                        ``output``. Such a command behaves like ``timeout(1)``: on
                        timeout its process group is terminated (TERM, then KILL after
                        a grace period) and the result has ``timed_out: true``,
                        ``exit_code: -1``, the output so far and no ``process_id``.
                        With ``background: true`` it is refused (``invalid_params``).
    ``process_output``  ``{process_id, wait_timeout_ms?, output_limit?}`` → ``{process_id,
                        running, exit_code?, output, truncated}``: waits up to
                        ``wait_timeout_ms`` (default :data:`DEFAULT_EXEC_TIMEOUT_MS`,
                        0 = snapshot) for the exit; ``output`` is the *tail* of what the
                        process printed (the last ``output_limit`` bytes, cut on a UTF-8
                        boundary); the agent keeps the last :data:`PROCESS_BUFFER_BYTES`.
    ``process_list``    ``{}`` → ``{processes: [{process_id, command, running, exit_code?,
                        started_at}]}``: background and timed-out commands, oldest first.
    ``process_signal``  ``{process_id, signal}`` (one of :data:`SIGNALS`, to the whole
                        process group) → ``{}``; unknown id → ``not_found``.
    ``read_file``       ``{path, offset?, limit?, byte_offset?}`` → the spec §13.2 result.
                        ``offset`` and ``limit`` default to 1 and
                        :data:`READ_FILE_DEFAULT_LIMIT`; below 1 they are refused
                        (``offset must be >= 1``); an offset past the end of a file is an
                        error too: ``offset N is beyond the file length of M lines``.
                        Files are decoded as UTF-8 with replacement characters. A page's
                        ``content`` takes at most :data:`READ_FILE_MAX_BYTES` in the
                        result's JSON (escapes and U+FFFD counted, so control characters
                        or binary cannot make it larger); a page the cap cut short adds
                        ``truncated: true``, ``note`` (what was shown, how to go on) and
                        ``next_offset`` (the first line or entry not shown), and when one
                        line is longer than the cap, ``next_byte_offset``: the byte of
                        line ``next_offset`` to go on from. ``byte_offset`` (default 0,
                        files only) starts the first line of the page at that byte of it
                        (``byte_offset N is beyond the length of line M (L bytes)``).
    ``write_file``      ``{path, content}`` → ``{ok: true}``: atomic, parents created,
                        an existing file keeps its mode (a symlink is written through).
                        ``content`` is a string, or ``{base64: <string>}`` for the same
                        text as base64 UTF-8 (the server sends whichever is smaller, so a
                        frame stays far below the agent's frame limit; an agent that
                        predates it refuses the object instead of writing something
                        else). At most :data:`WRITE_FILE_MAX_BYTES`.
    ``edit_files``      ``{edits: [{path, old_text, new_text, replace_all?}]}`` →
                        ``{ok: true, files: [{path, diff, diff_truncated?}]}``; failures
                        are ``failed`` errors whose message ends with
                        :data:`NO_EDITS_APPLIED`. ``old_text``/``new_text`` may be
                        ``{base64: …}`` objects as ``write_file`` content may. At most
                        :data:`EDIT_MAX_EDITS` edits; a file to edit and its result are
                        at most :data:`EDIT_FILE_MAX_BYTES`, all of a call's files at
                        most :data:`EDIT_TOTAL_MAX_BYTES` (the server also keeps the texts of a
                        call within :data:`EDIT_TEXTS_MAX_BYTES`). A diff longer than
                        :data:`EDIT_DIFF_MAX_BYTES` (or past :data:`EDIT_DIFFS_MAX_BYTES`
                        for the whole result) is cut, ends with a note line and has
                        ``diff_truncated: true``.
    ``stat``            ``{path}`` → ``{exists, is_dir, size, mode, mtime,
                        absolute_path}`` (``mode`` = permission bits, ``mtime`` = Unix
                        seconds; zeros when it does not exist).
Errors are ``{message, code}`` with code one of :data:`ERROR_CODES`: ``invalid_params``
(missing or mistyped params), ``not_found`` (unknown process id, missing file),
``failed`` (the operation itself failed), ``unknown_method``, ``internal`` (a bug).

Changes since the first version of this contract (all additive):
    * ``manifest.generation`` and ``lifecycle.generation``; the Script shape.
    * ``manifest.phase`` and ``run_on: claim``.
    * ``hello.python``; ``logs`` levels and timestamp format.
    * ``process_output.output_limit``; ``stat.absolute_path``.
    * ``exec.separate_stderr`` (``stdout``/``stderr`` instead of ``output``).
    * The defaults and limits below, and the ``read_file`` offset error for files.
    * Path checks; ``read_file`` refuses offsets and limits below 1 (they used to mean
      the defaults), caps a page at :data:`READ_FILE_MAX_BYTES` (``truncated``,
      ``note``, ``next_offset``, ``next_byte_offset``) and takes ``byte_offset``;
      ``{base64}`` content; the ``edit_files`` limits and ``diff_truncated``.
"""

from __future__ import annotations

import json
from typing import Any, cast

PROTOCOL_VERSION = 1
CONNECT_PATH = "/api/v1/agent/connect"
ZIPAPP_PATH = "/api/v1/agent/berth-agent.pyz"
HEARTBEAT_SECONDS = 10.0
LOG_FLUSH_SECONDS = 0.25
BACKOFF_INITIAL_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 10.0
AUTH_FAILED_EXIT_CODE = 2

DEFAULT_EXEC_TIMEOUT_MS = 10_000
DEFAULT_OUTPUT_LIMIT = 32 * 1024
PROCESS_BUFFER_BYTES = 1024 * 1024
READ_FILE_DEFAULT_LIMIT = 2000
READ_FILE_MAX_BYTES = 256 * 1024
"""The most ``content`` one read_file returns (line-number prefixes included), in bytes
of the result's JSON: UTF-8, with JSON's escapes."""
WRITE_FILE_MAX_BYTES = 32 * 1024 * 1024
"""The largest content (UTF-8 bytes) write_file takes."""
EDIT_FILE_MAX_BYTES = 32 * 1024 * 1024
"""The largest file edit_files edits, and the largest result an edit may leave."""
EDIT_TOTAL_MAX_BYTES = 64 * 1024 * 1024
"""All the files one edit_files call edits, together, before and after."""
EDIT_MAX_EDITS = 100
"""The most edits one edit_files call makes."""
EDIT_TEXTS_MAX_BYTES = 32 * 1024 * 1024
"""The old_text and new_text of all of one call's edits, together (UTF-8 bytes)."""
EDIT_DIFF_MAX_BYTES = 64 * 1024
"""The longest diff edit_files returns for one file."""
EDIT_DIFFS_MAX_BYTES = 256 * 1024
"""The most diff text one edit_files result holds, all files together."""
PATH_MAX_BYTES = 4096
"""The longest path argument (Linux's PATH_MAX)."""
PATH_NAME_MAX_BYTES = 255
"""The longest component of a path (Linux's NAME_MAX)."""
PATH_MAX_DEPTH = 256
"""The most levels (components) a path argument may have."""
NO_EDITS_APPLIED = "\nNo edits were applied."

SIGNALS = ("TERM", "KILL", "INT")
SCRIPT_RUN_ON = ("start", "stop", "claim")
LOG_LEVELS = ("info", "error")

LIFECYCLE_STATES = (
    "created",
    "starting",
    "start_timeout",
    "start_error",
    "ready",
    "shutting_down",
    "shutdown_timeout",
    "shutdown_error",
    "off",
)

ERROR_CODES = ("invalid_params", "not_found", "failed", "unknown_method", "internal")

METHODS = (
    "ping",
    "exec",
    "process_output",
    "process_list",
    "process_signal",
    "read_file",
    "write_file",
    "edit_files",
    "stat",
)

Message = dict[str, Any]


def encode(message: Message) -> str:
    """One frame's text."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def decode(text: str) -> Message:
    """A frame's message; ``ValueError`` when it is not a JSON object with a type."""
    message: object = json.loads(text)
    if not isinstance(message, dict):
        raise ValueError("a frame must be a JSON object with a string 'type'")
    frame = cast(Message, message)
    if not isinstance(frame.get("type"), str):
        raise ValueError("a frame must be a JSON object with a string 'type'")
    return frame
