"""The ``berth`` command: the root app and where every command group is registered.

Adding a group or command from another module takes two lines here: import the module
below and register it in the registration block (``app.add_typer(module.app,
name="…")`` for a group, ``app.command("…")(module.function)`` for a single command).
Build groups with :func:`berth.cli.common.new_app` so their errors print as
``error: …`` and exit 1.
"""

from __future__ import annotations

from typing import Annotated

import typer

from berth import __version__
from berth.cli import (
    agent,
    chats,
    config,
    execute,
    login,
    mcp,
    prebuilds,
    replicas,
    server,
    templates,
    tokens,
    users,
    workspaces,
)
from berth.cli import provisioner as provisioner_cli
from berth.cli.common import new_app

__all__ = ["app", "main"]

app = new_app(
    "berth: development workspaces for AI agents, from curated templates.\n\n"
    "The server and token come from --url/--token, then BERTH_URL/BERTH_TOKEN, then"
    " berth login.",
    name="berth",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"berth {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    """berth: development workspaces for AI agents, from curated templates."""


# --- registration -------------------------------------------------------------
app.command("server")(server.server)
app.command("login")(login.login)
app.command("logout")(login.logout)
app.add_typer(templates.app, name="templates")
app.add_typer(users.app, name="users")
app.add_typer(tokens.app, name="tokens")
app.add_typer(config.app, name="config")
app.add_typer(workspaces.app, name="workspaces")
app.command("exec")(execute.exec_command)
app.add_typer(provisioner_cli.app, name="provisioner")
app.add_typer(chats.app, name="chats")
app.add_typer(prebuilds.app, name="prebuilds")
app.add_typer(replicas.app, name="replicas")
app.command("mcp")(mcp.mcp)
app.command("agent")(agent.agent)


def main() -> None:
    """The console script ``berth``."""
    app()
