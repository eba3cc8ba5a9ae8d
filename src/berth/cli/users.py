"""``berth users create|list|password``.

Passwords come from stdin only, never from an argument (which ``ps`` and shell
history show to anyone): ``printf %s "$PW" | berth users create NAME --password-stdin``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from berth.cli.common import (
    JSON,
    CliError,
    OrganizationOption,
    OutputOption,
    TokenOption,
    UrlOption,
    connect,
    new_app,
)
from berth.cli.output import fmt_time, print_fields, print_listing, print_models_json

if TYPE_CHECKING:
    from berth.client import User

__all__ = ["app"]

app = new_app("Users: create, list and set passwords (site owners).")

ROLES = ("owner", "template-admin", "member")


@app.command("create")
def create(
    username: Annotated[str, typer.Argument(help="The new user's username.")],
    email: Annotated[str | None, typer.Option(help="Email address.", show_default=False)] = None,
    name: Annotated[
        str | None, typer.Option(help="Full name, as shown to others.", show_default=False)
    ] = None,
    role: Annotated[
        list[str] | None,
        typer.Option(
            "--role",
            metavar="ROLE",
            help=f"A role: {', '.join(ROLES)}. Repeat for several. Default: member.",
            show_default=False,
        ),
    ] = None,
    organization: OrganizationOption = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read a password for the web UI's login from stdin (one line).",
        ),
    ] = False,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Create a user. Give them a token with berth tokens create --user USERNAME."""
    password = read_password() if password_stdin else None
    with connect(url, token) as client:
        user = client.create_user(
            username,
            email=email,
            name=name,
            roles=role or None,
            organization=organization,
            password=password,
        )
    if output == JSON:
        print_models_json(user)
        return
    print_fields(_fields(user), title=f"Created user {user.username}")


@app.command("password")
def password(
    username: Annotated[str, typer.Argument(help="The user: a username, an id or me.")],
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Set a user's web UI password, read from stdin; it ends their web sessions."""
    new = read_password()
    with connect(url, token) as client:
        client.set_password(username, new)
    typer.echo(f"Set the password of {username}.", err=True)


def read_password() -> str:
    """One line of stdin without its line ending (a prompt, unechoed, at a terminal)."""
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise CliError("the passwords do not match")
        return first
    line = sys.stdin.readline()
    value = line.removesuffix("\n").removesuffix("\r")
    if not value:
        raise CliError('no password on stdin (pipe it in: printf %s "$PW" | berth …)')
    return value


@app.command("list")
def list_(
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """List users."""
    with connect(url, token) as client:
        users = client.list_users()
    print_listing(
        users,
        output,
        ["USERNAME", "NAME", "EMAIL", "ROLES", "STATUS", "CREATED", "ID"],
        _row,
        empty="No users.",
    )


def _row(user: User) -> list[str]:
    return [
        user.username,
        user.name,
        user.email,
        ", ".join(user.roles) or "-",
        user.status,
        fmt_time(user.created_at),
        user.id,
    ]


def _fields(user: User) -> list[tuple[str, str]]:
    return [
        ("ID", user.id),
        ("Name", user.name or "-"),
        ("Email", user.email or "-"),
        ("Roles", ", ".join(user.roles) or "-"),
        ("Status", user.status),
        ("Organizations", ", ".join(user.organization_ids) or "-"),
    ]
