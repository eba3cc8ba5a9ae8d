"""The API's answers as its contract states them: permission before state, the OpenAPI
document's error responses, ``Allow`` on a 405, malformed requests, a chat's default
organization, a stream of a chat that is not there."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from berth.api.errors import error_statuses
from tests.support.api import API, Connect, envelope, fields, json_list, json_object, ok

FAKE_TEMPLATE = "name: {name}\nbackend: {{type: fake}}\n"


def _member(admin: httpx.Client, connect: Connect, name: str, **body: Any) -> httpx.Client:
    ok(admin.post("/users", json={"username": name, **body}), 201)
    token = ok(admin.post(f"/users/{name}/tokens", json={"name": "t"}), 201)["token"]
    return connect(token)


def _template(admin: httpx.Client, name: str, organization: str | None = None) -> dict[str, Any]:
    files = {"template.yaml": FAKE_TEMPLATE.format(name=name)}
    return ok(admin.post("/templates", json={"files": files, "organization": organization}), 201)


# --- permission before state -------------------------------------------------------------


def test_a_member_gets_the_same_refusal_for_a_template_in_use_or_not(
    admin: httpx.Client, connect: Connect
) -> None:
    """Deleting a template a member may see but not change is Forbidden whether or not a
    workspace uses it: the state (in use) is never told to someone without permission.
    Another organization's template is not found, in use or not."""
    ok(admin.post("/organizations", json={"name": "other"}), 201)
    alice = _member(admin, connect, "alice")
    bob = _member(admin, connect, "bob", organization="other")
    _template(admin, "used")
    _template(admin, "unused")
    ok(admin.post("/workspaces", json={"name": "w1", "template": "used"}), 201)

    refusals = [envelope(alice.delete(f"/templates/{name}"), 403) for name in ("used", "unused")]
    assert refusals[0] == refusals[1] == {"message": "not allowed to delete this template"}
    ids = {t["name"]: t["id"] for t in json_list(admin.get("/templates"))}
    hidden = [envelope(bob.delete(f"/templates/{ids[name]}"), 404) for name in ("used", "unused")]
    assert hidden[0] == hidden[1] == {"message": "template not found"}

    # The owner is told the state, and nothing was deleted by the refusals.
    body = envelope(admin.delete("/templates/used"), 409)
    assert body["message"] == "Template 'used' is used by 1 workspace(s)."
    assert {"used", "unused"} <= {t["name"] for t in json_list(admin.get("/templates"))}
    assert admin.delete("/templates/unused").status_code == 204


# --- malformed requests ------------------------------------------------------------------


def test_malformed_json_is_400_and_a_wrong_shape_is_422(admin: httpx.Client) -> None:
    for content in (b"{", b'{"title": "x",}', b"\xff\xfe", b"[1, 2"):
        response = admin.post(
            "/chats", content=content, headers={"Content-Type": "application/json"}
        )
        body = envelope(response, 400)
        assert body["message"] in (
            "The request body is not valid JSON.",
            "There was an error parsing the body",
        ), body
    body = envelope(admin.post("/chats", json={"title": 5}), 422)
    assert fields(body) == ["title"]
    body = envelope(admin.post("/chats", json={"title": "x", "colour": "red"}), 422)
    assert fields(body) == ["colour"]


def test_nul_characters_are_refused_before_any_route(admin: httpx.Client) -> None:
    """PostgreSQL cannot store or even compare text holding NUL: a URL with one is
    malformed (400), a body field with one is invalid (422 naming it)."""
    body = envelope(admin.get("/templates", params={"organization": "a\x00b"}), 400)
    assert body == {
        "message": "Malformed URL.",
        "detail": "The path or query holds a NUL character.",
    }
    envelope(admin.get("/templates/a%00b"), 400)
    envelope(admin.get("/users/a%00b/quota"), 400)
    body = envelope(admin.post("/chats", json={"title": "a\x00b"}), 422)
    assert fields(body) == ["title"]
    body = envelope(admin.post("/users", json={"username": "x", "roles": ["a\x00"]}), 422)
    assert fields(body) == ["roles"]
    body = envelope(admin.post("/templates", json={"files": {"template.yaml\x00": ""}}), 422)
    assert fields(body) == ["files"]


# --- 405 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/templates/python", "GET, DELETE"),
        ("/templates", "GET, POST"),
        ("/config/chat-workspace-ttl", "GET, PUT"),
        ("/users/me/tokens/x", "DELETE"),
        ("/chats/00000000-0000-4000-8000-000000000000/mcp", "GET, HEAD, POST, DELETE"),
    ],
)
def test_a_405_allows_every_method_of_the_path(
    admin: httpx.Client, path: str, allowed: str
) -> None:
    for method in ("PATCH", "OPTIONS"):
        response = admin.request(method, path)
        assert envelope(response, 405) == {"message": "Method Not Allowed"}
        assert response.headers["allow"] == allowed


# --- chats -------------------------------------------------------------------------------


def test_a_chat_defaults_to_the_users_only_organization(
    admin: httpx.Client, connect: Connect
) -> None:
    other = ok(admin.post("/organizations", json={"name": "other"}), 201)
    bob = _member(admin, connect, "bob", organization="other")
    chat = ok(bob.post("/chats", json={"title": "hi"}), 201)
    assert chat["organization_id"] == other["id"]
    # Naming the organization still works, and naming one they are not in does not.
    assert (
        ok(bob.post("/chats", json={"organization": "other"}), 201)["organization_id"]
        == (other["id"])
    )
    envelope(bob.post("/chats", json={"organization": "default"}), 404)
    # A user of several organizations gets the default one, as before.
    default = next(o for o in json_list(admin.get("/organizations")) if o["is_default"])
    assert ok(admin.post("/chats", json={}), 201)["organization_id"] == default["id"]


def test_watching_a_chat_that_is_not_there_is_a_404(admin: httpx.Client, connect: Connect) -> None:
    """The chat is resolved before the stream starts: a 404, not an empty 200 stream."""
    for ref in (str(uuid.uuid4()), "not-an-id"):
        assert envelope(admin.get(f"/chats/{ref}/watch"), 404) == {"message": "chat not found"}
    alice = _member(admin, connect, "alice")
    bob = _member(admin, connect, "bob")
    alices = ok(alice.post("/chats", json={}), 201)
    assert envelope(bob.get(f"/chats/{alices['id']}/watch"), 404) == {"message": "chat not found"}
    mine = ok(admin.post("/chats", json={"title": "mine"}), 201)
    with admin.stream("GET", f"/chats/{mine['id']}/watch") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data:"):
                assert '"title":"mine"' in line.replace(" ", "")
                break


# --- the OpenAPI document ----------------------------------------------------------------


def test_openapi_declares_the_error_envelope_for_every_error(connect: Connect) -> None:
    client = connect(None)
    schema = json_object(client.get(client.base_url.copy_with(path=f"{API}/openapi.json")))
    components: dict[str, Any] = schema["components"]["schemas"]
    assert set(components["ErrorEnvelope"]["properties"]) == {"message", "detail", "validations"}
    assert "HTTPValidationError" not in components
    paths: dict[str, dict[str, Any]] = schema["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            responses: dict[str, Any] = operation["responses"]
            for status in error_statuses(method, operation):
                content = responses[str(status)]["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/ErrorEnvelope"}, (
                    method,
                    path,
                    status,
                )
            if operation.get("security"):
                assert {"401", "404"} <= set(responses), (method, path)
                assert "WWW-Authenticate" in responses["401"]["headers"]
    delete = paths[f"{API}/templates/{{template}}"]["delete"]["responses"]
    assert {"204", "400", "401", "403", "404", "409", "422", "503"} <= set(delete)
    assert "Retry-After" in delete["503"]["headers"]
    watch = paths[f"{API}/chats/{{chat}}/watch"]["get"]["responses"]
    assert "text/event-stream" in watch["200"]["content"]
    assert "400" in paths[f"{API}/templates"]["post"]["responses"]
    assert "422" not in paths[f"{API}/health"]["get"]["responses"]
