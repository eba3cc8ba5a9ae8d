"""Rendering user content: URLs, Markdown and autoescaping (no server needed)."""

from __future__ import annotations

import pytest

from berth.web.render import markdown, safe_url


@pytest.mark.parametrize(
    "url",
    ["https://example.com/a?b=c", "http://x", "/icon/python.svg", "docs/a.md", "#usage", "?q=1"],
)
def test_http_and_relative_urls_are_kept(url: str) -> None:
    assert safe_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        " JaVaScRiPt:alert(1)",
        "java\tscript:alert(1)",
        "java\nscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox",
        "mailto:someone@example.com",
        "file:///etc/passwd",
        "/\\evil.example",
    ],
)
def test_every_other_scheme_is_dropped(url: str) -> None:
    assert safe_url(url) is None


def test_markdown_renders_no_raw_html_and_only_safe_links() -> None:
    html = str(
        markdown(
            "# Title <b>bold</b>\n\n<script>alert(1)</script>\n\n"
            "[ok](https://example.com) [mail](mailto:a@b.c) [js](javascript:alert(1))\n\n"
            "| a | b |\n|---|---|\n| 1 | 2 |\n"
        )
    )
    assert "<h1>Title &lt;b&gt;bold&lt;/b&gt;</h1>" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<a href="https://example.com">ok</a>' in html
    assert 'href="mailto' not in html
    assert 'href="javascript' not in html
    assert "<table>" in html
