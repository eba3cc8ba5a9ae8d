"""``berth --help`` and the commands that need no server start without the heavy
imports (issue 12: ``--help`` ≤ 300 ms): the client (httpx and its pydantic models),
the server's stack. Checked by what a fresh interpreter has imported, not by a clock."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SERVER_STACK = {"sqlalchemy", "fastapi", "mcp", "docker", "alembic", "asyncio"}
CLIENT = {"httpx", "berth.client"}

_PROBE = """
import json, sys
from berth.cli.app import main
sys.argv = ["berth", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
names = {name for name in sys.modules} | {name.split(".")[0] for name in sys.modules}
print(json.dumps(sorted(names)), file=sys.__stdout__)
"""


def imported_by(args: list[str]) -> set[str]:
    """The modules (and their top-level packages) a fresh ``berth ARGS`` has imported
    when it exits."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("args", [["--help"], ["--version"], []])
def test_the_root_help_imports_neither_server_nor_client_nor_pydantic(args: list[str]) -> None:
    imported = imported_by(args)
    assert "typer" in imported  # the probe ran the CLI
    assert not imported & (SERVER_STACK | CLIENT | {"pydantic"}), sorted(
        imported & (SERVER_STACK | CLIENT | {"pydantic"})
    )


@pytest.mark.parametrize(
    "args",
    [
        ["workspaces", "--help"],
        ["templates", "push", "--help"],
        ["provisioner", "--help"],
        ["workspaces", "create"],  # a usage error: no name
        ["logout"],
    ],
)
def test_commands_that_need_no_server_import_neither_server_nor_client(
    args: list[str],
) -> None:
    """pydantic may load here: typer itself builds a command's parameters with it."""
    imported = imported_by(args)
    assert "typer" in imported
    assert not imported & (SERVER_STACK | CLIENT), sorted(imported & (SERVER_STACK | CLIENT))


def test_a_command_that_talks_to_a_server_imports_the_client() -> None:
    """The probe sees imports: a command that connects loads the client when it runs."""
    assert imported_by(["workspaces", "list", "--url", "http://127.0.0.1:1"]) >= CLIENT
