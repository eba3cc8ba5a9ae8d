"""README text of list_templates and read_template: front matter out, plain text, cut."""

from __future__ import annotations

import datetime as dt

import pytest

from berth.tools.template_text import (
    inner_text_from_markdown,
    readme_text,
    rfc3339,
    strip_front_matter,
    truncate,
)


@pytest.mark.spec("lt.items", "rt.result")
def test_front_matter_is_removed() -> None:
    """[lt.items] [rt.result] A leading ``---`` block goes; BOM, blanks and CRLF are handled."""
    assert strip_front_matter("---\na: 1\n---\nbody\n") == "body\n"
    assert strip_front_matter("\ufeff \n---\r\na: 1\r\n--- \r\nbody\r\nmore") == "body\nmore\n"
    # Not at the start, or never closed: no front matter, the text is kept.
    assert strip_front_matter("title\n---\nx\n---\n") == "title\n---\nx\n---\n"
    assert strip_front_matter("---\na: 1\nbody\n") == "---\na: 1\nbody\n"
    assert strip_front_matter("") == ""
    assert strip_front_matter("---\n---\n") == ""


@pytest.mark.spec("lt.items", "rt.result")
def test_markdown_becomes_visible_text() -> None:
    """[lt.items] [rt.result] Block, code-line and cell boundaries are newlines; links keep
    their text, URLs and images go; script and style bodies are not text."""
    markdown = (
        "# Title\n\n"
        "Some  *emphasis*, a [link](https://example.com) and ![alt](https://x/y.png).\n\n"
        "| Name | Value |\n|---|---|\n| a | 1 |\n\n"
        "```\nline one\n  line two\n```\n\n"
        "<script>alert(1)</script>\n\n<style>p { color: red }</style>\n\n"
        "- one &amp; two\n- three\n"
    )
    assert inner_text_from_markdown(markdown) == (
        "Title\nSome emphasis, a link and .\nName\nValue\na\n1\nline one\nline two\n"
        "one & two\nthree"
    )


@pytest.mark.spec("lt.items", "rt.result")
def test_readme_text_truncates_with_an_ellipsis() -> None:
    """[lt.items] [rt.result] ``…`` counts toward the limit; blank READMEs are empty."""
    assert truncate("abcdef", 6) == "abcdef"
    assert truncate("abcdef", 4) == "abc…"
    assert truncate("abcdef", 0) == ""
    assert readme_text("# Héllo wörld", 5) == "Héll…"
    assert readme_text("---\nx: 1\n---\n\n   \n", 100) == ""
    assert rfc3339(dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)) == "2026-01-02T03:04:05Z"
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert rfc3339(dt.datetime(2026, 1, 2, 5, 4, 5, 120000, tzinfo=plus_two)) == (
        "2026-01-02T03:04:05.12Z"
    )
