"""``berth prebuilds list|pause|resume``: the prebuild pool (site owners).

``list`` shows one row per prebuilt workspace, then one per preset pool: desired, actual
(ready or on their way), ready, failures in a row, the last error and, while the pool
backs off after failures, when it builds again. ``pause`` stops the reconciler
site-wide (claims still take what is ready); ``resume`` starts it again.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import typer

from berth.cli.common import JSON, OutputOption, TokenOption, UrlOption, connect, new_app
from berth.cli.output import (
    fmt_bool,
    fmt_remaining,
    fmt_time,
    note,
    print_models_json,
    print_table,
)

if TYPE_CHECKING:
    from berth.client import Prebuild, PrebuildPool, PrebuildPreset

__all__ = ["PAUSED", "app"]

app = new_app("Prebuilt workspaces: list the pool, pause and resume it (site owners).")

PAUSED = "Reconciliation is paused."
PREBUILD_COLUMNS = ["WORKSPACE", "TEMPLATE", "PRESET", "STATUS", "READY", "CREATED"]
PRESET_COLUMNS = ["PRESET", "TEMPLATE", "DESIRED", "ACTUAL", "READY", "FAILURES", "LAST ERROR"]
RETRY_AT = "RETRY AT"


@app.command("list")
def list_(
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """List the prebuilt workspaces and each preset's pool."""
    with connect(url, token) as client:
        pool = client.prebuilds()
    if output == JSON:
        print_models_json(pool)
        return
    print_pool(pool, dt.datetime.now(dt.UTC))


@app.command("pause")
def pause(
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Pause reconciliation: no prebuild is created or deleted until resumed."""
    with connect(url, token) as client:
        pool = client.pause_prebuilds()
    if output == JSON:
        print_models_json(pool)
        return
    typer.echo(f"Paused prebuild reconciliation ({_counts(pool)}).")


@app.command("resume")
def resume(
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Resume reconciliation: the pools are filled again."""
    with connect(url, token) as client:
        pool = client.resume_prebuilds()
    if output == JSON:
        print_models_json(pool)
        return
    typer.echo(f"Resumed prebuild reconciliation ({_counts(pool)}).")


def print_pool(pool: PrebuildPool, now: dt.datetime) -> None:
    """The pool as tables: the prebuilds, then the presets' pools."""
    if pool.paused:
        typer.echo(PAUSED)
    if not pool.prebuilds and not pool.presets:
        note("No prebuilds: a template preset with prebuilds: {instances: N} keeps N ready.")
        return
    if pool.paused:
        typer.echo()
    if pool.prebuilds:
        print_table(PREBUILD_COLUMNS, [_prebuild_row(p) for p in pool.prebuilds], title="Prebuilds")
    else:
        note("No prebuilds yet.")
    if pool.presets:
        typer.echo()
        backing_off = any(p.retry_at is not None for p in pool.presets)
        columns = [*PRESET_COLUMNS, RETRY_AT] if backing_off else PRESET_COLUMNS
        rows = [_preset_row(p, now, retry=backing_off) for p in pool.presets]
        print_table(columns, rows, title="Presets")


def _counts(pool: PrebuildPool) -> str:
    ready = sum(1 for p in pool.prebuilds if p.ready)
    return f"{len(pool.prebuilds)} prebuild(s), {ready} ready"


def _prebuild_row(prebuild: Prebuild) -> list[str]:
    return [
        prebuild.workspace_name,
        prebuild.template_name or "-",
        prebuild.preset_name or "-",
        prebuild.status,
        fmt_bool(prebuild.ready),
        fmt_time(prebuild.created_at),
    ]


def _preset_row(preset: PrebuildPreset, now: dt.datetime, *, retry: bool) -> list[str]:
    row = [
        preset.preset_name,
        preset.template_name or "-",
        str(preset.desired),
        str(preset.actual),
        str(preset.ready),
        str(preset.failures),
        preset.last_error or "-",
    ]
    if retry:
        at = preset.retry_at
        if at is None:
            row.append("-")
        else:
            row.append(f"{fmt_time(at)} ({f'in {fmt_remaining(at, now)}' if at > now else 'due'})")
    return row
