"""``berth workspaces create|list|show|start|stop|delete|logs|cancel|ttl``.

create, start, stop and delete follow the build they start (the server's ``watch``
stream): its log lines go to stderr as they come (table mode only), and the command
returns once the build is done and the agents have started, with the workspace on
stdout. A failed or canceled build, or a start script that failed, is ``error: …`` and
exit status 1. ``--no-wait`` returns as soon as the build is queued.

The commands are in ``_commands``, following a build in ``_follow``, and how workspaces
and log lines look in ``_render``.
"""

from berth.cli.common import check_found
from berth.cli.workspaces._commands import WorkspaceArg, app
from berth.cli.workspaces._render import format_log

__all__ = [
    "WorkspaceArg",
    "app",
    "check_found",
    "format_log",
]
