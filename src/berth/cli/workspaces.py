"""``berth workspaces create|list|show|start|stop|delete|logs|cancel|ttl``.

create, start, stop and delete follow the build they start (the server's ``watch``
stream): its log lines go to stderr as they come (table mode only), and the command
returns once the build is done and the agents have started, with the workspace on
stdout. A failed or canceled build, or a start script that failed, is ``error: …`` and
exit status 1. ``--no-wait`` returns as soon as the build is queued.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Generator
from contextlib import closing, contextmanager
from typing import Annotated

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
from berth.cli.output import (
    fmt_time,
    note,
    print_fields,
    print_json,
    print_models_json,
    print_table,
)
from berth.client import (
    ApiError,
    Client,
    ConnectionFailed,
    InvalidArgument,
    LogEntry,
    Workspace,
    parse_duration,
)

__all__ = [
    "WorkspaceArg",
    "app",
    "check_found",
    "format_log",
]

app = new_app("Workspaces: create from a template, list, start, stop, delete, follow builds.")

WorkspaceArg = Annotated[
    str,
    typer.Argument(metavar="WORKSPACE", help="Workspace name (yours) or id.", show_default=False),
]
NoWaitOption = Annotated[
    bool,
    typer.Option("--no-wait", help="Return once the build is queued; do not follow it."),
]

# A watch stream that ends (or drops) before the workspace settles is reopened; this many
# times in a row at most.
MAX_REOPENS = 5
_STARTING = frozenset({"created", "starting"})


# --- commands -------------------------------------------------------------------------


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
        check_duration(ttl, "--ttl")
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
            workspace = _wait(client, workspace.name, output, expect="running")
    _print_result(workspace, output)


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
    if output == JSON:
        print_models_json(workspaces)
        return
    if not workspaces:
        note("No workspaces: create one with berth workspaces create NAME --template TEMPLATE.")
        return
    print_table(
        ["NAME", "OWNER", "TEMPLATE", "STATUS", "AGENTS", "TTL", "LAST BUILD", "ID"],
        [_row(w) for w in workspaces],
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
    _print_result(found, output)


@app.command("start")
def start(
    workspace: WorkspaceArg,
    no_wait: NoWaitOption = False,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Start a stopped workspace and wait until it runs with its agents ready."""
    with connect(url, token) as client:
        with check_found(workspace):
            client.start_workspace(workspace)
        found = _after_build(client, workspace, output, no_wait, expect="running")
    _print_result(found, output)


@app.command("stop")
def stop(
    workspace: WorkspaceArg,
    no_wait: NoWaitOption = False,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Stop a workspace (its home is kept) and wait until it is stopped."""
    with connect(url, token) as client:
        with check_found(workspace):
            client.stop_workspace(workspace)
        found = _after_build(client, workspace, output, no_wait, expect="stopped")
    _print_result(found, output)


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
            gone = _follow(client, found.id, _log_printer(output))
            if gone is not None:
                raise CliError(_failure(gone, workspace, expected="deleted"))
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
    """Print the log of the workspace's latest build.

    With -o json: a JSON list, or with --follow one JSON object per line.
    """
    with connect(url, token) as client, check_found(workspace):
        if follow:
            client.get_workspace(workspace)  # a clear 404 before streaming
            _follow(client, workspace, _log_writer(output))
            return
        entries = client.workspace_logs(workspace)
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
    check_duration(duration, "DURATION")
    with connect(url, token) as client, check_found(workspace):
        updated = client.set_workspace_ttl(workspace, duration)
    if output == JSON:
        print_models_json(updated)
    elif updated.ttl:
        typer.echo(f"Workspace {updated.name} stops after {updated.ttl} unused.")
    else:
        typer.echo(f"Workspace {updated.name} never stops by itself.")


# --- input ----------------------------------------------------------------------------


def parse_pairs(values: list[str], option: str) -> dict[str, str]:
    """``NAME=VALUE`` options as a mapping; a value may itself contain ``=``."""
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise CliError(f"{option} expects NAME=VALUE, got {value!r}")
        if key in pairs:
            raise CliError(f"{option} {key} is given twice")
        pairs[key] = rest
    return pairs


def check_duration(value: str, what: str) -> dt.timedelta:
    """A Go duration from the command line, >= 0."""
    try:
        duration = parse_duration(value)
    except InvalidArgument as exc:
        raise CliError(f"{what}: {exc}") from None
    if duration < dt.timedelta(0):
        raise CliError(f"{what}: the duration must not be negative, got {value!r}")
    return duration


@contextmanager
def check_found(ref: str, kind: str = "workspace") -> Generator[None]:
    """Turn the server's ``workspace not found`` (404) into one that names ``ref``."""
    try:
        yield
    except ApiError as exc:
        if exc.status_code != 404 or not exc.message.startswith(kind):
            raise
        listing = "berth workspaces list" if kind == "workspace" else "berth templates list"
        raise CliError(f"{kind} {ref!r} not found ({listing} shows them)") from None


def _preset_id(client: Client, template: str, preset: str, organization: str | None) -> str:
    """A preset's id from its id or its name in the template."""
    detail = client.get_template(template, organization=organization)
    for candidate in detail.presets:
        if preset in (candidate.id, candidate.name):
            return candidate.id or preset
    names = ", ".join(p.name for p in detail.presets) or "none"
    raise CliError(f"template {detail.name} has no preset {preset!r} (presets: {names})")


# --- following a build ----------------------------------------------------------------


def format_log(entry: LogEntry) -> str:
    """A build log line as a person reads it: ``[stage] LEVEL: output``."""
    level = "" if entry.level in ("", "info", entry.stage) else f"{entry.level.upper()}: "
    stage = f"[{entry.stage}] " if entry.stage else ""
    return f"{stage}{level}{entry.output}"


def _log_printer(output: str) -> Callable[[LogEntry], None] | None:
    """Progress for a person: log lines on stderr (not with -o json)."""
    if output == JSON:
        return None
    return lambda entry: note(format_log(entry))


def _log_writer(output: str) -> Callable[[LogEntry], None]:
    """``logs --follow``: the lines are the output, on stdout."""
    if output == JSON:
        return lambda entry: print_json_line(entry.raw)
    return lambda entry: typer.echo(format_log(entry))


def print_json_line(data: object) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, separators=(",", ":")))


def _agent_settled(workspace: Workspace) -> bool:
    return all(
        a.external or a.lifecycle_state not in _STARTING or a.status == "timeout"
        for a in workspace.agents
    )


def settled(workspace: Workspace) -> bool:
    """Nothing more will happen without someone acting: the build is done and, when it
    runs, every agent has started, failed to, or never connected in time."""
    if workspace.building:
        return False
    return workspace.status != "running" or _agent_settled(workspace)


def _follow(
    client: Client, ref: str, on_log: Callable[[LogEntry], None] | None
) -> Workspace | None:
    """Follow the latest build until the workspace settles; None when it is gone."""
    after = 0
    for _ in range(MAX_REOPENS):
        try:
            with closing(client.watch_workspace(ref, after=after)) as events:
                for event in events:
                    if event.log is not None:
                        after = max(after, event.log.id)
                        if on_log is not None:
                            on_log(event.log)
                    elif event.workspace is not None and settled(event.workspace):
                        break
        except ConnectionFailed:
            pass  # a dropped stream: look, and follow again if need be
        except ApiError as exc:
            if exc.status_code != 404:
                raise
        try:
            current = client.get_workspace(ref)
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        if settled(current):
            return current
    raise CliError(
        f"lost track of the build of workspace {ref}: the server ended its progress stream"
        f" {MAX_REOPENS} times; see berth workspaces show {ref}"
    )


def _wait(client: Client, ref: str, output: str, *, expect: str) -> Workspace:
    """Follow the build to the end; the workspace, or ``error:`` if it did not get there."""
    final = _follow(client, ref, _log_printer(output))
    if final is None:
        raise CliError(f"workspace {ref} was deleted while its build ran")
    problem = _failure(final, ref, expected=expect)
    if problem:
        raise CliError(problem)
    return final


def _after_build(client: Client, ref: str, output: str, no_wait: bool, *, expect: str) -> Workspace:
    if no_wait:
        return client.get_workspace(ref)
    return _wait(client, ref, output, expect=expect)


def _failure(workspace: Workspace, ref: str, *, expected: str) -> str:
    """Why ``workspace`` is not ``expected`` (with its agents ready); "" when it is."""
    name = workspace.name
    build = workspace.latest_build
    job = workspace.job
    logs_hint = f"the build log: berth workspaces logs {ref}"
    if workspace.status == "failed" and build is not None and job is not None:
        code = f" [{job.error_code}]" if job.error_code else ""
        return (
            f"build {build.build_number} ({build.transition}) of workspace {name} failed:"
            f" {job.error or 'no reason given'}{code}\n{logs_hint}"
        )
    if workspace.status == "canceled" and build is not None:
        return f"build {build.build_number} ({build.transition}) of workspace {name} was canceled"
    if workspace.status != expected:
        return f"workspace {name} is {workspace.status}, not {expected}\n{logs_hint}"
    if expected != "running":
        return ""
    problems = [
        p
        for p in (
            _agent_problem(a.name, a.status, a.lifecycle_state)
            for a in workspace.agents
            if not a.external
        )
        if p
    ]
    if not problems:
        return ""
    return (
        f"workspace {name} is running, but " + "; ".join(problems) + "\n"
        f"{logs_hint}; look inside with: berth exec {ref} -- COMMAND"
    )


def _agent_problem(name: str, status: str, lifecycle: str) -> str:
    if lifecycle == "ready":
        return ""
    if lifecycle == "start_error":
        return f"a start script of agent {name} failed (start_error)"
    if lifecycle == "start_timeout":
        return f"a start script of agent {name} timed out (start_timeout)"
    if lifecycle in _STARTING and status == "timeout":
        return f"agent {name} did not connect within its connection timeout (status timeout)"
    return f"agent {name} is {lifecycle or 'unknown'} ({status or 'unknown'})"


# --- output ---------------------------------------------------------------------------


def _print_result(workspace: Workspace, output: str) -> None:
    if output == JSON:
        print_json(workspace.raw)
        return
    print_workspace(workspace)


def _agents_summary(workspace: Workspace) -> str:
    return ", ".join(f"{a.name}: {a.lifecycle_state}" for a in workspace.agents) or "-"


def _last_build(workspace: Workspace) -> str:
    build = workspace.latest_build
    if build is None:
        return "-"
    job = build.job
    return f"#{build.build_number} {build.transition}" + (f" ({job.status})" if job else "")


def _row(workspace: Workspace) -> list[str]:
    return [
        workspace.name,
        workspace.owner_name or "-",
        workspace.template_name or "-",
        workspace.status,
        _agents_summary(workspace),
        workspace.ttl or "never",
        _last_build(workspace),
        workspace.id,
    ]


def print_workspace(workspace: Workspace) -> None:
    """A workspace's fields, then its agents."""
    job = workspace.job
    fields = [
        ("Status", workspace.status),
        ("Owner", workspace.owner_name or workspace.owner_id or "-"),
        ("Template", workspace.template_name or workspace.template_id or "-"),
        ("Latest build", _last_build(workspace)),
    ]
    if job is not None and job.error:
        fields.append(("Error", job.error + (f" [{job.error_code}]" if job.error_code else "")))
    fields += [
        ("TTL", workspace.ttl or "never stops by itself"),
        ("Deadline", fmt_time(workspace.deadline)),
        ("Last used", fmt_time(workspace.last_used_at)),
        ("Created", fmt_time(workspace.created_at)),
        ("ID", workspace.id),
    ]
    print_fields(fields, title=workspace.name)
    if workspace.agents:
        typer.echo()
        print_table(
            ["AGENT", "STATUS", "LIFECYCLE", "CHAT", "DIRECTORY", "READY"],
            [
                [
                    a.name + (" (external)" if a.external else ""),
                    a.status,
                    a.lifecycle_state,
                    "yes" if a.chat else "no",
                    a.directory or "~",
                    fmt_time(a.ready_at),
                ]
                for a in workspace.agents
            ],
            title="Agents",
        )
