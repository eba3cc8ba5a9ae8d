"""``berth users create|list|password|suspend|activate|roles``.

Passwords come from stdin only, never from an argument (which ``ps`` and shell
history show to anyone): ``printf %s "$PW" | berth users create NAME --password-stdin``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from berth.cli.common import (
    JSON,
    CliError,
    OrganizationOption,
    OutputOption,
    TokenOption,
    UrlOption,
    check_found,
    connect,
    new_app,
)
from berth.cli.output import fmt_time, print_fields, print_listing, print_models_json

if TYPE_CHECKING:
    from berth.client import User

__all__ = ["app"]

app = new_app("Users: create, list, set passwords, suspend and set roles (site owners).")

ROLES = ("owner", "template-admin", "member")

UserArgument = Annotated[str, typer.Argument(help="The user: a username, an id or me.")]


def _role_option(without: str) -> Any:
    """``--role``, repeated; ``without`` says what giving none means."""
    return typer.Option(
        "--role",
        metavar="ROLE",
        help=f"A role: {', '.join(ROLES)}. Repeat for several. {without}",
        show_default=False,
    )


@app.command("create")
def create(
    username: Annotated[str, typer.Argument(help="The new user's username.")],
    email: Annotated[str | None, typer.Option(help="Email address.", show_default=False)] = None,
    name: Annotated[
        str | None, typer.Option(help="Full name, as shown to others.", show_default=False)
    ] = None,
    role: Annotated[list[str] | None, _role_option("Default: member.")] = None,
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
    _show(user, output, f"Created user {user.username}")


@app.command("password")
def password(
    username: UserArgument,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Set a user's web UI password, read from stdin; it ends their web sessions."""
    new = read_password()
    with connect(url, token) as client:
        client.set_password(username, new)
    typer.echo(f"Set the password of {username}.", err=True)


@app.command("suspend")
def suspend(
    username: UserArgument,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Suspend a user: their API tokens stop working and their web sessions end; their
    workspaces are left as they are. Undo with berth users activate."""
    with connect(url, token) as client, check_found(username, "user"):
        user = client.suspend_user(username)
    _show(user, output, f"Suspended user {user.username}")


@app.command("activate")
def activate(
    username: UserArgument,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Make a suspended user active again: their API tokens work again (they log in to
    the web UI anew)."""
    with connect(url, token) as client, check_found(username, "user"):
        user = client.activate_user(username)
    _show(user, output, f"Activated user {user.username}")


@app.command("roles")
def roles(
    username: UserArgument,
    role: Annotated[
        list[str] | None, _role_option("Without --role the user keeps only member.")
    ] = None,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Replace a user's site roles with the --role options given (member is implied)."""
    with connect(url, token) as client, check_found(username, "user"):
        user = client.set_user_roles(username, role or [])
    _show(user, output, f"Set the roles of {user.username}")


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


def _show(user: User, output: str, title: str) -> None:
    """The user the server answered with: as JSON, or as fields under ``title``."""
    if output == JSON:
        print_models_json(user)
        return
    print_fields(_fields(user), title=title)


def _fields(user: User) -> list[tuple[str, str]]:
    return [
        ("ID", user.id),
        ("Name", user.name or "-"),
        ("Email", user.email or "-"),
        ("Roles", ", ".join(user.roles) or "-"),
        ("Status", user.status),
        ("Organizations", ", ".join(user.organization_ids) or "-"),
    ]
