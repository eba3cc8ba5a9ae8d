"""Template text for the chat tools: README plain text, truncation, timestamps.

Port of the reference's ``readme.go`` and ``render.InnerTextFromMarkdown``: a README
loses its YAML front matter, is rendered (CommonMark with tables and raw HTML) and
reduced to its visible text, one line per block, code line or table cell.
"""

from __future__ import annotations

import datetime as dt
import logging
from html.parser import HTMLParser

from markdown_it import MarkdownIt

log = logging.getLogger("berth.tools")

README_INPUT_MAX = 64 * 1024
"""How much of a README is parsed at all (far above any excerpt)."""


def truncate(text: str, limit: int) -> str:
    """At most ``limit`` characters, the last one ``…`` when cut (Coder's ``Truncate``)."""
    if limit < 1:
        return ""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def strip_front_matter(readme: str) -> str:
    """The README without a leading ``---`` … ``---`` block (BOM and leading blanks dropped).

    An unterminated block is not front matter: the whole document is kept.
    """
    start = 0
    while start < len(readme) and (readme[start].isspace() or readme[start] == "\ufeff"):
        start += 1
    trimmed = readme[start:]
    lines = trimmed.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return trimmed
    fences = 0
    body: list[str] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.removesuffix("\r")
        if fences < 2:
            if line.rstrip(" \t\r") == "---":
                fences += 1
                continue
            if number == 1:
                return trimmed
            continue
        body.append(line + "\n")
    return trimmed if fences == 1 else "".join(body)


_MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable("table")


class _InnerText(HTMLParser):
    """The visible text of rendered HTML; the body of ``script``/``style`` is skipped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_next_text = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip_next_text = tag in ("script", "style")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip_next_text = False

    def handle_endtag(self, tag: str) -> None:
        self._skip_next_text = False

    def handle_data(self, data: str) -> None:
        if self._skip_next_text:
            self._skip_next_text = False
            return
        self.parts.append(data)


def inner_text_from_markdown(markdown: str) -> str:
    """Markdown as plain text: block and code-line boundaries become newlines, runs of
    blanks inside a line collapse, blank lines go; link text stays, URLs and images go."""
    parser = _InnerText()
    parser.feed(_MARKDOWN.render(markdown))
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    return "\n".join(line for line in lines if line)


def readme_text(readme: str, limit: int) -> str:
    """The README as bounded plain text without front matter; ``""`` when blank."""
    try:
        text = inner_text_from_markdown(strip_front_matter(readme[:README_INPUT_MAX]))
    except Exception:
        log.warning("could not convert a template README to text", exc_info=True)
        return ""
    return truncate(text, limit)


def rfc3339(moment: dt.datetime) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: ``2026-06-09T10:04:18.123456Z``."""
    utc = moment.astimezone(dt.UTC)
    fraction = f".{utc.microsecond:06d}".rstrip("0") if utc.microsecond else ""
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"
