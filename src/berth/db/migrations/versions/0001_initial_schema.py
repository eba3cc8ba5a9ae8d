"""initial schema

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import berth.db.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "organizations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=128), server_default="", nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("name", name=op.f("uq_organizations_name")),
    )
    op.create_table(
        "replicas",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hostname", sa.String(length=256), nullable=False),
        sa.Column("relay_address", sa.String(length=256), nullable=False),
        sa.Column("started_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replicas")),
    )
    op.create_table(
        "site_config",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_site_config")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), server_default="", nullable=False),
        sa.Column("name", sa.String(length=128), server_default="", nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "roles",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("is_system", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("hashed_secret", sa.LargeBinary(length=32), nullable=False),
        sa.Column(
            "scopes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("expires_at", berth.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", berth.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_keys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("user_id", "name", name=op.f("uq_api_keys_user_id_name")),
    )
    op.create_table(
        "chats",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=256), server_default="", nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=True),
        sa.Column("build_id", sa.Uuid(), nullable=True),
        sa.Column("agent_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_chats_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_chats_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chats")),
    )
    op.create_table(
        "groups",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("quota_allowance", sa.Integer(), server_default="0", nullable=False),
        sa.Column("is_everyone", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_groups_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
        sa.UniqueConstraint("organization_id", "name", name=op.f("uq_groups_organization_id_name")),
    )
    op.create_table(
        "organization_members",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "roles",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_organization_members_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_organization_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "user_id", name=op.f("pk_organization_members")),
    )
    op.create_table(
        "provisioner_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("initiator_id", sa.Uuid(), nullable=False),
        sa.Column(
            "input",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("worker_id", sa.String(length=128), nullable=True),
        sa.Column("priority", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", berth.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", berth.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", berth.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("canceled_at", berth.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["initiator_id"], ["users.id"], name=op.f("fk_provisioner_jobs_initiator_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_provisioner_jobs_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provisioner_jobs")),
    )
    with op.batch_alter_table("provisioner_jobs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_provisioner_jobs_status_priority",
            ["status", "priority", "created_at"],
            unique=False,
        )

    op.create_table(
        "provisioner_keys",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("hashed_secret", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_provisioner_keys_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provisioner_keys")),
        sa.UniqueConstraint(
            "organization_id", "name", name=op.f("uq_provisioner_keys_organization_id_name")
        ),
    )
    op.create_table(
        "templates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=128), server_default="", nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("icon", sa.String(length=256), server_default="", nullable=False),
        sa.Column("active_version_id", sa.Uuid(), nullable=True),
        sa.Column("deprecated", sa.Text(), server_default="", nullable=False),
        sa.Column("deleted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("default_ttl_ms", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("daily_cost", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "require_active_version", sa.Boolean(), server_default=sa.false(), nullable=False
        ),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_templates_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_templates_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_templates")),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name=op.f("fk_group_members_group_id_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_group_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "user_id", name=op.f("pk_group_members")),
    )
    op.create_table(
        "provisioner_job_logs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("stage", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["provisioner_jobs.id"],
            name=op.f("fk_provisioner_job_logs_job_id_provisioner_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provisioner_job_logs")),
    )
    with op.batch_alter_table("provisioner_job_logs", schema=None) as batch_op:
        batch_op.create_index("ix_provisioner_job_logs_job_id", ["job_id", "id"], unique=False)

    op.create_table(
        "template_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("template_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column(
            "document",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("readme", sa.Text(), server_default="", nullable=False),
        sa.Column("has_external_agent", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_template_versions_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_template_versions_template_id_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_versions")),
    )
    with op.batch_alter_table("template_versions", schema=None) as batch_op:
        batch_op.create_index("ix_template_versions_template_id", ["template_id"], unique=False)

    op.create_table(
        "workspace_resources",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column(
            "handle",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["provisioner_jobs.id"],
            name=op.f("fk_workspace_resources_job_id_provisioner_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace_resources")),
    )
    op.create_table(
        "workspaces",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("template_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("deleted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("ttl_ms", sa.BigInteger(), nullable=True),
        sa.Column("deadline", berth.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", berth.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_workspaces_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_workspaces_owner_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["template_id"], ["templates.id"], name=op.f("fk_workspaces_template_id_templates")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspaces")),
    )
    op.create_table(
        "template_version_parameters",
        sa.Column("template_version_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("display_order", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=128), server_default="", nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("form_type", sa.String(length=32), server_default="", nullable=False),
        sa.Column("default_value", sa.Text(), server_default="", nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("mutable", sa.Boolean(), nullable=False),
        sa.Column("ephemeral", sa.Boolean(), nullable=False),
        sa.Column(
            "options",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("validation_regex", sa.Text(), server_default="", nullable=False),
        sa.Column("validation_error", sa.Text(), server_default="", nullable=False),
        sa.Column("validation_min", sa.Float(), nullable=True),
        sa.Column("validation_max", sa.Float(), nullable=True),
        sa.Column("validation_monotonic", sa.String(length=16), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["template_version_id"],
            ["template_versions.id"],
            name=op.f("fk_template_version_parameters_template_version_id_template_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "template_version_id", "name", name=op.f("pk_template_version_parameters")
        ),
    )
    op.create_table(
        "template_version_presets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("template_version_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("icon", sa.String(length=256), server_default="", nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("desired_prebuild_instances", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["template_version_id"],
            ["template_versions.id"],
            name=op.f("fk_template_version_presets_template_version_id_template_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_version_presets")),
        sa.UniqueConstraint(
            "template_version_id",
            "name",
            name=op.f("uq_template_version_presets_template_version_id_name"),
        ),
    )
    op.create_table(
        "workspace_agents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("display_order", sa.Integer(), server_default="0", nullable=False),
        sa.Column("chat", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("external", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("directory", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "env",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("auth_token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("connection_timeout_seconds", sa.Integer(), server_default="0", nullable=False),
        sa.Column("first_connected_at", berth.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_connected_at", berth.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("disconnected_at", berth.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_connected_replica_id", sa.Uuid(), nullable=True),
        sa.Column("lifecycle_state", sa.String(length=32), nullable=False),
        sa.Column("started_at", berth.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ready_at", berth.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["workspace_resources.id"],
            name=op.f("fk_workspace_agents_resource_id_workspace_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace_agents")),
    )
    with op.batch_alter_table("workspace_agents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_workspace_agents_auth_token_hash", ["auth_token_hash"], unique=True
        )

    op.create_table(
        "workspace_builds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("build_number", sa.Integer(), nullable=False),
        sa.Column("transition", sa.String(length=16), nullable=False),
        sa.Column("template_version_id", sa.Uuid(), nullable=False),
        sa.Column("preset_id", sa.Uuid(), nullable=True),
        sa.Column("initiator_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("daily_cost", sa.Integer(), server_default="0", nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column(
            "rendered",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["initiator_id"], ["users.id"], name=op.f("fk_workspace_builds_initiator_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["provisioner_jobs.id"],
            name=op.f("fk_workspace_builds_job_id_provisioner_jobs"),
        ),
        sa.ForeignKeyConstraint(
            ["template_version_id"],
            ["template_versions.id"],
            name=op.f("fk_workspace_builds_template_version_id_template_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_workspace_builds_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace_builds")),
        sa.UniqueConstraint(
            "workspace_id",
            "build_number",
            name=op.f("uq_workspace_builds_workspace_id_build_number"),
        ),
    )
    op.create_table(
        "template_version_preset_parameters",
        sa.Column("preset_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["preset_id"],
            ["template_version_presets.id"],
            name=op.f("fk_template_version_preset_parameters_preset_id_template_version_presets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "preset_id", "name", name=op.f("pk_template_version_preset_parameters")
        ),
    )
    op.create_table(
        "workspace_agent_logs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("script_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["workspace_agents.id"],
            name=op.f("fk_workspace_agent_logs_agent_id_workspace_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace_agent_logs")),
    )
    with op.batch_alter_table("workspace_agent_logs", schema=None) as batch_op:
        batch_op.create_index("ix_workspace_agent_logs_agent_id", ["agent_id", "id"], unique=False)

    op.create_table(
        "workspace_agent_scripts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("display_name", sa.String(length=128), nullable=False),
        sa.Column("script", sa.Text(), nullable=False),
        sa.Column("run_on", sa.String(length=16), nullable=False),
        sa.Column("blocks_login", sa.Boolean(), nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), server_default="0", nullable=False),
        sa.Column("display_order", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["workspace_agents.id"],
            name=op.f("fk_workspace_agent_scripts_agent_id_workspace_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace_agent_scripts")),
    )
    op.create_table(
        "workspace_build_parameters",
        sa.Column("build_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["build_id"],
            ["workspace_builds.id"],
            name=op.f("fk_workspace_build_parameters_build_id_workspace_builds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("build_id", "name", name=op.f("pk_workspace_build_parameters")),
    )

    # Expression indexes (autogenerate cannot compare these on SQLite).
    op.create_index("ix_users_username_lower", "users", [sa.text("lower(username)")], unique=True)
    live = sa.text("deleted = false")
    op.create_index(
        "ix_templates_org_name_live",
        "templates",
        ["organization_id", sa.text("lower(name)")],
        unique=True,
        sqlite_where=live,
        postgresql_where=live,
    )
    op.create_index(
        "ix_workspaces_owner_name_live",
        "workspaces",
        ["owner_id", sa.text("lower(name)")],
        unique=True,
        sqlite_where=live,
        postgresql_where=live,
    )


def downgrade() -> None:

    op.drop_table("workspace_build_parameters")
    op.drop_table("workspace_agent_scripts")
    with op.batch_alter_table("workspace_agent_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_workspace_agent_logs_agent_id")

    op.drop_table("workspace_agent_logs")
    op.drop_table("template_version_preset_parameters")
    op.drop_table("workspace_builds")
    with op.batch_alter_table("workspace_agents", schema=None) as batch_op:
        batch_op.drop_index("ix_workspace_agents_auth_token_hash")

    op.drop_table("workspace_agents")
    op.drop_table("template_version_presets")
    op.drop_table("template_version_parameters")
    op.drop_table("workspaces")
    op.drop_table("workspace_resources")
    with op.batch_alter_table("template_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_template_versions_template_id")

    op.drop_table("template_versions")
    with op.batch_alter_table("provisioner_job_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_provisioner_job_logs_job_id")

    op.drop_table("provisioner_job_logs")
    op.drop_table("group_members")
    op.drop_table("templates")
    op.drop_table("provisioner_keys")
    with op.batch_alter_table("provisioner_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_provisioner_jobs_status_priority")

    op.drop_table("provisioner_jobs")
    op.drop_table("organization_members")
    op.drop_table("groups")
    op.drop_table("chats")
    op.drop_table("api_keys")
    op.drop_table("users")
    op.drop_table("site_config")
    op.drop_table("replicas")
    op.drop_table("organizations")
