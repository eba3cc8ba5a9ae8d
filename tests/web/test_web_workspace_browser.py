"""The workspace pages in a real browser (Chromium, Playwright) against a live server on
the REAL local backend (bubblewrap sandboxes, a real agent): create a workspace from
the form, watch it become running and its startup script's output appear without a
reload, stop it from its button and see ``stopped`` arrive live, delete it after the
confirmation step. Nothing breaks the Content-Security-Policy on the way."""

from __future__ import annotations

import re
import shutil
from collections.abc import Generator

import pytest
import yaml
from playwright.sync_api import Page, expect

from berth.client import Client
from tests.conftest import LiveServer, SharedDatabases
from tests.web.conftest import OpenPage, PageErrors, browser_login, serve_web, unique

pytestmark = [
    pytest.mark.xdist_group("web-browser"),
    pytest.mark.bwrap,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not on PATH"),
]

LIVE_MS = 60_000
"""The bound on a real build: a sandbox, its agent connecting, its script running."""


@pytest.fixture(scope="module")
def web_server(
    shared_databases: SharedDatabases, tmp_path_factory: pytest.TempPathFactory
) -> Generator[LiveServer]:
    """This module's server: the real backends only (``fake_backend=False``), so the
    pages' browsers (``open_page``) watch real sandboxes."""
    with serve_web(shared_databases, tmp_path_factory, fake_backend=False) as server:
        yield server


def local_template(name: str, marker: str) -> dict[str, str]:
    """A bwrap sandbox whose agent's startup script prints ``marker`` (computed by the
    shell, so the text is only on the page if the script ran)."""
    prefix, _, suffix = marker.rpartition("-")
    doc = {
        "name": name,
        "display_name": "Browser test",
        "backend": {"type": "local", "isolation": "bwrap"},
        "agents": [
            {
                "name": "main",
                "scripts": [
                    {
                        "display_name": "hello",
                        "run_on": "start",
                        "script": f"printf '%s-%s\\n' {prefix} {suffix}",
                    }
                ],
            }
        ],
    }
    return {"template.yaml": yaml.safe_dump(doc, sort_keys=False)}


def _status(page: Page, value: str) -> None:
    status = page.locator("#workspace-status .status")
    expect(status).to_have_attribute("data-status", value, timeout=LIVE_MS)


def test_a_workspace_made_from_the_form_runs_stops_and_is_deleted_live(
    web_server: LiveServer, open_page: OpenPage, page_errors: PageErrors
) -> None:
    template, marker = unique("local"), unique("marker")
    with Client(web_server.url, web_server.admin_token) as admin:
        admin.push_template(local_template(template, marker))
    page = open_page()
    browser_login(page, token=web_server.admin_token)
    page.goto(f"/templates/{template}")
    page.get_by_role("link", name="Create workspace").click()
    expect(page).to_have_url(re.compile(rf"/workspaces/new\?template={template}$"))
    name = unique("ws")
    page.fill("#name", name)
    page.click("#new-workspace button[type=submit]")
    expect(page).to_have_url(re.compile(rf"/workspaces/admin/{name}$"))
    page.evaluate("() => { window.berthSamePage = true }")  # gone if the page reloads

    _status(page, "running")
    script = page.locator("#script-log")
    expect(script).to_contain_text(marker, timeout=LIVE_MS)
    expect(script.locator(f".line:has-text('{marker}')")).to_have_attribute("data-script", "hello")
    expect(page.locator("#workspace-agents [data-agent=main] [data-lifecycle]")).to_have_text(
        "ready", timeout=LIVE_MS
    )
    expect(page.locator("#build-log")).to_contain_text(f"build 1: start {name}")

    page.click("button[data-action=stop]")
    expect(page.locator("#action-result")).to_contain_text("Stopping: build 2 is queued.")
    _status(page, "stopped")
    expect(page.locator("#build-log .build-head")).to_have_text(["Build #2 · stop"])
    expect(page.locator("#build-log")).to_contain_text(f"build 2: stop {name}")

    confirm = page.locator("button[data-action=confirm-delete]")
    expect(confirm).to_be_hidden()  # only after the confirmation step opens
    page.click("summary[data-action=delete]")
    confirm.click()
    expect(page.locator("#action-result")).to_contain_text("Deleting: build 3 is queued.")
    _status(page, "deleted")
    assert page.evaluate("() => window.berthSamePage") is True  # all of it without a reload

    page.goto("/workspaces")
    expect(page.locator(f"[data-workspace='admin/{name}']")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("No workspaces")
    assert page_errors.console == []
    assert page_errors.scripts == []
    assert page_errors.dialogs == []
