"""prebuilds: claimed agents, per-preset failures, leases

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import warnings

import sqlalchemy as sa
from alembic import op

import berth.db.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "workspace_agents",
        sa.Column("claimed_at", berth.db.types.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "prebuild_failures",
        sa.Column("preset_id", sa.Uuid(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), server_default="", nullable=False),
        sa.Column("last_failed_at", berth.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["preset_id"],
            ["template_version_presets.id"],
            name=op.f("fk_prebuild_failures_preset_id_template_version_presets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("preset_id", name=op.f("pk_prebuild_failures")),
    )


def downgrade() -> None:
    op.drop_table("prebuild_failures")
    op.drop_table("leases")
    with warnings.catch_warnings():
        # SQLite's batch mode reflects related tables and cannot reflect expression indexes.
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        with op.batch_alter_table("workspace_agents") as batch:
            batch.drop_column("claimed_at")
