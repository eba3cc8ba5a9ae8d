"""Rendering a template document for one build (DESIGN §5).

String fields may use Jinja2 over ``parameters``, ``workspace``, ``owner`` and
``template``; the rendered document is stored on the build so the build can be
reproduced. The environment is sandboxed (no attribute tricks such as
``''.__class__``, no file access: there is no loader) and ``StrictUndefined``, so a
typo such as ``{{ parameters.nope }}`` fails the build loudly instead of running a
script with an empty string in it.

What is rendered: every string the backend or agent consumes — ``prepare``, backend
``image`` and ``fake`` settings, agent ``directory``, ``env`` values, scripts and their
display names, and the top-level display strings. What is not: names (identities must
not change per build), enums and durations (checked at push time, so they cannot
contain Jinja), and ``parameters``/``presets`` (they are the inputs to rendering).

The ``shquote`` filter quotes a value for a POSIX shell; use it for user-supplied
parameters inside scripts: ``git clone {{ parameters.repo_url | shquote }} .``
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from enum import Enum
from typing import Any, cast

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel

from berth.domain.template import TemplateDoc, validate_template_data
from berth.domain.template_yaml import Loc, TemplateError, path_of
from berth.errors import Validation

__all__ = ["make_environment", "render_template"]

_SKIP_KEYS = frozenset({"name", "parameters", "presets"})
_JINJA_MARKERS = ("{{", "{%", "{#")


def make_environment() -> SandboxedEnvironment:
    """The sandboxed Jinja environment templates render in.

    ``keep_trailing_newline`` keeps scripts byte-for-byte as written in YAML block
    scalars; ``autoescape`` is off because the output is shell and config, not HTML.
    """
    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    env.filters["shquote"] = shlex.quote
    return env


def _render_str(env: SandboxedEnvironment, text: str, context: Mapping[str, Any]) -> str:
    if not any(marker in text for marker in _JINJA_MARKERS):
        return text
    return env.from_string(text).render(context)


def _walk(
    env: SandboxedEnvironment,
    value: object,
    loc: Loc,
    context: Mapping[str, Any],
    problems: list[Validation],
) -> object:
    if isinstance(value, Enum):
        return value
    if isinstance(value, str):
        try:
            return _render_str(env, value, context)
        except jinja2.TemplateSyntaxError as err:
            problems.append(Validation(path_of(loc), f"line {err.lineno}: {err.message}"))
        except Exception as err:  # any Jinja failure (undefined, sandbox, 1/0) is the template's
            problems.append(Validation(path_of(loc), str(err) or type(err).__name__))
        return value
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        return {
            f: getattr(value, f)
            if f in _SKIP_KEYS
            else _walk(env, getattr(value, f), (*loc, f), context, problems)
            for f in fields
        }
    if isinstance(value, dict):  # env, fake: free-form, every value rendered
        items = cast("dict[str, object]", value).items()
        return {k: _walk(env, v, (*loc, k), context, problems) for k, v in items}
    if isinstance(value, list):
        entries = cast("list[object]", value)
        return [_walk(env, v, (*loc, i), context, problems) for i, v in enumerate(entries)]
    return value


def render_template(
    doc: TemplateDoc,
    *,
    parameters: Mapping[str, str],
    workspace: Mapping[str, Any],
    owner: Mapping[str, Any],
    template: Mapping[str, Any],
) -> TemplateDoc:
    """Render ``doc`` for one build; return a new, re-validated document.

    ``parameters`` are the resolved values (see
    :func:`berth.domain.parameters.validate_parameter_values`); the other three are plain
    dicts such as ``{"name": ..., "id": ...}``. Raises :class:`TemplateError` (an
    ``InvalidInput``) listing each failing field with Jinja's message.
    """
    context: dict[str, Any] = {
        "parameters": dict(parameters),
        "workspace": dict(workspace),
        "owner": dict(owner),
        "template": dict(template),
    }
    env = make_environment()
    problems: list[Validation] = []
    rendered = cast("dict[str, Any]", _walk(env, doc, (), context, problems))
    if problems:
        message = f"template {doc.name!r} could not be rendered"
        raise TemplateError(message, validations=problems)
    return validate_template_data(rendered, filename=f"template {doc.name!r} (rendered)")
