"""The web UI over plain HTTP (httpx, no browser): redirects, cookies, CSRF, limits,
headers and bad input. Every answer is a page or a redirect: never a 500 or a traceback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from berth.cli.app import app as cli
from berth.db.engine import create_engine
from berth.db.types import UTCDateTime
from berth.settings import Settings
from berth.web.mount import CONTENT_SECURITY_POLICY
from berth.web.render import ICON_DIR, STATIC_DIR
from tests.conftest import LiveServer, SharedDatabases, serve
from tests.web.conftest import as_admin, create_user, form_csrf, http_login, unique


def _page(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "Traceback" not in response.text
    return response.text


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/", "/workspaces"),
        ("/workspaces", "/login?next=/workspaces"),
        ("/templates", "/login?next=/templates"),
        ("/templates/python", "/login?next=/templates/python"),
        ("/workspaces/admin/w?x=1", "/login?next=/workspaces/admin/w%3Fx%3D1"),
        ("/logout", "/login"),
    ],
)
def test_a_page_without_a_session_redirects_to_login(
    http: httpx.Client, path: str, target: str
) -> None:
    response = http.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == target


def test_a_login_form_without_its_csrf_token_is_refused_with_a_message(
    http: httpx.Client, web_server: LiveServer
) -> None:
    token = web_server.admin_token
    text = _page(http.post("/login", data={"token": token}), 403)  # no cookie, no field
    assert "The login form expired. Log in again." in text
    http.get("/login")  # now the cookie is set, but the field is wrong
    text = _page(http.post("/login", data={"token": token, "csrf": "forged"}), 403)
    assert "berth_session" not in http.cookies
    response = http.post("/login", data={"token": token, "csrf": form_csrf(text)})
    assert response.status_code == 303  # the refusal's own page carries a good token
    assert "berth_session" in http.cookies


def test_logout_is_a_post_with_the_sessions_csrf_token(
    http: httpx.Client, web_server: LiveServer
) -> None:
    as_admin(http, web_server)
    secret = http.cookies["berth_session"]
    confirm = _page(http.get("/logout"), 200)  # asks; does not log out
    assert http.get("/workspaces").status_code == 200
    text = _page(http.post("/logout", data={"csrf": "forged"}), 403)
    assert "This form has expired or did not come from this page." in text
    assert http.get("/workspaces").status_code == 200  # still logged in
    response = http.post("/logout", data={"csrf": form_csrf(confirm)})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?reason=logged-out"
    assert "berth_session" not in http.cookies
    http.cookies.set("berth_session", secret)  # the old cookie, sent again
    response = http.get("/templates")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/templates&reason=ended"
    assert "Your session has ended. Log in again." in http.get(response.headers["location"]).text


def _expire_sessions(server: LiveServer) -> None:
    """Make every session of the server's database expired (its clock is the real one)."""

    async def go() -> None:
        engine = create_engine(server.runtime.settings.resolved_database_url())
        try:
            async with engine.begin() as conn:
                past = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
                await conn.execute(
                    sa.update(
                        sa.table("web_sessions", sa.column("expires_at", UTCDateTime()))
                    ).values(expires_at=past)
                )
        finally:
            await engine.dispose()

    asyncio.run(go())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_expired_session_goes_back_to_login_saying_so(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30.0) as http:
        assert http_login(http, token=live_server.admin_token).status_code == 303
        logout_form = _page(http.get("/logout"), 200)
        _expire_sessions(live_server)
        response = http.get("/templates/python")
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=/templates/python&reason=expired"
        text = _page(http.get(response.headers["location"]), 200)
        assert "Your session expired. Log in again." in text
        # A form of the expired session is not an error either: it logs out.
        response = http.post("/logout", data={"csrf": form_csrf(logout_form)})
        assert response.status_code == 303


def test_after_login_only_a_local_path_is_followed(
    http: httpx.Client, web_server: LiveServer
) -> None:
    for given, followed in [
        ("/templates?x=1", "/templates?x=1"),
        ("//evil.example/x", "/workspaces"),
        ("https://evil.example/", "/workspaces"),
        ("/\\evil.example", "/workspaces"),
    ]:
        http.cookies.clear()
        response = http_login(http, token=web_server.admin_token, next=given)
        assert response.headers["location"] == followed


def test_users_password_sets_a_new_password_and_ends_the_users_sessions(
    http: httpx.Client, web_server: LiveServer
) -> None:
    username = unique("rita")
    create_user(web_server, username, "the first password")
    assert http_login(http, username=username, password="the first password").status_code == 303
    assert http.get("/workspaces").status_code == 200

    runner = CliRunner()
    args = ["users", "password", username, "--url", web_server.url]
    result = runner.invoke(cli, [*args, "--token", web_server.admin_token], input="short\n")
    assert result.exit_code == 1
    assert "must be at least 8 characters" in result.output
    result = runner.invoke(
        cli, [*args, "--token", web_server.admin_token], input="the second password\n"
    )
    assert result.exit_code == 0, result.output

    response = http.get("/workspaces")  # the session made with the old password is over
    assert response.status_code == 303
    assert response.headers["location"].endswith("reason=ended")
    http.cookies.clear()
    refused = http_login(http, username=username, password="the first password")
    assert "Wrong username or password." in _page(refused, 401)
    assert http_login(http, username=username, password="the second password").status_code == 303


def test_failed_logins_for_one_user_are_limited(http: httpx.Client, web_server: LiveServer) -> None:
    username = unique("lim")
    create_user(web_server, username, "the right password")
    for _ in range(5):
        assert http_login(http, username=username, password="a wrong guess").status_code == 401
    refused = http_login(http, username=username, password="the right password")
    assert re.search(r"Too many failed logins\. Try again in \d+ seconds\.", _page(refused, 429))
    assert "berth_session" not in http.cookies
    assert http_login(http, token=web_server.admin_token).status_code == 303  # others may


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_failed_logins_from_one_address_are_limited(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30.0) as http:
        for i in range(30):
            response = http_login(http, token=f"berth_{i:010d}_guess")
            assert response.status_code == 401
        refused = http_login(http, token=live_server.admin_token)
        assert "Too many failed logins" in _page(refused, 429)


def test_the_cookie_is_secure_when_the_access_url_is_https(
    shared_databases: SharedDatabases, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=shared_databases.url("sqlite"),
        address="127.0.0.1:0",
        access_url="https://berth.example",
        fake_backend=True,
    )
    with serve(settings) as server, httpx.Client(base_url=server.url) as http:
        page = http.get("/login")
        assert "secure" in page.headers["set-cookie"].lower()
        # An http client does not send a Secure cookie back: post the login form's token.
        csrf = form_csrf(page.text)
        response = http.post(
            "/login",
            data={"csrf": csrf, "token": server.admin_token},
            headers={"cookie": f"berth_login_csrf={csrf}"},
        )
        assert response.status_code == 303
        cookies = response.headers.get_list("set-cookie")
        cookie = next(c for c in cookies if c.startswith("berth_session="))
        attributes = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "secure", "samesite=lax", "path=/"} <= attributes


def test_pages_carry_a_strict_csp_and_the_api_keeps_its_envelope(
    http: httpx.Client, web_server: LiveServer
) -> None:
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    for response in (http.get("/login"), http.get("/nope"), http.get("/static/berth.css")):
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
    text = _page(http.get("/no/such/page"), 404)
    assert "<h1>Not found</h1>" in text
    api = http.get("/api/v1/no-such-route")
    assert api.status_code == 404
    assert api.json() == {"message": "Not Found"}
    assert "content-security-policy" not in api.headers
    unauthenticated = http.get("/api/v1/templates")
    assert unauthenticated.status_code == 401
    assert set(unauthenticated.json()) <= {"message", "detail"}


def test_bad_input_is_a_page_never_a_server_error(
    http: httpx.Client, web_server: LiveServer
) -> None:
    as_admin(http, web_server)
    for path, status in [
        ("/templates/%ff%fe", 404),
        ("/templates/" + "x" * 5000, 404),
        ("/templates/python?organization=nope", 404),
        ("/workspaces/admin/" + "y" * 3000, 404),
        ("/workspaces/nobody/w", 404),
        ("/workspaces/a/b/c", 404),
        ("/static/../../etc/passwd", 404),
        ("/icon/nope.svg", 404),
    ]:
        _page(http.get(path), status)
    text = _page(http.get("/workspaces", params={"owner": "<script>alert(1)</script>"}), 200)
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "Method Not Allowed" in _page(http.post("/templates"), 405)
    http.cookies.delete("berth_session")
    page = http.get("/login")
    csrf = form_csrf(page.text)
    for data, files in [
        ({"username": "admin", "password": "x" * 100_000}, None),
        ({"username": "admin\x00", "password": "\x00"}, None),
        ({}, None),
    ]:
        response = http.post("/login", data={"csrf": csrf, **data}, files=files)
        assert "Wrong username or password." in _page(response, 401)
    upload = {"password": ("p.txt", b"a file, not a field")}
    response = http.post("/login", data={"csrf": csrf, "username": "admin"}, files=upload)
    assert "Too many files" in _page(response, 400)
    raw = f"csrf={csrf}&username=admin&password=%ED%A0%80%FF".encode()  # not UTF-8
    form = {"content-type": "application/x-www-form-urlencoded"}
    response = http.post("/login", content=raw, headers=form)
    assert "Wrong username or password." in _page(response, 401)


def test_the_static_files_are_shipped_and_htmx_is_the_pinned_one(
    http: httpx.Client,
) -> None:
    vendored = (STATIC_DIR / "VENDORED.txt").read_text()
    pinned = re.search(r"sha256: ([0-9a-f]{64})", vendored)
    assert pinned
    htmx = http.get("/static/htmx-2.0.11.min.js")
    assert htmx.status_code == 200
    assert hashlib.sha256(htmx.content).hexdigest() == pinned.group(1)
    licence = http.get("/static/htmx-2.0.11.LICENSE.txt")
    assert "Zero-Clause BSD" in licence.text
    css = http.get("/static/berth.css")
    assert css.headers["content-type"].startswith("text/css")
    icons = sorted(p.name for p in ICON_DIR.glob("*.svg"))
    assert {"python.svg", "docker.svg", "terminal.svg", "git.svg"} <= set(icons)
    for name in icons:
        icon = http.get(f"/icon/{name}")
        assert icon.status_code == 200
        assert icon.headers["content-type"] == "image/svg+xml"
        assert b"<script" not in icon.content
