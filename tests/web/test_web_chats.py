"""The chat pages over HTTP (httpx, no browser): ``/chats`` lists the workspace the chat
tool ``create_workspace`` bound, ``/chats/{id}`` shows it with its build and agents, and
``/chats/{id}/live`` streams those parts as HTML events. Another user's chat is a 404.

The chat tool is called for real: the official MCP client over streamable HTTP against
the live server (fake backend), as ``tests/mcp`` does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import time
import uuid
from dataclasses import dataclass

import anyio
import httpx
import pytest
from playwright.sync_api import expect

from berth.client import Client
from berth.db.engine import Database, create_engine
from berth.domain.actors import as_system
from berth.services import chats
from berth.services.base import Ctx
from tests.conftest import LiveServer
from tests.mcp.test_mcp_e2e import call, mcp_client
from tests.web.conftest import (
    WAIT_MS,
    OpenPage,
    PageErrors,
    as_admin,
    browser_login,
    create_user,
    form_csrf,
    html_of,
    http_login,
    unique,
)

STREAM_WAIT_SECONDS = 30.0
"""The bound on waiting for an event of the live stream."""


@dataclass(frozen=True)
class BoundChat:
    chat_id: str
    workspace: str


def _template(client: Client, *, agent: bool) -> str:
    """A template on the fake backend, with an agent ``main`` or none. The chat tool
    waits for a chat agent to connect, and the fake backend runs none: its template has
    no agent (the tool answers ``no_agent`` at once)."""
    name = unique("chat-tpl")
    agents = "agents:\n  - name: main\n    chat: true\n" if agent else ""
    yaml = f"name: {name}\ndisplay_name: Chat test\nbackend:\n  type: fake\n{agents}"
    return str(client.push_template({"template.yaml": yaml}).template.id)


def _chat_with_workspace(server: LiveServer, client: Client) -> BoundChat:
    """A chat of the admin's whose ``create_workspace``, called over MCP, made a workspace."""
    template_id = _template(client, agent=False)
    chat_id = str(client.create_chat(title="<b>made by the tool</b>").id)
    name = unique("chatws")

    async def create() -> None:
        async for mcp in mcp_client(server, chat_id, server.admin_token):
            created = await call(
                mcp, "create_workspace", {"template_id": template_id, "name": name}
            )
            assert created["created"] is True
            assert created["workspace_name"] == f"admin/{name}"

    anyio.run(create)
    return BoundChat(chat_id, name)


def _chat_bound_to_a_workspace_with_an_agent(server: LiveServer, client: Client) -> BoundChat:
    """A chat bound, through the chats service the tools call, to a workspace whose
    template has an agent (created through the API)."""
    name = unique("agentws")
    workspace = client.create_workspace(name, _template(client, agent=True))
    chat = client.create_chat(title="with an agent")

    async def bind() -> None:
        db = Database(create_engine(server.runtime.settings.resolved_database_url()))
        try:
            ctx = Ctx(db, as_system())
            assert (
                await chats.bind_workspace(
                    ctx, uuid.UUID(str(chat.id)), uuid.UUID(str(workspace.id)), None
                )
                is not None
            )
        finally:
            await db.engine.dispose()

    # In a thread of its own: a browser test's thread has Playwright's event loop running.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, bind()).result(timeout=60)
    return BoundChat(str(chat.id), name)


def test_chats_lists_the_workspace_create_workspace_bound_to_the_chat(
    http: httpx.Client, web_server: LiveServer, admin_client: Client
) -> None:
    bound = _chat_with_workspace(web_server, admin_client)
    unbound = str(admin_client.create_chat(title="nothing yet").id)
    text = html_of(as_admin(http, web_server).get("/chats"))
    row = re.search(rf'<tr data-chat="{bound.chat_id}">.*?</tr>', text, re.S)
    assert row, text
    assert f'<a href="/workspaces/admin/{bound.workspace}">{bound.workspace}</a>' in row.group()
    assert f'<a href="/chats/{bound.chat_id}">&lt;b&gt;made by the tool' in row.group()
    assert re.search(r'data-status="(pending|starting|running)"', row.group())
    other = re.search(rf'<tr data-chat="{unbound}">.*?</tr>', text, re.S)
    assert other
    assert "/workspaces/" not in other.group()

    page = html_of(http.get(f"/chats/{bound.chat_id}"))
    assert f'sse-connect="/chats/{bound.chat_id}/live"' in page
    assert f'href="/workspaces/admin/{bound.workspace}"' in page
    assert '<td class="build-transition">start</td>' in page
    assert "No agents." in page
    assert "No workspace yet" in html_of(http.get(f"/chats/{unbound}"))


class Stream:
    """The events of an SSE response, read one at a time, each within a bound."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.iter_lines()

    def next_event(self) -> tuple[str, str] | None:
        """The next event's name and data; ``None`` when the stream ended."""
        name, data = "", list[str]()
        for line in self._lines:
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: ") or line == "data:":
                data.append(line.removeprefix("data:").removeprefix(" "))
            elif line == "" and name:
                return name, "\n".join(data)
        return None

    def until(self, event: str, pattern: str) -> str:
        """Read on until an ``event`` whose data matches ``pattern``; its data."""
        deadline = time.monotonic() + STREAM_WAIT_SECONDS
        while time.monotonic() < deadline:
            got = self.next_event()
            assert got is not None, f"the stream ended before a {event!r} event"
            if got[0] == event and re.search(pattern, got[1]):
                return got[1]
        raise AssertionError(f"no {event!r} event matching {pattern!r}")


def _stream(http: httpx.Client, chat_id: str) -> httpx.Response:
    timeout = httpx.Timeout(30.0, read=STREAM_WAIT_SECONDS)
    return http.send(
        http.build_request("GET", f"/chats/{chat_id}/live", timeout=timeout), stream=True
    )


def test_the_live_stream_sends_every_part_then_each_change(
    http: httpx.Client, web_server: LiveServer, admin_client: Client
) -> None:
    bound = _chat_bound_to_a_workspace_with_an_agent(web_server, admin_client)
    response = _stream(as_admin(http, web_server), bound.chat_id)
    try:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = Stream(response)
        first = [events.next_event() for _ in range(3)]
        assert [e[0] for e in first if e] == ["workspace", "build", "agents"]
        workspace, build, agents = (e[1] for e in first if e)
        assert f">{bound.workspace}</a>" in workspace
        assert '<td class="build-transition">start</td>' in build
        assert re.search(
            r'<tr data-agent="main"><td>main</td><td class="agent-status">(connecting|timeout)</td>'
            r'<td class="agent-lifecycle">created</td>',
            agents,
        )

        admin_client.stop_workspace(bound.workspace)
        events.until("build", r'<td class="build-transition">stop</td>')
        events.until("workspace", r'data-status="stopped"')
    finally:
        response.close()


def test_the_live_stream_ends_when_the_session_does(
    http: httpx.Client, web_server: LiveServer, admin_client: Client
) -> None:
    bound = _chat_bound_to_a_workspace_with_an_agent(web_server, admin_client)
    confirm = as_admin(http, web_server).get("/logout").text
    response = _stream(http, bound.chat_id)
    try:
        events = Stream(response)
        assert [(e or ("", ""))[0] for e in (events.next_event() for _ in range(3))] == [
            "workspace",
            "build",
            "agents",
        ]
        with httpx.Client(base_url=web_server.url, cookies=http.cookies) as other_tab:
            assert other_tab.post("/logout", data={"csrf": form_csrf(confirm)}).status_code == 303
        admin_client.stop_workspace(bound.workspace)  # an event: the stream wakes
        events.until("close", "^$")
        assert events.next_event() is None  # and it ended
    finally:
        response.close()


def test_another_users_chat_and_its_stream_are_a_404_page(
    http: httpx.Client, web_server: LiveServer, admin_client: Client
) -> None:
    chat_id = str(admin_client.create_chat(title="the admin's").id)
    member = unique("chatter")
    create_user(web_server, member, "member password")
    assert http_login(http, username=member, password="member password").status_code == 303
    for path in (f"/chats/{chat_id}", f"/chats/{chat_id}/live", "/chats/not-a-chat"):
        assert "<h1>Not found</h1>" in html_of(http.get(path), 404), path
    text = html_of(http.get("/chats"))
    assert chat_id not in text
    assert "No chats yet" in text


@pytest.mark.xdist_group("web-browser")
def test_the_chat_page_follows_its_workspace_live_in_a_browser(
    web_server: LiveServer, admin_client: Client, open_page: OpenPage, page_errors: PageErrors
) -> None:
    bound = _chat_bound_to_a_workspace_with_an_agent(web_server, admin_client)
    page = open_page()
    browser_login(page, token=web_server.admin_token)
    page.goto(f"/chats/{bound.chat_id}")
    expect(page.locator("#chat-workspace a")).to_have_text(bound.workspace)
    expect(page.locator("#chat-agents [data-agent=main] .agent-lifecycle")).to_have_text(
        "created", timeout=WAIT_MS
    )
    admin_client.stop_workspace(bound.workspace)
    expect(page.locator("#chat-build .build-transition")).to_have_text(
        "stop", timeout=WAIT_MS
    )  # no reload
    expect(page.locator("#chat-workspace .status")).to_have_attribute(
        "data-status", "stopped", timeout=WAIT_MS
    )
    assert page_errors.console == []  # a CSP violation is a console error
    assert page_errors.scripts == []
