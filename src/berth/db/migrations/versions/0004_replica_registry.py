"""replica registry: relay URL and version per replica

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import berth.db.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nothing ever wrote the old table (no registry ran before this revision): replace it.
    op.drop_table("replicas")
    op.create_table(
        "replicas",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hostname", sa.String(length=256), nullable=False),
        sa.Column("relay_url", sa.String(length=2048), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("started_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replicas")),
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM site_config WHERE key = 'mesh_secret'"))
    op.drop_table("replicas")
    op.create_table(
        "replicas",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hostname", sa.String(length=256), nullable=False),
        sa.Column("relay_address", sa.String(length=256), nullable=False),
        sa.Column("started_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", berth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replicas")),
    )
