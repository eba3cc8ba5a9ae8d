"""``berth replicas list``: the server replicas sharing one database (site owners).

A replica registers when it starts, heart-beats every few seconds and deregisters when
it stops cleanly; one not heard from for a while is listed as stale (it crashed, or
cannot reach the database) until it is forgotten.
"""

from __future__ import annotations

from berth.cli.common import JSON, OutputOption, TokenOption, UrlOption, connect, new_app
from berth.cli.output import fmt_time, print_models_json, print_table

__all__ = ["app"]

app = new_app("Server replicas: which servers share the database (site owners).")

COLUMNS = ["ID", "HOSTNAME", "RELAY URL", "VERSION", "STATUS", "STARTED", "LAST HEARTBEAT"]


@app.command("list")
def list_(
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """List the server replicas, live and stale."""
    with connect(url, token) as client:
        replicas = client.replicas()
    if output == JSON:
        print_models_json(replicas)
        return
    print_table(
        COLUMNS,
        [
            [
                r.id,
                r.hostname,
                r.relay_url,
                r.version,
                "live" if r.live else "stale",
                fmt_time(r.started_at),
                fmt_time(r.heartbeat_at),
            ]
            for r in replicas
        ],
    )
