"""Helpers shared by the HTTP API tests: the error envelope, test templates, row counts.

The tests talk to a real server over HTTP (the ``live_server`` fixture of
``tests/conftest.py``); nothing here mocks anything.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, cast

import httpx
import sqlalchemy as sa

from berth.api.deps import Runtime
from berth.db.engine import create_engine

API = "/api/v1"
ENVELOPE_KEYS = frozenset({"message", "detail", "validations"})
TEMPLATE_TABLES = (
    "templates",
    "template_versions",
    "template_version_parameters",
    "template_version_presets",
    "template_version_preset_parameters",
)


Connect = Callable[[str | None], httpx.Client]
"""Make a client for the live server with this bearer token (``None``: no header)."""


class LiveServer(Protocol):
    """The parts of ``tests/conftest.py``'s ``LiveServer`` these tests use."""

    @property
    def url(self) -> str: ...
    @property
    def admin_token(self) -> str: ...
    @property
    def data_dir(self) -> Path: ...
    @property
    def runtime(self) -> Runtime: ...


def json_object(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert isinstance(body, dict), f"expected a JSON object, got {response.text!r}"
    return cast("dict[str, Any]", body)


def json_list(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    assert isinstance(body, list), f"expected a JSON list, got {response.text!r}"
    return cast("list[dict[str, Any]]", body)


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    """The JSON object of a successful response, after checking its status."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return json_object(response)


def envelope(response: httpx.Response, status: int) -> dict[str, Any]:
    """Check ``response`` is an error of ``status`` in the one envelope; return its body.

    The envelope is ``{message, detail?, validations?: [{field, detail}]}`` (DESIGN §11)
    and nothing else: no ``detail`` list from FastAPI, no traceback.
    """
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/json")
    body = json_object(response)
    assert set(body) <= ENVELOPE_KEYS, f"keys outside the envelope: {sorted(body)}"
    assert isinstance(body.get("message"), str), body
    assert body["message"], "the message must not be empty"
    if "detail" in body:
        assert isinstance(body["detail"], str), body
    if "validations" in body:
        validations = body["validations"]
        assert isinstance(validations, list), body
        assert validations, "an empty validations list is left out, not sent"
        for item in cast("list[Any]", validations):
            assert isinstance(item, dict), body
            entry = cast("dict[str, Any]", item)
            assert set(entry) == {"field", "detail"}, body
            assert isinstance(entry["field"], str), body
            assert isinstance(entry["detail"], str), body
            assert entry["detail"], body
    assert "Traceback" not in response.text
    return body


def fields(body: dict[str, Any]) -> list[str]:
    """The ``field`` of every validation in an error body."""
    return [cast("str", v["field"]) for v in cast("list[dict[str, Any]]", body["validations"])]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def template_yaml(name: str, *, description: str = "The first version.") -> str:
    """A template with two parameters (options; numeric validation) and a preset."""
    return f"""\
name: {name}
display_name: API test
description: {description}
icon: /icon/test.svg
default_ttl: 2h
daily_cost: 3
backend:
  type: fake  # its preset keeps two prebuilds: on the fake backend they cost no processes
parameters:
  - name: region
    display_name: Region
    description: Where the workspace runs.
    type: string
    form_type: dropdown
    default: eu
    options:
      - name: Europe
        value: eu
        description: Frankfurt
        icon: /icon/eu.svg
      - name: United States
        value: us
  - name: cpus
    display_name: CPUs
    type: number
    default: "2"
    mutable: true
    validation:
      min: 1
      max: 8
      monotonic: increasing
presets:
  - name: big
    description: Eight CPUs in the US
    default: true
    parameters:
      region: us
      cpus: "8"
    prebuilds:
      instances: 2
agents:
  - name: main
    chat: true
"""


def template_files(name: str, *, description: str = "The first version.") -> dict[str, str]:
    return {
        "template.yaml": template_yaml(name, description=description),
        "README.md": f"# {name}\n\nA template pushed by the API tests.\n",
    }


def count_rows(database_url: str, tables: tuple[str, ...] = TEMPLATE_TABLES) -> dict[str, int]:
    """Row counts of ``tables``, read straight from the server's database.

    Soft-deleted and orphaned rows count too, so "nothing stored" means nothing at all.
    """

    async def go() -> dict[str, int]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                counts: dict[str, int] = {}
                for table in tables:
                    result = await conn.execute(
                        sa.select(sa.func.count()).select_from(sa.table(table))
                    )
                    counts[table] = int(result.scalar_one())
                return counts
        finally:
            await engine.dispose()

    return asyncio.run(go())
