"""The standalone provisioner's job source: the server's provisioner API over HTTP.

:class:`ProvisionerAPI` is the :class:`~berth.provisioner.jobs.JobSource` of the
workers of ``berth provisioner`` (the protocol is described in
:mod:`berth.provisioner.remote`), plus the key check and the agent zipapp cache.
Failures are :class:`~berth.errors.RemoteError` (for a person to read),
:class:`~berth.errors.KeyRefused` or :class:`~berth.errors.JobLost` (404/409).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import tempfile
import uuid
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
from pydantic import BaseModel, ValidationError

from berth.errors import JobLost, KeyRefused, RemoteError, ServerUnreachable
from berth.provisioner.jobs import AcquiredJob, Outcome
from berth.provisioner.spec import Place
from berth.provisioner.wire import (
    API_PREFIX,
    MAX_WAIT_SECONDS,
    PROVISIONER_PREFIX,
    ZIPAPP_PATH,
    AcquireRequest,
    CompleteRequest,
    HeartbeatRequest,
    JobStatusOut,
    KeyOut,
    LogEntryIn,
    LogsRequest,
    ResourceIn,
    ShutdownOut,
    ShutdownRequest,
)

log = logging.getLogger("berth.provisioner")

_M = TypeVar("_M", bound=BaseModel)


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
        self,
        worker_id: str,
        *,
        wait: float,
        backends: Collection[str],
        places: Mapping[str, Place] | None = None,
    ) -> AcquiredJob | None:
        body = AcquireRequest(
            worker_id=worker_id,
            wait_seconds=min(wait, MAX_WAIT_SECONDS),
            backends=sorted(backends),
            places=AcquireRequest.places_of(places),
        )
        response = await self._send(
            "POST", f"{PROVISIONER_PREFIX}/jobs/acquire", body=body, wait=body.wait_seconds
        )
        if response.status_code == 204:
            return None
        return _parse(AcquiredJob, response)

    async def heartbeat(self, job_id: uuid.UUID, worker_id: str, *, wait: float) -> str:
        """The job's status; raises :class:`JobLost` when it is not this worker's any more."""
        body = HeartbeatRequest(worker_id=worker_id, wait_seconds=min(wait, MAX_WAIT_SECONDS))
        response = await self._send(
            "POST", f"{PROVISIONER_PREFIX}/jobs/{job_id}/heartbeat", body=body, wait=wait
        )
        return _parse(JobStatusOut, response).status

    async def shutdown_agents(self, job_id: uuid.UUID, worker_id: str, *, wait: float) -> bool:
        body = ShutdownRequest(worker_id=worker_id, wait_seconds=min(wait, MAX_WAIT_SECONDS))
        response = await self._send(
            "POST", f"{PROVISIONER_PREFIX}/jobs/{job_id}/shutdown", body=body, wait=wait
        )
        return _parse(ShutdownOut, response).done

    def log_sink(self, job_id: uuid.UUID, worker_id: str) -> RemoteJobLog:
        return RemoteJobLog(self, job_id, worker_id)

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
        except (RemoteError, JobLost) as exc:
            log.warning("job %s: could not send a log line: %s", self._job_id, exc)


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
