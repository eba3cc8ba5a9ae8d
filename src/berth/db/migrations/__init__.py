"""Alembic migrations: one tree, run on SQLite and Postgres alike."""
