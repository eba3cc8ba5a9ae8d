"""``berth tokens create|list|delete``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from berth.cli.common import JSON, OutputOption, TokenOption, UrlOption, connect, new_app
from berth.cli.output import fmt_time, note, print_listing, print_models_json

if TYPE_CHECKING:
    from berth.client import Token

__all__ = ["app"]

app = new_app("API tokens: create, list and delete.")

UserOption = Annotated[
    str,
    typer.Option("--user", metavar="USER", help="Whose tokens: me, a username or a user id."),
]


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A name for the token, unique per user.")],
    lifetime: Annotated[
        str | None,
        typer.Option(
            metavar="DURATION",
            help="How long the token is valid, e.g. 720h. Default: it never expires.",
            show_default=False,
        ),
    ] = None,
    user: UserOption = "me",
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Create a token and print its secret: the only time it is shown.

    The secret alone goes to stdout, so TOKEN=$(berth tokens create ci) works.
    """
    with connect(url, token) as client:
        created = client.create_token(name, lifetime=lifetime, user=user)
    if output == JSON:
        print_models_json(created)
        return
    expires = fmt_time(created.expires_at, never="never")
    note(
        f"Created token {created.name} (expires: {expires})."
        " Save its secret now: it won't be shown again."
    )
    typer.echo(created.token)


@app.command("list")
def list_(
    user: UserOption = "me",
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """List tokens (never their secrets)."""
    with connect(url, token) as client:
        tokens = client.list_tokens(user=user)
    print_listing(
        tokens,
        output,
        ["NAME", "EXPIRES", "LAST USED", "CREATED", "SCOPES", "ID"],
        _row,
        empty="No tokens.",
    )


@app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(metavar="TOKEN", help="The token's name or id.")],
    user: UserOption = "me",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete (revoke) a token."""
    with connect(url, token) as client:
        client.delete_token(name, user=user)
    typer.echo(f"Deleted token {name}.")


def _row(token: Token) -> list[str]:
    return [
        token.name,
        fmt_time(token.expires_at, never="never"),
        fmt_time(token.last_used_at, never="never"),
        fmt_time(token.created_at),
        ", ".join(token.scopes) or "-",
        token.id,
    ]
