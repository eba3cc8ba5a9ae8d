"""Who is acting: a user with roles, or a named system actor with a narrow job.

Every request and every background loop carries an :class:`Actor`; the authorization
layer (:mod:`berth.db.authz`) decides from it what the actor may see and change.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from berth.domain.enums import Role


class SystemRole(StrEnum):
    """Named system actors (DESIGN §4), each with a narrow permission set."""

    SYSTEM = "system"
    """Bootstrap and migrations: may do anything. Never used for a request."""
    PROVISIONER = "provisioner"
    PREBUILDS_RECONCILER = "prebuilds-reconciler"
    AUTOSTOP = "autostop"
    CHAT_TOOLS = "chat-tools"
    AGENT_GATEWAY = "agent-gateway"
    """Records what connected agents report (connection, lifecycle, logs)."""
    AUTHENTICATOR = "authenticator"
    """Resolves API tokens to users before any user actor exists."""
    MESH = "mesh"
    """Keeps this replica's registry row, finds the others' and reads the mesh secret."""


PREBUILDS_USERNAME = "prebuilds"
"""The system user that owns prebuilt workspaces until a user claims one."""


@dataclass(frozen=True, slots=True)
class Actor:
    """The subject of an authorization decision."""

    user_id: uuid.UUID | None
    username: str
    roles: frozenset[Role] = frozenset()
    """Site-wide roles."""
    organizations: Mapping[uuid.UUID, frozenset[Role]] = field(default_factory=lambda: {})
    """Organizations the actor belongs to, with the roles held in each."""
    system: SystemRole | None = None

    @classmethod
    def for_system(cls, role: SystemRole) -> Actor:
        return cls(user_id=None, username=f"system:{role.value}", system=role)

    @property
    def is_site_owner(self) -> bool:
        return Role.OWNER in self.roles or self.system is SystemRole.SYSTEM

    def is_member_of(self, organization_id: uuid.UUID) -> bool:
        return organization_id in self.organizations

    def has_org_role(self, organization_id: uuid.UUID, role: Role) -> bool:
        return role in self.roles or role in self.organizations.get(organization_id, frozenset())


def as_system() -> Actor:
    return Actor.for_system(SystemRole.SYSTEM)


def as_provisioner() -> Actor:
    return Actor.for_system(SystemRole.PROVISIONER)


def as_prebuilds_reconciler() -> Actor:
    return Actor.for_system(SystemRole.PREBUILDS_RECONCILER)


def as_autostop() -> Actor:
    return Actor.for_system(SystemRole.AUTOSTOP)


def as_agent_gateway() -> Actor:
    return Actor.for_system(SystemRole.AGENT_GATEWAY)


def as_mesh() -> Actor:
    return Actor.for_system(SystemRole.MESH)


def as_authenticator() -> Actor:
    return Actor.for_system(SystemRole.AUTHENTICATOR)


def as_chat_tools() -> Actor:
    return Actor.for_system(SystemRole.CHAT_TOOLS)
