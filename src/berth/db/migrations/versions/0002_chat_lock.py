"""chat workspace lock: a lease on the chat row

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import warnings

import sqlalchemy as sa
from alembic import op

import berth.db.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        _add_columns()


def _add_columns() -> None:
    with op.batch_alter_table("chats") as batch:
        batch.add_column(sa.Column("lock_holder", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("lock_expires_at", berth.db.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with warnings.catch_warnings():
        # SQLite's batch mode reflects related tables and cannot reflect expression indexes.
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        with op.batch_alter_table("chats") as batch:
            batch.drop_column("lock_expires_at")
            batch.drop_column("lock_holder")
