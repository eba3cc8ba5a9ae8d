"""``berth exec WORKSPACE -- COMMAND…``: run a command in a workspace, like ``ssh host cmd``.

The command runs under ``sh -c`` in the workspace's chat agent. Several arguments are
quoted and joined (``berth exec w1 -- python3 -c 'print(1)'`` runs exactly that); a single
argument is the shell command line itself, so ``berth exec w1 -- 'ls | wc -l'`` pipes.

Its stdout and stderr are printed to ours exactly, and ``berth exec`` exits with its exit
status: 124 when it ran out of time (it is killed, as by ``timeout(1)``). Errors of
berth itself (no such workspace, not running, no agent) are ``error: …`` and exit 1.
"""

from __future__ import annotations

import shlex
import sys
from typing import Annotated, TextIO

import typer

from berth.cli.common import (
    JSON,
    CliError,
    OutputOption,
    TokenOption,
    UrlOption,
    check_duration,
    check_found,
    connect,
    parse_pairs,
)
from berth.cli.output import note, print_models_json
from berth.cli.workspaces import WorkspaceArg

__all__ = ["TIMED_OUT_EXIT_CODE", "exec_command", "shell_command"]

TIMED_OUT_EXIT_CODE = 124


def exec_command(
    workspace: WorkspaceArg,
    command: Annotated[
        list[str],
        typer.Argument(
            metavar="-- COMMAND...",
            help="The command and its arguments, after --.",
            show_default=False,
        ),
    ],
    timeout: Annotated[
        str,
        typer.Option(
            "--timeout", metavar="DURATION", help="Kill the command after this long (at most 4h)."
        ),
    ] = "60s",
    workdir: Annotated[
        str | None,
        typer.Option(
            "--workdir",
            "-w",
            metavar="DIR",
            help="Working directory. Default: the agent's directory.",
            show_default=False,
        ),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            "-e",
            metavar="NAME=VALUE",
            help="An environment variable for the command. Repeat for several.",
            show_default=False,
        ),
    ] = None,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Run a command in a workspace and exit with its exit status.

    berth exec WORKSPACE -- COMMAND [ARG...]: several arguments are quoted and joined; a
    single one is a shell command line (berth exec w1 -- 'ls | wc -l'). Options go before
    the --. A command that runs out of time is killed and berth exits 124. With -o json
    it prints the server's result object instead, and exits 0 whenever the command ran.
    """
    if not "".join(command).strip():
        raise CliError("no command: give one after --, e.g. berth exec WORKSPACE -- ls -la")
    variables = parse_pairs(env or [], "--env")
    if not check_duration(timeout, "--timeout"):
        raise CliError("--timeout: the duration must be positive")
    with connect(url, token) as client, check_found(workspace):
        result = client.exec(
            workspace, shell_command(command), timeout=timeout, workdir=workdir, env=variables
        )
    if output == JSON:
        print_models_json(result)
        return
    _write(sys.stdout, result.stdout)
    _write(sys.stderr, result.stderr)
    if result.truncated:
        note("berth: the output was cut: the agent returns at most 32 KiB of each stream")
    if result.timed_out:
        note(f"berth: the command ran out of time ({timeout}) and was killed")
        raise typer.Exit(TIMED_OUT_EXIT_CODE)
    code = result.exit_code
    raise typer.Exit(code if 0 <= code <= 255 else 1)


def shell_command(args: list[str]) -> str:
    """The ``sh -c`` command line for ``args``: one argument as is, several quoted."""
    if len(args) == 1:
        return args[0]
    return shlex.join(args)


def _write(stream: TextIO, text: str) -> None:
    """``text`` exactly: no newline added, no ANSI codes stripped, UTF-8 whatever the locale."""
    if not text:
        return
    stream.flush()
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(text)
    else:
        buffer.write(text.encode("utf-8", errors="replace"))
        buffer.flush()
    stream.flush()
