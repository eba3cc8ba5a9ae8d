"""The client's pieces that need no server: error envelopes, URLs, folders, models."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from berth.client import (
    ApiError,
    Client,
    ConnectionFailed,
    InvalidArgument,
    InvalidURL,
    Template,
    TemplateFolderError,
    Validation,
    normalize_url,
    read_template_folder,
)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- ApiError -------------------------------------------------------------------


def test_api_error_reads_the_envelope_and_formats_message_detail_and_validations() -> None:
    response = httpx.Response(
        422,
        json={
            "message": "template.yaml is not a valid template",
            "detail": "2 problems",
            "validations": [
                {"field": "default_ttl", "detail": "not a duration"},
                {"field": "agents[1].chat", "detail": "only one agent may have chat: true"},
            ],
        },
    )
    error = ApiError.from_response(response)
    assert error.status_code == 422
    assert error.message == "template.yaml is not a valid template"
    assert error.detail == "2 problems"
    assert error.validations == [
        Validation("default_ttl", "not a duration"),
        Validation("agents[1].chat", "only one agent may have chat: true"),
    ]
    assert str(error) == (
        "template.yaml is not a valid template\n"
        "2 problems\n"
        "  default_ttl: not a duration\n"
        "  agents[1].chat: only one agent may have chat: true"
    )
    assert not error.retryable


def test_api_error_with_only_a_message() -> None:
    error = ApiError.from_response(httpx.Response(404, json={"message": "template not found"}))
    assert (error.status_code, error.detail, error.validations) == (404, None, [])
    assert str(error) == "template not found"


def test_api_error_503_is_retryable_and_keeps_retry_after() -> None:
    response = httpx.Response(503, json={"message": "database busy"}, headers={"Retry-After": "3"})
    error = ApiError.from_response(response)
    assert error.retryable
    assert error.retry_after == 3.0


def test_api_error_from_a_body_that_is_not_the_envelope() -> None:
    error = ApiError.from_response(httpx.Response(502, text="<html>Bad Gateway</html>"))
    assert error.status_code == 502
    assert error.message == "the server answered 502 Bad Gateway"
    assert error.detail == "<html>Bad Gateway</html>"


def test_api_error_ignores_malformed_validations() -> None:
    response = httpx.Response(422, json={"message": "invalid", "validations": "nope"})
    assert ApiError.from_response(response).validations == []


# --- URLs and connections -------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:7080", "http://127.0.0.1:7080"),
        ("http://127.0.0.1:7080/", "http://127.0.0.1:7080"),
        ("http://127.0.0.1:7080/api/v1", "http://127.0.0.1:7080"),
        ("https://berth.example.com/base/api/v1/", "https://berth.example.com/base"),
        ("  http://host:1  ", "http://host:1"),
    ],
)
def test_normalize_url(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


@pytest.mark.parametrize("bad", ["127.0.0.1:7080", "ftp://host", "http://", "http://h/?x=1"])
def test_unusable_urls_are_refused(bad: str) -> None:
    with pytest.raises(InvalidURL, match="invalid server URL"):
        normalize_url(bad)


def test_connection_refused_names_the_url_and_the_likely_cause() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with Client(url, "token") as client, pytest.raises(ConnectionFailed) as caught:
        client.health()
    assert caught.value.url == url
    assert url in str(caught.value)
    assert "may not be running" in str(caught.value)


def test_503_is_retried_for_reads_as_retry_after_asks() -> None:
    """HTTP mechanics only (not berth's behaviour): a transport that is busy once."""
    answers = [
        httpx.Response(503, json={"message": "busy"}, headers={"Retry-After": "0.5"}),
        httpx.Response(200, json={"status": "ok", "version": "9"}),
    ]
    waits: list[float] = []
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    transport = httpx.MockTransport(handler)
    with Client("http://berth.test", "secret", transport=transport, sleep=waits.append) as client:
        assert client.health().version == "9"
    assert waits == [0.5]
    assert [r.url.path for r in seen] == ["/api/v1/health"] * 2
    assert seen[0].headers["authorization"] == "Bearer secret"


def test_503_is_not_retried_for_a_post() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503, json={"message": "busy"}, headers={"Retry-After": "0"})

    transport = httpx.MockTransport(handler)
    client = Client("http://berth.test", "t", transport=transport, sleep=lambda _: None)
    with client, pytest.raises(ApiError) as caught:
        client.create_token("ci")
    assert caught.value.status_code == 503
    assert len(calls) == 1


def test_empty_names_are_refused_before_sending() -> None:
    with Client(f"http://127.0.0.1:{closed_port()}", "t") as client:
        with pytest.raises(InvalidArgument, match="must not be empty"):
            client.get_template("")
        with pytest.raises(ValueError, match="must not be empty"):
            client.delete_token(" ")


def test_path_segments_are_quoted() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path.decode())
        return httpx.Response(204)

    with Client("http://berth.test", "t", transport=httpx.MockTransport(handler)) as client:
        client.delete_token("a/b?c", user="me")
    assert paths == ["/api/v1/users/me/tokens/a%2Fb%3Fc"]


def test_repr_never_shows_the_token() -> None:
    with Client("http://berth.test", "very-secret") as client:
        assert "very-secret" not in repr(client)


# --- template folders -----------------------------------------------------------


def test_read_template_folder_with_readme(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text("name: tiny\n")
    (tmp_path / "README.md").write_text("# Tiny\n")
    assert read_template_folder(tmp_path) == {
        "template.yaml": "name: tiny\n",
        "README.md": "# Tiny\n",
    }


def test_read_template_folder_accepts_yml_and_the_file_itself(tmp_path: Path) -> None:
    (tmp_path / "template.yml").write_text("name: tiny\n")
    assert read_template_folder(tmp_path) == {"template.yaml": "name: tiny\n"}
    assert read_template_folder(tmp_path / "template.yml") == {"template.yaml": "name: tiny\n"}


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "does not exist"),
        ("empty", "has no template.yaml"),
        ("both", "both template.yaml and template.yml"),
        ("binary", "is not UTF-8 text"),
        ("file", "is not a folder"),
    ],
)
def test_read_template_folder_errors(tmp_path: Path, setup: str, message: str) -> None:
    target = tmp_path / "t"
    if setup != "missing":
        target.mkdir()
    if setup == "both":
        (target / "template.yaml").write_text("name: a\n")
        (target / "template.yml").write_text("name: b\n")
    if setup == "binary":
        (target / "template.yaml").write_bytes(b"name: \xff\xfe\n")
    if setup == "file":
        target = target / "notes.txt"
        target.write_text("hi")
    with pytest.raises(TemplateFolderError, match=message):
        read_template_folder(target)


# --- models ---------------------------------------------------------------------


def test_models_accept_unknown_fields_and_keep_the_raw_json() -> None:
    raw = {
        "id": "t1",
        "name": "python",
        "default_ttl": "8h0m0s",
        "created_at": "2025-01-02T03:04:05Z",
        "added_in_a_later_version": {"x": 1},
    }
    template = Template.model_validate(raw)
    assert template.name == "python"
    assert template.created_at is not None
    assert template.created_at.year == 2025
    assert template.raw == raw
    assert template.model_extra == {"added_in_a_later_version": {"x": 1}}
