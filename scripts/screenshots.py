"""Screenshots of the web UI for the README, taken from a real server.

The README shows what the pages look like; pictures drawn by hand would drift from the
templates and the stylesheet. This script makes them from the real thing instead: a
``berth`` server in a scratch data dir on the local backend (bubblewrap where installed,
``isolation: none`` otherwise), a demo template, a workspace created through the
``/workspaces/new`` form and watched until its startup script's output is on its page,
a chat whose workspace the MCP ``create_workspace`` tool made, and Debian's Chromium
(``/usr/bin/chromium``, driven by Playwright) at a 1280x800 viewport.

    uv run python scripts/screenshots.py [--out docs/screenshots]

Every wait is bounded (Playwright ``expect``); whatever happens, the sandboxes the run
made are destroyed after the server stops (they outlive their server on purpose), and
the data dir is removed.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench/ lives beside scripts/, not in the package

from bench._bench import ISOLATION, destroy_sandboxes, session  # noqa: E402

from berth.api.server import running_server  # noqa: E402
from berth.client import Client  # noqa: E402
from berth.settings import Settings  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 15_000
"""The bound on a page's ordinary waits (navigation, an element appearing)."""
BUILD_MS = 120_000
"""The bound on a real build: a sandbox, its agent connecting, its script running."""
TEMPLATE = "demo"
WORKSPACE = "my-project"
CHAT_WORKSPACE = "chat-sandbox"
DONE_LINE = "Ready: the project is in ~/project"
"""The startup script's last line: once it is on the workspace page, the page is done."""

PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "project",
        "display_name": "Project name",
        "description": "The directory made under ~/project.",
        "type": "string",
        "form_type": "input",
        "default": "hello-berth",
        "validation": {"regex": "^[a-z][a-z0-9-]*$", "error": "lower-case letters, digits, -"},
    },
    {
        "name": "python",
        "display_name": "Python",
        "type": "string",
        "form_type": "dropdown",
        "default": "3.12",
        "options": [
            {"name": "Python 3.11", "value": "3.11"},
            {"name": "Python 3.12", "value": "3.12"},
            {"name": "Python 3.13", "value": "3.13"},
        ],
    },
    {
        "name": "size",
        "display_name": "Size",
        "type": "string",
        "form_type": "radio",
        "default": "small",
        "options": [
            {"name": "Small", "value": "small", "description": "1 CPU"},
            {"name": "Large", "value": "large", "description": "4 CPUs"},
        ],
    },
    {
        "name": "tools",
        "display_name": "Tools",
        "type": "list(string)",
        "form_type": "multi-select",
        "default": '["git"]',
        "options": [
            {"name": "git", "value": "git"},
            {"name": "make", "value": "make"},
            {"name": "ripgrep", "value": "ripgrep"},
        ],
    },
    {
        "name": "venv",
        "display_name": "Virtual environment",
        "description": "Make ~/project/.venv on first start.",
        "type": "bool",
        "form_type": "switch",
        "default": "true",
    },
]

SCRIPT = f"""\
echo "Setting up {{{{ parameters.project }}}} ({{{{ parameters.size }}}})"
echo "Python {{{{ parameters.python }}}} requested; this host has $(python3 --version)"
echo "Tools: "{{{{ parameters.tools | shquote }}}}
mkdir -p ~/project/{{{{ parameters.project | shquote }}}}
echo "{DONE_LINE}"
"""
"""The startup script (Jinja over the parameters): a few lines, then :data:`DONE_LINE`."""

README = """\
# Demo project

A workspace on the berth host for trying berth out: a sandbox with a persistent home,
whose startup script prints what it set up.

- Pick a **size** and the **tools** you want.
- The *large* preset is kept **prebuilt**, so it starts at once.

See [the berth README](https://example.com/berth) for more.
"""


def demo_template() -> dict[str, str]:
    """The demo template's files: parameters of several form types, two presets (one
    kept prebuilt, so the admin page has a pool to show), a chat agent whose startup
    script prints a few lines."""
    doc = {
        "name": TEMPLATE,
        "display_name": "Demo project",
        "description": "A sandboxed workspace whose startup script prints what it set up.",
        "icon": "/icon/terminal.svg",
        "default_ttl": "8h",
        "backend": {"type": "local", "isolation": ISOLATION},
        "parameters": PARAMETERS,
        "presets": [
            {
                "name": "small",
                "description": "One CPU",
                "default": True,
                "parameters": {"size": "small"},
            },
            {
                "name": "large",
                "description": "Four CPUs, kept prebuilt",
                "parameters": {"size": "large", "tools": '["git","make"]'},
                "prebuilds": {"instances": 1},
            },
        ],
        "agents": [
            {
                "name": "main",
                "chat": True,
                "directory": "~/project",
                "scripts": [
                    {
                        "display_name": "setup",
                        "run_on": "start",
                        "blocks_login": True,
                        "script": SCRIPT,
                    }
                ],
            }
        ],
    }
    return {"template.yaml": yaml.safe_dump(doc, sort_keys=False), "README.md": README}


def seed(url: str, token: str) -> str:
    """What the pages show besides the form's workspace: the demo template, a member
    with a password, a chat setting, and a chat whose workspace ``create_workspace``
    made over MCP (it returns once the workspace's agent is ready); the chat's id."""
    with Client(url, token) as admin:
        template_id = str(admin.push_template(demo_template()).template.id)
        admin.create_user(
            "alice", name="Alice", roles=["member"], password=secrets.token_urlsafe(16)
        )
        admin.set_config("chat-workspace-ttl", "2h")
        chat_id = str(admin.create_chat(title="Fix the flaky test").id)
        admin.create_chat(title="Plan the release")  # a chat with no workspace yet

    async def create() -> None:
        async with session(url, token, chat_id) as mcp:
            result = await mcp.call_tool(
                "create_workspace", {"template_id": template_id, "name": CHAT_WORKSPACE}
            )
            if result.is_error:
                raise RuntimeError(f"create_workspace failed: {result.content}")

    asyncio.run(create())
    return chat_id


def await_prebuilds(url: str, token: str) -> None:
    """Follow each prebuild until its agent has started, so the admin page (not live)
    shows it ready. The push woke the reconciler long before this is called: the
    prebuild is on its way by then."""
    with Client(url, token) as admin:
        pool = admin.prebuilds()
        if not pool.prebuilds:
            raise RuntimeError(f"the reconciler made no prebuild: {pool.presets}")
        for prebuild in pool.prebuilds:
            for _ in admin.watch_workspace(prebuild.workspace_id):
                pass


def shoot(page: Page, out: Path, name: str, *, full_page: bool = False) -> None:
    """Save the viewport (or, for a page whose point is below the fold, all of it)."""
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    print(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def status_is(page: Page, selector: str, value: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator(f"{selector} .status")).to_have_attribute(
        "data-status", value, timeout=BUILD_MS
    )


def take(browser: Browser, url: str, token: str, chat_id: str, out: Path) -> None:
    """Log in through the form, create the workspace through the form, and shoot each
    page once what it shows has arrived."""
    from playwright.sync_api import expect

    context = browser.new_context(base_url=url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    errors: list[str] = []  # a broken page is not worth a picture: a CSP report, a script error
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto("/login")
        shoot(page, out, "login")
        page.fill("#token", token)
        page.click("#token-login button[type=submit]")
        expect(page.locator("a[href='/logout'], form[action='/logout']").first).to_be_attached()

        page.goto("/templates")
        expect(page.locator("main")).to_contain_text("Demo project")
        shoot(page, out, "templates")
        page.goto(f"/templates/{TEMPLATE}")
        expect(page.locator("[data-parameter=project]")).to_be_visible()
        shoot(page, out, "template", full_page=True)

        page.goto(f"/workspaces/new?template={TEMPLATE}")
        page.fill("#name", WORKSPACE)
        page.select_option("[name='param.python']", "3.13")
        shoot(page, out, "workspace-new", full_page=True)
        page.click("#new-workspace button[type=submit]")
        expect(page).to_have_url(f"{url}/workspaces/admin/{WORKSPACE}")
        status_is(page, "#workspace-status", "running")
        expect(page.locator("#script-log")).to_contain_text(DONE_LINE, timeout=BUILD_MS)
        shoot(page, out, "workspace", full_page=True)

        page.goto("/workspaces")
        expect(page.locator(f"[data-workspace='admin/{WORKSPACE}']")).to_be_visible()
        shoot(page, out, "workspaces")

        page.goto("/chats")
        expect(page.locator(f"[data-chat='{chat_id}']")).to_contain_text(CHAT_WORKSPACE)
        shoot(page, out, "chats")
        page.goto(f"/chats/{chat_id}")
        status_is(page, "#chat-workspace", "running")
        shoot(page, out, "chat")

        await_prebuilds(url, token)
        page.goto("/admin")
        expect(page.locator(f"[data-pool='{TEMPLATE}/large'] .ready")).to_have_text("1")
        shoot(page, out, "admin", full_page=True)
        if errors:
            raise RuntimeError(f"the pages reported errors: {errors}")
    finally:
        context.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Screenshots of the web UI for the README.")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: apt-get install chromium", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="berth-shots-") as tmp:
        data_dir = Path(tmp) / "data"
        try:
            # Explicit, so no BERTH_* variable of the caller's points the demo elsewhere
            # (a real database, a relay, the fake backend).
            settings = Settings(
                data_dir=data_dir,
                address="127.0.0.1:0",
                database_url=None,
                access_url=None,
                relay_url=None,
                fake_backend=False,
                install_examples=True,
            )
            with running_server(settings) as server:
                bootstrapped = server.runtime.bootstrapped
                assert bootstrapped is not None
                print(f"server {server.url} (isolation: {ISOLATION}), data dir {data_dir}")
                chat_id = seed(server.url, bootstrapped.token)
                with sync_playwright() as playwright:
                    browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
                    try:
                        take(browser, server.url, bootstrapped.token, chat_id, out)
                    finally:
                        browser.close()
        finally:
            made = len(list((data_dir / "workspaces" / "sandboxes").glob("*/sandbox.json")))
            asyncio.run(destroy_sandboxes(data_dir))
            print(f"destroyed {made} sandbox(es)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
