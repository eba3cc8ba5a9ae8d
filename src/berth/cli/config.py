"""``berth config get|set``: site settings.

Known keys: ``chat-workspace-ttl`` (a Go duration; stored canonical, ``2h`` reads back
as ``2h0m0s``) and ``chat-template-allowlist`` (comma-separated template ids; empty
allows every template). The server validates; unknown keys are its call, so a newer
server's settings work from an older CLI.
"""

from __future__ import annotations

from typing import Annotated

import typer

from berth.cli.common import JSON, OutputOption, TokenOption, UrlOption, connect, new_app
from berth.cli.output import print_models_json

__all__ = ["KEYS", "app"]

KEYS = ("chat-workspace-ttl", "chat-template-allowlist")

app = new_app(f"Site settings: {', '.join(KEYS)}.")

KeyArg = Annotated[str, typer.Argument(metavar="KEY", help=f"One of: {', '.join(KEYS)}.")]


@app.command("get")
def get(
    key: KeyArg,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Print a setting's value."""
    with connect(url, token) as client:
        value = client.get_config(key)
    if output == JSON:
        print_models_json(value)
        return
    typer.echo(value.value)


@app.command("set")
def set_(
    key: KeyArg,
    value: Annotated[str, typer.Argument(metavar="VALUE", help="The new value.")],
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Change a setting, and print the value as stored."""
    with connect(url, token) as client:
        stored = client.set_config(key, value)
    if output == JSON:
        print_models_json(stored)
        return
    typer.echo(f"{stored.key} = {stored.value}")
