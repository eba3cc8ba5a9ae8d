"""A standalone provisioner: the same workers, building over the server's HTTP API.

``berth provisioner`` runs :class:`RemoteProvisioner` on any host with a backend
(bwrap, Docker). It authenticates with a provisioner key and never sees the database:
the server runs the database steps of :mod:`berth.provisioner.runner` for it and
the worker runs only the backend's ``apply``. The protocol, under ``/api/v1/provisioner``:

``GET key``
    The calling key (``{id, name, organization_id}``): checks the key at start-up.
``POST jobs/acquire {worker_id, wait_seconds, backends}``
    Long-poll (at most :data:`MAX_WAIT_SECONDS`) for the most urgent pending job of the
    key's organization. The server claims it and prepares it (quota check; agent rows
    and fresh tokens); a job that fails there is completed at once and never handed out.
    ``204`` when none came; else ``200`` with an :class:`AcquiredJob`.
``POST jobs/{id}/heartbeat {worker_id, wait_seconds}``
    Records a heartbeat and answers ``{status}``, waiting up to ``wait_seconds`` for the
    status to change, so a cancel arrives within milliseconds. ``canceling``, or a
    404/409 (the job is gone or not this worker's any more) cancels the apply.
``POST jobs/{id}/logs {worker_id, entries: [{stage, level, output}]}``
    Build output, stored in order and streamed to watchers.
``POST jobs/{id}/complete {worker_id, status, error?, error_code?, resources?}``
    ``succeeded`` (with the backend's resources), ``failed`` or ``canceled``: the server
    records and completes exactly as the built-in runner does.

The agent zipapp comes from the server (``/api/v1/agent/berth-agent.pyz``) once per
start, cached in the data dir by its hash (and revalidated with its ETag).

A provisioner that vanishes mid-build stops heart-beating; its job is then failed by
the server's reaper, which (today) runs only on a server with built-in workers
(``provisioner_workers > 0``). A server that hangs up mid-build is retried: log lines
are dropped, heartbeats and the final report are sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from berth.domain.enums import Transition
from berth.domain.template import validate_template_data
from berth.provisioner.runner import PreparedBuild
from berth.provisioner.spec import (
    AgentSpec,
    Backend,
    BuildFailed,
    BuildSpec,
    ResourceRecord,
)
from berth.provisioner.worker import new_worker_id

log = logging.getLogger("berth.provisioner")
_M = TypeVar("_M", bound=BaseModel)

API_PREFIX = "/api/v1"
PROVISIONER_PREFIX = "/provisioner"
ZIPAPP_PATH = "/agent/berth-agent.pyz"
MAX_WAIT_SECONDS = 30.0
"""The longest an acquire or heartbeat request is held open by the server."""
COMPLETE_ATTEMPTS = 5
"""How often a worker tries to report a result while the server cannot be reached."""


# --- the wire format (the server's routes use these models too) ------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AcquireRequest(_Request):
    worker_id: str = Field(min_length=1, max_length=128)
    wait_seconds: float = Field(default=0.0, ge=0.0, le=MAX_WAIT_SECONDS)
    backends: list[str] | None = None
    """The backend types this worker offers; a job needing another fails at once."""


class HeartbeatRequest(_Request):
    worker_id: str = Field(min_length=1, max_length=128)
    wait_seconds: float = Field(default=0.0, ge=0.0, le=MAX_WAIT_SECONDS)
    """Hold the answer until the job's status changes, at most this long."""


class JobStatusOut(BaseModel):
    status: str


class LogEntryIn(_Request):
    stage: str = Field(default="apply", min_length=1, max_length=64)
    level: str = Field(default="info", min_length=1, max_length=16)
    output: str = Field(max_length=1_000_000)


class LogsRequest(_Request):
    worker_id: str | None = Field(default=None, max_length=128)
    """When given, the job must be this worker's."""
    entries: list[LogEntryIn] = Field(max_length=1_000)


class ResourceIn(_Request):
    type: str = Field(min_length=1, max_length=128)
    name: str = Field(max_length=256)
    handle: dict[str, Any]


class CompleteRequest(_Request):
    worker_id: str | None = Field(default=None, max_length=128)
    """When given, the job must be this worker's."""
    status: Literal["succeeded", "failed", "canceled"]
    error: str | None = Field(default=None, max_length=100_000)
    error_code: str | None = Field(default=None, max_length=128)
    resources: list[ResourceIn] = Field(default_factory=list[ResourceIn])


class KeyOut(BaseModel):
    id: str
    name: str
    organization_id: uuid.UUID


class AgentWire(BaseModel):
    id: uuid.UUID
    name: str
    token: str
    directory: str
    env: dict[str, str]
    external: bool = False


class SpecWire(BaseModel):
    """A :class:`BuildSpec` without the paths, which are the worker's own."""

    workspace_id: uuid.UUID
    workspace_name: str
    owner_name: str
    build_id: uuid.UUID
    build_number: int
    template: dict[str, Any]
    """The build's rendered template document, as stored."""
    agents: list[AgentWire]
    server_url: str
    labels: dict[str, str]


class AcquiredJob(BaseModel):
    """What ``jobs/acquire`` answers: the job and everything needed to apply it."""

    job_id: uuid.UUID
    transition: Transition
    spec: SpecWire

    @classmethod
    def of(cls, prepared: PreparedBuild, *, server_url: str) -> AcquiredJob:
        return cls(
            job_id=prepared.job_id,
            transition=prepared.transition,
            spec=SpecWire(
                workspace_id=prepared.workspace.id,
                workspace_name=prepared.workspace.name,
                owner_name=prepared.owner_name,
                build_id=prepared.build.id,
                build_number=prepared.build.build_number,
                template=prepared.build.rendered or {},
                agents=[
                    AgentWire(
                        id=a.id,
                        name=a.name,
                        token=a.token,
                        directory=a.directory,
                        env=a.env,
                        external=a.external,
                    )
                    for a in prepared.agents
                ],
                server_url=server_url,
                labels=prepared.labels,
            ),
        )

    def build_spec(self, *, agent_zipapp: Path, state_dir: Path) -> BuildSpec:
        """The spec for this host's backend; the template is validated again here."""
        s = self.spec
        doc = validate_template_data(s.template, filename=f"build {s.build_number}")
        return BuildSpec(
            workspace_id=s.workspace_id,
            workspace_name=s.workspace_name,
            owner_name=s.owner_name,
            build_id=s.build_id,
            build_number=s.build_number,
            template=doc,
            agents=[
                AgentSpec(
                    id=a.id,
                    name=a.name,
                    token=a.token,
                    directory=a.directory,
                    env=dict(a.env),
                    external=a.external,
                )
                for a in s.agents
            ],
            server_url=s.server_url,
            agent_zipapp=agent_zipapp,
            state_dir=state_dir,
            labels=dict(s.labels),
        )


# --- the client -------------------------------------------------------------------------


class RemoteError(Exception):
    """The server refused or could not be reached; ``str()`` is for a person."""


class KeyRefused(RemoteError):
    """The server does not accept the provisioner key (wrong, or deleted)."""


class ServerUnreachable(RemoteError):
    """No answer from the server (not running, wrong URL, network)."""


class JobLost(RemoteError):
    """The job is gone or no longer this worker's (404/409)."""


def _message(response: httpx.Response) -> str:
    try:
        body = cast("object", response.json())
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        message = cast("dict[str, Any]", body).get("message")
        if isinstance(message, str) and message:
            return message
    return f"{response.status_code} {response.reason_phrase}".strip()


class ProvisionerAPI:
    """The provisioner endpoints of one server, as one provisioner key."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/").removesuffix(API_PREFIX)
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=self.url + API_PREFIX,
            headers={"Authorization": f"Bearer {key.strip()}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(
        self, method: str, path: str, *, body: BaseModel | None = None, wait: float = 0.0
    ) -> httpx.Response:
        content = None if body is None else body.model_dump_json(exclude_none=True)
        headers = {} if content is None else {"Content-Type": "application/json"}
        try:
            response = await self._http.request(
                method, path, content=content, headers=headers, timeout=self._timeout + wait
            )
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise ServerUnreachable(
                f"could not reach the berth server at {self.url}: {reason}"
            ) from None
        if response.status_code == 401:
            raise KeyRefused(
                f"the berth server at {self.url} refused the provisioner key"
                f" ({_message(response)}); create one with 'berth provisioner keys create'"
            )
        if response.status_code in (404, 409):
            raise JobLost(_message(response))
        if response.is_error:
            raise RemoteError(f"{method} {path}: {_message(response)}")
        return response

    async def whoami(self) -> KeyOut:
        response = await self._send("GET", f"{PROVISIONER_PREFIX}/key")
        return _parse(KeyOut, response)

    async def acquire(
        self, worker_id: str, *, wait_seconds: float, backends: Sequence[str] | None
    ) -> AcquiredJob | None:
        body = AcquireRequest(
            worker_id=worker_id,
            wait_seconds=min(wait_seconds, MAX_WAIT_SECONDS),
            backends=None if backends is None else list(backends),
        )
        response = await self._send(
            "POST", f"{PROVISIONER_PREFIX}/jobs/acquire", body=body, wait=body.wait_seconds
        )
        if response.status_code == 204:
            return None
        return _parse(AcquiredJob, response)

    async def heartbeat(self, job_id: uuid.UUID, worker_id: str, *, wait_seconds: float) -> str:
        """The job's status; raises :class:`JobLost` when it is not this worker's any more."""
        body = HeartbeatRequest(worker_id=worker_id, wait_seconds=wait_seconds)
        response = await self._send(
            "POST", f"{PROVISIONER_PREFIX}/jobs/{job_id}/heartbeat", body=body, wait=wait_seconds
        )
        return _parse(JobStatusOut, response).status

    async def logs(
        self, job_id: uuid.UUID, worker_id: str, entries: Sequence[tuple[str, str, str]]
    ) -> None:
        body = LogsRequest(
            worker_id=worker_id,
            entries=[LogEntryIn(stage=s, level=lv, output=o) for s, lv, o in entries],
        )
        await self._send("POST", f"{PROVISIONER_PREFIX}/jobs/{job_id}/logs", body=body)

    async def complete(self, job_id: uuid.UUID, worker_id: str, outcome: Outcome) -> str:
        body = CompleteRequest(
            worker_id=worker_id,
            status=outcome.status,
            error=outcome.error,
            error_code=outcome.error_code,
            resources=[
                ResourceIn(type=r.type, name=r.name, handle=r.handle) for r in outcome.resources
            ],
        )
        response = await self._send(
            "POST", f"{PROVISIONER_PREFIX}/jobs/{job_id}/complete", body=body
        )
        return _parse(JobStatusOut, response).status

    async def agent_zipapp(self, cache_dir: Path) -> Path:
        """The server's agent zipapp, downloaded into ``cache_dir`` unless cached there."""
        cached = await asyncio.to_thread(_cached_zipapp, cache_dir)
        headers = {"If-None-Match": cached[0]} if cached else {}
        try:
            response = await self._http.get(ZIPAPP_PATH, headers=headers)
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise ServerUnreachable(
                f"could not reach the berth server at {self.url}: {reason}"
            ) from None
        if response.status_code == 304 and cached:
            return cached[1]
        if response.is_error:
            raise RemoteError(f"could not download the agent zipapp: {_message(response)}")
        return await asyncio.to_thread(
            _store_zipapp, cache_dir, response.content, response.headers.get("etag")
        )


_ZIPAPP_INDEX = "etag.json"


def _cached_zipapp(cache_dir: Path) -> tuple[str, Path] | None:
    """The ETag and path of the cached zipapp, if there is one."""
    try:
        data = cast("object", json.loads((cache_dir / _ZIPAPP_INDEX).read_text()))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    entry = cast("dict[str, object]", data)
    etag, name = entry.get("etag"), entry.get("file")
    if not isinstance(etag, str) or not isinstance(name, str) or "/" in name:
        return None
    path = cache_dir / name
    return (etag, path) if path.is_file() else None


def _store_zipapp(cache_dir: Path, data: bytes, etag: str | None) -> Path:
    """Keep ``data`` as ``berth-agent-<hash>.pyz`` (content-addressed) and its ETag."""
    cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = cache_dir / f"berth-agent-{hashlib.sha256(data).hexdigest()[:16]}.pyz"
    if not path.is_file():
        _write_atomically(path, data, mode=0o755)
    if etag:
        index = json.dumps({"etag": etag, "file": path.name}).encode()
        _write_atomically(cache_dir / _ZIPAPP_INDEX, index)
    return path


def _parse(model: type[_M], response: httpx.Response) -> _M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise RemoteError(
            f"the server's answer to {response.request.method} {response.request.url.path}"
            f" is not what this provisioner expects (is it another berth version?): {exc}"
        ) from None


def _write_atomically(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            os.fchmod(stream.fileno(), mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# --- the workers ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an apply ended, as reported to ``jobs/{id}/complete``."""

    status: Literal["succeeded", "failed", "canceled"]
    error: str | None = None
    error_code: str | None = None
    resources: Sequence[ResourceRecord] = ()


@dataclass(frozen=True, slots=True)
class RemoteTiming:
    acquire_wait: float = 25.0
    """How long one acquire request waits for a job (the server caps it at 30 s)."""
    heartbeat_wait: float = 5.0
    """How long one heartbeat waits for a status change; well below the stale timeout."""
    retry_after: float = 2.0
    """Pause after a failed request before trying again (the server may be restarting)."""


class RemoteJobLog:
    """The :class:`~berth.provisioner.spec.LogSink` of a remote job: POSTed to the server.

    A log line that cannot be delivered is logged here and dropped; it never fails the build.
    """

    def __init__(self, api: ProvisionerAPI, job_id: uuid.UUID, worker_id: str) -> None:
        self._api = api
        self._job_id = job_id
        self._worker_id = worker_id

    async def __call__(self, output: str, *, stage: str = "apply", level: str = "info") -> None:
        try:
            await self._api.logs(self._job_id, self._worker_id, [(stage, level, output)])
        except RemoteError as exc:
            log.warning("job %s: could not send a log line: %s", self._job_id, exc)


class RemoteWorker:
    """One job at a time, like :class:`~berth.provisioner.worker.Worker`, over HTTP."""

    def __init__(
        self,
        api: ProvisionerAPI,
        backends: Mapping[str, Backend],
        *,
        agent_zipapp: Path,
        state_dir: Path,
        worker_id: str | None = None,
        timing: RemoteTiming | None = None,
    ) -> None:
        self._api = api
        self._backends = backends
        self._agent_zipapp = agent_zipapp
        self._state_dir = state_dir
        self.worker_id = worker_id or new_worker_id()
        self._timing = timing or RemoteTiming()

    async def run_forever(self) -> None:
        """Acquire and run jobs until cancelled; :class:`KeyRefused` ends it."""
        while True:
            try:
                await self.run_once(wait_seconds=self._timing.acquire_wait)
            except KeyRefused:
                raise
            except RemoteError as exc:
                log.warning("worker %s: %s; retrying", self.worker_id, exc)
                await asyncio.sleep(self._timing.retry_after)

    async def run_once(self, *, wait_seconds: float = 0.0) -> bool:
        """Acquire and run one job; ``False`` when none came within ``wait_seconds``."""
        job = await self._api.acquire(
            self.worker_id, wait_seconds=wait_seconds, backends=sorted(self._backends)
        )
        if job is None:
            return False
        log.info("worker %s runs job %s", self.worker_id, job.job_id)
        await self._run(job)
        return True

    async def _run(self, job: AcquiredJob) -> None:
        lost = asyncio.Event()
        task = asyncio.create_task(self._apply(job))
        beat = asyncio.create_task(self._heartbeat(job.job_id, task, lost))
        try:
            outcome = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not task.cancelled() or (current is not None and current.cancelling()):
                # The worker itself is stopping: tell the server, briefly, then stop.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        self._complete(job.job_id, Outcome("canceled", "the build was canceled")),
                        timeout=5.0,
                    )
                raise
            if lost.is_set():
                log.warning("job %s is no longer this worker's; dropped it", job.job_id)
                return
            outcome = Outcome("canceled", "the build was canceled")
        finally:
            beat.cancel()
            # Not ``await beat`` under suppress(CancelledError): that would also swallow
            # a cancellation of this worker arriving while the beat winds down.
            await asyncio.wait([beat])
            if not beat.cancelled() and (error := beat.exception()) is not None:
                log.warning("the heartbeat of job %s failed", job.job_id, exc_info=error)
        await self._complete(job.job_id, outcome)

    async def _complete(self, job_id: uuid.UUID, outcome: Outcome) -> None:
        """Report the outcome, retrying while the server is unreachable (it may restart)."""
        for attempt in range(COMPLETE_ATTEMPTS):
            try:
                status = await self._api.complete(job_id, self.worker_id, outcome)
            except (JobLost, KeyRefused) as exc:
                log.warning("job %s: the server did not take its result: %s", job_id, exc)
                if isinstance(exc, KeyRefused):
                    raise
                return
            except RemoteError as exc:
                if attempt + 1 == COMPLETE_ATTEMPTS:
                    raise
                log.warning("job %s: could not report its result (%s); retrying", job_id, exc)
                await asyncio.sleep(self._timing.retry_after)
            else:
                log.info("job %s: %s", job_id, status)
                return

    async def _apply(self, job: AcquiredJob) -> Outcome:
        sink = RemoteJobLog(self._api, job.job_id, self.worker_id)
        try:
            spec = job.build_spec(agent_zipapp=self._agent_zipapp, state_dir=self._state_dir)
            backend = self._backends.get(spec.template.backend.type.value)
            if backend is None:
                raise BuildFailed(
                    f"no {spec.template.backend.type.value!r} backend is configured"
                    " on this provisioner"
                )
            records = await backend.apply(spec, job.transition, sink)
        except BuildFailed as exc:
            return Outcome("failed", exc.message, exc.code)
        except Exception as exc:
            log.exception("job %s failed unexpectedly", job.job_id)
            return Outcome("failed", f"internal error: {exc}")
        return Outcome("succeeded", resources=records)

    async def _heartbeat(
        self, job_id: uuid.UUID, task: asyncio.Task[Outcome], lost: asyncio.Event
    ) -> None:
        while not task.done():
            try:
                status = await self._api.heartbeat(
                    job_id, self.worker_id, wait_seconds=self._timing.heartbeat_wait
                )
            except JobLost:
                lost.set()
                task.cancel()
                return
            except RemoteError as exc:
                log.warning("job %s: heartbeat failed: %s", job_id, exc)
                await asyncio.sleep(self._timing.retry_after)
                continue
            if status != "running":  # canceling, or completed behind this worker's back
                if status != "canceling":
                    lost.set()
                task.cancel()
                return


class RemoteProvisioner:
    """``workers`` remote workers against one server, until cancelled.

    ``data_dir`` holds the agent zipapp cache (``agent/``) and, unless ``state_dir``
    says otherwise, the backends' per-workspace state (``workspaces/``).
    """

    def __init__(
        self,
        api: ProvisionerAPI,
        backends: Mapping[str, Backend],
        *,
        data_dir: Path,
        workers: int = 2,
        state_dir: Path | None = None,
        timing: RemoteTiming | None = None,
    ) -> None:
        self.api = api
        self.backends = backends
        self.data_dir = data_dir
        self.state_dir = state_dir or data_dir / "workspaces"
        self.workers = max(workers, 1)
        self.timing = timing or RemoteTiming()
        self.key: KeyOut | None = None
        self.agent_zipapp: Path | None = None

    async def connect(self) -> KeyOut:
        """Check the key and fetch the agent zipapp; raises :class:`RemoteError` for a person."""
        self.key = await self.api.whoami()
        self.agent_zipapp = await self.api.agent_zipapp(self.data_dir / "agent")
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.key

    async def run(self) -> None:
        """Connect (unless done), then run the workers until cancelled or the key is refused."""
        if self.agent_zipapp is None:
            await self.connect()
        zipapp = self.agent_zipapp
        assert zipapp is not None
        workers = [
            RemoteWorker(
                self.api,
                self.backends,
                agent_zipapp=zipapp,
                state_dir=self.state_dir,
                timing=self.timing,
            )
            for _ in range(self.workers)
        ]
        try:
            async with asyncio.TaskGroup() as group:
                for worker in workers:
                    group.create_task(_forever(worker), name=worker.worker_id)
        except BaseExceptionGroup as group:
            raise _first_leaf(group) from None


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first exception inside ``group`` (nested groups unwrapped)."""
    first: BaseException = group.exceptions[0]
    if isinstance(first, BaseExceptionGroup):
        return _first_leaf(cast("BaseExceptionGroup[BaseException]", first))
    return first


async def _forever(worker: RemoteWorker) -> None:
    """Run a worker, restarting it after an unexpected crash; a refused key ends it."""
    while True:
        try:
            await worker.run_forever()
        except (asyncio.CancelledError, KeyRefused):
            raise
        except Exception:
            log.exception("worker %s crashed; restarting in 1s", worker.worker_id)
            await asyncio.sleep(1)
