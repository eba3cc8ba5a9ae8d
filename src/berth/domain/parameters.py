"""Checking workspace parameter values against a template's parameter declarations.

Values are strings everywhere (as in the reference system): ``number`` is a decimal
string, ``bool`` is ``true``/``false``, ``list(string)`` is a JSON array of strings.
A create call gets back every problem at once, each under the parameter's name, so a
model can fix all of them in one retry.

The same per-value check (:func:`value_problems`) validates a template's defaults and
presets at load time, so a template can never ship a default its own rules refuse.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Protocol

from berth.domain.enums import ParameterType
from berth.errors import InvalidInput, Validation

__all__ = [
    "OptionLike",
    "ParameterLike",
    "ValidationLike",
    "parse_list_value",
    "preset_then_explicit",
    "validate_parameter_values",
    "value_problems",
]

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class OptionLike(Protocol):
    @property
    def value(self) -> str: ...


class ValidationLike(Protocol):
    @property
    def regex(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def min(self) -> float | None: ...
    @property
    def max(self) -> float | None: ...
    @property
    def monotonic(self) -> str | None: ...


class ParameterLike(Protocol):
    """What value checking reads from a parameter declaration."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> ParameterType: ...
    @property
    def default(self) -> str | None: ...
    @property
    def required(self) -> bool: ...
    @property
    def mutable(self) -> bool: ...
    @property
    def ephemeral(self) -> bool: ...
    @property
    def options(self) -> Sequence[OptionLike]: ...
    @property
    def validation(self) -> ValidationLike: ...


def _fmt_number(x: float) -> str:
    return str(int(x)) if x.is_integer() else repr(x)


def _parse_number(value: str) -> float | None:
    if not _NUMBER.fullmatch(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def parse_list_value(value: str) -> list[str] | None:
    """A ``list(string)`` value as a list, or None if it is not a JSON array of strings."""
    try:
        data: object = json.loads(value)
    except ValueError:
        return None
    if not isinstance(data, list):
        return None
    items: list[str] = []
    for item in data:  # pyright: ignore[reportUnknownVariableType]
        if not isinstance(item, str):
            return None
        items.append(item)
    return items


def _custom(rule: ValidationLike, fallback: str, value: str) -> str:
    """The parameter's own error text if it has one (``{min}``, ``{max}``, ``{value}`` filled)."""
    if not rule.error:
        return fallback
    text = rule.error.replace("{value}", value)
    text = text.replace("{min}", "" if rule.min is None else _fmt_number(rule.min))
    return text.replace("{max}", "" if rule.max is None else _fmt_number(rule.max))


def _type_problem(param: ParameterLike, value: str) -> str | None:
    if param.type is ParameterType.NUMBER and _parse_number(value) is None:
        return f"must be a number, got {json.dumps(value)}"
    if param.type is ParameterType.BOOL and value not in ("true", "false"):
        return f"must be true or false, got {json.dumps(value)}"
    if param.type is ParameterType.LIST_STRING and parse_list_value(value) is None:
        return f'must be a JSON array of strings such as ["a", "b"], got {json.dumps(value)}'
    return None


def _option_problems(param: ParameterLike, value: str) -> list[str]:
    allowed = [o.value for o in param.options]
    if not allowed:
        return []
    shown = ", ".join(json.dumps(v) for v in allowed)
    if param.type is ParameterType.LIST_STRING:
        items = parse_list_value(value) or []
        return [
            f"{json.dumps(i)} is not one of the options: {shown}" for i in items if i not in allowed
        ]
    if value not in allowed:
        return [f"must be one of the options: {shown}"]
    return []


def _number_problems(
    param: ParameterLike, number: float, value: str, previous: str | None
) -> list[str]:
    rule = param.validation
    problems: list[str] = []
    if rule.min is not None and number < rule.min:
        problems.append(_custom(rule, f"must be >= {_fmt_number(rule.min)}", value))
    if rule.max is not None and number > rule.max:
        problems.append(_custom(rule, f"must be <= {_fmt_number(rule.max)}", value))
    before = None if previous is None else _parse_number(previous)
    if rule.monotonic and before is not None:
        if rule.monotonic == "increasing" and number < before:
            text = f"must be >= the previous value {previous} (monotonic increasing)"
            problems.append(_custom(rule, text, value))
        if rule.monotonic == "decreasing" and number > before:
            text = f"must be <= the previous value {previous} (monotonic decreasing)"
            problems.append(_custom(rule, text, value))
    return problems


def value_problems(param: ParameterLike, value: str, *, previous: str | None = None) -> list[str]:
    """Every rule ``value`` breaks for ``param``, in plain words; empty when it is valid.

    ``previous`` is the value of the workspace's last build, for ``monotonic`` rules.
    Regexes are Python ``re`` searched anywhere in the value (Go's ``MatchString``);
    anchor them with ``^…$`` to match the whole value.
    """
    type_problem = _type_problem(param, value)
    if type_problem:
        return [type_problem]
    problems = _option_problems(param, value)
    rule = param.validation
    if rule.regex is not None:
        try:
            matched = re.search(rule.regex, value) is not None
        except re.error:
            matched = False  # the template loader refuses bad regexes; be safe anyway
        if not matched:
            problems.append(_custom(rule, f"must match regex {rule.regex}", value))
    number = _parse_number(value) if param.type is ParameterType.NUMBER else None
    if number is not None:
        problems.extend(_number_problems(param, number, value, previous))
    return problems


def validate_parameter_values(
    params: Sequence[ParameterLike],
    values: Mapping[str, str],
    *,
    previous: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Resolve and check a build's parameter values; return every parameter's value.

    Each value is the explicit one if given, else the previous build's (not for
    ``ephemeral`` parameters, which last one build), else the default. Immutable
    parameters may not change once a previous build has a value for them. Raises
    :class:`InvalidInput` (``Invalid parameter values.``) listing every problem.
    """
    previous = previous or {}
    known = {p.name for p in params}
    problems = [
        Validation(field=name, detail="no parameter with this name in the template")
        for name in values
        if name not in known
    ]
    resolved: dict[str, str] = {}
    for param in params:
        before = previous.get(param.name)
        if param.name in values:
            value = values[param.name]
        elif before is not None and not param.ephemeral:
            value = before
        elif param.default is not None:
            value = param.default
        elif param.required:
            problems.append(Validation(field=param.name, detail="a value is required"))
            continue
        else:
            resolved[param.name] = ""  # optional and no default: empty, not checked
            continue
        if param.required and value == "":
            problems.append(Validation(field=param.name, detail="a value is required"))
            continue
        if not param.mutable and before is not None and value != before:
            detail = "cannot be changed after the workspace is created (immutable)"
            problems.append(Validation(field=param.name, detail=detail))
        found = value_problems(param, value, previous=before)
        problems.extend(Validation(field=param.name, detail=d) for d in found)
        resolved[param.name] = value
    if problems:
        raise InvalidInput("Invalid parameter values.", validations=problems)
    return resolved


def preset_then_explicit(
    preset_values: Mapping[str, str], explicit: Mapping[str, str]
) -> dict[str, str]:
    """A preset's values overlaid by the caller's explicit ones (explicit wins, spec §1.2)."""
    return {**preset_values, **explicit}
