"""The authorization policy: may this actor do this action on this resource?

One pure function, :func:`is_allowed`, in the spirit of Coder's RBAC but small:

- the site ``owner`` (and the bootstrap ``system`` actor) may do anything;
- a site ``template-admin`` manages templates everywhere; an organization's
  ``template-admin`` manages that organization's templates;
- a ``member`` reads their organizations, their templates and groups, and owns their
  own user record, API keys, workspaces and chats;
- each system actor has the few permissions its loop needs, nothing else;
- the mesh secret is the ``mesh`` actor's alone, not even a site owner's;
- a password hash is read by the ``authenticator`` alone (to check a login), never by a
  person; a user sets their own password and a site owner anyone's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from berth.domain.actors import Actor, SystemRole
from berth.domain.enums import Role


class Action(StrEnum):
    READ = "read"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class Kind(StrEnum):
    ORGANIZATION = "organization"
    USER = "user"
    API_KEY = "api_key"
    GROUP = "group"
    TEMPLATE = "template"
    WORKSPACE = "workspace"
    AGENT = "workspace_agent"
    CHAT = "chat"
    SITE_CONFIG = "site_config"
    JOB = "provisioner_job"
    PROVISIONER_KEY = "provisioner_key"
    PREBUILDS = "prebuilds"
    """The prebuild pool's own state: per-preset failures."""
    LEASE = "lease"
    REPLICA = "replica"
    MESH_SECRET = "mesh_secret"  # noqa: S105 - a kind of resource
    """The secret relayed requests between replicas are signed with: the mesh's alone."""
    PASSWORD = "password"  # noqa: S105 - a kind of resource
    """A user's web UI password hash (``owner_id``: the user)."""
    WEB_SESSION = "web_session"
    """A web UI login session (``owner_id``: its user)."""


@dataclass(frozen=True, slots=True)
class Resource:
    """What an action touches: its kind, and the organization and owner it belongs to."""

    kind: Kind
    organization_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None


_ALL = frozenset(Action)
_READ = frozenset({Action.READ})

_SYSTEM_PERMISSIONS: dict[SystemRole, dict[Kind, frozenset[Action]]] = {
    SystemRole.AGENT_GATEWAY: {
        Kind.AGENT: frozenset({Action.READ, Action.UPDATE}),
        Kind.WORKSPACE: frozenset({Action.READ, Action.UPDATE}),
        Kind.JOB: _READ,
        Kind.USER: _READ,
        Kind.TEMPLATE: _READ,
    },
    SystemRole.CHAT_TOOLS: {
        Kind.AGENT: _READ,
        Kind.CHAT: frozenset({Action.READ, Action.UPDATE}),
        Kind.WORKSPACE: _READ,
        Kind.JOB: _READ,
        Kind.TEMPLATE: _READ,
        Kind.SITE_CONFIG: _READ,
        Kind.USER: _READ,
        Kind.ORGANIZATION: _READ,
        Kind.GROUP: _READ,
    },
    SystemRole.PROVISIONER: {
        Kind.JOB: _ALL,
        Kind.AGENT: _ALL,
        Kind.WORKSPACE: frozenset({Action.READ, Action.UPDATE}),
        Kind.TEMPLATE: _READ,
        Kind.USER: _READ,
        Kind.ORGANIZATION: _READ,
        Kind.GROUP: _READ,
        Kind.PROVISIONER_KEY: _READ,
    },
    SystemRole.PREBUILDS_RECONCILER: {
        # Builds and deletes prebuilds; in a claim, completes the claim's job, hands the
        # prebuild's resources to it and re-personalizes its agents.
        Kind.WORKSPACE: _ALL,
        Kind.AGENT: frozenset({Action.READ, Action.UPDATE}),
        Kind.JOB: frozenset({Action.READ, Action.CREATE, Action.UPDATE}),
        Kind.TEMPLATE: _READ,
        Kind.USER: _READ,
        Kind.ORGANIZATION: _READ,
        Kind.SITE_CONFIG: _READ,
        Kind.PREBUILDS: _ALL,
        Kind.LEASE: _ALL,
    },
    SystemRole.AUTHENTICATOR: {
        Kind.API_KEY: frozenset({Action.READ, Action.UPDATE}),
        Kind.PASSWORD: _READ,
        Kind.WEB_SESSION: _ALL,
        Kind.AGENT: _READ,
        Kind.USER: _READ,
    },
    SystemRole.MESH: {
        Kind.REPLICA: _ALL,
        Kind.MESH_SECRET: frozenset({Action.READ, Action.CREATE}),
        Kind.AGENT: _READ,
    },
    SystemRole.AUTOSTOP: {
        Kind.WORKSPACE: frozenset({Action.READ, Action.UPDATE}),
        Kind.JOB: frozenset({Action.READ, Action.CREATE}),
        Kind.TEMPLATE: _READ,
        Kind.USER: _READ,
    },
}


def is_allowed(actor: Actor, action: Action, resource: Resource) -> bool:
    """Whether ``actor`` may perform ``action`` on ``resource``."""
    if resource.kind is Kind.MESH_SECRET:  # never a person's, not even a site owner's
        return actor.system is SystemRole.MESH
    if resource.kind is Kind.PASSWORD and action is Action.READ:  # only to check a login
        return actor.system is SystemRole.AUTHENTICATOR
    if actor.is_site_owner:
        return True
    if actor.system is not None:
        return action in _SYSTEM_PERMISSIONS.get(actor.system, {}).get(resource.kind, frozenset())
    return _user_allowed(actor, action, resource)


def _user_allowed(actor: Actor, action: Action, resource: Resource) -> bool:
    org = resource.organization_id
    own = resource.owner_id is not None and resource.owner_id == actor.user_id
    member = org is not None and actor.is_member_of(org)
    match resource.kind:
        case Kind.ORGANIZATION:
            # Site template-admins manage templates everywhere, so they must be able
            # to name every organization.
            return action is Action.READ and (member or Role.TEMPLATE_ADMIN in actor.roles)
        case Kind.GROUP:
            return action is Action.READ and member
        case Kind.TEMPLATE:
            if org is not None and actor.has_org_role(org, Role.TEMPLATE_ADMIN):
                return True
            return action is Action.READ and member
        case Kind.USER:
            if action is Action.READ:
                return own or Role.TEMPLATE_ADMIN in actor.roles
            return False
        case Kind.API_KEY:
            return own
        case Kind.PASSWORD:
            return action in (Action.CREATE, Action.UPDATE) and own
        case Kind.WEB_SESSION:
            return action in (Action.READ, Action.UPDATE) and own
        case Kind.WORKSPACE | Kind.CHAT:
            return own and (org is None or member)
        case Kind.AGENT:
            return action is Action.READ and own and (org is None or member)
        case Kind.SITE_CONFIG:
            return action is Action.READ
        case Kind.JOB:
            return action in (Action.READ, Action.CREATE) and own and (org is None or member)
        case Kind.PROVISIONER_KEY | Kind.PREBUILDS | Kind.LEASE | Kind.REPLICA | Kind.MESH_SECRET:
            return False
