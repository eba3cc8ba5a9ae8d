"""The tables of DESIGN §3, as SQLAlchemy Core metadata (the single source for migrations).

Names follow Coder's model in snake_case plurals. IDs are UUIDv4, times are UTC.
Uniqueness that only holds among live rows (template and workspace names) is a
partial unique index, which both SQLite and Postgres support.
"""

from __future__ import annotations

import sqlalchemy as sa

from berth.db.types import BigIntPK, JSONType, UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _id() -> sa.Column[object]:
    return sa.Column("id", sa.Uuid(), primary_key=True)


def _fk(
    name: str, target: str, *, nullable: bool = False, ondelete: str | None = None
) -> sa.Column[object]:
    return sa.Column(name, sa.Uuid(), sa.ForeignKey(target, ondelete=ondelete), nullable=nullable)


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    ]


_not_deleted = sa.text("deleted = false")

# --- accounts -------------------------------------------------------------------------

organizations = sa.Table(
    "organizations",
    metadata,
    _id(),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(128), nullable=False, server_default=""),
    sa.Column("description", sa.Text(), nullable=False, server_default=""),
    sa.Column("is_default", sa.Boolean(), nullable=False, server_default=sa.false()),
    *_timestamps(),
)

users = sa.Table(
    "users",
    metadata,
    _id(),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("email", sa.String(320), nullable=False, server_default=""),
    sa.Column("name", sa.String(128), nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("roles", JSONType, nullable=False),
    sa.Column("is_system", sa.Boolean(), nullable=False, server_default=sa.false()),
    *_timestamps(),
    sa.Index("ix_users_username_lower", sa.func.lower(sa.column("username")), unique=True),
)

organization_members = sa.Table(
    "organization_members",
    metadata,
    _fk("organization_id", "organizations.id", ondelete="CASCADE"),
    _fk("user_id", "users.id", ondelete="CASCADE"),
    sa.Column("roles", JSONType, nullable=False),
    *_timestamps(),
    sa.PrimaryKeyConstraint("organization_id", "user_id"),
)

groups = sa.Table(
    "groups",
    metadata,
    _id(),
    _fk("organization_id", "organizations.id", ondelete="CASCADE"),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("quota_allowance", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("is_everyone", sa.Boolean(), nullable=False, server_default=sa.false()),
    *_timestamps(),
    sa.UniqueConstraint("organization_id", "name"),
)

group_members = sa.Table(
    "group_members",
    metadata,
    _fk("group_id", "groups.id", ondelete="CASCADE"),
    _fk("user_id", "users.id", ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("group_id", "user_id"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    _fk("user_id", "users.id", ondelete="CASCADE"),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("hashed_secret", sa.LargeBinary(32), nullable=False),
    sa.Column("scopes", JSONType, nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("last_used_at", UTCDateTime(), nullable=True),
    *_timestamps(),
    sa.UniqueConstraint("user_id", "name"),
)

# --- templates ------------------------------------------------------------------------

templates = sa.Table(
    "templates",
    metadata,
    _id(),
    _fk("organization_id", "organizations.id"),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("display_name", sa.String(128), nullable=False, server_default=""),
    sa.Column("description", sa.Text(), nullable=False, server_default=""),
    sa.Column("icon", sa.String(256), nullable=False, server_default=""),
    sa.Column("active_version_id", sa.Uuid(), nullable=True),
    sa.Column("deprecated", sa.Text(), nullable=False, server_default=""),
    sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("default_ttl_ms", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("daily_cost", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("require_active_version", sa.Boolean(), nullable=False, server_default=sa.false()),
    _fk("created_by", "users.id"),
    *_timestamps(),
    sa.Index(
        "ix_templates_org_name_live",
        "organization_id",
        sa.func.lower(sa.column("name")),
        unique=True,
        sqlite_where=_not_deleted,
        postgresql_where=_not_deleted,
    ),
)

template_versions = sa.Table(
    "template_versions",
    metadata,
    _id(),
    _fk("template_id", "templates.id", ondelete="CASCADE"),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("document", JSONType, nullable=False),
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("readme", sa.Text(), nullable=False, server_default=""),
    sa.Column("has_external_agent", sa.Boolean(), nullable=False, server_default=sa.false()),
    _fk("created_by", "users.id"),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_template_versions_template_id", "template_id"),
)

template_version_parameters = sa.Table(
    "template_version_parameters",
    metadata,
    _fk("template_version_id", "template_versions.id", ondelete="CASCADE"),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("display_order", sa.Integer(), nullable=False),
    sa.Column("display_name", sa.String(128), nullable=False, server_default=""),
    sa.Column("description", sa.Text(), nullable=False, server_default=""),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("form_type", sa.String(32), nullable=False, server_default=""),
    sa.Column("default_value", sa.Text(), nullable=False, server_default=""),
    sa.Column("required", sa.Boolean(), nullable=False),
    sa.Column("mutable", sa.Boolean(), nullable=False),
    sa.Column("ephemeral", sa.Boolean(), nullable=False),
    sa.Column("options", JSONType, nullable=False),
    sa.Column("validation_regex", sa.Text(), nullable=False, server_default=""),
    sa.Column("validation_error", sa.Text(), nullable=False, server_default=""),
    sa.Column("validation_min", sa.Float(), nullable=True),
    sa.Column("validation_max", sa.Float(), nullable=True),
    sa.Column("validation_monotonic", sa.String(16), nullable=False, server_default=""),
    sa.PrimaryKeyConstraint("template_version_id", "name"),
)

template_version_presets = sa.Table(
    "template_version_presets",
    metadata,
    _id(),
    _fk("template_version_id", "template_versions.id", ondelete="CASCADE"),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("description", sa.Text(), nullable=False, server_default=""),
    sa.Column("icon", sa.String(256), nullable=False, server_default=""),
    sa.Column("is_default", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("desired_prebuild_instances", sa.Integer(), nullable=True),
    sa.UniqueConstraint("template_version_id", "name"),
)

template_version_preset_parameters = sa.Table(
    "template_version_preset_parameters",
    metadata,
    _fk("preset_id", "template_version_presets.id", ondelete="CASCADE"),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("value", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("preset_id", "name"),
)

# --- workspaces, builds, agents -------------------------------------------------------

workspaces = sa.Table(
    "workspaces",
    metadata,
    _id(),
    _fk("owner_id", "users.id"),
    _fk("organization_id", "organizations.id"),
    _fk("template_id", "templates.id"),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("ttl_ms", sa.BigInteger(), nullable=True),
    sa.Column("deadline", UTCDateTime(), nullable=True),
    sa.Column("last_used_at", UTCDateTime(), nullable=True),
    *_timestamps(),
    # Where its resources live (host affinity, DESIGN §6): set by its first build's
    # worker; its later builds run only on workers serving that place.
    sa.Column("place", sa.String(128), nullable=True),
    sa.Column("place_label", sa.String(512), nullable=True),
    sa.Index(
        "ix_workspaces_owner_name_live",
        "owner_id",
        sa.func.lower(sa.column("name")),
        unique=True,
        sqlite_where=_not_deleted,
        postgresql_where=_not_deleted,
    ),
)

provisioner_jobs = sa.Table(
    "provisioner_jobs",
    metadata,
    _id(),
    sa.Column("type", sa.String(32), nullable=False),
    _fk("organization_id", "organizations.id"),
    _fk("initiator_id", "users.id"),
    sa.Column("input", JSONType, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("worker_id", sa.String(128), nullable=True),
    sa.Column("priority", sa.Integer(), nullable=False, server_default="0"),
    *_timestamps(),
    sa.Column("started_at", UTCDateTime(), nullable=True),
    sa.Column("heartbeat_at", UTCDateTime(), nullable=True),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
    sa.Column("canceled_at", UTCDateTime(), nullable=True),
    # The place (``workspaces.place``) a worker must serve to take this job; null: any.
    sa.Column("required_place", sa.String(128), nullable=True),
    sa.Index("ix_provisioner_jobs_status_priority", "status", "priority", "created_at"),
)

provisioner_job_logs = sa.Table(
    "provisioner_job_logs",
    metadata,
    sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
    _fk("job_id", "provisioner_jobs.id", ondelete="CASCADE"),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("stage", sa.String(64), nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("output", sa.Text(), nullable=False),
    sa.Index("ix_provisioner_job_logs_job_id", "job_id", "id"),
)

workspace_builds = sa.Table(
    "workspace_builds",
    metadata,
    _id(),
    _fk("workspace_id", "workspaces.id", ondelete="CASCADE"),
    sa.Column("build_number", sa.Integer(), nullable=False),
    sa.Column("transition", sa.String(16), nullable=False),
    _fk("template_version_id", "template_versions.id"),
    sa.Column("preset_id", sa.Uuid(), nullable=True),
    _fk("initiator_id", "users.id"),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("daily_cost", sa.Integer(), nullable=False, server_default="0"),
    _fk("job_id", "provisioner_jobs.id"),
    sa.Column("rendered", JSONType, nullable=True),
    *_timestamps(),
    sa.UniqueConstraint("workspace_id", "build_number"),
)

workspace_build_parameters = sa.Table(
    "workspace_build_parameters",
    metadata,
    _fk("build_id", "workspace_builds.id", ondelete="CASCADE"),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("value", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("build_id", "name"),
)

workspace_resources = sa.Table(
    "workspace_resources",
    metadata,
    _id(),
    _fk("job_id", "provisioner_jobs.id", ondelete="CASCADE"),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("handle", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

workspace_agents = sa.Table(
    "workspace_agents",
    metadata,
    _id(),
    _fk("resource_id", "workspace_resources.id", ondelete="CASCADE"),
    sa.Column("parent_id", sa.Uuid(), nullable=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("display_order", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("chat", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("external", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("directory", sa.Text(), nullable=False, server_default=""),
    sa.Column("env", JSONType, nullable=False),
    sa.Column("auth_token_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("connection_timeout_seconds", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("first_connected_at", UTCDateTime(), nullable=True),
    sa.Column("last_connected_at", UTCDateTime(), nullable=True),
    sa.Column("disconnected_at", UTCDateTime(), nullable=True),
    sa.Column("last_connected_replica_id", sa.Uuid(), nullable=True),
    sa.Column("lifecycle_state", sa.String(32), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=True),
    sa.Column("ready_at", UTCDateTime(), nullable=True),
    sa.Column("claimed_at", UTCDateTime(), nullable=True),
    *_timestamps(),
    sa.Index("ix_workspace_agents_auth_token_hash", "auth_token_hash", unique=True),
)

workspace_agent_scripts = sa.Table(
    "workspace_agent_scripts",
    metadata,
    _id(),
    _fk("agent_id", "workspace_agents.id", ondelete="CASCADE"),
    sa.Column("display_name", sa.String(128), nullable=False),
    sa.Column("script", sa.Text(), nullable=False),
    sa.Column("run_on", sa.String(16), nullable=False),
    sa.Column("blocks_login", sa.Boolean(), nullable=False),
    sa.Column("timeout_seconds", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("display_order", sa.Integer(), nullable=False),
)

workspace_agent_logs = sa.Table(
    "workspace_agent_logs",
    metadata,
    sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
    _fk("agent_id", "workspace_agents.id", ondelete="CASCADE"),
    sa.Column("script_id", sa.Uuid(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("output", sa.Text(), nullable=False),
    sa.Index("ix_workspace_agent_logs_agent_id", "agent_id", "id"),
)

# --- chats, site, replicas ------------------------------------------------------------

chats = sa.Table(
    "chats",
    metadata,
    _id(),
    _fk("owner_id", "users.id"),
    _fk("organization_id", "organizations.id"),
    sa.Column("title", sa.String(256), nullable=False, server_default=""),
    sa.Column("workspace_id", sa.Uuid(), nullable=True),
    sa.Column("build_id", sa.Uuid(), nullable=True),
    sa.Column("agent_id", sa.Uuid(), nullable=True),
    sa.Column("lock_holder", sa.String(64), nullable=True),
    sa.Column("lock_expires_at", UTCDateTime(), nullable=True),
    *_timestamps(),
)

site_config = sa.Table(
    "site_config",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
)

replicas = sa.Table(
    "replicas",
    metadata,
    _id(),
    sa.Column("hostname", sa.String(256), nullable=False),
    sa.Column("relay_url", sa.String(2048), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
)

# --- prebuilds --------------------------------------------------------------------------

prebuild_failures = sa.Table(
    "prebuild_failures",
    metadata,
    sa.Column(
        "preset_id",
        sa.Uuid(),
        sa.ForeignKey("template_version_presets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("count", sa.Integer(), nullable=False),
    sa.Column("last_error", sa.Text(), nullable=False, server_default=""),
    sa.Column("last_failed_at", UTCDateTime(), nullable=True),
)

provisioner_keys = sa.Table(
    "provisioner_keys",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    _fk("organization_id", "organizations.id", ondelete="CASCADE"),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("hashed_secret", sa.LargeBinary(32), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("organization_id", "name"),
)

# --- the web UI's passwords and sessions ------------------------------------------------

user_passwords = sa.Table(
    "user_passwords",
    metadata,
    # A table of its own, not a users column: no query that reads users ever carries a
    # hash, and only the authenticator may read this one (berth.db.policy).
    _fk("user_id", "users.id", ondelete="CASCADE"),
    sa.Column("hash", sa.String(256), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("user_id"),
)

web_sessions = sa.Table(
    "web_sessions",
    metadata,
    # The SHA-256 of the cookie's random id: a read of this table logs no one in.
    sa.Column("id_hash", sa.LargeBinary(32), primary_key=True),
    _fk("user_id", "users.id", ondelete="CASCADE"),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sa.Index("ix_web_sessions_user_id", "user_id"),
)
