"""Rendering: the Jinja environment (autoescaped), safe URLs and Markdown for READMEs.

Everything a page shows that a user or a template author wrote — names, descriptions,
READMEs, parameter options — is text to the browser, never markup or script:

- Jinja autoescapes every value, in every template (``autoescape=True``, not by file
  extension), so ``<script>`` in a display name is shown as ``<script>``.
- READMEs are CommonMark rendered by markdown-it-py with raw HTML off (an ``<img
  onerror=…>`` in a README is escaped text) and every link and image URL checked by
  :func:`safe_url`: only ``http``, ``https`` and relative URLs survive, so no
  ``javascript:`` or ``data:`` link reaches the page.
- The Content-Security-Policy (:mod:`berth.web.mount`) forbids inline script anyway:
  were something to slip through, the browser would still not run it.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, cast

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.responses import HTMLResponse

import berth

PACKAGE_DIR = Path(__file__).parent
STATIC_DIR = PACKAGE_DIR / "static"
ICON_DIR = PACKAGE_DIR / "icons"

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
_IGNORED = re.compile(r"[\x00-\x20\x7f]+")
"""What browsers skip in a URL before reading its scheme (``java\\nscript:`` is
``javascript:`` to them)."""


def safe_url(url: str) -> str | None:
    """``url`` if it is ``http(s)`` or relative (a path, a ``#fragment``); else ``None``."""
    probe = _IGNORED.sub("", url)
    match = _SCHEME.match(probe)
    if match is None:
        return url if "\\" not in probe[:2] else None
    return url if match.group(1).lower() in ("http", "https") else None


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.validateLink = lambda url: safe_url(url) is not None  # type: ignore[method-assign]
    md.enable("table")
    return md


_md = _markdown()


def markdown(text: str) -> Markup:
    """A README as HTML: CommonMark plus tables, no raw HTML, only safe link URLs."""
    return Markup(_md.render(text))  # noqa: S704 - markdown-it escapes all text; HTML is off


def when(value: dt.datetime | None) -> str:
    """A time as shown on pages: UTC, to the minute."""
    return "-" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(PACKAGE_DIR / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    filters = cast("dict[str, Any]", env.filters)  # typeshed narrows it to the built-ins
    filters.update(markdown=markdown, safe_url=safe_url, when=when)
    cast("dict[str, Any]", env.globals)["version"] = berth.__version__
    return env


_env = _environment()


def fragment(name: str, **values: Any) -> Markup:
    """The template ``name`` rendered: a part of a page that a live update (an SSE
    event) or an htmx answer swaps in, or a page places as it is (it is escaped)."""
    return Markup(_env.get_template(name).render(**values))  # noqa: S704 - autoescaped


def page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    """The page template ``name`` rendered with ``values`` (``session`` may be None)."""
    values.setdefault("session", None)
    values.setdefault("title", "")
    html = fragment(name, **values)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
