"""Rendering template documents with sandboxed, strict Jinja (DESIGN §5)."""

from __future__ import annotations

import textwrap

import pytest

from berth.domain.render import render_template
from berth.domain.template import TemplateDoc, TemplateError, parse_template

DOC = textwrap.dedent("""
    name: py
    display_name: "Python for {{ owner.name }}"
    description: "{{ template.name }}"
    prepare: |
      echo building {{ workspace.name }}
    backend:
      type: fake
      image: "img:{{ parameters.tag }}"
      fake: {script: "echo {{ parameters.tag }}", nested: ["{{ owner.name }}"]}
    parameters:
      - name: tag
        description: "literal {{ not_rendered }}"
        default: "3.12"
    presets:
      - name: p
        description: "also {{ literal }}"
    agents:
      - name: main
        chat: true
        directory: "/home/{{ owner.name }}/project"
        env: {GIT_AUTHOR_NAME: "{{ owner.name }}", name: "{{ owner.name }}"}
        scripts:
          - display_name: "clone {{ parameters.tag }}"
            script: |
              git clone {{ parameters.tag | shquote }} .
""")
CONTEXT = {
    "parameters": {"tag": "it's 3.13"},
    "workspace": {"name": "ws1", "id": "w-1"},
    "owner": {"name": "ann"},
    "template": {"name": "py"},
}


def render(doc: TemplateDoc, parameters: dict[str, str] | None = None) -> TemplateDoc:
    return render_template(
        doc,
        parameters=CONTEXT["parameters"] if parameters is None else parameters,
        workspace=CONTEXT["workspace"],
        owner=CONTEXT["owner"],
        template=CONTEXT["template"],
    )


def test_renders_every_consumed_string() -> None:
    doc = parse_template(DOC)
    out = render(doc)
    assert out.display_name == "Python for ann"
    assert out.description == "py"
    assert out.prepare == "echo building ws1\n"  # trailing newline kept
    assert out.backend.image == "img:it's 3.13"
    assert out.backend.fake == {"script": "echo it's 3.13", "nested": ["ann"]}
    agent = out.agents[0]
    assert agent.directory == "/home/ann/project"
    assert agent.env == {"GIT_AUTHOR_NAME": "ann", "name": "ann"}
    assert agent.scripts[0].display_name == "clone it's 3.13"
    assert agent.scripts[0].script == "git clone 'it'\"'\"'s 3.13' .\n"


def test_inputs_and_names_are_not_rendered() -> None:
    out = render(parse_template(DOC))
    assert out.parameters[0].description == "literal {{ not_rendered }}"
    assert out.presets[0].description == "also {{ literal }}"
    assert (out.name, out.agents[0].name) == ("py", "main")


def test_original_is_unchanged() -> None:
    doc = parse_template(DOC)
    render(doc)
    assert doc.agents[0].directory == "/home/{{ owner.name }}/project"


def test_rendered_document_round_trips() -> None:
    out = render(parse_template(DOC))
    assert TemplateDoc.model_validate(out.model_dump(mode="json")) == out


def test_strict_undefined_names_the_field() -> None:
    doc = parse_template(
        "name: t\n"
        "agents: [{name: a, scripts: [{display_name: s, script: 'x {{ parameters.nope }}'}]}]\n"
    )
    with pytest.raises(TemplateError) as info:
        render(doc)
    (problem,) = info.value.validations
    assert problem.field == "agents[0].scripts[0].script"
    assert problem.detail == "'dict object' has no attribute 'nope'"
    assert "could not be rendered" in str(info.value)


def test_all_render_errors_are_collected() -> None:
    doc = parse_template(
        "name: t\nprepare: '{{ nope }}'\nagents: [{name: a, directory: '{{ x.y }}'}]\n"
    )
    with pytest.raises(TemplateError) as info:
        render(doc)
    assert [v.field for v in info.value.validations] == ["prepare", "agents[0].directory"]
    assert info.value.validations[0].detail == "'nope' is undefined"


@pytest.mark.parametrize(
    ("expression", "detail"),
    [
        ("{{ ''.__class__.__mro__ }}", "unsafe"),
        ("{{ owner.__init__.__globals__ }}", "unsafe"),
        ("{{ ().__class__.__base__.__subclasses__() }}", "unsafe"),
        ("{% include '/etc/passwd' %}", "no loader"),
        ("{% import 'os' as os %}", "no loader"),
    ],
)
def test_sandbox_refuses_unsafe_access(expression: str, detail: str) -> None:
    doc = parse_template(f'name: t\nprepare: "{expression}"\n')
    with pytest.raises(TemplateError) as info:
        render(doc)
    (problem,) = info.value.validations
    assert problem.field == "prepare"
    assert detail in problem.detail


def test_syntax_error_has_line() -> None:
    doc = parse_template("name: t\nprepare: |\n  ok\n  {{ broken\n")
    with pytest.raises(TemplateError) as info:
        render(doc)
    (problem,) = info.value.validations
    assert problem.field == "prepare"
    assert problem.detail.startswith("line 2: ")


def test_runtime_errors_are_template_errors() -> None:
    doc = parse_template("name: t\nprepare: '{{ 1 / 0 }}'\n")
    with pytest.raises(TemplateError) as info:
        render(doc)
    assert info.value.validations[0].field == "prepare"


def test_rendered_document_is_revalidated() -> None:
    doc = parse_template("name: t\nbackend: {type: docker, image: '{{ parameters.image }}'}\n")
    with pytest.raises(TemplateError) as info:
        render(doc, {"image": ""})
    assert info.value.validations[0].field == "backend.image"
    assert "needs an image" in info.value.validations[0].detail


def test_plain_strings_pass_through() -> None:
    doc = parse_template("name: t\nprepare: 'echo ${HOME} {not jinja}'\n")
    assert render(doc).prepare == "echo ${HOME} {not jinja}"
