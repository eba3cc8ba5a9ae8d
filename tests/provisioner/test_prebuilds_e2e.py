"""Prebuilds end to end (issue 10): a real server keeps a pool of real sandboxes, and a
chat claims one over MCP.

The server's reconciler builds two prebuilds of a local-backend template (bubblewrap
where installed); ``create_workspace`` with the preset claims one of them: the agent
gets the new owner's manifest, runs its ``claim`` script and reports ready; a file its
start script wrote at prebuild time still says ``prebuilds``, while the environment
rendered from ``{{ owner.username }}`` says the new owner. The pool is two ready
prebuilds again afterwards, and a new version replaces it and leaves the claimed
workspace alone. The logic around it (backoff, leases, concurrent claims on both
databases) is in ``tests/services/test_prebuilds.py``.
"""

from __future__ import annotations

import shutil
from typing import Any, cast

import httpx
import pytest

from tests.conftest import LiveServer
from tests.mcp.test_mcp_e2e import api, call, mcp_client
from tests.support.waiting import until

pytestmark = pytest.mark.anyio

TEMPLATE = """\
name: warm
description: {description}
backend:
  type: local
  isolation: {isolation}
parameters:
  - name: size
    type: string
    default: small
presets:
  - name: fast
    parameters: {{size: small}}
    prebuilds: {{instances: 2}}
agents:
  - name: main
    chat: true
    env: {{OWNER_NAME: "{{{{ owner.username }}}}"}}
    scripts:
      - display_name: setup
        blocks_login: true
        script: echo "built by {{{{ owner.username }}}}" > ~/built-by
      - display_name: welcome
        run_on: claim
        blocks_login: true
        script: echo "claimed by {{{{ owner.username }}}}" > ~/claimed-by
"""
WAIT = 90.0


def template(description: str = "v1") -> str:
    isolation = "bwrap" if shutil.which("bwrap") else "none"
    return TEMPLATE.format(isolation=isolation, description=description)


async def ready_pool(http: httpx.AsyncClient, version_id: str) -> list[dict[str, Any]]:
    """The pool once it holds exactly two ready prebuilds, both of ``version_id``.

    Polled (each read is a cheap GET): the pool's changes have no stream to wait on
    from outside the server.
    """

    async def rows() -> list[dict[str, Any]]:
        response = await http.get("/prebuilds")
        assert response.status_code == 200, response.text
        return cast(list[dict[str, Any]], response.json()["prebuilds"])

    return await until(
        rows,
        lambda found: (
            len(found) == 2
            and all(r["ready"] and r["template_version_id"] == version_id for r in found)
        ),
        within=WAIT,
        every=0.1,
        what="two ready prebuilds of the active version",
    )


@pytest.mark.spec("cw.prebuild")
async def test_a_chat_claims_a_prebuilt_workspace_personalized_for_its_owner(
    live_server: LiveServer,
) -> None:
    async with api(live_server) as http:
        pushed = await http.post("/templates", json={"files": {"template.yaml": template()}})
        assert pushed.status_code == 201, pushed.text
        template_id = pushed.json()["template"]["id"]
        version_id = pushed.json()["version"]["id"]
        pool = await ready_pool(http, version_id)
        assert {r["preset_name"] for r in pool} == {"fast"}
        chat = (await http.post("/chats", json={"title": "claim"})).json()
        created: dict[str, Any] = {}

        async for client in mcp_client(live_server, chat["id"], live_server.admin_token):
            read = await call(client, "read_template", {"template_id": template_id})
            (preset,) = read["presets"]
            assert preset["desired_prebuild_instances"] == 2
            created = await call(
                client,
                "create_workspace",
                {"template_id": template_id, "name": "mine", "preset_id": preset["id"]},
            )
            assert created["created"] is True
            assert created["workspace_name"] == "admin/mine"
            ran = await call(
                client, "execute", {"command": "cat ~/built-by ~/claimed-by; printenv OWNER_NAME"}
            )
            assert ran["output"].splitlines() == ["built by prebuilds", "claimed by admin", "admin"]

        shown = (await http.get("/workspaces/mine")).json()
        assert shown["owner_name"] == "admin"
        assert shown["latest_build"]["reason"] == "claim"
        assert shown["latest_build"]["id"] == created["build_id"]
        assert shown["id"] in {r["workspace_id"] for r in pool}

        refilled = await ready_pool(http, version_id)
        assert shown["id"] not in {r["workspace_id"] for r in refilled}

        # A new version: the pool is rebuilt from it; the claimed workspace is untouched.
        again = await http.post("/templates", json={"files": {"template.yaml": template("v2")}})
        assert again.status_code == 200, again.text  # a new version of a known template
        replaced = await ready_pool(http, again.json()["version"]["id"])
        assert not {r["workspace_id"] for r in replaced} & {r["workspace_id"] for r in refilled}
        mine = (await http.get("/workspaces/mine")).json()
        assert (mine["status"], mine["owner_name"]) == ("running", "admin")
        assert mine["latest_build"]["template_version_id"] == version_id
