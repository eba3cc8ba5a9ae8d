"""The web UI in a real browser (Chromium, driven by Playwright) against a live server.

What a person does: log in with the admin's token, or with a password set by
``berth users create … --password-stdin``; see the templates with their parameters and
presets; see their workspaces and not another user's. And what an attacker tries: a
template whose display name, description and README carry script is shown as text, and
nothing runs (no dialog, no script error, no ``javascript:`` link, no CSP report).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from berth.client import Client
from tests.conftest import LiveServer
from tests.support.api import template_files
from tests.web.conftest import OpenPage, PageErrors, browser_login, create_user, unique

pytestmark = pytest.mark.xdist_group("web-browser")


def param_template(name: str) -> dict[str, str]:
    """The API tests' template (two parameters, options, validation, a preset with
    prebuilds) with one of the shipped icons."""
    files = template_files(name)
    files["template.yaml"] = files["template.yaml"].replace("/icon/test.svg", "/icon/git.svg")
    return files


def _clean(errors: PageErrors) -> None:
    """Nothing went wrong in any page: no console error (a CSP violation is one), no
    script error, no dialog."""
    assert errors.console == []
    assert errors.scripts == []
    assert errors.dialogs == []


def test_a_page_without_a_session_goes_to_login_and_the_admin_token_logs_in(
    web_server: LiveServer, open_page: OpenPage, page_errors: PageErrors
) -> None:
    page = open_page()
    page.goto("/workspaces")
    expect(page).to_have_url(re.compile(r"/login\?next=/workspaces$"))
    expect(page.locator("input[name=username]")).to_be_visible()
    expect(page.locator("input[name=password]")).to_be_visible()
    expect(page.locator("input[name=token]")).to_be_visible()
    page.fill("#token", web_server.admin_token)
    page.click("#token-login button[type=submit]")
    expect(page).to_have_url(re.compile(r"/workspaces$"))
    expect(page.get_by_test_id("username")).to_have_text("admin")
    cookie = next(c for c in page.context.cookies() if c.get("name") == "berth_session")
    assert cookie.get("httpOnly") is True
    assert cookie.get("sameSite") == "Lax"
    assert cookie.get("secure") is False  # the access URL is http
    page.click("text=Log out")
    expect(page).to_have_url(re.compile(r"/login\?reason=logged-out$"))
    expect(page.get_by_role("status")).to_have_text("You are logged out.")
    page.goto("/templates")
    expect(page).to_have_url(re.compile(r"/login\?next=/templates$"))
    _clean(page_errors)


def test_a_password_from_the_cli_logs_in_and_a_wrong_one_does_not(
    web_server: LiveServer, open_page: OpenPage, page_errors: PageErrors
) -> None:
    username = unique("pat")
    create_user(web_server, username, "a long enough password")
    page = open_page()
    browser_login(page, username=username, password="not the password")
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator("#username")).to_have_value(username)  # kept; the password is not
    expect(page.locator("#password")).to_have_value("")
    assert not [c for c in page.context.cookies() if c.get("name") == "berth_session"]
    browser_login(page, username=username, password="a long enough password")
    expect(page).to_have_url(re.compile(r"/workspaces$"))
    expect(page.get_by_test_id("username")).to_have_text(username)
    console = [m for m in page_errors.console if "401" not in m]  # the refused login's 401
    assert console == []
    assert page_errors.scripts == []


def test_the_templates_pages_show_parameters_options_and_presets(
    web_server: LiveServer, admin_client: Client, open_page: OpenPage, page_errors: PageErrors
) -> None:
    name = unique("params")
    admin_client.push_template(param_template(name))
    page = open_page()
    browser_login(page, token=web_server.admin_token)
    page.goto("/templates")
    for example in ("python", "python-docker", name):  # the examples, and the one pushed
        expect(page.locator(f"[data-template='{example}']")).to_be_visible()
    card = page.locator(f"[data-template='{name}']")
    expect(card.locator(".preset")).to_have_text(re.compile(r"big · 2 prebuilt"))
    expect(page.locator("[data-template='python'] img.icon")).to_have_attribute(
        "src", "/icon/python.svg"
    )
    assert page.evaluate(
        "() => document.querySelector(\"[data-template='python'] img.icon\").naturalWidth"
    )  # the shipped icon loaded
    card.get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/templates/{name}$"))
    region = page.locator("[data-parameter=region]")
    expect(region).to_contain_text("Region")
    expect(region).to_contain_text("string (dropdown)")
    expect(region.locator(".option")).to_have_text(["eu — Europe Frankfurt", "us — United States"])
    cpus = page.locator("[data-parameter=cpus]")
    expect(cpus).to_contain_text("at least 1")
    expect(cpus).to_contain_text("at most 8")
    expect(cpus).to_contain_text("increasing only")
    preset = page.locator("[data-preset=big]")
    expect(preset).to_contain_text("default")
    expect(preset).to_contain_text("region = us")
    expect(preset).to_contain_text("cpus = 8")
    expect(page.locator(".readme h1")).to_have_text(name)
    expect(page.locator(".versions tbody tr")).to_have_count(1)
    _clean(page_errors)
    response = page.goto("/templates/no-such-template")
    assert response is not None
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")


XSS_YAML = """\
name: {name}
display_name: "<script>alert('display')</script><img src=x onerror=alert('dn')>"
description: "<img src=x onerror=alert('description')> <script>alert('d')</script>"
icon: "javascript:alert('icon')"
backend:
  type: fake
agents:
  - name: main
"""
XSS_README = """\
# Hello <script>alert('readme')</script>

<img src=x onerror="alert('readme-img')">

<a href="javascript:alert('raw-link')">raw link</a>

[a markdown link](javascript:alert('md-link')) and [another](JaVaScRiPt:alert('md2'))
and ![an image](javascript:alert('md-img')) and <javascript:alert('autolink')>
and [data](data:text/html,<script>alert('data')</script>) and [fine](https://example.com/x).

<iframe src="javascript:alert('iframe')"></iframe>
"""


def test_script_in_a_template_is_shown_as_text_and_never_runs(
    web_server: LiveServer, admin_client: Client, open_page: OpenPage, page_errors: PageErrors
) -> None:
    name = unique("xss")
    admin_client.push_template(
        {"template.yaml": XSS_YAML.format(name=name), "README.md": XSS_README}
    )
    page = open_page()
    browser_login(page, token=web_server.admin_token)
    page.goto("/templates")
    card = page.locator(f"[data-template='{name}']")
    expect(card.get_by_role("link")).to_have_text(
        "<script>alert('display')</script><img src=x onerror=alert('dn')>"
    )
    expect(card.locator(".description")).to_contain_text("onerror=alert('description')")
    expect(card.locator("img.icon")).to_have_attribute("src", "/icon/box.svg")
    card.get_by_role("link").click()
    expect(page.locator("h1 .display-name")).to_contain_text("<script>alert('display')</script>")
    readme = page.locator(".readme")
    expect(readme.locator("h1")).to_have_text("Hello <script>alert('readme')</script>")
    expect(readme).to_contain_text("<img src=x onerror=\"alert('readme-img')\">")
    expect(readme.get_by_role("link", name="fine")).to_have_attribute(
        "href", "https://example.com/x"
    )
    _assert_inert(page)
    _clean(page_errors)


def _assert_inert(page: Page) -> None:
    """No element the template's text could have made: no script but our own, no
    ``javascript:``/``data:`` URL, no event handler attribute, no iframe."""
    found = page.evaluate(
        """() => {
          const bad = [];
          for (const s of document.scripts) {
            if (!s.src.endsWith('/static/htmx-2.0.11.min.js')) bad.push('script ' + s.outerHTML);
          }
          for (const el of document.querySelectorAll('*')) {
            for (const a of el.attributes) {
              if (a.name.startsWith('on')) bad.push('handler ' + el.outerHTML);
              if (/^\\s*(javascript|data):/i.test(a.value) && ['href', 'src'].includes(a.name))
                bad.push('url ' + el.outerHTML);
            }
          }
          if (document.querySelector('iframe, object, embed')) bad.push('frame');
          return bad;
        }"""
    )
    assert found == []


def test_a_member_does_not_see_the_admins_workspace(
    web_server: LiveServer, admin_client: Client, open_page: OpenPage, page_errors: PageErrors
) -> None:
    template = unique("ws")
    admin_client.push_template(param_template(template))
    workspace = unique("adminws")
    admin_client.create_workspace(workspace, template)
    member = unique("member")
    create_user(web_server, member, "member password")

    admin = open_page()
    browser_login(admin, token=web_server.admin_token)
    admin.goto("/workspaces")
    row = admin.locator(f"[data-workspace='admin/{workspace}']")
    expect(row.locator(".status")).to_have_attribute(
        "data-status", re.compile(r"^(pending|starting|running)$")
    )
    row.get_by_role("link", name=workspace).click()
    expect(admin).to_have_url(re.compile(rf"/workspaces/admin/{workspace}$"))
    expect(admin.locator("#workspace-status .status")).to_have_attribute(
        "data-status", re.compile(r"^(pending|starting|running)$")
    )

    page = open_page()
    browser_login(page, username=member, password="member password")
    expect(page).to_have_url(re.compile(r"/workspaces$"))
    expect(page.locator("main")).to_contain_text("No workspaces")
    expect(page.locator(f"[data-workspace='admin/{workspace}']")).to_have_count(0)
    response = page.goto(f"/workspaces/admin/{workspace}")
    assert response is not None
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
    response = page.goto("/no/such/page")
    assert response is not None
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
    console = [m for m in page_errors.console if "404" not in m]  # the 404 pages themselves
    assert console == []
    assert page_errors.scripts == []


@pytest.mark.parametrize("path", ["/templates", "/workspaces", "/logout"])
def test_the_pages_break_no_rule_of_their_content_security_policy(
    path: str, web_server: LiveServer, open_page: OpenPage, page_errors: PageErrors
) -> None:
    page = open_page()
    browser_login(page, token=web_server.admin_token)
    page.goto(path)
    expect(page.locator("h1")).to_be_visible()
    page.wait_for_function("() => window.htmx !== undefined")  # our own script did load
    _clean(page_errors)
