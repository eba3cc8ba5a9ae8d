"""The commands of ``berth workspaces``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from berth.cli.common import (
    JSON,
    TTL_NEGATIVE,
    CliError,
    OrganizationOption,
    OutputOption,
    TokenOption,
    UrlOption,
    check_duration,
    check_found,
    connect,
    new_app,
    parse_pairs,
)
from berth.cli.output import print_listing, print_models_json
from berth.cli.workspaces._follow import after_build, failure, follow_build, wait
from berth.cli.workspaces._render import (
    LIST_COLUMNS,
    Line,
    format_log,
    log_printer,
    log_writer,
    print_result,
    row,
)

if TYPE_CHECKING:
    from berth.client import Client

__all__ = ["WorkspaceArg", "app"]

app = new_app("Workspaces: create from a template, list, start, stop, delete, follow builds.")

WorkspaceArg = Annotated[
    str,
    typer.Argument(metavar="WORKSPACE", help="Workspace name (yours) or id.", show_default=False),
]
NoWaitOption = Annotated[
    bool,
    typer.Option("--no-wait", help="Return once the build is queued; do not follow it."),
]


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The new workspace's name.")],
    template: Annotated[
        str,
        typer.Option(
            "--template", "-t", metavar="TEMPLATE", help="Template name or id.", show_default=False
        ),
    ],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            metavar="NAME=VALUE",
            help="A template parameter. Repeat for several.",
            show_default=False,
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            metavar="PRESET",
            help="A preset of the template, by id or name.",
            show_default=False,
        ),
    ] = None,
    ttl: Annotated[
        str | None,
        typer.Option(
            "--ttl",
            metavar="DURATION",
            help="Stop after this long unused, e.g. 8h or 30m; 0: never. Default: the template's.",
            show_default=False,
        ),
    ] = None,
    organization: OrganizationOption = None,
    no_wait: NoWaitOption = False,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Create a workspace from a template and wait until it runs with its agents ready."""
    parameters = parse_pairs(param or [], "--param")
    if ttl is not None:
        check_duration(ttl, "--ttl", negative=TTL_NEGATIVE)
    with connect(url, token) as client:
        with check_found(template, "template"):
            preset_id = _preset_id(client, template, preset, organization) if preset else None
            workspace = client.create_workspace(
                name,
                template,
                parameters=parameters,
                preset_id=preset_id,
                ttl=ttl,
                organization=organization,
            )
        if not no_wait:
            workspace = wait(client, workspace.name, output, expect="running")
    print_result(workspace, output)


@app.command("list")
def list_(
    all_users: Annotated[
        bool, typer.Option("--all", "-a", help="Every user's workspaces (that you may see).")
    ] = False,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """List your workspaces."""
    with connect(url, token) as client:
        workspaces = client.list_workspaces(all_users=all_users)
    now = dt.datetime.now(dt.UTC)
    print_listing(
        workspaces,
        output,
        LIST_COLUMNS,
        lambda workspace: row(workspace, now),
        empty="No workspaces: create one with berth workspaces create NAME --template TEMPLATE.",
    )


@app.command("show")
def show(
    workspace: WorkspaceArg,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Show a workspace: its status, latest build and agents."""
    with connect(url, token) as client, check_found(workspace):
        found = client.get_workspace(workspace)
    print_result(found, output)


@app.command("start")
def start(
    workspace: WorkspaceArg,
    no_wait: NoWaitOption = False,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Start a stopped workspace and wait until it runs with its agents ready."""
    from berth.client import Client

    _transition(Client.start_workspace, workspace, "running", no_wait, output, url, token)


@app.command("stop")
def stop(
    workspace: WorkspaceArg,
    no_wait: NoWaitOption = False,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Stop a workspace (its home is kept) and wait until it is stopped."""
    from berth.client import Client

    _transition(Client.stop_workspace, workspace, "stopped", no_wait, output, url, token)


@app.command("delete")
def delete(
    workspace: WorkspaceArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    no_wait: NoWaitOption = False,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a workspace and its home, and wait until it is gone.

    With -o json it prints the delete build as the server answered the request.
    """
    if not yes and not typer.confirm(f"Delete workspace {workspace} and its home?", err=True):
        raise CliError("not deleted")
    with connect(url, token) as client:
        with check_found(workspace):
            found = client.get_workspace(workspace)
            build = client.delete_workspace(found.id)
        if not no_wait:
            gone = follow_build(client, found.id, log_printer(output))
            if gone is not None:
                raise CliError(failure(gone, workspace, expected="deleted"))
    if output == JSON:
        print_models_json(build)
    elif no_wait:
        typer.echo(f"Deleting workspace {found.name} (build {build.build_number}).")
    else:
        typer.echo(f"Deleted workspace {found.name}.")


@app.command("logs")
def logs(
    workspace: WorkspaceArg,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="Keep printing lines until the build and agents are done."
        ),
    ] = False,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Print the log of the workspace's latest build, then its agents' script output.

    Build lines read ``[stage] output``, script lines ``[agent/script] output``. With
    -o json: a JSON list (build lines, then script lines, which have an ``agent`` key),
    or with --follow one JSON object per line.
    """
    with connect(url, token) as client, check_found(workspace):
        if follow:
            client.get_workspace(workspace)  # a clear 404 before streaming
            follow_build(client, workspace, log_writer(output))
            return
        entries: list[Line] = [*client.workspace_logs(workspace)]
        entries += client.workspace_agent_logs(workspace)
    if output == JSON:
        print_models_json(entries)
        return
    for entry in entries:
        typer.echo(format_log(entry))


@app.command("cancel")
def cancel(
    workspace: WorkspaceArg,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Cancel the build in progress."""
    with connect(url, token) as client, check_found(workspace):
        job = client.cancel_build(workspace)
    if output == JSON:
        print_models_json(job)
        return
    typer.echo(f"Canceled the build of workspace {workspace} (its job is {job.status}).")


@app.command("agent-token")
def agent_token(
    workspace: WorkspaceArg,
    agent: Annotated[str, typer.Argument(help="The external agent's name.", show_default=False)],
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Issue a new token for an external agent and print how to run it."""
    with connect(url, token) as client, check_found(workspace):
        issued = client.external_agent_token(workspace, agent)
    if output == JSON:
        print_models_json(issued)
        return
    typer.echo(issued.command)
    typer.echo("The token is shown once; the agent's previous token no longer works.", err=True)


@app.command("ttl")
def ttl(
    workspace: WorkspaceArg,
    duration: Annotated[
        str,
        typer.Argument(
            metavar="DURATION",
            help="Stop after this long unused, e.g. 8h or 30m; 0: never.",
            show_default=False,
        ),
    ],
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Set how long a workspace may stay unused before it is stopped."""
    check_duration(duration, "DURATION", negative=TTL_NEGATIVE)
    with connect(url, token) as client, check_found(workspace):
        updated = client.set_workspace_ttl(workspace, duration)
    if output == JSON:
        print_models_json(updated)
    elif updated.ttl:
        typer.echo(f"Workspace {updated.name} stops after {updated.ttl} unused.")
    else:
        typer.echo(f"Workspace {updated.name} never stops by itself.")


def _transition(
    begin: Callable[[Client, str], object],
    workspace: str,
    expect: str,
    no_wait: bool,
    output: str,
    url: str | None,
    token: str | None,
) -> None:
    """``start`` and ``stop``: begin the build, follow it unless ``no_wait``, print the
    workspace."""
    with connect(url, token) as client:
        with check_found(workspace):
            begin(client, workspace)
        found = after_build(client, workspace, output, no_wait, expect=expect)
    print_result(found, output)


def _preset_id(client: Client, template: str, preset: str, organization: str | None) -> str:
    """A preset's id from its id or its name in the template."""
    detail = client.get_template(template, organization=organization)
    for candidate in detail.presets:
        if preset in (candidate.id, candidate.name):
            return candidate.id or preset
    names = ", ".join(p.name for p in detail.presets) or "none"
    raise CliError(f"template {detail.name} has no preset {preset!r} (presets: {names})")
