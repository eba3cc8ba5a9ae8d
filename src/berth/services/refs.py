"""Refs to records: what an edge (an API route, a page) does once with a user's words.

People name things — ``me``, a username, a template name in an organization, a
workspace as ``name`` or ``owner/name`` — and the services take ids and records. Each
function here turns one kind of ref into its record, as the context's actor sees it: a
thing the actor may not see is :class:`~berth.errors.NotFound`, like a missing one.
"""

from __future__ import annotations

import uuid

from berth.db.authz import AuthzStore, not_found
from berth.db.policy import Kind
from berth.errors import Conflict, InvalidInput, Validation
from berth.records import Chat, Organization, Template, User, Workspace
from berth.services.base import Ctx, parse_uuid


async def organization(ctx: Ctx, ref: str | None) -> Organization:
    """By id or name; the default organization when ``ref`` is empty."""
    async with ctx.read() as store:
        return await organization_in(store, ref)


async def user(ctx: Ctx, ref: str) -> User:
    """By ``me`` (the actor), id or username."""
    async with ctx.read() as store:
        return await user_in(store, ref)


async def template(ctx: Ctx, ref: str, organization: str | None = None) -> Template:
    """A live template by id, or by name in ``organization`` (default organization)."""
    async with ctx.read() as store:
        return await template_in(store, ref, organization)


async def workspace(ctx: Ctx, ref: str) -> Workspace:
    """A live workspace by id, ``name`` (the actor's) or ``owner/name``."""
    async with ctx.read() as store:
        found: Workspace | None
        if (workspace_id := parse_uuid(ref)) is not None:
            found = await store.get_workspace_by_id(workspace_id)
        else:
            owner_ref, _, name = ref.rpartition("/")
            owner = await user_in(store, owner_ref or "me")
            found = await store.get_workspace_by_owner_and_name(owner.id, name)
    if found is None or found.deleted:
        raise not_found(Kind.WORKSPACE)
    return found


async def chat(ctx: Ctx, ref: str | uuid.UUID) -> Chat:
    """By id."""
    chat_id = ref if isinstance(ref, uuid.UUID) else parse_uuid(ref)
    async with ctx.read() as store:
        found = None if chat_id is None else await store.get_chat_by_id(chat_id)
    if found is None:
        raise not_found(Kind.CHAT)
    return found


def preset_id(value: str | None) -> uuid.UUID | None:
    """A preset id as given to a create; a malformed one is the same error as a foreign one."""
    if not value:
        return None
    parsed = parse_uuid(value)
    if parsed is None:
        raise invalid_preset()
    return parsed


def invalid_preset() -> InvalidInput:
    return InvalidInput(
        "Invalid preset.",
        validations=[Validation("preset_id", "not a preset of the template's active version")],
    )


def name_taken(name: str) -> Conflict:
    """The error for a workspace name the owner already uses (the chat tools retry with
    a generated name on it)."""
    return Conflict(
        f"Workspace {name!r} already exists.",
        validations=[Validation("name", f"a workspace named {name!r} already exists")],
    )


# --- inside a transaction the caller holds ----------------------------------------------


async def organization_in(store: AuthzStore, ref: str | None) -> Organization:
    if not ref:
        org = await store.get_default_organization()
    elif (org_id := parse_uuid(ref)) is not None:
        org = await store.get_organization_by_id(org_id)
    else:
        org = await store.get_organization_by_name(ref)
    if org is None:
        raise not_found(Kind.ORGANIZATION)
    return org


async def user_in(store: AuthzStore, ref: str) -> User:
    if ref == "me":
        found = await store.get_user_by_id(store.actor.user_id) if store.actor.user_id else None
    elif (user_id := parse_uuid(ref)) is not None:
        found = await store.get_user_by_id(user_id)
    else:
        found = await store.get_user_by_username(ref)
    if found is None:
        raise not_found(Kind.USER)
    return found


async def template_in(store: AuthzStore, ref: str, organization: str | None) -> Template:
    template_id = parse_uuid(ref)
    if template_id is not None:
        found = await store.get_template_by_id(template_id)
    else:
        org = await organization_in(store, organization)
        found = await store.get_template_by_organization_and_name(org.id, ref)
    if found is None or found.deleted:
        raise not_found(Kind.TEMPLATE)
    return found


async def live_workspace_in(store: AuthzStore, workspace_id: uuid.UUID) -> Workspace:
    """The workspace by id, unless it is deleted (then, like a missing one, NotFound)."""
    found = await store.get_workspace_by_id(workspace_id)
    if found is None or found.deleted:
        raise not_found(Kind.WORKSPACE)
    return found
