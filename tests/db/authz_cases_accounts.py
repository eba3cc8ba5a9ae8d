"""Authorization cases: accounts, templates, site config, chats."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from berth.db.engine import Database
from berth.domain.actors import as_authenticator, as_chat_tools, as_system
from berth.errors import Forbidden, NotFound
from berth.records import TemplateVersionParameter
from tests.db.authz_world import World, as_, case, denied, uid

# --- organizations ----------------------------------------------------------------------


@case("insert_organization")
async def _(db: Database, w: World) -> None:
    async with db.write(as_system()) as s:
        await denied(as_(s, w.alice).insert_organization(name="c"))
        assert (await as_(s, w.owner).insert_organization(name="c")).name == "c"


@case("get_organization_by_id", "get_organization_by_name", "list_organizations")
async def _(db: Database, w: World) -> None:
    async with db.read(as_system()) as s:
        bob = as_(s, w.bob)
        assert await bob.get_organization_by_id(w.org_a.id) is None
        assert await bob.get_organization_by_name("a") is None
        assert await bob.get_organization_by_id(w.org_b.id) == w.org_b
        assert [o.name for o in await bob.list_organizations()] == ["b"]
        assert [o.name for o in await as_(s, w.owner).list_organizations()] == ["a", "b"]


@case("get_default_organization")
async def _(db: Database, w: World) -> None:
    async with db.read(as_system()) as s:
        assert await as_(s, w.bob).get_default_organization() is None
        assert await as_(s, w.alice).get_default_organization() == w.org_a


# --- users ------------------------------------------------------------------------------


@case("insert_user", "insert_organization_member")
async def _(db: Database, w: World) -> None:
    async with db.write(as_system()) as s:
        await denied(as_(s, w.alice).insert_user(username="eve"))
        await denied(
            as_(s, w.alice).insert_organization_member(
                organization_id=w.org_a.id, user_id=w.bob_user.id
            )
        )
        eve = await as_(s, w.owner).insert_user(username="eve")
        await as_(s, w.owner).insert_organization_member(organization_id=w.org_a.id, user_id=eve.id)


@case("get_user_by_id", "get_user_by_username", "list_users")
async def _(db: Database, w: World) -> None:
    async with db.read(as_system()) as s:
        alice = as_(s, w.alice)
        assert await alice.get_user_by_id(w.bob_user.id) is None
        assert await alice.get_user_by_username("bob") is None
        assert await alice.get_user_by_username("alice") == w.alice_user
        assert [u.username for u in await alice.list_users()] == ["alice"]
        assert len(await as_(s, w.owner).list_users()) == 4


@case("count_human_users")
async def _(db: Database, w: World) -> None:
    async with db.read(as_system()) as s:
        await denied(as_(s, w.bob).count_human_users())
        assert await as_(s, as_system()).count_human_users() == 4


@case("update_user_status", "update_user_roles")
async def _(db: Database, w: World) -> None:
    async with db.write(as_system()) as s:
        alice, owner = as_(s, w.alice), as_(s, w.owner)
        await denied(alice.update_user_status(w.alice_user.id, "active"))  # not even one's own
        await denied(alice.update_user_roles(w.alice_user.id, ["owner"]))
        await denied(alice.update_user_status(w.bob_user.id, "suspended"))  # hidden: not found
        await denied(as_(s, as_chat_tools()).update_user_status(w.bob_user.id, "suspended"))
        suspended = await owner.update_user_status(w.bob_user.id, "suspended")
        assert suspended is not None
        assert suspended.status == "suspended"
        promoted = await owner.update_user_roles(w.bob_user.id, ["template-admin", "owner"])
        assert promoted is not None
        assert promoted.roles == ["owner", "template-admin"]
        assert await owner.update_user_status(uuid.uuid4(), "active") is None


@case("list_organization_members_by_user")
async def _(db: Database, w: World) -> None:
    async with db.read(as_system()) as s:
        await denied(as_(s, w.alice).list_organization_members_by_user(w.bob_user.id))
        members = await as_(s, as_authenticator()).list_organization_members_by_user(w.bob_user.id)
        assert [m.organization_id for m in members] == [w.org_b.id]


# --- groups -----------------------------------------------------------------------------


@case("insert_group", "insert_group_member", "update_group_quota_allowance")
async def _(db: Database, w: World) -> None:
    async with db.write(as_system()) as s:
        alice = as_(s, w.alice)
        await denied(alice.insert_group(organization_id=w.org_a.id, name="devs"))
        group = await as_(s, w.owner).insert_group(organization_id=w.org_a.id, name="devs")
        await denied(alice.insert_group_member(group_id=group.id, user_id=w.alice_user.id))
        await denied(alice.update_group_quota_allowance(group.id, 99))
        await as_(s, w.owner).insert_group_member(group_id=group.id, user_id=w.alice_user.id)
        updated = await as_(s, w.owner).update_group_quota_allowance(group.id, 5)
        assert updated is not None
        assert updated.quota_allowance == 5


@case("get_everyone_group", "list_groups_by_organization")
async def _(db: Database, w: World) -> None:
    async with db.read(as_system()) as s:
        bob = as_(s, w.bob)
        assert await bob.get_everyone_group(w.org_a.id) is None
        assert await bob.list_groups_by_organization(w.org_a.id) == []
        assert (await as_(s, w.alice).get_everyone_group(w.org_a.id)) is not None
        assert len(await as_(s, w.alice).list_groups_by_organization(w.org_a.id)) == 1


# --- API keys ---------------------------------------------------------------------------


@case("insert_api_key")
async def _(db: Database, w: World) -> None:
    async with db.write(as_system()) as s:
        kw: dict[str, Any] = {"name": "x", "hashed_secret": b"y" * 32, "scopes": ["all"]}
        await denied(as_(s, w.bob).insert_api_key(key_id="k2", user_id=w.alice_user.id, **kw))
        await as_(s, w.alice).insert_api_key(key_id="k2", user_id=w.alice_user.id, **kw)


@case("get_api_key_by_id", "list_api_keys_by_user")
async def _(db: Database, w: World) -> None:
    async with db.read(as_system()) as s:
        assert await as_(s, w.bob).get_api_key_by_id(w.key_id) is None
        assert await as_(s, w.bob).list_api_keys_by_user(w.alice_user.id) == []
        assert (await as_(s, w.alice).get_api_key_by_id(w.key_id)) is not None
        assert (await as_(s, as_authenticator()).get_api_key_by_id(w.key_id)) is not None
        assert len(await as_(s, w.alice).list_api_keys_by_user(w.alice_user.id)) == 1


@case("delete_api_key", "update_api_key_last_used")
async def _(db: Database, w: World) -> None:
    async with db.write(as_system()) as s:
        await denied(as_(s, w.bob).delete_api_key(w.key_id))
        await denied(as_(s, w.bob).update_api_key_last_used(w.key_id))
        await as_(s, as_authenticator()).update_api_key_last_used(w.key_id)
        assert await as_(s, w.alice).delete_api_key(w.key_id) is True


# --- templates --------------------------------------------------------------------------


@case("insert_template")
async def _(db: Database, w: World) -> None:
    async with db.write(as_system()) as s:
        await denied(
            as_(s, w.alice).insert_template(
                organization_id=w.org_a.id, name="t", created_by=uid(w.alice)
            )
        )
        await denied(
            as_(s, w.tadmin).insert_template(
                organization_id=w.org_b.id, name="t", created_by=uid(w.tadmin)
            )
        )
        await as_(s, w.tadmin).insert_template(
            organization_id=w.org_a.id, name="t", created_by=uid(w.tadmin)
        )


@case("get_template_by_id", "get_template_by_organization_and_name", "list_templates")
async def _(db: Database, w: World) -> None:
    async with db.read(as_system()) as s:
        bob = as_(s, w.bob)
        assert await bob.get_template_by_id(w.template.id) is None
        assert await bob.get_template_by_organization_and_name(w.org_a.id, "py") is None
        assert await bob.list_templates() == []
        assert await as_(s, w.alice).get_template_by_id(w.template.id) == w.template
        assert [t.name for t in await as_(s, as_chat_tools()).list_templates()] == ["py"]


@case("update_template", "mark_template_deleted")
async def _(db: Database, w: World) -> None:
    async with db.write(as_system()) as s:
        with pytest.raises(Forbidden):
            await as_(s, w.alice).update_template(w.template.id, description="x")
        with pytest.raises(NotFound):
            await as_(s, w.bob).mark_template_deleted(w.template.id)
        await as_(s, w.tadmin).update_template(w.template.id, description="x")
        deleted = await as_(s, w.tadmin).mark_template_deleted(w.template.id)
        assert deleted is not None
        assert deleted.deleted


@case("insert_template_version", "count_template_versions", "list_template_versions")
async def _(db: Database, w: World) -> None:
    async with db.write(as_system()) as s:
        kw: dict[str, Any] = {
            "name": "v2",
            "document": {},
            "source": "",
            "readme": "",
            "has_external_agent": False,
        }
        await denied(
            as_(s, w.alice).insert_template_version(
                template_id=w.template.id, created_by=uid(w.alice), **kw
            )
        )
        await as_(s, w.tadmin).insert_template_version(
            template_id=w.template.id, created_by=uid(w.tadmin), **kw
        )
        assert await as_(s, w.bob).count_template_versions(w.template.id) == 0
        assert await as_(s, w.alice).count_template_versions(w.template.id) == 2
        assert await as_(s, w.bob).list_template_versions(w.template.id) == []
        assert len(await as_(s, w.alice).list_template_versions(w.template.id)) == 2


@case("get_template_version_by_id")
async def _(db: Database, w: World) -> None:
    async with db.read(as_system()) as s:
        assert await as_(s, w.bob).get_template_version_by_id(w.version_id) is None
        assert (await as_(s, w.alice).get_template_version_by_id(w.version_id)) is not None


@case("list_templates_by_ids", "list_template_versions_by_ids")
async def _(db: Database, w: World) -> None:
    async with db.read(as_system()) as s:
        bob, alice = as_(s, w.bob), as_(s, w.alice)
        assert await bob.list_templates_by_ids([w.template.id]) == []
        assert await alice.list_templates_by_ids([w.template.id]) == [w.template]
        assert await bob.list_template_versions_by_ids([w.version_id]) == []
        assert [v.id for v in await alice.list_template_versions_by_ids([w.version_id])] == [
            w.version_id
        ]


@case("insert_template_version_parameters", "list_template_version_parameters")
async def _(db: Database, w: World) -> None:
    row = TemplateVersionParameter(
        template_version_id=w.version_id, name="p", display_order=0, display_name="",
        description="",
        type="string", form_type="input", default_value="", required=False, mutable=False,
        ephemeral=False, options=[], validation_regex="", validation_error="",
        validation_min=None, validation_max=None, validation_monotonic="",
    )  # fmt: skip
    async with db.write(as_system()) as s:
        await denied(as_(s, w.alice).insert_template_version_parameters([row]))
        await as_(s, w.tadmin).insert_template_version_parameters([row])
        assert await as_(s, w.bob).list_template_version_parameters(w.version_id) == []
        assert [
            p.name for p in await as_(s, w.alice).list_template_version_parameters(w.version_id)
        ] == ["p"]


@case("insert_template_version_preset")
async def _(db: Database, w: World) -> None:
    kw: dict[str, Any] = {
        "name": "big",
        "description": "",
        "icon": "",
        "is_default": False,
        "desired_prebuild_instances": 1,
        "parameters": {},
    }
    async with db.write(as_system()) as s:
        await denied(
            as_(s, w.alice).insert_template_version_preset(template_version_id=w.version_id, **kw)
        )
        await as_(s, w.tadmin).insert_template_version_preset(
            template_version_id=w.version_id, **kw
        )


@case(
    "get_template_version_preset_by_id", "list_template_version_presets", "list_preset_parameters"
)
async def _(db: Database, w: World) -> None:
    async with db.read(as_system()) as s:
        bob, alice = as_(s, w.bob), as_(s, w.alice)
        assert await bob.get_template_version_preset_by_id(w.preset_id) is None
        assert await bob.list_template_version_presets(w.version_id) == []
        assert await bob.list_preset_parameters([w.preset_id]) == []
        assert (await alice.get_template_version_preset_by_id(w.preset_id)) is not None
        assert len(await alice.list_template_version_presets(w.version_id)) == 1
        assert [(p.name, p.value) for p in await alice.list_preset_parameters([w.preset_id])] == [
            ("cpus", "1")
        ]


# --- site config, workspaces ------------------------------------------------------------


@case("get_site_config", "upsert_site_config")
async def _(db: Database, w: World) -> None:
    async with db.write(as_system()) as s:
        with pytest.raises(Forbidden):
            await as_(s, w.alice).upsert_site_config("k", "v")
        await as_(s, w.owner).upsert_site_config("k", "v")
        await as_(s, w.owner).upsert_site_config("k", "w")
        assert await as_(s, w.alice).get_site_config("k") == "w"
        assert await as_(s, as_chat_tools()).get_site_config("k") == "w"
        assert await as_(s, w.owner).get_site_config("absent") is None
        await denied(as_(s, as_authenticator()).get_site_config("k"))


@case("take_bootstrap_lock")
async def _(db: Database, w: World) -> None:
    async with db.write(as_system()) as s:
        await denied(as_(s, w.owner.__class__(w.alice.user_id, "alice")).take_bootstrap_lock())
        await as_(s, as_system()).take_bootstrap_lock()


@case("count_live_workspaces_by_template")
async def _(db: Database, w: World) -> None:
    async with db.read(as_system()) as s:
        await denied(as_(s, w.bob).count_live_workspaces_by_template(w.template.id))
        assert await as_(s, w.alice).count_live_workspaces_by_template(w.template.id) == 0


# --- chats ------------------------------------------------------------------------------


@case("insert_chat", "list_chats_by_owner", "get_chat_by_owner_and_workspace")
async def _(db: Database, w: World) -> None:
    async with db.write(as_system()) as s:
        assert w.alice.user_id is not None
        assert w.bob.user_id is not None
        ws = await s.insert_workspace(
            owner_id=w.alice.user_id, organization_id=w.org_a.id, template_id=w.template.id,
            name="bound", ttl_ms=None,
        )  # fmt: skip
        chat = await s.insert_chat(owner_id=w.alice.user_id, organization_id=w.org_a.id)
        await s.update_chat_workspace_binding(
            chat.id, workspace_id=ws.id, build_id=None, agent_id=None
        )
        alice, bob = as_(s, w.alice), as_(s, w.bob)
        found = await alice.get_chat_by_owner_and_workspace(w.alice.user_id, ws.id)
        assert found is not None
        assert found.id == chat.id
        assert await bob.get_chat_by_owner_and_workspace(w.alice.user_id, ws.id) is None
        assert await alice.get_chat_by_owner_and_workspace(w.alice.user_id, uuid.uuid4()) is None
        await denied(
            as_(s, w.bob).insert_chat(owner_id=w.alice.user_id, organization_id=w.org_a.id)
        )
        await denied(as_(s, w.bob).insert_chat(owner_id=w.bob.user_id, organization_id=w.org_a.id))
        await as_(s, w.bob).insert_chat(owner_id=w.bob.user_id, organization_id=w.org_b.id)
        assert await as_(s, w.bob).list_chats_by_owner(w.alice.user_id) == []
        assert len(await as_(s, w.alice).list_chats_by_owner(w.alice.user_id)) == 2


@case("get_chat_by_id", "try_lock_chat", "release_chat_lock", "update_chat_workspace_binding")
async def _(db: Database, w: World) -> None:
    async with db.write(as_system()) as s:
        bob = as_(s, w.bob)
        assert await bob.get_chat_by_id(w.chat.id) is None
        later = db.clock.now() + dt.timedelta(seconds=30)
        await denied(bob.try_lock_chat(w.chat.id, "bob", later))
        await denied(bob.release_chat_lock(w.chat.id, "bob"))
        await denied(
            bob.update_chat_workspace_binding(
                w.chat.id, workspace_id=None, build_id=None, agent_id=None
            )
        )
        tools = as_(s, as_chat_tools())
        assert await tools.try_lock_chat(w.chat.id, "one", later)
        assert not await tools.try_lock_chat(w.chat.id, "two", later)
        await tools.release_chat_lock(w.chat.id, "one")
        assert await tools.try_lock_chat(w.chat.id, "two", later)
        ws = uuid.uuid4()
        bound = await tools.update_chat_workspace_binding(
            w.chat.id, workspace_id=ws, build_id=None, agent_id=None
        )
        assert bound is not None
        assert bound.workspace_id == ws
        assert (await as_(s, w.alice).get_chat_by_id(w.chat.id)) == bound
