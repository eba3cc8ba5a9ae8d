"""Parameter value validation at create time (DESIGN §5)."""

from __future__ import annotations

from typing import Any

import pytest

from berth.domain.parameters import (
    parse_list_value,
    preset_then_explicit,
    validate_parameter_values,
    value_problems,
)
from berth.domain.template import ParameterDoc
from berth.errors import InvalidInput, Validation


def param(name: str = "p", **fields: Any) -> ParameterDoc:
    return ParameterDoc.model_validate({"name": name, **fields})


STRING = param()
NUMBER = param(type="number")
BOOL = param(type="bool")
LIST = param(type="list(string)")
CHOICE = param(options=[{"name": "A", "value": "a"}, {"name": "B", "value": "b"}])
MULTI = param(
    type="list(string)", options=[{"name": "A", "value": "a"}, {"name": "B", "value": "b"}]
)
REGEX = param(validation={"regex": "^[a-z]+$"})
REGEX_CUSTOM = param(
    validation={"regex": "^[a-z]+$", "error": "lower-case letters only, not {value}"}
)
RANGE = param(type="number", validation={"min": 1, "max": 10})
RANGE_CUSTOM = param(type="number", validation={"min": 1, "max": 10, "error": "{min} to {max}"})
FLOAT_RANGE = param(type="number", validation={"min": 0.5})
UP = param(type="number", mutable=True, validation={"monotonic": "increasing"})
DOWN = param(type="number", mutable=True, validation={"monotonic": "decreasing"})


@pytest.mark.parametrize(
    ("spec", "value", "problems"),
    [
        (STRING, "", []),
        (STRING, "anything at all", []),
        (NUMBER, "42", []),
        (NUMBER, "-1.5", []),
        (NUMBER, "1e3", []),
        (NUMBER, ".5", []),
        (NUMBER, "abc", ['must be a number, got "abc"']),
        (NUMBER, "nan", ['must be a number, got "nan"']),
        (NUMBER, "inf", ['must be a number, got "inf"']),
        (NUMBER, " 1", ['must be a number, got " 1"']),
        (NUMBER, "", ['must be a number, got ""']),
        (BOOL, "true", []),
        (BOOL, "false", []),
        (BOOL, "yes", ['must be true or false, got "yes"']),
        (BOOL, "True", ['must be true or false, got "True"']),
        (LIST, '["a", "b"]', []),
        (LIST, "[]", []),
        (LIST, "[1]", ['must be a JSON array of strings such as ["a", "b"], got "[1]"']),
        (LIST, "a,b", ['must be a JSON array of strings such as ["a", "b"], got "a,b"']),
        (LIST, "{}", ['must be a JSON array of strings such as ["a", "b"], got "{}"']),
        (CHOICE, "a", []),
        (CHOICE, "c", ['must be one of the options: "a", "b"']),
        (MULTI, '["a", "b"]', []),
        (MULTI, '["a", "c", "d"]', [
            '"c" is not one of the options: "a", "b"',
            '"d" is not one of the options: "a", "b"',
        ]),
        (REGEX, "abc", []),
        (REGEX, "ABC", ["must match regex ^[a-z]+$"]),
        (REGEX_CUSTOM, "ABC", ["lower-case letters only, not ABC"]),
        (RANGE, "1", []),
        (RANGE, "10", []),
        (RANGE, "0", ["must be >= 1"]),
        (RANGE, "11", ["must be <= 10"]),
        (RANGE, "10.5", ["must be <= 10"]),
        (RANGE_CUSTOM, "11", ["1 to 10"]),
        (FLOAT_RANGE, "0.25", ["must be >= 0.5"]),
    ],
)  # fmt: skip
def test_value_problems(spec: ParameterDoc, value: str, problems: list[str]) -> None:
    assert value_problems(spec, value) == problems


@pytest.mark.parametrize(
    ("spec", "value", "previous", "problems"),
    [
        (UP, "5", "5", []),
        (UP, "6", "5", []),
        (UP, "4", "5", ["must be >= the previous value 5 (monotonic increasing)"]),
        (DOWN, "4", "5", []),
        (DOWN, "6", "5", ["must be <= the previous value 5 (monotonic decreasing)"]),
        (UP, "4", None, []),
        (UP, "4", "not-a-number", []),
    ],
)
def test_monotonic(
    spec: ParameterDoc, value: str, previous: str | None, problems: list[str]
) -> None:
    assert value_problems(spec, value, previous=previous) == problems


TEMPLATE_PARAMS = [
    param("repo", default="", required=False),
    param("cpus", type="number", default=2, validation={"min": 1, "max": 8}),
    param("region", options=[{"name": "EU", "value": "eu"}, {"name": "US", "value": "us"}]),
    param("debug", type="bool", default=False, mutable=True),
]


def test_defaults_are_filled_in_declaration_order() -> None:
    resolved = validate_parameter_values(TEMPLATE_PARAMS, {"region": "eu"})
    assert list(resolved.items()) == [
        ("repo", ""),
        ("cpus", "2"),
        ("region", "eu"),
        ("debug", "false"),
    ]


def test_explicit_values_win_over_defaults() -> None:
    resolved = validate_parameter_values(TEMPLATE_PARAMS, {"region": "us", "cpus": "4"})
    assert (resolved["cpus"], resolved["region"]) == ("4", "us")


def test_all_problems_are_collected() -> None:
    with pytest.raises(InvalidInput) as info:
        validate_parameter_values(TEMPLATE_PARAMS, {"cpus": "99", "debug": "maybe", "nope": "x"})
    err = info.value
    assert err.message == "Invalid parameter values."
    assert set(err.validations) == {
        Validation(field="nope", detail="no parameter with this name in the template"),
        Validation(field="cpus", detail="must be <= 8"),
        Validation(field="region", detail="a value is required"),
        Validation(field="debug", detail='must be true or false, got "maybe"'),
    }


def test_required_empty_value_is_missing() -> None:
    with pytest.raises(InvalidInput) as info:
        validate_parameter_values([param("name")], {"name": ""})
    assert info.value.validations == (Validation(field="name", detail="a value is required"),)


def test_optional_without_default_resolves_empty() -> None:
    assert validate_parameter_values([param("x", required=False)], {}) == {"x": ""}


def test_previous_values_are_kept_and_immutable() -> None:
    previous = {"repo": "https://example.com/r.git", "cpus": "2", "region": "eu", "debug": "true"}
    resolved = validate_parameter_values(TEMPLATE_PARAMS, {}, previous=previous)
    assert resolved == previous
    with pytest.raises(InvalidInput) as info:
        validate_parameter_values(TEMPLATE_PARAMS, {"region": "us"}, previous=previous)
    assert info.value.validations == (
        Validation(
            field="region",
            detail="cannot be changed after the workspace is created (immutable)",
        ),
    )
    changed = validate_parameter_values(TEMPLATE_PARAMS, {"debug": "false"}, previous=previous)
    assert changed["debug"] == "false"


def test_ephemeral_values_are_not_carried_over() -> None:
    params = [param("once", default="no", mutable=True, ephemeral=True)]
    assert validate_parameter_values(params, {}, previous={"once": "yes"}) == {"once": "no"}


def test_monotonic_against_previous_build() -> None:
    params = [
        param(
            "disk", type="number", default=10, mutable=True, validation={"monotonic": "increasing"}
        )
    ]
    assert validate_parameter_values(params, {"disk": "20"}, previous={"disk": "10"}) == {
        "disk": "20"
    }
    with pytest.raises(InvalidInput) as info:
        validate_parameter_values(params, {"disk": "5"}, previous={"disk": "10"})
    assert info.value.validations[0].field == "disk"
    assert "monotonic increasing" in info.value.validations[0].detail


def test_preset_then_explicit() -> None:
    merged = preset_then_explicit({"cpus": "1", "region": "eu"}, {"cpus": "4"})
    assert merged == {"cpus": "4", "region": "eu"}


@pytest.mark.parametrize(
    ("value", "items"),
    [('["a"]', ["a"]), ("[]", []), ("[1]", None), ('"a"', None), ("", None), ("[", None)],
)
def test_parse_list_value(value: str, items: list[str] | None) -> None:
    assert parse_list_value(value) == items
