"""Following a build to its end: the server's watch stream, reopened when it drops,
until the workspace settles; and, when it did not get where it should, why not (for a
failed start script: which one, and its last lines)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from typing import TYPE_CHECKING

from berth.cli.common import CliError
from berth.cli.workspaces._render import Line, format_log, log_printer

if TYPE_CHECKING:
    from berth.client import AgentLogEntry, Client, Workspace

__all__ = ["MAX_REOPENS", "after_build", "failure", "follow_build", "settled", "wait"]

# A watch stream that ends (or drops) before the workspace settles is reopened; this many
# times in a row at most.
MAX_REOPENS = 5
_STARTING = frozenset({"created", "starting"})
_FAILED_START = frozenset({"start_error", "start_timeout"})
TAIL_LINES = 10
"""How many of a failed start script's last lines the CLI prints."""


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


def follow_build(
    client: Client, ref: str, on_log: Callable[[Line], None] | None
) -> Workspace | None:
    """Follow the latest build (its log, its agents' script output) until the workspace
    settles; None when it is gone."""
    from berth.client import ApiError, ConnectionFailed

    after = after_agent = 0
    for _ in range(MAX_REOPENS):
        try:
            with closing(client.watch_workspace(ref, after, after_agent)) as events:
                for event in events:
                    line = event.log or event.agent_log
                    if event.log is not None:
                        after = max(after, event.log.id)
                    elif event.agent_log is not None:
                        after_agent = max(after_agent, event.agent_log.id)
                    elif event.workspace is not None and settled(event.workspace):
                        break
                    if line is not None and on_log is not None:
                        on_log(line)
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


def wait(client: Client, ref: str, output: str, *, expect: str) -> Workspace:
    """Follow the build to the end; the workspace, or ``error:`` if it did not get there."""
    final = follow_build(client, ref, log_printer(output))
    if final is None:
        raise CliError(f"workspace {ref} was deleted while its build ran")
    problem = failure(final, ref, expected=expect)
    if problem:
        if expect == "running" and any(a.lifecycle_state in _FAILED_START for a in final.agents):
            problem = _with_script_tails(problem, client.workspace_agent_logs(ref), final)
        raise CliError(problem)
    return final


def _with_script_tails(problem: str, lines: list[AgentLogEntry], workspace: Workspace) -> str:
    """``problem`` with, before its hints, the last lines of each failed start script."""
    tails = [
        tail
        for agent in workspace.agents
        if agent.lifecycle_state in _FAILED_START
        for tail in [failed_script_tail(lines, agent.name)]
        if tail
    ]
    if not tails:
        return problem
    head, _, hints = problem.rpartition("\n")
    return "\n".join([head, *tails, hints])


def failed_script_tail(lines: list[AgentLogEntry], agent: str) -> str:
    """The last lines of the script that failed ``agent``'s start: the script of the
    newest error line (the agent ends a failed script with one: "exited with code 3",
    "timed out after 30s; killed"). "" when no script failed."""
    own = [line for line in lines if line.agent == agent and line.script is not None]
    failed = next((line.script for line in reversed(own) if line.level == "error"), None)
    if failed is None:
        return ""
    tail = [line for line in own if line.script == failed][-TAIL_LINES:]
    shown = "\n".join(f"  {format_log(line)}" for line in tail)
    return f"the last lines of script {failed!r} of agent {agent}:\n{shown}"


def after_build(client: Client, ref: str, output: str, no_wait: bool, *, expect: str) -> Workspace:
    if no_wait:
        return client.get_workspace(ref)
    return wait(client, ref, output, expect=expect)


def failure(workspace: Workspace, ref: str, *, expected: str) -> str:
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
