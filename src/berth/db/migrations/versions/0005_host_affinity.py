"""host affinity: where a workspace's resources live, the place a job requires

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlite3
import warnings

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Workspaces built before this revision stay tied to no place (their builds run on
    # any worker, as before): where their resources are was never recorded.
    op.add_column("workspaces", sa.Column("place", sa.String(length=128), nullable=True))
    op.add_column("workspaces", sa.Column("place_label", sa.String(length=512), nullable=True))
    op.add_column(
        "provisioner_jobs", sa.Column("required_place", sa.String(length=128), nullable=True)
    )


_COLUMNS = (
    ("provisioner_jobs", "required_place"),
    ("workspaces", "place_label"),
    ("workspaces", "place"),
)


def downgrade() -> None:
    native = op.get_bind().dialect.name != "sqlite" or sqlite3.sqlite_version_info >= (3, 35)
    if native:
        # Not SQLite's batch mode: recreating ``workspaces`` from its reflection would lose
        # its expression index (the unique live name per owner), which cannot be reflected.
        for table, column in _COLUMNS:
            op.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        return
    with warnings.catch_warnings():  # pragma: no cover - SQLite older than 3.35
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        for table, column in _COLUMNS:
            with op.batch_alter_table(table) as batch:
                batch.drop_column(column)
