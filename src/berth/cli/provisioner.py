"""``berth provisioner``: standalone provisioner workers, and ``berth provisioner keys``.

``berth provisioner --url URL --key KEY`` runs the same build workers as the server,
on this host, with its local/docker/fake backends, against the server's API
(:mod:`berth.provisioner.remote`) until Ctrl-C. The key comes from
``berth provisioner keys create`` (site owner), which talks to the server with a user
token like every other command.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast
from urllib.parse import quote

import typer

from berth.cli.common import (
    JSON,
    BerthGroup,
    CliError,
    OrganizationOption,
    OutputOption,
    TokenOption,
    UrlOption,
)
from berth.cli.credentials import config_path, read_saved, resolve
from berth.cli.output import fmt_time, note, print_json, print_table

if TYPE_CHECKING:
    import httpx

__all__ = ["app", "keys_app"]

app = typer.Typer(
    cls=BerthGroup,
    help="Run provisioner workers on this host against a berth server's API, until Ctrl-C:"
    " berth provisioner --url URL --key KEY. Keys: berth provisioner keys.",
    invoke_without_command=True,
    pretty_exceptions_show_locals=False,
)
keys_app = typer.Typer(
    cls=BerthGroup,
    help="Provisioner keys (site owner): create, list and delete.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(keys_app, name="keys")


# --- berth provisioner ------------------------------------------------------------------


@app.callback()
def provisioner(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="The berth server. Default: $BERTH_URL, then the server saved by berth login.",
            show_default=False,
        ),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            metavar="KEY",
            help="A provisioner key (berthprov_…). Default: $BERTH_PROVISIONER_KEY.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Builds to run at once on this host.")
    ] = 2,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the agent zipapp is cached and workspaces keep their state"
            " (DIR/workspaces). Default: $BERTH_DATA_DIR, else ~/.local/share/berth.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run provisioner workers on this host until Ctrl-C."""
    if ctx.invoked_subcommand is not None:
        return
    import asyncio

    from berth.settings import default_data_dir

    server = _server_url(url)
    secret = key or os.environ.get("BERTH_PROVISIONER_KEY")
    if not secret:
        raise CliError(
            "no provisioner key: pass --key KEY or set BERTH_PROVISIONER_KEY"
            ' (create one with "berth provisioner keys create NAME")'
        )
    directory = data_dir or default_data_dir()
    if directory.exists() and not directory.is_dir():
        raise typer.BadParameter(f"{directory} is not a directory", param_hint="--data-dir")
    try:
        asyncio.run(_run(server, secret, workers=workers, data_dir=directory))
    except (KeyboardInterrupt, asyncio.CancelledError):
        note("Stopped.")


def _server_url(url: str | None) -> str:
    url = url or os.environ.get("BERTH_URL") or None
    if url is None:
        saved = read_saved(config_path())
        url = saved.url if saved else None
    if url is None:
        raise CliError("no server: pass --url URL or set BERTH_URL")
    from berth.client import normalize_url

    return normalize_url(url)


async def _run(url: str, key: str, *, workers: int, data_dir: Path) -> None:
    # Imported here: the backends (the Docker SDK) load only when builds run.
    import asyncio

    from berth.provisioner.backends.registry import make_backends
    from berth.provisioner.remote import RemoteProvisioner
    from berth.provisioner.remote_client import ProvisionerAPI, RemoteError

    main = asyncio.current_task()
    if main is not None:  # SIGTERM (a service manager's stop) ends it like Ctrl-C
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    api = ProvisionerAPI(url, key)
    try:
        runner = RemoteProvisioner(api, make_backends(), data_dir=data_dir, workers=workers)
        try:
            me = await runner.connect()
            note(
                f"berth provisioner: {workers} worker(s) building for {url}"
                f" as key {me.name} (organization {me.organization_id});"
                f" workspaces in {runner.state_dir}. Ctrl-C stops."
            )
            await runner.run()
        except RemoteError as exc:
            raise CliError(str(exc)) from None
    finally:
        await api.aclose()


# --- berth provisioner keys -------------------------------------------------------------


def _request(
    url: str | None, token: str | None, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    """One API call with the user's token; errors as the client's (printed as ``error:``)."""
    import httpx

    from berth.client import ApiError, ConnectionFailed, normalize_url
    from berth.client.client import API_PREFIX

    target = resolve(url, token)
    base = normalize_url(target.url)
    headers = {"Authorization": f"Bearer {target.token}", "Accept": "application/json"}
    with httpx.Client(base_url=base + API_PREFIX, headers=headers, timeout=30.0) as http:
        try:
            response = http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ConnectionFailed(base, str(exc) or "timeout", timed_out=True) from None
        except httpx.TransportError as exc:
            raise ConnectionFailed(base, str(exc) or type(exc).__name__) from None
    if response.is_error:
        raise ApiError.from_response(response)
    return response


def _object(response: httpx.Response) -> dict[str, Any]:
    data = cast("object", response.json())
    if not isinstance(data, dict):
        raise CliError(f"unexpected answer from the server: {response.text[:200]}")
    return cast("dict[str, Any]", data)


def _time(value: object) -> str:
    if not isinstance(value, str):
        return "-"
    try:
        return fmt_time(dt.datetime.fromisoformat(value))
    except ValueError:
        return value


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A name for the key, unique per organization.")],
    organization: OrganizationOption = None,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Create a provisioner key and print it: the only time it is shown.

    The key alone goes to stdout, so KEY=$(berth provisioner keys create ci) works.
    """
    body: dict[str, Any] = {"name": name}
    if organization:
        body["organization"] = organization
    created = _object(_request(url, token, "POST", "/provisioner-keys", json=body))
    if output == JSON:
        print_json(created)
        return
    note(
        f"Created provisioner key {created.get('name')}."
        " Save it now: it won't be shown again. Run: berth provisioner --url URL --key KEY"
    )
    typer.echo(str(created.get("key", "")))


@keys_app.command("list")
def list_(
    organization: OrganizationOption = None,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """List provisioner keys (never their secrets)."""
    params = {"organization": organization} if organization else None
    response = _request(url, token, "GET", "/provisioner-keys", params=params)
    data = cast("object", response.json())
    if not isinstance(data, list):
        raise CliError(f"unexpected answer from the server: {response.text[:200]}")
    keys = [cast("dict[str, Any]", k) for k in cast("list[object]", data)]
    if output == JSON:
        print_json(keys)
        return
    if not keys:
        note("No provisioner keys.")
        return
    print_table(
        ["NAME", "ORGANIZATION", "CREATED", "ID"],
        [
            [
                str(k.get("name")),
                str(k.get("organization_id")),
                _time(k.get("created_at")),
                str(k.get("id")),
            ]
            for k in keys
        ],
    )


@keys_app.command("delete")
def delete(
    key: Annotated[str, typer.Argument(metavar="KEY", help="The key's name or id.")],
    organization: OrganizationOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete (revoke) a provisioner key; provisioners using it are refused from then on."""
    params = {"organization": organization} if organization else None
    path = f"/provisioner-keys/{quote(key, safe='')}"
    _request(url, token, "DELETE", path, params=params)
    typer.echo(f"Deleted provisioner key {key}.")
