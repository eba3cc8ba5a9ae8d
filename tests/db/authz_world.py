"""The world the authorization cases run in, and the registry of cases.

AuthzStore: every Store method has an authorization test, or a listed reason.

Each case runs a method once as an actor who may and once as one who may not, on a
small world of two organizations. Not-allowed must look exactly like not-found: reads
return ``None`` or leave rows out, writes raise :class:`NotFound` (or
:class:`Forbidden` when the actor may see but not change the thing).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from berth.db.authz import AuthzStore
from berth.db.engine import Database
from berth.domain.actors import Actor, as_system
from berth.domain.enums import Role
from berth.errors import Forbidden, NotFound
from berth.records import Chat, Organization, Template, User


@dataclass
class World:
    org_a: Organization
    org_b: Organization
    owner: Actor
    alice: Actor  # member of A
    bob: Actor  # member of B
    tadmin: Actor  # template-admin of A (org role)
    alice_user: User
    bob_user: User
    template: Template  # in A
    version_id: uuid.UUID
    preset_id: uuid.UUID
    chat: Chat  # alice's, in A
    key_id: str  # alice's API key


def _actor(
    user: User, orgs: dict[uuid.UUID, frozenset[Role]], roles: frozenset[Role] = frozenset()
) -> Actor:
    return Actor(user.id, user.username, roles=roles, organizations=orgs)


async def make_world(db: Database) -> World:
    async with db.write(as_system()) as s:
        a = await s.insert_organization(name="a", is_default=True)
        b = await s.insert_organization(name="b")
        for org in (a, b):
            await s.insert_group(organization_id=org.id, name="Everyone", is_everyone=True)
        root = await s.insert_user(username="root", roles=["owner"])
        alice = await s.insert_user(username="alice")
        bob = await s.insert_user(username="bob")
        tadmin = await s.insert_user(username="tadmin")
        await s.insert_organization_member(organization_id=a.id, user_id=alice.id)
        await s.insert_organization_member(organization_id=b.id, user_id=bob.id)
        await s.insert_organization_member(
            organization_id=a.id, user_id=tadmin.id, roles=["template-admin"]
        )
        tpl = await s.insert_template(organization_id=a.id, name="py", created_by=root.id)
        version = await s.insert_template_version(
            template_id=tpl.id,
            name="v1",
            document={},
            source="name: py\n",
            readme="",
            has_external_agent=False,
            created_by=root.id,
        )
        preset = await s.insert_template_version_preset(
            template_version_id=version.id,
            name="small",
            description="",
            icon="",
            is_default=True,
            desired_prebuild_instances=None,
            parameters={"cpus": "1"},
        )
        updated = await s.update_template(tpl.id, active_version_id=version.id)
        assert updated is not None
        chat = await s.insert_chat(owner_id=alice.id, organization_id=a.id)
        key = await s.insert_api_key(
            key_id="alicekey01", user_id=alice.id, name="k", hashed_secret=b"x" * 32, scopes=["all"]
        )
    member = frozenset[Role]()
    return World(
        org_a=a,
        org_b=b,
        owner=_actor(root, {a.id: member}, frozenset({Role.OWNER})),
        alice=_actor(alice, {a.id: member}),
        bob=_actor(bob, {b.id: member}),
        tadmin=_actor(tadmin, {a.id: frozenset({Role.TEMPLATE_ADMIN})}),
        alice_user=alice,
        bob_user=bob,
        template=updated,
        version_id=version.id,
        preset_id=preset.id,
        chat=chat,
        key_id=key.id,
    )


Case = Callable[[Database, World], Awaitable[None]]
CASES: dict[str, Case] = {}


def case(*methods: str) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        for m in methods:
            assert m not in CASES, m
            CASES[m] = fn
        return fn

    return register


async def denied(call: Awaitable[object]) -> None:
    with pytest.raises((NotFound, Forbidden)):
        await call


def as_(s: AuthzStore, actor: Actor) -> AuthzStore:
    return s.acting_as(actor)


def uid(actor: Actor) -> uuid.UUID:
    assert actor.user_id is not None
    return actor.user_id
