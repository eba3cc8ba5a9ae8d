"""How workspaces and build logs look: table rows, the ``show`` view, log lines."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

import typer

from berth.cli.common import JSON
from berth.cli.output import (
    fmt_bytes,
    fmt_remaining,
    fmt_time,
    note,
    print_fields,
    print_json,
    print_table,
)

if TYPE_CHECKING:
    from berth.client import AgentLogEntry, LogEntry, Workspace

__all__ = [
    "LIST_COLUMNS",
    "Line",
    "format_log",
    "log_printer",
    "log_writer",
    "print_json_line",
    "print_result",
    "print_workspace",
    "row",
    "stops",
]

LIST_COLUMNS = ["NAME", "OWNER", "TEMPLATE", "STATUS", "AGENTS", "TTL", "STOPS", "LAST BUILD", "ID"]


# --- build logs -----------------------------------------------------------------------


Line: TypeAlias = "LogEntry | AgentLogEntry"
"""A line of ``workspaces logs``: the build's, or an agent script's."""


def format_log(entry: Line) -> str:
    """A log line as a person reads it: ``[stage] LEVEL: output`` for the build's,
    ``[agent/script] LEVEL: output`` for an agent's."""
    from berth.client import AgentLogEntry

    if isinstance(entry, AgentLogEntry):
        source = f"{entry.agent}/{entry.script}" if entry.script else entry.agent
        level = "" if entry.level in ("", "info") else f"{entry.level.upper()}: "
        return f"[{source}] {level}{entry.output}"
    level = "" if entry.level in ("", "info", entry.stage) else f"{entry.level.upper()}: "
    stage = f"[{entry.stage}] " if entry.stage else ""
    return f"{stage}{level}{entry.output}"


def log_printer(output: str) -> Callable[[Line], None] | None:
    """Progress for a person: log lines on stderr (not with -o json)."""
    if output == JSON:
        return None
    return lambda entry: note(format_log(entry))


def log_writer(output: str) -> Callable[[Line], None]:
    """``logs --follow``: the lines are the output, on stdout."""
    if output == JSON:
        return lambda entry: print_json_line(entry.raw)
    return lambda entry: typer.echo(format_log(entry))


def print_json_line(data: object) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, separators=(",", ":")))


# --- workspaces -----------------------------------------------------------------------


def print_result(workspace: Workspace, output: str) -> None:
    if output == JSON:
        print_json(workspace.raw)
        return
    print_workspace(workspace, dt.datetime.now(dt.UTC))


def _agents_summary(workspace: Workspace) -> str:
    return ", ".join(f"{a.name}: {a.lifecycle_state}" for a in workspace.agents) or "-"


def _last_build(workspace: Workspace) -> str:
    build = workspace.latest_build
    if build is None:
        return "-"
    job = build.job
    return f"#{build.build_number} {build.transition}" + (f" ({job.status})" if job else "")


def stops(workspace: Workspace, now: dt.datetime) -> str:
    """When autostop stops it: ``in 3h 59m``, ``due now``, or ``never`` (or ``-``: not
    running, or running with no deadline)."""
    if workspace.status != "running":
        return "-"
    if workspace.deadline is None:
        return "never"
    if workspace.deadline <= now:
        return "due now"
    return f"in {fmt_remaining(workspace.deadline, now)}"


def row(workspace: Workspace, now: dt.datetime) -> list[str]:
    """A workspace in ``workspaces list``: the values of :data:`LIST_COLUMNS`."""
    return [
        workspace.name,
        workspace.owner_name or "-",
        workspace.template_name or "-",
        workspace.status,
        _agents_summary(workspace),
        workspace.ttl or "never",
        stops(workspace, now),
        _last_build(workspace),
        workspace.id,
    ]


def home_disk(workspace: Workspace) -> str:
    """``12.3 MiB of 1.0 GiB (measured 2026-12-02 19:40)``, or ``-`` if not measured."""
    disk = workspace.home_disk
    if disk is None:
        return "-"
    text = fmt_bytes(disk.used_bytes)
    if disk.limit_bytes:
        text += f" of {fmt_bytes(disk.limit_bytes)}"
    return text + f" (measured {fmt_time(disk.measured_at)})"


def print_workspace(workspace: Workspace, now: dt.datetime) -> None:
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
    if workspace.waiting_for_host:
        fields.append(("Waiting for", f"a provisioner that serves {workspace.waiting_for_host}"))
    fields += [
        ("Host", workspace.host or "-"),
        ("TTL", workspace.ttl or "never stops by itself"),
        ("Deadline", fmt_time(workspace.deadline)),
        ("Stops", stops(workspace, now)),
        ("Home disk", home_disk(workspace)),
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
