"""The OpenAPI document describes the API: schemathesis against a live server.

Schemathesis reads ``/api/v1/openapi.json``, generates requests from it — valid ones
and deliberately broken ones, plus methods a path does not have — and checks every
answer against the document: no server error, only documented status codes, content
types, headers and bodies, and a 405 whose ``Allow`` lists the path's methods. A fixed
seed and a bounded number of examples per operation keep the run reproducible and
under a minute. It does not hold the server to accepting every request the schema
allows: the services validate more than a JSON schema can say (a template's YAML, a
name's characters), and such a request is a documented 422.

Three runs, because one credential cannot reach every operation and no generated
request may delete the credential the rest of a run uses:

- every operation but those below, with the admin's token;
- ``DELETE /users/{user}/tokens/{token}``, with another owner's token;
- the provisioner job endpoints, with a provisioner key (not ``acquire``, a long poll
  that waits up to 30 s whenever no job is pending).

The watch streams (Server-Sent Events) are left out: they never end by themselves.
The server's own log must hold no unhandled error afterwards either (an error inside a
stream that has already answered 200 reaches no client).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import API, Connect, LiveServer, ok

SEED = 1
MAX_EXAMPLES = 12
CHECKS_SKIPPED = "positive_data_acceptance,negative_data_rejection"
STREAMS = r"/watch$"
DELETE_TOKEN = "/api/v1/users/{user}/tokens/{token}"
JOBS = r"^/api/v1/provisioner/"
ACQUIRE = "/api/v1/provisioner/jobs/acquire"


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def server_errors() -> Iterator[list[logging.LogRecord]]:
    """ERROR records of the server's loggers (the server runs in this process)."""
    handler = _Errors()
    loggers = [logging.getLogger(name) for name in ("berth", "uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler.records
    for logger in loggers:
        logger.removeHandler(handler)


def schemathesis(
    server: LiveServer, tmp_path: Path, name: str, token: str, *filters: str
) -> dict[str, Any]:
    """Run schemathesis once; its JSON report."""
    folder = tmp_path / name
    folder.mkdir()
    report = folder / "report.json"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{server.url}{API}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--phases",
        "examples,coverage,fuzzing",
        "--checks",
        "all",
        "--exclude-checks",
        CHECKS_SKIPPED,
        "--suppress-health-check",
        "all",
        # One worker: hypothesis is not thread-safe on CPython 3.11 (its lambda
        # descriptions parse source with ``ast`` concurrently and fail at random).
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        *filters,
    ]
    done = subprocess.run(
        command, cwd=folder, capture_output=True, text=True, timeout=150, check=False
    )
    assert report.exists(), f"schemathesis wrote no report:\n{done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(report.read_text())
    found = f"{len(result['failures'])} failure(s) and {len(result['errors'])} error(s)"
    output = f"{done.stdout[-20000:]}\n{done.stderr[-5000:]}"
    assert not result["failures"], f"{name}: {found}:\n{output}"
    assert not result["errors"], f"{name}: {found}:\n{output}"
    assert done.returncode == 0, f"{name}: exit status {done.returncode}:\n{output}"
    assert result["operations"]["tested"] > 0, result["operations"]
    return result


# One database: the document and the routes are the same on either, the store's
# equivalence on both is what the rest of the suite tests, and this is the suite's
# longest test. Its own bound: three schemathesis runs of up to a minute each.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.timeout(240)
def test_the_api_answers_as_its_openapi_document_says(
    live_server: LiveServer,
    admin: httpx.Client,
    connect: Connect,
    tmp_path: Path,
    server_errors: list[logging.LogRecord],
) -> None:
    ok(admin.post("/users", json={"username": "fuzzer", "roles": ["owner"]}), 201)
    fuzzer = ok(admin.post("/users/fuzzer/tokens", json={"name": "fuzz"}), 201)["token"]
    key = ok(admin.post("/provisioner-keys", json={"name": "fuzz"}), 201)["key"]

    main = schemathesis(
        live_server,
        tmp_path,
        "main",
        live_server.admin_token,
        "--exclude-path-regex",
        f"{STREAMS}|{JOBS}",
        "--exclude-path",
        DELETE_TOKEN,
    )
    assert main["operations"]["tested"] >= 30, main["operations"]
    schemathesis(live_server, tmp_path, "tokens", fuzzer, "--include-path", DELETE_TOKEN)
    schemathesis(
        live_server,
        tmp_path,
        "jobs",
        key,
        "--include-path-regex",
        JOBS,
        "--exclude-path",
        ACQUIRE,
    )

    assert ok(connect(live_server.admin_token).get("/users/me"))["username"] == "admin"
    assert not server_errors, [r.getMessage() for r in server_errors]
