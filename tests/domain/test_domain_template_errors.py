"""The template document's rules and their error reporting: each refusal names its field."""

from __future__ import annotations

import pytest

from berth.domain.template import TemplateError, parse_template
from berth.errors import InvalidInput

BAD = [
    ("unknown field", "name: t\ncolour: red\n", "colour", "unknown field"),
    (
        "unknown nested field",
        "name: t\nagents: [{name: a, chta: true}]\n",
        "agents[0].chta",
        "unknown field (did you mean 'chat'?)",
    ),
    ("invalid name", "name: My Project\n", "name", "must be alphanumeric with hyphens"),
    ("reserved name", "name: new\n", "name", 'cannot use "new" as a name'),
    ("missing name", "display_name: x\n", "name", "required field is missing"),
    ("bad agent name", "name: t\nagents: [{name: a_b}]\n", "agents[0].name", "alphanumeric"),
    (
        "duplicate agent",
        "name: t\nagents: [{name: a}, {name: a}]\n",
        "agents[1].name",
        'duplicate agent name "a"',
    ),
    (
        "two chat agents",
        "name: t\nagents: [{name: main, chat: true}, {name: helper, chat: true}]\n",
        "agents[1].chat",
        'only one agent may have chat: true; "main" and "helper" both do',
    ),
    (
        "bad parameter type",
        "name: t\nparameters: [{name: x, type: integer}]\n",
        "parameters[0].type",
        "must be one of 'string', 'number', 'bool' or 'list(string)'",
    ),
    (
        "bad parameter name",
        "name: t\nparameters: [{name: 1x}]\n",
        "parameters[0].name",
        "invalid parameter name",
    ),
    (
        "duplicate parameter",
        "name: t\nparameters: [{name: x}, {name: x}]\n",
        "parameters[1].name",
        'duplicate parameter name "x"',
    ),
    (
        "preset names missing parameter",
        "name: t\npresets: [{name: p, parameters: {cpus: 1}}]\n",
        "presets[0].parameters.cpus",
        'no parameter named "cpus" in this template',
    ),
    (
        "preset value invalid",
        "name: t\nparameters: [{name: n, type: number}]\n"
        "presets: [{name: p, parameters: {n: x}}]\n",
        "presets[0].parameters.n",
        "must be a number",
    ),
    (
        "two default presets",
        "name: t\npresets: [{name: a, default: true}, {name: b, default: true}]\n",
        "presets[1].default",
        'only one preset may be the default; "a" and "b" both are',
    ),
    (
        "negative prebuilds",
        "name: t\npresets: [{name: a, prebuilds: {instances: -1}}]\n",
        "presets[0].prebuilds.instances",
        "must be >= 0",
    ),
    (
        "default not a number",
        "name: t\nparameters: [{name: n, type: number, default: abc}]\n",
        "parameters[0].default",
        'must be a number, got "abc"',
    ),
    (
        "default fails validation",
        "name: t\nparameters: [{name: n, type: number, default: 9, validation: {max: 8}}]\n",
        "parameters[0].default",
        "must be <= 8",
    ),
    (
        "default not an option",
        "name: t\nparameters: [{name: s, options: [{name: A, value: a}], default: b}]\n",
        "parameters[0].default",
        'must be one of the options: "a"',
    ),
    (
        "duplicate option value",
        "name: t\nparameters: [{name: s, options: [{name: A, value: a}, {name: B, value: a}]}]\n",
        "parameters[0].options[1].value",
        'duplicate option value "a"',
    ),
    (
        "required with default",
        "name: t\nparameters: [{name: s, default: a, required: true}]\n",
        "parameters[0].required",
        "cannot be true",
    ),
    (
        "ephemeral immutable",
        "name: t\nparameters: [{name: s, default: a, ephemeral: true}]\n",
        "parameters[0].ephemeral",
        "must also be mutable",
    ),
    (
        "regex on number",
        "name: t\nparameters: [{name: n, type: number, validation: {regex: x}}]\n",
        "parameters[0].validation.regex",
        "applies only to string parameters",
    ),
    (
        "bad regex",
        "name: t\nparameters: [{name: s, validation: {regex: '('}}]\n",
        "parameters[0].validation.regex",
        "invalid regex",
    ),
    (
        "min on string",
        "name: t\nparameters: [{name: s, validation: {min: 1}}]\n",
        "parameters[0].validation.min",
        "applies only to number parameters",
    ),
    (
        "min above max",
        "name: t\nparameters: [{name: n, type: number, validation: {min: 5, max: 1}}]\n",
        "parameters[0].validation.max",
        "must not be less than min",
    ),
    (
        "bad monotonic",
        "name: t\nparameters: [{name: n, type: number, validation: {monotonic: up}}]\n",
        "parameters[0].validation.monotonic",
        "must be one of 'increasing' or 'decreasing'",
    ),
    (
        "form type needs options",
        "name: t\nparameters: [{name: s, form_type: dropdown}]\n",
        "parameters[0].form_type",
        "dropdown needs options",
    ),
    (
        "form type needs bool",
        "name: t\nparameters: [{name: s, form_type: switch}]\n",
        "parameters[0].form_type",
        "switch needs type bool",
    ),
    ("bad duration", "name: t\ndefault_ttl: 1d\n", "default_ttl", 'unknown unit "d"'),
    ("negative duration", "name: t\ndefault_ttl: -1h\n", "default_ttl", "must not be negative"),
    (
        "numeric duration",
        "name: t\nagents: [{name: a, scripts: [{display_name: s, script: x, timeout: 5}]}]\n",
        "agents[0].scripts[0].timeout",
        "must be a duration such as 30s, 5m or 8h",
    ),
    (
        "missing script",
        "name: t\nagents: [{name: a, scripts: [{display_name: s}]}]\n",
        "agents[0].scripts[0].script",
        "required field is missing",
    ),
    (
        "bad run_on",
        "name: t\nagents: [{name: a, scripts: [{display_name: s, script: x, run_on: bogus}]}]\n",
        "agents[0].scripts[0].run_on",
        "must be one of 'start', 'stop' or 'claim'",
    ),
    (
        "bad env name",
        "name: t\nagents: [{name: a, env: {1X: y}}]\n",
        "agents[0].env.1X",
        "variable",
    ),
    (
        "wrong type",
        "name: t\ndaily_cost: lots\n",
        "daily_cost",
        "must be a whole number, got a string",
    ),
    ("negative cost", "name: t\ndaily_cost: -1\n", "daily_cost", "must be >= 0"),
    ("list for mapping", "name: t\nbackend: [1]\n", "backend", "must be a mapping, got a list"),
    ("mapping for list", "name: t\nagents: {a: 1}\n", "agents", "must be a list, got a mapping"),
    ("bad backend type", "name: t\nbackend: {type: podman}\n", "backend.type", "must be one of"),
    (
        "docker without image",
        "name: t\nbackend: {type: docker}\n",
        "backend.image",
        "needs an image",
    ),
    ("local with image", "name: t\nbackend: {image: x}\n", "backend.image", "takes no image"),
    (
        "isolation off local",
        "name: t\nbackend: {type: docker, image: x, isolation: none}\n",
        "backend.isolation",
        "only the local backend",
    ),
    ("fake settings off fake", "name: t\nbackend: {fake: {}}\n", "backend.fake", "only the fake"),
    ("bad memory", "name: t\nbackend: {memory: lots}\n", "backend.memory", "invalid memory size"),
    ("zero cpus", "name: t\nbackend: {cpus: 0}\n", "backend.cpus", "must be > 0"),
    ("invalid YAML", "name: t\nagents: [\n  - x: : y\n", "(document)", "invalid YAML at line 3"),
    ("duplicate key", "name: a\nname: b\n", "(document)", "duplicate key 'name'"),
    ("top level list", "- a\n", "(document)", "top level must be a mapping"),
    ("empty file", "", "(document)", "got nothing (null)"),
]


@pytest.mark.parametrize(
    ("yaml_text", "field", "detail"), [c[1:] for c in BAD], ids=[c[0] for c in BAD]
)
def test_bad_templates_are_refused_naming_the_field(
    yaml_text: str, field: str, detail: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_template(yaml_text, filename="tpl/template.yaml")
    err = info.value
    assert isinstance(err, TemplateError)
    assert err.message.startswith("tpl/template.yaml is not a valid template")
    fields = {v.field: v.detail for v in err.validations}
    assert field in fields, fields
    assert detail in fields[field]
    text = str(err)
    assert "tpl/template.yaml" in text
    assert f"{field}: " in text
    for leak in ("pydantic", "https://", "Input should", "Traceback", "Value error"):
        assert leak not in text


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(TemplateError) as info:
        parse_template("name: My Project\ncolour: red\ndaily_cost: x\n")
    assert {v.field for v in info.value.validations} == {"name", "colour", "daily_cost"}
    assert "(3 problems)" in info.value.message


def test_long_error_lists_stay_on_one_screen() -> None:
    agents = "".join(f"  - {{name: a{i}, bogus: 1}}\n" for i in range(40))
    with pytest.raises(TemplateError) as info:
        parse_template("name: t\nagents:\n" + agents)
    assert len(info.value.validations) == 40
    lines = str(info.value).splitlines()
    assert len(lines) <= 22
    assert lines[-1] == "  … and 20 more"


@pytest.mark.parametrize(
    ("yaml_text", "detail"),
    [
        (
            "name: t\n  bad: indent\n",
            "invalid YAML at line 2, column 6: mapping values are not allowed here",
        ),
        (
            "name: t\ndescription: [unclosed\n",
            "invalid YAML at line 3, column 1: expected ',' or ']', but got '<stream end>'",
        ),
    ],
)
def test_yaml_error_has_line_and_column(yaml_text: str, detail: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse_template(yaml_text)
    (problem,) = info.value.validations
    assert (problem.field, problem.detail) == ("(document)", detail)
