"""Alembic environment: always driven programmatically by :mod:`berth.db.migrate`.

The caller hands over a live synchronous connection in ``config.attributes``; there is
no ``alembic.ini`` and no URL here, so the same code migrates SQLite and Postgres.
"""

from __future__ import annotations

from alembic import context

from berth.db.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
