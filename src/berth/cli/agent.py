"""``berth agent``: run the workspace agent by hand (for external agents)."""

from __future__ import annotations

from typing import Annotated

import typer


def agent(
    url: Annotated[
        str | None,
        typer.Option(help="The berth server URL. [env: BERTH_AGENT_URL]", show_default=False),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            help="The agent's token (shown for external agents). [env: BERTH_AGENT_TOKEN]",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
) -> None:
    """Run a workspace agent on this host: it dials the server and serves the workspace."""
    from berth.agent.main import main as agent_main

    argv: list[str] = []
    if url:
        argv += ["--url", url]
    if token:
        argv += ["--token", token]
    if verbose:
        argv.append("--verbose")
    raise typer.Exit(agent_main(argv))
