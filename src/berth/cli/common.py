"""What every command group shares: the app factory, error reporting, the common options,
the connection to the server, and reading arguments.

Values that look like options: every command of an app made by :func:`new_app` reads
a negative number or duration (``-1h``, ``-5``) where it expects a value, so
``berth config set chat-workspace-ttl -1h`` reaches the server, which says why it is
refused, instead of click's "No such option: -1". ``--`` still ends the options.

Errors: every command runs inside :class:`BerthGroup`, which turns the errors a user
can cause (:class:`berth.client.ClientError`, :class:`CredentialsError`,
:class:`CliError`, :class:`OSError`) into ``error: <message>`` on stderr and exit
status 1, never a traceback. Anything else is a bug in berth and keeps its traceback
(without local variables, which could hold a token).

Start-up: :mod:`berth.client` (httpx, pydantic) is imported by the commands that talk
to a server, when they run, never at import: ``berth --help`` and the commands that
need no server start in a fraction of the time (tests/cli/test_startup.py guards it).
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Callable, Generator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer._click.parser import (  # pyright: ignore[reportPrivateImportUsage]
    _OptionParser,  # pyright: ignore[reportPrivateUsage]
    _ParsingState,  # pyright: ignore[reportPrivateUsage]
)
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandFunctionType

from berth.cli.credentials import CredentialsError, resolve

if TYPE_CHECKING:
    from berth.client import Client

__all__ = [
    "JSON",
    "TABLE",
    "TTL_NEGATIVE",
    "BerthCommand",
    "BerthGroup",
    "BerthTyper",
    "CliError",
    "OrganizationOption",
    "OutputOption",
    "TokenOption",
    "UrlOption",
    "check_duration",
    "check_found",
    "connect",
    "new_app",
    "parse_pairs",
    "report",
]

TABLE = "table"
JSON = "json"
_FORMATS = (TABLE, JSON)


class CliError(Exception):
    """A mistake the user can fix; ``str()`` is the message printed after ``error:``."""


def report(exc: BaseException) -> str:
    """The text printed after ``error:`` for an error a user can cause."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    if _is_client_error(exc):
        from berth.client import ApiError

        if isinstance(exc, ApiError) and exc.status_code == 401:
            text += '\n(log in again with "berth login URL --token TOKEN", or pass a valid --token)'
    return text


class BerthGroup(TyperGroup):
    """A command group that reports user-facing errors as ``error: …`` and exits 1."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if not (
                isinstance(exc, CredentialsError | CliError | OSError) or _is_client_error(exc)
            ):
                raise
            typer.echo(f"error: {report(exc)}", err=True)
            raise typer.Exit(1) from None


def _is_client_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a :class:`berth.client.ClientError`. Only the client raises
    one, so until it is imported nothing is, and a usage error imports nothing."""
    if "berth.client" not in sys.modules:
        return False
    from berth.client import ClientError

    return isinstance(exc, ClientError)


_NEGATIVE = re.compile(r"-[0-9.]")
"""The start of a negative number or duration: a value, never one of berth's options."""


class _ValueParser(_OptionParser):
    """Click's parser, except that ``-1h`` or ``-5`` is a value, not an unknown option."""

    def _process_opts(self, arg: str, state: _ParsingState) -> None:
        if (
            _NEGATIVE.match(arg)
            and self.allow_interspersed_args
            and arg[:2] not in self._short_opt
            and arg.partition("=")[0] not in self._long_opt
        ):
            state.largs.append(arg)
            return
        super()._process_opts(arg, state)


class BerthCommand(TyperCommand):
    """A command whose arguments may be negative numbers and durations."""

    def make_parser(self, ctx: Any) -> _OptionParser:  # typer's vendored click.Context
        parser = _ValueParser(ctx)
        for param in self.get_params(ctx):
            param.add_to_parser(parser, ctx)
        return parser


class BerthTyper(typer.Typer):
    """A Typer whose commands are :class:`BerthCommand` unless they say otherwise."""

    def command(
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        return super().command(name, cls=cls or BerthCommand, **kwargs)


def new_app(help: str, **kwargs: Any) -> typer.Typer:
    """A command group app with berth's error handling and settings."""
    return BerthTyper(
        cls=BerthGroup,
        help=help,
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
        **kwargs,
    )


def _check_output(value: str) -> str:
    normalized = value.strip().lower()
    if normalized not in _FORMATS:
        raise CliError(f"unknown output format {value!r}: use {' or '.join(_FORMATS)}")
    return normalized


UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        metavar="URL",
        help="The berth server, e.g. http://127.0.0.1:7080. Default: $BERTH_URL, then the"
        " server saved by berth login.",
        show_default=False,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        metavar="TOKEN",
        help="An API token. Default: $BERTH_TOKEN, then the token saved by berth login.",
        show_default=False,
    ),
]
OutputOption = Annotated[
    str,
    typer.Option(
        "--output",
        "-o",
        metavar="FORMAT",
        help="table, or json for the server's objects exactly.",
        callback=_check_output,
    ),
]
OrganizationOption = Annotated[
    str | None,
    typer.Option(
        "--organization",
        "--org",
        metavar="ORG",
        help="Organization name or id. Default: the default organization.",
        show_default=False,
    ),
]


@contextmanager
def connect(url: str | None, token: str | None) -> Generator[Client]:
    """A client for the server and token the options, environment or login name."""
    from berth.client import Client

    target = resolve(url, token)
    with Client(target.url, target.token) as client:
        yield client


# --- arguments ------------------------------------------------------------------------


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


TTL_NEGATIVE = "Workspace TTL must be non-negative."
"""What the server says of a negative TTL (spec §10); the CLI says it before asking."""


def check_duration(value: str, what: str, *, negative: str | None = None) -> dt.timedelta:
    """A Go duration from the command line, >= 0; ``negative`` is the message for one
    below zero (default: one naming ``what``)."""
    from berth.client import InvalidArgument, parse_duration

    try:
        duration = parse_duration(value)
    except InvalidArgument as exc:
        raise CliError(f"{what}: {exc}") from None
    if duration < dt.timedelta(0):
        raise CliError(negative or f"{what}: the duration must not be negative, got {value!r}")
    return duration


@contextmanager
def check_found(ref: str, kind: str = "workspace") -> Generator[None]:
    """Turn the server's ``workspace not found`` (404; or ``template``, ``user``) into one
    that names ``ref`` and the listing that shows what there is."""
    from berth.client import ApiError

    try:
        yield
    except ApiError as exc:
        if exc.status_code != 404 or not exc.message.startswith(kind):
            raise
        raise CliError(f"{kind} {ref!r} not found (berth {kind}s list shows them)") from None
