"""Provisioner keys (site owner) and the job endpoints of standalone provisioners.

``/provisioner-keys`` takes a user's API token like every other route. The job
endpoints under ``/provisioner`` take a provisioner key and nothing else: they act as
the ``provisioner`` system actor on the key's organization's jobs, and run the
database steps of :mod:`berth.provisioner.runner` for a worker that runs the backend
elsewhere. The protocol is described in :mod:`berth.provisioner.remote`.

The long polls (acquire, heartbeat) wait on the event bus and end early when the
worker hangs up. A job claimed for a worker that vanishes before it gets the answer is
left running and failed by the reaper, like any job whose worker stopped heart-beating.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from berth.api.deps import CtxDep, Runtime, RuntimeDep
from berth.domain.actors import as_provisioner
from berth.domain.enums import JobStatus
from berth.errors import Unauthenticated
from berth.provisioner.jobs import AcquiredJob, Outcome
from berth.provisioner.spec import ResourceRecord
from berth.provisioner.wire import (
    AcquireRequest,
    CompleteRequest,
    HeartbeatRequest,
    JobStatusOut,
    KeyOut,
    LogsRequest,
    ShutdownOut,
    ShutdownRequest,
)
from berth.records import ProvisionerKey
from berth.services import provisioner_keys
from berth.services.jobs import LocalJobs

log = logging.getLogger("berth.api")

router = APIRouter()

_ACTIVE = (JobStatus.RUNNING.value, JobStatus.CANCELING.value)

# --- keys (user tokens) -----------------------------------------------------------------


class CreateProvisionerKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    organization: str | None = None


class ProvisionerKeyOut(BaseModel):
    id: str
    name: str
    organization_id: uuid.UUID
    created_at: dt.datetime

    @classmethod
    def of(cls, key: ProvisionerKey) -> ProvisionerKeyOut:
        return cls(
            id=key.id, name=key.name, organization_id=key.organization_id, created_at=key.created_at
        )


class NewProvisionerKeyOut(ProvisionerKeyOut):
    key: str
    """The secret: shown this once, never again."""


@router.post("/provisioner-keys", tags=["provisioner-keys"], status_code=status.HTTP_201_CREATED)
async def create_key(body: CreateProvisionerKeyRequest, ctx: CtxDep) -> NewProvisionerKeyOut:
    new = await provisioner_keys.create_key(ctx, body.name, body.organization)
    return NewProvisionerKeyOut(**ProvisionerKeyOut.of(new.record).model_dump(), key=new.key)


@router.get("/provisioner-keys", tags=["provisioner-keys"])
async def list_keys(ctx: CtxDep, organization: str | None = None) -> list[ProvisionerKeyOut]:
    return [ProvisionerKeyOut.of(k) for k in await provisioner_keys.list_keys(ctx, organization)]


@router.delete(
    "/provisioner-keys/{key}", tags=["provisioner-keys"], status_code=status.HTTP_204_NO_CONTENT
)
async def delete_key(key: str, ctx: CtxDep, organization: str | None = None) -> Response:
    await provisioner_keys.delete_key(ctx, key, organization)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- jobs (provisioner keys) ------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False)


class KeyJobs(LocalJobs):
    """The jobs of one provisioner key's organization."""

    def __init__(self, runtime: Runtime, key: ProvisionerKey) -> None:
        super().__init__(
            runtime.ctx(as_provisioner()),
            server_url=runtime.settings.resolved_access_url(),
            gateway=runtime.gateway,
            organization_id=key.organization_id,
            where="provisioner",
        )
        self.key = key


async def get_jobs(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> KeyJobs:
    """The job source of the key's organization; 401 for anything but a provisioner key."""
    if credentials is None or not credentials.credentials:
        raise Unauthenticated(
            "Authentication required.",
            detail="Send a provisioner key as 'Authorization: Bearer berthprov_…'.",
        )
    key = await provisioner_keys.authenticate_key(runtime.db, credentials.credentials)
    return KeyJobs(runtime, key)


JobsDep = Annotated[KeyJobs, Depends(get_jobs)]

jobs = APIRouter(prefix="/provisioner", tags=["provisioner"])


@jobs.get("/key")
async def whoami(source: JobsDep) -> KeyOut:
    """The calling provisioner key (a standalone provisioner checks its key with it)."""
    key = source.key
    return KeyOut(id=key.id, name=key.name, organization_id=key.organization_id)


@jobs.post(
    "/jobs/acquire",
    responses={
        200: {"model": AcquiredJob, "description": "A job, claimed and prepared"},
        204: {"description": "No job came within wait_seconds"},
    },
)
async def acquire(body: AcquireRequest, request: Request, source: JobsDep) -> Response:
    """Claim and prepare the most urgent pending job, waiting up to ``wait_seconds``."""
    job = await _unless_gone(
        request,
        source.acquire(
            body.worker_id,
            wait=body.wait_seconds,
            backends=body.backends,
            places=body.place_map(),
        ),
    )
    if job is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return Response(job.model_dump_json(), media_type="application/json")


@jobs.post("/jobs/{job_id}/heartbeat")
async def heartbeat(
    job_id: uuid.UUID, body: HeartbeatRequest, request: Request, source: JobsDep
) -> JobStatusOut:
    """Record that the worker still runs the job; answer when its status is not ``running``
    any more, or after ``wait_seconds``."""
    beat = source.heartbeat(job_id, body.worker_id, wait=body.wait_seconds)
    answer = await _unless_gone(request, beat)
    return JobStatusOut(status=answer or JobStatus.RUNNING.value)


@jobs.post("/jobs/{job_id}/shutdown")
async def shutdown_agents(
    job_id: uuid.UUID, body: ShutdownRequest, request: Request, source: JobsDep
) -> ShutdownOut:
    """Before a stop or delete: the agents run their stop scripts; ``done`` when they have."""
    ask = source.shutdown_agents(job_id, body.worker_id, wait=body.wait_seconds)
    done = await _unless_gone(request, ask)
    return ShutdownOut(done=bool(done))


@jobs.post("/jobs/{job_id}/logs", status_code=status.HTTP_204_NO_CONTENT)
async def append_logs(job_id: uuid.UUID, body: LogsRequest, source: JobsDep) -> Response:
    entries = [(e.stage, e.level, e.output) for e in body.entries]
    await source.append_logs(job_id, body.worker_id, entries)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@jobs.post("/jobs/{job_id}/complete")
async def complete(job_id: uuid.UUID, body: CompleteRequest, source: JobsDep) -> JobStatusOut:
    """Record the outcome exactly as for the server's own builds, and complete the job."""
    outcome = Outcome(
        body.status,
        body.error,
        body.error_code,
        [ResourceRecord(type=r.type, name=r.name, handle=r.handle) for r in body.resources],
    )
    return JobStatusOut(status=await source.complete(job_id, body.worker_id, outcome))


T = TypeVar("T")


async def _unless_gone(request: Request, work: Coroutine[Any, Any, T]) -> T | None:
    """``work``'s result, or ``None`` once the client hangs up (a long poll ends with it)."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():
            task.cancel()
        # asyncio.wait, not ``await task`` under suppress: a cancellation of this request
        # must propagate, not be taken for one of the two ending.
        await asyncio.wait({task, gone})
    return None if task.cancelled() else task.result()


async def _disconnected(request: Request) -> None:
    """Return when the client hangs up (the body has been read, so only that is left)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


router.include_router(jobs)
