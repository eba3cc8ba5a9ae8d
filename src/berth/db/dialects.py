"""The few places where SQLite and Postgres differ, kept in one module.

Everything else in ``berth.db`` is dialect-neutral SQLAlchemy Core. The differences:

- **Write transactions.** Postgres takes row locks (``FOR UPDATE``, ``SKIP LOCKED``);
  SQLite has one writer, so write transactions start with ``BEGIN IMMEDIATE`` and the
  row-lock clauses compile to nothing. Either way a locked read followed by writes in
  the same transaction is serialized against every other writer of that row.
- **Upserts.** Each dialect has its own ``INSERT … ON CONFLICT`` construct.
- **Retryable errors.** "database is locked" on SQLite, serialization failures and
  deadlocks on Postgres; the API answers them with 503 and ``Retry-After``.
- **The migration lock.** A Postgres advisory lock; an ``flock`` beside the SQLite file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

MIGRATION_LOCK_KEY = 0x62657274  # "bert": the advisory lock every replica takes to migrate
BOOTSTRAP_LOCK_KEY = 0x62657275  # taken by first-start setup

_PG_RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03"}  # serialization, deadlock, lock timeout


def upsert(
    dialect_name: str,
    table: sa.Table,
    values: Mapping[str, Any],
    *,
    key: Sequence[str],
) -> sa.Insert:
    """``INSERT`` that updates the non-key columns when ``key`` already exists."""
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    stmt = insert(table).values(**values)
    updates = {k: stmt.excluded[k] for k in values if k not in key}
    return stmt.on_conflict_do_update(index_elements=list(key), set_=updates)


def insert_new(dialect_name: str, table: sa.Table, values: Mapping[str, Any]) -> sa.Insert:
    """``INSERT`` that does nothing when the row's key exists (rowcount tells which)."""
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return insert(table).values(**values).on_conflict_do_nothing()


async def take_transaction_lock(conn: AsyncConnection, key: int) -> None:
    """A lock held until the current transaction ends.

    Postgres: ``pg_advisory_xact_lock``. SQLite: nothing to do, since a write
    transaction (``BEGIN IMMEDIATE``) already excludes every other writer.
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def is_retryable(exc: BaseException) -> bool:
    """Whether a database error is transient contention worth retrying."""
    if isinstance(exc, OperationalError) and "database is locked" in str(exc.orig):
        return True
    if isinstance(exc, DBAPIError):
        orig: object = exc.orig
        code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        return code in _PG_RETRYABLE_SQLSTATES
    return False


def is_unique_violation(exc: BaseException) -> bool:
    """Whether a database error is a unique-constraint violation."""
    if not isinstance(exc, IntegrityError):
        return False
    orig: object = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code == "23505" or "UNIQUE constraint failed" in str(orig)
