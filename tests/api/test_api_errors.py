"""The one error envelope, ``{message, detail?, validations?}``, for every kind of failure."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from berth.api.errors import error_response, install_error_handlers
from berth.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
    Unavailable,
    Validation,
)
from tests.support.api import API, Connect, envelope, fields, json_object


def test_an_unknown_route_is_404_in_the_envelope(admin: httpx.Client, connect: Connect) -> None:
    for client in (admin, connect(None)):
        assert envelope(client.get("/no/such/route"), 404) == {"message": "Not Found"}
    # Outside /api the paths are the web UI's: its 404 is a page (tests/web).
    outside = admin.get(admin.base_url.copy_with(path="/nothing-here"))
    assert outside.status_code == 404
    assert outside.headers["content-type"].startswith("text/html")


def test_a_wrong_method_is_405_in_the_envelope(admin: httpx.Client) -> None:
    response = admin.patch("/templates")
    assert envelope(response, 405) == {"message": "Method Not Allowed"}
    assert "allow" in response.headers


def test_openapi_lists_the_api(connect: Connect) -> None:
    client = connect(None)
    schema = json_object(client.get(client.base_url.copy_with(path=f"{API}/openapi.json")))
    paths: dict[str, Any] = schema["paths"]
    assert {"get", "post"} <= set(paths[f"{API}/templates"])
    assert {"get", "put"} <= set(paths[f"{API}/config/{{key}}"])
    assert f"{API}/users/{{user}}/tokens" in paths
    assert f"{API}/health" in paths


def test_a_body_that_is_not_json_is_400_with_validations(admin: httpx.Client) -> None:
    """Malformed JSON is a malformed request (400); JSON of the wrong shape is a 422."""
    response = admin.post(
        "/templates", content=b'{"files": {', headers={"Content-Type": "application/json"}
    )
    body = envelope(response, 400)
    assert body["message"] == "The request body is not valid JSON."
    (problem,) = body["validations"]
    assert "JSON" in problem["detail"]


def test_a_json_syntax_error_is_not_reported_as_a_list_index(admin: httpx.Client) -> None:
    """FastAPI puts the character offset of a JSON syntax error in the error's ``loc``.

    That offset names no field of the request; reported as ``[11]`` it reads as "item 11
    of a list". The problem is the body as a whole.
    """
    response = admin.post(
        "/templates", content=b'{"files": {', headers={"Content-Type": "application/json"}
    )
    assert fields(envelope(response, 400)) == ["body"]


def test_a_body_of_the_wrong_shape_is_422_naming_the_fields(admin: httpx.Client) -> None:
    body = envelope(admin.post("/users", json={"username": "", "colour": "red"}), 422)
    assert body["message"] == "Invalid request."
    assert sorted(fields(body)) == ["colour", "username"]
    body = envelope(admin.post("/users", content=b"", headers={"Content-Type": "text/plain"}), 422)
    assert fields(body) == ["body"]


def test_a_domain_validation_error_lists_every_problem(admin: httpx.Client) -> None:
    payload = {"username": "Bad Name", "email": "nope", "roles": ["root"]}
    body = envelope(admin.post("/users", json=payload), 422)
    assert body["message"] == "Invalid user."
    assert sorted(fields(body)) == ["email", "roles", "username"]
    envelope(admin.get("/users/Bad Name"), 404)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound("gone"), 404),
        (Forbidden("no"), 403),
        (Conflict("taken"), 409),
        (InvalidInput("bad", validations=[Validation("f", "rule")]), 422),
    ],
)
def test_domain_errors_map_to_their_status(error: Exception, status: int) -> None:
    assert isinstance(error, NotFound | Forbidden | Conflict | InvalidInput)
    response = error_response(error)
    assert response.status_code == status
    assert "retry-after" not in response.headers


def test_unavailable_is_503_with_retry_after() -> None:
    response = error_response(Unavailable("busy", retry_after=3, detail="the database is busy"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "3"
    assert bytes(response.body) == b'{"message":"busy","detail":"the database is busy"}'


def test_unauthenticated_asks_for_a_bearer_token() -> None:
    response = error_response(Unauthenticated("who?"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert bytes(response.body) == b'{"message":"who?"}'


@pytest.mark.anyio
async def test_an_unexpected_error_is_a_bare_500_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:  # pyright: ignore[reportUnusedFunction]
        raise RuntimeError("secret internals: password=hunter2")

    # The ASGI transport re-raises app errors by default; a server would not.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="berth.api"):
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"message": "Internal server error."}
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    (record,) = [r for r in caplog.records if r.name == "berth.api"]
    assert record.exc_info is not None, "the traceback goes to the log"
    assert "GET /boom" in record.getMessage()
