"""First start on an empty database (DESIGN §11).

Creates the default organization with its ``Everyone`` group, the system users
``prebuilds`` and ``system``, the first user ``admin`` (site owner) with an API token,
and installs the bundled example templates. Runs in one transaction that starts by
taking the site-wide bootstrap lock, so two servers starting on one Postgres create
one admin: the second waits, then finds the work done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import berth
from berth.db.engine import Database
from berth.domain.actors import PREBUILDS_USERNAME, Actor, as_system
from berth.domain.enums import Role
from berth.services.accounts import add_user, issue_token
from berth.services.templates import install_template_dir

log = logging.getLogger(__name__)

DEFAULT_ORGANIZATION = "default"
ADMIN_USERNAME = "admin"
SYSTEM_USERS = (PREBUILDS_USERNAME, "system")


@dataclass(frozen=True, slots=True)
class Bootstrapped:
    """What a first start created; ``token`` is the admin's secret."""

    token: str
    templates: list[str]


def examples_dir() -> Path | None:
    """The bundled example templates: inside the wheel, or at the repository root."""
    package = Path(berth.__file__).parent
    for candidate in (
        package / "examples" / "templates",
        package.parents[1] / "examples" / "templates",
    ):
        if candidate.is_dir():
            return candidate
    return None


async def bootstrap(db: Database, *, install_examples: bool = True) -> Bootstrapped | None:
    """Set up an empty database; ``None`` when it was set up already."""
    async with db.write(as_system()) as store:
        await store.take_bootstrap_lock()
        if await store.count_human_users() > 0:
            return None
        org = await store.insert_organization(
            name=DEFAULT_ORGANIZATION, display_name="Default", is_default=True
        )
        await store.insert_group(organization_id=org.id, name="Everyone", is_everyone=True)
        for name in SYSTEM_USERS:
            await add_user(store, username=name, organization_id=org.id, is_system=True)
        admin = await add_user(
            store,
            username=ADMIN_USERNAME,
            name="Administrator",
            roles=[Role.OWNER.value],
            organization_id=org.id,
        )
        new = await issue_token(store, admin.id, "admin-bootstrap", expires_at=None)
        installed: list[str] = []
        source = examples_dir() if install_examples else None
        if source is not None:
            # As the admin, in the same transaction: the admin pushed the examples.
            admin_store = store.acting_as(
                Actor(admin.id, admin.username, roles=frozenset({Role.OWNER}))
            )
            for folder in sorted(p for p in source.iterdir() if p.is_dir()):
                pushed = await install_template_dir(admin_store, org.id, folder)
                installed.append(pushed.template.name)
        return Bootstrapped(token=new.token, templates=installed)
