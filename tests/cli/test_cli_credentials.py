"""Where the CLI finds its server and token, and the login file it writes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from berth.cli.credentials import (
    NOT_LOGGED_IN,
    CredentialsError,
    Saved,
    config_path,
    read_saved,
    remove_saved,
    resolve,
    write_saved,
)


def saved_in(folder: Path) -> Path:
    path = folder / "config.json"
    write_saved(path, Saved("http://saved:7080", "saved-token"))
    return path


def test_config_path_order(tmp_path: Path) -> None:
    home = Path.home()
    assert config_path({}) == home / ".config" / "berth" / "config.json"
    assert config_path({"XDG_CONFIG_HOME": str(tmp_path / "xdg")}) == (
        tmp_path / "xdg" / "berth" / "config.json"
    )
    both = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "BERTH_CONFIG_DIR": str(tmp_path / "b")}
    assert config_path(both) == tmp_path / "b" / "config.json"


def test_options_win_over_environment_and_login(tmp_path: Path) -> None:
    saved_in(tmp_path)
    env = {"BERTH_CONFIG_DIR": str(tmp_path), "BERTH_URL": "http://env:1", "BERTH_TOKEN": "env"}
    target = resolve("http://option:2", "option", env=env)
    assert (target.url, target.token) == ("http://option:2", "option")


def test_environment_wins_over_login(tmp_path: Path) -> None:
    saved_in(tmp_path)
    env = {"BERTH_CONFIG_DIR": str(tmp_path), "BERTH_URL": "http://env:1", "BERTH_TOKEN": "env"}
    target = resolve(None, None, env=env)
    assert (target.url, target.token) == ("http://env:1", "env")


def test_login_is_the_fallback(tmp_path: Path) -> None:
    path = saved_in(tmp_path)
    target = resolve(None, None, env={"BERTH_CONFIG_DIR": str(tmp_path)})
    assert (target.url, target.token, target.source) == (
        "http://saved:7080",
        "saved-token",
        str(path),
    )


def test_fields_resolve_separately(tmp_path: Path) -> None:
    saved_in(tmp_path)
    env = {"BERTH_CONFIG_DIR": str(tmp_path), "BERTH_TOKEN": "env-token"}
    target = resolve(None, None, env=env)
    assert (target.url, target.token) == ("http://saved:7080", "env-token")
    # The saved server with a different spelling still gets the saved token.
    target = resolve("http://saved:7080/api/v1/", None, env={"BERTH_CONFIG_DIR": str(tmp_path)})
    assert target.token == "saved-token"


def test_the_saved_token_is_never_sent_to_another_server(tmp_path: Path) -> None:
    saved_in(tmp_path)
    with pytest.raises(CredentialsError, match="no token for http://elsewhere:1"):
        resolve("http://elsewhere:1", None, env={"BERTH_CONFIG_DIR": str(tmp_path)})


def test_nothing_anywhere_is_not_logged_in(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError) as caught:
        resolve(None, None, env={"BERTH_CONFIG_DIR": str(tmp_path)})
    assert str(caught.value) == NOT_LOGGED_IN
    assert str(caught.value) == (
        'not logged in: run "berth login URL --token TOKEN" or set BERTH_URL and BERTH_TOKEN'
    )


def test_written_file_is_private_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "new" / "config.json"
    write_saved(path, Saved("http://h:1", "t"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {"url": "http://h:1", "token": "t"}
    assert read_saved(path) == Saved("http://h:1", "t")
    write_saved(path, Saved("http://h:2", "u"))  # overwrite keeps the mode
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]  # no temp files left


def test_a_corrupt_login_file_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(CredentialsError, match="not a berth login file"):
        read_saved(path)


def test_remove_saved(tmp_path: Path) -> None:
    path = saved_in(tmp_path)
    assert remove_saved(path) is True
    assert remove_saved(path) is False
    assert read_saved(path) is None
