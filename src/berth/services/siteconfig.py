"""Site-wide settings an administrator sets: the chat workspace TTL and allowlist.

Keys are named as on the CLI (``chat-workspace-ttl``) and stored under the data-model
names (``chat_workspace_ttl``). Values are validated and stored in canonical form.
"""

from __future__ import annotations

import uuid

from berth.db.authz import AuthzStore
from berth.domain.actors import as_chat_tools
from berth.domain.ttl import validate_chat_workspace_ttl
from berth.errors import InvalidInput, NotFound, Validation
from berth.services.base import Ctx, parse_uuid

CHAT_WORKSPACE_TTL = "chat-workspace-ttl"
CHAT_TEMPLATE_ALLOWLIST = "chat-template-allowlist"
KEYS = {
    CHAT_WORKSPACE_TTL: "chat_workspace_ttl",
    CHAT_TEMPLATE_ALLOWLIST: "chat_template_allowlist",
}
DEFAULTS = {CHAT_WORKSPACE_TTL: "0s", CHAT_TEMPLATE_ALLOWLIST: ""}


def _storage_key(key: str) -> str:
    try:
        return KEYS[key]
    except KeyError:
        raise NotFound(
            f"Unknown setting {key!r}.", detail=f"Known settings: {', '.join(sorted(KEYS))}."
        ) from None


async def _canonical_allowlist(store: AuthzStore, raw: str) -> str:
    ids: list[str] = []
    problems: list[Validation] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        template_id = parse_uuid(item)
        template = None if template_id is None else await store.get_template_by_id(template_id)
        if template is None or template.deleted:
            problems.append(Validation("value", f"{item!r} is not the id of a template"))
        elif str(template.id) not in ids:
            ids.append(str(template.id))
    if problems:
        raise InvalidInput("Invalid chat template allowlist.", validations=problems)
    return ",".join(ids)


async def get_config(ctx: Ctx, key: str) -> str:
    storage = _storage_key(key)
    async with ctx.read() as store:
        value = await store.get_site_config(storage)
    return DEFAULTS[key] if value is None else value


async def set_config(ctx: Ctx, key: str, value: str) -> str:
    storage = _storage_key(key)
    async with ctx.write() as store:
        if key == CHAT_WORKSPACE_TTL:
            canonical = validate_chat_workspace_ttl(value)
        else:
            canonical = await _canonical_allowlist(store, value)
        await store.upsert_site_config(storage, canonical)
    return canonical


def parse_allowlist(raw: str | None) -> frozenset[uuid.UUID]:
    """The allowlist as ids; empty means every template is allowed."""
    return frozenset(
        u for part in (raw or "").split(",") if (u := parse_uuid(part.strip())) is not None
    )


async def chat_template_allowlist(ctx: Ctx) -> frozenset[uuid.UUID]:
    """The chat template allowlist, read as the chat tools; empty allows every template."""
    async with ctx.db.read(as_chat_tools()) as store:
        return parse_allowlist(await store.get_site_config(KEYS[CHAT_TEMPLATE_ALLOWLIST]))
