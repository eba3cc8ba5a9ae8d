"""Fixtures of the web UI tests: a live server, real browsers, logged-in sessions.

The browser is Debian's Chromium (``/usr/bin/chromium``) driven by Playwright for
Python; no browser is ever downloaded. Without it the browser tests are skipped, with
that reason; the HTTP-level tests (httpx against the same live server) still run.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from typer.testing import CliRunner

from berth.cli.app import app as cli
from berth.client import Client
from berth.settings import Settings
from tests.conftest import LiveServer, SharedDatabases, serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Dialog, Page

CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 15_000
"""Playwright's bound on every wait (navigation, an element appearing)."""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def web_server(
    shared_databases: SharedDatabases, tmp_path_factory: pytest.TempPathFactory
) -> Generator[LiveServer]:
    """One live server (SQLite, fake backend) for a module's tests; each test makes its
    own users, templates and workspaces under unique names."""
    with serve_web(shared_databases, tmp_path_factory, fake_backend=True) as server:
        yield server


@pytest.fixture
def admin_client(web_server: LiveServer) -> Iterator[Client]:
    with Client(web_server.url, web_server.admin_token) as client:
        yield client


def create_user(server: LiveServer, username: str, password: str, *roles: str) -> None:
    """``berth users create USERNAME --password-stdin`` as the admin, the password piped."""
    args = ["users", "create", username, "--password-stdin"]
    for role in roles:
        args += ["--role", role]
    result = CliRunner().invoke(
        cli, [*args, "--url", server.url, "--token", server.admin_token], input=password + "\n"
    )
    assert result.exit_code == 0, result.output


# --- HTTP-level helpers (no browser) ----------------------------------------------------


@pytest.fixture
def http(web_server: LiveServer) -> Iterator[httpx.Client]:
    """A browser-less client of the web UI (its own cookies: one per test)."""
    with httpx.Client(base_url=web_server.url, timeout=30.0) as client:
        yield client


def as_admin(http: httpx.Client, server: LiveServer) -> httpx.Client:
    """``http``, logged in with the admin's token."""
    assert http_login(http, token=server.admin_token).status_code == 303
    return http


def html_of(response: httpx.Response, status: int = 200) -> str:
    """The HTML of a page answered with ``status``: a page, never a traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "Traceback" not in response.text
    return response.text


def form_csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def http_login(http: httpx.Client, **fields: str) -> httpx.Response:
    """Post the login form (its CSRF token read from the login page) with ``fields``."""
    page = http.get("/login")
    return http.post("/login", data={"csrf": form_csrf(page.text), **fields})


# --- browsers -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium, for one module's tests.

    Not for the session: Playwright's sync API keeps an event loop running in the main
    thread while it is started, and every other test that runs an event loop there
    (``asyncio.run``, anyio) would fail meanwhile. Its tests share an xdist group, so
    they run one after another on one worker and it starts once.
    """
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield launched
        finally:
            launched.close()


class PageErrors:
    """What went wrong in a page: console errors (a CSP violation is one), script
    errors, dialogs (an ``alert`` an injected script would open)."""

    def __init__(self) -> None:
        self.console: list[str] = []
        self.scripts: list[str] = []
        self.dialogs: list[str] = []


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


OpenPage = Callable[[], "Page"]
"""Open a page in a fresh browser context (its own cookies: one per user)."""


@pytest.fixture
def open_page(
    browser: Browser, web_server: LiveServer, page_errors: PageErrors
) -> Iterator[OpenPage]:
    contexts: list[BrowserContext] = []

    def on_dialog(dialog: Dialog) -> None:
        page_errors.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            page_errors.console.append(message.text)

    def make() -> Page:
        context = browser.new_context(base_url=web_server.url)
        contexts.append(context)
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        page.on("console", on_console)
        page.on("pageerror", lambda error: page_errors.scripts.append(str(error)))
        page.on("dialog", on_dialog)
        return page

    yield make
    for context in contexts:
        context.close()


def browser_login(
    page: Page, *, token: str | None = None, username: str = "", password: str = ""
) -> None:
    """Log in through the login page's token form or its password form."""
    page.goto("/login")
    if token is not None:
        page.fill("#token", token)
        page.click("#token-login button[type=submit]")
    else:
        page.fill("#username", username)
        page.fill("#password", password)
        page.click("#password-login button[type=submit]")


@contextlib.contextmanager
def serve_web(
    shared_databases: SharedDatabases,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    fake_backend: bool,
) -> Generator[LiveServer]:
    """A live server on a shared SQLite database (the fake backend offered or not), its
    sandboxes destroyed after."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("web") / "data",
        database_url=shared_databases.url("sqlite"),
        address="127.0.0.1:0",
        fake_backend=fake_backend,
    )
    with serve(settings) as server:
        yield server
