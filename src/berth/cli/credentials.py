"""Where the CLI finds its server and token (DESIGN §11), and the file ``berth login`` writes.

Resolution, field by field: ``--url``/``--token``, then ``BERTH_URL``/``BERTH_TOKEN``,
then the login file. One safety rule on top: the saved token is only sent to the saved
server. ``--url http://elsewhere`` with no token of its own does not borrow the token
saved for another server, so a typo cannot leak a credential.

The login file is ``$BERTH_CONFIG_DIR/config.json``, else
``$XDG_CONFIG_HOME/berth/config.json``, else ``~/.config/berth/config.json``; it holds
``{"url", "token"}``, is written atomically, and is readable by its owner only (0600,
in a 0700 folder when berth creates it).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

__all__ = [
    "CONFIG_FILE",
    "NOT_LOGGED_IN",
    "CredentialsError",
    "Saved",
    "Target",
    "config_path",
    "read_saved",
    "remove_saved",
    "resolve",
    "write_saved",
]

CONFIG_FILE = "config.json"
NOT_LOGGED_IN = (
    'not logged in: run "berth login URL --token TOKEN" or set BERTH_URL and BERTH_TOKEN'
)


class CredentialsError(Exception):
    """No usable server or token, or a login file that cannot be read or written."""


@dataclass(frozen=True, slots=True)
class Saved:
    """What ``berth login`` saved."""

    url: str
    token: str


@dataclass(frozen=True, slots=True)
class Target:
    """The server and token a command talks to, and where each came from (for messages)."""

    url: str
    token: str
    source: str


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """The login file's path (see the module docstring for the order)."""
    env = os.environ if env is None else env
    if folder := env.get("BERTH_CONFIG_DIR"):
        return Path(folder).expanduser() / CONFIG_FILE
    if xdg := env.get("XDG_CONFIG_HOME"):
        return Path(xdg).expanduser() / "berth" / CONFIG_FILE
    return Path.home() / ".config" / "berth" / CONFIG_FILE


def read_saved(path: Path) -> Saved | None:
    """The saved login, or None when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"cannot read {path}: {_why(exc)}") from None
    try:
        data: object = json.loads(text)
    except json.JSONDecodeError:
        data = None
    fields = cast("dict[str, Any]", data) if isinstance(data, dict) else {}
    url, token = fields.get("url"), fields.get("token")
    if not (isinstance(url, str) and url and isinstance(token, str) and token):
        raise CredentialsError(
            f'{path} is not a berth login file: run "berth login URL --token TOKEN" again'
        )
    return Saved(url, token)


def write_saved(path: Path, saved: Saved) -> None:
    """Write the login file atomically, mode 0600 from its first byte."""
    data = json.dumps({"url": saved.url, "token": saved.token}, indent=2) + "\n"
    try:
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True)
        fd, temporary = tempfile.mkstemp(prefix=".config-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:  # mkstemp files are 0600
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as exc:
        raise CredentialsError(f"cannot write {path}: {_why(exc)}") from None


def remove_saved(path: Path) -> bool:
    """Remove the login file; False if there was none."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise CredentialsError(f"cannot remove {path}: {_why(exc)}") from None
    return True


def resolve(
    url: str | None,
    token: str | None,
    *,
    env: Mapping[str, str] | None = None,
) -> Target:
    """The server and token to use: options, then environment, then the login file."""
    env = os.environ if env is None else env
    url = url or env.get("BERTH_URL") or None
    token = token or env.get("BERTH_TOKEN") or None
    source = "command line or environment"
    if url is None or token is None:
        path = config_path(env)
        saved = read_saved(path)
        if saved is not None and (url is None or _same_server(url, saved.url)):
            url = url or saved.url
            token = token or saved.token
            source = str(path)
    if url is None:
        raise CredentialsError(NOT_LOGGED_IN)
    if token is None:
        raise CredentialsError(
            f"no token for {url}: pass --token TOKEN, set BERTH_TOKEN,"
            f' or run "berth login {url} --token TOKEN"'
        )
    return Target(url, token, source)


def _same_server(a: str, b: str) -> bool:
    from berth.client import normalize_url  # only when a login file is read: see common

    try:
        return normalize_url(a) == normalize_url(b)
    except ValueError:
        return False


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
