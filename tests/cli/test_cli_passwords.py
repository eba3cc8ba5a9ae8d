"""``berth users create --password-stdin`` and ``berth users password``: stdin only.

The live paths (a password that then logs in to the web UI, a new one that ends the
user's sessions) are in ``tests/web/test_web_http.py``.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from berth.cli.app import app

runner = CliRunner()


@pytest.mark.parametrize(
    "args",
    [["users", "create", "alice", "--password-stdin"], ["users", "password", "alice"]],
)
def test_no_password_on_stdin_is_a_clear_error_before_any_request(args: list[str]) -> None:
    # No server at this URL: the command must fail on stdin before it tries to connect.
    result = runner.invoke(app, [*args, "--url", "http://127.0.0.1:9", "--token", "t"], input="")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no password on stdin")
    assert "Traceback" not in result.output


def test_the_password_is_never_an_argument() -> None:
    result = runner.invoke(app, ["users", "password", "--help"])
    assert result.exit_code == 0
    assert "stdin" in result.output
    refused = runner.invoke(app, ["users", "create", "bob", "--password", "secret"])
    assert refused.exit_code != 0
