"""``berth users create|list``."""

from __future__ import annotations

from typing import Annotated

import typer

from berth.cli.common import (
    JSON,
    OrganizationOption,
    OutputOption,
    TokenOption,
    UrlOption,
    connect,
    new_app,
)
from berth.cli.output import fmt_time, print_fields, print_listing, print_models_json
from berth.client import User

__all__ = ["app"]

app = new_app("Users: create and list (site owners).")

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
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Create a user. Give them a token with berth tokens create --user USERNAME."""
    with connect(url, token) as client:
        user = client.create_user(
            username, email=email, name=name, roles=role or None, organization=organization
        )
    if output == JSON:
        print_models_json(user)
        return
    print_fields(_fields(user), title=f"Created user {user.username}")


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
