"""Authorization over HTTP (DESIGN §4): who sees and changes what; hidden looks like missing.

The world: the site owner ``admin``; ``alice``, a member of the default organization;
``bob``, a member of a second organization ``other``; ``tina``, a site template-admin
in the default organization.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.api import (
    Connect,
    count_rows,
    envelope,
    json_list,
    ok,
    template_files,
)


@dataclass
class World:
    admin: httpx.Client
    alice: httpx.Client
    bob: httpx.Client
    tina: httpx.Client
    default_org: dict[str, Any]
    other_org: dict[str, Any]
    users: dict[str, dict[str, Any]]
    bob_token_id: str


@pytest.fixture
def world(admin: httpx.Client, connect: Connect) -> World:
    default_org = json_list(admin.get("/organizations"))[0]
    other_org = ok(admin.post("/organizations", json={"name": "other"}), 201)
    assert other_org["is_default"] is False
    users = {
        "alice": ok(admin.post("/users", json={"username": "alice"}), 201),
        "bob": ok(admin.post("/users", json={"username": "bob", "organization": "other"}), 201),
        "tina": ok(
            admin.post("/users", json={"username": "tina", "roles": ["template-admin"]}), 201
        ),
    }
    assert users["alice"]["organization_ids"] == [default_org["id"]]
    assert users["bob"]["organization_ids"] == [other_org["id"]]
    assert users["tina"]["roles"] == ["template-admin"]
    tokens = {
        name: ok(admin.post(f"/users/{name}/tokens", json={"name": "t"}), 201) for name in users
    }
    for name, token in tokens.items():
        assert token["user_id"] == users[name]["id"], "the owner made a token for another user"
    return World(
        admin=admin,
        alice=connect(tokens["alice"]["token"]),
        bob=connect(tokens["bob"]["token"]),
        tina=connect(tokens["tina"]["token"]),
        default_org=default_org,
        other_org=other_org,
        users=users,
        bob_token_id=tokens["bob"]["id"],
    )


def _template_ids(client: httpx.Client) -> dict[str, str]:
    return {t["name"]: t["id"] for t in json_list(client.get("/templates"))}


def test_each_user_is_themselves(world: World) -> None:
    for name in ("alice", "bob", "tina"):
        client: httpx.Client = getattr(world, name)
        me = ok(client.get("/users/me"))
        assert me == world.users[name]
        assert me["roles"] == (["template-admin"] if name == "tina" else [])


def test_a_member_of_another_organization_sees_none_of_the_default_one(world: World) -> None:
    python_id = _template_ids(world.admin)["python"]
    assert json_list(world.bob.get("/templates")) == []
    assert [o["name"] for o in json_list(world.bob.get("/organizations"))] == ["other"]

    hidden = envelope(world.bob.get(f"/templates/{python_id}"), 404)
    missing = envelope(world.bob.get(f"/templates/{uuid.uuid4()}"), 404)
    assert hidden == missing == {"message": "template not found"}
    assert envelope(world.bob.get(f"/templates/{python_id}/versions"), 404) == missing
    assert envelope(world.bob.delete(f"/templates/{python_id}"), 404) == missing
    # By name, in the default organization, which bob cannot see either.
    assert envelope(world.bob.get("/templates/python"), 404) == envelope(
        world.bob.get("/templates/no-such-template"), 404
    )
    assert envelope(
        world.bob.get("/templates", params={"organization": world.default_org["id"]}), 404
    ) == envelope(world.bob.get("/templates", params={"organization": str(uuid.uuid4())}), 404)

    # Other users are as invisible as users that do not exist.
    assert envelope(world.bob.get("/users/alice"), 404) == envelope(
        world.bob.get("/users/nobody"), 404
    )
    assert [u["username"] for u in json_list(world.bob.get("/users"))] == ["bob"]
    # The template is still there.
    assert ok(world.admin.get(f"/templates/{python_id}"))["name"] == "python"


def test_a_template_in_another_organization_is_invisible_to_members_of_the_default_one(
    world: World,
) -> None:
    pushed = ok(
        world.admin.post(
            "/templates", json={"files": template_files("bobs"), "organization": "other"}
        ),
        201,
    )
    template_id = pushed["template"]["id"]
    assert pushed["template"]["organization_id"] == world.other_org["id"]
    assert "bobs" in _template_ids(world.bob)
    assert ok(world.bob.get("/templates/bobs", params={"organization": "other"}))["id"] == (
        template_id
    )
    assert "bobs" not in _template_ids(world.alice)
    assert envelope(world.alice.get(f"/templates/{template_id}"), 404) == envelope(
        world.alice.get(f"/templates/{uuid.uuid4()}"), 404
    )


def test_members_cannot_touch_other_users_tokens(world: World, connect: Connect) -> None:
    nobody = envelope(world.alice.get("/users/nobody/tokens"), 404)
    assert nobody == {"message": "user not found"}
    assert envelope(world.alice.get("/users/bob/tokens"), 404) == nobody
    assert envelope(world.alice.get(f"/users/{world.users['bob']['id']}/tokens"), 404) == nobody
    for ref in ("t", world.bob_token_id):
        assert envelope(world.alice.delete(f"/users/bob/tokens/{ref}"), 404) == envelope(
            world.alice.delete(f"/users/nobody/tokens/{ref}"), 404
        )
    assert envelope(world.alice.post("/users/bob/tokens", json={"name": "mine"}), 404) == nobody
    # bob's tokens are untouched and still work.
    assert [t["name"] for t in json_list(world.admin.get("/users/bob/tokens"))] == ["t"]
    assert ok(world.bob.get("/users/me"))["username"] == "bob"
    # alice manages her own.
    mine = ok(world.alice.post("/users/me/tokens", json={"name": "second"}), 201)
    assert ok(connect(mine["token"]).get("/users/me"))["username"] == "alice"
    assert world.alice.delete("/users/alice/tokens/second").status_code == 204


def test_a_member_reads_templates_but_cannot_push_or_delete(
    world: World, database_url: str
) -> None:
    assert {"python", "python-docker"} <= set(_template_ids(world.alice))
    shown = ok(world.alice.get("/templates/python"))
    assert [p["name"] for p in shown["parameters"]] == ["repo_url"]
    assert len(json_list(world.alice.get("/templates/python/versions"))) == 1

    before = count_rows(database_url)
    templates_before = json_list(world.admin.get("/templates"))
    # A new template: members may see templates, so the refusal is Forbidden, not hidden.
    body = envelope(world.alice.post("/templates", json={"files": template_files("alices")}), 403)
    assert body["message"] == "not allowed to create this template"
    # A new version of an existing one.
    files = template_files("python")
    body = envelope(world.alice.post("/templates", json={"files": files}), 403)
    assert body["message"] == "not allowed to update this template"
    body = envelope(world.alice.delete("/templates/python"), 403)
    assert body["message"] == "not allowed to delete this template"

    assert count_rows(database_url) == before
    assert json_list(world.admin.get("/templates")) == templates_before


def test_members_cannot_create_users_or_organizations(world: World) -> None:
    users_before = json_list(world.admin.get("/users"))
    orgs_before = json_list(world.admin.get("/organizations"))
    # Not allowed looks like not found (DESIGN §4): a member cannot even see the kind.
    body = envelope(world.alice.post("/users", json={"username": "carol"}), 404)
    assert body == {"message": "user not found"}
    body = envelope(world.alice.post("/organizations", json={"name": "mine"}), 404)
    assert body == {"message": "organization not found"}
    assert json_list(world.admin.get("/users")) == users_before
    assert json_list(world.admin.get("/organizations")) == orgs_before
    envelope(world.admin.get("/users/carol"), 404)


def test_a_template_admin_pushes_and_deletes_templates(world: World) -> None:
    pushed = ok(world.tina.post("/templates", json={"files": template_files("tinas")}), 201)
    assert pushed["version"]["created_by"] == world.users["tina"]["id"]
    again = ok(world.tina.post("/templates", json={"files": template_files("tinas")}), 200)
    assert again["version"]["name"] == "v2"
    assert "tinas" in _template_ids(world.alice), "members of the organization see it"
    assert "tinas" not in _template_ids(world.bob)
    assert world.tina.delete("/templates/tinas").status_code == 204
    assert "tinas" not in _template_ids(world.admin)
    # Templates are all a template-admin administers: not users, not site config. A
    # template-admin may read users, so creating one is Forbidden rather than hidden.
    body = envelope(world.tina.post("/users", json={"username": "carol"}), 403)
    assert body["message"] == "not allowed to create this user"
    envelope(world.admin.get("/users/carol"), 404)
    envelope(world.tina.put("/config/chat-workspace-ttl", json={"value": "1h"}), 403)


def test_a_site_template_admin_manages_templates_in_every_organization(world: World) -> None:
    """The policy: "a site ``template-admin`` manages templates everywhere"."""
    pushed = ok(
        world.admin.post(
            "/templates", json={"files": template_files("bobs"), "organization": "other"}
        ),
        201,
    )
    template_id = pushed["template"]["id"]
    # tina sees it, by id and in the listing ...
    assert _template_ids(world.tina)["bobs"] == template_id
    assert ok(world.tina.get(f"/templates/{template_id}"))["name"] == "bobs"
    # ... and can push a new version of it, and find it by name in its organization.
    again = world.tina.post(
        "/templates", json={"files": template_files("bobs"), "organization": "other"}
    )
    assert ok(again, 200)["version"]["name"] == "v2"
    shown = ok(world.tina.get("/templates/bobs", params={"organization": "other"}))
    assert shown["id"] == template_id
