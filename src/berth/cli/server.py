"""``berth server``: run the HTTP API, MCP endpoints and background loops."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def server(
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Where berth keeps its database and secrets. [env: BERTH_DATA_DIR]"),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(help="HOST:PORT to listen on (default 127.0.0.1:7080). [env: BERTH_ADDRESS]"),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="A postgresql:// URL; SQLite in the data dir when unset. [env: BERTH_DATABASE_URL]"
        ),
    ] = None,
    access_url: Annotated[
        str | None,
        typer.Option(
            help="The URL clients and agents use to reach this server. [env: BERTH_ACCESS_URL]"
        ),
    ] = None,
    relay_url: Annotated[
        str | None,
        typer.Option(
            help="The URL the other replicas reach this one's relay at (default: "
            "http://ADDRESS). [env: BERTH_RELAY_URL]"
        ),
    ] = None,
) -> None:
    """Run the berth server (the embedded default: SQLite in the data dir)."""
    # Imported here so that client commands do not pay for loading the server.
    from berth.api.server import StartupError, serve, split_address
    from berth.settings import Settings

    overrides = {
        key: value
        for key, value in {
            "data_dir": data_dir,
            "address": address,
            "database_url": database_url,
            "access_url": access_url,
            "relay_url": relay_url,
        }.items()
        if value is not None
    }
    settings = Settings(**overrides)  # pyright: ignore[reportArgumentType]
    try:
        split_address(settings.address)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--address") from None
    if settings.relay_url is not None and not _is_http_url(settings.relay_url):
        raise typer.BadParameter(
            f"{settings.relay_url!r} is not an http:// or https:// URL with a host",
            param_hint="--relay-url",
        )
    if settings.data_dir.exists() and not settings.data_dir.is_dir():
        raise typer.BadParameter(f"{settings.data_dir} is not a directory", param_hint="--data-dir")
    try:
        serve(settings, echo=typer.echo)
    except StartupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:  # pragma: no cover - uvicorn handles Ctrl-C itself
        pass


def _is_http_url(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
