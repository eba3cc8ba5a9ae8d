"""The client's prebuild methods against a live server (the fake backend)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import httpx
import pytest

from berth.client import ApiError, Client, PrebuildPool
from tests.support.prebuilds import PRESET, pooled_template_yaml, wait_for_pool


class LiveServer(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def admin_token(self) -> str: ...


@pytest.fixture
def admin(live_server: LiveServer) -> Iterator[Client]:
    with Client(live_server.url, live_server.admin_token) as client:
        yield client


def raw(client: Client) -> dict[str, Any]:
    return client.prebuilds().raw


def test_prebuilds_pause_resume(admin: Client) -> None:
    empty = admin.prebuilds()
    assert isinstance(empty, PrebuildPool)
    assert (empty.paused, empty.presets, empty.prebuilds) == (False, [], [])

    pushed = admin.push_template({"template.yaml": pooled_template_yaml("pooled")})
    wait_for_pool(lambda: raw(admin), 2)
    pool = admin.prebuilds()
    (preset,) = pool.presets
    assert (preset.preset_name, preset.template_name) == (PRESET, "pooled")
    assert (preset.desired, preset.actual, preset.ready, preset.failures) == (2, 2, 2, 0)
    assert preset.template_version_id == pushed.version.id
    assert preset.retry_at is None
    assert len(pool.prebuilds) == 2
    for row in pool.prebuilds:
        assert row.ready
        assert row.status == "running"
        assert row.preset_id == preset.preset_id
        assert row.template_id == pushed.template.id
        assert row.created_at is not None

    paused = admin.pause_prebuilds()
    assert paused.paused
    assert {p.workspace_id for p in paused.prebuilds} == {p.workspace_id for p in pool.prebuilds}
    assert admin.prebuilds().paused
    assert not admin.resume_prebuilds().paused
    assert not admin.prebuilds().paused


def test_a_member_gets_403(admin: Client, live_server: LiveServer) -> None:
    admin.create_user("alice")
    token = admin.create_token("t", user="alice").token
    with Client(live_server.url, token) as alice:
        for call in (alice.prebuilds, alice.pause_prebuilds, alice.resume_prebuilds):
            with pytest.raises(ApiError) as caught:
                call()
            assert caught.value.status_code == 403, call.__name__
    assert not admin.prebuilds().paused


def test_the_model_keeps_the_body(live_server: LiveServer, admin: Client) -> None:
    """``raw`` is the server's body exactly (``-o json`` prints it)."""
    admin.push_template({"template.yaml": pooled_template_yaml("pooled", instances=1)})
    wait_for_pool(lambda: raw(admin), 1)
    headers = {"Authorization": f"Bearer {live_server.admin_token}"}
    body = httpx.get(f"{live_server.url}/api/v1/prebuilds", headers=headers).json()
    assert admin.prebuilds().raw == body
