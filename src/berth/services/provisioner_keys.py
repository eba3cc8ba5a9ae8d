"""Provisioner keys: the credential of a standalone ``berth provisioner`` (DESIGN §1, §4).

Keys look like ``berthprov_<id>_<secret>``, API tokens with their own prefix: the id
finds the row, the secret is stored only as its SHA-256 (192 random bits) and compared
in constant time, and the full key is shown once, when it is created. Only the site
owner creates, lists and deletes them.

A key belongs to one organization. It authenticates only the provisioner job
endpoints, as the ``provisioner`` system actor, and only for its organization's jobs;
a user token is refused there and a provisioner key everywhere else (the prefixes
differ, so neither ever parses as the other).
"""

from __future__ import annotations

from dataclasses import dataclass

from berth.db.authz import not_found
from berth.db.dialects import is_unique_violation
from berth.db.engine import Database
from berth.db.policy import Kind
from berth.domain import credentials
from berth.domain.actors import as_provisioner
from berth.domain.names import name_error
from berth.errors import Conflict, InvalidInput, Unauthenticated, Validation
from berth.records import ProvisionerKey
from berth.services.base import Ctx
from berth.services.refs import organization_in

KEY_PREFIX = "berthprov"


@dataclass(frozen=True, slots=True)
class NewProvisionerKey:
    """A freshly created provisioner key and its secret, which is never readable again."""

    record: ProvisionerKey
    key: str


async def authenticate_key(db: Database, key: str) -> ProvisionerKey:
    """The provisioner key a bearer credential is; :class:`Unauthenticated` otherwise."""
    parts = credentials.split(key, KEY_PREFIX)
    if parts is None:
        raise Unauthenticated(
            "Invalid provisioner key.",
            detail="These endpoints take a provisioner key (berthprov_…), not an API token.",
        )
    key_id, secret = parts
    async with db.read(as_provisioner()) as store:
        record = await store.get_provisioner_key_by_id(key_id)
    if record is None or not credentials.secret_matches(record.hashed_secret, secret):
        raise Unauthenticated("Invalid provisioner key.")
    return record


async def create_key(ctx: Ctx, name: str, organization: str | None = None) -> NewProvisionerKey:
    name = name.strip()
    if problem := name_error(name):
        raise InvalidInput(
            "Invalid provisioner key name.", validations=[Validation("name", problem)]
        )
    minted = credentials.mint(KEY_PREFIX)
    async with ctx.write() as store:
        org = await organization_in(store, organization)
        try:
            record = await store.insert_provisioner_key(
                key_id=minted.id, organization_id=org.id, name=name, hashed_secret=minted.hashed
            )
        except Exception as exc:
            if is_unique_violation(exc):
                raise Conflict(
                    f"A provisioner key named {name!r} already exists in {org.name!r}.",
                    validations=[Validation("name", "already exists")],
                ) from exc
            raise
    return NewProvisionerKey(record=record, key=minted.value)


async def list_keys(ctx: Ctx, organization: str | None = None) -> list[ProvisionerKey]:
    """Every key the actor may see; only ``organization``'s when it is given."""
    async with ctx.read() as store:
        org_id = (await organization_in(store, organization)).id if organization else None
        return await store.list_provisioner_keys(organization_id=org_id)


async def delete_key(ctx: Ctx, ref: str, organization: str | None = None) -> ProvisionerKey:
    """Delete a key by id or name; a name used in several organizations needs ``organization``."""
    async with ctx.write() as store:
        org_id = (await organization_in(store, organization)).id if organization else None
        keys = await store.list_provisioner_keys(organization_id=org_id)
        found = [k for k in keys if k.id == ref] or [k for k in keys if k.name == ref]
        if not found:
            raise not_found(Kind.PROVISIONER_KEY)
        if len(found) > 1:
            raise Conflict(
                f"Several organizations have a provisioner key named {ref!r}.",
                detail="Name the organization, or delete the key by its id.",
            )
        await store.delete_provisioner_key(found[0].id)
        return found[0]
