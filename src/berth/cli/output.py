"""Printing: exact JSON for ``-o json``, rich tables and key/value panels otherwise.

JSON goes to stdout untouched (the server's objects as received, through
:attr:`berth.client.ApiModel.raw`); tables go to stdout too; notes meant for a person
(an empty listing, a one-time secret warning) go to stderr so pipelines stay clean.
Every value is printed as plain text, never as rich markup. rich and the client's
models are imported when something is printed, not with the CLI (see
:mod:`berth.cli.common`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from berth.cli.common import JSON

if TYPE_CHECKING:
    from rich.console import Console

    from berth.client import ApiModel

__all__ = [
    "console",
    "fmt_bool",
    "fmt_time",
    "fmt_value",
    "note",
    "print_fields",
    "print_json",
    "print_listing",
    "print_models_json",
    "print_table",
]

_PIPE_WIDTH = 500
_M = TypeVar("_M", bound="ApiModel")


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def print_models_json(models: ApiModel | Sequence[ApiModel]) -> None:
    """The server's JSON for one object or a list of them."""
    from berth.client import ApiModel

    if isinstance(models, ApiModel):
        print_json(models.raw)
    else:
        print_json([model.raw for model in models])


def print_listing(
    models: Sequence[_M],
    output: str,
    columns: Sequence[str],
    row: Callable[[_M], Sequence[str]],
    *,
    empty: str | None = None,
) -> None:
    """A list command's output: with -o json the server's JSON list; else a table of
    ``row(model)`` for each, or, when there is none and ``empty`` is given, that note."""
    if output == JSON:
        print_models_json(models)
    elif not models and empty is not None:
        note(empty)
    else:
        print_table(columns, [row(model) for model in models])


def note(message: str) -> None:
    """A message for the person at the terminal (stderr)."""
    typer.echo(message, err=True)


def console() -> Console:
    """A console on stdout. Off a terminal (a pipe, a file) lines are never wrapped to
    80 columns unless ``COLUMNS`` asks for a width, so ``grep`` sees whole rows."""
    from rich.console import Console

    terminal = Console(highlight=False)
    if terminal.is_terminal or os.environ.get("COLUMNS"):
        return terminal
    return Console(highlight=False, width=_PIPE_WIDTH)


def print_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    title: str | None = None,
) -> None:
    """A borderless table. On a narrow terminal every column but the first (the name,
    which is what people read and copy) wraps; nothing is ever cut off."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        header_style="bold",
        title=title,
        title_justify="left",
        title_style="bold",
    )
    for index, column in enumerate(columns):
        table.add_column(column, no_wrap=index == 0, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console().print(table)


def print_fields(fields: Sequence[tuple[str, str]], *, title: str | None = None) -> None:
    """``label  value`` lines, aligned."""
    from rich.table import Table
    from rich.text import Text

    out = console()
    if title:
        out.print(Text(title, style="bold"))
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in fields:
        table.add_row(Text(label), Text(value))
    out.print(table)


def fmt_time(value: dt.datetime | None, *, never: str = "-") -> str:
    """A time in the local zone, to the minute."""
    if value is None:
        return never
    return value.astimezone().strftime("%Y-%m-%d %H:%M")


def fmt_remaining(until: dt.datetime, now: dt.datetime) -> str:
    """``3h 59m``, ``12m``, ``40s`` from ``now`` to ``until`` (``0s`` once past)."""
    seconds = max(0, int((until - now).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{secs}s"


def fmt_bytes(size: int) -> str:
    """``512 B``, ``12.3 MiB``, ``2.0 GiB``: binary multiples, as template sizes are."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} TiB"


def fmt_bool(value: bool) -> str:
    return "yes" if value else "no"


def fmt_value(value: object) -> str:
    """A parameter value or default as a person reads it."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value) if value == "" else value
    return json.dumps(value, ensure_ascii=False)
