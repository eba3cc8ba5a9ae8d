"""The web UI (DESIGN §14): server-rendered pages for people, beside the API for programs.

Pages are Jinja2 templates, autoescaped, with a small stylesheet of our own and htmx
(vendored, pinned, with its licence, in ``static/``) for what a page does without a
reload; there is no JavaScript build step, and the templates and static files are
package data, so they ship in the wheel. A page calls the same services as the API, as
the logged-in user (:mod:`berth.web.session`), and opens no transaction itself.
"""

from __future__ import annotations

from berth.web.mount import install

__all__ = ["install"]
