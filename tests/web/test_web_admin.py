"""The admin page over HTTP (httpx) and in a browser: users (create, suspend, roles,
password), prebuild pools (desired, actual, last error; pause and resume) and settings.

Every form: it works (303 back to ``/admin`` with a notice), a bad value is the page
again (400) with the service's message next to the field and what was typed kept, and
without its CSRF token it is refused. A member gets the 404 page, for the page and for
each form.
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from berth.client import Client
from berth.client.models import User
from tests.conftest import LiveServer
from tests.web.conftest import (
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
from tests.web.test_web_browser import param_template

PASSWORD = "a long enough password"


@pytest.fixture
def admin(http: httpx.Client, web_server: LiveServer) -> httpx.Client:
    return as_admin(http, web_server)


def _post(http: httpx.Client, path: str, data: dict[str, str | list[str]]) -> httpx.Response:
    """Post an admin form with the session's CSRF token (read from the page)."""
    csrf = form_csrf(html_of(http.get("/admin")))
    return http.post(path, data={"csrf": csrf, **data})


def _done(response: httpx.Response, http: httpx.Client, notice: str) -> str:
    """A form that worked: 303 to /admin, which says ``notice``; the page."""
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/admin?done=")
    text = html_of(http.get(response.headers["location"]))
    assert f'<p class="message notice" role="status">{notice}</p>' in text
    return text


def _form(text: str, action: str) -> str:
    """The HTML of the form that posts to ``action``."""
    match = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', text, re.S)
    assert match, f"no form posting to {action}"
    return match.group()


def _refused_without_csrf(http: httpx.Client, path: str, data: dict[str, str]) -> None:
    text = html_of(http.post(path, data=data), 403)
    assert "This form has expired or did not come from this page." in text
    forged = html_of(http.post(path, data={**data, "csrf": "forged"}), 403)
    assert "<h1>Form refused</h1>" in forged


def _user(client: Client, username: str) -> User:
    return next(u for u in client.list_users() if u.username == username)


def _user_row(text: str, username: str) -> str:
    match = re.search(rf'<tr data-user="{username}">.*?</tr>', text, re.S)
    assert match, f"no row of {username}"
    return match.group()


# --- who sees it -----------------------------------------------------------------------------


def test_a_member_gets_the_404_page_for_the_admin_page_and_its_forms(
    http: httpx.Client, web_server: LiveServer, admin_client: Client
) -> None:
    member = unique("member")
    create_user(web_server, member, PASSWORD)
    assert http_login(http, username=member, password=PASSWORD).status_code == 303
    csrf = form_csrf(html_of(http.get("/workspaces")))
    assert 'href="/admin"' not in http.get("/workspaces").text
    assert "<h1>Not found</h1>" in html_of(http.get("/admin"), 404)
    victim = unique("victim")
    for path, data in [
        ("/admin/users", {"username": victim, "password": PASSWORD}),
        ("/admin/users/admin/suspend", {}),
        (f"/admin/users/{member}/roles", {"roles": "owner"}),
        ("/admin/users/admin/password", {"password": "taken over!"}),
        ("/admin/prebuilds/pause", {}),
        ("/admin/settings/chat-workspace-ttl", {"chat-workspace-ttl": "1m"}),
    ]:
        assert "<h1>Not found</h1>" in html_of(http.post(path, data={"csrf": csrf, **data}), 404)
    assert victim not in [u.username for u in admin_client.list_users()]
    assert _user(admin_client, "admin").status == "active"
    assert not admin_client.prebuilds().paused


# --- users -----------------------------------------------------------------------------------


def test_creating_a_user_makes_one_who_logs_in_and_a_bad_one_shows_why(
    admin: httpx.Client, web_server: LiveServer
) -> None:
    name = unique("new")
    response = _post(admin, "/admin/users", {"username": name, "password": PASSWORD, "roles": []})
    text = _done(
        response, admin, f"User {name} created. They can log in with the password you gave."
    )
    assert '<td class="user-roles">member</td>' in _user_row(text, name)
    with httpx.Client(base_url=web_server.url) as theirs:
        assert http_login(theirs, username=name, password=PASSWORD).status_code == 303

    bad = "Bad Name!"
    response = _post(
        admin, "/admin/users", {"username": bad, "password": "short", "roles": ["template-admin"]}
    )
    form = _form(html_of(response, 400), "/admin/users")
    assert (
        '<p class="message error" role="alert" data-form-error="create">Invalid user.</p>' in form
    )
    assert re.search(
        r'name="username" value="Bad Name!".*?<p class="field-error" data-field-error="username">',
        form,
        re.S,
    )
    assert re.search(
        r'name="password" autocomplete="new-password" required>\s*'
        r'<p class="field-error" data-field-error="password">must be at least 8 characters</p>',
        form,
    )
    assert 'value="template-admin" checked' in form  # the roles chosen are kept
    assert "short" not in form  # a password is never sent back

    taken = _post(admin, "/admin/users", {"username": name, "password": PASSWORD})
    form = _form(html_of(taken, 400), "/admin/users")
    assert '<p class="field-error" data-field-error="username">already taken</p>' in form

    _refused_without_csrf(admin, "/admin/users", {"username": unique("x"), "password": PASSWORD})


def test_suspending_a_user_locks_them_out_until_activated(
    admin: httpx.Client, web_server: LiveServer
) -> None:
    name = unique("susp")
    create_user(web_server, name, PASSWORD)
    text = _done(
        _post(admin, f"/admin/users/{name}/suspend", {}),
        admin,
        f"User {name} suspended: their API tokens and web sessions no longer work.",
    )
    row = _user_row(text, name)
    assert 'data-user-status="suspended"' in row
    assert f'action="/admin/users/{name}/activate"' in row
    with httpx.Client(base_url=web_server.url) as theirs:
        assert http_login(theirs, username=name, password=PASSWORD).status_code == 401
        _done(
            _post(admin, f"/admin/users/{name}/activate", {}),
            admin,
            f"User {name} is active again.",
        )
        assert http_login(theirs, username=name, password=PASSWORD).status_code == 303

    text = html_of(_post(admin, "/admin/users/admin/suspend", {}), 400)
    assert (
        '<p class="message error" role="alert" data-form-error="status:admin">'
        "You cannot suspend yourself. (another site owner must do it)</p>"
    ) in _user_row(text, "admin")
    assert "<h1>Not found</h1>" in html_of(
        _post(admin, "/admin/users/nobody-here/suspend", {}), 404
    )
    _refused_without_csrf(admin, f"/admin/users/{name}/suspend", {})


def test_changing_roles_and_a_bad_role_next_to_its_field(
    admin: httpx.Client, web_server: LiveServer, admin_client: Client
) -> None:
    name = unique("roles")
    create_user(web_server, name, PASSWORD)
    text = _done(
        _post(admin, f"/admin/users/{name}/roles", {"roles": ["owner", "template-admin"]}),
        admin,
        f"The roles of {name} are changed.",
    )
    assert '<td class="user-roles">owner, template-admin</td>' in _user_row(text, name)
    assert _user(admin_client, name).roles == ["owner", "template-admin"]

    response = _post(admin, f"/admin/users/{name}/roles", {"roles": ["template-admin", "king"]})
    row = _user_row(html_of(response, 400), name)
    assert "<details open>" in row  # the refused form is shown, not folded away
    assert re.search(
        r'<p class="field-error" data-field-error="roles">unknown role &#39;king&#39;; one of ',
        row,
    )
    assert 'value="template-admin" checked' in row
    assert 'value="owner" checked' not in row  # what was sent is kept, not what is stored
    assert _user(admin_client, name).roles == ["owner", "template-admin"]

    refused = html_of(_post(admin, "/admin/users/admin/roles", {"roles": []}), 400)
    assert "You cannot remove your own owner role." in _user_row(refused, "admin")
    _refused_without_csrf(admin, f"/admin/users/{name}/roles", {"roles": "owner"})


def test_resetting_a_password_and_a_bad_one_next_to_its_field(
    admin: httpx.Client, web_server: LiveServer
) -> None:
    name = unique("pw")
    create_user(web_server, name, PASSWORD)
    _done(
        _post(admin, f"/admin/users/{name}/password", {"password": "the new password"}),
        admin,
        f"The password of {name} is set; their web sessions have ended.",
    )
    with httpx.Client(base_url=web_server.url) as theirs:
        assert http_login(theirs, username=name, password=PASSWORD).status_code == 401
        assert http_login(theirs, username=name, password="the new password").status_code == 303

    row = _user_row(
        html_of(_post(admin, f"/admin/users/{name}/password", {"password": "x"}), 400), name
    )
    assert (
        '<p class="field-error" data-field-error="password">must be at least 8 characters</p>'
        in row
    )
    _refused_without_csrf(admin, f"/admin/users/{name}/password", {"password": PASSWORD})


# --- prebuilds and settings -----------------------------------------------------------------


def test_the_prebuild_pools_show_desired_and_actual_and_pause_and_resume(
    admin: httpx.Client, admin_client: Client
) -> None:
    template = unique("pool")
    admin_client.push_template(param_template(template))
    text = html_of(admin.get("/admin"))
    pool = re.search(rf'<tr data-pool="{template}/big">.*?</tr>', text, re.S)
    assert pool, text
    assert '<td class="desired">2</td>' in pool.group()
    assert re.search(r'<td class="actual">[0-2]</td>', pool.group())

    text = _done(
        _post(admin, "/admin/prebuilds/pause", {}),
        admin,
        "Prebuilds are paused: no prebuild is created or deleted until resumed.",
    )
    assert 'data-paused="true"' in text
    assert admin_client.prebuilds().paused
    _done(_post(admin, "/admin/prebuilds/resume", {}), admin, "Prebuilds are reconciled again.")
    assert not admin_client.prebuilds().paused

    assert "<h1>Not found</h1>" in html_of(_post(admin, "/admin/prebuilds/explode", {}), 404)
    _refused_without_csrf(admin, "/admin/prebuilds/pause", {})
    assert not admin_client.prebuilds().paused


def test_the_chat_workspace_ttl_is_a_duration_and_a_bad_one_shows_why(
    admin: httpx.Client, admin_client: Client
) -> None:
    action = "/admin/settings/chat-workspace-ttl"
    text = _done(
        _post(admin, action, {"chat-workspace-ttl": "2h30m"}), admin, "The setting is saved."
    )
    assert 'name="chat-workspace-ttl" value="2h30m0s"' in _form(text, action)
    assert admin_client.get_config("chat-workspace-ttl").value == "2h30m0s"

    form = _form(html_of(_post(admin, action, {"chat-workspace-ttl": "5s"}), 400), action)
    assert 'name="chat-workspace-ttl" value="5s"' in form  # kept
    assert (
        '<p class="field-error" data-field-error="chat-workspace-ttl">'
        "Workspace TTL must not be less than 1 minute.</p>"
    ) in form
    assert admin_client.get_config("chat-workspace-ttl").value == "2h30m0s"
    _refused_without_csrf(admin, action, {"chat-workspace-ttl": "1h"})
    _done(_post(admin, action, {"chat-workspace-ttl": "0s"}), admin, "The setting is saved.")


def test_the_chat_template_allowlist_is_chosen_from_the_templates_by_name(
    admin: httpx.Client, admin_client: Client
) -> None:
    action = "/admin/settings/chat-template-allowlist"
    name = unique("allowed")
    template_id = str(admin_client.push_template(param_template(name)).template.id)
    form = _form(html_of(admin.get("/admin")), action)
    box = f'<input type="checkbox" name="chat-template-allowlist" value="{template_id}"> {name}'
    assert box in form
    try:
        text = _done(
            _post(admin, action, {"chat-template-allowlist": [template_id]}),
            admin,
            "The setting is saved.",
        )
        assert f'value="{template_id}" checked> {name}' in _form(text, action)
        assert admin_client.get_config("chat-template-allowlist").value == template_id

        response = _post(admin, action, {"chat-template-allowlist": [template_id, "not-one"]})
        form = _form(html_of(response, 400), action)
        assert (
            '<p class="field-error" data-field-error="chat-template-allowlist">'
            "&#39;not-one&#39; is not the id of a template</p>"
        ) in form
        assert f'value="{template_id}" checked> {name}' in form
        assert admin_client.get_config("chat-template-allowlist").value == template_id
        _refused_without_csrf(admin, action, {"chat-template-allowlist": template_id})
    finally:
        _done(_post(admin, action, {}), admin, "The setting is saved.")  # none: every template
    assert admin_client.get_config("chat-template-allowlist").value == ""


# --- in a browser ---------------------------------------------------------------------------


@pytest.mark.xdist_group("web-browser")
def test_an_admin_creates_a_user_in_the_browser_who_then_logs_in(
    web_server: LiveServer, open_page: OpenPage, page_errors: PageErrors
) -> None:
    admin = open_page()
    browser_login(admin, token=web_server.admin_token)
    admin.get_by_role("link", name="Admin").click()
    expect(admin).to_have_url(re.compile(r"/admin$"))
    name = unique("browser")
    admin.fill("#new-username", name)
    admin.fill("#new-password", PASSWORD)
    admin.click("#create-user button[type=submit]")
    expect(admin.get_by_role("status")).to_have_text(
        f"User {name} created. They can log in with the password you gave."
    )
    expect(admin.locator(f"[data-user='{name}'] .user-status")).to_have_text("active")

    theirs = open_page()
    browser_login(theirs, username=name, password=PASSWORD)
    expect(theirs).to_have_url(re.compile(r"/workspaces$"))
    expect(theirs.get_by_test_id("username")).to_have_text(name)
    expect(theirs.get_by_role("link", name="Admin")).to_have_count(0)
    assert page_errors.console == []  # a CSP violation is a console error
    assert page_errors.scripts == []
    assert page_errors.dialogs == []
