"""Reading template YAML, and turning every failure into a readable :class:`TemplateError`.

Split from :mod:`berth.domain.template` so the document model stays readable. The
promise kept here: a template author sees the file, a dotted field path
(``agents[1].chat``) and a rule in plain words, never pydantic's wording, URLs or a
traceback; and YAML that silently loses data (a duplicated key) is refused.
"""

from __future__ import annotations

import difflib
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from berth.errors import InvalidInput, Validation

__all__ = [
    "DOCUMENT",
    "Loc",
    "RuleErrors",
    "TemplateError",
    "errors_from_pydantic",
    "invalid_template",
    "kind_of",
    "load_yaml",
    "path_of",
    "refuse",
]

Loc = tuple[str | int, ...]
DOCUMENT = "(document)"  # the field name for problems with the file as a whole
_MAX_SHOWN = 20


class TemplateError(InvalidInput):
    """An invalid template; ``str()`` lists the problems, one per line, for the CLI."""

    def __str__(self) -> str:
        lines = [self.message]
        lines += [f"  {v.field}: {v.detail}" for v in self.validations[:_MAX_SHOWN]]
        if len(self.validations) > _MAX_SHOWN:
            lines.append(f"  … and {len(self.validations) - _MAX_SHOWN} more")
        return "\n".join(lines)


def path_of(loc: Loc) -> str:
    """``("agents", 1, "chat")`` → ``agents[1].chat``; the empty path is ``(document)``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or DOCUMENT


class RuleErrors(ValueError):
    """Cross-field problems a model validator raises, each at its own location.

    Pydantic would report a model validator's error at the model itself; this carries
    the precise sub-paths through pydantic (it keeps the exception in the error context)
    to :func:`errors_from_pydantic`.
    """

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        super().__init__("; ".join(f"{path_of(loc)}: {detail}" for loc, detail in problems))
        self.problems = problems


def invalid_template(filename: str, problems: list[Validation]) -> TemplateError:
    """``template.yaml is not a valid template (2 problems)``, listing them."""
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return TemplateError(f"{filename} is not a valid template ({count})", validations=problems)


def refuse(filename: str, field: str, detail: str) -> TemplateError:
    """A single-problem :class:`TemplateError` about ``filename``."""
    return TemplateError(
        f"{filename} is not a valid template", validations=[Validation(field, detail)]
    )


def kind_of(value: object) -> str:
    """What a YAML value is, in a template author's words."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "a mapping"


_WORDS = {
    "missing": "required field is missing",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
    "string_too_short": "must not be empty",
}


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _unknown_field(root: type[BaseModel], loc: Loc) -> str:
    model: type[BaseModel] | None = root
    for part in loc[:-1]:
        if isinstance(part, str) and model is not None:
            info = model.model_fields.get(part)
            model = _model_in(info.annotation) if info else None
    known = list(model.model_fields) if model else []
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    return f"unknown field (did you mean {close[0]!r}?)" if close else "unknown field"


def _detail(root: type[BaseModel], loc: Loc, e: Any) -> str:
    kind: str = e["type"]
    ctx: dict[str, Any] = e.get("ctx") or {}
    if kind == "extra_forbidden":
        return _unknown_field(root, loc)
    if kind == "value_error" and ctx.get("error") is not None:
        return str(ctx["error"])
    if kind in ("enum", "literal_error"):
        return f"must be one of {ctx.get('expected')}"
    if kind == "greater_than_equal":
        return f"must be >= {ctx.get('ge')}"
    if kind == "greater_than":
        return f"must be > {ctx.get('gt')}"
    if kind in _WORDS:
        detail = _WORDS[kind]
        if kind.endswith(("_type", "_parsing")):
            detail += f", got {kind_of(e.get('input'))}"
        return detail
    return str(e["msg"])


def errors_from_pydantic(err: ValidationError, root: type[BaseModel]) -> list[Validation]:
    """Pydantic's errors for a ``root`` document as dotted field paths and plain rules."""
    out: list[Validation] = []
    for e in err.errors(include_url=False):
        loc: Loc = tuple(e["loc"])
        cause = (e.get("ctx") or {}).get("error")
        if isinstance(cause, RuleErrors):
            out += [Validation(path_of(loc + sub), d) for sub, d in cause.problems]
        else:
            out.append(Validation(path_of(loc), _detail(root, loc, e)))
    return out


class _Loader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys instead of silently keeping the last one."""


def _mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node)  # pyright: ignore[reportUnknownMemberType]
        if not isinstance(key, str | int | float | bool):
            continue  # unhashable keys are refused by construct_mapping below
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(text: str, *, filename: str) -> object:
    """Parse YAML safely; a syntax error becomes a TemplateError with line and column."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 (_Loader is a SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise refuse(filename, DOCUMENT, f"invalid YAML{where}: {err.problem}") from None
    except yaml.YAMLError as err:
        raise refuse(filename, DOCUMENT, f"invalid YAML: {err}") from None
