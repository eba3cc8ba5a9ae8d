"""``berth login URL --token TOKEN`` and ``berth logout``.

Login checks the token against the server (``GET /users/me``) before saving anything,
then saves ``{url, token}`` in the login file (see :mod:`berth.cli.credentials`).
Logout removes the file; it does not revoke the token on the server (it may be the
admin token the server wrote at first start): ``berth tokens delete`` does that.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from berth.cli.common import CliError
from berth.cli.credentials import Saved, config_path, remove_saved, write_saved

__all__ = ["login", "logout"]


def login(
    url: Annotated[
        str,
        typer.Argument(metavar="URL", help="The berth server, e.g. http://127.0.0.1:7080."),
    ],
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            metavar="TOKEN",
            help="An API token; - reads it from stdin. Asked for when omitted at a terminal."
            " The first one is in the server's data dir, in admin-token.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check a token against a server and save both for later commands."""
    from berth.client import ApiError, Client

    secret = _token(token)
    with Client(url, secret) as client:
        try:
            user = client.me()
        except ApiError as exc:
            if exc.status_code == 401:
                raise CliError(f"{client.url} did not accept the token: {exc.message}") from None
            raise
        server = client.url
    path = config_path()
    write_saved(path, Saved(server, secret))
    typer.echo(f"Logged in to {server} as {user.username}. Saved in {path}.")


def logout() -> None:
    """Forget the saved server and token (the token stays valid on the server)."""
    path = config_path()
    if remove_saved(path):
        typer.echo(f"Logged out: removed {path}.")
    else:
        typer.echo("Not logged in: nothing to remove.")


def _token(token: str | None) -> str:
    if token == "-":  # noqa: S105 - "-" means stdin, not a password
        token = sys.stdin.readline().strip()
    elif token is None and sys.stdin.isatty():
        token = typer.prompt("Token", hide_input=True, err=True).strip()
    if not token:
        raise CliError('a token is required: berth login URL --token TOKEN (or "-" for stdin)')
    return token
