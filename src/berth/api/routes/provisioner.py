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
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from berth.api.deps import CtxDep, Runtime, RuntimeDep
from berth.db.authz import AuthzStore, not_found
from berth.db.policy import Kind
from berth.domain.actors import as_provisioner
from berth.domain.enums import JobStatus
from berth.errors import Conflict, Unauthenticated
from berth.events import Subscription, publish_quietly
from berth.provisioner.runner import BuildSteps
from berth.provisioner.spec import BuildFailed, ResourceRecord
from berth.provisioner.wire import (
    AcquiredJob,
    AcquireRequest,
    CompleteRequest,
    HeartbeatRequest,
    JobStatusOut,
    KeyOut,
    LogsRequest,
)
from berth.provisioner.worker import JOBS_CHANNEL
from berth.records import ProvisionerJob, ProvisionerKey
from berth.services import provisioner_keys

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


@dataclass(frozen=True, slots=True)
class Caller:
    """A request authenticated by a provisioner key."""

    runtime: Runtime
    key: ProvisionerKey

    @property
    def steps(self) -> BuildSteps:
        return BuildSteps(self.runtime.db, self.runtime.bus)


async def get_caller(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None or not credentials.credentials:
        raise Unauthenticated(
            "Authentication required.",
            detail="Send a provisioner key as 'Authorization: Bearer berthprov_…'.",
        )
    return Caller(
        runtime, await provisioner_keys.authenticate_key(runtime.db, credentials.credentials)
    )


CallerDep = Annotated[Caller, Depends(get_caller)]

jobs = APIRouter(prefix="/provisioner", tags=["provisioner"])


@jobs.get("/key")
async def whoami(caller: CallerDep) -> KeyOut:
    """The calling provisioner key (a standalone provisioner checks its key with it)."""
    key = caller.key
    return KeyOut(id=key.id, name=key.name, organization_id=key.organization_id)


@jobs.post(
    "/jobs/acquire",
    responses={
        200: {"model": AcquiredJob, "description": "A job, claimed and prepared"},
        204: {"description": "No job came within wait_seconds"},
    },
)
async def acquire(body: AcquireRequest, request: Request, caller: CallerDep) -> Response:
    """Claim and prepare the most urgent pending job, waiting up to ``wait_seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + body.wait_seconds
    async with caller.runtime.bus.subscribe(JOBS_CHANNEL) as events:
        while True:
            job = await _claim(caller, body.worker_id)
            if job is not None:
                acquired = await _prepare(caller, job, body)
                if acquired is not None:
                    return Response(acquired.model_dump_json(), media_type="application/json")
                continue  # it failed before it reached the worker: try the next one
            remaining = deadline - loop.time()
            if remaining <= 0 or not await _wait(events, remaining, request):
                return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _claim(caller: Caller, worker_id: str) -> ProvisionerJob | None:
    async with caller.runtime.db.write() as raw:
        job = await AuthzStore(raw, as_provisioner()).acquire_provisioner_job(
            worker_id, organization_id=caller.key.organization_id
        )
    if job is not None:
        await publish_quietly(
            caller.runtime.bus, f"job:{job.id}", {"type": "status", "status": job.status}
        )
    return job


async def _prepare(caller: Caller, job: ProvisionerJob, body: AcquireRequest) -> AcquiredJob | None:
    """The job ready for the worker, or ``None`` when it failed (and was completed) here."""
    steps = caller.steps
    try:
        prepared = await steps.prepare(job.id, backends=body.backends, where="provisioner")
    except BuildFailed as exc:
        await steps.fail(job.id, exc)
        return None
    except Exception as exc:
        log.exception("job %s failed unexpectedly", job.id)
        await steps.finish(job.id, JobStatus.FAILED, error=f"internal error: {exc}")
        return None
    server_url = caller.runtime.settings.resolved_access_url()
    return AcquiredJob.of(prepared, server_url=server_url)


async def _wait(events: Subscription, seconds: float, request: Request) -> bool:
    """Wait for an event, at most ``seconds``; ``False`` if the client hung up or the bus closed."""
    got = asyncio.ensure_future(events.get(timeout=seconds))
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({got, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        got.cancel()
        gone.cancel()
        # asyncio.wait, not ``await task`` under suppress: a cancellation of this request
        # must propagate, not be taken for one of the two ending.
        await asyncio.wait({got, gone})
    failed = got in done and got.exception() is not None
    return gone not in done and not failed


async def _disconnected(request: Request) -> None:
    """Return when the client hangs up (the body has been read, so only that is left)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _owned_job(
    caller: Caller, store: AuthzStore, job_id: uuid.UUID, worker_id: str | None
) -> ProvisionerJob:
    """The job, if it is running for this key (and ``worker_id``); 404/409 otherwise."""
    job = await store.get_provisioner_job_by_id(job_id)
    if job is None or job.organization_id != caller.key.organization_id:
        raise not_found(Kind.JOB)
    if job.status not in _ACTIVE:
        raise Conflict(f"The job is {job.status}.")
    if worker_id is not None and job.worker_id != worker_id:
        raise Conflict("The job is run by another worker.", detail=f"worker {job.worker_id}")
    return job


@jobs.post("/jobs/{job_id}/heartbeat")
async def heartbeat(
    job_id: uuid.UUID, body: HeartbeatRequest, request: Request, caller: CallerDep
) -> JobStatusOut:
    """Record that the worker still runs the job; answer when its status is not ``running``
    any more, or after ``wait_seconds``."""
    runtime = caller.runtime
    loop = asyncio.get_running_loop()
    deadline = loop.time() + body.wait_seconds
    async with runtime.bus.subscribe(f"job:{job_id}") as events:
        async with runtime.db.write() as raw:
            store = AuthzStore(raw, as_provisioner())
            await _owned_job(caller, store, job_id, body.worker_id)
            job = await store.update_provisioner_job_heartbeat(job_id, body.worker_id)
        if job is None:  # pragma: no cover - _owned_job checked it in this transaction
            raise Conflict("The job is not this worker's.")
        while job.status == JobStatus.RUNNING.value:
            remaining = deadline - loop.time()
            if remaining <= 0 or not await _wait(events, remaining, request):
                break
            async with runtime.db.read() as raw:
                current = await AuthzStore(raw, as_provisioner()).get_provisioner_job_by_id(job_id)
            if current is None:
                raise not_found(Kind.JOB)
            job = current
    return JobStatusOut(status=job.status)


@jobs.post("/jobs/{job_id}/logs", status_code=status.HTTP_204_NO_CONTENT)
async def append_logs(job_id: uuid.UUID, body: LogsRequest, caller: CallerDep) -> Response:
    async with caller.runtime.db.read() as raw:
        await _owned_job(caller, AuthzStore(raw, as_provisioner()), job_id, body.worker_id)
    await caller.steps.log(job_id).append([(e.stage, e.level, e.output) for e in body.entries])
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@jobs.post("/jobs/{job_id}/complete")
async def complete(job_id: uuid.UUID, body: CompleteRequest, caller: CallerDep) -> JobStatusOut:
    """Record the outcome exactly as the built-in runner does, and complete the job."""
    async with caller.runtime.db.read() as raw:
        await _owned_job(caller, AuthzStore(raw, as_provisioner()), job_id, body.worker_id)
    steps = caller.steps
    if body.status == "succeeded":
        records = [
            ResourceRecord(type=r.type, name=r.name, handle=r.handle) for r in body.resources
        ]
        try:
            await steps.record(job_id, records)
        except BuildFailed as exc:
            done = await steps.fail(job_id, exc)
        else:
            done = await steps.finish(job_id, JobStatus.SUCCEEDED)
    elif body.status == "failed":
        failure = BuildFailed(body.error or "the build failed", code=body.error_code)
        done = await steps.fail(job_id, failure)
    else:
        error = body.error or "the build was canceled"
        done = await steps.finish(job_id, JobStatus.CANCELED, error=error)
    if done is None:
        raise Conflict("The job was completed already.")
    return JobStatusOut(status=done.status)


router.include_router(jobs)
