"""Helpers for the workspace, job-queue and runner tests: a bootstrapped world, fake templates.

A :class:`World` is a freshly bootstrapped database (the ``db`` fixture: SQLite or
Postgres, with the test's :class:`~berth.clock.FakeClock`), the admin's service
context, an in-process event bus, and the server's job source
(:class:`~berth.services.jobs.LocalJobs`) for a host whose only backend is a
:class:`~berth.provisioner.backends.fake.FakeBackend`. Nothing of berth is mocked: jobs
are run by real :class:`~berth.provisioner.worker.Worker` s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import sqlalchemy as sa
import yaml

from berth.db.engine import Database
from berth.domain.actors import Actor, as_system
from berth.domain.enums import JobStatus
from berth.events import InProcessBus
from berth.provisioner.backends.fake import FakeBackend
from berth.provisioner.jobs import Host
from berth.provisioner.worker import Worker, WorkerTiming
from berth.records import User
from berth.services import accounts, builds, refs, templates
from berth.services.accounts import actor_for_user
from berth.services.base import Ctx
from berth.services.bootstrap import bootstrap
from berth.services.jobs import LocalJobs
from berth.services.templates import Pushed
from tests.support.rows import Rows

WAIT = 10.0
"""Seconds any single wait in these tests may take before the test fails."""

BUILD_TABLES = ("workspaces", "workspace_builds", "workspace_build_parameters", "provisioner_jobs")


def fake_template(
    name: str,
    *,
    fake: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A template document on the fake backend; ``fields`` add or replace top-level keys."""
    doc: dict[str, Any] = {
        "name": name,
        "display_name": f"Fake {name}",
        "description": "A template on the fake backend, for tests.",
        "default_ttl": "2h",
        "daily_cost": 1,
        "backend": {"type": "fake", **({"fake": fake} if fake is not None else {})},
        "agents": [{"name": "main", "chat": True}],
    }
    doc.update(fields)
    return doc


@dataclass
class World(Rows):
    """A bootstrapped database, the admin, a bus and the job source of a fake-backend host."""

    db: Database
    bus: InProcessBus
    admin: Ctx
    admin_user: User
    organization_id: uuid.UUID
    backend: FakeBackend
    host: Host
    jobs: LocalJobs

    def ctx(self, actor: Actor) -> Ctx:
        return Ctx(self.db, actor, self.bus)

    def worker(self, worker_id: str | None = None, timing: WorkerTiming | None = None) -> Worker:
        return Worker(self.jobs, self.host, worker_id=worker_id, timing=timing)

    async def finish(self, job_id: uuid.UUID, status: JobStatus, *, error: str) -> None:
        """Complete a job as the build pipeline does (a worker that gave up on it)."""
        await builds.finish(self.admin, job_id, status, error=error)

    async def push(self, doc: dict[str, Any], *, as_ctx: Ctx | None = None) -> Pushed:
        """Push a template document (given as data) as the admin, or as ``as_ctx``."""
        files = {"template.yaml": yaml.safe_dump(doc, sort_keys=False)}
        return await templates.push_template(as_ctx or self.admin, files, None)

    async def run_one(self, worker_id: str = "test-worker") -> bool:
        """Let one worker claim and run one job to its end; ``False`` if there was none."""
        with anyio.fail_after(WAIT):
            return await self.worker(worker_id).run_once()

    async def count(self, *tables: str) -> dict[str, int]:
        """Row counts, read straight from the tables (deleted and orphaned rows count too)."""
        counts: dict[str, int] = {}
        async with self.db.connection() as conn:
            for table in tables or BUILD_TABLES:
                result = await conn.execute(sa.select(sa.func.count()).select_from(sa.table(table)))
                counts[table] = int(result.scalar_one())
        return counts

    async def add_member(self, username: str, *, organization: str | None = None) -> Ctx:
        """A new plain member of ``organization`` (default: the default one), as a context."""
        user, _ = await accounts.create_user(
            self.admin, username=username, organization=organization
        )
        async with self.db.read(as_system()) as raw:
            actor = await actor_for_user(raw, user)
        return self.ctx(actor)


async def workspace_id(ctx: Ctx, ref: str) -> uuid.UUID:
    """The id of a workspace named as a user names it (an id, ``name``, ``owner/name``),
    resolved as ``ctx``'s actor sees it, as an API route does before calling a service."""
    return (await refs.workspace(ctx, ref)).id


@contextlib.asynccontextmanager
async def open_world(db: Database, state_dir: Path) -> AsyncGenerator[World]:
    """Bootstrap ``db`` (without the example templates) and build a :class:`World` on it."""
    result = await bootstrap(db, install_examples=False)
    assert result is not None
    actor = await accounts.authenticate(db, result.token)
    assert actor.user_id is not None
    async with db.read(as_system()) as store:
        org = await store.get_default_organization()
        admin_user = await store.get_user_by_id(actor.user_id)
    assert org is not None
    assert admin_user is not None
    backend = FakeBackend()
    before = asyncio.all_tasks()
    async with InProcessBus() as bus:
        admin = Ctx(db, actor, bus)
        host = Host({"fake": backend}, state_dir / "berth-agent.pyz", state_dir)
        try:
            yield World(
                db=db,
                bus=bus,
                admin=admin,
                admin_user=admin_user,
                organization_id=org.id,
                backend=backend,
                host=host,
                jobs=LocalJobs(admin, server_url="http://127.0.0.1:9"),
            )
        finally:
            await settle_tasks(before)


async def settle_tasks(before: set[asyncio.Task[Any]], within: float = WAIT) -> None:
    """Let every task started since ``before`` end before the database is disposed.

    A worker or heartbeat cancelled in the middle of a SQLite transaction leaves
    SQLAlchemy closing that connection in a shielded background task. Disposing the
    engine and closing the event loop while such a close is pending can hang the
    loop's shutdown for good (a race between aiosqlite's ``close`` and ``stop``), so
    the world waits for them; anything still running after ``within`` is cancelled.
    """
    me = asyncio.current_task()

    def ours(task: asyncio.Task[Any]) -> bool:
        """Not the pytest plugin's own tasks (one per test step, awaiting this one)."""
        code = getattr(task.get_coro(), "cr_code", None)
        return code is None or f"{os.sep}anyio{os.sep}" not in code.co_filename

    def left() -> set[asyncio.Task[Any]]:
        return {t for t in asyncio.all_tasks() - before if t is not me and not t.done() and ours(t)}

    with anyio.move_on_after(within):
        while pending := left():
            await asyncio.wait(pending)
    for task in left():
        task.cancel()
    if pending := left():
        await asyncio.wait(pending, timeout=within)
