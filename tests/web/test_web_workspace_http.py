"""The workspace pages over plain HTTP (httpx against a live server, fake backend): the
new-workspace form per form_type, its refusals next to their fields, CSRF, another
user's workspace, and the live streams following a workspace across its builds."""

from __future__ import annotations

import asyncio
import html
import re

import httpx
import pytest
import sqlalchemy as sa
import yaml

from berth.client import Client
from berth.db.engine import create_engine
from tests.conftest import LiveServer
from tests.support.replicas import call_tool, structured
from tests.web.conftest import as_admin, create_user, form_csrf, html_of, http_login, unique
from tests.web.live_fixtures import Control, Event, Stream, parse_form

PARAMETERS = [
    {
        "name": "title",
        "type": "string",
        "default": "hello",
        "validation": {"regex": "^[a-z]+$", "error": "lowercase letters only"},
    },
    {"name": "notes", "type": "string", "form_type": "textarea", "default": "line one"},
    {
        "name": "region",
        "form_type": "dropdown",
        "default": "eu",
        "options": [{"name": "Europe", "value": "eu"}, {"name": "US", "value": "us"}],
    },
    {
        "name": "size",
        "form_type": "radio",
        "default": "s",
        "options": [{"name": "Small", "value": "s"}, {"name": "Large", "value": "l"}],
    },
    {"name": "gpu", "type": "bool", "form_type": "checkbox", "default": "false"},
    {"name": "fast", "type": "bool", "form_type": "switch", "default": "true"},
    {
        "name": "tools",
        "type": "list(string)",
        "form_type": "multi-select",
        "default": '["git"]',
        "options": [{"name": "Git", "value": "git"}, {"name": "Make", "value": "make"}],
    },
    {"name": "labels", "type": "list(string)", "form_type": "tag-select", "default": '["a","b"]'},
    {"name": "cpus", "type": "number", "default": "2", "validation": {"min": 1, "max": 8}},
]


def form_template(name: str, **fake: object) -> dict[str, str]:
    """A fake-backend template with a parameter of every form_type and a preset; its
    builds log a line naming the transition."""
    doc = {
        "name": name,
        "display_name": "Form <b>test</b>",
        "backend": {
            "type": "fake",
            "fake": {
                "logs": [f"starting {name}"],
                "stop": {"logs": [f"stopping {name}"]},
                "delete": {"logs": [f"deleting {name}"]},
                **fake,
            },
        },
        "parameters": PARAMETERS,
        "presets": [{"name": "big", "parameters": {"region": "us", "cpus": "8"}}],
    }
    return {"template.yaml": yaml.safe_dump(doc, sort_keys=False)}


@pytest.fixture
def http(http: httpx.Client, web_server: LiveServer) -> httpx.Client:
    """This module's pages are the admin's."""
    return as_admin(http, web_server)


@pytest.fixture
def template(admin_client: Client) -> str:
    name = unique("form")
    admin_client.push_template(form_template(name))
    return name


def _checked(controls: list[Control]) -> list[str]:
    return [c.attrs["value"] for c in controls if c.has("checked")]


def test_the_form_draws_each_parameter_by_its_form_type(http: httpx.Client, template: str) -> None:
    form = parse_form(html_of(http.get("/workspaces/new", params={"template": template}), 200))
    assert form.one("name").attrs["type"] == "text"
    assert form.one("name").attrs.get("value") == ""
    title = form.one("param.title")
    assert (title.tag, title.attrs["type"], title.attrs["value"]) == ("input", "text", "hello")
    assert form.one("param.notes").tag == "textarea"
    assert form.one("param.notes").text == "line one"
    region = form.one("param.region")
    assert region.tag == "select"
    assert [o.attrs["value"] for o in region.options] == ["eu", "us"]
    assert [o.attrs["value"] for o in region.options if o.has("selected")] == ["eu"]
    sizes = form.controls["param.size"]
    assert [(c.attrs["type"], c.attrs["value"]) for c in sizes] == [("radio", "s"), ("radio", "l")]
    assert _checked(list(sizes)) == ["s"]
    gpu = form.one("param.gpu")
    assert (gpu.attrs["type"], gpu.attrs["value"], gpu.has("checked")) == (
        "checkbox",
        "true",
        False,
    )
    fast = form.one("param.fast")
    assert (fast.attrs["type"], fast.attrs.get("role"), fast.has("checked")) == (
        "checkbox",
        "switch",
        True,
    )
    tools = form.controls["param.tools"]
    assert [c.attrs["value"] for c in tools] == ["git", "make"]
    assert _checked(list(tools)) == ["git"]
    assert form.one("param.labels").attrs["value"] == "a, b"
    cpus = form.one("param.cpus")
    assert (cpus.attrs["value"], cpus.attrs.get("inputmode")) == ("2", "decimal")
    preset = form.one("preset")
    assert [o.text.strip() for o in preset.options] == ["none", "big"]
    assert [o.attrs["value"] for o in preset.options if o.has("selected")] == [""]
    # choosing the preset (the select re-reads the form with it) fills in its values
    big = preset.options[1].attrs["value"]
    query = {"template": template, "preset": big, "name": "kept"}
    again = parse_form(html_of(http.get("/workspaces/new", params=query), 200))
    assert again.one("name").attrs["value"] == "kept"
    assert [o.attrs["value"] for o in again.one("param.region").options if o.has("selected")] == [
        "us"
    ]
    assert again.one("param.cpus").attrs["value"] == "8"
    assert again.one("param.title").attrs["value"] == "hello"  # not in the preset: its default


def test_the_form_opens_on_the_default_preset_and_none_stays_none(
    http: httpx.Client, admin_client: Client
) -> None:
    name = unique("form")
    files = form_template(name)
    doc = yaml.safe_load(files["template.yaml"])
    doc["presets"][0]["default"] = True
    admin_client.push_template({"template.yaml": yaml.safe_dump(doc, sort_keys=False)})

    def selected(query: dict[str, str]) -> tuple[list[str], str]:
        form = parse_form(html_of(http.get("/workspaces/new", params=query), 200))
        chosen = [o.text.strip() for o in form.one("preset").options if o.has("selected")]
        return chosen, form.one("param.cpus").attrs["value"]

    assert selected({"template": name}) == (["big (default)"], "8")
    assert selected({"template": name, "preset": ""}) == (["none"], "2")  # picked: none


def _build_parameters(server: LiveServer, workspace: str) -> dict[str, str]:
    """The latest build's parameter values, read from the server's database."""

    url = server.runtime.settings.database_url
    assert url is not None

    async def read() -> dict[str, str]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    sa.text(
                        "SELECT p.name, p.value FROM workspace_build_parameters p"
                        " JOIN workspace_builds b ON b.id = p.build_id"
                        " JOIN workspaces w ON w.id = b.workspace_id"
                        " WHERE w.name = :name ORDER BY b.build_number"
                    ),
                    {"name": workspace},
                )
                return {str(r[0]): str(r[1]) for r in rows}
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _post_form(
    http: httpx.Client, template: str, fields: list[tuple[str, str]], *, csrf: bool = True
) -> httpx.Response:
    page = http.get("/workspaces/new", params={"template": template})
    data: dict[str, list[str]] = {"template": [template]}
    if csrf:
        data["csrf"] = [form_csrf(page.text)]
    for key, value in fields:
        data.setdefault(key, []).append(value)
    return http.post("/workspaces/new", data=data)


def test_the_form_creates_the_workspace_with_what_it_posted(
    http: httpx.Client, web_server: LiveServer, template: str
) -> None:
    name = unique("made")
    fields = [
        ("name", name),
        ("preset", ""),
        ("param.title", "abc"),
        ("param.notes", "two\nlines"),
        ("param.region", "us"),
        ("param.size", "l"),
        ("param.gpu", "true"),  # param.fast posts nothing: the switch is off
        ("param.tools", "git"),
        ("param.tools", "make"),
        ("param.labels", "x, y ,"),
        ("param.cpus", "4"),
    ]
    response = _post_form(http, template, fields)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/workspaces/admin/{name}"
    assert _build_parameters(web_server, name) == {
        "title": "abc",
        "notes": "two\nlines",
        "region": "us",
        "size": "l",
        "gpu": "true",
        "fast": "false",
        "tools": '["git", "make"]',
        "labels": '["x", "y"]',
        "cpus": "4",
    }
    text = html_of(http.get(response.headers["location"]), 200)
    assert f"admin/{name}" in text
    # the same name again is refused next to the name, not a 500
    again = _post_form(http, template, [("name", name)])
    form = parse_form(html_of(again, 400))
    assert form.errors["name"] == [f"a workspace named {name!r} already exists"]


def test_bad_values_come_back_next_to_their_fields_with_what_was_typed(
    http: httpx.Client, template: str
) -> None:
    typed = [("param.region", "us"), ("param.gpu", "true"), ("param.labels", "p, q")]
    bad_name = _post_form(http, template, [("name", "Not A Name!"), *typed])
    form = parse_form(html_of(bad_name, 400))
    assert form.errors.get("name"), form.errors
    assert form.one("name").attrs["value"] == "Not A Name!"
    assert form.one("param.gpu").has("checked")
    assert form.one("param.labels").attrs["value"] == "p, q"

    name = unique("bad")
    fields = [("name", name), ("param.title", "ABC"), ("param.cpus", "99"), *typed]
    form = parse_form(html_of(_post_form(http, template, fields), 400))
    assert form.errors == {
        "param.title": ["lowercase letters only"],
        "param.cpus": ["must be <= 8"],
    }
    assert form.one("name").attrs["value"] == name
    assert form.one("param.title").attrs["value"] == "ABC"
    assert form.one("param.cpus").attrs["value"] == "99"
    region = form.one("param.region")
    assert [o.attrs["value"] for o in region.options if o.has("selected")] == ["us"]
    assert not form.one("param.fast").has("checked")  # off as posted, not back to its default
    not_a_number = [("name", name), ("param.cpus", "many")]
    form = parse_form(html_of(_post_form(http, template, not_a_number), 400))
    assert form.errors == {"param.cpus": ['must be a number, got "many"']}
    bad_preset = [("name", name), ("preset", "not-a-preset")]
    form = parse_form(html_of(_post_form(http, template, bad_preset), 400))
    assert form.errors == {"preset": ["not a preset of the template's active version"]}


def test_forms_without_their_csrf_token_are_refused(
    http: httpx.Client, admin_client: Client, template: str
) -> None:
    name = unique("nocsrf")
    text = html_of(_post_form(http, template, [("name", name)], csrf=False), 403)
    assert "This form has expired or did not come from this page." in text
    assert name not in [w.name for w in admin_client.list_workspaces()]
    workspace = unique("ws")
    admin_client.create_workspace(workspace, template)
    for action in ("start", "stop", "delete"):
        response = http.post(f"/workspaces/admin/{workspace}/{action}", data={"csrf": "wrong"})
        assert "Form refused" in html_of(response, 403)
    latest = admin_client.get_workspace(workspace).latest_build
    assert latest is not None
    assert latest.build_number == 1


def test_another_users_workspace_its_stream_and_buttons_are_a_404(
    web_server: LiveServer, admin_client: Client, template: str
) -> None:
    workspace = unique("mine")
    admin_client.create_workspace(workspace, template)
    member = unique("member")
    create_user(web_server, member, "a long enough password")
    with httpx.Client(base_url=web_server.url, timeout=30.0) as other:
        http_login(other, username=member, password="a long enough password")
        csrf = form_csrf(html_of(other.get("/logout"), 200))
        assert "<h1>Not found</h1>" in html_of(other.get(f"/workspaces/admin/{workspace}"), 404)
        assert html_of(other.get(f"/workspaces/admin/{workspace}/live"), 404)
        for action in ("start", "stop", "delete"):
            response = other.post(f"/workspaces/admin/{workspace}/{action}", data={"csrf": csrf})
            assert "<h1>Not found</h1>" in html_of(response, 404)
        assert workspace not in other.get("/workspaces").text
    latest = admin_client.get_workspace(workspace).latest_build
    assert latest is not None
    assert latest.build_number == 1


def _status(event: Event, value: str) -> bool:
    return event.name == "status" and f'data-status="{value}"' in event.data


def _seen(stream: Stream, text: str) -> bool:
    return any(e.name == "build-log" and text in e.data for e in stream.seen)


def _seen_status(stream: Stream, value: str) -> bool:
    return any(_status(e, value) for e in stream.seen)


def _live_url(html: str) -> str:
    match = re.search(r'sse-connect="([^"]+)"', html)
    assert match, "the page has no live stream"
    return match.group(1).replace("&amp;", "&")


def _press(http: httpx.Client, path: str, action: str) -> httpx.Response:
    csrf = form_csrf(http.get(path).text)
    return http.post(f"{path}/{action}", data={"csrf": csrf}, headers={"HX-Request": "true"})


def test_the_live_stream_follows_the_workspace_across_builds_until_it_is_deleted(
    http: httpx.Client, web_server: LiveServer, template: str
) -> None:
    name = unique("live")
    assert _post_form(http, template, [("name", name)]).status_code == 303
    path = f"/workspaces/admin/{name}"
    page = html_of(http.get(path), 200)
    assert 'hx-ext="sse"' in page
    assert 'sse-close="close"' in page
    with (
        httpx.Client(base_url=web_server.url, cookies=http.cookies, timeout=30.0) as watcher,
        watcher.stream("GET", _live_url(page)) as response,
    ):
        stream = Stream(response)
        stream.until(lambda e: _status(e, "running"), "running")
        stopped = _press(http, path, "stop")
        assert "Stopping: build 2 is queued." in stopped.text
        head = stream.until(lambda e: e.name == "build-log" and "Build #2" in e.data, "build 2")
        assert "Build #2 · stop" in head.data
        stream.until(
            lambda _: _seen(stream, f"stopping {template}") and _seen_status(stream, "stopped"),
            "the stop build's log and stopped",
        )
        assert "Starting: build 3 is queued." in _press(http, path, "start").text
        stream.until(lambda e: e.name == "build-log" and "Build #3 · start" in e.data, "build 3")
        stream.until(lambda e: _status(e, "running"), "running again")
        assert "Deleting: build 4 is queued." in _press(http, path, "delete").text
        stream.until(lambda e: _status(e, "deleted"), "deleted")
        assert [e.name for e in stream.rest()] == ["close"]  # and then the stream ends
    ids = [e.id for e in stream.seen if e.id]
    assert ids
    assert all(re.fullmatch(r"[0-9a-f-]{36}\.\d+\.\d+", i) for i in ids)
    assert "Not found" in html_of(http.get(path), 404)


def test_a_reconnecting_stream_resumes_from_its_last_event_id(
    http: httpx.Client, web_server: LiveServer, template: str
) -> None:
    name = unique("resume")
    assert _post_form(http, template, [("name", name)]).status_code == 303
    path = f"/workspaces/admin/{name}"
    with http.stream("GET", f"{path}/live") as response:  # no cursor: from the start
        stream = Stream(response)
        stream.until(
            lambda _: _seen(stream, f"starting {template}") and _seen_status(stream, "running"),
            "the build's log and running",
        )
    first = next(e for e in stream.seen if f"starting {template}" in e.data)
    headers = {"Last-Event-ID": first.id}
    with http.stream("GET", f"{path}/live", headers=headers) as response:
        stream = Stream(response)
        stream.until(lambda e: _status(e, "running"), "running")
    assert not [e for e in stream.seen if f"starting {template}" in e.data]  # not sent twice


def test_a_refused_transition_shows_the_services_message(
    http: httpx.Client, admin_client: Client
) -> None:
    template = unique("hang")
    admin_client.push_template(form_template(template, hang=True))
    name = unique("busy")
    admin_client.create_workspace(name, template)
    path = f"/workspaces/admin/{name}"
    try:
        response = _press(http, path, "start")
        assert response.status_code == 200  # htmx shows only 2xx answers
        assert response.headers["x-berth-status"] == "409"
        assert f"Workspace {name!r} is already building." in html.unescape(response.text)
        assert 'role="alert"' in response.text
        plain = http.post(f"{path}/start", data={"csrf": form_csrf(http.get(path).text)})
        assert f"Workspace {name!r} is already building." in html.unescape(html_of(plain, 409))
    finally:
        admin_client.cancel_build(name)


def test_the_page_shows_the_chat_the_workspace_is_bound_to(
    http: httpx.Client, web_server: LiveServer, admin_client: Client, template: str
) -> None:
    chat = admin_client.create_chat(title="a <b>chat</b>")
    template_id = admin_client.get_template(template).id
    arguments = {"template_id": str(template_id), "name": unique("bound")}
    result = asyncio.run(
        call_tool(
            web_server.url, web_server.admin_token, str(chat.id), "create_workspace", arguments
        )
    )
    name = structured(result)["workspace_name"].split("/")[-1]
    text = html_of(http.get(f"/workspaces/admin/{name}"), 200)
    assert f'<a href="/chats/{chat.id}">a &lt;b&gt;chat&lt;/b&gt;</a>' in text
    unbound = unique("unbound")
    admin_client.create_workspace(unbound, template)
    assert "not bound to a chat" in html_of(http.get(f"/workspaces/admin/{unbound}"), 200)


def test_the_list_is_live(http: httpx.Client, admin_client: Client, template: str) -> None:
    first = unique("listed")
    admin_client.create_workspace(first, template)
    page = html_of(http.get("/workspaces"), 200)
    assert 'sse-swap="rows"' in page
    assert 'href="/workspaces/new"' in page
    with http.stream("GET", _live_url(page)) as response:
        stream = Stream(response)
        stream.until(lambda e: e.name == "rows" and f"admin/{first}" in e.data, "the rows")
        second = unique("listed")
        admin_client.create_workspace(second, template)
        stream.until(lambda e: f"admin/{second}" in e.data, "the new workspace")
        admin_client.stop_workspace(first)

        def stopped(event: Event) -> bool:
            row = re.search(rf'data-workspace="admin/{first}".*?</tr>', event.data, re.S)
            return row is not None and 'data-status="stopped"' in row.group(0)

        stream.until(stopped, "the stopped status")


def test_the_template_page_links_to_the_form(http: httpx.Client, template: str) -> None:
    text = html_of(http.get(f"/templates/{template}"), 200)
    assert f'href="/workspaces/new?template={template}"' in text
    chooser = html_of(http.get("/workspaces/new"), 200)
    assert f'href="/workspaces/new?template={template}"' in chooser
    assert "Form &lt;b&gt;test&lt;/b&gt;" in chooser
    assert html_of(http.get("/workspaces/new", params={"template": "no-such"}), 404)
